//! The UDP datagram server under attack, over loopback: spoofed-duplicate
//! floods (amplification), garbage and replayed datagrams while honest
//! peers complete handshakes and echo, a spoofing flood against cookies,
//! noise injected into a handshake, busy replies and roaming.
//!
//! Packets are built here from protocols/datagram.md, not with the
//! library's own encoder, so the spec and the code are checked against
//! each other.

mod support;

use support::udp_relay::Relay;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akex::error::Error;
use akex::transport::datagram::{
    connect_udp, CookieJar, CookiePolicy, DatagramOptions, DatagramServer, DatagramStats,
    SecureDatagram, MAX_HANDSHAKE_RESENDS,
};
use akex::transport::{ServerLimits, ServerStats};
use akex::{Handshake, NoiseConfig, NoiseHandshake};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

const NN: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// The tests share loopback ports and CPU; one at a time keeps timing sane.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(protocol: &str) -> NoiseConfig {
    let config = NoiseConfig::new(protocol).unwrap();
    if protocol.contains("_XX_") {
        config.local_static(akex::keys::StaticSecret::generate(&mut akex::crypto::OsRng))
    } else {
        config
    }
}

fn initiator(protocol: &str) -> Box<dyn Handshake> {
    Box::new(NoiseHandshake::initiator(config(protocol)).unwrap())
}

/// An in-process server that echoes, with counters and a stop switch.
struct Running {
    addr: SocketAddr,
    stats: Arc<ServerStats>,
    packets: Arc<DatagramStats>,
    handshakes_started: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
    }
}

async fn start(protocol: &'static str, limits: ServerLimits, options: DatagramOptions) -> Running {
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

fn fast_options() -> DatagramOptions {
    DatagramOptions {
        initial_rto: Duration::from_millis(100),
        max_rto: Duration::from_millis(800),
        ..DatagramOptions::default()
    }
}

/// A socket on loopback address 127.0.0.`host`.
async fn socket_on(host: u8) -> UdpSocket {
    UdpSocket::bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))
        .await
        .unwrap()
}

/// One honest peer: handshake, `messages` echoed, close.
async fn honest(
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
fn initiation(cid: [u8; 8], token: &[u8], message: &[u8]) -> Vec<u8> {
    let mut p = vec![0x01];
    p.extend_from_slice(&cid);
    p.push(token.len() as u8);
    p.extend_from_slice(token);
    p.extend_from_slice(message);
    p
}

fn first_message(protocol: &str) -> Vec<u8> {
    let mut hs = initiator(protocol);
    let mut m = Vec::new();
    hs.write_message(&[], &mut m).unwrap();
    m
}

/// Reads everything that arrives on `socket` until `quiet` passes without
/// a datagram: (datagrams, bytes, datagrams of kind 0x02).
async fn drain(socket: &UdpSocket, quiet: Duration) -> (usize, usize, usize) {
    let mut buf = vec![0u8; 65536];
    let (mut n, mut bytes, mut handshakes) = (0, 0, 0);
    while let Ok(Ok(len)) = tokio::time::timeout(quiet, socket.recv(&mut buf)).await {
        n += 1;
        bytes += len;
        if buf[0] == 0x02 {
            handshakes += 1;
        }
    }
    (n, bytes, handshakes)
}

/// Before the address is validated: an attacker that sends one real
/// initiation and then 2,000 repeats, corrupted copies and 2-byte
/// "duplicates" gets back at most three times what it sent, and the
/// message is resent at most `MAX_HANDSHAKE_RESENDS` times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_duplicate_flood_gets_at_most_three_times_and_nothing_after_the_handshake() {
    let _serial = SERIAL.lock().await;
    for protocol in [NN, XX] {
        let server = start(
            protocol,
            ServerLimits::default(),
            DatagramOptions::default(),
        )
        .await;
        // One initiation and silence: the answer and its retransmissions
        // stay within three times the initiation.
        let lone = socket_on(3).await;
        lone.connect(server.addr).await.unwrap();
        let one = initiation([0x3c; 8], &[], &first_message(protocol));
        lone.send(&one).await.unwrap();
        let (_, lone_bytes, _) = drain(&lone, Duration::from_millis(2500)).await;
        println!(
            "{protocol}: one initiation of {} bytes drew {lone_bytes} bytes",
            one.len()
        );
        assert!(
            lone_bytes > 0 && lone_bytes <= 3 * one.len(),
            "{lone_bytes}"
        );
        let victim = socket_on(2).await;
        victim.connect(server.addr).await.unwrap();
        let cid = [0x5a; 8];
        let first = initiation(cid, &[], &first_message(protocol));
        let mut corrupted = first.clone();
        *corrupted.last_mut().unwrap() ^= 0x80;
        let (mut sent, mut sent_wellformed) = (0usize, 0usize);
        let reader = async {
            // Quiet for longer than the largest retransmission delay.
            drain(&victim, Duration::from_millis(2500)).await
        };
        let flood = async {
            for i in 0..2001usize {
                let packet: &[u8] = match i % 4 {
                    0 => &first,
                    1 => &[0x01, 0x00],
                    2 => &corrupted,
                    _ => &[0x02, 0x01],
                };
                victim.send(packet).await.unwrap();
                sent += packet.len();
                if i % 4 == 0 || i % 4 == 2 {
                    sent_wellformed += packet.len();
                }
                // Spread over ~3 s so the retransmission timers run too.
                if i % 8 == 7 {
                    tokio::time::sleep(Duration::from_millis(12)).await;
                }
            }
        };
        let ((got, got_bytes, handshakes), ()) = tokio::join!(reader, flood);
        let factor = got_bytes as f64 / sent as f64;
        let strict = got_bytes as f64 / sent_wellformed as f64;
        println!(
            "{protocol}: attacker sent {sent} bytes ({sent_wellformed} in well-formed packets), \
             got {got} datagrams, {got_bytes} bytes ({handshakes} handshake messages): \
             {factor:.3}x of all, {strict:.3}x of well-formed"
        );
        assert!(strict <= 3.0, "amplification {strict}");
        assert!(
            handshakes as u32 <= 1 + MAX_HANDSHAKE_RESENDS,
            "{handshakes}"
        );
        let p = server.packets.snapshot();
        assert!(p.connections.malformed >= 1000, "{p:?}");
        assert!(p.connections.unexpected >= 400, "{p:?}");
        server.stop().await;
    }

    // After the handshake: an honest peer behind a relay finishes and
    // echoes, then its captured initiation is replayed 500 times from the
    // same address; not one handshake message comes back.
    let server = start(NN, ServerLimits::default(), DatagramOptions::default()).await;
    let relay = Relay::start(server.addr).await;
    let socket = socket_on(1).await;
    let mut conn = connect_udp(socket, relay.front, initiator(NN), &fast_options())
        .await
        .unwrap();
    conn.send_expect_echo(b"confirm", Duration::from_millis(300), 20)
        .await
        .unwrap();
    let captured = relay.first_from_client().expect("captured the initiation");
    relay.count_from_server.store(0, Ordering::Relaxed);
    relay.handshakes_from_server.store(0, Ordering::Relaxed);
    for i in 0..500 {
        relay
            .inject(if i % 2 == 0 { &captured } else { &[0x01, 0x00] })
            .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let resent = relay.handshakes_from_server.load(Ordering::Relaxed);
    println!(
        "after the handshake: 500 replays, {} datagrams back, {resent} handshake messages",
        relay.count_from_server.load(Ordering::Relaxed)
    );
    assert_eq!(resent, 0);
    // The session is unharmed.
    conn.send_expect_echo(b"still here", Duration::from_millis(300), 20)
        .await
        .unwrap();
    server.stop().await;
}

/// Garbage, replays of captured datagrams (from the relay's address and
/// from the attacker's own) and stray kinds, while 100 honest peers
/// complete handshakes and echo: every honest peer succeeds, every bad
/// datagram is dropped and counted, and no replay starts a handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_replays_while_100_honest_peers_handshake_and_echo() {
    let _serial = SERIAL.lock().await;
    let server = start(XX, ServerLimits::default(), fast_options()).await;
    let addr = server.addr;
    // A session to capture: its handshake and records, to replay.
    let relay = Relay::start(addr).await;
    let mut captured_conn = connect_udp(
        socket_on(1).await,
        relay.front,
        initiator(XX),
        &fast_options(),
    )
    .await
    .unwrap();
    for m in [&b"one"[..], b"two", b"three"] {
        captured_conn
            .send_expect_echo(m, Duration::from_millis(300), 20)
            .await
            .unwrap();
    }
    let captured = relay.captured();
    assert!(captured.len() >= 5);
    let stop = Arc::new(AtomicBool::new(false));
    let sent_bad = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    // Random garbage and random-looking packets of every kind.
    for host in [20u8, 21] {
        let (stop, sent) = (stop.clone(), sent_bad.clone());
        attackers.push(tokio::spawn(async move {
            let socket = socket_on(host).await;
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(host);
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let len = 1 + (x % 300) as usize;
                    let mut p: Vec<u8> = (0..len).map(|i| (x >> (i % 56)) as u8).collect();
                    // Kinds 0 and 2..=6, valid and not. (A random
                    // initiation is a real one as far as anyone can tell:
                    // cookies are for those, see the next test.)
                    p[0] = [0u8, 2, 3, 4, 5, 6][(x % 6) as usize];
                    let _ = socket.send_to(&p, addr).await;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    // Replays of the captured session: from the attacker's own address,
    // and from the relay's (the captured peer's) address.
    {
        let (stop, sent, captured) = (stop.clone(), sent_bad.clone(), captured.clone());
        attackers.push(tokio::spawn(async move {
            let socket = socket_on(22).await;
            while !stop.load(Ordering::Relaxed) {
                for p in &captured {
                    let _ = socket.send_to(p, addr).await;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let replay_from_peer = async {
        while !stop.load(Ordering::Relaxed) {
            for p in &captured {
                relay.inject(p).await;
                sent_bad.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let started = Instant::now();
    let honest_peers = async {
        let mut tasks = Vec::new();
        for i in 0..100u8 {
            // Ten honest addresses, ten peers each.
            tasks.push(tokio::spawn(honest(addr, 100 + i % 10, XX, 5)));
        }
        let mut errors = Vec::new();
        for t in tasks {
            if let Err(e) = t.await.unwrap() {
                errors.push(e.to_string());
            }
        }
        stop.store(true, Ordering::Relaxed);
        errors
    };
    let (errors, ()) = tokio::join!(honest_peers, replay_from_peer);
    let elapsed = started.elapsed();
    for a in attackers {
        a.await.unwrap();
    }
    let p = server.packets.snapshot();
    let s = server.stats.snapshot();
    println!(
        "100 honest XX peers, 5 echoes each, in {elapsed:?} under {} hostile datagrams; \
         errors: {}; server: {s:?}; packets: {p:?}",
        sent_bad.load(Ordering::Relaxed),
        errors.len()
    );
    assert!(errors.is_empty(), "{errors:?}");
    let c = p.connections;
    assert!(c.malformed > 0 && c.wrong_connection > 0, "{c:?}");
    assert!(c.wrong_address + c.forged + c.duplicates > 0, "{c:?}");
    // Only the 101 honest peers cost a handshake: no replay or garbage did.
    assert_eq!(server.handshakes_started.load(Ordering::Relaxed), 101);
    assert_eq!(s.handshakes_failed, 0);
    // The captured session itself survived its replays.
    captured_conn
        .send_expect_echo(b"four", Duration::from_millis(300), 20)
        .await
        .unwrap();
    // Once it has closed, a replay of its initiation costs nothing either.
    captured_conn.close().await.unwrap();
    let closed = Instant::now();
    while server.stats.snapshot().closed_ok < 101 {
        assert!(closed.elapsed() < Duration::from_secs(5), "not closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    relay.inject(&captured[0]).await;
    socket_on(22)
        .await
        .send_to(&captured[0], addr)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.packets.snapshot().closed_connection, 2);
    assert_eq!(server.handshakes_started.load(Ordering::Relaxed), 101);
    server.stop().await;
}

/// 100 peers from one address at once, default limits: past the address's
/// share of unproven handshakes they prove their address with a cookie,
/// then wait in line for a slot; all are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_one_address_proves_itself_and_waits_for_slots() {
    let _serial = SERIAL.lock().await;
    let server = start(NN, ServerLimits::default(), fast_options()).await;
    let peak = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stats, peak) = (server.stats.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(stats.snapshot().queued as usize, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let tasks: Vec<_> = (0..100)
        .map(|_| tokio::spawn(honest(server.addr, 60, NN, 1)))
        .collect();
    let mut errors = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            errors.push(e.to_string());
        }
    }
    watcher.abort();
    let p = server.packets.snapshot();
    println!(
        "100 peers from one address: {} errors, {} cookies, at most {} waiting; {:?}",
        errors.len(),
        p.cookies_sent,
        peak.load(Ordering::Relaxed),
        server.stats.snapshot()
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert!(p.cookies_sent >= 1);
    assert_eq!(server.handshakes_started.load(Ordering::Relaxed), 100);
    server.stop().await;
}

/// Responders sharing a cookie key (`CookieJar::from_key` and
/// `DatagramServer::with_cookie_jar`) accept each other's tokens: an
/// initiation carrying a token minted with the shared key is served at
/// once even with `CookiePolicy::Always`, and one with a token for another
/// address is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_cookie_key_is_accepted_by_every_responder() {
    let _serial = SERIAL.lock().await;
    let key = [0x42; 32];
    let options = DatagramOptions {
        cookies: CookiePolicy::Always,
        ..fast_options()
    };
    let server = DatagramServer::bind("127.0.0.1:0", ServerLimits::default(), options)
        .await
        .unwrap()
        .with_cookie_jar(Arc::new(CookieJar::from_key(&key)));
    let addr = server.local_addr().unwrap();
    let packets = server.datagram_stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(
        |_| Ok(Box::new(NoiseHandshake::responder(config(NN))?) as Box<dyn Handshake>),
        |_, _| async { Ok(()) },
        async move {
            let _ = stopped.await;
        },
    ));
    let client = socket_on(70).await;
    let me = client.local_addr().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let other_jar = CookieJar::from_key(&key);
    let m0 = first_message(NN);
    let good = initiation([1; 8], &other_jar.mint(now, me, &[1; 8]), &m0);
    let wrong_port: SocketAddr = (me.ip(), me.port() ^ 1).into();
    let bad = initiation([2; 8], &other_jar.mint(now, wrong_port, &[2; 8]), &m0);
    let mut buf = [0u8; 2048];
    client.send_to(&bad, addr).await.unwrap();
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), client.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        buf[0], 0x04,
        "a token for another address gets a new cookie"
    );
    assert_eq!(n, 29);
    client.send_to(&good, addr).await.unwrap();
    let (_, _) = tokio::time::timeout(Duration::from_secs(2), client.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        buf[0], 0x02,
        "the shared key's token is accepted: message 1 comes back"
    );
    assert_eq!(buf[9], 1);
    let p = packets.snapshot();
    assert_eq!((p.cookies_sent, p.bad_tokens), (1, 1));
    let _ = stop.send(());
    task.await.unwrap();
}

/// A flood of initiations from addresses that never answer (as spoofed
/// ones cannot) costs at most `threshold` handshakes once cookies are on,
/// and none with `CookiePolicy::Always`, while honest peers complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_keep_a_spoofing_flood_from_costing_dh_work() {
    let _serial = SERIAL.lock().await;
    for (policy, extra_allowed) in [(CookiePolicy::UnderLoad(8), 8), (CookiePolicy::Always, 0)] {
        let options = DatagramOptions {
            cookies: policy,
            // The spoofed handshakes hold their slots for the whole test.
            handshake_timeout: Duration::from_secs(60),
            ..fast_options()
        };
        let server = start(NN, ServerLimits::default(), options).await;
        let addr = server.addr;
        let stop = Arc::new(AtomicBool::new(false));
        let flood_sent = Arc::new(AtomicU64::new(0));
        let m0 = first_message(NN);
        let mut flooders = Vec::new();
        for host in 30u8..34 {
            let (stop, sent, m0) = (stop.clone(), flood_sent.clone(), m0.clone());
            flooders.push(tokio::spawn(async move {
                let socket = socket_on(host).await;
                let mut n: u64 = u64::from(host) << 40;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..100 {
                        n += 1;
                        // A fresh connection id each time, never a reply read.
                        let _ = socket
                            .send_to(&initiation(n.to_be_bytes(), &[], &m0), addr)
                            .await;
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut tasks = Vec::new();
        for i in 0..50u8 {
            tasks.push(tokio::spawn(honest(addr, 40 + i % 5, NN, 2)));
        }
        let mut errors = Vec::new();
        for t in tasks {
            if let Err(e) = t.await.unwrap() {
                errors.push(e.to_string());
            }
        }
        stop.store(true, Ordering::Relaxed);
        for f in flooders {
            f.await.unwrap();
        }
        let started = server.handshakes_started.load(Ordering::Relaxed);
        let p = server.packets.snapshot();
        println!(
            "{policy:?}: {} spoofed initiations, {} cookies sent, handshakes started {started} \
             (50 honest), honest errors {}",
            flood_sent.load(Ordering::Relaxed),
            p.cookies_sent,
            errors.len()
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(
            started >= 50 && started <= 50 + extra_allowed,
            "{started}: {:?} {p:?}",
            server.stats.snapshot()
        );
        assert!(p.cookies_sent >= 1000, "{p:?}");
        server.stop().await;
    }
}

/// Datagrams that would have aborted a handshake before (a malformed one
/// with the expected index, from the peer's address; one with the right
/// id from another address; a repeat that differs; a message for the
/// client with another id) arrive while both sides are mid-handshake; they
/// are dropped and counted, and the handshake completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_injected_into_a_handshake_never_aborts_it() {
    let _serial = SERIAL.lock().await;
    let server = start(XX, ServerLimits::default(), fast_options()).await;
    let relay = Relay::start(server.addr).await;
    // The client's message 2 is held: the server waits for it meanwhile.
    relay.hold.store(true, Ordering::Relaxed);
    let client = tokio::spawn({
        let front = relay.front;
        async move { connect_udp(socket_on(1).await, front, initiator(XX), &fast_options()).await }
    });
    let started = Instant::now();
    while relay.captured().len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(5), "no message 2");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let first = relay.first_from_client().unwrap();
    let cid: [u8; 8] = first[1..9].try_into().unwrap();
    // From the peer's address: message 2 (the expected index) for another
    // id, a corrupted repeat of message 0, a truncated packet.
    let mut other = vec![0x02];
    other.extend_from_slice(&[0xee; 8]);
    other.push(2);
    other.extend_from_slice(&[0x41; 64]);
    relay.inject(&other).await;
    let mut corrupted = first.clone();
    corrupted[20] ^= 1;
    relay.inject(&corrupted).await;
    relay.inject(&[0x02]).await;
    // With our id and the expected index, but from another address.
    let mut spoofed = vec![0x02];
    spoofed.extend_from_slice(&cid);
    spoofed.push(2);
    spoofed.extend_from_slice(&[0x42; 64]);
    socket_on(9)
        .await
        .send_to(&spoofed, server.addr)
        .await
        .unwrap();
    // Toward the client: message 1 for another id.
    let mut for_other = vec![0x02];
    for_other.extend_from_slice(&[0xee; 8]);
    for_other.push(1);
    for_other.extend_from_slice(&[0x43; 96]);
    relay.inject_to_client(&for_other).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = server.packets.snapshot().connections;
    relay.hold.store(false, Ordering::Relaxed);
    let mut conn = client.await.unwrap().expect("the handshake completes");
    conn.send_expect_echo(b"through", Duration::from_millis(300), 20)
        .await
        .unwrap();
    println!(
        "dropped mid-handshake, server: {c:?}, client: {:?}",
        conn.counters()
    );
    assert!(c.wrong_connection >= 1 && c.wrong_address >= 1, "{c:?}");
    assert!(c.malformed >= 1 && c.unexpected >= 1, "{c:?}");
    assert!(conn.counters().wrong_connection >= 1);
    assert_eq!(server.stats.snapshot().handshakes_failed, 0);
    server.stop().await;
}

/// A peer whose address changes mid-session (a NAT rebinding) keeps its
/// session; the server follows it on the first authenticated record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_changes_address_keeps_its_session() {
    let _serial = SERIAL.lock().await;
    let server = start(NN, ServerLimits::default(), fast_options()).await;
    let relay = Relay::start(server.addr).await;
    let mut conn = connect_udp(
        socket_on(1).await,
        relay.front,
        initiator(NN),
        &fast_options(),
    )
    .await
    .unwrap();
    conn.send_expect_echo(b"before", Duration::from_millis(300), 20)
        .await
        .unwrap();
    relay.rebind.store(true, Ordering::Relaxed);
    // The relay moves when it next wakes; this send wakes it.
    for i in 0..5 {
        let m = format!("after {i}");
        conn.send_expect_echo(m.as_bytes(), Duration::from_millis(300), 20)
            .await
            .unwrap();
    }
    let c = server.packets.snapshot().connections;
    assert!(c.roamed >= 1, "{c:?}");
    server.stop().await;
}

/// Past the global half-open limit a new peer is told the server is busy
/// and `connect_udp` says so; honest peers get in again once it frees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_answers_busy() {
    let _serial = SERIAL.lock().await;
    let limits = ServerLimits {
        max_half_open: 1,
        ..ServerLimits::default()
    };
    let options = DatagramOptions {
        handshake_timeout: Duration::from_secs(1),
        // Never under load, so the silent initiation takes the one slot.
        cookies: CookiePolicy::UnderLoad(100),
        ..fast_options()
    };
    let server = start(XX, limits, options).await;
    let silent = socket_on(50).await;
    silent
        .send_to(&initiation([1; 8], &[], &first_message(XX)), server.addr)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let busy = connect_udp(
        socket_on(51).await,
        server.addr,
        initiator(XX),
        &fast_options(),
    )
    .await;
    assert!(matches!(busy, Err(Error::ServerBusy)), "{busy:?}");
    assert!(server.packets.snapshot().busy_sent >= 1);
    assert!(server.stats.snapshot().rejected >= 1);
    // The silent one times out after 1 s; then the slot is free.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    honest(server.addr, 51, XX, 1).await.unwrap();
    server.stop().await;
}

/// The cookie vectors in protocols/vectors/datagram.json: the
/// library's jar and an independent HMAC (the `hmac` and `sha2` crates)
/// give the listed tokens.
#[test]
fn cookie_vectors_match_the_spec() {
    use hmac::{Hmac, Mac};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/protocols/vectors/datagram.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    let json = &all["cookie"];
    let key: [u8; 32] = hex::decode(json["key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let jar = CookieJar::from_key(&key);
    let cases = json["cases"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for case in cases {
        let time = case["time"].as_u64().unwrap() as u32;
        let peer: SocketAddr = case["peer"].as_str().unwrap().parse().unwrap();
        let cid: [u8; 8] = hex::decode(case["connection_id"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let token = hex::decode(case["token"].as_str().unwrap()).unwrap();
        assert_eq!(jar.mint(time, peer, &cid).to_vec(), token, "{case}");
        assert!(jar.check(time + 5, peer, &cid, &token));
        // Independently, from the spec's formula.
        let ip = match peer.ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            std::net::IpAddr::V6(v6) => v6,
        };
        let mut mac = <Hmac<sha2::Sha256>>::new_from_slice(&key).unwrap();
        mac.update(b"akex udp cookie v1");
        mac.update(&time.to_be_bytes());
        mac.update(&ip.octets());
        mac.update(&peer.port().to_be_bytes());
        mac.update(&cid);
        let tag = mac.finalize().into_bytes();
        assert_eq!(&token[..4], &time.to_be_bytes());
        assert_eq!(&token[4..], &tag[..16]);
    }
}
