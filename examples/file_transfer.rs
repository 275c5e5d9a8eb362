//! Sends one file of any size over an akex session, with a progress bar and
//! a SHA-256 check on both sides. Nothing is resumed: a transfer that ends
//! early (connection closed, sender killed) is reported as an error and the
//! partial output file is removed.
//!
//! Make a key for each side (each command prints the public key):
//!
//! ```text
//! cargo run -- keygen --output recv.key      # prints RECV_PUB
//! cargo run -- keygen --output send.key      # prints SEND_PUB
//! ```
//!
//! Terminal 1 receives (`--peer-key` pins the sender; without it any sender
//! is accepted and its key is printed):
//!
//! ```text
//! cargo run --example file_transfer -- recv --addr 127.0.0.1:7001 --identity recv.key --output received.bin --peer-key SEND_PUB
//! ```
//!
//! Terminal 2 sends, pinning the receiver's key:
//!
//! ```text
//! cargo run --example file_transfer -- send --addr 127.0.0.1:7001 --identity send.key --peer-key RECV_PUB --file big.iso
//! ```
//!
//! `--protocol` picks any registry protocol that uses X25519 static keys
//! (both sides must agree): the default `Noise_XX_25519_ChaChaPoly_BLAKE2s`,
//! `Noise_IK_25519_ChaChaPoly_BLAKE2s` (the sender must pin the receiver's
//! key), or `akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256` for
//! post-quantum confidentiality. `recv --addr 127.0.0.1:0` picks a free
//! port; the receiver prints `file_transfer: listening on ADDR` on stderr.
//!
//! On the wire (inside the encrypted session): a header message
//! `AKEXFT1\0` ‖ file size (u64 BE) ‖ SHA-256 of the file (32 bytes), the
//! contents in messages of at most the session's payload size, then the
//! sender closes its side. The receiver checks that exactly `size` bytes
//! arrived and that their SHA-256 matches, then replies `OK` ‖ its own
//! SHA-256; the sender compares that with its own before reporting success.
//! Both sides print `sha256 HEX` on stdout when the transfer is verified.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use akex::handshake::registry::{self, HandshakeKeys};
use akex::keys::{decode_public_key, encode_public_key, load_identity};
use akex::transport::{accept, connect, SecureFramed, TransportOptions};
use akex::PublicKey;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const MAGIC: &[u8; 8] = b"AKEXFT1\0";
const HEADER_LEN: usize = 8 + 8 + 32;
const PROLOGUE: &[u8] = b"akex file_transfer v1";

/// Sends a file over an akex session (see the file header).
#[derive(Parser, Debug)]
#[command(name = "file_transfer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send a file to a listening receiver.
    Send {
        /// The receiver's address, e.g. 127.0.0.1:7001.
        #[arg(long)]
        addr: String,
        /// Our X25519 private key file (from `akex keygen`).
        #[arg(long)]
        identity: PathBuf,
        /// The receiver's public key (base64), pinned.
        #[arg(long)]
        peer_key: String,
        /// The file to send.
        #[arg(long)]
        file: PathBuf,
        /// Protocol name (`akex protocols`); both sides must agree.
        #[arg(long, default_value = "Noise_XX_25519_ChaChaPoly_BLAKE2s")]
        protocol: String,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Testing only: drop the connection after sending this many bytes
        /// of content, as if the sender had been killed.
        #[arg(long, hide = true)]
        truncate_after: Option<u64>,
    },
    /// Wait for one sender and write what it sends to a file.
    Recv {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long)]
        addr: SocketAddr,
        /// Our X25519 private key file (from `akex keygen`).
        #[arg(long)]
        identity: PathBuf,
        /// Where to write the file (removed again if the transfer fails).
        #[arg(long)]
        output: PathBuf,
        /// The sender's public key (base64): only this key is accepted.
        #[arg(long)]
        peer_key: Option<String>,
        /// Protocol name (`akex protocols`); both sides must agree.
        #[arg(long, default_value = "Noise_XX_25519_ChaChaPoly_BLAKE2s")]
        protocol: String,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Send {
            addr,
            identity,
            peer_key,
            file,
            protocol,
            quiet,
            truncate_after,
        } => {
            send(
                &addr,
                &identity,
                &peer_key,
                &file,
                &protocol,
                quiet,
                truncate_after,
            )
            .await
        }
        Command::Recv {
            addr,
            identity,
            output,
            peer_key,
            protocol,
            quiet,
        } => {
            recv(
                addr,
                &identity,
                &output,
                peer_key.as_deref(),
                &protocol,
                quiet,
            )
            .await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("file_transfer: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn handshake_keys(identity: &Path, peer_key: Option<&str>) -> Res<HandshakeKeys> {
    let mut keys = HandshakeKeys::new()
        .static_key(load_identity(identity)?)
        .prologue(PROLOGUE.to_vec());
    if let Some(key) = peer_key {
        keys = keys.remote(PublicKey::x25519(decode_public_key(key)?));
    }
    Ok(keys)
}

fn progress(len: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    bar
}

fn peer_key_text(remote: Option<&[u8]>) -> String {
    remote
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .map(|k| encode_public_key(&k))
        .unwrap_or_else(|| "(none)".into())
}

async fn file_sha256(path: &Path) -> Res<(u64, [u8; 32])> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finalize().into()))
}

async fn send(
    addr: &str,
    identity: &Path,
    peer_key: &str,
    path: &Path,
    protocol: &str,
    quiet: bool,
    truncate_after: Option<u64>,
) -> Res<()> {
    let keys = handshake_keys(identity, Some(peer_key))?;
    let handshake = registry::initiator(protocol, &keys)?;
    // Hash first, so the header carries it (a file that changes while being
    // sent then fails the receiver's check instead of passing silently).
    let (size, digest) = file_sha256(path).await?;
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let stream = connect(tcp, handshake, &TransportOptions::default()).await?;
    eprintln!(
        "file_transfer: connected to {addr} ({protocol}), receiver key {}",
        peer_key_text(stream.session_info().remote_static.as_deref())
    );
    let mut messages = stream.into_messages();

    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(&digest);
    messages.send(Bytes::from(header)).await?;

    let bar = progress(size, quiet);
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; messages.max_payload()];
    let mut sent = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        if let Some(limit) = truncate_after {
            let left = limit.saturating_sub(sent) as usize;
            if left < chunk.len() {
                chunk = &chunk[..left];
                messages.send(Bytes::copy_from_slice(chunk)).await?;
                bar.abandon();
                eprintln!(
                    "file_transfer: --truncate-after {limit}: dropping the connection after {} bytes",
                    sent + chunk.len() as u64
                );
                // Drop without an authenticated close, like a killed process.
                drop(messages);
                return Err("transfer deliberately truncated (--truncate-after)".into());
            }
        }
        messages.feed(Bytes::copy_from_slice(chunk)).await?;
        sent += n as u64;
        bar.set_position(sent);
    }
    messages.flush().await?;
    if sent != size {
        return Err(
            format!("the file changed while sending: read {sent} bytes, expected {size}").into(),
        );
    }
    // Half-close: the receiver sees the end of the content; we keep reading.
    messages.close().await?;
    bar.finish();

    let reply = match messages.next().await {
        Some(reply) => reply?,
        None => return Err("the receiver closed without confirming the transfer".into()),
    };
    if reply.len() != 2 + 32 || &reply[..2] != b"OK" {
        return Err(format!(
            "the receiver reported a failure: {}",
            String::from_utf8_lossy(&reply)
        )
        .into());
    }
    if reply[2..] != digest {
        return Err(format!(
            "SHA-256 mismatch: sent {}, the receiver computed {}",
            hex::encode(digest),
            hex::encode(&reply[2..])
        )
        .into());
    }
    eprintln!("file_transfer: sent {size} bytes, SHA-256 verified by both sides");
    println!("sha256 {}", hex::encode(digest));
    Ok(())
}

async fn recv(
    addr: SocketAddr,
    identity: &Path,
    output: &Path,
    peer_key: Option<&str>,
    protocol: &str,
    quiet: bool,
) -> Res<()> {
    let keys = handshake_keys(identity, peer_key)?;
    // Check the configuration before opening the port.
    registry::check_responder(&[protocol], &keys)?;
    if let Some(key) = keys.local_static_key() {
        eprintln!(
            "file_transfer: my public key: {}",
            encode_public_key(key.public())
        );
    }
    let listener = TcpListener::bind(addr).await?;
    // Scripts and tests read the bound address (port 0) from this line.
    eprintln!(
        "file_transfer: listening on {} ({protocol})",
        listener.local_addr()?
    );
    let (tcp, from) = listener.accept().await?;
    let _ = tcp.set_nodelay(true);
    let handshake = registry::responder(&[protocol], &keys)?;
    let stream = accept(tcp, handshake, &TransportOptions::default()).await?;
    eprintln!(
        "file_transfer: {from} connected, sender key {} ({})",
        peer_key_text(stream.session_info().remote_static.as_deref()),
        if peer_key.is_some() {
            "pinned"
        } else {
            "NOT pinned: check it out of band"
        }
    );
    let mut messages = stream.into_messages();
    match receive_into(&mut messages, output, quiet).await {
        Ok(digest) => {
            let mut reply = b"OK".to_vec();
            reply.extend_from_slice(&digest);
            messages.send(Bytes::from(reply)).await?;
            messages.close().await?;
            eprintln!("file_transfer: received {}", output.display());
            println!("sha256 {}", hex::encode(digest));
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(output);
            // Tell the sender if it is still there; ignore a dead connection.
            let _ = messages
                .send(Bytes::from(format!("ERROR {e}").into_bytes()))
                .await;
            Err(e)
        }
    }
}

/// Receives the header and contents into `output`; returns the verified
/// SHA-256.
async fn receive_into(
    messages: &mut SecureFramed<TcpStream>,
    output: &Path,
    quiet: bool,
) -> Res<[u8; 32]> {
    let header = match messages.next().await {
        Some(header) => header?,
        None => return Err("the sender closed before sending a header".into()),
    };
    if header.len() != HEADER_LEN || &header[..8] != MAGIC {
        return Err("malformed header".into());
    }
    let size = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
    let expected: [u8; 32] = header[16..48].try_into().expect("32 bytes");
    eprintln!(
        "file_transfer: receiving {size} bytes, SHA-256 {}",
        hex::encode(expected)
    );

    let bar = progress(size, quiet);
    let mut file = std::fs::File::create(output)?;
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while let Some(chunk) = messages.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                bar.abandon();
                return Err(
                    format!("connection failed after {received} of {size} bytes: {e}").into(),
                );
            }
        };
        received += chunk.len() as u64;
        if received > size {
            bar.abandon();
            return Err(format!("the sender sent more than the announced {size} bytes").into());
        }
        hasher.update(&chunk);
        file.write_all(&chunk)?;
        bar.set_position(received);
    }
    file.flush()?;
    if received != size {
        bar.abandon();
        return Err(format!(
            "transfer truncated: received {received} of {size} bytes (connection closed early)"
        )
        .into());
    }
    bar.finish();
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != expected {
        return Err(format!(
            "SHA-256 mismatch: received {}, the sender announced {}",
            hex::encode(digest),
            hex::encode(expected)
        )
        .into());
    }
    Ok(digest)
}
