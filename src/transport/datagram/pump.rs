//! The datagram handshake without I/O: packets in, packets out, time passed
//! in. It applies the rules of protocols/datagram.md: retransmission with
//! backoff, answers only to repeats that match what was read, at most
//! [`MAX_HANDSHAKE_RESENDS`] resends and never once the handshake is
//! confirmed, three times what arrived before the peer's address is
//! validated, and noise dropped and counted instead of read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;

use super::amplification::AmplificationBudget;
use super::cookie::{unix_now, CookieJar};
use super::packet::{self, ConnectionId, Packet, CONFIRM_TAG_LEN};
use super::stats::{Count, Counters};
use crate::crypto::hash::{hkdf_expand_sha256, hmac_sha256, sha256};
use crate::error::Error;
use crate::handshake::{Established, Handshake, Role};

/// How many times one handshake message is sent again at most.
pub const MAX_HANDSHAKE_RESENDS: u32 = 8;
/// Records kept that arrive before our side of the handshake finished.
const MAX_EARLY_RECORDS: usize = 8;
const MAX_EARLY_BYTES: usize = 32 * 1024;

/// The handshake's timers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timers {
    pub(crate) initial_rto: Duration,
    pub(crate) max_rto: Duration,
    pub(crate) handshake_timeout: Duration,
}

/// A confirmation tag: HMAC-SHA256 under a key derived from the sender's
/// traffic secret, over the connection id (protocols/datagram.md).
fn confirm_tag(traffic_secret: &[u8; 32], cid: &ConnectionId) -> [u8; CONFIRM_TAG_LEN] {
    let key = hkdf_expand_sha256::<32>(traffic_secret, b"akex udp confirm");
    let mac = hmac_sha256(key.expose(), &[cid]);
    let mut tag = [0u8; CONFIRM_TAG_LEN];
    tag.copy_from_slice(&mac.expose()[..CONFIRM_TAG_LEN]);
    tag
}

/// What made us send our last message (again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// It was just written.
    New,
    /// The retransmission timer.
    Timer,
    /// A repeat of the message it answers (or a cookie that unblocks it).
    Repeat,
}

/// Our last handshake message, kept to send again.
struct Outgoing {
    index: u8,
    message: Vec<u8>,
    sent: bool,
}

/// One side of a datagram handshake, and after it, what is left of it
/// until the peer has shown it finished too (see [`Pump::confirm`]).
pub(crate) struct Pump {
    role: Role,
    cid: ConnectionId,
    peer: SocketAddr,
    handshake: Box<dyn Handshake>,
    timers: Timers,
    /// Index of the next handshake message, whoever writes it.
    next_index: u8,
    last: Option<Outgoing>,
    /// Index and digest of the last message we read.
    last_read: Option<(u8, [u8; 32])>,
    /// The initiator's cookie token.
    token: Vec<u8>,
    cookie_followed: bool,
    rto: Duration,
    last_send: Duration,
    next_resend: Option<Duration>,
    resends: u32,
    deadline: Duration,
    finished: bool,
    confirmed: bool,
    budget: AmplificationBudget,
    jar: Option<Arc<CookieJar>>,
    /// Our confirmation, if we read the last handshake message.
    confirm_out: Option<Vec<u8>>,
    confirm_sends: u32,
    /// The peer's confirmation we wait for, if we wrote the last message.
    confirm_expected: Option<[u8; CONFIRM_TAG_LEN]>,
    early: Vec<Vec<u8>>,
    early_bytes: usize,
    pub(crate) counters: Counters,
}

impl Pump {
    fn new(
        handshake: Box<dyn Handshake>,
        cid: ConnectionId,
        peer: SocketAddr,
        timers: Timers,
        now: Duration,
        counters: Counters,
    ) -> Self {
        Pump {
            role: handshake.role(),
            cid,
            peer,
            handshake,
            timers,
            next_index: 0,
            last: None,
            last_read: None,
            token: Vec::new(),
            cookie_followed: false,
            rto: timers.initial_rto,
            last_send: now,
            next_resend: None,
            resends: 0,
            deadline: now
                .checked_add(timers.handshake_timeout)
                .unwrap_or(Duration::MAX),
            finished: false,
            confirmed: false,
            budget: AmplificationBudget::default(),
            jar: None,
            confirm_out: None,
            confirm_sends: 0,
            confirm_expected: None,
            early: Vec::new(),
            early_bytes: 0,
            counters,
        }
    }

    /// Starts an initiator: its first packet is in `out`.
    pub(crate) fn initiator(
        handshake: Box<dyn Handshake>,
        cid: ConnectionId,
        peer: SocketAddr,
        timers: Timers,
        now: Duration,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Self, Error> {
        let mut pump = Pump::new(handshake, cid, peer, timers, now, Counters::default());
        // We chose this address ourselves.
        pump.budget = AmplificationBudget::validated();
        pump.advance(now, out)?;
        Ok(pump)
    }

    /// Starts a responder on an initiation from `peer` (`wire_len` bytes
    /// on the wire; `validated` if it carried a valid cookie). Its answer,
    /// if it may be sent, is in `out`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn responder(
        handshake: Box<dyn Handshake>,
        cid: ConnectionId,
        peer: SocketAddr,
        timers: Timers,
        now: Duration,
        initiation: (&[u8], usize, bool),
        jar: Arc<CookieJar>,
        counters: Counters,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Self, Error> {
        let (message, wire_len, validated) = initiation;
        let mut pump = Pump::new(handshake, cid, peer, timers, now, counters);
        pump.jar = Some(jar);
        pump.budget.on_received(wire_len);
        if validated {
            pump.budget.validate();
        }
        pump.read(now, 0, message, out)?;
        Ok(pump)
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn cid(&self) -> ConnectionId {
        self.cid
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub(crate) fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = peer;
    }

    /// True once both sides have sent every handshake message (as far as
    /// we know: our last one may still be in flight).
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// True once the peer has shown it finished too.
    pub(crate) fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// The established keys, once, after the handshake finished. The
    /// side that read the last message confirms it with a packet in `out`
    /// (and again for each repeat of that message, within the limits); the
    /// other side waits for it (or for a record) in [`Pump::on_packet`].
    pub(crate) fn take_established(
        &mut self,
        now: Duration,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Established, Error> {
        let established = self.handshake.finish()?;
        let ours = confirm_tag(established.sending_secret().secret().expose(), &self.cid);
        let theirs = confirm_tag(established.receiving_secret().secret().expose(), &self.cid);
        if self.confirmed {
            let confirm = packet::confirm(&self.cid, &ours);
            if self.may_send(confirm.len()) {
                out.push(confirm.clone());
            }
            self.last_send = now;
            self.confirm_out = Some(confirm);
        } else {
            self.confirm_expected = Some(theirs);
        }
        Ok(established)
    }

    /// Records that arrived before the handshake finished.
    pub(crate) fn take_early(&mut self) -> Vec<Vec<u8>> {
        self.early_bytes = 0;
        std::mem::take(&mut self.early)
    }

    /// The peer showed it finished (an authenticated record arrived): no
    /// handshake message is ever sent again, and its address is proven.
    pub(crate) fn confirm(&mut self) {
        self.confirmed = true;
        self.last = None;
        self.next_resend = None;
        self.budget.validate();
    }

    /// True if `n` more bytes may go to the peer now (anti-amplification);
    /// counts them if so, and counts the refusal otherwise.
    pub(crate) fn may_send(&mut self, n: usize) -> bool {
        if self.budget.allows(n) {
            self.budget.on_sent(n);
            true
        } else {
            self.counters.bump(Count::OverBudget);
            false
        }
    }

    /// `n` bytes arrived from the peer's address with our id.
    pub(crate) fn received(&mut self, n: usize) {
        self.budget.on_received(n);
    }

    /// The bytes received from and sent to the peer, and whether its
    /// address is validated.
    pub(crate) fn budget(&self) -> AmplificationBudget {
        self.budget
    }

    /// When [`Pump::on_timer`] next has something to do.
    pub(crate) fn next_timer(&self) -> Option<Duration> {
        let resend = (!self.confirmed && self.last.is_some())
            .then_some(self.next_resend)
            .flatten()
            .filter(|t| *t < self.deadline);
        let deadline = (!self.finished).then_some(self.deadline);
        match (resend, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Retransmits on the timer; fails at the deadline if the handshake
    /// has not finished.
    pub(crate) fn on_timer(&mut self, now: Duration, out: &mut Vec<Vec<u8>>) -> Result<(), Error> {
        if !self.finished && now >= self.deadline {
            return Err(Error::Timeout(self.timers.handshake_timeout));
        }
        let due = self.next_resend.is_some_and(|t| now >= t);
        if !due || self.confirmed || self.last.is_none() || now >= self.deadline {
            return Ok(());
        }
        if self.resends >= MAX_HANDSHAKE_RESENDS {
            self.next_resend = None;
            return Ok(());
        }
        self.send_last(now, Trigger::Timer, out);
        Ok(())
    }

    /// Handles one packet that carries our id and came from the peer's
    /// address (`wire_len`: the whole datagram's length).
    pub(crate) fn on_packet(
        &mut self,
        now: Duration,
        packet: Packet<'_>,
        wire_len: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        self.budget.on_received(wire_len);
        match packet {
            Packet::Initiation { token, message, .. } => {
                if self.role != Role::Responder {
                    self.counters.bump(Count::Malformed);
                    return Ok(());
                }
                if !self.matches_read(0, message) {
                    self.counters.bump(Count::Unexpected);
                    return Ok(());
                }
                let jar = self.jar.as_ref();
                if jar.is_some_and(|j| j.check(unix_now(), self.peer, &self.cid, token)) {
                    self.budget.validate();
                }
                self.answer_repeat(now, 0, out);
            }
            Packet::Handshake { index, message, .. } => {
                let our_turn = self.finished || self.handshake.wants_write();
                if !our_turn && index == self.next_index {
                    self.read(now, index, message, out)?;
                } else if self.matches_read(index, message) {
                    self.answer_repeat(now, index, out);
                } else {
                    self.counters.bump(Count::Unexpected);
                }
            }
            Packet::Cookie { token, .. } => {
                // Only an initiator still waiting for its first answer.
                if self.role != Role::Initiator || self.last_read.is_some() {
                    self.counters.bump(Count::Unexpected);
                    return Ok(());
                }
                self.token = token.to_vec();
                if !self.cookie_followed {
                    self.cookie_followed = true;
                    self.send_last(now, Trigger::Repeat, out);
                }
            }
            Packet::Confirm { tag, .. } => {
                let expected = self.confirm_expected.as_ref();
                let valid = expected.is_some_and(|e| bool::from(e.ct_eq(tag)));
                if valid && !self.confirmed {
                    self.confirm();
                } else if valid {
                    self.counters.bump(Count::Duplicate);
                } else {
                    self.counters.bump(Count::Unexpected);
                }
            }
            Packet::Busy { .. } => {
                if self.role == Role::Initiator && self.last_read.is_none() {
                    return Err(Error::ServerBusy);
                }
                self.counters.bump(Count::Unexpected);
            }
            Packet::Record { record, .. } => {
                if self.finished {
                    // The session handles records once the handshake is over.
                    self.counters.bump(Count::Unexpected);
                } else if self.early.len() < MAX_EARLY_RECORDS
                    && self.early_bytes + record.len() <= MAX_EARLY_BYTES
                {
                    self.early_bytes += record.len();
                    self.early.push(record.to_vec());
                } else {
                    self.counters.bump(Count::EarlyOverflow);
                }
            }
        }
        Ok(())
    }

    fn matches_read(&self, index: u8, message: &[u8]) -> bool {
        self.last_read == Some((index, sha256(&[message])))
    }

    /// Reads the peer's message `index` and writes our answer, if any.
    fn read(
        &mut self,
        now: Duration,
        index: u8,
        message: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        let mut payload = Vec::new();
        self.handshake.read_message(message, &mut payload)?;
        self.last_read = Some((index, sha256(&[message])));
        self.next_index = index.wrapping_add(1);
        // It answers our previous message: stop sending that one.
        self.last = None;
        self.next_resend = None;
        if self.role == Role::Responder && index >= 2 {
            // Only someone who received our message 1 could write this.
            self.budget.validate();
        }
        if self.handshake.is_finished() {
            // The peer wrote the last message, so it has finished too.
            self.finished = true;
            self.confirmed = true;
            return Ok(());
        }
        self.advance(now, out)
    }

    /// Writes every message that is ours to write now.
    fn advance(&mut self, now: Duration, out: &mut Vec<Vec<u8>>) -> Result<(), Error> {
        while self.handshake.wants_write() && !self.handshake.is_finished() {
            let mut message = Vec::new();
            self.handshake.write_message(&[], &mut message)?;
            self.last = Some(Outgoing {
                index: self.next_index,
                message,
                sent: false,
            });
            self.next_index = self.next_index.wrapping_add(1);
            self.rto = self.timers.initial_rto;
            self.resends = 0;
            self.send_last(now, Trigger::New, out);
        }
        // Finished by writing: unconfirmed until the peer shows it read it.
        self.finished = self.handshake.is_finished();
        Ok(())
    }

    /// Answers a repeat of message `index` with our message that followed
    /// it, or with our confirmation if it was the last, within the limits.
    fn answer_repeat(&mut self, now: Duration, index: u8, out: &mut Vec<Vec<u8>>) {
        if let Some(confirm) = &self.confirm_out {
            let last_read = self.last_read.is_some_and(|(i, _)| i == index);
            let paced = now.saturating_sub(self.last_send) >= self.rto / 2;
            if last_read && paced && self.confirm_sends < MAX_HANDSHAKE_RESENDS {
                let confirm = confirm.clone();
                if self.may_send(confirm.len()) {
                    out.push(confirm);
                    self.confirm_sends += 1;
                    self.last_send = now;
                    self.rto = self.rto.saturating_mul(2).min(self.timers.max_rto);
                }
                return;
            }
        }
        let answers = self
            .last
            .as_ref()
            .is_some_and(|l| l.index == index.wrapping_add(1));
        let sent = self.last.as_ref().is_some_and(|l| l.sent);
        let too_soon = sent && now.saturating_sub(self.last_send) < self.rto / 2;
        if !answers
            || self.confirmed
            || now >= self.deadline
            || self.resends >= MAX_HANDSHAKE_RESENDS
            || too_soon
        {
            self.counters.bump(Count::Duplicate);
            return;
        }
        self.send_last(now, Trigger::Repeat, out);
    }

    /// Sends our last message (again) if the budget allows; otherwise a
    /// responder asks for a cookie, which proves the address and lifts the
    /// budget.
    fn send_last(&mut self, now: Duration, trigger: Trigger, out: &mut Vec<Vec<u8>>) {
        let Some(last) = &self.last else {
            return;
        };
        let resend = last.sent;
        let packet = if last.index == 0 {
            packet::initiation(&self.cid, &self.token, &last.message)
        } else {
            packet::handshake(&self.cid, last.index, &last.message)
        };
        if resend {
            self.rto = self.rto.saturating_mul(2).min(self.timers.max_rto);
        }
        self.next_resend = now.checked_add(self.rto);
        if !self.budget.allows(packet.len()) {
            self.counters.bump(Count::OverBudget);
            if trigger != Trigger::Timer {
                self.ask_for_cookie(out);
            }
            return;
        }
        self.budget.on_sent(packet.len());
        out.push(packet);
        self.last_send = now;
        if let Some(last) = &mut self.last {
            last.sent = true;
        }
        if resend {
            self.resends += 1;
            self.counters.bump(Count::HandshakeResend);
        }
    }

    fn ask_for_cookie(&mut self, out: &mut Vec<Vec<u8>>) {
        let Some(jar) = &self.jar else {
            return;
        };
        let token = jar.mint(unix_now(), self.peer, &self.cid);
        let cookie = packet::cookie(&self.cid, &token);
        if self.budget.allows(cookie.len()) {
            self.budget.on_sent(cookie.len());
            out.push(cookie);
        }
    }
}

#[cfg(test)]
#[path = "pump_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "pump_claims_tests.rs"]
mod claims_tests;
