//! Hostile input and load over real sockets against an in-process
//! [`Server`] with its denial-of-service limits.
//!
//! Attackers connect from their own loopback addresses (127.0.0.2 and up)
//! so the per-address limit applies to them and not to the honest clients
//! (127.0.0.1), which run at the same time and must all succeed. Every
//! hostile connection must end in exactly one failure event with a reason,
//! and the server must keep serving.

mod support;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akex::crypto::OsRng;

use akex::error::{Error, PeerMisbehaved};
use akex::keys::StaticSecret;
use akex::transport::{
    connect, RejectReason, Server, ServerEvent, ServerLimits, ServerStream, StatsSnapshot,
    TransportOptions,
};
use akex::{Handshake, NoiseConfig, NoiseHandshake};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
const NN: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";

/// The tests in this file count file descriptors and tasks of the whole
/// process, so they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One line per terminal event: (kind, reason).
#[derive(Default)]
struct Log {
    failures: Vec<(SocketAddr, String)>,
    rejected: Vec<(SocketAddr, RejectReason)>,
    established: usize,
    closed: usize,
}

struct Running {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    stats: Arc<akex::transport::ServerStats>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn snapshot(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Waits until no connection is open (bounded).
    async fn drained(&self, within: Duration) -> StatsSnapshot {
        let started = Instant::now();
        loop {
            let s = self.snapshot();
            if s.open == 0 || started.elapsed() > within {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("server task ended cleanly");
    }
}

async fn echo(_peer: SocketAddr, stream: ServerStream) -> Result<(), Error> {
    let mut messages = stream.into_messages();
    while let Some(message) = messages.next().await {
        messages.send(message?.freeze()).await?;
    }
    Ok(())
}

async fn start(config: NoiseConfig, limits: ServerLimits, options: TransportOptions) -> Running {
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
async fn tcp_from(host: u8, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))?;
    socket.connect(addr).await
}

fn client_options() -> TransportOptions {
    TransportOptions::new().handshake_timeout(Duration::from_secs(10))
}

/// One honest client: handshake, one echoed message, orderly close.
async fn honest(addr: SocketAddr, host: u8, config: NoiseConfig) -> Result<(), Error> {
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

/// Small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = (message.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(message);
    out
}

/// A complete XX handshake run in memory against a responder holding the
/// server's key: the three messages, for replay and reordering.
fn captured_xx(server_key: &StaticSecret) -> [Vec<u8>; 3] {
    let client_key = StaticSecret::generate(&mut OsRng);
    let mut i =
        NoiseHandshake::initiator(NoiseConfig::new(XX).unwrap().local_static(client_key)).unwrap();
    let mut r = NoiseHandshake::responder(
        NoiseConfig::new(XX)
            .unwrap()
            .local_static(server_key.clone()),
    )
    .unwrap();
    let (mut m1, mut m2, mut m3, mut p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    i.write_message(&[], &mut m1).unwrap();
    r.read_message(&m1, &mut p).unwrap();
    r.write_message(&[], &mut m2).unwrap();
    i.read_message(&m2, &mut p).unwrap();
    i.write_message(&[], &mut m3).unwrap();
    [m1, m2, m3]
}

/// Sends `bytes`, closes our write side, then reads until the server closes
/// (bounded by `wait`). Connection errors are expected and ignored.
async fn send_and_close(host: u8, addr: SocketAddr, bytes: &[u8], wait: Duration) {
    let Ok(mut tcp) = tcp_from(host, addr).await else {
        return;
    };
    let _ = tcp.write_all(bytes).await;
    let _ = tcp.shutdown().await;
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(wait, tcp.read_to_end(&mut sink)).await;
}

/// What each open descriptor points at, for a leak report.
fn fd_targets() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!("{}->{}", e.file_name().to_string_lossy(), target.display())
        })
        .collect()
}

/// Counts open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn hostile_limits() -> (ServerLimits, TransportOptions) {
    (
        ServerLimits {
            max_half_open: 1024,
            max_half_open_per_ip: 16,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(5),
            ..ServerLimits::default()
        },
        // Long enough for honest handshakes on a loaded 2-core machine,
        // short enough to keep the test quick: slowloris and flood
        // connections hold their slot this long.
        TransportOptions::new()
            .handshake_timeout(Duration::from_secs(3))
            .max_frame_len(1024),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_fail_with_reasons_while_honest_clients_succeed() {
    let _serial = SERIAL.lock().await;
    let server_key = StaticSecret::generate(&mut OsRng);
    let client_key = StaticSecret::generate(&mut OsRng);
    let (limits, options) = hostile_limits();
    let server = start(
        NoiseConfig::new(XX)
            .unwrap()
            .local_static(server_key.clone()),
        limits,
        options,
    )
    .await;
    let addr = server.addr;
    let started = Instant::now();
    let wait = Duration::from_secs(3);

    // Honest clients: 8 loops from 127.0.0.1 (at most 8 half-open at a
    // time, under the per-address limit), each running at least 25 XX
    // handshakes and going on until every attack has finished.
    let attacks_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut honest_tasks = Vec::new();
    for _ in 0..8 {
        let config = NoiseConfig::new(XX)
            .unwrap()
            .local_static(client_key.clone())
            .remote_static(akex::PublicKey::x25519(*server_key.public()));
        let done = Arc::clone(&attacks_done);
        honest_tasks.push(tokio::spawn(async move {
            let (mut runs, mut errors) = (0usize, Vec::new());
            while runs < 25 || !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = honest(addr, 1, config.clone()).await {
                    errors.push(e.to_string());
                }
                runs += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (runs, errors)
        }));
    }

    // Each class of attack runs from its own address, concurrently.
    let mut attacks: Vec<tokio::task::JoinHandle<usize>> = Vec::new();

    // 1. Truncated frames, oversized lengths, garbage.
    attacks.push(tokio::spawn(async move {
        let cases: Vec<Vec<u8>> = vec![
            b"\x00".to_vec(),
            b"\x00\x05ab".to_vec(),
            b"\x00\x20".to_vec(),
            frame(&[7u8; 31])[..20].to_vec(),
            b"\xff\xff".to_vec(),                      // 65535 > the 1024 limit
            b"\x04\x01".to_vec(),                      // 1025: one over the limit
            [&b"\xff\xff"[..], &[0u8; 4096]].concat(), // oversized, with a body
            frame(&[0u8; 0]),                          // an empty first message
            frame(&[1u8; 16]),                         // too short for an ephemeral key
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), // a TLS ClientHello
        ];
        let n = cases.len();
        for bytes in cases {
            send_and_close(2, addr, &bytes, wait).await;
        }
        n
    }));

    // 2. Random bytes: 200 connections, random lengths up to 300 bytes.
    attacks.push(tokio::spawn(async move {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..200 {
            let len = (rng.next() % 300) as usize + 1;
            let bytes = rng.bytes(len);
            send_and_close(3, addr, &bytes, wait).await;
        }
        200
    }));

    // 2b. Random bytes in well-formed frames, so they reach the handshake:
    // a random first message (any 32 bytes pass as an ephemeral key), then
    // a random third message that must fail authentication.
    attacks.push(tokio::spawn(async move {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..100 {
            let (n1, n3) = ((rng.next() % 100) as usize, 32 + (rng.next() % 64) as usize);
            let (first, third) = (rng.bytes(n1), rng.bytes(n3));
            let bytes = [frame(&first), frame(&third)].concat();
            send_and_close(8, addr, &bytes, wait).await;
        }
        100
    }));

    // 3. Replayed and reordered valid handshake messages.
    let key = server_key.clone();
    attacks.push(tokio::spawn(async move {
        let [m1, m2, m3] = captured_xx(&key);
        let cases: Vec<Vec<u8>> = vec![
            // A whole recorded initiator flight replayed: msg 3 was made for
            // another responder ephemeral, so it cannot verify.
            [frame(&m1), frame(&m3)].concat(),
            // Message 1 twice: the second is read as message 3.
            [frame(&m1), frame(&m1)].concat(),
            // Message 3 first, then message 1.
            [frame(&m3), frame(&m1)].concat(),
            // The responder's own message 2 reflected back, then message 3.
            [frame(&m2), frame(&m3)].concat(),
            // Message 1 alone, replayed once more on its own connection.
            frame(&m1),
            // Message 3 with one bit flipped after a fresh message 1.
            {
                let mut bad = m3.clone();
                bad[40] ^= 1;
                [frame(&m1), frame(&bad)].concat()
            },
        ];
        let n = cases.len();
        for bytes in cases {
            send_and_close(4, addr, &bytes, wait).await;
        }
        n
    }));

    // 4. Closed at every byte offset of message 1 (34 framed bytes).
    attacks.push(tokio::spawn(async move {
        let [m1, _, _] = captured_xx(&StaticSecret::generate(&mut OsRng));
        let framed = frame(&m1);
        for cut in 0..framed.len() {
            send_and_close(5, addr, &framed[..cut], wait).await;
        }
        framed.len()
    }));

    // 5. Closed at every byte offset of message 3, in a live handshake.
    let ck = client_key.clone();
    attacks.push(tokio::spawn(async move {
        let mut n = 0;
        let mut len = usize::MAX;
        let mut cut = 0;
        while cut < len {
            n += 1;
            let mut i =
                NoiseHandshake::initiator(NoiseConfig::new(XX).unwrap().local_static(ck.clone()))
                    .unwrap();
            let (mut m1, mut m3, mut p) = (Vec::new(), Vec::new(), Vec::new());
            i.write_message(&[], &mut m1).unwrap();
            let Ok(mut tcp) = tcp_from(6, addr).await else {
                cut += 1;
                continue;
            };
            tcp.write_all(&frame(&m1)).await.unwrap();
            let mut header = [0u8; 2];
            tcp.read_exact(&mut header).await.unwrap();
            let mut m2 = vec![0u8; u16::from_be_bytes(header) as usize];
            tcp.read_exact(&mut m2).await.unwrap();
            i.read_message(&m2, &mut p).unwrap();
            i.write_message(&[], &mut m3).unwrap();
            let framed = frame(&m3);
            len = framed.len();
            let _ = tcp.write_all(&framed[..cut]).await;
            let _ = tcp.shutdown().await;
            let mut sink = Vec::new();
            let _ = tokio::time::timeout(wait, tcp.read_to_end(&mut sink)).await;
            cut += 1;
        }
        n
    }));

    // 6. Slowloris: 20 clients each announcing a 1000-byte first message
    // and sending it one byte per 100 ms; 16 get in and time out, 4 hit
    // the per-address limit.
    attacks.push(tokio::spawn(async move {
        let mut slow = Vec::new();
        for _ in 0..20 {
            slow.push(tokio::spawn(async move {
                let Ok(mut tcp) = tcp_from(7, addr).await else {
                    return;
                };
                let mut bytes = frame(&[0x5a; 1000]).into_iter();
                let started = Instant::now();
                // Until the server hangs up (bounded, should it not).
                while started.elapsed() < Duration::from_secs(20) {
                    let Some(b) = bytes.next() else { break };
                    if tcp.write_all(&[b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }));
        }
        for s in slow {
            s.await.unwrap();
        }
        20
    }));

    // 7. A flood of first messages from 10 addresses: 300 connections that
    // each send a valid message 1 and then never finish (they hold their
    // slot until the handshake timeout, or are refused at the limit).
    attacks.push(tokio::spawn(async move {
        let mut flood = Vec::new();
        for k in 0..300u32 {
            let host = 10 + (k % 10) as u8;
            flood.push(tokio::spawn(async move {
                let [m1, _, _] = captured_xx(&StaticSecret::generate(&mut OsRng));
                let Ok(mut tcp) = tcp_from(host, addr).await else {
                    return;
                };
                let _ = tcp.write_all(&frame(&m1)).await;
                let mut sink = Vec::new();
                // Longer than the server's handshake timeout: the server
                // is the side that gives up.
                let _ =
                    tokio::time::timeout(Duration::from_secs(8), tcp.read_to_end(&mut sink)).await;
            }));
        }
        for f in flood {
            f.await.unwrap();
        }
        300
    }));

    let mut hostile_total = 0;
    for a in attacks {
        hostile_total += a.await.unwrap();
    }
    attacks_done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut honest_total, mut honest_errors) = (0, Vec::new());
    for h in honest_tasks {
        let (runs, errors) = h.await.unwrap();
        honest_total += runs;
        honest_errors.extend(errors);
    }
    let stats = server.drained(Duration::from_secs(5)).await;
    let elapsed = started.elapsed();

    {
        let log = server.log.lock().unwrap();
        let by_reason = log.failures.iter().fold(HashMap::new(), |mut m, (_, r)| {
            *m.entry(r.clone()).or_insert(0usize) += 1;
            m
        });
        println!(
            "hostile connections: {hostile_total}, honest handshakes: {honest_total}, \
             rejected at a limit: {}, failed with a reason: {}, in {elapsed:?}",
            log.rejected.len(),
            log.failures.len()
        );
        let mut reasons: Vec<_> = by_reason.into_iter().collect();
        reasons.sort();
        for (reason, count) in reasons {
            println!("  {count:4}  {reason}");
        }
        let mut by_host: HashMap<(u8, String), usize> = HashMap::new();
        for (peer, reason) in &log.failures {
            if let std::net::IpAddr::V4(ip) = peer.ip() {
                *by_host.entry((ip.octets()[3], reason.clone())).or_insert(0) += 1;
            }
        }
        let mut by_host: Vec<_> = by_host.into_iter().collect();
        by_host.sort();
        for ((host, reason), count) in by_host {
            println!("  127.0.0.{host:<3} {count:4}  {reason}");
        }
        println!("  stats: {stats:?}");

        let server_side: Vec<_> = log
            .failures
            .iter()
            .filter(|(peer, _)| peer.ip() == Ipv4Addr::LOCALHOST)
            .collect();
        assert!(
            honest_errors.is_empty(),
            "honest clients failed: {honest_errors:?}; server saw: {server_side:?}"
        );
        assert_eq!(
            log.closed, honest_total,
            "every honest client closed cleanly"
        );
        assert_eq!(
            log.established, honest_total,
            "no hostile connection got in"
        );
        // Every hostile connection ended in exactly one failure event.
        assert_eq!(
            log.failures.len() + log.rejected.len(),
            hostile_total,
            "one failure event per hostile connection"
        );
        assert!(log
            .failures
            .iter()
            .all(|(peer, _)| peer.ip() != Ipv4Addr::LOCALHOST));
        // The per-address limit stopped the slowloris and flood excess.
        assert!(log
            .rejected
            .iter()
            .all(|(_, r)| matches!(r, RejectReason::HalfOpenPerIpLimit(16))));
        assert!(log.rejected.len() >= 4, "{:?}", log.rejected.len());
    }
    assert_eq!(stats.accepted as usize, hostile_total + honest_total);
    assert_eq!(stats.open, 0);
    assert_eq!(stats.half_open, 0);

    // The server is still up and serves a fresh client.
    let config = NoiseConfig::new(XX)
        .unwrap()
        .local_static(client_key)
        .remote_static(akex::PublicKey::x25519(*server_key.public()));
    honest(addr, 1, config).await.expect("server still serves");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_half_open_limit_rejects_then_recovers() {
    let _serial = SERIAL.lock().await;
    let limits = ServerLimits {
        max_half_open: 8,
        max_half_open_per_ip: 16,
        ..ServerLimits::default()
    };
    let options = TransportOptions::new().handshake_timeout(Duration::from_secs(5));
    let server = start(NoiseConfig::new(NN).unwrap(), limits, options).await;
    let addr = server.addr;

    // Eight silent connections from eight addresses fill the global limit.
    let mut silent = Vec::new();
    for host in 20..28 {
        silent.push(tcp_from(host, addr).await.unwrap());
    }
    let started = Instant::now();
    while server.snapshot().half_open < 8 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.snapshot().half_open, 8);

    // The ninth is told at once that the server is busy (an empty frame),
    // then closed, without a handshake.
    let mut ninth = tcp_from(30, addr).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), ninth.read_to_end(&mut got))
        .await
        .expect("closed at once, not after a timeout")
        .unwrap();
    assert_eq!(got, akex::transport::BUSY_FRAME);
    // A client sees it as a busy server, not as a broken connection.
    let tenth = tcp_from(31, addr).await.unwrap();
    let busy = connect(
        tenth,
        Box::new(NoiseHandshake::initiator(NoiseConfig::new(NN).unwrap()).unwrap()),
        &client_options(),
    )
    .await;
    assert!(matches!(busy, Err(Error::ServerBusy)), "{busy:?}");
    let started = Instant::now();
    while server.snapshot().rejected == 0 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while server.snapshot().rejected < 2 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rejected = server.log.lock().unwrap().rejected.clone();
    assert_eq!(rejected.len(), 2);
    assert!(rejected
        .iter()
        .all(|(_, r)| *r == RejectReason::HalfOpenLimit(8)));
    assert!(rejected[0].1.to_string().contains("half-open"));

    // Closing the silent ones frees the slots; an honest client gets in.
    drop(silent);
    let s = server.drained(Duration::from_secs(2)).await;
    assert_eq!(s.half_open, 0);
    if let Err(e) = honest(addr, 1, NoiseConfig::new(NN).unwrap()).await {
        let log = server.log.lock().unwrap();
        panic!(
            "{e}: {:?} {:?} {:?}",
            log.failures,
            log.rejected,
            server.snapshot()
        );
    }
    {
        let log = server.log.lock().unwrap();
        assert_eq!(log.failures.len(), 8, "each silent connection was reported");
        assert!(log
            .failures
            .iter()
            .all(|(_, r)| r.contains("closed during the handshake")));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_established_connection_is_closed_with_a_reason() {
    let _serial = SERIAL.lock().await;
    let limits = ServerLimits {
        idle_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let server = start(
        NoiseConfig::new(NN).unwrap(),
        limits,
        TransportOptions::default(),
    )
    .await;
    let tcp = tcp_from(1, server.addr).await.unwrap();
    let stream = connect(
        tcp,
        Box::new(NoiseHandshake::initiator(NoiseConfig::new(NN).unwrap()).unwrap()),
        &client_options(),
    )
    .await
    .unwrap();
    let mut messages = stream.into_messages();
    let started = Instant::now();
    // Say nothing: the server hangs up after the idle timeout.
    let end = tokio::time::timeout(Duration::from_secs(3), messages.next())
        .await
        .expect("server closed the idle connection");
    assert!(end.is_none() || end.unwrap().is_err());
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.drained(Duration::from_secs(2)).await;
    {
        let log = server.log.lock().unwrap();
        assert_eq!(log.failures.len(), 1);
        assert!(log.failures[0].1.contains("idle"), "{:?}", log.failures);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_2000_handshakes_from_100_clients_without_failure_or_leak() {
    let _serial = SERIAL.lock().await;
    let handle = tokio::runtime::Handle::current();
    // Warm up first, so descriptors that live for the whole process once
    // opened (the runtime's I/O driver, RNG and library state) are counted
    // in the baseline.
    let warm = start(
        NoiseConfig::new(NN).unwrap(),
        ServerLimits::default(),
        TransportOptions::default(),
    )
    .await;
    honest(warm.addr, 1, NoiseConfig::new(NN).unwrap())
        .await
        .unwrap();
    warm.drained(Duration::from_secs(2)).await;
    warm.stop().await;
    let fds_before = open_fds();
    let fd_list_before = fd_targets();
    let tasks_before = handle.metrics().num_alive_tasks();

    // Default limits; 100 clients spread over 10 source addresses so each
    // address stays within the per-address half-open limit of 16.
    let server = start(
        NoiseConfig::new(NN).unwrap(),
        ServerLimits::default(),
        TransportOptions::default(),
    )
    .await;
    let addr = server.addr;
    let started = Instant::now();
    let clients = 100;
    let per_client = 20;
    let mut tasks = Vec::new();
    for c in 0..clients {
        tasks.push(tokio::spawn(async move {
            let host = 40 + (c % 10) as u8;
            let mut errors = Vec::new();
            for _ in 0..per_client {
                if let Err(e) = honest(addr, host, NoiseConfig::new(NN).unwrap()).await {
                    errors.push(e.to_string());
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let stats = server.drained(Duration::from_secs(5)).await;
    let total = clients * per_client;
    println!(
        "load: {total} NN handshakes from {clients} concurrent clients in {elapsed:?} \
         ({:.0}/s), failures: {}",
        total as f64 / elapsed.as_secs_f64(),
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "{} failures: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(stats.handshakes_ok as usize, total);
    assert_eq!(stats.closed_ok as usize, total);
    assert_eq!(
        stats.rejected + stats.handshakes_failed + stats.connections_failed,
        0
    );
    assert_eq!(stats.open, 0);
    {
        let log = server.log.lock().unwrap();
        assert!(log.failures.is_empty() && log.rejected.is_empty());
    }
    server.stop().await;

    // Nothing leaked: tasks and descriptors are back where they started
    // (a little slack for the runtime's own timers and sockets in TIME_WAIT,
    // which hold no descriptor).
    let settle = Instant::now();
    let (mut fds_after, mut tasks_after);
    loop {
        fds_after = open_fds();
        tasks_after = handle.metrics().num_alive_tasks();
        if (fds_after <= fds_before + 2 && tasks_after <= tasks_before)
            || settle.elapsed() > Duration::from_secs(3)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("fds {fds_before} -> {fds_after}, tasks {tasks_before} -> {tasks_after}");
    assert!(
        fds_after <= fds_before + 2,
        "fd leak: {fds_before} -> {fds_after}: {fd_list_before:?} -> {:?}",
        fd_targets()
    );
    assert!(
        tasks_after <= tasks_before,
        "task leak: {tasks_before} -> {tasks_after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_handler_is_reported_and_the_server_keeps_serving() {
    let _serial = SERIAL.lock().await;
    let failures = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&failures);
    let server = Server::bind(
        "127.0.0.1:0",
        ServerLimits::default(),
        TransportOptions::default(),
    )
    .await
    .unwrap()
    .on_event(move |e| {
        if let Some(reason) = e.failure() {
            sink.lock().unwrap().push(reason);
        }
    });
    let addr = server.local_addr().unwrap();
    let stats = server.stats();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(
        |_| {
            Ok(
                Box::new(NoiseHandshake::responder(NoiseConfig::new(NN).unwrap())?)
                    as Box<dyn Handshake>,
            )
        },
        move |peer, stream| {
            let first = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            async move {
                assert!(!first, "the first connection's handler panics (on purpose)");
                echo(peer, stream).await
            }
        },
        async move {
            let _ = stopped.await;
        },
    ));
    // The first client's connection dies with its handler.
    assert!(honest(addr, 1, NoiseConfig::new(NN).unwrap())
        .await
        .is_err());
    // The next one is served.
    honest(addr, 1, NoiseConfig::new(NN).unwrap())
        .await
        .unwrap();
    let started = Instant::now();
    while stats.snapshot().open > 0 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = stats.snapshot();
    assert_eq!((s.open, s.half_open, s.connections_failed), (0, 0, 1));
    assert_eq!(
        failures.lock().unwrap().clone(),
        vec!["I/O error: connection handler panicked".to_string()]
    );
    let _ = stop.send(());
    task.await.unwrap();
}

/// `akex serve --max-half-open 1`: a second half-open connection is told
/// at once that the server is busy and logged as `failed:` with the
/// reason; a third from the same address as the first waits for its slot
/// (`--max-half-open-per-ip` queues instead of refusing) and is served
/// once the first goes away.
#[test]
fn serve_cli_logs_limit_rejections() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let _serial = SERIAL.blocking_lock();
    let mut child = Command::new(support::akex_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--protocol", NN])
        .args(["--max-half-open-per-ip", "1", "--max-half-open", "2"])
        .args(["--timeout", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn akex serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let silent = std::net::TcpStream::connect(addr).unwrap();
    let other = rt.block_on(tcp_from(2, addr)).unwrap().into_std().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // The third is over the global limit of 2: busy at once.
    let mut third = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut got = Vec::new();
    third.read_to_end(&mut got).unwrap();
    assert_eq!(got, akex::transport::BUSY_FRAME);
    let mut rejected = String::new();
    stderr.read_line(&mut rejected).unwrap();
    assert!(
        rejected.contains("failed: rejected: 2 half-open handshakes already in progress"),
        "{rejected:?}"
    );
    drop(other);
    let mut closed = String::new();
    stderr.read_line(&mut closed).unwrap();
    assert!(
        closed.contains("failed: peer misbehaved: connection closed during the handshake"),
        "{closed:?}"
    );
    // A client from the silent one's address waits for its slot, and gets
    // it when the silent one goes away.
    let waiting = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(honest(addr, 1, NoiseConfig::new(NN).unwrap()))
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(silent);
    waiting
        .join()
        .unwrap()
        .expect("the waiting client is served");
    let mut rest = String::new();
    for _ in 0..2 {
        stderr.read_line(&mut rest).unwrap();
    }
    assert!(rest.contains("handshake ok"), "{rest:?}");
    child.kill().ok();
    child.wait().ok();
}
