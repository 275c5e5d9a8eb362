//! The responder's side of the datagram handshake as one sans-IO object:
//! what `secure::respond` and `SecureDatagram::establish` do around a
//! socket, without the socket. `akex::hazmat::datagram` exposes it so the
//! fuzz crate (and protocol work) can drive the server's rules
//! (protocols/datagram.md) with arbitrary datagrams, addresses and times.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::cookie::CookieJar;
use super::packet::{self, Packet};
use super::pump::Pump;
use super::stats::{Count, Counters};
use super::{AmplificationBudget, DatagramOptions};
use crate::error::{ConfigError, Error};
use crate::handshake::{Established, Handshake};

/// A datagram-mode responder handshake fed datagrams by the caller.
/// Datagrams it would send go to the `out` vectors, one per packet.
pub struct DatagramResponder {
    pump: Pump,
}

impl std::fmt::Debug for DatagramResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramResponder")
            .field("peer", &self.pump.peer())
            .field("finished", &self.pump.is_finished())
            .finish_non_exhaustive()
    }
}

impl DatagramResponder {
    /// Starts on `datagram` from `from`, which must be a well-formed
    /// initiation (no cookie is valid: the address starts unvalidated).
    /// The answer, if the amplification limit allows it, is in `out`.
    pub fn accept(
        handshake: Box<dyn Handshake>,
        from: SocketAddr,
        datagram: &[u8],
        now: Duration,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Self, Error> {
        let Some(Packet::Initiation { cid, message, .. }) = packet::parse(datagram) else {
            return Err(ConfigError::Invalid("a responder starts on an initiation".into()).into());
        };
        let pump = Pump::responder(
            handshake,
            cid,
            from,
            DatagramOptions::default().timers(),
            now,
            (message, datagram.len(), false),
            Arc::new(CookieJar::new()),
            Counters::default(),
            out,
        )?;
        Ok(DatagramResponder { pump })
    }

    /// One datagram from `from`, dispatched as the server does: malformed
    /// packets, other connections' ids and other addresses are counted and
    /// dropped; the rest reach the handshake. An error ends it.
    pub fn on_datagram(
        &mut self,
        now: Duration,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        match packet::parse(datagram) {
            None => self.pump.counters.bump(Count::Malformed),
            Some(p) if p.cid() != self.pump.cid() => {
                self.pump.counters.bump(Count::WrongConnection)
            }
            Some(_) if from != self.pump.peer() => self.pump.counters.bump(Count::WrongAddress),
            Some(p) => self.pump.on_packet(now, p, datagram.len(), out)?,
        }
        Ok(())
    }

    /// Retransmissions due at `now`; fails at the handshake deadline.
    pub fn on_timer(&mut self, now: Duration, out: &mut Vec<Vec<u8>>) -> Result<(), Error> {
        self.pump.on_timer(now, out)
    }

    /// When [`on_timer`](Self::on_timer) next has something to do.
    pub fn next_timer(&self) -> Option<Duration> {
        self.pump.next_timer()
    }

    /// True once the handshake has finished on this side.
    pub fn is_finished(&self) -> bool {
        self.pump.is_finished()
    }

    /// True once the peer's address is validated (it proved it reads what
    /// we send there); until then at most three times the bytes received
    /// from it may go to it.
    pub fn is_address_validated(&self) -> bool {
        self.pump.budget().is_validated()
    }

    /// The bytes counted as received from the peer's address (datagrams
    /// carrying this handshake's id) and sent to it, for the
    /// anti-amplification rule.
    pub fn budget(&self) -> AmplificationBudget {
        self.pump.budget()
    }

    /// The keys, once, after the handshake finished (any confirmation
    /// packet is in `out`).
    pub fn take_established(
        &mut self,
        now: Duration,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Established, Error> {
        self.pump.take_established(now, out)
    }
}
