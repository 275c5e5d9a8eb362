//! Shared by the hostile-input and load tests of the TCP server
//! (tests/hostile.rs, tests/hostile_limits.rs, tests/hostile_load.rs): an
//! in-process [`Server`] that echoes and logs every terminal event, TCP
//! connections from chosen loopback addresses, and one honest client.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akex::error::{Error, PeerMisbehaved};
use akex::transport::{
    connect, RejectReason, Server, ServerEvent, ServerLimits, ServerStream, StatsSnapshot,
    TransportOptions,
};
use akex::{Handshake, NoiseConfig, NoiseHandshake};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

pub const NN: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";

/// The tests of each binary that uses this module count file descriptors
/// and tasks of the whole process, so they run one at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One line per terminal event: (kind, reason).
#[derive(Default)]
pub struct Log {
    pub failures: Vec<(SocketAddr, String)>,
    pub rejected: Vec<(SocketAddr, RejectReason)>,
    pub established: usize,
    pub closed: usize,
}

pub struct Running {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
    stats: Arc<akex::transport::ServerStats>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn snapshot(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Waits until no connection is open (bounded).
    pub async fn drained(&self, within: Duration) -> StatsSnapshot {
        let started = Instant::now();
        loop {
            let s = self.snapshot();
            if s.open == 0 || started.elapsed() > within {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("server task ended cleanly");
    }
}

pub async fn echo(_peer: SocketAddr, stream: ServerStream) -> Result<(), Error> {
    let mut messages = stream.into_messages();
    while let Some(message) = messages.next().await {
        messages.send(message?.freeze()).await?;
    }
    Ok(())
}

pub async fn start(
    config: NoiseConfig,
    limits: ServerLimits,
    options: TransportOptions,
) -> Running {
    let log = Arc::new(Mutex::new(Log::default()));
    let sink = Arc::clone(&log);
    let server = Server::bind("127.0.0.1:0", limits, options)
        .await
        .unwrap()
        .on_event(move |event| {
            let mut log = sink.lock().unwrap();
            match event {
                ServerEvent::Established { .. } => log.established += 1,
                ServerEvent::Closed { .. } => log.closed += 1,
                ServerEvent::Rejected { peer, reason } => log.rejected.push((*peer, *reason)),
                other => {
                    let reason = other.failure().expect("a failure has a reason");
                    assert!(!reason.is_empty());
                    log.failures.push((other.peer().expect("peer"), reason));
                }
            }
        });
    // The server listens on 127.0.0.1 only; accept from any 127/8 source.
    let addr = server.local_addr().unwrap();
    let stats = server.stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(
        move |_peer| Ok(Box::new(NoiseHandshake::responder(config.clone())?) as Box<dyn Handshake>),
        echo,
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        addr,
        log,
        stats,
        stop: Some(stop),
        task,
    }
}

/// A TCP connection from loopback address 127.0.0.`host`.
pub async fn tcp_from(host: u8, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))?;
    socket.connect(addr).await
}

pub fn client_options() -> TransportOptions {
    TransportOptions::new().handshake_timeout(Duration::from_secs(10))
}

/// One honest client: handshake, one echoed message, orderly close.
pub async fn honest(addr: SocketAddr, host: u8, config: NoiseConfig) -> Result<(), Error> {
    let tcp = tcp_from(host, addr).await?;
    let _ = tcp.set_nodelay(true);
    let stream = connect(
        tcp,
        Box::new(NoiseHandshake::initiator(config)?),
        &client_options(),
    )
    .await?;
    let mut messages = stream.into_messages();
    messages.send(Bytes::from_static(b"ping")).await?;
    let echoed = messages
        .next()
        .await
        .ok_or(PeerMisbehaved::UnexpectedMessage)??;
    if &echoed[..] != b"ping" {
        return Err(PeerMisbehaved::UnexpectedMessage.into());
    }
    messages.close().await?;
    Ok(())
}
