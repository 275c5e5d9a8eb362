//! Datagram mode over real UDP sockets through an in-process relay that
//! loses, duplicates and reorders datagrams.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use akex::transport::{accept_udp, connect_udp, DatagramOptions};
use akex::{NoiseConfig, NoiseHandshake};
use tokio::net::UdpSocket;

#[derive(Default)]
struct RelayStats {
    forwarded: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
}

/// A tiny xorshift, seeded per test, so runs are reproducible.
struct Xs(u64);
impl Xs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Relays between a client (who talks to the returned address) and
/// `server`: `loss`% dropped, 10% duplicated, 20% held back and sent after
/// the next datagram (reordering).
async fn lossy_relay(server: SocketAddr, loss: u64, seed: u64) -> (SocketAddr, Arc<RelayStats>) {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    let stats = Arc::new(RelayStats::default());
    let s = stats.clone();
    tokio::spawn(async move {
        let mut rng = Xs(seed | 1);
        let mut client: Option<SocketAddr> = None;
        let (mut b1, mut b2) = (vec![0u8; 65536], vec![0u8; 65536]);
        let mut held: Option<(bool, Vec<u8>)> = None;
        loop {
            let (to_server, packet) = tokio::select! {
                r = front.recv_from(&mut b1) => {
                    let (n, from) = r.unwrap();
                    client = Some(from);
                    (true, b1[..n].to_vec())
                }
                r = back.recv_from(&mut b2) => {
                    let (n, _) = r.unwrap();
                    (false, b2[..n].to_vec())
                }
            };
            let send = |to_server: bool, p: Vec<u8>| {
                let (front, back) = (&front, &back);
                async move {
                    if to_server {
                        let _ = back.send_to(&p, server).await;
                    } else if let Some(c) = client {
                        let _ = front.send_to(&p, c).await;
                    }
                }
            };
            if rng.chance(loss) {
                s.lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if held.is_none() && rng.chance(20) {
                s.reordered.fetch_add(1, Ordering::Relaxed);
                held = Some((to_server, packet));
                continue;
            }
            let dup = rng.chance(10);
            if dup {
                s.duplicated.fetch_add(1, Ordering::Relaxed);
                send(to_server, packet.clone()).await;
            }
            send(to_server, packet).await;
            s.forwarded.fetch_add(1, Ordering::Relaxed);
            if let Some((d, p)) = held.take() {
                send(d, p).await;
            }
        }
    });
    (addr, stats)
}

fn config(protocol: &str) -> NoiseConfig {
    let config = NoiseConfig::new(protocol).unwrap();
    if protocol.contains("_XX_") {
        config.local_static(akex::keys::StaticSecret::generate(&mut akex::crypto::OsRng))
    } else {
        config
    }
}

async fn run_echo(protocol: &str, loss: u64, seed: u64, messages: u32) {
    let server_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server_socket.local_addr().unwrap();
    let (relay, stats) = lossy_relay(server_addr, loss, seed).await;
    let options = DatagramOptions {
        initial_rto: Duration::from_millis(50),
        max_rto: Duration::from_millis(400),
        ..DatagramOptions::default()
    };
    let server_options = options.clone();
    let proto = protocol.to_string();
    let server = tokio::spawn(async move {
        let hs = NoiseHandshake::responder(config(&proto)).unwrap();
        let mut s = accept_udp(server_socket, Box::new(hs), &server_options)
            .await
            .unwrap();
        let mut echoed = 0u64;
        // Echo until the authenticated close (or the test ends).
        while let Some(m) = s.recv().await.unwrap() {
            s.send(&m).await.unwrap();
            echoed += 1;
            if echoed.is_multiple_of(7) {
                s.key_update();
            }
        }
        (s.session().recv_epoch(), s.dropped())
    });

    let client_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let hs = NoiseHandshake::initiator(config(protocol)).unwrap();
    let mut c = tokio::time::timeout(
        Duration::from_secs(20),
        connect_udp(client_socket, relay, Box::new(hs), &options),
    )
    .await
    .expect("handshake finishes despite loss")
    .unwrap();

    // Stop-and-wait: resend a message (as a new record) until its echo arrives.
    for i in 0..messages {
        if i % 5 == 4 {
            c.key_update();
        }
        let msg = format!("message {i} {}", "x".repeat(i as usize * 13));
        let mut ok = false;
        for _attempt in 0..50 {
            c.send(msg.as_bytes()).await.unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_millis(150);
            while let Ok(r) = tokio::time::timeout_at(deadline, c.recv()).await {
                if r.unwrap().as_deref() == Some(msg.as_bytes()) {
                    ok = true;
                    break;
                }
            }
            if ok {
                break;
            }
        }
        assert!(ok, "message {i} never echoed");
    }
    let client_epoch = c.session().send_epoch();
    // Close (repeated: the close may be lost too).
    for _ in 0..10 {
        let _ = c.close().await;
    }
    let _ = c.close().await;
    let done = tokio::time::timeout(Duration::from_secs(3), server).await;
    if let Ok(Ok((server_epoch, _dropped))) = done {
        assert_eq!(server_epoch, client_epoch);
    }
    let lost = stats.lost.load(Ordering::Relaxed);
    let reordered = stats.reordered.load(Ordering::Relaxed);
    assert!(
        lost > 0 && reordered > 0,
        "the relay must actually misbehave"
    );
}

#[tokio::test]
async fn udp_handshake_and_transfer_through_lossy_reordering_relay_nn() {
    run_echo("Noise_NN_25519_ChaChaPoly_BLAKE2s", 20, 0x1234_5678, 40).await;
}

#[tokio::test]
async fn udp_handshake_and_transfer_through_lossy_reordering_relay_xx() {
    run_echo("Noise_XX_25519_AESGCM_SHA256", 30, 0xdead_beef, 30).await;
}

/// `akex serve --udp --once` and `akex connect --udp` through the lossy relay.
#[tokio::test]
async fn cli_serve_and_connect_over_udp() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let bin = support::akex_binary();
    let proto = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
    let mut server = Command::new(&bin)
        .args([
            "serve",
            "--udp",
            "--once",
            "--listen",
            "127.0.0.1:0",
            "--protocol",
            proto,
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("transport=udp"), "{first}");
    let addr: SocketAddr = first
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (relay, _stats) = lossy_relay(addr, 10, 0x5eed).await;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args([
                "connect",
                "--udp",
                "--addr",
                &relay.to_string(),
                "--protocol",
                proto,
            ])
            .args(["--messages", "20", "--size", "500"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["transport"], "udp");
    assert_eq!(json["messages"], 20);
    // The close may be lost; the server then ends on its idle timeout.
    let _ = server.kill();
    let _ = server.wait();
}
