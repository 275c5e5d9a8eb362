//! The `session_ops` driver: both sessions beside the model, and a method
//! per operation that applies it and checks the library's answer (opening
//! a record, and its checks, are in `open.rs`).

use std::time::Duration;

use akex::hazmat::ReplayRng as ScriptedRng;
use akex::session::datagram::DatagramSession;
use akex::session::{ControlType, RecordMode, RecordType};
use akex::{Role, Session};

use super::config::{config, fixed_established, rng_bytes};
use super::model::{Expect, Flight, Model, State};
use super::op::{Op, Side};
use super::Progress;

pub(super) enum Peer {
    Stream(Box<Session>),
    Datagram(Box<DatagramSession>),
}

pub(super) struct Run {
    pub(super) peers: [Peer; 2],
    /// `flights[i]`: records in flight *to* side `i`.
    pub(super) flights: [Flight; 2],
    pub(super) models: [Model; 2],
    now: [Duration; 2],
    pub(super) mode: RecordMode,
    pub(super) datagram: bool,
    limited: bool,
    rng_calls: u32,
    seq: u32,
    pub(super) progress: Progress,
}

fn payload(seq: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq.wrapping_mul(31) as usize + i) as u8)
        .collect()
}

impl Run {
    pub(super) fn new(index: usize) -> Self {
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

    pub(super) fn akex_stream(&self) -> bool {
        !self.datagram && self.mode == RecordMode::Akex
    }

    pub(super) fn apply(&mut self, op: Op) {
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
    pub(super) fn sync_failed(&mut self, side: Side) {
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
}
