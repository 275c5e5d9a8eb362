//! `akex serve --udp` with its defaults holding 1,000 peers at once over
//! loopback, and what it costs: UDP handshakes per server CPU-second and
//! echo throughput with all 1,000 peers active. Prints one table row (the
//! UDP section of docs/benchmarks.md comes from a `--release` run of this
//! test); asserts only that every peer is served.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use akex::keys::StaticSecret;
use akex::transport::datagram::{connect_udp, DatagramOptions};
use akex::{NoiseConfig, NoiseHandshake};
use tokio::net::UdpSocket;
use tokio::sync::Barrier;

const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
const PEERS: usize = 1000;
const ADDRESSES: usize = 100;
const MESSAGES: usize = 20;
const MESSAGE_SIZE: usize = 1200;

/// User + system CPU time of process `pid` so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Duration::from_secs_f64(ticks as f64 / per_second)
}

#[test]
fn serve_udp_holds_1000_peers_and_measures_handshakes_and_echo() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("server.key");
    let bin = support::akex_binary();
    let out = Command::new(&bin)
        .args(["keygen", "--output", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let server = support::start_listener(Command::new(&bin).args([
        "serve",
        "--udp",
        "--listen",
        "127.0.0.1:0",
        "--protocol",
        XX,
        "--identity",
        key.to_str().unwrap(),
        "--log-interval",
        "3",
    ]));
    let pid = server.child.id();
    let addr: SocketAddr = server.addr.parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(async move {
        let connected = Arc::new(Barrier::new(PEERS + 1));
        let echoed = Arc::new(Barrier::new(PEERS + 1));
        let options = DatagramOptions::default();
        let mut tasks = Vec::new();
        let cpu0 = cpu_time(pid);
        let t0 = Instant::now();
        for i in 0..PEERS {
            let (connected, echoed, options) = (connected.clone(), echoed.clone(), options.clone());
            tasks.push(tokio::spawn(async move {
                // Ten peers per address: the server tells them apart by
                // connection id.
                let host = 10 + (i % ADDRESSES) as u8;
                let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))
                    .await
                    .unwrap();
                let config = NoiseConfig::new(XX)
                    .unwrap()
                    .local_static(StaticSecret::generate(&mut akex::crypto::OsRng));
                let hs = Box::new(NoiseHandshake::initiator(config).unwrap());
                let conn = connect_udp(socket, addr, hs, &options).await;
                connected.wait().await;
                let mut conn = conn.map_err(|e| format!("handshake: {e}"))?;
                let message = vec![i as u8; MESSAGE_SIZE];
                let mut result = Ok(());
                for _ in 0..MESSAGES {
                    if let Err(e) = conn
                        .send_expect_echo(&message, Duration::from_millis(500), 20)
                        .await
                    {
                        result = Err(format!("echo: {e}"));
                        break;
                    }
                }
                echoed.wait().await;
                for _ in 0..2 {
                    let _ = conn.close().await;
                }
                result
            }));
        }
        connected.wait().await;
        let (handshake_wall, cpu1) = (t0.elapsed(), cpu_time(pid));
        let t1 = Instant::now();
        echoed.wait().await;
        let (echo_wall, cpu2) = (t1.elapsed(), cpu_time(pid));
        let mut errors = Vec::new();
        for t in tasks {
            if let Err(e) = t.await.unwrap() {
                errors.push(e);
            }
        }
        (errors, handshake_wall, cpu1 - cpu0, echo_wall, cpu2 - cpu1)
    });
    let (errors, hs_wall, hs_cpu, echo_wall, echo_cpu) = report;
    let log = server.stop();
    let payload = (PEERS * MESSAGES * MESSAGE_SIZE) as f64 / 1e6;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "| UDP {XX}, {PEERS} peers from {ADDRESSES} addresses ({profile}) | {:.0} handshakes/s \
         ({:.2} s wall) | {:.0} handshakes per server CPU-second ({:.2} s) | echo {MESSAGES} x \
         {MESSAGE_SIZE} B per peer, all at once: {:.1} MB/s each way ({:.2} s wall), {:.1} MB per \
         server CPU-second |",
        PEERS as f64 / hs_wall.as_secs_f64(),
        hs_wall.as_secs_f64(),
        PEERS as f64 / hs_cpu.as_secs_f64().max(0.01),
        hs_cpu.as_secs_f64(),
        payload / echo_wall.as_secs_f64(),
        echo_wall.as_secs_f64(),
        payload / echo_cpu.as_secs_f64().max(0.01),
    );
    let summary: Vec<&str> = log.lines().filter(|l| l.contains("udp, last")).collect();
    println!("server's packet summaries: {summary:#?}");
    assert!(
        errors.is_empty(),
        "{} of {PEERS} failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(!log.contains("panicked"), "{log}");
}
