//! What datagram connections and the datagram server count: every packet
//! dropped, every handshake message resent, every cookie and busy reply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One connection's counters (also summed over all connections in
/// [`DatagramStatsSnapshot::connections`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatagramCounters {
    /// Datagrams that are not well-formed packets, or make no sense for our
    /// role (dropped).
    pub malformed: u64,
    /// Packets for another connection id (dropped).
    pub wrong_connection: u64,
    /// Packets with our id from an address that is not the peer's and
    /// that did not authenticate (dropped).
    pub wrong_address: u64,
    /// Repeats of a handshake message we already read, not answered
    /// (dropped).
    pub duplicates: u64,
    /// Handshake messages out of turn, or repeats that differ from what we
    /// read (dropped).
    pub unexpected: u64,
    /// Records that did not open: forged, replayed, too old, unknown epoch
    /// (dropped).
    pub forged: u64,
    /// Records that arrived before the handshake finished beyond what is
    /// kept for then (dropped).
    pub early_overflow: u64,
    /// Handshake messages we sent again (on our timer or for a matching
    /// repeat).
    pub handshake_resends: u64,
    /// Datagrams not sent because the peer's address was not validated and
    /// they would have exceeded three times what it sent.
    pub over_budget: u64,
    /// Times the peer's address changed on an authenticated record
    /// (NAT rebinding, roaming).
    pub roamed: u64,
}

impl DatagramCounters {
    /// Every datagram dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.malformed
            + self.wrong_connection
            + self.wrong_address
            + self.duplicates
            + self.unexpected
            + self.forged
            + self.early_overflow
    }
}

/// One kind of event a connection counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    Malformed,
    WrongConnection,
    WrongAddress,
    Duplicate,
    Unexpected,
    Forged,
    EarlyOverflow,
    HandshakeResend,
    OverBudget,
    Roamed,
}

const COUNTS: usize = 10;

impl Count {
    fn field(self, c: &mut DatagramCounters) -> &mut u64 {
        match self {
            Count::Malformed => &mut c.malformed,
            Count::WrongConnection => &mut c.wrong_connection,
            Count::WrongAddress => &mut c.wrong_address,
            Count::Duplicate => &mut c.duplicates,
            Count::Unexpected => &mut c.unexpected,
            Count::Forged => &mut c.forged,
            Count::EarlyOverflow => &mut c.early_overflow,
            Count::HandshakeResend => &mut c.handshake_resends,
            Count::OverBudget => &mut c.over_budget,
            Count::Roamed => &mut c.roamed,
        }
    }

    const ALL: [Count; COUNTS] = [
        Count::Malformed,
        Count::WrongConnection,
        Count::WrongAddress,
        Count::Duplicate,
        Count::Unexpected,
        Count::Forged,
        Count::EarlyOverflow,
        Count::HandshakeResend,
        Count::OverBudget,
        Count::Roamed,
    ];
}

/// A connection's counters, also added to its server's totals.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    local: DatagramCounters,
    server: Option<Arc<DatagramStats>>,
}

impl Counters {
    pub(crate) fn with_server(server: Option<Arc<DatagramStats>>) -> Self {
        Counters {
            local: DatagramCounters::default(),
            server,
        }
    }

    pub(crate) fn bump(&mut self, count: Count) {
        *count.field(&mut self.local) += 1;
        if let Some(server) = &self.server {
            server.bump(count);
        }
    }

    pub(crate) fn get(&self) -> DatagramCounters {
        self.local
    }
}

/// A [`DatagramServer`](super::DatagramServer)'s datagram counters, live.
#[derive(Debug, Default)]
pub struct DatagramStats {
    pub(crate) datagrams_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) datagrams_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) cookies_sent: AtomicU64,
    pub(crate) bad_tokens: AtomicU64,
    pub(crate) busy_sent: AtomicU64,
    pub(crate) inbox_full: AtomicU64,
    pub(crate) closed_connection: AtomicU64,
    connections: [AtomicU64; COUNTS],
}

/// A copy of [`DatagramStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatagramStatsSnapshot {
    /// Datagrams received on the socket.
    pub datagrams_in: u64,
    /// Their bytes (UDP payloads).
    pub bytes_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Cookie replies sent instead of starting a handshake.
    pub cookies_sent: u64,
    /// Initiations whose token was wrong, for another address or expired.
    pub bad_tokens: u64,
    /// Busy replies sent.
    pub busy_sent: u64,
    /// Datagrams dropped because their connection's queue was full.
    pub inbox_full: u64,
    /// Initiations for a connection id that recently closed (a replay;
    /// dropped without handshake work).
    pub closed_connection: u64,
    /// The counters of every connection, summed (including packets for
    /// no known connection, in `wrong_connection`, and malformed ones).
    pub connections: DatagramCounters,
}

impl DatagramStats {
    pub(crate) fn bump(&self, count: Count) {
        self.connections[count as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> DatagramStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut connections = DatagramCounters::default();
        for (i, count) in Count::ALL.iter().enumerate() {
            *count.field(&mut connections) = get(&self.connections[i]);
        }
        DatagramStatsSnapshot {
            datagrams_in: get(&self.datagrams_in),
            bytes_in: get(&self.bytes_in),
            datagrams_out: get(&self.datagrams_out),
            bytes_out: get(&self.bytes_out),
            cookies_sent: get(&self.cookies_sent),
            bad_tokens: get(&self.bad_tokens),
            busy_sent: get(&self.busy_sent),
            inbox_full: get(&self.inbox_full),
            closed_connection: get(&self.closed_connection),
            connections,
        }
    }
}
