//! The UDP datagram server under attack, over loopback: spoofed-duplicate
//! floods (amplification), garbage and replayed datagrams while honest
//! peers complete handshakes and echo, noise injected into a handshake,
//! and a peer that roams. (Cookies are in tests/udp_cookies.rs, bursts and
//! busy replies in tests/udp_limits.rs.)
//!
//! Packets are built here from protocols/datagram.md, not with the
//! library's own encoder, so the spec and the code are checked against
//! each other.

mod support;
mod udp_server_support;

use support::udp_relay::Relay;
use udp_server_support::*;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akex::transport::datagram::{connect_udp, DatagramOptions, MAX_HANDSHAKE_RESENDS};
use akex::transport::ServerLimits;
use tokio::net::UdpSocket;

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
