//! `akex serve`: an echo server behind a handshake, over TCP or UDP.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use akex::handshake::registry;
use akex::session::{ControlType, RecordMode};
use akex::transport::datagram::{CookiePolicy, DatagramOptions, DatagramServer, SecureDatagram};
use akex::transport::{Server, ServerEvent, ServerLimits, ServerStream};
use akex::{Error, Handshake};
use clap::{Args, ValueEnum};
use futures_util::{SinkExt, StreamExt};

use crate::common::HandshakeArgs;
use crate::serve_log::ServeLog;

/// The longest idle timeout accepted: one year, in seconds.
const MAX_IDLE_SECS: u64 = 365 * 24 * 3600;
/// The largest count any limit flag accepts.
const MAX_LIMIT: u64 = 10_000_000;

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    handshake: HandshakeArgs,
    /// Address to listen on, e.g. 127.0.0.1:7000 (port 0 picks a free port).
    #[arg(long)]
    listen: SocketAddr,
    /// Serve one connection, then exit (non-zero if it failed).
    #[arg(long)]
    once: bool,
    /// Close a connection after this many seconds in which no complete
    /// message moved either way (1 to 31536000, one year); bytes that never
    /// complete a message do not count.
    #[arg(long, default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=MAX_IDLE_SECS))]
    idle_timeout: u64,
    /// Handshakes in progress at once over all peers; past it new
    /// connections are told the server is busy.
    #[arg(long, default_value_t = ServerLimits::default().max_half_open as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    max_half_open: u64,
    /// Handshakes in progress at once from one IP address; past it a new
    /// connection waits for a slot until its handshake deadline (--timeout),
    /// then is told the server is busy.
    #[arg(long, default_value_t = ServerLimits::default().max_half_open_per_ip as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    max_half_open_per_ip: u64,
    /// Connections waiting for such a slot, over all peers; past it new
    /// connections are told the server is busy (0: none wait).
    #[arg(long, default_value_t = ServerLimits::default().max_queued as u64,
          value_parser = clap::value_parser!(u64).range(0..=MAX_LIMIT))]
    max_queued: u64,
    /// Open connections (waiting, in their handshake or established) over
    /// all peers; past it new connections are told the server is busy.
    #[arg(long, default_value_t = ServerLimits::default().max_connections as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    max_connections: u64,
    /// Open connections from one IP address; past it new connections from
    /// it are told the server is busy.
    #[arg(long, default_value_t = ServerLimits::default().max_connections_per_ip as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    max_connections_per_ip: u64,
    /// Seconds over which repeated log lines of one kind are counted
    /// instead of printed one by one (1 to 3600).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    log_interval: u64,
    /// Datagram mode over UDP (connection ids, cookies, anti-amplification,
    /// handshake retransmission, explicit counters and a replay window),
    /// many peers at once.
    #[arg(long)]
    udp: bool,
    /// With --udp: when a new peer must first prove its address with a
    /// cookie (one round trip more): always, or once an eighth of
    /// --max-half-open handshakes are in progress.
    #[arg(long, value_enum, default_value_t = Cookies::UnderLoad, requires = "udp")]
    cookies: Cookies,
}

/// `--cookies`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cookies {
    /// For every new connection.
    Always,
    /// Once an eighth of --max-half-open handshakes are in progress.
    UnderLoad,
}

impl ServeArgs {
    fn limits(&self) -> ServerLimits {
        // Every value is range-checked by clap and fits a usize.
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        ServerLimits {
            max_half_open: n(self.max_half_open),
            max_half_open_per_ip: n(self.max_half_open_per_ip),
            max_connections: n(self.max_connections),
            max_connections_per_ip: n(self.max_connections_per_ip),
            max_queued: n(self.max_queued),
            idle_timeout: Duration::from_secs(self.idle_timeout),
        }
    }
}

pub async fn run(args: ServeArgs) -> Result<ExitCode, Error> {
    let names = args.handshake.protocols()?;
    let keys = args
        .handshake
        .verify_in_handshake(args.handshake.handshake_keys()?, false);
    // Build one handshake now so a bad configuration (a missing key, a
    // Noise name mixed into an akex allow-list) fails at start-up.
    let allowed: Vec<&str> = names.iter().map(String::as_str).collect();
    registry::responder(&allowed, &keys)?;
    let options = args.handshake.transport_options()?;
    let limits = args.limits();
    limits.validate()?;
    let protocols = names.join(",");
    // A rotated key is announced in our first handshake message too (akex
    // mode and Noise XX, over TCP and UDP), so a client that pins the old
    // key can accept the new one before it sends its own identity
    // (`verify_in_handshake`). Over UDP a message that outgrows the
    // amplification budget makes the server ask for a cookie first: one
    // more round trip, no stall.
    let can_announce = in_handshake_announcement(&names);
    let announce = match crate::common::rotation_announcement() {
        Some(a) if can_announce => Some(a.to_vec()),
        _ => None,
    };
    let make_handshake = move |_peer: SocketAddr| -> Result<Box<dyn Handshake>, Error> {
        let allowed: Vec<&str> = names.iter().map(String::as_str).collect();
        let hs = registry::responder(&allowed, &keys)?;
        Ok(match &announce {
            Some(a) => Box::new(Announcing(hs, Some(a.clone()))),
            None => hs,
        })
    };
    let interval = Duration::from_secs(args.log_interval);
    if args.udp {
        let cookies = match args.cookies {
            Cookies::Always => CookiePolicy::Always,
            Cookies::UnderLoad => CookiePolicy::UnderLoad((limits.max_half_open / 8).max(1)),
        };
        let options = DatagramOptions {
            handshake_timeout: options.handshake_timeout,
            cookies,
            ..DatagramOptions::default()
        };
        let server = DatagramServer::bind(args.listen, limits, options).await?;
        let log = ServeLog::new(interval, Some(server.datagram_stats()));
        // Tests and scripts read the bound address (port 0) from this line.
        eprintln!(
            "akex serve: listening on {} protocol={protocols} transport=udp",
            server.local_addr()?
        );
        let handler_log = Arc::clone(&log);
        let handler = move |peer, conn| echo_udp(Arc::clone(&handler_log), peer, conn);
        return serve(args.once, server, log, make_handshake, handler).await;
    }
    let server = Server::bind(args.listen, limits, options).await?;
    let log = ServeLog::new(interval, None);
    // Tests and scripts read the bound address (port 0) from this line.
    eprintln!(
        "akex serve: listening on {} protocol={protocols}",
        server.local_addr()?
    );
    // After the line above, which scripts read first.
    if crate::common::rotation_announcement().is_some() && !can_announce {
        eprintln!(
            "akex serve: note: the key was rotated, but this Noise pattern has the client use \
             the server's key before the server says anything, and Noise mode has no control \
             records: clients must take the rotation statement out of band (akex keys trust \
             --statement), or use Noise XX or an akex-* protocol"
        );
    }
    let handler_log = Arc::clone(&log);
    let handler = move |peer, stream| echo(Arc::clone(&handler_log), peer, stream);
    serve(args.once, server, log, make_handshake, handler).await
}

/// True if every allowed protocol can carry a rotation announcement in the
/// server's first handshake message to a client still holding the old
/// key: akex mode, or a Noise XX-family pattern (the client learns the
/// server's key from that message; NK, IK and KK use the pinned one from
/// the start and fail against a new key before anything is read).
fn in_handshake_announcement(names: &[String]) -> bool {
    names
        .iter()
        .all(|n| RecordMode::for_protocol(n) == RecordMode::Akex || n.starts_with("Noise_XX"))
}

/// What `serve` needs of the TCP and the UDP server.
trait Serves<H>: Sized {
    fn with_events(self, f: impl Fn(&ServerEvent) + Send + Sync + 'static) -> Self;
    async fn serve(
        self,
        make_handshake: impl Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error> + Send + Sync + 'static,
        handler: H,
        shutdown: impl std::future::Future<Output = ()>,
    );
}

impl<H, Fut> Serves<H> for Server
where
    H: Fn(SocketAddr, ServerStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    fn with_events(self, f: impl Fn(&ServerEvent) + Send + Sync + 'static) -> Self {
        self.on_event(f)
    }
    async fn serve(
        self,
        make_handshake: impl Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error> + Send + Sync + 'static,
        handler: H,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        self.run(make_handshake, handler, shutdown).await
    }
}

impl<H, Fut> Serves<H> for DatagramServer
where
    H: Fn(SocketAddr, SecureDatagram) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    fn with_events(self, f: impl Fn(&ServerEvent) + Send + Sync + 'static) -> Self {
        self.on_event(f)
    }
    async fn serve(
        self,
        make_handshake: impl Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error> + Send + Sync + 'static,
        handler: H,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        self.run(make_handshake, handler, shutdown).await
    }
}

/// Runs `server` with the aggregating log; with `once`, until the first
/// connection that was let in has ended, and reports how it ended.
async fn serve<S: Serves<H>, H>(
    once: bool,
    server: S,
    log: Arc<ServeLog>,
    make_handshake: impl Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error> + Send + Sync + 'static,
    handler: H,
) -> Result<ExitCode, Error> {
    let (done_tx, done_rx) = tokio::sync::watch::channel(None::<bool>);
    let server = server.with_events(move |event| {
        log.event(event);
        let outcome = match event {
            ServerEvent::Closed { .. } => Some(true),
            ServerEvent::HandshakeFailed { .. } | ServerEvent::ConnectionFailed { .. } => {
                Some(false)
            }
            _ => None,
        };
        if let (true, Some(ok)) = (once, outcome) {
            done_tx.send_if_modified(|done| done.is_none() && done.replace(ok).is_none());
        }
    });
    let mut done = done_rx.clone();
    let shutdown = async move {
        if !once {
            std::future::pending::<()>().await;
        }
        let _ = done.wait_for(Option::is_some).await;
    };
    server.serve(make_handshake, handler, shutdown).await;
    let ok = done_rx.borrow().unwrap_or(false);
    Ok(if !once || ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Refuses an untrusted peer (`--trust`/`--trust-store`) before any data
/// and records the key's use.
fn admit_peer(remote_static: Option<&akex::PublicKey>) -> Result<(), Error> {
    crate::common::check_peer(remote_static)?;
    crate::common::record_use();
    Ok(())
}

/// Echoes every message until the peer closes; the server's idle timeout
/// ends a silent connection.
async fn echo(log: Arc<ServeLog>, peer: SocketAddr, stream: ServerStream) -> Result<(), Error> {
    admit_peer(stream.session_info().remote_static.as_ref())?;
    let akex_mode = stream.session_info().mode == RecordMode::Akex;
    let mut messages = stream.into_messages();
    // `--key` made by `akex keys rotate`: announce the rotation first, as a
    // control record (akex mode only: Noise transport messages have no
    // record types, see `run`).
    if let (Some(announcement), true) = (crate::common::rotation_announcement(), akex_mode) {
        messages
            .send_control(ControlType::RotationAnnouncement, announcement)
            .await?;
    }
    let mut count = 0u64;
    while let Some(message) = messages.next().await {
        messages.send(message?.freeze()).await?;
        count += 1;
    }
    // The client ended its direction with a close record: end ours too.
    let _ = messages.close().await;
    log.closed(peer, count);
    Ok(())
}

/// `--udp`: the same echo over a datagram connection; the server's idle
/// timeout ends a silent one.
async fn echo_udp(
    log: Arc<ServeLog>,
    peer: SocketAddr,
    mut conn: SecureDatagram,
) -> Result<(), Error> {
    admit_peer(conn.session_info().remote_static.as_ref())?;
    let mut count = 0u64;
    while let Some(message) = conn.recv().await? {
        conn.send(&message).await?;
        count += 1;
    }
    log.closed(peer, count);
    Ok(())
}

/// A responder whose first handshake message carries the rotation
/// announcement as its payload.
struct Announcing(Box<dyn Handshake>, Option<Vec<u8>>);

impl Handshake for Announcing {
    fn protocol(&self) -> &str {
        self.0.protocol()
    }
    fn role(&self) -> akex::Role {
        self.0.role()
    }
    fn wants_write(&self) -> bool {
        self.0.wants_write()
    }
    fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        match (self.1.take(), payload.is_empty()) {
            (Some(a), true) => self.0.write_message(&a, out),
            _ => self.0.write_message(payload, out),
        }
    }
    fn read_message(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        self.0.read_message(message, payload)
    }
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
    fn finish(&mut self) -> Result<akex::Established, Error> {
        self.0.finish()
    }
    fn remote_static(&self) -> Option<akex::PublicKey> {
        self.0.remote_static()
    }
}
