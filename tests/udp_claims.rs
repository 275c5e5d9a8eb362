//! Promises of protocols/datagram.md and docs/security.md ("UDP") that need
//! a real socket, each tested so that it fails if the promise breaks (rows
//! DGRAM-n and LIM-n of docs/claims.md). The client side is built here by
//! hand from the spec where a test must misbehave (never confirm, roam,
//! send tiny initiations).

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akex::error::Error;
use akex::session::datagram::DatagramSession;
use akex::session::{Record, SessionConfig};
use akex::transport::datagram::{
    accept_udp, connect_udp, CookiePolicy, DatagramOptions, DatagramServer, DatagramStats,
    SecureDatagram,
};
use akex::transport::{RejectReason, ServerEvent, ServerLimits, ServerStats};
use akex::{Handshake, NoiseConfig, NoiseHandshake};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

const NN: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";

/// The tests share loopback ports and CPU; one at a time keeps timing sane.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn nn(initiator: bool) -> Box<dyn Handshake> {
    let config = NoiseConfig::new(NN).unwrap();
    Box::new(if initiator {
        NoiseHandshake::initiator(config).unwrap()
    } else {
        NoiseHandshake::responder(config).unwrap()
    })
}

async fn socket_on(host: u8) -> UdpSocket {
    UdpSocket::bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))
        .await
        .unwrap()
}

/// What the server's event callback saw, in short.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Established,
    HandshakeTimeout,
    HandshakeFailed(String),
    IdleTimeout,
    ConnectionFailed(String),
    Rejected(RejectReason),
    Closed,
}

struct Running {
    addr: SocketAddr,
    stats: Arc<ServerStats>,
    packets: Arc<DatagramStats>,
    events: Arc<Mutex<Vec<Seen>>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn seen(&self) -> Vec<Seen> {
        self.events.lock().unwrap().clone()
    }
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// A NN server; `quiet` handlers sleep instead of echoing.
async fn start(limits: ServerLimits, options: DatagramOptions, quiet: bool) -> Running {
    let server = DatagramServer::bind("127.0.0.1:0", limits, options)
        .await
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let server = server.on_event(move |e| {
        let seen = match e {
            ServerEvent::Established { .. } => Seen::Established,
            ServerEvent::HandshakeFailed {
                error: Error::Timeout(_),
                ..
            } => Seen::HandshakeTimeout,
            ServerEvent::HandshakeFailed { error, .. } => Seen::HandshakeFailed(error.to_string()),
            ServerEvent::ConnectionFailed {
                error: Error::IdleTimeout(_),
                ..
            } => Seen::IdleTimeout,
            ServerEvent::ConnectionFailed { error, .. } => {
                Seen::ConnectionFailed(error.to_string())
            }
            ServerEvent::Rejected { reason, .. } => Seen::Rejected(*reason),
            ServerEvent::Closed { .. } => Seen::Closed,
            _ => return,
        };
        log.lock().unwrap().push(seen);
    });
    let addr = server.local_addr().unwrap();
    let (stats, packets) = (server.stats(), server.datagram_stats());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(
        |_| Ok(nn(false)),
        move |_, mut conn: SecureDatagram| async move {
            if quiet {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return Ok(());
            }
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
        events,
        stop,
        task,
    }
}

fn initiation(cid: [u8; 8], token: &[u8], message: &[u8]) -> Vec<u8> {
    let mut p = vec![0x01];
    p.extend_from_slice(&cid);
    p.push(token.len() as u8);
    p.extend_from_slice(token);
    p.extend_from_slice(message);
    p
}

async fn recv_within(socket: &UdpSocket, ms: u64) -> Option<(Vec<u8>, Instant)> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(Duration::from_millis(ms), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some((buf, Instant::now()))
}

/// An NN initiator written from the spec: initiation (after a cookie
/// round trip if the server asks), message 1, and a session. It never
/// sends a confirmation.
struct Manual {
    cid: [u8; 8],
    session: DatagramSession,
}

async fn manual(socket: &UdpSocket, server: SocketAddr, cid: [u8; 8]) -> Manual {
    let mut hs = nn(true);
    let mut m0 = Vec::new();
    hs.write_message(&[], &mut m0).unwrap();
    let mut token = Vec::new();
    for _ in 0..3 {
        socket
            .send_to(&initiation(cid, &token, &m0), server)
            .await
            .unwrap();
        let (p, _) = recv_within(socket, 3000).await.expect("an answer");
        assert_eq!(&p[1..9], &cid, "every packet carries the connection id");
        match p[0] {
            0x04 => token = p[9..].to_vec(),
            0x02 => {
                assert_eq!(p[9], 1, "the responder writes message 1");
                hs.read_message(&p[10..], &mut Vec::new()).unwrap();
                let session = DatagramSession::new(hs.finish().unwrap(), SessionConfig::new());
                return Manual {
                    cid,
                    session: session.unwrap(),
                };
            }
            k => panic!("unexpected kind {k:#x}"),
        }
    }
    panic!("no message 1");
}

impl Manual {
    fn record(&mut self, data: &[u8]) -> Vec<u8> {
        let mut p = vec![0x03];
        p.extend_from_slice(&self.cid);
        self.session.seal(data, &mut p).unwrap();
        p
    }
    fn open(&mut self, packet: &[u8]) -> Vec<u8> {
        assert_eq!((packet[0], &packet[1..9]), (0x03, &self.cid[..]));
        let mut out = Vec::new();
        assert!(matches!(
            self.session.open(&packet[9..], &mut out).unwrap(),
            Record::Data(_)
        ));
        out
    }
}

/// Every packet of a connection carries the id its initiator picked at
/// random, both ways; two connections get two ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_packet_carries_a_random_connection_id() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerLimits::default(), DatagramOptions::default(), false).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let relay = support::udp_relay::Relay::start(server.addr).await;
        let mut conn = connect_udp(
            socket_on(1).await,
            relay.front,
            nn(true),
            &DatagramOptions::default(),
        )
        .await
        .unwrap();
        conn.send_expect_echo(b"id", Duration::from_millis(300), 20)
            .await
            .unwrap();
        let cid = conn.connection_id();
        let sent = relay.captured();
        assert!(sent.len() >= 3);
        assert!(sent.iter().all(|p| p[1..9] == cid));
        ids.push(cid);
    }
    assert_ne!(ids[0], ids[1]);
    // Server to client: `manual` checks the id of every answer.
    let socket = socket_on(2).await;
    let mut m = manual(&socket, server.addr, [0x77; 8]).await;
    let record = m.record(b"echo");
    socket.send_to(&record, server.addr).await.unwrap();
    let (echo, _) = recv_within(&socket, 3000).await.unwrap();
    assert_eq!(m.open(&echo), b"echo");
    server.stop().await;
}

/// A responder that wrote the last message (NN) hands no connection to
/// the application before the initiator showed it finished: silence ends
/// in `Error::Timeout` at the handshake deadline, no `Established` event,
/// and the connection counts as half-open until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_waits_for_the_initiators_confirmation() {
    let _serial = SERIAL.lock().await;
    let options = DatagramOptions {
        handshake_timeout: Duration::from_secs(1),
        ..DatagramOptions::default()
    };
    // accept_udp alone.
    let listener = socket_on(1).await;
    let addr = listener.local_addr().unwrap();
    let accepting = tokio::spawn({
        let options = options.clone();
        async move { accept_udp(listener, nn(false), &options).await }
    });
    let client = socket_on(1).await;
    let started = Instant::now();
    let _m = manual(&client, addr, [1; 8]).await;
    let result = accepting.await.unwrap();
    assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // The server: a silent initiator holds a half-open slot until the
    // deadline, then fails; it never becomes a session.
    let server = start(ServerLimits::default(), options, false).await;
    let spoofed = socket_on(3).await;
    let _m = manual(&spoofed, server.addr, [2; 8]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.stats.snapshot().half_open, 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = server.stats.snapshot();
    assert_eq!((s.half_open, s.handshakes_ok), (0, 0));
    assert_eq!(server.seen(), vec![Seen::HandshakeTimeout]);
    server.stop().await;
}

/// A record that authenticates while the responder waits for the
/// confirmation confirms the handshake, and is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_before_the_confirmation_confirms_and_is_delivered() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerLimits::default(), DatagramOptions::default(), false).await;
    let socket = socket_on(1).await;
    let mut m = manual(&socket, server.addr, [3; 8]).await;
    let record = m.record(b"first words");
    socket.send_to(&record, server.addr).await.unwrap();
    let (echo, _) = recv_within(&socket, 3000).await.expect("the echo");
    assert_eq!(m.open(&echo), b"first words");
    assert_eq!(server.seen(), vec![Seen::Established]);
    server.stop().await;
}

/// Only the newest authenticated record moves the peer: a late older
/// record from the old address moves nothing back, and a replay from a
/// third address fails the window and moves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_newest_authenticated_record_moves_the_peer() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerLimits::default(), DatagramOptions::default(), false).await;
    let (a, b, c) = (
        socket_on(11).await,
        socket_on(12).await,
        socket_on(13).await,
    );
    let mut m = manual(&a, server.addr, [4; 8]).await;
    let r0 = m.record(b"r0");
    a.send_to(&r0, server.addr).await.unwrap();
    assert_eq!(m.open(&recv_within(&a, 3000).await.unwrap().0), b"r0");
    let (r1, r2) = (m.record(b"r1"), m.record(b"r2"));
    b.send_to(&r2, server.addr).await.unwrap();
    assert_eq!(m.open(&recv_within(&b, 3000).await.unwrap().0), b"r2");
    // r1 is older than r2: it is delivered but the peer stays at b.
    a.send_to(&r1, server.addr).await.unwrap();
    assert_eq!(m.open(&recv_within(&b, 3000).await.unwrap().0), b"r1");
    assert!(recv_within(&a, 300).await.is_none());
    // A replay of r2 from c: dropped, c gets nothing, b nothing more.
    c.send_to(&r2, server.addr).await.unwrap();
    assert!(recv_within(&c, 300).await.is_none());
    assert!(recv_within(&b, 100).await.is_none());
    let r3 = m.record(b"r3");
    b.send_to(&r3, server.addr).await.unwrap();
    assert_eq!(m.open(&recv_within(&b, 3000).await.unwrap().0), b"r3");
    let counted = server.packets.snapshot().connections;
    assert_eq!(counted.roamed, 1, "{counted:?}");
    assert!(counted.wrong_address >= 1, "{counted:?}");
    server.stop().await;
}

/// At most 256 datagrams and 128 KiB wait for one connection's task;
/// more are dropped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_holds_at_most_256_datagrams_and_128_kib_waiting() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerLimits::default(), DatagramOptions::default(), true).await;
    // 256 records of 52 bytes fit; 125 records of 1042 bytes fit in
    // 128 KiB, 126 do not.
    for (count, size, room) in [(300usize, 10usize, 256u64), (200, 1000, 125)] {
        let mut conn = connect_udp(
            socket_on(1).await,
            server.addr,
            nn(true),
            &DatagramOptions::default(),
        )
        .await
        .unwrap();
        // Let the server's task reach the (sleeping) handler.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = server.packets.snapshot();
        for i in 0..count {
            conn.send(&vec![i as u8; size]).await.unwrap();
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = server.packets.snapshot();
        // Counted from what reached the socket (loopback may drop some).
        let arrived = after.datagrams_in - before.datagrams_in;
        assert!(
            arrived > room,
            "{size}-byte records: only {arrived} arrived"
        );
        assert_eq!(
            after.inbox_full - before.inbox_full,
            arrived - room,
            "{size}-byte records"
        );
    }
    server.stop().await;
}

/// `ServerLimits::idle_timeout` ends a UDP connection with no record
/// either way for that long (`ConnectionFailed` with `IdleTimeout`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_udp_connection_is_closed() {
    let _serial = SERIAL.lock().await;
    let limits = ServerLimits {
        idle_timeout: Duration::from_millis(300),
        ..ServerLimits::default()
    };
    let server = start(limits, DatagramOptions::default(), false).await;
    let _conn = connect_udp(
        socket_on(1).await,
        server.addr,
        nn(true),
        &DatagramOptions::default(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    while !server.seen().contains(&Seen::IdleTimeout) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            server.seen()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(server.seen(), vec![Seen::Established, Seen::IdleTimeout]);
    server.stop().await;
}

/// A stateless reply (cookie, busy) is never larger than the initiation it
/// answers: a tiny initiation gets no cookie, a real one a 29-byte cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_replies_are_never_larger_than_the_initiation() {
    let _serial = SERIAL.lock().await;
    let options = DatagramOptions {
        cookies: CookiePolicy::Always,
        ..DatagramOptions::default()
    };
    let server = start(ServerLimits::default(), options, false).await;
    let socket = socket_on(1).await;
    let tiny = initiation([5; 8], &[], &[0x42]);
    assert_eq!(tiny.len(), 11);
    socket.send_to(&tiny, server.addr).await.unwrap();
    assert!(recv_within(&socket, 300).await.is_none());
    let mut m0 = Vec::new();
    nn(true).write_message(&[], &mut m0).unwrap();
    let real = initiation([5; 8], &[], &m0);
    socket.send_to(&real, server.addr).await.unwrap();
    let (cookie, _) = recv_within(&socket, 3000).await.unwrap();
    assert_eq!((cookie[0], cookie.len(), real.len()), (0x04, 29, 42));
    server.stop().await;

    // Busy: 9 bytes.
    let limits = ServerLimits {
        max_half_open: 1,
        ..ServerLimits::default()
    };
    let options = DatagramOptions {
        cookies: CookiePolicy::UnderLoad(100),
        ..DatagramOptions::default()
    };
    let server = start(limits, options, false).await;
    let holder = socket_on(2).await;
    let _held = manual(&holder, server.addr, [6; 8]).await;
    socket
        .send_to(&initiation([7; 8], &[], &m0), server.addr)
        .await
        .unwrap();
    let (busy, _) = recv_within(&socket, 3000).await.unwrap();
    assert_eq!((busy[0], busy.len()), (0x05, 9));
    assert_eq!(
        server.seen(),
        vec![Seen::Rejected(RejectReason::HalfOpenLimit(1))]
    );
    server.stop().await;
}

/// With a valid cookie but the address's proven share of handshakes in
/// progress, an initiation waits three quarters of the handshake timeout
/// for a slot, then gets a busy packet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proven_initiation_waits_three_quarters_of_the_timeout_then_is_busy() {
    let _serial = SERIAL.lock().await;
    let limits = ServerLimits {
        max_half_open_per_ip: 1,
        ..ServerLimits::default()
    };
    let options = DatagramOptions {
        cookies: CookiePolicy::Always,
        handshake_timeout: Duration::from_secs(4),
        ..DatagramOptions::default()
    };
    let server = start(limits, options, false).await;
    // Holds the address's one proven slot for 4 s (it never confirms).
    let holder = socket_on(61).await;
    let _held = manual(&holder, server.addr, [8; 8]).await;
    let waiting = socket_on(61).await;
    let mut m0 = Vec::new();
    nn(true).write_message(&[], &mut m0).unwrap();
    waiting
        .send_to(&initiation([9; 8], &[], &m0), server.addr)
        .await
        .unwrap();
    let (cookie, _) = recv_within(&waiting, 3000).await.unwrap();
    assert_eq!(cookie[0], 0x04);
    let sent = Instant::now();
    let proven = initiation([9; 8], &cookie[9..], &m0);
    waiting.send_to(&proven, server.addr).await.unwrap();
    // Its repeats while it waits are dropped (and counted).
    assert!(recv_within(&waiting, 500).await.is_none());
    waiting.send_to(&proven, server.addr).await.unwrap();
    let (busy, at) = recv_within(&waiting, 6000).await.expect("an answer");
    assert_eq!(busy[0], 0x05, "busy, not message 1");
    let waited = at - sent;
    assert!(waited >= Duration::from_millis(2950), "{waited:?}");
    assert!(
        recv_within(&waiting, 300).await.is_none(),
        "one answer only"
    );
    assert!(server.packets.snapshot().connections.duplicates >= 1);
    assert!(server
        .seen()
        .contains(&Seen::Rejected(RejectReason::HalfOpenPerIpLimit(1))));
    server.stop().await;
}

/// With the protocols akex has, the responder's message 1 always fits in
/// three times the initiation (no cookie round trip is ever needed for
/// the budget); the documented sizes.
#[test]
fn message_1_fits_three_times_the_initiation_for_every_protocol() {
    let header = 10; // kind, id, token length or index
    let mut checked = 0;
    for info in akex::handshake::registry::protocols() {
        let sizes = info.message_sizes;
        if sizes.len() < 2 {
            continue;
        }
        let (first, answer) = (header + sizes[0], header + sizes[1]);
        assert!(answer <= 3 * first, "{}: {answer} > 3 × {first}", info.name);
        checked += 1;
        let expected = match info.name {
            "Noise_XX_25519_ChaChaPoly_BLAKE2s" => Some((42, 106)),
            "akex-sigma-x25519-ed25519-chachapoly-sha256" => Some((91, 202)),
            "akex-pq-xx-x25519-mlkem768-chachapoly-sha256" => Some((1276, 2394)),
            _ => None,
        };
        if let Some(e) = expected {
            assert_eq!((first, answer), e, "{}", info.name);
        }
    }
    assert!(checked >= 10, "{checked}");
}
