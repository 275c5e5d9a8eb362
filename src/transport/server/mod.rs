//! A TCP accept loop with denial-of-service limits.
//!
//! [`Server`] accepts connections, runs the responder handshake on each in
//! its own task and hands every established session to a handler. It bounds
//! what any peer can hold ([`ServerLimits`]):
//!
//! | limit | default | on excess |
//! |---|---|---|
//! | half-open handshakes, all peers ([`ServerLimits::max_half_open`]) | 1024 | turned away as busy at once |
//! | half-open handshakes per source IP ([`ServerLimits::max_half_open_per_ip`]) | 16 | waits for a slot for up to ¾ of the handshake timeout, then busy |
//! | connections waiting for such a slot ([`ServerLimits::max_queued`]) | 1024 | busy at once |
//! | open connections, all peers ([`ServerLimits::max_connections`]) | 10000 | busy at once |
//! | open connections per source IP ([`ServerLimits::max_connections_per_ip`]) | 1024 | busy at once |
//! | handshake time, waiting included ([`TransportOptions::handshake_timeout`]) | 10 s | closed, `Error::Timeout` |
//! | frame size ([`TransportOptions::max_frame_len`]) | 65535 | closed, `FrameTooLarge` |
//! | idle time, no complete frame moved either way ([`ServerLimits::idle_timeout`]) | 60 s | closed, `Error::IdleTimeout` |
//!
//! "Busy" means the server writes one empty frame (`00 00`, which no
//! handshake message or record can be) and closes; the client's handshake
//! then fails with [`Error::ServerBusy`], which it may retry later.
//!
//! Every connection that does not end cleanly produces a [`ServerEvent`]
//! with a reason, delivered to the callback given to [`Server::on_event`];
//! the library itself never prints. [`ServerStats`] counts everything.

mod events;
mod idle;
mod limits;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::driver::{accept, TransportOptions};
use super::stream::SecureStream;
use crate::error::Error;
use crate::handshake::Handshake;

pub(crate) use events::{bump, clone_error, unwrap_io, EventFn};
pub use events::{ServerEvent, ServerStats, StatsSnapshot};
pub use idle::IdleTimeout;
pub(crate) use idle::{deadline_after, deadline_after_from};
pub use limits::{RejectReason, ServerLimits};
pub(crate) use limits::{Shared, Slot};

/// The stream a [`Server`] hands to its handler.
pub type ServerStream = SecureStream<IdleTimeout<TcpStream>>;

/// What a server sends to turn a client away: one empty frame.
pub const BUSY_FRAME: [u8; 2] = [0, 0];

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
    /// Binds a listener on `addr`. Fails on limits that would refuse
    /// everything ([`ServerLimits::validate`]).
    pub async fn bind(
        addr: impl tokio::net::ToSocketAddrs,
        limits: ServerLimits,
        options: TransportOptions,
    ) -> Result<Server, Error> {
        limits.validate()?;
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
        Shared::new(
            self.limits.clone(),
            Arc::clone(&self.stats),
            self.on_event.clone(),
        )
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
        let options = Arc::new(self.options);
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
                            let options = Arc::clone(&options);
                            let task = tasks.spawn(async move {
                                let _ = run_connection(tcp, peer, slot, &options, &*m, |p, s| h(p, s))
                                    .await;
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
                return run_connection(tcp, peer, slot, &self.options, &make_handshake, handler)
                    .await;
            }
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
            error: Error::Io(std::io::Error::other("connection handler panicked")),
        });
    }
}

/// Counts an accepted connection and takes its slots, or tells the peer
/// the server is busy, closes, and reports which limit stopped it.
fn admit(shared: &Arc<Shared>, peer: SocketAddr, tcp: &TcpStream) -> Option<Slot> {
    bump(&shared.stats.accepted);
    match shared.admit(peer.ip(), true) {
        Ok(slot) => Some(slot),
        Err(reason) => {
            bump(&shared.stats.rejected);
            // Without waiting: the accept loop must not stall on one peer.
            // Bytes the peer already sent are read first, so that closing
            // sends a FIN after the busy frame rather than a reset.
            let mut sink = [0u8; 4096];
            for _ in 0..16 {
                if !matches!(tcp.try_read(&mut sink), Ok(n) if n > 0) {
                    break;
                }
            }
            let _ = tcp.try_write(&BUSY_FRAME);
            shared.emit(ServerEvent::Rejected { peer, reason });
            None
        }
    }
}

/// Tells a connection that waited in vain that the server is busy.
async fn send_busy(tcp: &mut TcpStream) {
    let farewell = async {
        let _ = tcp.write_all(&BUSY_FRAME).await;
        let _ = tcp.shutdown().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), farewell).await;
}

/// Runs one admitted connection to its end, emitting its events; returns
/// its outcome (a copy of the error in the event, if it failed).
async fn run_connection<M, H, Fut>(
    mut tcp: TcpStream,
    peer: SocketAddr,
    mut slot: Slot,
    options: &TransportOptions,
    make_handshake: &M,
    handler: H,
) -> Result<(), Error>
where
    M: Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error>,
    H: FnOnce(SocketAddr, ServerStream) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let shared = Arc::clone(slot.shared());
    let stats = &shared.stats;
    let _ = tcp.set_nodelay(true);
    // The deadline covers the wait for a slot and the handshake; a wait
    // leaves at least a quarter of it for the handshake, so no DH is spent
    // on one that could not finish.
    let deadline = deadline_after(options.handshake_timeout);
    if slot.is_queued() {
        let wait_until = deadline_after(options.handshake_timeout.mul_f64(0.75));
        if let Err(reason) = slot.wait_for_half_open(wait_until).await {
            bump(&stats.rejected);
            send_busy(&mut tcp).await;
            drop(slot);
            shared.emit(ServerEvent::Rejected { peer, reason });
            return Err(Error::ServerBusy);
        }
    }
    let io = IdleTimeout::new(tcp, shared.limits.idle_timeout);
    let stream = match make_handshake(peer) {
        Ok(handshake) => tokio::time::timeout_at(deadline, accept(io, handshake, options))
            .await
            .unwrap_or(Err(Error::Timeout(options.handshake_timeout)))
            .map_err(unwrap_io),
        Err(e) => Err(e),
    };
    slot.established();
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
