//! Datagram mode: explicit epochs and counters, a replay window, keys for
//! the current and (for a grace period) the previous epoch.
//!
//! Every datagram record is
//!
//! ```text
//! generation u32 BE || update u32 BE || counter u64 BE || AEAD(type || body)
//! ```
//!
//! with the 16-byte header as the AEAD's associated data and the counter as
//! the nonce (Noise nonce layout). The **epoch** of a direction is the pair
//! (generation, update): a key update moves to (g, u + 1) with the key
//! schedule's `"akex key update"` step (no record needed: the header says
//! it); a DH ratchet step moves to (g + 1, 0). Key schedule, epochs and the
//! ratchet are the ones stream sessions use (`schedule`, `epoch`,
//! `ratchet`).
//!
//! The receiver keeps the current epoch's key and, for
//! [`SessionConfig::previous_epoch_grace`] after moving on, the previous
//! one (each with its own replay window), so records in flight across a
//! key change still decrypt; then the previous key is erased. It moves
//! forward on the first record that authenticates under a later epoch's key
//! (up to [`MAX_SKIP`] key updates ahead, or the next generation once a
//! ratchet step made its key known). A sender updates only keys that
//! protected a record, so an idle session never moves ahead of what its
//! peer can follow.
//!
//! Lost, replayed, too old or forged datagrams are dropped with a
//! non-fatal error ([`DatagramSession::is_closed`] stays false). Every
//! failed decryption, under any epoch (current, previous or a trial of a
//! later one), counts toward the session's `max_forgeries`; reaching it
//! closes the session, as do an authenticated record of unknown type, a
//! bad ratchet record and a peer past the usage limit.

use std::time::Duration;

use crate::crypto::{AeadKey, RandomSource, TAG_LEN};
use crate::error::{ApiMisuse, ConfigError, Error, LimitReached, PeerMisbehaved};
use crate::handshake::{Established, MAX_MESSAGE_LEN};

pub use super::epoch::Epoch;
use super::epoch::{TrafficKey, Usage};
use super::policy::{AeadLimits, RekeyPolicy};
pub use super::ratchet::RATCHET_RTO;
use super::ratchet::{Ratchet, RatchetSetup, Switch};
use super::record::{self, ControlType, Record, RecordType, CONTROL_HEADER_LEN};
use super::replay::{ReplayCheck, ReplayWindow};
use super::{
    check_limits, session_info, SessionConfig, SessionInfo, Tail, CONTROL_RESERVE,
    DEFAULT_PREVIOUS_EPOCH_GRACE,
};

/// Header length: generation, update, counter.
pub const HEADER_LEN: usize = 16;
/// Bytes a datagram record adds to its payload (header, type byte, tag).
pub const OVERHEAD: usize = HEADER_LEN + 1 + TAG_LEN;
/// Largest payload in one datagram record.
pub const MAX_DATAGRAM_PAYLOAD: usize = MAX_MESSAGE_LEN - OVERHEAD;
/// How many key updates ahead of the current epoch a record may be.
pub const MAX_SKIP: u32 = 8;
/// Longest configurable grace period for the previous epoch's key.
pub const MAX_PREVIOUS_EPOCH_GRACE: Duration = Duration::from_secs(60);

struct SendKey {
    traffic: TrafficKey,
    key: AeadKey,
    counter: u64,
    usage: Usage,
}

struct RecvKey {
    key: AeadKey,
    /// Kept for the current epoch only (to derive later ones).
    traffic: Option<TrafficKey>,
    epoch: Epoch,
    window: ReplayWindow,
    usage: Usage,
}

impl RecvKey {
    fn new(info: &SessionInfo, traffic: TrafficKey) -> Self {
        RecvKey {
            key: traffic.aead_key(info.aead),
            epoch: traffic.epoch(),
            traffic: Some(traffic),
            window: ReplayWindow::new(),
            usage: Usage::default(),
        }
    }
}

/// Which key a record is tried with.
enum Slot {
    Current,
    Previous,
    /// A later epoch's key; `true` when it starts the peer's next generation.
    Next(Box<RecvKey>, bool),
}

/// A session over an unreliable, reordering transport (see the module docs).
pub struct DatagramSession {
    info: SessionInfo,
    policy: RekeyPolicy,
    limits: AeadLimits,
    grace: Duration,
    send: SendKey,
    recv: RecvKey,
    /// The previous epoch's key and when it stops being accepted.
    prev: Option<(RecvKey, Duration)>,
    ratchet: Ratchet,
    forgeries: u64,
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
            .field("send_epoch", &self.send.traffic.epoch())
            .field("recv_epoch", &self.recv.epoch)
            .field("forgeries", &self.forgeries)
            .finish_non_exhaustive()
    }
}

impl DatagramSession {
    /// Takes over a finished handshake's secrets. Datagram records are
    /// always typed and under derived record keys, whatever the protocol
    /// (Noise itself has no datagram mode to be compatible with).
    pub fn new(established: Established, config: SessionConfig) -> Result<Self, Error> {
        let info = session_info(&established);
        let policy = config.policy_for(super::RecordMode::Akex, info.aead);
        policy.validate(false)?;
        let limits = check_limits(info.aead, config.limits)?;
        let grace = config
            .previous_epoch_grace
            .unwrap_or(DEFAULT_PREVIOUS_EPOCH_GRACE);
        if grace > MAX_PREVIOUS_EPOCH_GRACE {
            return Err(ConfigError::Invalid(format!(
                "the previous epoch's grace period may be at most {MAX_PREVIOUS_EPOCH_GRACE:?}"
            ))
            .into());
        }
        let send = TrafficKey::new(
            established.sending_secret().secret().clone(),
            Epoch::default(),
        );
        let recv = TrafficKey::new(
            established.receiving_secret().secret().clone(),
            Epoch::default(),
        );
        let ratchet = Ratchet::new(RatchetSetup {
            root: established.root_secret().map(|r| r.secret().clone()),
            role: info.role,
            hybrid: config.hybrid_ratchet,
            auth: established.ratchet_auth.clone(),
            handshake_hash: info.handshake_hash.clone(),
            interval: config.ratchet_interval,
            datagram: true,
        });
        Ok(DatagramSession {
            policy,
            limits,
            grace,
            send: SendKey {
                key: send.aead_key(info.aead),
                traffic: send,
                counter: 0,
                usage: Usage::default(),
            },
            recv: RecvKey::new(&info, recv),
            prev: None,
            ratchet,
            forgeries: 0,
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
        self.send.traffic.epoch()
    }
    /// The peer's sending epoch as far as we have seen.
    pub fn recv_epoch(&self) -> Epoch {
        self.recv.epoch
    }
    /// Completed ratchet steps on our side.
    pub fn ratchet_count(&self) -> u64 {
        u64::from(self.ratchet.generation())
    }
    /// True while a ratchet step is in progress on our side.
    pub fn ratchet_in_progress(&self) -> bool {
        self.ratchet.in_progress()
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
    /// Failed decryptions so far, under every epoch.
    pub fn forgeries(&self) -> u64 {
        self.forgeries
    }
    /// True while the previous epoch's key is still accepted.
    pub fn previous_epoch_accepted(&self) -> bool {
        self.prev.is_some()
    }

    /// Tells the session the time (a duration since it started; it never
    /// goes back). The previous epoch's key expires by it: call it before
    /// opening records. [`DatagramSession::poll_control`] sets it too.
    pub fn set_time(&mut self, now: Duration) {
        self.now = self.now.max(now);
        if self
            .prev
            .as_ref()
            .is_some_and(|(_, until)| self.now >= *until)
        {
            self.prev = None; // erased: its AEAD key drops here
        }
    }

    /// Moves our sending direction to the next epoch at once (the header
    /// tells the peer; no record is needed). The peer follows at most
    /// [`MAX_SKIP`] updates whose records were all lost.
    pub fn key_update(&mut self) {
        let next = self.send.traffic.next_update();
        self.install_send(next);
    }

    fn install_send(&mut self, traffic: TrafficKey) {
        self.send = SendKey {
            key: traffic.aead_key(self.info.aead),
            traffic,
            counter: 0,
            usage: Usage::starting(self.now),
        };
    }

    /// Seals a data record.
    pub fn seal(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.seal_typed(RecordType::Data, &[payload], out)
    }

    /// Seals a control record (`type ‖ payload`; the peer reports it as
    /// [`Record::Control`], never as data).
    pub fn seal_control(
        &mut self,
        ty: ControlType,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.seal_typed(
            RecordType::Control,
            &[&ty.code().to_be_bytes(), payload],
            out,
        )
    }

    /// Seals an authenticated close.
    pub fn seal_close(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.seal_typed(RecordType::Close, &[], out)
    }

    fn seal_typed(
        &mut self,
        ty: RecordType,
        parts: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.sent_close || self.failed {
            return Err(ApiMisuse::SessionClosed.into());
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_DATAGRAM_PAYLOAD {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        let reserve = if ty == RecordType::Data {
            CONTROL_RESERVE
        } else {
            0
        };
        if self.send.counter == u64::MAX {
            return Err(LimitReached::NonceExhausted.into());
        }
        if !self.limits.allows(
            self.send.counter.saturating_add(reserve),
            self.send.usage.bytes,
            len,
        ) {
            return Err(LimitReached::AeadUsageLimit.into());
        }
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(&self.send.traffic.epoch().to_bytes());
        header[8..].copy_from_slice(&self.send.counter.to_be_bytes());
        out.reserve(HEADER_LEN + 1 + len + TAG_LEN);
        out.extend_from_slice(&header);
        let body = out.len();
        out.push(ty as u8);
        for part in parts {
            out.extend_from_slice(part);
        }
        self.send
            .key
            .seal_in_place(self.send.counter, &header, &mut Tail(out, body));
        self.send.counter += 1;
        self.send.usage.add(len);
        if ty == RecordType::Close {
            self.sent_close = true;
        }
        Ok(())
    }

    /// Starts a ratchet step; `false` if one is already in progress.
    pub fn start_ratchet(
        &mut self,
        rng: &mut dyn RandomSource,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        if self.sent_close || self.failed {
            return Err(ApiMisuse::SessionClosed.into());
        }
        match self.ratchet.start(rng, self.now)? {
            Some(body) => {
                self.seal_typed(RecordType::Ratchet, &[&body], out)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Seals the next control record due at `now`, if any: a ratchet
    /// response (or its retransmission), a finish, a retransmitted init, or
    /// an init the ratchet interval asks for. Key updates the policy asks
    /// for happen here too (they need no record), and an expired previous
    /// epoch's key is erased. Call it in a loop.
    pub fn poll_control(
        &mut self,
        now: Duration,
        rng: &mut dyn RandomSource,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        if self.is_closed() {
            return Ok(false);
        }
        self.set_time(now);
        if self.send.usage.update_due(&self.policy, self.now) {
            self.key_update();
        }
        let switch = match self.ratchet.poll(rng, self.now) {
            Ok(s) => s,
            Err(e) => {
                self.failed = true;
                return Err(e);
            }
        };
        self.apply(switch, out)
    }

    /// Installs what a ratchet event switches to and seals what it emits
    /// (in datagram mode a new sending key is used at once, so a finish
    /// goes out in the new generation).
    fn apply(&mut self, switch: Switch, out: &mut Vec<u8>) -> Result<bool, Error> {
        if let Some(send) = switch.send {
            let generation = self.ratchet.generation();
            self.install_send(TrafficKey::new(
                send,
                Epoch {
                    generation,
                    update: 0,
                },
            ));
        }
        match switch.emit {
            Some(body) => {
                self.seal_typed(RecordType::Ratchet, &[&body], out)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Opens one datagram record; data is appended to `out` (control
    /// payloads are not: use [`DatagramSession::open_in_place`]).
    ///
    /// Errors before the record authenticated (`DecryptFailed`,
    /// `Replayed`, `TooOld`, `BadMessageLength`, `UnexpectedMessage` for an
    /// epoch we have no key for) mean "drop this datagram"; the session
    /// stays usable. A usage or forgery limit, or any error about an
    /// authenticated record (unknown type, bad ratchet record) closes it
    /// ([`DatagramSession::has_failed`]).
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
    /// `datagram[HEADER_LEN + 1..HEADER_LEN + 1 + len]`, for
    /// [`Record::Control`]`(_, len)` the payload starts at
    /// `HEADER_LEN + 3`. Errors as for [`DatagramSession::open`].
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

    /// The key a record of `epoch` is tried with, if any.
    fn slot(&self, epoch: Epoch) -> Option<Slot> {
        let current = self.recv.epoch;
        if epoch == current {
            return Some(Slot::Current);
        }
        if self.prev.as_ref().is_some_and(|(p, _)| p.epoch == epoch) {
            return Some(Slot::Previous);
        }
        let ahead = epoch.update.wrapping_sub(current.update);
        if epoch.generation == current.generation
            && epoch.update > current.update
            && ahead <= MAX_SKIP
        {
            let base = self.recv.traffic.as_ref()?;
            let key = RecvKey::new(&self.info, base.forward(ahead));
            return Some(Slot::Next(Box::new(key), false));
        }
        if epoch.generation == current.generation.wrapping_add(1) && epoch.update <= MAX_SKIP {
            let base = TrafficKey::new(
                self.ratchet.peer_next_generation()?.clone(),
                Epoch {
                    generation: epoch.generation,
                    update: 0,
                },
            );
            let key = RecvKey::new(&self.info, base.forward(epoch.update));
            return Some(Slot::Next(Box::new(key), true));
        }
        None
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
        self.set_time(self.now);
        let slot = self
            .slot(epoch)
            .ok_or(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage))?;
        let key = match &slot {
            Slot::Current => &self.recv,
            Slot::Previous => &self.prev.as_ref().expect("checked").0,
            Slot::Next(k, _) => k,
        };
        match key.window.check(counter) {
            ReplayCheck::Fresh => {}
            ReplayCheck::Replayed => return Err(PeerMisbehaved::Replayed.into()),
            ReplayCheck::TooOld => return Err(PeerMisbehaved::TooOld.into()),
        }
        if !self.limits.allows(
            key.usage.records,
            key.usage.bytes,
            ciphertext.len() - TAG_LEN - 1,
        ) {
            return Err(LimitReached::PeerExceededLimit.into());
        }
        let n = match key.key.open_in_place(counter, header, ciphertext) {
            Ok(n) => n,
            Err(e) => {
                // Every failed decryption counts, whichever epoch it tried.
                self.forgeries += 1;
                if self.forgeries >= self.limits.max_forgeries {
                    return Err(LimitReached::PeerExceededLimit.into());
                }
                return Err(e);
            }
        };
        // Authenticated: commit.
        self.authenticated = true;
        let buf: &[u8] = ciphertext;
        let key = match slot {
            Slot::Current => &mut self.recv,
            Slot::Previous => &mut self.prev.as_mut().expect("checked").0,
            Slot::Next(key, new_generation) => {
                let mut old = std::mem::replace(&mut self.recv, *key);
                old.traffic = None; // the previous epoch only decrypts now
                self.prev = Some((old, self.now + self.grace));
                if new_generation {
                    if let Some(send) = self.ratchet.peer_switched(self.now) {
                        let generation = self.ratchet.generation();
                        self.install_send(TrafficKey::new(
                            send,
                            Epoch {
                                generation,
                                update: 0,
                            },
                        ));
                    }
                }
                &mut self.recv
            }
        };
        key.window.accept(counter);
        key.usage.add(n - 1);
        let ty = RecordType::from_byte(buf[0])?;
        let body = &buf[1..n];
        match ty {
            RecordType::Data => Ok(Record::Data(body.len())),
            RecordType::Control => {
                let (ty, payload) = record::parse_control(body)?;
                debug_assert_eq!(payload.len() + CONTROL_HEADER_LEN, body.len());
                Ok(Record::Control(ty, payload.len()))
            }
            RecordType::KeyUpdate => Ok(Record::KeyUpdate),
            RecordType::Close => {
                self.received_close = true;
                Ok(Record::Close)
            }
            RecordType::Ratchet => {
                let switch = self.ratchet.receive(body, self.now)?;
                // The finish goes out at the next poll, in the new generation.
                self.apply(switch, &mut Vec::new())?;
                Ok(Record::Ratchet)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{AeadAlgorithm, Secret};
    use crate::handshake::{Role, TrafficSecret};

    /// When the receiver moves on, the old epoch's traffic secret is
    /// dropped at once; only its AEAD key stays, for the grace period.
    #[test]
    fn the_previous_epoch_keeps_its_key_but_not_its_secret() {
        let e = |role| {
            let s = |b| TrafficSecret::wrap(Secret::new([b; 32]));
            let name = "akex-datagram-unit".to_string();
            Established::assemble(
                name,
                role,
                vec![0; 32],
                None,
                AeadAlgorithm::ChaChaPoly,
                s(1),
                s(2),
            )
        };
        let mut a = DatagramSession::new(e(Role::Initiator), SessionConfig::new()).unwrap();
        let mut b = DatagramSession::new(e(Role::Responder), SessionConfig::new()).unwrap();
        a.key_update();
        let mut w = Vec::new();
        a.seal(b"x", &mut w).unwrap();
        b.open(&w, &mut Vec::new()).unwrap();
        let (prev, _) = b.prev.as_ref().expect("a previous epoch");
        assert!(prev.traffic.is_none());
        assert!(b.recv.traffic.is_some());
    }
}
