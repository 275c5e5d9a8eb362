//! A TCP accept loop with denial-of-service limits.
//!
//! [`Server`] accepts connections, runs the responder handshake on each in
//! its own task and hands every established session to a handler. It bounds
//! what an unauthenticated peer can hold:
//!
//! | limit | default | on excess |
//! |---|---|---|
//! | half-open handshakes, all peers ([`ServerLimits::max_half_open`]) | 1024 | new connection closed at once |
//! | half-open handshakes per source IP ([`ServerLimits::max_half_open_per_ip`]) | 16 | new connection closed at once |
//! | open connections, all peers ([`ServerLimits::max_connections`]) | 10000 | new connection closed at once |
//! | handshake time ([`TransportOptions::handshake_timeout`]) | 10 s | connection closed, `Error::Timeout` |
//! | frame size ([`TransportOptions::max_frame_len`]) | 65535 | connection closed, `FrameTooLarge` |
//! | idle time, no byte moved either way ([`ServerLimits::idle_timeout`]) | 60 s | connection closed, `Error::IdleTimeout` |
//!
//! Every connection that does not end cleanly produces a [`ServerEvent`]
//! with a reason, delivered to the callback given to [`Server::on_event`];
//! the library itself never prints. [`ServerStats`] counts everything.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use super::driver::{accept, TransportOptions};
use super::stream::SecureStream;
use crate::error::Error;
use crate::handshake::Handshake;
use crate::session::SessionInfo;

/// Limits a [`Server`] applies on top of [`TransportOptions`].
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections accepted whose handshake has not finished, over all
    /// peers (default 1024).
    pub max_half_open: usize,
    /// The same, per source IP address (default 16).
    pub max_half_open_per_ip: usize,
    /// Open connections, half-open or established (default 10000).
    pub max_connections: usize,
    /// A connection on which no byte moved in either direction for this long
    /// while we wait on the peer is closed (default 60 s). The timer runs from
    /// accept, so it also bounds every gap during the handshake.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_half_open: 1024,
            max_half_open_per_ip: 16,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Why a connection was closed right after accept, before any handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// [`ServerLimits::max_half_open`] handshakes were already in progress.
    HalfOpenLimit(usize),
    /// [`ServerLimits::max_half_open_per_ip`] handshakes from this IP were
    /// already in progress.
    HalfOpenPerIpLimit(usize),
    /// [`ServerLimits::max_connections`] connections were already open.
    ConnectionLimit(usize),
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::HalfOpenLimit(n) => {
                write!(f, "rejected: {n} half-open handshakes already in progress")
            }
            RejectReason::HalfOpenPerIpLimit(n) => write!(
                f,
                "rejected: {n} half-open handshakes from this address already in progress"
            ),
            RejectReason::ConnectionLimit(n) => {
                write!(f, "rejected: {n} connections already open")
            }
        }
    }
}

/// What happened to a connection, for logs and monitoring.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerEvent {
    /// The connection was closed at once because a limit was reached.
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
    accepted: AtomicU64,
    rejected: AtomicU64,
    handshakes_ok: AtomicU64,
    handshakes_failed: AtomicU64,
    connections_failed: AtomicU64,
    closed_ok: AtomicU64,
    accept_errors: AtomicU64,
    half_open: AtomicU64,
    open: AtomicU64,
}

/// A copy of [`ServerStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Connections accepted from the listener (including rejected ones).
    pub accepted: u64,
    /// Connections closed at once because a limit was reached.
    pub rejected: u64,
    /// Handshakes that finished.
    pub handshakes_ok: u64,
    /// Handshakes that failed or timed out.
    pub handshakes_failed: u64,
    /// Established connections whose handler returned an error.
    pub connections_failed: u64,
    /// Established connections whose handler returned `Ok`.
    pub closed_ok: u64,
    /// Errors from `accept` itself.
    pub accept_errors: u64,
    /// Handshakes in progress now.
    pub half_open: u64,
    /// Connections open now (half-open or established).
    pub open: u64,
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
        }
    }
}

/// Forgets a finished connection task; one that panicked is counted and
/// reported as a failed connection.
fn reap(
    shared: &Shared,
    peers: &mut HashMap<tokio::task::Id, SocketAddr>,
    joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    let (id, panicked) = match joined {
        Ok((id, ())) => (id, false),
        Err(e) => (e.id(), e.is_panic()),
    };
    if let (Some(peer), true) = (peers.remove(&id), panicked) {
        bump(&shared.stats.connections_failed);
        shared.emit(ServerEvent::ConnectionFailed {
            peer,
            error: Error::Io(io::Error::other("connection handler panicked")),
        });
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Who holds a half-open or open slot, shared by all connection tasks.
#[derive(Debug, Default)]
struct Occupancy {
    half_open: usize,
    per_ip: HashMap<IpAddr, usize>,
    open: usize,
}

struct Shared {
    limits: ServerLimits,
    options: TransportOptions,
    occupancy: Mutex<Occupancy>,
    stats: Arc<ServerStats>,
    on_event: Option<EventFn>,
}

impl Shared {
    fn emit(&self, event: ServerEvent) {
        if let Some(f) = &self.on_event {
            f(&event);
        }
    }

    fn occupancy(&self) -> std::sync::MutexGuard<'_, Occupancy> {
        // A panic while holding this lock cannot leave the counts
        // inconsistent (every update is one statement), so keep going.
        self.occupancy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes an open slot and a half-open slot for `ip`, or says which limit
    /// stops it.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, RejectReason> {
        let limits = &self.limits;
        let mut occ = self.occupancy();
        if occ.open >= limits.max_connections {
            return Err(RejectReason::ConnectionLimit(limits.max_connections));
        }
        if occ.half_open >= limits.max_half_open {
            return Err(RejectReason::HalfOpenLimit(limits.max_half_open));
        }
        let from_ip = occ.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= limits.max_half_open_per_ip {
            return Err(RejectReason::HalfOpenPerIpLimit(
                limits.max_half_open_per_ip,
            ));
        }
        occ.open += 1;
        occ.half_open += 1;
        *occ.per_ip.entry(ip).or_insert(0) += 1;
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        self.stats.half_open.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            shared: Arc::clone(self),
            ip,
            half_open: true,
        })
    }
}

/// One connection's share of the limits; released on drop, so a task that
/// ends any way (error, panic, abort) gives its slots back.
struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
    half_open: bool,
}

impl Slot {
    fn release_half_open(&mut self) {
        if !self.half_open {
            return;
        }
        self.half_open = false;
        let mut occ = self.shared.occupancy();
        occ.half_open = occ.half_open.saturating_sub(1);
        if let Some(n) = occ.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                occ.per_ip.remove(&self.ip);
            }
        }
        self.shared.stats.half_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release_half_open();
        let mut occ = self.shared.occupancy();
        occ.open = occ.open.saturating_sub(1);
        self.shared.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The stream a [`Server`] hands to its handler.
pub type ServerStream = SecureStream<IdleTimeout<TcpStream>>;

/// A TCP server that runs a responder handshake on every connection under
/// [`ServerLimits`] and [`TransportOptions`].
///
/// ```no_run
/// # async fn demo() -> Result<(), akex::Error> {
/// use akex::transport::{Server, ServerLimits, TransportOptions};
/// use akex::{NoiseConfig, NoiseHandshake};
/// let config = NoiseConfig::new("Noise_NN_25519_ChaChaPoly_BLAKE2s")?;
/// let server = Server::bind("127.0.0.1:7000", ServerLimits::default(), TransportOptions::default())
///     .await?
///     .on_event(|event| {
///         if let Some(reason) = event.failure() {
///             eprintln!("{:?}: {reason}", event.peer());
///         }
///     });
/// server
///     .run(
///         move |_peer| Ok(Box::new(NoiseHandshake::responder(config.clone())?) as _),
///         |_peer, _stream| async { Ok(()) },
///         std::future::pending::<()>(),
///     )
///     .await;
/// # Ok(()) }
/// ```
pub struct Server {
    listener: TcpListener,
    limits: ServerLimits,
    options: TransportOptions,
    stats: Arc<ServerStats>,
    on_event: Option<EventFn>,
}

type EventFn = Arc<dyn Fn(&ServerEvent) + Send + Sync>;

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("limits", &self.limits)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds a listener on `addr`.
    pub async fn bind(
        addr: impl tokio::net::ToSocketAddrs,
        limits: ServerLimits,
        options: TransportOptions,
    ) -> Result<Server, Error> {
        Ok(Server::from_listener(
            TcpListener::bind(addr).await?,
            limits,
            options,
        ))
    }

    /// Serves on an existing listener.
    pub fn from_listener(
        listener: TcpListener,
        limits: ServerLimits,
        options: TransportOptions,
    ) -> Server {
        Server {
            listener,
            limits,
            options,
            stats: Arc::new(ServerStats::default()),
            on_event: None,
        }
    }

    /// Calls `f` for every [`ServerEvent`]. It runs on the connection's task
    /// and must not block.
    pub fn on_event(mut self, f: impl Fn(&ServerEvent) + Send + Sync + 'static) -> Server {
        self.on_event = Some(Arc::new(f));
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// The live counters (keep the `Arc` to watch them while the server runs).
    pub fn stats(&self) -> Arc<ServerStats> {
        Arc::clone(&self.stats)
    }

    fn shared(&self) -> Arc<Shared> {
        Arc::new(Shared {
            limits: self.limits.clone(),
            options: self.options.clone(),
            occupancy: Mutex::new(Occupancy::default()),
            stats: Arc::clone(&self.stats),
            on_event: self.on_event.clone(),
        })
    }

    /// Accepts connections until `shutdown` completes, each in its own task:
    /// `make_handshake` builds the responder handshake for a peer, and
    /// `handler` gets the established stream. On shutdown the listener is
    /// closed and every connection task still running is aborted.
    pub async fn run<M, H, Fut, S>(self, make_handshake: M, handler: H, shutdown: S)
    where
        M: Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error> + Send + Sync + 'static,
        H: Fn(SocketAddr, ServerStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
        S: Future<Output = ()>,
    {
        self.run_graceful(make_handshake, handler, shutdown, Duration::ZERO)
            .await;
    }

    /// [`Server::run`] with a graceful drain: when `shutdown` completes the
    /// listener is closed at once (new connections are refused by the
    /// kernel), then the connection tasks get up to `grace` to finish on
    /// their own before the rest are aborted.
    ///
    /// Handlers learn of the shutdown from the application, typically a
    /// token that the `shutdown` future cancels before it completes; an
    /// akex-mode handler then sends its authenticated close
    /// (`SinkExt::close` on its `SecureFramed`) and returns.
    pub async fn run_graceful<M, H, Fut, S>(
        self,
        make_handshake: M,
        handler: H,
        shutdown: S,
        grace: Duration,
    ) where
        M: Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error> + Send + Sync + 'static,
        H: Fn(SocketAddr, ServerStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
        S: Future<Output = ()>,
    {
        let shared = self.shared();
        let listener = self.listener;
        let make_handshake = Arc::new(make_handshake);
        let handler = Arc::new(handler);
        let mut tasks = JoinSet::new();
        // Which peer each task serves, to report a handler that panicked.
        let mut peers: HashMap<tokio::task::Id, SocketAddr> = HashMap::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    reap(&shared, &mut peers, joined);
                }
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        if let Some(slot) = admit(&shared, peer, &tcp) {
                            let (m, h) = (Arc::clone(&make_handshake), Arc::clone(&handler));
                            let task = tasks.spawn(async move {
                                let _ = run_connection(tcp, peer, slot, &*m, |p, s| h(p, s)).await;
                            });
                            peers.insert(task.id(), peer);
                        }
                    }
                    Err(error) => {
                        bump(&shared.stats.accept_errors);
                        shared.emit(ServerEvent::AcceptFailed { error });
                        // Typically EMFILE: give the connections time to end.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        if !grace.is_zero() {
            let drained = async {
                while let Some(joined) = tasks.join_next_with_id().await {
                    reap(&shared, &mut peers, joined);
                }
            };
            let _ = tokio::time::timeout(grace, drained).await;
        }
        tasks.shutdown().await;
    }

    /// Accepts exactly one connection and serves it in the calling task,
    /// returning how it ended (the same outcome is also sent as an event).
    pub async fn serve_one<M, H, Fut>(&self, make_handshake: M, handler: H) -> Result<(), Error>
    where
        M: Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error>,
        H: FnOnce(SocketAddr, ServerStream) -> Fut,
        Fut: Future<Output = Result<(), Error>>,
    {
        let shared = self.shared();
        loop {
            let (tcp, peer) = self.listener.accept().await?;
            if let Some(slot) = admit(&shared, peer, &tcp) {
                return run_connection(tcp, peer, slot, &make_handshake, handler).await;
            }
        }
    }
}

/// Counts an accepted connection and takes its slots, or closes it and
/// reports which limit stopped it.
fn admit(shared: &Arc<Shared>, peer: SocketAddr, tcp: &TcpStream) -> Option<Slot> {
    bump(&shared.stats.accepted);
    match shared.admit(peer.ip()) {
        Ok(slot) => Some(slot),
        Err(reason) => {
            bump(&shared.stats.rejected);
            // Close without lingering: the peer gets a reset, we keep nothing.
            let _ = tcp.set_zero_linger();
            shared.emit(ServerEvent::Rejected { peer, reason });
            None
        }
    }
}

/// Runs one admitted connection to its end, emitting its events; returns
/// its outcome (a copy of the error in the event, if it failed).
async fn run_connection<M, H, Fut>(
    tcp: TcpStream,
    peer: SocketAddr,
    mut slot: Slot,
    make_handshake: &M,
    handler: H,
) -> Result<(), Error>
where
    M: Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error>,
    H: FnOnce(SocketAddr, ServerStream) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let shared = Arc::clone(&slot.shared);
    let stats = &shared.stats;
    let _ = tcp.set_nodelay(true);
    let io = IdleTimeout::new(tcp, shared.limits.idle_timeout);
    let stream = match make_handshake(peer) {
        Ok(handshake) => accept(io, handshake, &shared.options)
            .await
            .map_err(unwrap_io),
        Err(e) => Err(e),
    };
    slot.release_half_open();
    let stream = match stream {
        Ok(stream) => stream,
        Err(error) => {
            bump(&stats.handshakes_failed);
            drop(slot);
            let outcome = Err(clone_error(&error));
            shared.emit(ServerEvent::HandshakeFailed { peer, error });
            return outcome;
        }
    };
    bump(&stats.handshakes_ok);
    shared.emit(ServerEvent::Established {
        peer,
        info: stream.session_info().clone(),
    });
    let result = handler(peer, stream).await.map_err(unwrap_io);
    // Give the slot back before the event, so an observer that saw the
    // event sees the counters without this connection.
    drop(slot);
    match result {
        Ok(()) => {
            bump(&stats.closed_ok);
            shared.emit(ServerEvent::Closed { peer });
            Ok(())
        }
        Err(error) => {
            bump(&stats.connections_failed);
            let outcome = Err(clone_error(&error));
            shared.emit(ServerEvent::ConnectionFailed { peer, error });
            outcome
        }
    }
}

/// Recovers an akex error that travelled through `std::io::Error` (for
/// example an idle timeout raised by [`IdleTimeout`] under the codec).
fn unwrap_io(error: Error) -> Error {
    match error {
        Error::Io(io) => Error::from_io(io),
        other => other,
    }
}

/// `Error` is not `Clone` (it may hold an `io::Error`); the event keeps the
/// original and the caller of `serve_one` gets an equivalent copy.
fn clone_error(error: &Error) -> Error {
    match error {
        Error::PeerMisbehaved(e) => Error::PeerMisbehaved(*e),
        Error::PeerIncompatible(e) => Error::PeerIncompatible(e.clone()),
        Error::PeerNotTrusted(e) => Error::PeerNotTrusted(e.clone()),
        Error::Config(e) => Error::Config(e.clone()),
        Error::ApiMisuse(e) => Error::ApiMisuse(*e),
        Error::Limit(e) => Error::Limit(*e),
        Error::Timeout(d) => Error::Timeout(*d),
        Error::IdleTimeout(d) => Error::IdleTimeout(*d),
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

/// An I/O object that fails with [`Error::IdleTimeout`] (wrapped in an
/// `io::Error`, see [`Error::from_io`]) when a read or write has waited on
/// the peer for longer than the idle timeout since the last byte moved.
#[derive(Debug)]
pub struct IdleTimeout<IO> {
    inner: IO,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<IO> IdleTimeout<IO> {
    /// Wraps `inner`; the clock starts now.
    pub fn new(inner: IO, idle: Duration) -> Self {
        IdleTimeout {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// The wrapped I/O object.
    pub fn get_ref(&self) -> &IO {
        &self.inner
    }

    fn progress(&mut self) {
        let deadline = Instant::now() + self.idle;
        self.timer.as_mut().reset(deadline);
    }

    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Err(Error::IdleTimeout(self.idle).into_io()),
            Poll::Pending => Ok(()),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for IdleTimeout<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.progress();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.progress();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => match this.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
