//! `akex connect`: handshake, send messages, check the echoes, print JSON.

use std::process::ExitCode;
use std::time::Duration;

use akex::crypto::RandomSource;
use akex::error::{ConfigError, TrustFailure};
use akex::handshake::registry;
use akex::keys::ROTATION_MESSAGE_PREFIX;
use akex::session::MAX_PLAINTEXT_LEN;
use akex::transport::connect;
use akex::Error;
use bytes::Bytes;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;

use crate::common::{b64, runtime, HandshakeArgs};

#[derive(Args, Debug)]
pub struct ConnectArgs {
    #[command(flatten)]
    handshake: HandshakeArgs,
    /// Server address, e.g. 127.0.0.1:7000.
    #[arg(long)]
    addr: String,
    /// Messages to send and check.
    #[arg(long, default_value_t = 10)]
    messages: u64,
    /// Bytes per message (at most 65519).
    #[arg(long, default_value_t = 1000)]
    size: usize,
    /// Datagram mode over UDP (explicit counters, replay window, handshake
    /// retransmission); each message is resent until its echo arrives.
    #[arg(long)]
    udp: bool,
}

pub fn main(args: ConnectArgs) -> ExitCode {
    match runtime().and_then(|rt| rt.block_on(run(&args))) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "{}",
                json!({ "ok": false, "error": crate::common::with_hint(&e), "kind": e.kind() })
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &ConnectArgs) -> Result<serde_json::Value, Error> {
    if args.size > MAX_PLAINTEXT_LEN {
        return Err(
            ConfigError::Invalid(format!("--size must be at most {MAX_PLAINTEXT_LEN}")).into(),
        );
    }
    let names = args.handshake.protocols()?;
    let [name] = names.as_slice() else {
        return Err(ConfigError::Invalid("connect takes exactly one --protocol".into()).into());
    };
    // Pinned trust names the server it expects: otherwise any pinned key
    // (another peer's) would do, and a rotation announcement could move
    // any pin.
    if args.handshake.trust_mode() == Some(crate::common::TrustMode::Pinned)
        && args.handshake.peer.is_none()
    {
        return Err(ConfigError::Invalid(
            "--trust pinned needs --peer NAME, the pin name of the server you expect".into(),
        )
        .into());
    }
    let keys = args.handshake.handshake_keys()?;
    let options = args.handshake.transport_options()?;
    let handshake = registry::initiator(name, &keys)?;
    let io_timeout = options.handshake_timeout;
    if args.udp {
        return run_udp(args, handshake, io_timeout).await;
    }

    let tcp = tokio::time::timeout(io_timeout, TcpStream::connect(&args.addr))
        .await
        .map_err(|_| Error::Timeout(io_timeout))??;
    let _ = tcp.set_nodelay(true);
    let stream = connect(tcp, handshake, &options).await?;
    let info = stream.session_info().clone();
    let mut messages = stream.into_messages();
    // A server whose key was rotated sends the rotation statements first
    // (see `ROTATION_MESSAGE_PREFIX`). If its key is not pinned but the
    // pinned old key vouches for it, accept it; otherwise fail as before.
    let mut first_message_seen = false;
    let remote = info.remote_static.as_deref();
    if let Err(e) = crate::common::check_peer(remote) {
        let unknown = matches!(e, Error::PeerNotTrusted(TrustFailure::Unknown { .. }));
        let (Some(remote), true) = (remote, unknown && crate::common::trust_is_pinned()) else {
            return Err(e);
        };
        let first = match tokio::time::timeout(io_timeout, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            _ => return Err(e),
        };
        first_message_seen = true;
        if !crate::common::accept_announced_rotation(remote, &first)? {
            return Err(e);
        }
    }
    crate::common::record_use();

    let mut rng = akex::crypto::OsRng;
    for _ in 0..args.messages {
        let mut payload = vec![0u8; args.size];
        rng.fill_bytes(&mut payload);
        let payload = Bytes::from(payload);
        messages.send(payload.clone()).await?;
        let mut echo = tokio::time::timeout(io_timeout, messages.next())
            .await
            .map_err(|_| Error::Timeout(io_timeout))?;
        if !first_message_seen {
            first_message_seen = true;
            // A rotation announcement for a key that is already trusted.
            if matches!(&echo, Some(Ok(m)) if m.starts_with(ROTATION_MESSAGE_PREFIX)) {
                echo = tokio::time::timeout(io_timeout, messages.next())
                    .await
                    .map_err(|_| Error::Timeout(io_timeout))?;
            }
        }
        match echo {
            Some(echo) if echo.as_ref().is_ok_and(|e| e[..] == payload[..]) => {}
            Some(Err(e)) => return Err(e),
            Some(Ok(_)) => {
                return Err(
                    ConfigError::Invalid("echo differs from the message sent".into()).into(),
                )
            }
            None => {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "server closed the connection before echoing every message",
                )))
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), messages.close()).await;
    Ok(json!({
        "ok": true,
        "protocol": info.protocol,
        "handshake_hash": hex::encode(&info.handshake_hash),
        "remote_key": info.remote_static.as_deref().map(b64),
        "messages": args.messages,
    }))
}

/// `--udp`: the same exchange in datagram mode.
async fn run_udp(
    args: &ConnectArgs,
    handshake: Box<dyn akex::Handshake>,
    io_timeout: Duration,
) -> Result<serde_json::Value, Error> {
    use akex::transport::datagram::{connect_udp, DatagramOptions, MAX_UDP_PAYLOAD};
    if args.size > MAX_UDP_PAYLOAD {
        return Err(ConfigError::Invalid(format!(
            "--size must be at most {MAX_UDP_PAYLOAD} with --udp"
        ))
        .into());
    }
    let peer = tokio::net::lookup_host(&args.addr)
        .await?
        .next()
        .ok_or_else(|| ConfigError::Invalid(format!("cannot resolve {}", args.addr)))?;
    let local: std::net::SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0".parse().expect("valid address")
    } else {
        "[::]:0".parse().expect("valid address")
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    let options = DatagramOptions {
        handshake_timeout: io_timeout,
        ..DatagramOptions::default()
    };
    let mut conn = connect_udp(socket, peer, handshake, &options).await?;
    let info = conn.session_info().clone();
    crate::common::check_peer(info.remote_static.as_deref())?;
    crate::common::record_use();
    let mut rng = akex::crypto::OsRng;
    for _ in 0..args.messages {
        let mut payload = vec![0u8; args.size];
        rng.fill_bytes(&mut payload);
        conn.send_expect_echo(&payload, Duration::from_millis(300), 20)
            .await?;
    }
    for _ in 0..3 {
        let _ = conn.close().await;
    }
    Ok(json!({
        "ok": true,
        "protocol": info.protocol,
        "handshake_hash": hex::encode(&info.handshake_hash),
        "remote_key": info.remote_static.as_deref().map(b64),
        "messages": args.messages,
        "transport": "udp",
        "dropped_datagrams": conn.dropped(),
    }))
}
