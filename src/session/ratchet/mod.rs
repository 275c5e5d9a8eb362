//! The DH ratchet of akex mode (wire version 2), one implementation for
//! stream and datagram sessions.
//!
//! A step is three ratchet records (type 0x03), each body
//! `generation (u32 BE) ‖ step (u8) ‖ fields`:
//!
//! ```text
//! init      0x01  x (32) ‖ len (u16 BE) ‖ ek (0 | 1184) ‖ [sig_init (64)]
//! response  0x02  y (32) ‖ len (u16 BE) ‖ ct (0 | 1088) ‖ [sig_response (64)] ‖ confirm_response (32)
//! finish    0x03  confirm_finish (32)
//! ```
//!
//! The step's keys come from [`schedule::ratchet`] over a transcript hash
//! `th` that binds the session (handshake hash), the generation the step
//! creates, who started it, both ratchet public keys, the ML-KEM
//! encapsulation key and ciphertext. The shared secrets are the ephemeral
//! X25519 `dh_ee`, the optional ML-KEM-768 secret, and — what keeps an
//! attacker who holds every session secret from taking the step over —
//! the long-term keys the handshake authenticated ([`RatchetAuth`]):
//! `dh_es`/`dh_se` with the X25519 static keys, or Ed25519 signatures over
//! the transcript (SIGMA sessions). Both confirmations are checked in
//! constant time; a wrong one ends the session
//! ([`PeerMisbehaved::BadKeyConfirmation`]). Spec: `protocols/session.md`.

use std::time::Duration;

use super::schedule;
use crate::crypto::hash::sha256;
use crate::crypto::kem::{self, MlKem768KeyPair};
use crate::crypto::secret::ct_eq;
use crate::crypto::x25519::X25519Private;
use crate::crypto::{RandomSource, Secret};
use crate::error::{ApiMisuse, Error, LimitReached, PeerMisbehaved};
use crate::handshake::Role;
use crate::keys::signer::sign_checked;

mod message;

pub(crate) use message::RatchetAuth;
use message::{
    check_confirm, check_public, header, parse, public_fields, signed, split, Message, CONFIRM_LEN,
    SIG_LEN, STEP_FINISH, STEP_INIT, STEP_RESPONSE,
};
pub use message::{MAX_RTO, RATCHET_RTO};

/// Our own step in progress: we sent `init`.
struct Own {
    private: X25519Private,
    kem: Option<Box<MlKem768KeyPair>>,
    /// The init's public fields (for the transcript).
    fields: Vec<u8>,
    /// The whole init body (datagram mode resends it).
    body: Vec<u8>,
    next_send: Duration,
    rto: Duration,
}

/// The peer's init, checked, waiting for our response.
struct PeerInit {
    public: [u8; 32],
    kem: Vec<u8>,
}

/// A step we answered. Stream: our sending key switched, the receiving
/// key (`recv`) switches at the peer's finish. Datagram: both switch when
/// the peer's first record of the new generation authenticates.
struct Responded {
    peer_public: [u8; 32],
    response: Vec<u8>,
    resend: bool,
    root: Secret<32>,
    send: Option<Secret<32>>,
    recv: Option<Secret<32>>,
    confirm_finish: Secret<32>,
}

/// Where a step stands. Every state but `Idle` is boxed: idle sessions are
/// most sessions, and each keeps only this enum's 16 bytes (the heap per
/// idle session is a benchmark target, docs/benchmarks.md).
enum State {
    Idle,
    /// We sent an init and wait for the response.
    Initiated(Box<Own>),
    /// The peer's init arrived (checked); `poll` answers it.
    Received(Box<PeerInit>),
    /// We answered.
    Responded(Box<Responded>),
    /// Stream initiator: the response arrived, our receiving key switched;
    /// the finish goes out next, then our sending key switches.
    Finishing(Box<(Secret<32>, Vec<u8>)>),
}

/// What the session must do after a ratchet event.
#[derive(Default)]
pub(crate) struct Switch {
    /// Seal this ratchet record body (under the current sending key).
    pub emit: Option<Vec<u8>>,
    /// Then install this sending secret as the next generation's.
    pub send: Option<Secret<32>>,
    /// Stream: install this receiving secret now (the peer's next record
    /// uses it). Datagram: unused (see [`Ratchet::peer_next_generation`]).
    pub recv: Option<Secret<32>>,
}

/// The ratchet of one session: root secret, generation, the step in
/// progress, and what it needs to run one.
pub(crate) struct Ratchet {
    root: Option<Secret<32>>,
    /// Completed steps on our side.
    generation: u32,
    state: State,
    datagram: bool,
    role: Role,
    hybrid: bool,
    auth: RatchetAuth,
    handshake_hash: Vec<u8>,
    interval: Option<Duration>,
    last: Duration,
    /// Datagram: the receiving secret of the peer's next generation, once
    /// known (tried for records of generation + 1).
    next_recv: Option<Secret<32>>,
    /// Datagram initiator: the finish to send at the next poll.
    finish_pending: Option<Vec<u8>>,
    /// Datagram responder: the finish confirmation still expected.
    expect_finish: Option<(u32, Secret<32>)>,
}

/// How a session's ratchet is set up.
pub(crate) struct RatchetSetup {
    pub root: Option<Secret<32>>,
    pub role: Role,
    pub hybrid: bool,
    pub auth: RatchetAuth,
    pub handshake_hash: Vec<u8>,
    pub interval: Option<Duration>,
    pub datagram: bool,
}

impl Ratchet {
    pub(crate) fn new(setup: RatchetSetup) -> Self {
        Ratchet {
            root: setup.root,
            generation: 0,
            state: State::Idle,
            datagram: setup.datagram,
            role: setup.role,
            hybrid: setup.hybrid,
            auth: setup.auth,
            handshake_hash: setup.handshake_hash,
            interval: setup.interval,
            last: Duration::ZERO,
            next_recv: None,
            finish_pending: None,
            expect_finish: None,
        }
    }

    /// Completed steps.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    /// True while a step is in progress on our side.
    pub(crate) fn in_progress(&self) -> bool {
        !matches!(self.state, State::Idle) || self.finish_pending.is_some()
    }

    /// `ctx = handshake_hash ‖ generation (u32 BE) ‖ starter`, starter
    /// 0x01 when the handshake initiator started the step, 0x02 otherwise.
    fn context(&self, generation: u32, started_by: Role) -> Vec<u8> {
        let mut ctx = self.handshake_hash.clone();
        ctx.extend_from_slice(&generation.to_be_bytes());
        ctx.push(match started_by {
            Role::Initiator => 0x01,
            Role::Responder => 0x02,
        });
        ctx
    }

    /// Starts a step: returns the init body, or `None` if one is already
    /// in progress.
    pub(crate) fn start(
        &mut self,
        rng: &mut dyn RandomSource,
        now: Duration,
    ) -> Result<Option<Vec<u8>>, Error> {
        if self.root.is_none() {
            return Err(ApiMisuse::NoRootSecret.into());
        }
        if self.in_progress() {
            return Ok(None);
        }
        let target = self.target()?;
        let private = X25519Private::new(&Secret::random(rng));
        let kem = self
            .hybrid
            .then(|| Box::new(MlKem768KeyPair::generate(rng)));
        let ek: &[u8] = kem.as_ref().map_or(&[], |k| &k.encapsulation_key()[..]);
        let fields = public_fields(private.public(), ek);
        let mut body = header(target, STEP_INIT, fields.len() + SIG_LEN);
        body.extend_from_slice(&fields);
        if let RatchetAuth::Signature { local, .. } = &self.auth {
            let ctx = self.context(target, self.role);
            let digest = sha256(&[&ctx, &fields]);
            body.extend_from_slice(&sign_checked(
                local.as_ref(),
                &signed(schedule::LABEL_RATCHET_SIG_INIT, &digest),
            )?);
        }
        self.state = State::Initiated(Box::new(Own {
            private,
            kem,
            fields,
            body: body.clone(),
            next_send: now + RATCHET_RTO,
            rto: RATCHET_RTO,
        }));
        Ok(Some(body))
    }

    fn target(&self) -> Result<u32, Error> {
        // 2^32 - 1 steps: the session has to end (never reached in practice).
        self.generation
            .checked_add(1)
            .ok_or(Error::Limit(LimitReached::NonceExhausted))
    }

    /// The next control action due at `now`: an answer, a finish, a
    /// retransmission (datagram), or a step the interval asks for.
    pub(crate) fn poll(
        &mut self,
        rng: &mut dyn RandomSource,
        now: Duration,
    ) -> Result<Switch, Error> {
        if let Some(finish) = self.finish_pending.take() {
            return Ok(emit(finish));
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Received(peer) => return self.respond(rng, &peer),
            State::Responded(mut answered) if answered.resend => {
                answered.resend = false;
                let response = answered.response.clone();
                self.state = State::Responded(answered);
                return Ok(emit(response));
            }
            State::Finishing(finishing) => {
                let (send, finish) = *finishing;
                self.generation += 1;
                self.last = now;
                return Ok(Switch {
                    emit: Some(finish),
                    send: Some(send),
                    recv: None,
                });
            }
            State::Initiated(mut own) if self.datagram && now >= own.next_send => {
                own.rto = (own.rto * 2).min(MAX_RTO);
                own.next_send = now + own.rto;
                let body = own.body.clone();
                self.state = State::Initiated(own);
                return Ok(emit(body));
            }
            other => self.state = other,
        }
        if let (Some(interval), Some(_), State::Idle) = (self.interval, &self.root, &self.state) {
            if now.saturating_sub(self.last) >= interval && self.finish_pending.is_none() {
                return Ok(self.start(rng, now)?.map(emit).unwrap_or_default());
            }
        }
        Ok(Switch::default())
    }

    /// Our response to the peer's (checked) init.
    fn respond(&mut self, rng: &mut dyn RandomSource, peer: &PeerInit) -> Result<Switch, Error> {
        let target = self.target()?;
        let root = self
            .root
            .as_ref()
            .expect("an init is accepted only with a root");
        let private = X25519Private::new(&Secret::random(rng));
        let mut secrets = vec![private.agree(&peer.public)?];
        let ct = if peer.kem.is_empty() {
            Vec::new()
        } else {
            let m = Secret::<{ kem::ENCAPS_RANDOMNESS_LEN }>::random(rng);
            let (ct, ss) = kem::encapsulate(&peer.kem, &m)?;
            secrets.push(ss);
            ct.to_vec()
        };
        // The step's initiator is the peer: es = DH(x, our static),
        // se = DH(its static, y).
        if let RatchetAuth::StaticDh { local, remote } = &self.auth {
            if let Some(s) = local {
                secrets.push(s.agree(&peer.public)?);
            }
            if let Some(rs) = remote {
                secrets.push(private.agree(rs)?);
            }
        }
        let started_by = self.role.peer();
        let ctx = self.context(target, started_by);
        let init_fields = public_fields(&peer.public, &peer.kem);
        let fields = public_fields(private.public(), &ct);
        let th = sha256(&[&ctx, &init_fields, &fields]);
        let keys = schedule::ratchet(root, &secrets.iter().collect::<Vec<_>>(), &th);
        let mut body = header(target, STEP_RESPONSE, fields.len() + SIG_LEN + CONFIRM_LEN);
        body.extend_from_slice(&fields);
        if let RatchetAuth::Signature { local, .. } = &self.auth {
            body.extend_from_slice(&sign_checked(
                local.as_ref(),
                &signed(schedule::LABEL_RATCHET_SIG_RESPONSE, &th),
            )?);
        }
        body.extend_from_slice(keys.confirm_response.expose());
        let (root, send, recv, confirm_finish) = split(self.role, keys);
        if self.datagram {
            self.next_recv = Some(recv);
            self.state = State::Responded(Box::new(Responded {
                peer_public: peer.public,
                response: body.clone(),
                resend: false,
                root,
                send: Some(send),
                recv: None,
                confirm_finish,
            }));
            Ok(emit(body))
        } else {
            self.root = Some(root.clone());
            self.state = State::Responded(Box::new(Responded {
                peer_public: peer.public,
                response: Vec::new(),
                resend: false,
                root,
                send: None,
                recv: Some(recv),
                confirm_finish,
            }));
            Ok(Switch {
                emit: Some(body),
                send: Some(send),
                recv: None,
            })
        }
    }

    /// Handles an authenticated ratchet record body.
    pub(crate) fn receive(&mut self, body: &[u8], now: Duration) -> Result<Switch, Error> {
        let message = parse(body, self.auth.sig_len())?;
        let target = self.generation.wrapping_add(1);
        match message.step {
            STEP_INIT => self.receive_init(&message, target),
            STEP_RESPONSE => self.receive_response(&message, target, now),
            _ => self.receive_finish(&message, now),
        }
    }

    fn stale(&self) -> Result<Switch, Error> {
        // Datagrams repeat and reorder: a record of another generation is
        // a duplicate or a leftover. On a stream it cannot happen.
        if self.datagram {
            Ok(Switch::default())
        } else {
            Err(PeerMisbehaved::UnexpectedMessage.into())
        }
    }

    fn receive_init(&mut self, message: &Message<'_>, target: u32) -> Result<Switch, Error> {
        if self.root.is_none() {
            return Err(PeerMisbehaved::UnexpectedMessage.into());
        }
        if message.generation != target {
            return self.stale();
        }
        match &mut self.state {
            // Simultaneous steps: the handshake initiator's wins; the
            // responder drops its own and answers.
            State::Initiated(_) if self.role == Role::Initiator => return Ok(Switch::default()),
            State::Initiated(_) | State::Idle => {}
            State::Responded(answered) if self.datagram => {
                if answered.peer_public[..] == *message.public {
                    answered.resend = true;
                    return Ok(Switch::default());
                }
                // The peer abandoned the step we answered; start over.
                self.next_recv = None;
            }
            State::Received(peer) if self.datagram && peer.public[..] == *message.public => {
                return Ok(Switch::default())
            }
            _ if self.datagram => {}
            _ => return Err(PeerMisbehaved::UnexpectedMessage.into()),
        }
        check_public(message.public)?;
        if !message.kem.is_empty() {
            kem::check_encapsulation_key(message.kem)?;
        } else if self.hybrid {
            // A hybrid session must not be downgraded to a classical step.
            return Err(PeerMisbehaved::MalformedRecord.into());
        }
        if let RatchetAuth::Signature { local, remote } = &self.auth {
            let ctx = self.context(target, self.role.peer());
            let digest = sha256(&[&ctx, &public_fields(message.public, message.kem)]);
            local.scheme().verify(
                remote.as_bytes(),
                &signed(schedule::LABEL_RATCHET_SIG_INIT, &digest),
                message.sig,
            )?;
        }
        let mut public = [0u8; 32];
        public.copy_from_slice(message.public);
        self.state = State::Received(Box::new(PeerInit {
            public,
            kem: message.kem.to_vec(),
        }));
        Ok(Switch::default())
    }

    fn receive_response(
        &mut self,
        message: &Message<'_>,
        target: u32,
        now: Duration,
    ) -> Result<Switch, Error> {
        if message.generation != target || !matches!(self.state, State::Initiated(_)) {
            return self.stale();
        }
        let State::Initiated(own) = std::mem::replace(&mut self.state, State::Idle) else {
            unreachable!("checked above")
        };
        let root = self.root.as_ref().expect("initiated only with a root");
        let mut secrets = vec![own.private.agree(message.public)?];
        match (&own.kem, message.kem.is_empty()) {
            (None, true) => {}
            (Some(pair), false) => secrets.push(pair.decapsulate(message.kem)?),
            _ => return Err(PeerMisbehaved::MalformedRecord.into()),
        }
        // We started the step: es = DH(x, peer static), se = DH(our static, y).
        if let RatchetAuth::StaticDh { local, remote } = &self.auth {
            if let Some(rs) = remote {
                secrets.push(own.private.agree(rs)?);
            }
            if let Some(s) = local {
                secrets.push(s.agree(message.public)?);
            }
        }
        let ctx = self.context(target, self.role);
        let fields = public_fields(message.public, message.kem);
        let th = sha256(&[&ctx, &own.fields, &fields]);
        if let RatchetAuth::Signature { local, remote } = &self.auth {
            local.scheme().verify(
                remote.as_bytes(),
                &signed(schedule::LABEL_RATCHET_SIG_RESPONSE, &th),
                message.sig,
            )?;
        }
        let keys = schedule::ratchet(root, &secrets.iter().collect::<Vec<_>>(), &th);
        if !ct_eq(keys.confirm_response.expose(), message.confirm) {
            return Err(PeerMisbehaved::BadKeyConfirmation.into());
        }
        let (root, send, recv, confirm_finish) = split(self.role, keys);
        self.root = Some(root);
        let mut finish = header(target, STEP_FINISH, CONFIRM_LEN);
        finish.extend_from_slice(confirm_finish.expose());
        if self.datagram {
            // Switch now: the finish and everything after it go out in the
            // new generation, which proves to the peer that we have it.
            self.generation = target;
            self.last = now;
            self.next_recv = Some(recv);
            self.finish_pending = Some(finish);
            Ok(Switch {
                emit: None,
                send: Some(send),
                recv: None,
            })
        } else {
            self.state = State::Finishing(Box::new((send, finish)));
            Ok(Switch {
                emit: None,
                send: None,
                recv: Some(recv),
            })
        }
    }

    fn receive_finish(&mut self, message: &Message<'_>, now: Duration) -> Result<Switch, Error> {
        if self.datagram {
            // The first record of the new generation already switched us
            // (`peer_switched`); check the confirmation if it is still due.
            match self.expect_finish.take() {
                Some((g, confirm)) if g == message.generation => {
                    return check_confirm(&confirm, message.confirm).map(|()| Switch::default())
                }
                other => self.expect_finish = other,
            }
            return Ok(Switch::default());
        }
        if message.generation != self.generation.wrapping_add(1) {
            return Err(PeerMisbehaved::UnexpectedMessage.into());
        }
        let State::Responded(answered) = std::mem::replace(&mut self.state, State::Idle) else {
            return Err(PeerMisbehaved::UnexpectedMessage.into());
        };
        let Responded {
            recv: Some(recv),
            confirm_finish,
            ..
        } = *answered
        else {
            return Err(PeerMisbehaved::UnexpectedMessage.into());
        };
        check_confirm(&confirm_finish, message.confirm)?;
        self.generation += 1;
        self.last = now;
        Ok(Switch {
            emit: None,
            send: None,
            recv: Some(recv),
        })
    }

    /// Datagram: the receiving secret of the peer's next generation, once
    /// a step has made it known.
    pub(crate) fn peer_next_generation(&self) -> Option<&Secret<32>> {
        self.next_recv.as_ref()
    }

    /// Datagram: the peer's first record of the next generation
    /// authenticated (it has the step's keys). Returns the sending secret to
    /// install now if we answered the step (the step's responder commits
    /// here).
    pub(crate) fn peer_switched(&mut self, now: Duration) -> Option<Secret<32>> {
        self.next_recv = None;
        if !matches!(self.state, State::Responded(_)) {
            return None;
        }
        let State::Responded(answered) = std::mem::replace(&mut self.state, State::Idle) else {
            unreachable!("checked above")
        };
        let Responded {
            root,
            send,
            confirm_finish,
            ..
        } = *answered;
        self.root = Some(root);
        self.generation += 1;
        self.last = now;
        self.expect_finish = Some((self.generation, confirm_finish));
        send
    }
}

fn emit(body: Vec<u8>) -> Switch {
    Switch {
        emit: Some(body),
        ..Switch::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}

    /// The root and the next generation's receiving secret, which a step
    /// replaces, are `Secret`s: zeroized when dropped (checked by type).
    #[test]
    fn replaced_ratchet_secrets_are_zeroized_on_drop() {
        let mut r = Ratchet::new(RatchetSetup {
            root: Some(Secret::new([1; 32])),
            role: Role::Initiator,
            hybrid: false,
            auth: RatchetAuth::None,
            handshake_hash: vec![0; 32],
            interval: None,
            datagram: true,
        });
        r.next_recv = Some(Secret::new([2; 32]));
        let (Some(root), Some(next)) = (&r.root, &r.next_recv) else {
            unreachable!()
        };
        zeroized_on_drop(root);
        zeroized_on_drop(next);
    }
}
