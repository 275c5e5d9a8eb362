//! An echo chat over the hybrid X25519 + ML-KEM-768 handshake
//! (`akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256`), server and client
//! in one process on 127.0.0.1, printing the handshake's properties (from
//! the protocol registry) and the bytes each message takes on the wire.
//!
//! ```text
//! cargo run --example hybrid_pq
//! cargo run --example hybrid_pq -- --message "hello" --message "post-quantum world"
//! cargo run --example hybrid_pq -- --protocol akex-hybrid-ik-x25519-mlkem768-chachapoly-sha256
//! ```
//!
//! Both sides get fresh X25519 static keys; the client pins the server's
//! key. Each line sent is echoed back by the server. Byte counts are
//! measured on the client's TCP socket and include the 2-byte length prefix
//! of every frame.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use akex::crypto::OsRng;

use akex::handshake::registry::{self, HandshakeKeys};
use akex::keys::encode_public_key;
use akex::keys::StaticSecret;
use akex::transport::{accept, connect, TransportOptions};
use bytes::Bytes;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Echo chat over a hybrid post-quantum handshake (see the file header).
#[derive(Parser, Debug)]
#[command(name = "hybrid_pq")]
struct Cli {
    /// Protocol (an `akex-hybrid-*` or any protocol keyed by X25519 statics).
    #[arg(
        long,
        default_value = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256"
    )]
    protocol: String,
    /// Messages to send (repeatable); each is echoed back.
    #[arg(long = "message")]
    messages: Vec<String>,
}

/// A socket wrapper counting the bytes read and written.
struct Counting<IO> {
    inner: IO,
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counting<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read.fetch_add(n, Ordering::Relaxed);
        poll
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counting<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &poll {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hybrid_pq: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Res<()> {
    let protocol = cli.protocol;
    let info = registry::info(&protocol)
        .ok_or_else(|| format!("unknown protocol {protocol} (see `akex protocols`)"))?;
    println!("protocol:          {}", info.name);
    println!("family:            {}", info.family);
    println!("authentication:    {}", info.authentication);
    println!(
        "forward secrecy:   {}",
        if info.forward_secrecy { "yes" } else { "NO" }
    );
    println!("post-quantum:      {}", info.post_quantum);
    println!("identity hiding:   {}", info.identity_hiding);
    println!("round trips:       {}", info.round_trips);
    println!(
        "handshake sizes:   {} = {} bytes (empty payloads, without framing)",
        info.message_sizes
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        info.total_bytes()
    );

    let mut rng = OsRng;
    let server_key = StaticSecret::generate(&mut rng);
    let client_key = StaticSecret::generate(&mut rng);
    let server_pub = *server_key.public();
    let server_keys = HandshakeKeys::new().static_key(server_key);
    let client_keys = HandshakeKeys::new()
        .static_key(client_key)
        .remote(akex::PublicKey::x25519(server_pub));
    registry::check_responder(&[protocol.as_str()], &server_keys)?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!(
        "server:            listening on {addr}, key {}",
        encode_public_key(&server_pub)
    );

    // The server: one connection, echo every message until the client closes.
    let server_protocol = protocol.clone();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let handshake = registry::responder(&[server_protocol.as_str()], &server_keys)?;
        let stream = accept(tcp, handshake, &TransportOptions::default()).await?;
        let client = stream
            .session_info()
            .remote_static
            .as_deref()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .map(|k| encode_public_key(&k))
            .unwrap_or_default();
        println!("server:            authenticated client key {client}");
        let mut messages = stream.into_messages();
        while let Some(message) = messages.next().await {
            messages.send(message?.freeze()).await?;
        }
        messages.close().await?;
        Res::Ok(())
    });

    let read = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let io = Counting {
        inner: tcp,
        read: read.clone(),
        written: written.clone(),
    };
    let handshake = registry::initiator(&protocol, &client_keys)?;
    let stream = connect(io, handshake, &TransportOptions::default()).await?;
    let (hs_out, hs_in) = (
        written.load(Ordering::Relaxed),
        read.load(Ordering::Relaxed),
    );
    println!(
        "handshake on wire: {hs_out} bytes sent, {hs_in} received, {} total (with 2-byte frame headers)",
        hs_out + hs_in
    );
    println!(
        "handshake hash:    {}",
        hex::encode(&stream.session_info().handshake_hash)
    );

    let messages_to_send = if cli.messages.is_empty() {
        vec![
            "hello over X25519 + ML-KEM-768".to_string(),
            "a second, longer message to show the per-message overhead".to_string(),
        ]
    } else {
        cli.messages
    };
    let mut messages = stream.into_messages();
    for text in &messages_to_send {
        let (w0, r0) = (
            written.load(Ordering::Relaxed),
            read.load(Ordering::Relaxed),
        );
        messages
            .send(Bytes::copy_from_slice(text.as_bytes()))
            .await?;
        let echo = messages
            .next()
            .await
            .ok_or("the server closed before echoing")??;
        if echo[..] != *text.as_bytes() {
            return Err("the echo does not match what was sent".into());
        }
        let sent = written.load(Ordering::Relaxed) - w0;
        let received = read.load(Ordering::Relaxed) - r0;
        println!(
            "echo:              {:?}: {} bytes plaintext, {sent} bytes on the wire out, {received} back",
            String::from_utf8_lossy(&echo),
            text.len()
        );
    }
    messages.close().await?;
    while let Some(message) = messages.next().await {
        message?;
    }
    server.await??;
    println!(
        "done:              {} messages echoed",
        messages_to_send.len()
    );
    Ok(())
}
