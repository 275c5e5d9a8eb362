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
mod client;
mod load;
mod server;

use client::{client, open_session, register, Session};
use load::{load, raise_fd_limit};
use server::{close_session, send_line, serve};
