//! Datagram mode: explicit counters, a replay window, two epochs of keys.
//!
//! Every datagram record is
//!
//! ```text
//! generation u32 BE || update u32 BE || counter u64 BE || AEAD(type || body)
//! ```
//!
//! with the 16-byte header as the AEAD's associated data and the counter as
//! the nonce (Noise nonce layout). The **epoch** of a direction is the pair
//! (generation, update): a key update moves to (g, u + 1) with
//! `HKDF(current, "akex key update")` (no record needed: the header says it);
//! a DH ratchet moves to (g + 1, 0) with keys from the root secret.
//!
//! The receiver keeps the current epoch's key and the previous one (each
//! with its own [`ReplayWindow`]), so records in flight across a rekey
//! still decrypt; it moves forward on the first record that authenticates
//! under the next epoch's key (up to [`MAX_SKIP`] key updates ahead, so
//! losing every record of an epoch does not stall the session).
//!
//! Lost, replayed, too old or forged datagrams are dropped with a
//! non-fatal error ([`DatagramSession::is_closed`] stays false); an
//! authenticated record of unknown type, a bad ratchet key, a peer past the
//! usage limit or too many forgeries close the session.
//!
//! Ratchet in datagram mode: `init` (carrying the target generation) is
//! retransmitted by [`DatagramSession::poll_control`] until the response
//! arrives; the responder answers duplicates with the same response and
//! switches its own sending key only when the first record of the new
//! generation arrives from the initiator (which proves the initiator has the
//! keys). The initiator switches as soon as it gets the response and sends a
//! `finish` record to confirm.

use std::time::Duration;

use crate::crypto::{AeadKey, Secret, TAG_LEN};
use crate::error::{ApiMisuse, Error, LimitReached, PeerMisbehaved};
use crate::handshake::{Established, Role, MAX_MESSAGE_LEN};

use super::policy::{AeadLimits, RekeyPolicy};
use super::record::{self, Record, RecordType};
use super::replay::{ReplayCheck, ReplayWindow};
use super::{check_limits, check_ratchet_public, schedule, SessionConfig, SessionInfo};
use crate::crypto::kem::{self, MlKem768KeyPair};
use crate::crypto::x25519::X25519Private;

/// Header length: generation, update, counter.
pub const HEADER_LEN: usize = 16;
/// Bytes a datagram record adds to its payload (header, type byte, tag).
pub const OVERHEAD: usize = HEADER_LEN + 1 + TAG_LEN;
/// Largest payload in one datagram record.
pub const MAX_DATAGRAM_PAYLOAD: usize = MAX_MESSAGE_LEN - OVERHEAD;
/// How many key updates ahead of the current epoch a record may be.
pub const MAX_SKIP: u32 = 8;
/// First retransmission delay of a ratchet init (doubles each time, up to 8 s).
pub const RATCHET_RTO: Duration = Duration::from_millis(250);

/// A direction's epoch: (ratchet generation, key updates since).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch {
    /// DH ratchet steps.
    pub generation: u32,
    /// Key updates since the last ratchet step.
    pub update: u32,
}

struct SendKey {
    key: AeadKey,
    secret: Secret<32>,
    epoch: Epoch,
    counter: u64,
    bytes: u64,
    since: Duration,
}

struct RecvKey {
    key: AeadKey,
    /// Kept for the current epoch only (to derive the next one).
    secret: Option<Secret<32>>,
    epoch: Epoch,
    window: ReplayWindow,
    records: u64,
    bytes: u64,
    forgeries: u64,
}

enum DgRatchet {
    Idle,
    Initiated {
        private: X25519Private,
        kem: Option<Box<MlKem768KeyPair>>,
        body: Vec<u8>,
        next_send: Duration,
        rto: Duration,
    },
    /// An init arrived; `poll_control` answers it.
    Received {
        public: [u8; 32],
        kem: Vec<u8>,
    },
    /// We answered; we switch when the initiator's first new-generation record arrives.
    Responded {
        init_public: [u8; 32],
        response: Vec<u8>,
        resend: bool,
        root: Secret<32>,
        send: Secret<32>,
    },
}

/// A session over an unreliable, reordering transport (see the module docs).
pub struct DatagramSession {
    info: SessionInfo,
    policy: RekeyPolicy,
    limits: AeadLimits,
    send: SendKey,
    recv: RecvKey,
    prev: Option<RecvKey>,
    /// The receiving secret of the peer's next generation, once known.
    next_gen: Option<Secret<32>>,
    root: Option<Secret<32>>,
    root_generation: u32,
    ratchet: DgRatchet,
    finish_pending: bool,
    ratchet_interval: Option<Duration>,
    last_ratchet: Duration,
    ratchets: u64,
    hybrid: bool,
    now: Duration,
    sent_close: bool,
    received_close: bool,
    failed: bool,
    /// Whether the record being opened has authenticated.
    authenticated: bool,
}

impl std::fmt::Debug for DatagramSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramSession")
            .field("info", &self.info)
            .field("send_epoch", &self.send.epoch)
            .field("recv_epoch", &self.recv.epoch)
            .finish_non_exhaustive()
    }
}

fn recv_key(info: &SessionInfo, secret: Secret<32>, epoch: Epoch) -> RecvKey {
    RecvKey {
        key: AeadKey::new(info.aead, schedule::record_key(&secret).expose()),
        secret: Some(secret),
        epoch,
        window: ReplayWindow::new(),
        records: 0,
        bytes: 0,
        forgeries: 0,
    }
}

impl DatagramSession {
    /// Takes over a finished handshake's secrets. Datagram records are
    /// always typed and under derived record keys, whatever the protocol
    /// (Noise itself has no datagram mode to be compatible with).
    pub fn new(established: Established, config: SessionConfig) -> Result<Self, Error> {
        let info = super::session_info(&established);
        let policy = config.policy_for(super::RecordMode::Akex, info.aead);
        policy.validate(false)?;
        let limits = check_limits(info.aead, config.limits)?;
        let send_secret = established.sending_secret().secret().clone();
        let recv_secret = established.receiving_secret().secret().clone();
        Ok(DatagramSession {
            policy,
            limits,
            send: SendKey {
                key: AeadKey::new(info.aead, schedule::record_key(&send_secret).expose()),
                secret: send_secret,
                epoch: Epoch::default(),
                counter: 0,
                bytes: 0,
                since: Duration::ZERO,
            },
            recv: recv_key(&info, recv_secret, Epoch::default()),
            prev: None,
            next_gen: None,
            root: established.root_secret().map(|r| r.secret().clone()),
            root_generation: 0,
            ratchet: DgRatchet::Idle,
            finish_pending: false,
            ratchet_interval: config.ratchet_interval,
            last_ratchet: Duration::ZERO,
            ratchets: 0,
            hybrid: config.hybrid_ratchet,
            now: Duration::ZERO,
            sent_close: false,
            received_close: false,
            failed: false,
            authenticated: false,
            info,
        })
    }

    /// The handshake's public facts.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }
    /// Our sending epoch.
    pub fn send_epoch(&self) -> Epoch {
        self.send.epoch
    }
    /// The peer's sending epoch as far as we have seen.
    pub fn recv_epoch(&self) -> Epoch {
        self.recv.epoch
    }
    /// Completed ratchet steps on our side.
    pub fn ratchet_count(&self) -> u64 {
        self.ratchets
    }
    /// True while a ratchet step is in progress on our side.
    pub fn ratchet_in_progress(&self) -> bool {
        !matches!(self.ratchet, DgRatchet::Idle)
    }
    /// True once closed (by either side) or failed.
    pub fn is_closed(&self) -> bool {
        self.sent_close || self.received_close || self.failed
    }
    /// True once the peer's authenticated close arrived.
    pub fn peer_closed(&self) -> bool {
        self.received_close
    }
    /// True once a fatal error closed the session.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Moves our sending direction to the next epoch (the header tells the
    /// peer; no record is needed).
    pub fn key_update(&mut self) {
        let next = schedule::next_traffic_secret(&self.send.secret);
        let epoch = Epoch {
            generation: self.send.epoch.generation,
            update: self.send.epoch.update + 1,
        };
        self.install_send(next, epoch);
    }

    fn install_send(&mut self, secret: Secret<32>, epoch: Epoch) {
        self.send = SendKey {
            key: AeadKey::new(self.info.aead, schedule::record_key(&secret).expose()),
            secret,
            epoch,
            counter: 0,
            bytes: 0,
            since: self.now,
        };
    }

    /// Seals a data record.
    pub fn seal(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.seal_typed(RecordType::Data, payload, out)
    }

    /// Seals an authenticated close.
    pub fn seal_close(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.seal_typed(RecordType::Close, &[], out)
    }

    fn seal_typed(
        &mut self,
        ty: RecordType,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.sent_close || self.failed {
            return Err(ApiMisuse::SessionClosed.into());
        }
        if payload.len() > MAX_DATAGRAM_PAYLOAD {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        let reserve = if ty == RecordType::Data { 8 } else { 0 };
        if self.send.counter == u64::MAX {
            return Err(LimitReached::NonceExhausted.into());
        }
        if !self.limits.allows(
            self.send.counter.saturating_add(reserve),
            self.send.bytes,
            payload.len(),
        ) {
            return Err(LimitReached::AeadUsageLimit.into());
        }
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&self.send.epoch.generation.to_be_bytes());
        header[4..8].copy_from_slice(&self.send.epoch.update.to_be_bytes());
        header[8..16].copy_from_slice(&self.send.counter.to_be_bytes());
        out.reserve(HEADER_LEN + 1 + payload.len() + TAG_LEN);
        out.extend_from_slice(&header);
        let body = out.len();
        out.push(ty as u8);
        out.extend_from_slice(payload);
        self.send
            .key
            .seal_in_place(self.send.counter, &header, &mut super::Tail(out, body));
        self.send.counter += 1;
        self.send.bytes += payload.len() as u64;
        if ty == RecordType::Close {
            self.sent_close = true;
        }
        Ok(())
    }

    /// Starts a ratchet step; `false` if one is already in progress.
    pub fn start_ratchet(
        &mut self,
        rng: &mut dyn crate::crypto::RandomSource,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        if self.root.is_none() {
            return Err(ApiMisuse::NoRootSecret.into());
        }
        if !matches!(self.ratchet, DgRatchet::Idle) || self.finish_pending {
            return Ok(false);
        }
        let (inner, state) = record::start(rng, self.hybrid);
        let record::RatchetState::Initiated { private, kem } = state else {
            unreachable!("record::start returns Initiated")
        };
        let mut body = (self.root_generation + 1).to_be_bytes().to_vec();
        body.extend_from_slice(&inner);
        self.seal_typed(RecordType::Ratchet, &body, out)?;
        self.ratchet = DgRatchet::Initiated {
            private,
            kem,
            body,
            next_send: self.now + RATCHET_RTO,
            rto: RATCHET_RTO,
        };
        Ok(true)
    }

    /// Seals the next control record due at `now`, if any: a ratchet
    /// response (or its retransmission), a finish, a retransmitted init, or
    /// an init the ratchet interval asks for. Key updates the policy asks
    /// for happen here too (they need no record). Call it in a loop.
    pub fn poll_control(
        &mut self,
        now: Duration,
        rng: &mut dyn crate::crypto::RandomSource,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        if self.is_closed() {
            return Ok(false);
        }
        self.now = self.now.max(now);
        if self.policy.due(
            self.send.counter,
            self.send.bytes,
            self.send.since,
            self.now,
        ) {
            self.key_update();
        }
        match std::mem::replace(&mut self.ratchet, DgRatchet::Idle) {
            DgRatchet::Received { public, kem } => {
                let root = self.root.as_ref().expect("checked when the init arrived");
                let init = record::RatchetMessage {
                    step: record::STEP_INIT,
                    public: &public,
                    kem: &kem,
                };
                let (inner, keys) = match record::respond(rng, root, &init, self.hybrid) {
                    Ok(r) => r,
                    Err(e) => {
                        self.failed = true;
                        return Err(e);
                    }
                };
                let (root, send, recv) = record::directional(self.info.role, keys);
                let mut response = (self.root_generation + 1).to_be_bytes().to_vec();
                response.extend_from_slice(&inner);
                self.next_gen = Some(recv);
                self.seal_typed(RecordType::Ratchet, &response, out)?;
                self.ratchet = DgRatchet::Responded {
                    init_public: public,
                    response,
                    resend: false,
                    root,
                    send,
                };
                return Ok(true);
            }
            DgRatchet::Responded {
                init_public,
                response,
                resend: true,
                root,
                send,
            } => {
                self.seal_typed(RecordType::Ratchet, &response, out)?;
                self.ratchet = DgRatchet::Responded {
                    init_public,
                    response,
                    resend: false,
                    root,
                    send,
                };
                return Ok(true);
            }
            DgRatchet::Initiated {
                private,
                kem,
                body,
                next_send,
                rto,
            } if self.now >= next_send => {
                self.seal_typed(RecordType::Ratchet, &body, out)?;
                let rto = (rto * 2).min(Duration::from_secs(8));
                self.ratchet = DgRatchet::Initiated {
                    private,
                    kem,
                    body,
                    next_send: self.now + rto,
                    rto,
                };
                return Ok(true);
            }
            other => self.ratchet = other,
        }
        if self.finish_pending {
            self.finish_pending = false;
            let mut body = self.root_generation.to_be_bytes().to_vec();
            body.push(record::STEP_FINISH);
            self.seal_typed(RecordType::Ratchet, &body, out)?;
            return Ok(true);
        }
        if let (Some(interval), Some(_), DgRatchet::Idle) =
            (self.ratchet_interval, &self.root, &self.ratchet)
        {
            if self.now.saturating_sub(self.last_ratchet) >= interval {
                return self.start_ratchet(rng, out);
            }
        }
        Ok(false)
    }

    /// Opens one datagram record; data is appended to `out`.
    ///
    /// Errors before the record authenticated (`DecryptFailed`,
    /// `Replayed`, `TooOld`, `BadMessageLength`, `UnexpectedMessage` for an
    /// epoch we have no key for) mean "drop this datagram"; the session
    /// stays usable. A usage limit or any error about an authenticated
    /// record (unknown type, bad ratchet key, unexpected ratchet step)
    /// closes it ([`DatagramSession::has_failed`]).
    pub fn open(&mut self, datagram: &[u8], out: &mut Vec<u8>) -> Result<Record, Error> {
        let mut buf = datagram.to_vec();
        let record = self.open_in_place(&mut buf)?;
        if let Record::Data(len) = record {
            out.extend_from_slice(&buf[HEADER_LEN + 1..HEADER_LEN + 1 + len]);
        }
        Ok(record)
    }

    /// Opens one datagram record in place (no copy): for
    /// [`Record::Data`]`(len)` the data is
    /// `datagram[HEADER_LEN + 1..HEADER_LEN + 1 + len]`. Errors as for
    /// [`DatagramSession::open`].
    pub fn open_in_place(&mut self, datagram: &mut [u8]) -> Result<Record, Error> {
        if self.failed {
            return Err(ApiMisuse::SessionClosed.into());
        }
        self.authenticated = false;
        let result = self.open_inner(datagram);
        if let Err(e) = &result {
            // Before authentication a failure says nothing about the peer
            // (anyone can send a datagram): drop it. After, it is the peer's.
            if self.authenticated || matches!(e, Error::Limit(_)) {
                self.failed = true;
            }
        }
        result
    }

    fn open_inner(&mut self, datagram: &mut [u8]) -> Result<Record, Error> {
        if datagram.len() < HEADER_LEN + 1 + TAG_LEN || datagram.len() > MAX_MESSAGE_LEN {
            return Err(PeerMisbehaved::BadMessageLength.into());
        }
        let (header, ciphertext) = datagram.split_at_mut(HEADER_LEN);
        let header: &[u8] = header;
        let epoch = Epoch {
            generation: u32::from_be_bytes(header[0..4].try_into().expect("4 bytes")),
            update: u32::from_be_bytes(header[4..8].try_into().expect("4 bytes")),
        };
        let counter = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));

        // Which key: current, previous, or a candidate for a later epoch.
        enum Slot {
            Current,
            Previous,
            Next(Box<RecvKey>, bool),
        }
        let slot = if epoch == self.recv.epoch {
            Slot::Current
        } else if self.prev.as_ref().is_some_and(|p| p.epoch == epoch) {
            Slot::Previous
        } else if epoch.generation == self.recv.epoch.generation
            && epoch.update > self.recv.epoch.update
            && epoch.update - self.recv.epoch.update <= MAX_SKIP
        {
            let base = self
                .recv
                .secret
                .as_ref()
                .expect("current key keeps its secret");
            let secret = forward(base, epoch.update - self.recv.epoch.update);
            Slot::Next(Box::new(recv_key(&self.info, secret, epoch)), false)
        } else if epoch.generation == self.recv.epoch.generation.wrapping_add(1)
            && epoch.update <= MAX_SKIP
            && self.next_gen.is_some()
        {
            let base = self.next_gen.as_ref().expect("checked");
            let secret = forward(base, epoch.update);
            Slot::Next(Box::new(recv_key(&self.info, secret, epoch)), true)
        } else {
            return Err(PeerMisbehaved::UnexpectedMessage.into());
        };
        let key = match &slot {
            Slot::Current => &self.recv,
            Slot::Previous => self.prev.as_ref().expect("checked"),
            Slot::Next(k, _) => k,
        };
        match key.window.check(counter) {
            ReplayCheck::Fresh => {}
            ReplayCheck::Replayed => return Err(PeerMisbehaved::Replayed.into()),
            ReplayCheck::TooOld => return Err(PeerMisbehaved::TooOld.into()),
        }
        if !self
            .limits
            .allows(key.records, key.bytes, ciphertext.len() - TAG_LEN - 1)
        {
            return Err(LimitReached::PeerExceededLimit.into());
        }
        let opened = key.key.open_in_place(counter, header, ciphertext);
        let buf: &[u8] = ciphertext;
        let n = match opened {
            Ok(n) => n,
            Err(e) => {
                let max = self.limits.max_forgeries;
                let forgeries = match slot {
                    Slot::Current => &mut self.recv.forgeries,
                    Slot::Previous => &mut self.prev.as_mut().expect("checked").forgeries,
                    Slot::Next(..) => return Err(e),
                };
                *forgeries += 1;
                if *forgeries >= max {
                    return Err(LimitReached::PeerExceededLimit.into());
                }
                return Err(e);
            }
        };
        // Authenticated: commit.
        self.authenticated = true;
        let key = match slot {
            Slot::Current => &mut self.recv,
            Slot::Previous => self.prev.as_mut().expect("checked"),
            Slot::Next(key, new_generation) => {
                let mut old = std::mem::replace(&mut self.recv, *key);
                old.secret = None; // the previous epoch only decrypts now
                self.prev = Some(old);
                if new_generation {
                    self.next_gen = None;
                    self.peer_switched_generation();
                }
                &mut self.recv
            }
        };
        key.window.accept(counter);
        key.records += 1;
        key.bytes += (n - 1) as u64;
        let ty = RecordType::from_byte(buf[0])?;
        let body = &buf[1..n];
        match ty {
            RecordType::Data => Ok(Record::Data(body.len())),
            RecordType::KeyUpdate => Ok(Record::KeyUpdate),
            RecordType::Close => {
                self.received_close = true;
                Ok(Record::Close)
            }
            RecordType::Ratchet => {
                self.handle_ratchet(body)?;
                Ok(Record::Ratchet)
            }
        }
    }

    /// The peer's first record of its next generation: as the responder of
    /// a ratchet step, commit the root and switch our sending key now.
    fn peer_switched_generation(&mut self) {
        if !matches!(self.ratchet, DgRatchet::Responded { .. }) {
            return;
        }
        if let DgRatchet::Responded { root, send, .. } =
            std::mem::replace(&mut self.ratchet, DgRatchet::Idle)
        {
            self.root = Some(root);
            self.root_generation += 1;
            let epoch = Epoch {
                generation: self.root_generation,
                update: 0,
            };
            self.install_send(send, epoch);
            self.ratchets += 1;
            self.last_ratchet = self.now;
        }
    }

    fn handle_ratchet(&mut self, body: &[u8]) -> Result<(), Error> {
        if body.len() < 4 {
            return Err(PeerMisbehaved::MalformedRecord.into());
        }
        let generation = u32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
        let message = record::parse_ratchet(&body[4..])?;
        let target = self.root_generation.wrapping_add(1);
        match message.step {
            record::STEP_INIT => {
                if self.root.is_none() {
                    return Err(PeerMisbehaved::UnexpectedMessage.into());
                }
                if generation != target {
                    return Ok(()); // stale or duplicate of a finished step
                }
                match &mut self.ratchet {
                    DgRatchet::Initiated { .. } if self.info.role == Role::Initiator => {
                        return Ok(())
                    }
                    DgRatchet::Responded {
                        init_public,
                        resend,
                        ..
                    } => {
                        if init_public[..] == *message.public {
                            *resend = true;
                            return Ok(());
                        }
                        // The peer abandoned the step we answered; start over.
                        self.next_gen = None;
                    }
                    DgRatchet::Received { public, .. } if public[..] == *message.public => {
                        return Ok(())
                    }
                    _ => {}
                }
                check_ratchet_public(message.public)?;
                if !message.kem.is_empty() {
                    kem::check_encapsulation_key(message.kem)?;
                } else if self.hybrid {
                    return Err(PeerMisbehaved::MalformedRecord.into());
                }
                let mut public = [0u8; 32];
                public.copy_from_slice(message.public);
                self.ratchet = DgRatchet::Received {
                    public,
                    kem: message.kem.to_vec(),
                };
                Ok(())
            }
            record::STEP_RESPONSE => {
                if generation != target {
                    return Ok(()); // a duplicate of a response already used
                }
                let DgRatchet::Initiated { private, kem, .. } =
                    std::mem::replace(&mut self.ratchet, DgRatchet::Idle)
                else {
                    return Ok(());
                };
                let root = self.root.as_ref().expect("initiated only with a root");
                let keys = record::complete(root, &private, kem.as_deref(), &message)?;
                let (root, send, recv) = record::directional(self.info.role, keys);
                self.root = Some(root);
                self.root_generation = target;
                self.next_gen = Some(recv);
                self.install_send(
                    send,
                    Epoch {
                        generation: target,
                        update: 0,
                    },
                );
                self.finish_pending = true;
                self.ratchets += 1;
                self.last_ratchet = self.now;
                Ok(())
            }
            // A finish only confirms; its arrival at the new generation
            // already switched us over.
            _ => Ok(()),
        }
    }
}

fn forward(base: &Secret<32>, steps: u32) -> Secret<32> {
    let mut s = base.clone();
    for _ in 0..steps {
        s = schedule::next_traffic_secret(&s);
    }
    s
}
