//! `akex serve`: an echo server behind a Noise handshake.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use akex::error::ConfigError;
use akex::handshake::registry;
use akex::session::{ControlType, RecordMode};
use akex::transport::{Server, ServerEvent, ServerLimits, ServerStream};
use akex::{Error, Handshake};
use clap::Args;
use futures_util::{SinkExt, StreamExt};

use crate::common::{b64, HandshakeArgs};

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
    /// Close a connection after this many seconds without a message.
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
    /// Handshakes in progress at once, over all peers; connections beyond
    /// it are closed at once.
    #[arg(long, default_value_t = ServerLimits::default().max_half_open)]
    max_half_open: usize,
    /// Handshakes in progress at once from one IP address.
    #[arg(long, default_value_t = ServerLimits::default().max_half_open_per_ip)]
    max_half_open_per_ip: usize,
    /// Datagram mode over UDP (explicit counters, replay window, handshake
    /// retransmission), one peer at a time.
    #[arg(long)]
    udp: bool,
}

pub async fn run(args: ServeArgs) -> Result<ExitCode, Error> {
    let names = args.handshake.protocols()?;
    let keys = args.handshake.handshake_keys()?;
    // Build one handshake now so a bad configuration (a missing key, a
    // Noise name mixed into an akex allow-list) fails at start-up.
    let allowed: Vec<&str> = names.iter().map(String::as_str).collect();
    registry::responder(&allowed, &keys)?;
    let options = args.handshake.transport_options()?;
    if args.max_half_open == 0 || args.max_half_open_per_ip == 0 {
        return Err(ConfigError::Invalid(
            "--max-half-open and --max-half-open-per-ip must be at least 1".into(),
        )
        .into());
    }
    let limits = ServerLimits {
        max_half_open: args.max_half_open,
        max_half_open_per_ip: args.max_half_open_per_ip,
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        ..ServerLimits::default()
    };
    if args.udp {
        let make = move || {
            let allowed: Vec<&str> = names.iter().map(String::as_str).collect();
            registry::responder(&allowed, &keys)
        };
        return serve_udp(&args, make, limits.idle_timeout, options.handshake_timeout).await;
    }
    let server = Server::bind(args.listen, limits, options)
        .await?
        .on_event(log_event);
    // Tests and scripts read the bound address (port 0) from this line.
    eprintln!(
        "akex serve: listening on {} protocol={}",
        server.local_addr()?,
        names.join(",")
    );
    // After the line above, which scripts read first.
    if crate::common::rotation_announcement().is_some()
        && registry::mode_of(&names[0])? == registry::Mode::Noise
    {
        eprintln!(
            "akex serve: note: the key was rotated, but Noise mode has no control records to \
             announce it with; clients must take the rotation statement out of band \
             (akex keys trust --statement) or use an akex-* protocol"
        );
    }

    let make_handshake = move |_peer: SocketAddr| -> Result<Box<dyn Handshake>, Error> {
        let allowed: Vec<&str> = names.iter().map(String::as_str).collect();
        registry::responder(&allowed, &keys)
    };
    if args.once {
        let ok = server.serve_one(make_handshake, echo).await.is_ok();
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    server
        .run(make_handshake, echo, std::future::pending::<()>())
        .await;
    Ok(ExitCode::SUCCESS)
}

/// One line per event; `failed: <reason>` for every connection that failed.
fn log_event(event: &ServerEvent) {
    match event {
        ServerEvent::Established { peer, info } => eprintln!(
            "akex serve: {peer}: handshake ok protocol={} remote_key={} handshake_hash={}",
            info.protocol,
            info.remote_static
                .as_deref()
                .map(b64)
                .unwrap_or_else(|| "none".into()),
            hex::encode(&info.handshake_hash),
        ),
        ServerEvent::Closed { .. } => {} // the handler logs the count
        other => {
            if let Some(reason) = other.failure() {
                match other.peer() {
                    Some(peer) => eprintln!("akex serve: {peer}: failed: {reason}"),
                    None => eprintln!("akex serve: {reason}"),
                }
            }
        }
    }
}

/// Echoes every message until the peer closes; the server's idle timeout
/// ends a silent connection.
async fn echo(peer: SocketAddr, stream: ServerStream) -> Result<(), Error> {
    // `--trust`/`--trust-store`: refuse an untrusted peer before any data.
    crate::common::check_peer(stream.session_info().remote_static.as_deref())?;
    crate::common::record_use();
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
    eprintln!("akex serve: {peer}: closed after echoing {count} message(s)");
    Ok(())
}

/// `--udp`: datagram mode, one peer at a time; same log lines as TCP.
async fn serve_udp(
    args: &ServeArgs,
    make: impl Fn() -> Result<Box<dyn Handshake>, Error>,
    idle: Duration,
    handshake_timeout: Duration,
) -> Result<ExitCode, Error> {
    use akex::transport::datagram::{accept_udp, DatagramOptions};
    let mut socket = Some(tokio::net::UdpSocket::bind(args.listen).await?);
    let local = socket.as_ref().map(|s| s.local_addr()).transpose()?;
    let local = local.expect("bound above");
    // Tests and scripts read the bound address (port 0) from this line.
    eprintln!(
        "akex serve: listening on {local} protocol={} transport=udp",
        args.handshake.protocols()?.join(",")
    );
    let options = DatagramOptions {
        handshake_timeout,
        ..DatagramOptions::default()
    };
    loop {
        let udp = match socket.take() {
            Some(s) => s,
            None => tokio::net::UdpSocket::bind(local).await?,
        };
        let result = async {
            let mut conn = accept_udp(udp, make()?, &options).await?;
            let peer = conn.peer_addr();
            let info = conn.session_info();
            eprintln!(
                "akex serve: {peer}: handshake ok protocol={} remote_key={} handshake_hash={}",
                info.protocol,
                info.remote_static
                    .as_deref()
                    .map(b64)
                    .unwrap_or_else(|| "none".into()),
                hex::encode(&info.handshake_hash),
            );
            crate::common::check_peer(info.remote_static.as_deref())?;
            crate::common::record_use();
            let count = conn.echo_until_close(idle).await?;
            eprintln!("akex serve: {peer}: closed after echoing {count} message(s)");
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = &result {
            eprintln!("akex serve: failed: {e}");
        }
        if args.once {
            return Ok(if result.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
}
