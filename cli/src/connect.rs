//! `akex connect`: handshake, send messages, check the echoes, print JSON.

use std::process::ExitCode;
use std::time::Duration;

use akex::crypto::RandomSource;
use akex::error::ConfigError;
use akex::handshake::registry;
use akex::session::{MAX_PLAINTEXT_LEN, MAX_RECORD_PAYLOAD};
use akex::transport::connect;
use akex::Error;
use bytes::Bytes;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;

use crate::common::{runtime, HandshakeArgs};
use crate::key_files::b64;

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
    /// Bytes per message: at most 65519 with a Noise_* protocol, 65518
    /// with an akex-* protocol (each record spends a byte on its type),
    /// and 65465 with --udp (one UDP datagram per record).
    #[arg(long, default_value_t = 1000)]
    size: usize,
    /// When the server answers that it is busy, try again up to this many
    /// times (0 to 100), after 100 ms, then twice as long each time (at
    /// most 5 s) with random jitter.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    retries: u32,
    /// Datagram mode over UDP (explicit counters, replay window, handshake
    /// retransmission); each message is resent until its echo arrives.
    #[arg(long)]
    udp: bool,
}

pub fn main(args: ConnectArgs) -> ExitCode {
    let mut attempts = 0;
    match runtime().and_then(|rt| rt.block_on(run_with_retries(&args, &mut attempts))) {
        Ok(mut line) => {
            line["attempts"] = attempts.into();
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "{}",
                json!({
                    "ok": false,
                    "error": crate::common::message(&e),
                    "kind": e.kind(),
                    "attempts": attempts
                })
            );
            ExitCode::FAILURE
        }
    }
}

/// The first wait before trying a busy server again, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// [`run`], again after a busy answer while `--retries` allows, with
/// exponential backoff and jitter (so clients turned away together do not
/// all come back together).
async fn run_with_retries(
    args: &ConnectArgs,
    attempts: &mut u32,
) -> Result<serde_json::Value, Error> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        *attempts += 1;
        match run(args).await {
            Err(Error::ServerBusy) if *attempts <= args.retries => {
                let mut jitter = [0u8; 2];
                akex::crypto::OsRng.fill_bytes(&mut jitter);
                // Between half and all of the backoff.
                let fraction = 0.5 + f64::from(u16::from_be_bytes(jitter)) / 131_070.0;
                tokio::time::sleep(backoff.mul_f64(fraction)).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            outcome => return outcome,
        }
    }
}

/// The largest `--size` for `name`'s record mode.
fn max_size(name: &str) -> Result<usize, Error> {
    Ok(match registry::mode_of(name)? {
        registry::Mode::Noise => MAX_PLAINTEXT_LEN,
        _ => MAX_RECORD_PAYLOAD,
    })
}

async fn run(args: &ConnectArgs) -> Result<serde_json::Value, Error> {
    let names = args.handshake.protocols()?;
    let [name] = names.as_slice() else {
        return Err(ConfigError::Invalid("connect takes exactly one --protocol".into()).into());
    };
    let max = max_size(name)?;
    if !args.udp && args.size > max {
        return Err(ConfigError::Invalid(format!(
            "--size must be at most {max} with {name} (its records carry at most that much)"
        ))
        .into());
    }
    args.handshake.check_trust_applies()?;
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
    let keys = args
        .handshake
        .verify_in_handshake(args.handshake.handshake_keys()?, true);
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
    // With --trust pinned the key was judged inside the handshake (a
    // rotation announced in the server's first message included); this is
    // the --trust tofu check.
    crate::common::check_peer(info.remote_static.as_ref())?;
    crate::common::record_use();

    let mut rng = akex::crypto::OsRng;
    for _ in 0..args.messages {
        let mut payload = vec![0u8; args.size];
        rng.fill_bytes(&mut payload);
        let payload = Bytes::from(payload);
        messages.send(payload.clone()).await?;
        // Control records (a rotation announcement for a key that is
        // already trusted) never come out here: only the echo does.
        let echo = tokio::time::timeout(io_timeout, messages.next())
            .await
            .map_err(|_| Error::Timeout(io_timeout))?;
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
    crate::common::check_peer(info.remote_static.as_ref())?;
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
