//! Shared by the tests of the UDP datagram server over loopback
//! (tests/udp_server.rs, tests/udp_cookies.rs, tests/udp_limits.rs): an
//! in-process server that echoes, with counters and a stop switch, honest
//! peers from chosen loopback addresses, and initiation packets built from
//! protocols/datagram.md, not with the library's own encoder, so the spec
//! and the code are checked against each other.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use akex::error::Error;
use akex::transport::datagram::{
    connect_udp, DatagramOptions, DatagramServer, DatagramStats, SecureDatagram,
};
use akex::transport::{ServerLimits, ServerStats};
use akex::{Handshake, NoiseConfig, NoiseHandshake};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

pub const NN: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
pub const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// The tests of each binary share loopback ports and CPU; one at a time
/// keeps timing sane.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn config(protocol: &str) -> NoiseConfig {
    let config = NoiseConfig::new(protocol).unwrap();
    if protocol.contains("_XX_") {
        config.local_static(akex::keys::StaticSecret::generate(&mut akex::crypto::OsRng))
    } else {
        config
    }
}

pub fn initiator(protocol: &str) -> Box<dyn Handshake> {
    Box::new(NoiseHandshake::initiator(config(protocol)).unwrap())
}

/// An in-process server that echoes, with counters and a stop switch.
pub struct Running {
    pub addr: SocketAddr,
    pub stats: Arc<ServerStats>,
    pub packets: Arc<DatagramStats>,
    pub handshakes_started: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
    }
}

pub async fn start(
    protocol: &'static str,
    limits: ServerLimits,
    options: DatagramOptions,
) -> Running {
    let server = DatagramServer::bind("127.0.0.1:0", limits, options)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stats, packets) = (server.stats(), server.datagram_stats());
    let handshakes_started = Arc::new(AtomicUsize::new(0));
    let started = Arc::clone(&handshakes_started);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(
        move |_peer| {
            // Every call is one responder's DH/KEM work to come.
            started.fetch_add(1, Ordering::Relaxed);
            let config = config(protocol);
            Ok(Box::new(NoiseHandshake::responder(config)?) as Box<dyn Handshake>)
        },
        |_peer, mut conn: SecureDatagram| async move {
            while let Some(m) = conn.recv().await? {
                conn.send(&m).await?;
            }
            Ok(())
        },
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        addr,
        stats,
        packets,
        handshakes_started,
        stop: Some(stop),
        task,
    }
}

pub fn fast_options() -> DatagramOptions {
    DatagramOptions {
        initial_rto: Duration::from_millis(100),
        max_rto: Duration::from_millis(800),
        ..DatagramOptions::default()
    }
}

/// A socket on loopback address 127.0.0.`host`.
pub async fn socket_on(host: u8) -> UdpSocket {
    UdpSocket::bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))
        .await
        .unwrap()
}

/// One honest peer: handshake, `messages` echoed, close.
pub async fn honest(
    server: SocketAddr,
    host: u8,
    protocol: &str,
    messages: usize,
) -> Result<(), Error> {
    let socket = socket_on(host).await;
    let mut conn = connect_udp(socket, server, initiator(protocol), &fast_options()).await?;
    for i in 0..messages {
        let m = format!("message {i}");
        conn.send_expect_echo(m.as_bytes(), Duration::from_millis(300), 20)
            .await?;
    }
    for _ in 0..3 {
        let _ = conn.close().await;
    }
    Ok(())
}

/// The initiation packet of protocols/datagram.md: kind 0x01, the
/// connection id, the token length and token, handshake message 0.
pub fn initiation(cid: [u8; 8], token: &[u8], message: &[u8]) -> Vec<u8> {
    let mut p = vec![0x01];
    p.extend_from_slice(&cid);
    p.push(token.len() as u8);
    p.extend_from_slice(token);
    p.extend_from_slice(message);
    p
}

pub fn first_message(protocol: &str) -> Vec<u8> {
    let mut hs = initiator(protocol);
    let mut m = Vec::new();
    hs.write_message(&[], &mut m).unwrap();
    m
}
