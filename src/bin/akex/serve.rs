//! `akex serve`: an echo server behind a Noise handshake.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use akex::transport::{accept, TransportOptions};
use akex::{Error, NoiseConfig, NoiseHandshake};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

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
}

pub async fn run(args: ServeArgs) -> Result<ExitCode, Error> {
    let config = args.handshake.noise_config()?;
    // Build one handshake now so a bad configuration fails at start-up.
    NoiseHandshake::responder(config.clone())?;
    let options = args.handshake.transport_options()?;
    let listener = TcpListener::bind(args.listen).await?;
    // Tests and scripts read the bound address (port 0) from this line.
    eprintln!(
        "akex serve: listening on {} protocol={}",
        listener.local_addr()?,
        config.protocol()
    );

    let idle = Duration::from_secs(args.idle_timeout.max(1));
    loop {
        let (tcp, peer) = listener.accept().await?;
        if args.once {
            let ok = handle(tcp, peer, config.clone(), options.clone(), idle).await;
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        tokio::spawn(handle(tcp, peer, config.clone(), options.clone(), idle));
    }
}

async fn handle(
    tcp: TcpStream,
    peer: SocketAddr,
    config: NoiseConfig,
    options: TransportOptions,
    idle: Duration,
) -> bool {
    match serve_one(tcp, config, &options, idle).await {
        Ok(count) => {
            eprintln!("akex serve: {peer}: closed after echoing {count} message(s)");
            true
        }
        Err(e) => {
            eprintln!("akex serve: {peer}: failed: {e}");
            false
        }
    }
}

async fn serve_one(
    tcp: TcpStream,
    config: NoiseConfig,
    options: &TransportOptions,
    idle: Duration,
) -> Result<u64, Error> {
    let peer = tcp.peer_addr()?;
    let _ = tcp.set_nodelay(true);
    let handshake = Box::new(NoiseHandshake::responder(config)?);
    let stream = accept(tcp, handshake, options).await?;
    let info = stream.session_info();
    eprintln!(
        "akex serve: {peer}: handshake ok protocol={} remote_key={} handshake_hash={}",
        info.protocol,
        info.remote_static
            .as_deref()
            .map(b64)
            .unwrap_or_else(|| "none".into()),
        hex::encode(&info.handshake_hash),
    );
    let mut messages = stream.into_messages();
    let mut count = 0u64;
    loop {
        let next = tokio::time::timeout(idle, messages.next())
            .await
            .map_err(|_| Error::Timeout(idle))?;
        let Some(message) = next else { break };
        messages.send(message?.freeze()).await?;
        count += 1;
    }
    Ok(count)
}
