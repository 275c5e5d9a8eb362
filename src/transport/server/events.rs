//! What the servers report: one [`ServerEvent`] per connection outcome and
//! live [`ServerStats`] counters.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::limits::RejectReason;
use crate::error::Error;
use crate::session::SessionInfo;

/// What happened to a connection, for logs and monitoring.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// The connection was turned away at a limit (the peer was told the
    /// server is busy).
    Rejected {
        /// The peer's address.
        peer: SocketAddr,
        /// Which limit.
        reason: RejectReason,
    },
    /// The handshake failed (or timed out); the connection is closed.
    HandshakeFailed {
        /// The peer's address.
        peer: SocketAddr,
        /// Why.
        error: Error,
    },
    /// The handshake finished; the handler runs next.
    Established {
        /// The peer's address.
        peer: SocketAddr,
        /// The session's public facts.
        info: SessionInfo,
    },
    /// The handler returned an error (or the connection went idle).
    ConnectionFailed {
        /// The peer's address.
        peer: SocketAddr,
        /// Why.
        error: Error,
    },
    /// The handler returned `Ok`.
    Closed {
        /// The peer's address.
        peer: SocketAddr,
    },
    /// `accept` itself failed (for example out of file descriptors); the
    /// server waits briefly and goes on.
    AcceptFailed {
        /// The operating system's error.
        error: io::Error,
    },
}

impl ServerEvent {
    /// The peer's address, if the event concerns one connection.
    pub fn peer(&self) -> Option<SocketAddr> {
        match self {
            ServerEvent::Rejected { peer, .. }
            | ServerEvent::HandshakeFailed { peer, .. }
            | ServerEvent::Established { peer, .. }
            | ServerEvent::ConnectionFailed { peer, .. }
            | ServerEvent::Closed { peer } => Some(*peer),
            ServerEvent::AcceptFailed { .. } => None,
        }
    }

    /// The reason a connection failed, or `None` for `Established` and
    /// `Closed`.
    pub fn failure(&self) -> Option<String> {
        match self {
            ServerEvent::Rejected { reason, .. } => Some(reason.to_string()),
            ServerEvent::HandshakeFailed { error, .. }
            | ServerEvent::ConnectionFailed { error, .. } => Some(error.to_string()),
            ServerEvent::AcceptFailed { error } => Some(format!("accept failed: {error}")),
            ServerEvent::Established { .. } | ServerEvent::Closed { .. } => None,
        }
    }
}

/// Counters, updated as connections come and go.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) handshakes_ok: AtomicU64,
    pub(crate) handshakes_failed: AtomicU64,
    pub(crate) connections_failed: AtomicU64,
    pub(crate) closed_ok: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    pub(crate) half_open: AtomicU64,
    pub(crate) open: AtomicU64,
    pub(crate) queued: AtomicU64,
}

/// A copy of [`ServerStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Connections accepted from the listener (including rejected ones);
    /// over UDP, new connections that asked to start.
    pub accepted: u64,
    /// Connections turned away at a limit.
    pub rejected: u64,
    /// Handshakes that finished.
    pub handshakes_ok: u64,
    /// Handshakes that failed or timed out.
    pub handshakes_failed: u64,
    /// Established connections whose handler returned an error.
    pub connections_failed: u64,
    /// Established connections whose handler returned `Ok`.
    pub closed_ok: u64,
    /// Errors from `accept` (or `recv_from`) itself.
    pub accept_errors: u64,
    /// Handshakes in progress now.
    pub half_open: u64,
    /// Connections open now (waiting, half-open or established).
    pub open: u64,
    /// Connections waiting for a per-address handshake slot now.
    pub queued: u64,
}

impl ServerStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            accepted: get(&self.accepted),
            rejected: get(&self.rejected),
            handshakes_ok: get(&self.handshakes_ok),
            handshakes_failed: get(&self.handshakes_failed),
            connections_failed: get(&self.connections_failed),
            closed_ok: get(&self.closed_ok),
            accept_errors: get(&self.accept_errors),
            half_open: get(&self.half_open),
            open: get(&self.open),
            queued: get(&self.queued),
        }
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The callback given to `on_event`.
pub(crate) type EventFn = Arc<dyn Fn(&ServerEvent) + Send + Sync>;

/// `Error` is not `Clone` (it may hold an `io::Error`); an event keeps the
/// original and a caller that also wants the outcome gets this copy.
pub(crate) fn clone_error(error: &Error) -> Error {
    match error {
        Error::PeerMisbehaved(e) => Error::PeerMisbehaved(*e),
        Error::PeerIncompatible(e) => Error::PeerIncompatible(e.clone()),
        Error::PeerNotTrusted(e) => Error::PeerNotTrusted(e.clone()),
        Error::Config(e) => Error::Config(e.clone()),
        Error::ApiMisuse(e) => Error::ApiMisuse(*e),
        Error::Limit(e) => Error::Limit(*e),
        Error::Timeout(d) => Error::Timeout(*d),
        Error::IdleTimeout(d) => Error::IdleTimeout(*d),
        Error::ServerBusy => Error::ServerBusy,
        Error::KeyFile {
            path,
            reason,
            source,
        } => Error::KeyFile {
            path: path.clone(),
            reason: reason.clone(),
            source: source
                .as_ref()
                .map(|e| io::Error::new(e.kind(), e.to_string())),
        },
        Error::Io(e) => Error::Io(io::Error::new(e.kind(), e.to_string())),
        // Variants added later: keep the message.
        #[allow(unreachable_patterns)]
        other => Error::Io(io::Error::other(other.to_string())),
    }
}

/// Recovers an akex error that travelled through `std::io::Error` (for
/// example an idle timeout raised by `IdleTimeout` under the codec).
pub(crate) fn unwrap_io(error: Error) -> Error {
    match error {
        Error::Io(io) => Error::from_io(io),
        other => other,
    }
}
