//! A two-party encrypted chat over TCP: each typed line goes to the other
//! side as one Noise transport message, and the other side's lines are
//! printed with a `<peer-key>` prefix. The peer's static key is pinned: a
//! peer holding any other key fails the handshake.
//!
//! Make a key for each side (each command prints the public key):
//!
//! ```text
//! cargo run -- keygen --output a.key        # prints A_PUB
//! cargo run -- keygen --output b.key        # prints B_PUB
//! ```
//!
//! Terminal 1 listens (`--peer-key` is optional for the listener; without it
//! any dialer is accepted and its key is printed so you can check it):
//!
//! ```text
//! cargo run --example p2p_chat -- listen --addr 127.0.0.1:7000 --identity a.key --peer-key B_PUB
//! ```
//!
//! Terminal 2 dials, pinning the listener's key:
//!
//! ```text
//! cargo run --example p2p_chat -- dial --addr 127.0.0.1:7000 --identity b.key --peer-key A_PUB
//! ```
//!
//! Identities can also come from the key store (`akex keys`), with the
//! peer's key taken from a pin in the store's trust store; the store
//! passphrase is read from `AKEX_PASSPHRASE`:
//!
//! ```text
//! cargo run -- keys --store alice generate --name me      # and bob's store likewise
//! cargo run -- keys --store bob show --name me --json > bob.json
//! cargo run -- keys --store alice trust --name bob --from bob.json   # and the other way
//! cargo run --example p2p_chat -- listen --addr 127.0.0.1:7000 --store alice --key me --peer bob
//! cargo run --example p2p_chat -- dial --addr 127.0.0.1:7000 --store bob --key me --peer alice
//! ```
//!
//! Both sides must use the same `--pattern`: `IK` (the default; the dialer
//! knows the listener's key in advance, one round trip) or `XX` (keys are
//! exchanged in the handshake and then checked against `--peer-key`; hides
//! the dialer's identity from passive observers and from a wrong listener).
//! The protocol is `Noise_<pattern>_25519_ChaChaPoly_BLAKE2s` with the
//! prologue `akex p2p_chat v1`.
//!
//! `listen --addr 127.0.0.1:0` picks a free port; the listener always prints
//! `p2p_chat: listening on ADDR` on stderr once bound. It serves one chat:
//! failed handshakes are reported and it keeps waiting; after a successful
//! one it stops accepting. Ctrl-D (end of input) closes your sending side;
//! the program exits once both sides have closed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use akex::error::{ConfigError, KeyStoreError};
use akex::keys::StaticSecret;
use akex::keys::{
    decode_public_key, encode_public_key, load_identity, now_unix, KeyStore, Passphrase,
};
use akex::session::MAX_PLAINTEXT_LEN;
use akex::transport::{accept, connect, TransportOptions};
use akex::{Error, NoiseConfig, NoiseHandshake};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PROLOGUE: &[u8] = b"akex p2p_chat v1";

/// Encrypted two-party chat over a Noise handshake (see the file header).
#[derive(Parser, Debug)]
#[command(name = "p2p_chat")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Wait for the other side to dial in.
    Listen {
        /// Address to listen on, e.g. 127.0.0.1:7000 (port 0 picks a free port).
        #[arg(long)]
        addr: SocketAddr,
        #[command(flatten)]
        keys: KeyArgs,
        /// Noise pattern; both sides must agree.
        #[arg(long, value_enum, ignore_case = true, default_value = "IK")]
        pattern: Pattern,
    },
    /// Connect to a listening peer.
    Dial {
        /// The listener's address, e.g. 127.0.0.1:7000.
        #[arg(long)]
        addr: String,
        #[command(flatten)]
        keys: KeyArgs,
        /// Noise pattern; both sides must agree.
        #[arg(long, value_enum, ignore_case = true, default_value = "IK")]
        pattern: Pattern,
    },
}

/// Where our identity and the peer's key come from.
#[derive(Args, Debug)]
struct KeyArgs {
    /// Our X25519 private key file (from `akex keygen`).
    #[arg(long, required_unless_present = "key", conflicts_with = "key")]
    identity: Option<PathBuf>,
    /// Our identity by name from the key store (`akex keys generate`); the
    /// passphrase comes from AKEX_PASSPHRASE.
    #[arg(long)]
    key: Option<String>,
    /// The key store directory (default: the one `akex keys` uses).
    #[arg(long)]
    store: Option<PathBuf>,
    /// The peer's public key (base64), pinned: only this key is accepted.
    /// Required to dial (or give --peer).
    #[arg(long, conflicts_with = "peer")]
    peer_key: Option<String>,
    /// The peer's key from the pin with this name in the store's trust
    /// store (`akex keys trust`).
    #[arg(long)]
    peer: Option<String>,
}

impl KeyArgs {
    fn store_dir(&self) -> Result<PathBuf, Error> {
        self.store
            .clone()
            .or_else(KeyStore::default_dir)
            .ok_or_else(|| {
                ConfigError::Invalid("no key store directory: give --store".into()).into()
            })
    }

    /// Our static key, from the file or the store.
    fn identity(&self) -> Result<StaticSecret, Error> {
        if let Some(path) = &self.identity {
            return load_identity(path);
        }
        let name = self
            .key
            .as_deref()
            .ok_or_else(|| Error::from(ConfigError::Invalid("give --identity or --key".into())))?;
        let store = KeyStore::open(self.store_dir()?)?;
        let entry = store
            .find(name)
            .ok_or_else(|| KeyStoreError::NotFound(name.into()))?;
        let passphrase = if entry.encrypted {
            let passphrase = std::env::var("AKEX_PASSPHRASE").map_err(|_| {
                KeyStoreError::NoPassphrase("set AKEX_PASSPHRASE to unlock the key".into())
            })?;
            Some(Passphrase::new(passphrase))
        } else {
            None
        };
        store.load(name, passphrase.as_ref())?.static_secret()
    }

    /// The pinned peer key, if any.
    fn peer_key(&self) -> Result<Option<[u8; 32]>, Error> {
        if let Some(key) = &self.peer_key {
            return decode_public_key(key).map(Some);
        }
        let Some(name) = &self.peer else {
            return Ok(None);
        };
        let trust = KeyStore::open(self.store_dir()?)?.trust_store()?;
        let key = trust.pinned_key(name, now_unix())?;
        <[u8; 32]>::try_from(key.as_slice())
            .map(Some)
            .map_err(|_| ConfigError::InvalidKey("the pinned key is not an X25519 key").into())
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Pattern {
    #[value(name = "IK")]
    Ik,
    #[value(name = "XX")]
    Xx,
}

impl Pattern {
    fn protocol(self) -> &'static str {
        match self {
            Pattern::Ik => "Noise_IK_25519_ChaChaPoly_BLAKE2s",
            Pattern::Xx => "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p2p_chat: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), Error> {
    let options = TransportOptions::default();
    match command {
        Command::Listen {
            addr,
            keys,
            pattern,
        } => {
            let key = keys.identity()?;
            let pinned = keys.peer_key()?;
            let mut config = NoiseConfig::new(pattern.protocol())?
                .prologue(PROLOGUE)
                .local_static(key.clone());
            if let Some(peer) = pinned {
                config = config.remote_static(akex::PublicKey::x25519(peer));
            }
            // Check the configuration before opening the port.
            NoiseHandshake::responder(config.clone())?;
            eprintln!(
                "p2p_chat: my public key: {}",
                encode_public_key(key.public())
            );
            let listener = TcpListener::bind(addr).await?;
            // Scripts and tests read the bound address (port 0) from this line.
            eprintln!(
                "p2p_chat: listening on {} ({})",
                listener.local_addr()?,
                pattern.protocol()
            );
            loop {
                let (tcp, from) = listener.accept().await?;
                let _ = tcp.set_nodelay(true);
                let handshake = Box::new(NoiseHandshake::responder(config.clone())?);
                match accept(tcp, handshake, &options).await {
                    Ok(stream) => return chat(stream, pinned.is_some()).await,
                    Err(e) => eprintln!("p2p_chat: {from}: handshake failed: {e}; still listening"),
                }
            }
        }
        Command::Dial {
            addr,
            keys,
            pattern,
        } => {
            let key = keys.identity()?;
            let pinned = keys.peer_key()?.ok_or_else(|| {
                Error::from(ConfigError::Invalid(
                    "dialing needs the listener's key: give --peer-key or --peer".into(),
                ))
            })?;
            let config = NoiseConfig::new(pattern.protocol())?
                .prologue(PROLOGUE)
                .local_static(key.clone())
                .remote_static(akex::PublicKey::x25519(pinned));
            let handshake = Box::new(NoiseHandshake::initiator(config)?);
            eprintln!(
                "p2p_chat: my public key: {}",
                encode_public_key(key.public())
            );
            let tcp = TcpStream::connect(&addr).await?;
            let _ = tcp.set_nodelay(true);
            let stream = connect(tcp, handshake, &options).await?;
            chat(stream, true).await
        }
    }
}

/// Runs the chat until both sides have closed their sending half.
async fn chat(stream: akex::transport::SecureStream<TcpStream>, pinned: bool) -> Result<(), Error> {
    let info = stream.session_info().clone();
    let peer_addr = stream.get_ref().peer_addr()?;
    let peer_key = info
        .remote_static
        .as_deref()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .map(|k| encode_public_key(&k))
        .unwrap_or_else(|| "?".into());
    eprintln!(
        "p2p_chat: connected to {peer_addr}, peer key {peer_key} ({}), handshake hash {}",
        if pinned {
            "pinned"
        } else {
            "NOT pinned: check it out of band"
        },
        hex_prefix(&info.handshake_hash),
    );
    eprintln!("p2p_chat: type lines to send; Ctrl-D to stop sending");
    let prefix = format!("<{}>", &peer_key[..peer_key.len().min(8)]);

    // A plain thread reads stdin: a blocking read cannot be cancelled, and a
    // std thread (unlike tokio's stdin) never holds up the runtime's exit.
    let (line_tx, mut lines) = mpsc::channel::<String>(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if line_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });

    let mut messages = stream.into_messages();
    let (mut sending, mut receiving) = (true, true);
    while sending || receiving {
        tokio::select! {
            line = lines.recv(), if sending => match line {
                Some(line) => {
                    for chunk in chunks(&line, MAX_PLAINTEXT_LEN) {
                        messages.feed(Bytes::copy_from_slice(chunk.as_bytes())).await?;
                    }
                    messages.flush().await?;
                }
                None => {
                    sending = false;
                    // Half-close: the peer sees the end, and we keep reading.
                    messages.close().await?;
                    if receiving {
                        eprintln!("p2p_chat: you stopped sending; waiting for the peer to finish");
                    }
                }
            },
            message = messages.next(), if receiving => match message {
                Some(message) => {
                    let text = String::from_utf8_lossy(&message?).into_owned();
                    println!("{prefix} {}", printable(&text));
                }
                None => {
                    receiving = false;
                    if sending {
                        eprintln!("p2p_chat: the peer stopped sending; Ctrl-D to quit");
                    }
                }
            },
        }
    }
    eprintln!("p2p_chat: chat closed");
    Ok(())
}

/// Splits `text` into pieces of at most `max` bytes, on character boundaries.
fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// The peer's text with control characters escaped, so a peer cannot drive
/// our terminal with escape sequences.
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

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
