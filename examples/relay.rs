//! A relay that holds many akex sessions at once and forwards text messages
//! between named clients, with limits and a graceful shutdown: on Ctrl-C it
//! stops taking new sessions and ends every open one with an authenticated
//! close record.
//!
//! ```text
//! cargo run -- keygen --output relay.key     # prints RELAY_PUB (optional: without
//!                                            # --identity the relay makes a fresh key)
//! cargo run --example relay -- serve --listen 127.0.0.1:7000 --identity relay.key
//! cargo run --example relay -- client --connect 127.0.0.1:7000 --peer-key RELAY_PUB --name alice
//! cargo run --example relay -- client --connect 127.0.0.1:7000 --peer-key RELAY_PUB --name bob
//! cargo run --release --example relay -- load --connect 127.0.0.1:7000 --peer-key RELAY_PUB --clients 2000
//! cargo run --release --example relay -- load --connect 127.0.0.1:7000 --peer-key RELAY_PUB --clients 2000 --hold
//! ```
//!
//! Sessions use `akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256` (any
//! akex-mode protocol keyed by X25519 statics works with `--protocol`;
//! Noise-mode names are refused because they have no authenticated close).
//! Every record is one text line:
//!
//! - client → relay, first: `HELLO <name>`; the relay answers `OK welcome
//!   <name>`, or `ERR <why>` (name taken or malformed) and closes. A client's
//!   identity is the static key the handshake authenticated; the name is a
//!   label bound to that key for as long as the session lasts (first come,
//!   first served; the relay logs name and key).
//! - client → relay: `TO <name> <text>`; the relay forwards `FROM <sender>
//!   <text>` to the named client, or answers `ERR no such peer: <name>`.
//! - Ctrl-D (end of input) or Ctrl-C in a client sends an authenticated
//!   close; the relay answers with its own. A client prints `relay:
//!   authenticated close from the relay` when the relay's close arrives.
//!
//! Limits (`serve --help`): `--max-clients` open connections, the
//! transport server's half-open limits and handshake timeout, an idle
//! timeout, `--max-message` bytes per message (a larger message gets an
//! `ERR`; a frame beyond the transport's frame limit closes the
//! connection), and a bounded outbound queue per client (`--queue`): a
//! client that does not read fast enough is disconnected instead of
//! growing the relay's memory.
//!
//! The relay shuts down on Ctrl-C, on a line `quit` on its stdin, or after
//! `--shutdown-after SECS`: new connections are refused, every session gets
//! an authenticated close (waiting up to `--grace` seconds for the client's
//! close in return), and it prints `relay: shut down: served N sessions,
//! forwarded M messages, ...` on stdout. `serve --listen 127.0.0.1:0`
//! picks a free port; the relay prints `relay: listening on ADDR` on stderr
//! once bound.
//!
//! `load` opens `--clients` sessions at once (at most `--concurrency`
//! handshakes in flight, below the relay's per-address half-open limit),
//! has each send `--messages` messages to the next one in a ring, then
//! closes them all, or with `--hold` keeps them open until the relay closes
//! them (Ctrl-C the relay to see thousands of authenticated closes), and
//! prints `load: ... N authenticated closes, 0 failures` on stdout. Raise
//! `ulimit -n` for more than about 1000 clients on one machine (both
//! programs raise their soft limit to the hard one).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use akex::crypto::OsRng;
use akex::PublicKey;

use akex::handshake::hybrid::HYBRID_XX;
use akex::handshake::registry::{self, HandshakeKeys, Mode};
use akex::keys::StaticSecret;
use akex::keys::{decode_public_key, encode_public_key, load_identity};
use akex::session::SessionInfo;
use akex::transport::{
    connect, SecureFramed, Server, ServerEvent, ServerLimits, ServerStats, ServerStream,
    TransportOptions,
};
use akex::Error;
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const PROLOGUE: &[u8] = b"akex relay v1";
/// Room for the handshake messages of every akex protocol (the largest,
/// PQ-IK's first, is about 3.6 KB), whatever `--max-message` says.
const MIN_FRAME: usize = 4096;
/// Record type byte and AEAD tag around each message.
const RECORD_OVERHEAD: usize = 1 + 16;
const MAX_NAME: usize = 32;

/// A relay between named akex clients (see the file header).
#[derive(Parser, Debug)]
#[command(name = "relay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the relay until Ctrl-C, `quit` on stdin or --shutdown-after.
    Serve(ServeArgs),
    /// Join as a named client: stdin lines are sent, relay lines printed.
    Client(ClientArgs),
    /// Open many sessions at once and pass messages between them.
    Load(LoadArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:7000 (port 0 picks a free port).
    #[arg(long)]
    listen: SocketAddr,
    /// Our X25519 private key file (from `akex keygen`); a fresh key if absent.
    #[arg(long)]
    identity: Option<PathBuf>,
    /// An akex-mode protocol keyed by X25519 statics.
    #[arg(long, default_value = HYBRID_XX)]
    protocol: String,
    /// Open connections at most (further ones are closed at once).
    #[arg(long, default_value_t = 10_000)]
    max_clients: usize,
    /// Handshakes in progress at most, all addresses together.
    #[arg(long, default_value_t = 1024)]
    max_half_open: usize,
    /// Handshakes in progress at most from one IP address.
    #[arg(long, default_value_t = 16)]
    max_half_open_per_ip: usize,
    /// Seconds for a handshake, and then for the client's HELLO.
    #[arg(long, default_value_t = 10)]
    handshake_timeout: u64,
    /// Seconds without a byte either way before a connection is closed.
    #[arg(long, default_value_t = 300)]
    idle_timeout: u64,
    /// Largest message in bytes.
    #[arg(long, default_value_t = 4096)]
    max_message: usize,
    /// Messages waiting for one client at most; beyond, it is disconnected.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// Shut down after this many seconds.
    #[arg(long)]
    shutdown_after: Option<u64>,
    /// Seconds each session gets to close on shutdown.
    #[arg(long, default_value_t = 5)]
    grace: u64,
}

#[derive(Args, Debug)]
struct ConnectArgs {
    /// The relay's address, e.g. 127.0.0.1:7000.
    #[arg(long)]
    connect: String,
    /// The relay's public key (base64), pinned; without it any key is accepted.
    #[arg(long)]
    peer_key: Option<String>,
    /// Protocol; the relay must offer it.
    #[arg(long, default_value = HYBRID_XX)]
    protocol: String,
}

#[derive(Args, Debug)]
struct ClientArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    /// The name other clients send to.
    #[arg(long)]
    name: String,
    /// Our X25519 private key file; a fresh key if absent.
    #[arg(long)]
    identity: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct LoadArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    /// Sessions to hold open at once.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Messages each session sends to the next.
    #[arg(long, default_value_t = 10)]
    messages: usize,
    /// Handshakes in flight at most (keep below the relay's per-IP limit).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds for each phase (connect, exchange and close).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// After the exchange, keep the sessions open until the relay closes
    /// them (e.g. on its Ctrl-C) and answer its close.
    #[arg(long)]
    hold: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Client(args) => client(args).await,
        Command::Load(args) => load(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relay: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Noise mode has no close record, so the graceful shutdown needs akex mode.
fn check_protocol(name: &str) -> Res<()> {
    if registry::mode_of(name)? != Mode::Akex {
        return Err(format!(
            "{name} is a Noise-mode protocol, which has no authenticated close; use an akex-* protocol"
        )
        .into());
    }
    Ok(())
}

fn short_key(key: &[u8; 32]) -> String {
    encode_public_key(key).chars().take(8).collect()
}

fn peer_key(info: &SessionInfo) -> Option<[u8; 32]> {
    info.remote_static
        .as_deref()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
}

// ---------------------------------------------------------------- serve

/// Who is connected, and the relay's counters.
struct Relay {
    peers: Mutex<HashMap<String, Peer>>,
    shutdown: CancellationToken,
    max_message: usize,
    queue: usize,
    hello_timeout: Duration,
    grace: Duration,
    next_id: AtomicU64,
    served: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

/// A registered client as the other sessions see it.
struct Peer {
    id: u64,
    tx: mpsc::Sender<Bytes>,
    kick: Arc<Notify>,
}

/// A session's hold on its name; gives the name back on drop.
struct Registration {
    relay: Arc<Relay>,
    name: String,
    id: u64,
    rx: mpsc::Receiver<Bytes>,
    kick: Arc<Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut peers = self.relay.peers();
        // The name may already belong to a newer session (after a kick).
        if peers.get(&self.name).is_some_and(|p| p.id == self.id) {
            peers.remove(&self.name);
        }
    }
}

impl Relay {
    fn peers(&self) -> MutexGuard<'_, HashMap<String, Peer>> {
        // Every update is a single map operation: a poisoned map is intact.
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(self: &Arc<Self>, name: &str) -> Result<Registration, String> {
        let mut peers = self.peers();
        if peers.contains_key(name) {
            return Err(format!("the name {name} is taken"));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue);
        let kick = Arc::new(Notify::new());
        let peer = Peer {
            id,
            tx,
            kick: kick.clone(),
        };
        peers.insert(name.to_string(), peer);
        Ok(Registration {
            relay: self.clone(),
            name: name.to_string(),
            id,
            rx,
            kick,
        })
    }

    /// Queues `FROM from text` for `to`, or says why not.
    fn forward(&self, from: &str, to: &str, text: &str) -> Result<(), String> {
        let mut peers = self.peers();
        let Some(peer) = peers.get(to) else {
            return Err(format!("no such peer: {to}"));
        };
        match peer.tx.try_send(Bytes::from(format!("FROM {from} {text}"))) {
            Ok(()) => {
                self.forwarded.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                // A slow consumer is dropped, not buffered without bound.
                if let Some(peer) = peers.remove(to) {
                    peer.kick.notify_one();
                }
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Err(format!("{to} was not keeping up and was disconnected"))
            }
            Err(TrySendError::Closed(_)) => Err(format!("no such peer: {to}")),
        }
    }

    /// The answer to one client message, if it needs one.
    fn handle(&self, name: &str, message: &[u8]) -> Option<String> {
        if message.len() > self.max_message {
            return Some(format!(
                "ERR message too large ({} > {} bytes)",
                message.len(),
                self.max_message
            ));
        }
        let Ok(text) = std::str::from_utf8(message) else {
            return Some("ERR messages must be UTF-8 text".into());
        };
        match text.split_once(' ') {
            Some(("TO", rest)) => {
                let (to, body) = rest.split_once(' ').unwrap_or((rest, ""));
                self.forward(name, to, body)
                    .err()
                    .map(|e| format!("ERR {e}"))
            }
            _ => Some("ERR unknown command; send TO <name> <text>".into()),
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn parse_hello(message: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(message).map_err(|_| "HELLO must be UTF-8 text")?;
    match text.strip_prefix("HELLO ") {
        Some(name) if valid_name(name) => Ok(name.to_string()),
        Some(_) => Err(format!(
            "a name is 1 to {MAX_NAME} characters from A-Z a-z 0-9 _ . -"
        )),
        None => Err("the first message must be HELLO <name>".into()),
    }
}

async fn serve(args: ServeArgs) -> Res<()> {
    check_protocol(&args.protocol)?;
    let key = match &args.identity {
        Some(path) => load_identity(path)?,
        None => StaticSecret::generate(&mut OsRng),
    };
    let public = *key.public();
    let keys = HandshakeKeys::new()
        .static_key(key)
        .prologue(PROLOGUE.to_vec());
    registry::check_responder(&[args.protocol.as_str()], &keys)?;
    let fds = raise_fd_limit();
    let (limits, options) = server_limits(&args);
    let relay = Arc::new(Relay {
        peers: Mutex::new(HashMap::new()),
        shutdown: CancellationToken::new(),
        max_message: args.max_message,
        queue: args.queue.max(1),
        hello_timeout: options.handshake_timeout,
        grace: Duration::from_secs(args.grace),
        next_id: AtomicU64::new(0),
        served: AtomicU64::new(0),
        forwarded: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    });
    let server = Server::bind(args.listen, limits, options)
        .await?
        .on_event(log_event);
    let stats = server.stats();
    eprintln!("relay: key {}", encode_public_key(&public));
    eprintln!(
        "relay: listening on {} ({}, up to {} clients, open-file limit {fds})",
        server.local_addr()?,
        args.protocol,
        args.max_clients
    );

    let protocol = args.protocol.clone();
    let token = relay.shutdown.clone();
    let make_handshake = move |_peer: SocketAddr| {
        // While draining, refuse new sessions before any handshake work.
        if token.is_cancelled() {
            return Err(Error::Io(io::Error::other("the relay is shutting down")));
        }
        registry::responder(&[protocol.as_str()], &keys)
    };
    let handler_relay = relay.clone();
    let handler = move |peer: SocketAddr, stream: ServerStream| {
        serve_session(handler_relay.clone(), peer, stream)
    };
    let shutdown = drain(relay.clone(), stats.clone(), args.shutdown_after);
    // Each session waits up to `grace` for the client's close; one more
    // second covers sending ours.
    let grace = relay.grace + Duration::from_secs(1);
    server
        .run_graceful(make_handshake, handler, shutdown, grace)
        .await;

    let s = stats.snapshot();
    println!(
        "relay: shut down: served {} sessions, forwarded {} messages, dropped {} slow clients, \
         rejected {} connections, {} failed handshakes",
        relay.served.load(Ordering::Relaxed),
        relay.forwarded.load(Ordering::Relaxed),
        relay.dropped.load(Ordering::Relaxed),
        s.rejected,
        s.handshakes_failed,
    );
    Ok(())
}

fn server_limits(args: &ServeArgs) -> (ServerLimits, TransportOptions) {
    let limits = ServerLimits {
        max_half_open: args.max_half_open,
        max_half_open_per_ip: args.max_half_open_per_ip,
        max_connections: args.max_clients,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        ..ServerLimits::default()
    };
    // Bound what one peer can make us buffer before decryption.
    let options = TransportOptions::new()
        .handshake_timeout(Duration::from_secs(args.handshake_timeout))
        .max_frame_len((args.max_message + RECORD_OVERHEAD).clamp(MIN_FRAME, 65535));
    (limits, options)
}

/// The server's shutdown future: waits for a trigger and tells every
/// session to close. `Server::run_graceful` then stops accepting and gives
/// the sessions the grace period to send their authenticated closes.
async fn drain(relay: Arc<Relay>, stats: Arc<ServerStats>, after: Option<u64>) {
    let reason = shutdown_signal(after.map(Duration::from_secs)).await;
    eprintln!(
        "relay: {reason}: shutting down, closing {} sessions",
        stats.snapshot().open
    );
    relay.shutdown.cancel();
}

/// The library never prints: the relay logs every connection that failed.
fn log_event(event: &ServerEvent) {
    if let (Some(reason), peer) = (event.failure(), event.peer()) {
        match peer {
            Some(peer) => eprintln!("relay: {peer}: {reason}"),
            None => eprintln!("relay: {reason}"),
        }
    }
}

/// Completes on Ctrl-C, a `quit` line on stdin, or after `after`.
async fn shutdown_signal(after: Option<Duration>) -> &'static str {
    let ctrl_c = async {
        // Without signal support, only the other triggers remain.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let timer = async {
        match after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => "Ctrl-C",
        () = timer => "--shutdown-after",
        () = stdin_quit() => "quit on stdin",
    }
}

/// Completes when stdin has a line `quit`; never at end of input (a relay
/// started with stdin closed keeps running).
async fn stdin_quit() {
    let (tx, rx) = oneshot::channel();
    // A std thread: a blocking read cannot be cancelled, and it must not
    // hold up the runtime's exit.
    std::thread::spawn(move || {
        for line in io::stdin().lines() {
            match line {
                Ok(line) if line.trim() == "quit" => {
                    let _ = tx.send(());
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    if rx.await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How a registered session's loop ended.
enum End {
    ClientClosed,
    Shutdown,
    TooSlow,
}

/// One client, from HELLO to close.
async fn serve_session(
    relay: Arc<Relay>,
    peer: SocketAddr,
    stream: ServerStream,
) -> Result<(), Error> {
    let key = peer_key(stream.session_info());
    let mut messages = stream.into_messages();
    let Some(key) = key else {
        return refuse(
            &relay,
            &mut messages,
            "this protocol does not authenticate clients",
        )
        .await;
    };
    let name = match read_hello(&relay, &mut messages).await {
        Ok(name) => name,
        Err(why) => return refuse(&relay, &mut messages, &why).await,
    };
    let mut registration = match relay.register(&name) {
        Ok(registration) => registration,
        Err(why) => return refuse(&relay, &mut messages, &why).await,
    };
    relay.served.fetch_add(1, Ordering::Relaxed);
    eprintln!("relay: {name} joined from {peer}, key {}", short_key(&key));
    let ended = async {
        send_line(&mut messages, &format!("OK welcome {name}")).await?;
        pump(&relay, &name, &mut messages, &mut registration).await
    }
    .await;
    drop(registration);
    let how = match &ended {
        Ok(End::ClientClosed) => "closed".to_string(),
        Ok(End::Shutdown) => "closed by the shutdown".to_string(),
        Ok(End::TooSlow) => "dropped: too slow".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    // Best effort after a failure; the failure is what gets reported.
    let closed = close_session(&mut messages, relay.grace).await;
    eprintln!("relay: {name} left ({how})");
    ended.and(closed)
}

/// Tells the client why it cannot stay, then closes.
async fn refuse<IO>(relay: &Relay, messages: &mut SecureFramed<IO>, why: &str) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let _ = send_line(messages, &format!("ERR {why}")).await;
    close_session(messages, relay.grace).await
}

/// Waits for `HELLO <name>`; an `Err` is the reason sent back.
async fn read_hello<IO>(relay: &Relay, messages: &mut SecureFramed<IO>) -> Result<String, String>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let first = tokio::select! {
        first = tokio::time::timeout(relay.hello_timeout, messages.next()) => first,
        () = relay.shutdown.cancelled() => return Err("the relay is shutting down".into()),
    };
    match first {
        Err(_) => Err("no HELLO in time".into()),
        Ok(None) => Err("closed before HELLO".into()),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(Some(Ok(message))) => parse_hello(&message),
    }
}

/// Moves messages both ways until the client closes, the relay shuts down
/// or the client falls too far behind.
async fn pump<IO>(
    relay: &Relay,
    name: &str,
    messages: &mut SecureFramed<IO>,
    registration: &mut Registration,
) -> Result<End, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        tokio::select! {
            () = relay.shutdown.cancelled() => return Ok(End::Shutdown),
            () = registration.kick.notified() => return Ok(End::TooSlow),
            Some(line) = registration.rx.recv() => {
                messages.feed(line).await?;
                // One flush for everything already queued (at most --queue).
                while let Ok(line) = registration.rx.try_recv() {
                    messages.feed(line).await?;
                }
                messages.flush().await?;
            }
            message = messages.next() => match message {
                None => return Ok(End::ClientClosed),
                Some(message) => {
                    if let Some(reply) = relay.handle(name, &message?) {
                        send_line(messages, &reply).await?;
                    }
                }
            },
        }
    }
}

async fn send_line<IO>(messages: &mut SecureFramed<IO>, line: &str) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    messages.send(Bytes::copy_from_slice(line.as_bytes())).await
}

/// Sends our authenticated close and waits (up to `grace`) for the peer's,
/// so the peer knows the session ended on purpose and we know it heard us.
async fn close_session<IO>(messages: &mut SecureFramed<IO>, grace: Duration) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        messages.close().await?;
        // Data still in flight from the peer is dropped.
        while let Some(message) = messages.next().await {
            message?;
        }
        Ok(())
    };
    tokio::time::timeout(grace, exchange)
        .await
        .map_err(|_| Error::Timeout(grace))?
}

// ---------------------------------------------------------------- clients

type Session = SecureFramed<TcpStream>;

/// Connects and runs the handshake, pinning the relay's key if given.
async fn open_session(conn: &ConnectArgs, key: StaticSecret) -> Res<Session> {
    let pinned = conn
        .peer_key
        .as_deref()
        .map(decode_public_key)
        .transpose()?;
    let mut keys = HandshakeKeys::new()
        .static_key(key)
        .prologue(PROLOGUE.to_vec());
    if let Some(pinned) = pinned {
        keys = keys.remote(PublicKey::x25519(pinned));
    }
    let handshake = registry::initiator(&conn.protocol, &keys)?;
    let tcp = TcpStream::connect(&conn.connect).await?;
    let _ = tcp.set_nodelay(true);
    let stream = connect(tcp, handshake, &TransportOptions::default()).await?;
    Ok(stream.into_messages())
}

/// Sends `HELLO name` and returns the relay's answer (`OK ...` or `ERR ...`).
async fn register(session: &mut Session, name: &str, wait: Duration) -> Res<String> {
    send_line(session, &format!("HELLO {name}")).await?;
    let reply = tokio::time::timeout(wait, session.next())
        .await
        .map_err(|_| "no answer to HELLO in time")?
        .ok_or("the relay closed the session without answering HELLO")??;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

async fn client(args: ClientArgs) -> Res<()> {
    check_protocol(&args.conn.protocol)?;
    let key = match &args.identity {
        Some(path) => load_identity(path)?,
        None => StaticSecret::generate(&mut OsRng),
    };
    eprintln!("relay: my key {}", encode_public_key(key.public()));
    let mut session = open_session(&args.conn, key).await?;
    let relay_key = peer_key(session.session_info()).map_or("?".into(), |k| encode_public_key(&k));
    let pinned = if args.conn.peer_key.is_some() {
        "pinned"
    } else {
        "NOT pinned: check it out of band"
    };
    eprintln!("relay: connected, relay key {relay_key} ({pinned})");
    let welcome = register(&mut session, &args.name, Duration::from_secs(30)).await?;
    println!("{}", printable(&welcome));
    if !welcome.starts_with("OK") {
        let _ = close_session(&mut session, Duration::from_secs(5)).await;
        return Err(format!("the relay refused {}: {welcome}", args.name).into());
    }
    eprintln!("relay: type `TO <name> <text>`; Ctrl-D or Ctrl-C to leave");
    chat(session).await
}

/// Sends stdin lines and prints the relay's until a close either way.
async fn chat(mut session: Session) -> Res<()> {
    let mut lines = stdin_lines();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) if line.len() > session.max_payload() => {
                    eprintln!("relay: line too long ({} bytes), not sent", line.len());
                }
                Some(line) => send_line(&mut session, &line).await?,
                None => break,
            },
            _ = &mut ctrl_c => break,
            message = session.next() => match message {
                Some(message) => print_message(&message?),
                None => {
                    eprintln!("relay: authenticated close from the relay");
                    // Answer with ours, so the relay sees a clean end too.
                    session.close().await?;
                    return Ok(());
                }
            },
        }
    }
    // We leave: our close first, the relay's in answer.
    session.close().await?;
    eprintln!("relay: sent an authenticated close; waiting for the relay's");
    let rest = async {
        while let Some(message) = session.next().await {
            print_message(&message?);
        }
        Res::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), rest)
        .await
        .map_err(|_| "the relay did not answer our close")??;
    eprintln!("relay: authenticated close from the relay");
    Ok(())
}

fn print_message(message: &[u8]) {
    println!("{}", printable(&String::from_utf8_lossy(message)));
}

/// Lines from stdin, read on a plain thread (see `stdin_quit`).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        for line in io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The text with control characters escaped, so a peer cannot drive our
/// terminal with escape sequences.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

// ---------------------------------------------------------------- load

async fn load(args: LoadArgs) -> Res<()> {
    check_protocol(&args.conn.protocol)?;
    let fds = raise_fd_limit();
    if (fds as usize) < args.clients + 64 {
        eprintln!(
            "load: warning: open-file limit {fds} is low for {} clients",
            args.clients
        );
    }
    let phase = Duration::from_secs(args.timeout);
    let conn = Arc::new(args.conn);
    let names: Arc<Vec<String>> = Arc::new(
        (0..args.clients)
            .map(|i| format!("load{}-{i}", std::process::id()))
            .collect(),
    );
    let start = Instant::now();
    let (sessions, connect_failures) =
        connect_all(&conn, &names, args.concurrency.max(1), phase).await;
    let connect_time = start.elapsed();
    eprintln!(
        "load: {} of {} sessions open in {:.2} s",
        sessions.len(),
        args.clients,
        connect_time.as_secs_f64()
    );

    let start = Instant::now();
    let (sessions, delivered, exchange_failures) =
        exchange_all(sessions, &names, args.messages, phase).await;
    let exchange_time = start.elapsed();
    if args.hold {
        eprintln!(
            "load: holding {} sessions open until the relay closes them",
            sessions.len()
        );
    }
    let count = sessions.len();
    let (closes, close_failures) = close_all(sessions, args.hold, phase).await;
    let failures = connect_failures + exchange_failures + close_failures;
    println!(
        "load: {} clients, {count} sessions, {delivered} messages delivered, {closes} authenticated \
         closes, {failures} failures (connect {:.2} s, exchange {:.2} s)",
        args.clients,
        connect_time.as_secs_f64(),
        exchange_time.as_secs_f64()
    );
    if failures > 0 {
        return Err(format!("{failures} of {} clients failed", args.clients).into());
    }
    Ok(())
}

/// Opens and registers a session per name, `concurrency` at a time.
/// Returns the open ones (by index) and how many failed.
async fn connect_all(
    conn: &Arc<ConnectArgs>,
    names: &Arc<Vec<String>>,
    concurrency: usize,
    phase: Duration,
) -> (Vec<(usize, Session)>, usize) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for i in 0..names.len() {
        let (conn, names, permits) = (conn.clone(), names.clone(), permits.clone());
        tasks.spawn(async move {
            // Held until the relay answers HELLO, i.e. until its side of
            // the handshake is done too: that keeps us under its limit.
            let _permit = permits.acquire_owned().await?;
            let mut session = open_session(&conn, StaticSecret::generate(&mut OsRng)).await?;
            let reply = register(&mut session, &names[i], phase).await?;
            if !reply.starts_with("OK") {
                return Err(format!("{}: {reply}", names[i]).into());
            }
            Res::Ok((i, session))
        });
    }
    let joined = tokio::time::timeout(phase, collect(&mut tasks)).await;
    let results = joined.unwrap_or_else(|_| vec![Err("connect phase timed out".into())]);
    let mut open = Vec::new();
    let mut failures = names.len();
    for result in results {
        match result {
            Ok(session) => {
                open.push(session);
                failures -= 1;
            }
            Err(e) => report_failure(&e),
        }
    }
    open.sort_by_key(|(i, _)| *i);
    (open, failures)
}

/// Each session sends `count` messages to the next open one (a ring) and
/// expects as many from the previous one. Returns the sessions that got
/// all theirs, the messages delivered and the failures.
async fn exchange_all(
    sessions: Vec<(usize, Session)>,
    names: &[String],
    count: usize,
    phase: Duration,
) -> (Vec<Session>, usize, usize) {
    let order: Vec<usize> = sessions.iter().map(|(i, _)| *i).collect();
    let n = order.len();
    let mut tasks = JoinSet::new();
    for (k, (i, session)) in sessions.into_iter().enumerate() {
        let to = names[order[(k + 1) % n]].clone();
        let from = names[order[(k + n - 1) % n]].clone();
        let me = names[i].clone();
        tasks.spawn(async move {
            tokio::time::timeout(phase, exchange(session, me, to, from, count))
                .await
                .map_err(|_| "exchange timed out")?
        });
    }
    let (mut done, mut failures) = (Vec::new(), 0);
    for result in collect(&mut tasks).await {
        match result {
            Ok(session) => done.push(session),
            Err(e) => {
                failures += 1;
                report_failure(&e);
            }
        }
    }
    let delivered = done.len() * count;
    (done, delivered, failures)
}

async fn exchange(
    mut session: Session,
    me: String,
    to: String,
    from: String,
    count: usize,
) -> Res<Session> {
    for j in 0..count {
        session
            .feed(Bytes::from(format!("TO {to} {me} message {j}")))
            .await?;
    }
    session.flush().await?;
    let expected = format!("FROM {from} {from} message ");
    for _ in 0..count {
        let message = session
            .next()
            .await
            .ok_or("the relay closed before all messages arrived")??;
        let text = String::from_utf8_lossy(&message);
        if !text.starts_with(&expected) {
            return Err(format!("{me}: unexpected {text:?}").into());
        }
    }
    Ok(session)
}

/// Ends every session: we close first and the relay answers, or with
/// `hold` the relay closes first (its shutdown) and we answer. Returns the
/// authenticated closes received from the relay and the failures.
async fn close_all(sessions: Vec<Session>, hold: bool, phase: Duration) -> (usize, usize) {
    let mut tasks = JoinSet::new();
    for session in sessions {
        tasks.spawn(end_session(session, hold, phase));
    }
    let (mut closes, mut failures) = (0, 0);
    for result in collect(&mut tasks).await {
        match result {
            Ok(()) => closes += 1,
            Err(e) => {
                failures += 1;
                report_failure(&e);
            }
        }
    }
    (closes, failures)
}

async fn end_session(mut session: Session, hold: bool, phase: Duration) -> Res<()> {
    if hold {
        // The relay closes first (its shutdown); we answer.
        relay_close(&mut session).await?;
        session.close().await?;
        return Ok(());
    }
    session.close().await?;
    tokio::time::timeout(phase, relay_close(&mut session))
        .await
        .map_err(|_| "no close from the relay in time")?
}

/// `None` comes only after the relay's authenticated close; an end of
/// stream without it is an error.
async fn relay_close(session: &mut Session) -> Res<()> {
    while let Some(message) = session.next().await {
        message?;
    }
    Ok(())
}

async fn collect<T: 'static>(tasks: &mut JoinSet<Res<T>>) -> Vec<Res<T>> {
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.unwrap_or_else(|e| Err(e.to_string().into())));
    }
    results
}

/// Prints the first failures only: thousands of identical lines help nobody.
fn report_failure(error: &dyn std::fmt::Display) {
    static SHOWN: AtomicU64 = AtomicU64::new(0);
    if SHOWN.fetch_add(1, Ordering::Relaxed) < 10 {
        eprintln!("load: failure: {error}");
    }
}

/// Raises the soft limit on open files to the hard limit (thousands of
/// clients need thousands of descriptors); returns the limit in force.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard))
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() =>
        {
            hard
        }
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}
