//! Fuzz target `session_ops`: a stateful run of two sessions (A, the
//! handshake initiator, and B, the responder) driven by a sequence of
//! operations decoded from the input, checked against a model.
//!
//! The operations are decoded by hand ([`Op::decode`]) rather than with
//! `#[derive(Arbitrary)]`: `tests/fuzz_corpus.rs` compiles this file into
//! the main crate's test, which has no `arbitrary` dependency, and the
//! replay must decode the corpus exactly as libFuzzer did.
//!
//! Input: one selector byte picks the configuration ([`OPS_CONFIGS`]); the
//! rest is a sequence of operations, each a tag byte and its argument bytes
//! (missing bytes read as zero). The model checks:
//!
//! * every record delivered in order, untampered, to a live receiver opens
//!   to exactly what was sealed (data bytes, or the control record's type);
//! * a tampered, replayed, reordered or injected record never opens (and a
//!   datagram never opens twice);
//! * after a failure a Noise-mode receiver keeps its nonce and stays usable;
//!   an akex-mode session is closed for good (every error is final); a
//!   datagram session stays usable after an unauthenticated failure;
//! * `is_closed`, `peer_closed` and `has_failed` agree with the model, and
//!   a closed or failed akex session refuses to seal.

use arbitrary::{Arbitrary, Unstructured};
use std::time::Duration;

use akex::crypto::{AeadAlgorithm, Secret};
use akex::error::{Error, PeerMisbehaved};
use akex::handshake::TrafficSecret;
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::session::datagram::DatagramSession;
use akex::session::{AeadLimits, ControlType, Record, RecordMode, RecordType, SessionConfig};
use akex::{Established, Role, Session};

use super::Progress;

/// Most operations run per input (keeps every datagram counter inside the
/// replay window and each run short).
pub const MAX_OPS: usize = 512;

/// The session configurations; the selector byte picks one (modulo 6).
///
/// | # | layer | AEAD | extras |
/// |---|---|---|---|
/// | 0 | Noise mode | ChaChaPoly | no rekey |
/// | 1 | Noise mode | AESGCM | `REKEY()` every 3 messages |
/// | 2 | akex mode | ChaChaPoly | root secret, ratchet every 60 s |
/// | 3 | akex mode | AESGCM | hybrid ratchet, limits lowered to 12 records |
/// | 4 | datagram | ChaChaPoly | root secret, ratchet every 60 s |
/// | 5 | datagram | AESGCM | hybrid ratchet, 12 records, 4 forgeries |
pub const OPS_CONFIGS: usize = 6;

fn lowered_limits() -> AeadLimits {
    AeadLimits {
        max_records: 12,
        max_bytes: 1 << 20,
        max_forgeries: 4,
    }
}

fn config(index: usize) -> (AeadAlgorithm, SessionConfig, RecordMode) {
    let chacha = AeadAlgorithm::ChaChaPoly;
    let aes = AeadAlgorithm::AesGcm;
    match index {
        0 => (chacha, SessionConfig::new(), RecordMode::Noise),
        1 => (aes, SessionConfig::noise_rekey_every(3), RecordMode::Noise),
        2 | 4 => (
            chacha,
            SessionConfig::new().ratchet_every(Duration::from_secs(60)),
            RecordMode::Akex,
        ),
        _ => (
            aes,
            SessionConfig::new()
                .hybrid_ratchet(true)
                .limits(lowered_limits()),
            RecordMode::Akex,
        ),
    }
}

/// An `Established` with fixed secrets (no handshake needed: the session
/// layer only sees the secrets).
pub(crate) fn fixed_established(
    role: Role,
    aead: AeadAlgorithm,
    root: bool,
    mode: RecordMode,
) -> Established {
    let remote = match role {
        Role::Initiator => akex::PublicKey::x25519([0x52; 32]),
        Role::Responder => akex::PublicKey::x25519([0x49; 32]),
    };
    // The protocol name decides the record mode.
    let name = match mode {
        RecordMode::Noise => "Noise_fuzz_fixed",
        _ => "akex-fuzz-fixed",
    };
    let established = Established::new(
        name.to_string(),
        role,
        HANDSHAKE_HASH.to_vec(),
        Some(remote),
        aead,
        TrafficSecret::new(Secret::new(I2R)),
        TrafficSecret::new(Secret::new(R2I)),
    );
    if root {
        established.with_root_secret(TrafficSecret::new(Secret::new(ROOT)))
    } else {
        established
    }
}

/// The fixed initiator-to-responder traffic secret.
pub(crate) const I2R: [u8; 32] = [0x11; 32];
/// The fixed responder-to-initiator traffic secret.
pub(crate) const R2I: [u8; 32] = [0x22; 32];
/// The fixed root secret of the akex-mode sessions.
pub(crate) const ROOT: [u8; 32] = [0x33; 32];
/// The fixed handshake hash (the ratchet's transcript starts with it).
pub(crate) const HANDSHAKE_HASH: [u8; 32] = [0x48; 32];

/// Deterministic randomness for one call: 256 bytes that depend on `n`.
pub(crate) fn rng_bytes(n: u32) -> Vec<u8> {
    (0..256u32)
        .map(|i| (i.wrapping_mul(29) ^ n.wrapping_mul(0x9e37_79b9).rotate_left(i % 32)) as u8)
        .collect()
}

/// One side of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The handshake initiator.
    A,
    /// The handshake responder.
    B,
}

impl Side {
    fn from_bit(b: u8) -> Self {
        if b & 1 == 0 {
            Side::A
        } else {
            Side::B
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    fn peer(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// One operation. Each is a tag byte (modulo 10) followed by its arguments;
/// `side`/`to`/`from` is the low bit of the first argument byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `from` seals a data record of `len` bytes (arg: `len` byte `b`;
    /// below 0x80 it is the length, else `(b & 0x7f) * 521`, up to past the
    /// largest record).
    Seal { from: Side, len: usize },
    /// The next record in flight to `to` is delivered in order.
    Deliver { to: Side },
    /// A copy of record `index` (modulo the records sent to `to` so far)
    /// is delivered: reordered, replayed or duplicated.
    Inject { to: Side, index: u8 },
    /// A copy of the next record in flight to `to`, byte `pos` (modulo its
    /// length) xored with `xor | 1`, is delivered; the original stays.
    Tamper { to: Side, pos: u8, xor: u8 },
    /// The next record in flight to `to` is lost.
    Drop { to: Side },
    /// `from` rekeys its sending direction: Noise `REKEY()` (the peer
    /// applies it at the same point of the stream), an akex key update
    /// record, or a datagram key update.
    Rekey { from: Side },
    /// `from` starts a DH ratchet step (akex mode and datagrams).
    Ratchet { from: Side },
    /// `side`'s clock moves `secs` seconds on, then it seals the control
    /// records due (ratchet replies, key updates, retransmissions).
    Poll { side: Side, secs: u8 },
    /// `from` seals an authenticated close.
    Close { from: Side },
    /// `len` raw bytes from the input are delivered to `to` as a record.
    Garbage { to: Side, len: u8 },
    /// `from` seals a control record (a rotation announcement) with a
    /// payload of `len` bytes: akex mode and datagrams; Noise mode refuses.
    Message { from: Side, len: u8 },
}

/// Operations come from the fuzzer's bytes through the `arbitrary` crate:
/// a tag byte and one byte per argument (missing bytes read as zero, as
/// `u8::arbitrary` does), so inputs stay short and [`Op::encode`] can write
/// seeds by hand.
impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let tag = u8::arbitrary(u)?;
        let side = Side::from_bit(u8::arbitrary(u)?);
        Ok(match tag % 11 {
            0 => {
                let b = u8::arbitrary(u)?;
                let len = if b < 0x80 {
                    usize::from(b)
                } else {
                    usize::from(b & 0x7f) * 521
                };
                Op::Seal { from: side, len }
            }
            1 => Op::Deliver { to: side },
            2 => Op::Inject {
                to: side,
                index: u8::arbitrary(u)?,
            },
            3 => Op::Tamper {
                to: side,
                pos: u8::arbitrary(u)?,
                xor: u8::arbitrary(u)?,
            },
            4 => Op::Drop { to: side },
            5 => Op::Rekey { from: side },
            6 => Op::Ratchet { from: side },
            7 => Op::Poll {
                side,
                secs: u8::arbitrary(u)?,
            },
            8 => Op::Close { from: side },
            10 => Op::Message {
                from: side,
                len: u8::arbitrary(u)?,
            },
            _ => Op::Garbage {
                to: side,
                len: u8::arbitrary(u)?,
            },
        })
    }
}

impl Op {
    /// Appends the encoding of this operation to `out`.
    pub fn encode(self, out: &mut Vec<u8>) {
        let bit = |s: Side| s.index() as u8;
        match self {
            Op::Seal { from, len } => {
                let b = if len < 0x80 {
                    len as u8
                } else {
                    0x80 | (len / 521) as u8
                };
                out.extend_from_slice(&[0, bit(from), b]);
            }
            Op::Deliver { to } => out.extend_from_slice(&[1, bit(to)]),
            Op::Inject { to, index } => out.extend_from_slice(&[2, bit(to), index]),
            Op::Tamper { to, pos, xor } => out.extend_from_slice(&[3, bit(to), pos, xor]),
            Op::Drop { to } => out.extend_from_slice(&[4, bit(to)]),
            Op::Rekey { from } => out.extend_from_slice(&[5, bit(from)]),
            Op::Ratchet { from } => out.extend_from_slice(&[6, bit(from)]),
            Op::Poll { side, secs } => out.extend_from_slice(&[7, bit(side), secs]),
            Op::Close { from } => out.extend_from_slice(&[8, bit(from)]),
            Op::Garbage { to, len } => out.extend_from_slice(&[9, bit(to), len]),
            Op::Message { from, len } => out.extend_from_slice(&[10, bit(from), len]),
        }
    }
}

/// What a record in flight must open to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Data(Vec<u8>),
    /// A control record with this payload.
    Message(Vec<u8>),
    /// A key update or ratchet record (from `poll_control`, which does not
    /// say which it sealed) or a key update from `send_key_update`.
    Control,
    Close,
    /// Not a record: Noise `REKEY()` of the receiving key at this point.
    RekeyMarker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In flight.
    Pending,
    /// Delivered in order (stream) or taken off the queue (datagram).
    Consumed,
    /// Lost.
    Dropped,
}

struct Item {
    bytes: Vec<u8>,
    expect: Expect,
    state: State,
    /// Datagrams: opened once already.
    accepted: bool,
}

/// The records sent in one direction.
#[derive(Default)]
struct Flight {
    items: Vec<Item>,
    /// A record was lost: a stream receiver can no longer open anything.
    lost: bool,
}

impl Flight {
    fn next_pending(&self) -> Option<usize> {
        self.items.iter().position(|i| i.state == State::Pending)
    }

    fn push(&mut self, bytes: Vec<u8>, expect: Expect) {
        if self.items.len() < 2 * MAX_OPS {
            self.items.push(Item {
                bytes,
                expect,
                state: State::Pending,
                accepted: false,
            });
        } else {
            // Past the cap a record is not kept: for the model it is lost.
            self.lost = true;
        }
    }
}

enum Peer {
    Stream(Box<Session>),
    Datagram(Box<DatagramSession>),
}

/// The akex-mode state the model expects (stream sessions).
#[derive(Debug, Default, Clone, Copy)]
struct Model {
    failed: bool,
    sent_close: bool,
    received_close: bool,
}

struct Run {
    peers: [Peer; 2],
    /// `flights[i]`: records in flight *to* side `i`.
    flights: [Flight; 2],
    models: [Model; 2],
    now: [Duration; 2],
    mode: RecordMode,
    datagram: bool,
    limited: bool,
    rng_calls: u32,
    seq: u32,
    progress: Progress,
}

fn payload(seq: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq.wrapping_mul(31) as usize + i) as u8)
        .collect()
}

impl Run {
    fn new(index: usize) -> Self {
        let (aead, config, mode) = config(index);
        let datagram = index >= 4;
        let root = mode == RecordMode::Akex;
        let make = |role| {
            let est = fixed_established(role, aead, root, mode);
            if datagram {
                Peer::Datagram(Box::new(
                    DatagramSession::new(est, config.clone()).expect("valid datagram config"),
                ))
            } else {
                Peer::Stream(Box::new(
                    Session::with_config(est, config.clone()).expect("valid config"),
                ))
            }
        };
        Run {
            peers: [make(Role::Initiator), make(Role::Responder)],
            flights: [Flight::default(), Flight::default()],
            models: [Model::default(); 2],
            now: [Duration::ZERO; 2],
            mode,
            datagram,
            limited: config.limits.is_some(),
            rng_calls: 0,
            seq: 0,
            progress: Progress::default(),
        }
    }

    fn rng(&mut self) -> ScriptedRng {
        self.rng_calls += 1;
        ScriptedRng::new(rng_bytes(self.rng_calls))
    }

    fn akex_stream(&self) -> bool {
        !self.datagram && self.mode == RecordMode::Akex
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Seal { from, len } => self.seal(from, len),
            Op::Message { from, len } => self.message(from, usize::from(len)),
            Op::Deliver { to } => self.deliver(to),
            Op::Inject { to, index } => {
                let flight = &self.flights[to.index()];
                // A stream never gets a lost record back (that would be a
                // delay, not a loss); a datagram may.
                let records: Vec<usize> = (0..flight.items.len())
                    .filter(|&i| flight.items[i].expect != Expect::RekeyMarker)
                    .filter(|&i| self.datagram || flight.items[i].state != State::Dropped)
                    .collect();
                if records.is_empty() {
                    return;
                }
                let at = records[usize::from(index) % records.len()];
                // In order only if it is the next pending record with only
                // markers before it: then it is an ordinary delivery.
                let in_order = !self.datagram
                    && flight.items[..at]
                        .iter()
                        .all(|i| i.state != State::Pending || i.expect == Expect::RekeyMarker)
                    && flight.items[at].state == State::Pending;
                if in_order {
                    self.deliver(to);
                } else {
                    let bytes = flight.items[at].bytes.clone();
                    self.open_copy(to, at, bytes, false);
                }
            }
            Op::Tamper { to, pos, xor } => {
                let Some(at) = self.next_record(to) else {
                    return;
                };
                let mut bytes = self.flights[to.index()].items[at].bytes.clone();
                if bytes.is_empty() {
                    return;
                }
                let pos = usize::from(pos) * bytes.len() / 256;
                bytes[pos] ^= xor | 1;
                self.open_copy(to, at, bytes, true);
            }
            Op::Drop { to } => {
                if let Some(at) = self.next_record(to) {
                    let flight = &mut self.flights[to.index()];
                    flight.items[at].state = State::Dropped;
                    flight.lost = true;
                }
            }
            Op::Rekey { from } => self.rekey(from),
            Op::Ratchet { from } => {
                let mut rng = self.rng();
                let mut out = Vec::new();
                let result = match &mut self.peers[from.index()] {
                    Peer::Stream(s) => s.start_ratchet(&mut rng, &mut out),
                    Peer::Datagram(d) => d.start_ratchet(&mut rng, &mut out),
                };
                match result {
                    Ok(true) => self.flights[from.peer().index()].push(out, Expect::Control),
                    Ok(false) => assert!(out.is_empty()),
                    Err(_) => {
                        assert!(out.is_empty());
                        let m = self.models[from.index()];
                        assert!(
                            self.mode == RecordMode::Noise
                                || self.datagram
                                || m.failed
                                || m.sent_close
                                || self.limited(),
                            "start_ratchet failed on a live akex session"
                        );
                    }
                }
            }
            Op::Poll { side, secs } => {
                self.now[side.index()] += Duration::from_secs(u64::from(secs));
                for _ in 0..4 {
                    let now = self.now[side.index()];
                    let mut rng = self.rng();
                    let mut out = Vec::new();
                    let result = match &mut self.peers[side.index()] {
                        Peer::Stream(s) => s.poll_control(now, &mut rng, &mut out),
                        Peer::Datagram(d) => d.poll_control(now, &mut rng, &mut out),
                    };
                    match result {
                        Ok(true) => self.flights[side.peer().index()].push(out, Expect::Control),
                        Ok(false) => break,
                        Err(_) => {
                            self.sync_failed(side);
                            break;
                        }
                    }
                }
            }
            Op::Close { from } => {
                let mut out = Vec::new();
                let result = match &mut self.peers[from.index()] {
                    Peer::Stream(s) => s.seal_close(&mut out),
                    Peer::Datagram(d) => d.seal_close(&mut out),
                };
                let m = self.models[from.index()];
                match result {
                    Ok(()) => {
                        assert!(self.mode == RecordMode::Akex || self.datagram);
                        assert!(!m.failed && !m.sent_close, "sealed after close or failure");
                        self.models[from.index()].sent_close = true;
                        self.flights[from.peer().index()].push(out, Expect::Close);
                    }
                    Err(_) => assert!(
                        self.mode == RecordMode::Noise
                            || m.failed
                            || m.sent_close
                            || (!self.datagram && self.has_failed(from)),
                        "seal_close failed on a live session"
                    ),
                }
            }
            Op::Garbage { .. } => unreachable!("handled by the caller"),
        }
    }

    /// The configuration lowered the usage limits (seals may fail).
    fn limited(&self) -> bool {
        self.limited
    }

    fn has_failed(&self, side: Side) -> bool {
        match &self.peers[side.index()] {
            Peer::Stream(s) => s.has_failed(),
            Peer::Datagram(d) => d.has_failed(),
        }
    }

    /// After an error from the library: record whether it closed the session.
    fn sync_failed(&mut self, side: Side) {
        if self.has_failed(side) {
            self.models[side.index()].failed = true;
        }
    }

    fn seal(&mut self, from: Side, len: usize) {
        self.seq += 1;
        let data = payload(self.seq, len);
        let mut out = Vec::new();
        let result = match &mut self.peers[from.index()] {
            Peer::Stream(s) if s.mode() == RecordMode::Noise => s.seal(&data, &mut out),
            Peer::Stream(s) => s.seal_record(RecordType::Data, &data, &mut out),
            Peer::Datagram(d) => d.seal(&data, &mut out),
        };
        let m = self.models[from.index()];
        match result {
            Ok(()) => {
                assert!(
                    !(m.failed || m.sent_close) || self.mode == RecordMode::Noise,
                    "sealed data after close or failure"
                );
                self.flights[from.peer().index()].push(out, Expect::Data(data));
            }
            Err(_) => {
                assert!(out.is_empty(), "a failed seal wrote bytes");
                // Too large, closed, failed, or a (lowered) usage limit.
                let max = match &self.peers[from.index()] {
                    Peer::Stream(s) => s.max_payload(),
                    Peer::Datagram(_) => akex::session::datagram::MAX_DATAGRAM_PAYLOAD,
                };
                assert!(
                    len > max || m.failed || m.sent_close || self.limited(),
                    "seal of {len} bytes failed on a live session"
                );
            }
        }
    }

    fn message(&mut self, from: Side, len: usize) {
        self.seq += 1;
        let data = payload(self.seq, len);
        let mut out = Vec::new();
        let ty = ControlType::RotationAnnouncement;
        let result = match &mut self.peers[from.index()] {
            Peer::Stream(s) => s.seal_control(ty, &data, &mut out),
            Peer::Datagram(d) => d.seal_control(ty, &data, &mut out),
        };
        let m = self.models[from.index()];
        match result {
            Ok(()) => {
                assert!(
                    self.mode == RecordMode::Akex || self.datagram,
                    "Noise mode sealed a control"
                );
                assert!(
                    !(m.failed || m.sent_close),
                    "sealed a control after close or failure"
                );
                self.flights[from.peer().index()].push(out, Expect::Message(data));
            }
            Err(_) => {
                assert!(out.is_empty(), "a failed seal wrote bytes");
                assert!(
                    (self.mode == RecordMode::Noise && !self.datagram)
                        || m.failed
                        || m.sent_close
                        || self.limited(),
                    "a control failed on a live akex session"
                );
            }
        }
    }

    fn rekey(&mut self, from: Side) {
        let to = from.peer();
        match &mut self.peers[from.index()] {
            Peer::Stream(s) if s.mode() == RecordMode::Noise => {
                s.rekey_outgoing();
                self.flights[to.index()].push(Vec::new(), Expect::RekeyMarker);
            }
            Peer::Stream(s) => {
                let mut out = Vec::new();
                if s.send_key_update(&mut out).is_ok() {
                    let m = self.models[from.index()];
                    assert!(!(m.failed || m.sent_close), "key update after close");
                    self.flights[to.index()].push(out, Expect::Control);
                }
            }
            Peer::Datagram(d) => d.key_update(),
        }
    }

    /// The next pending record to `to` (skipping Noise rekey markers).
    fn next_record(&self, to: Side) -> Option<usize> {
        let flight = &self.flights[to.index()];
        flight
            .items
            .iter()
            .position(|i| i.state == State::Pending && i.expect != Expect::RekeyMarker)
    }

    /// Delivers the next record in flight to `to`, in order.
    fn deliver(&mut self, to: Side) {
        // Noise rekey markers before the record apply first.
        while let Some(at) = self.flights[to.index()].next_pending() {
            if self.flights[to.index()].items[at].expect != Expect::RekeyMarker {
                break;
            }
            self.flights[to.index()].items[at].state = State::Consumed;
            if let Peer::Stream(s) = &mut self.peers[to.index()] {
                s.rekey_incoming();
            }
        }
        let Some(at) = self.flights[to.index()].next_pending() else {
            return;
        };
        self.flights[to.index()].items[at].state = State::Consumed;
        let bytes = self.flights[to.index()].items[at].bytes.clone();
        let m = self.models[to.index()];
        let must_open = if self.datagram {
            None
        } else {
            Some(!self.flights[to.index()].lost && !m.failed && !m.received_close)
        };
        self.open(to, Some(at), &bytes, must_open);
    }

    /// Delivers a copy of record `at` that is out of order, replayed or
    /// tampered: a stream must refuse it; a datagram may accept a
    /// reordered one once.
    fn open_copy(&mut self, to: Side, at: usize, bytes: Vec<u8>, tampered: bool) {
        let must = if self.datagram && !tampered {
            None
        } else {
            Some(false)
        };
        self.open(to, if tampered { None } else { Some(at) }, &bytes, must);
    }

    /// Opens `bytes` at `to`. `at` is the record it is a faithful copy of;
    /// `must_open` is the model's verdict for streams (`None`: datagram
    /// rules apply).
    fn open(&mut self, to: Side, at: Option<usize>, bytes: &[u8], must_open: Option<bool>) {
        let i = to.index();
        let mut out = Vec::new();
        let (result, nonce_before, nonce_after) = match &mut self.peers[i] {
            Peer::Stream(s) if s.mode() == RecordMode::Noise => {
                let n = s.receiving().nonce();
                let r = s.open(bytes, &mut out);
                (r, n, s.receiving().nonce())
            }
            Peer::Stream(s) => (s.open_record(bytes, &mut out), 0, 0),
            Peer::Datagram(d) => {
                let epoch_before = d.recv_epoch();
                let failed_before = d.has_failed();
                let r = d.open(bytes, &mut out);
                // Datagram "must open": a faithful first delivery of a
                // record in the receiver's current epoch.
                if let (Some(at), Err(e)) = (at, &r) {
                    let item = &self.flights[i].items[at];
                    let header_epoch = (
                        u32::from_be_bytes(bytes[0..4].try_into().expect("4")),
                        u32::from_be_bytes(bytes[4..8].try_into().expect("4")),
                    );
                    let current = (epoch_before.generation, epoch_before.update);
                    assert!(
                        item.accepted
                            || failed_before
                            || header_epoch != current
                            || matches!(e, Error::Limit(_)),
                        "a fresh datagram of the current epoch failed: {e:?}"
                    );
                }
                if let Err(e) = &r {
                    if !failed_before
                        && matches!(
                            e,
                            Error::PeerMisbehaved(
                                PeerMisbehaved::DecryptFailed
                                    | PeerMisbehaved::Replayed
                                    | PeerMisbehaved::TooOld
                                    | PeerMisbehaved::BadMessageLength
                            )
                        )
                    {
                        assert!(
                            !d.has_failed(),
                            "an unauthenticated datagram closed the session: {e:?}"
                        );
                    }
                }
                (r, 0, 0)
            }
        };
        let noise = !self.datagram && self.mode == RecordMode::Noise;
        match result {
            Ok(record) => {
                self.progress.records += 1;
                self.progress.answered = true;
                assert_ne!(must_open, Some(false), "a bad copy opened: {record:?}");
                let at = at.expect("only faithful copies can open");
                let item = &mut self.flights[i].items[at];
                assert!(!item.accepted, "a record opened twice");
                if self.datagram {
                    item.accepted = true;
                    item.state = State::Consumed;
                }
                if noise {
                    assert_eq!(nonce_after, nonce_before + 1);
                }
                match (&item.expect, record) {
                    (Expect::Data(data), Record::Data(len)) => {
                        assert_eq!(len, data.len());
                        assert_eq!(&out, data, "opened to different bytes");
                    }
                    (Expect::Control, Record::KeyUpdate | Record::Ratchet) => {}
                    (Expect::Message(data), Record::Control(ty, len)) => {
                        assert_eq!(ty, ControlType::RotationAnnouncement);
                        assert_eq!(len, data.len());
                        // A control payload never comes out as data.
                        if self.datagram {
                            assert!(out.is_empty(), "a control payload came out as data");
                        } else {
                            assert_eq!(&out, data);
                        }
                    }
                    (Expect::Close, Record::Close) => {
                        self.models[i].received_close = true;
                        self.progress.finished = true;
                    }
                    (expect, got) => panic!("expected {expect:?}, opened {got:?}"),
                }
            }
            Err(e) => {
                assert_ne!(must_open, Some(true), "an in-order record failed: {e:?}");
                if noise {
                    assert_eq!(nonce_after, nonce_before, "a failed open moved the nonce");
                }
                if self.akex_stream() {
                    // Every akex-mode error is final.
                    self.models[i].failed = true;
                } else {
                    self.sync_failed(to);
                }
            }
        }
        if self.akex_stream() {
            let Peer::Stream(s) = &self.peers[i] else {
                unreachable!()
            };
            let m = self.models[i];
            assert_eq!(s.has_failed(), m.failed, "has_failed disagrees");
            assert_eq!(s.peer_closed(), m.received_close, "peer_closed disagrees");
            assert_eq!(
                s.is_closed(),
                m.failed || m.sent_close || m.received_close,
                "is_closed disagrees"
            );
        }
    }
}

/// Runs the fuzz target `session_ops` (see the module docs).
pub fn session_ops(data: &[u8]) -> Progress {
    let Some((&selector, rest)) = data.split_first() else {
        return Progress::default();
    };
    let mut run = Run::new(usize::from(selector) % OPS_CONFIGS);
    let mut input = Unstructured::new(rest);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let Ok(op) = Op::arbitrary(&mut input) else {
            break;
        };
        if let Op::Garbage { to, len } = op {
            let available = usize::from(len).min(input.len());
            let bytes = input.bytes(available).unwrap_or_default().to_vec();
            run.open(
                to,
                None,
                &bytes,
                if run.datagram { None } else { Some(false) },
            );
            continue;
        }
        run.apply(op);
    }
    run.progress
}

/// Seeds for `session_ops`: for each configuration, data both ways in
/// order, a rekey, a reordered, a replayed and a tampered record, a
/// ratchet step with its replies, and a close.
pub fn session_ops_seeds() -> Vec<super::Seed> {
    use Op::*;
    use Side::{A, B};
    let names = [
        "noise-chachapoly",
        "noise-aesgcm-rekey3",
        "akex-chachapoly",
        "akex-aesgcm-hybrid-limited",
        "datagram-chachapoly",
        "datagram-aesgcm-hybrid-limited",
    ];
    let script = [
        Seal { from: A, len: 5 },
        Seal { from: A, len: 0 },
        Seal { from: B, len: 100 },
        Deliver { to: B },
        Deliver { to: A },
        Rekey { from: A },
        Seal { from: A, len: 1000 },
        Deliver { to: B },
        Deliver { to: B },
        Seal { from: A, len: 7 },
        Seal { from: A, len: 8 },
        Ratchet { from: A },
        Deliver { to: B },
        Poll { side: B, secs: 0 },
        Deliver { to: A },
        Poll { side: A, secs: 0 },
        Deliver { to: B },
        Seal { from: A, len: 9 },
        Deliver { to: B },
        Deliver { to: B },
        Poll { side: B, secs: 1 },
        Deliver { to: A },
        Deliver { to: A },
        Poll { side: A, secs: 1 },
        Deliver { to: B },
        Deliver { to: B },
        Deliver { to: B },
        Seal { from: B, len: 3 },
        Seal { from: A, len: 4 },
        Deliver { to: A },
        Deliver { to: B },
        Message { from: A, len: 5 },
        Deliver { to: B },
        Close { from: B },
        Deliver { to: A },
    ];
    let p = |finished, records| Progress {
        answered: records > 0,
        finished,
        records,
    };
    // Records opened per configuration. Ordered: Noise mode has no key
    // update, ratchet, control or close records (9 data records); akex
    // mode adds a key update, the ratchet init, response and finish, a
    // control record and the close (15); datagrams need no key update
    // record (14); with the limits lowered to 12 records, a key takes at
    // most 4 data records (8 are kept for control records), so one data
    // record is refused (14, 13).
    // Hostile: Noise opens the first record and the original of the
    // tampered one; akex mode opens the first and dies on the reordered
    // copy; datagrams also accept the reordered record and the one after
    // the loss.
    let ordered = [
        p(false, 9),
        p(false, 9),
        p(true, 15),
        p(true, 14),
        p(true, 14),
        p(true, 13),
    ];
    let hostile = [
        p(false, 2),
        p(false, 2),
        p(false, 1),
        p(false, 1),
        p(false, 4),
        p(false, 4),
    ];
    let mut seeds = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let mut data = vec![index as u8];
        for op in script {
            op.encode(&mut data);
        }
        let expect = ordered[index];
        seeds.push(super::Seed {
            name: super::leak(format!("{name}-ordered")),
            data,
            expect,
        });
        // Reordering, replay and tampering (the session reacts as its mode says).
        let mut data = vec![index as u8];
        for op in [
            Seal { from: A, len: 16 },
            Seal { from: A, len: 17 },
            Seal { from: A, len: 18 },
            Deliver { to: B },
            Inject { to: B, index: 2 },
            Tamper {
                to: B,
                pos: 40,
                xor: 0x80,
            },
            Inject { to: B, index: 0 },
            Deliver { to: B },
            Drop { to: B },
            Seal { from: A, len: 19 },
            Deliver { to: B },
            Inject { to: B, index: 2 },
        ] {
            op.encode(&mut data);
        }
        data.extend_from_slice(&[9, 1, 20]);
        data.extend_from_slice(&[0xa5; 20]);
        let expect = hostile[index];
        seeds.push(super::Seed {
            name: super::leak(format!("{name}-hostile")),
            data,
            expect,
        });
    }
    seeds
}
