//! Hostile input over real sockets against an in-process [`Server`] with
//! its denial-of-service limits: malformed, random, replayed and truncated
//! handshakes, slowloris and a flood of first messages, all at once. (The
//! limits one at a time are in tests/hostile_limits.rs, load in
//! tests/hostile_load.rs.)
//!
//! Attackers connect from their own loopback addresses (127.0.0.2 and up)
//! so the per-address limit applies to them and not to the honest clients
//! (127.0.0.1), which run at the same time and must all succeed. Every
//! hostile connection must end in exactly one failure event with a reason,
//! and the server must keep serving.

mod hostile_support;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akex::crypto::OsRng;
use akex::keys::StaticSecret;
use akex::transport::{RejectReason, ServerLimits, TransportOptions};
use akex::{Handshake, NoiseConfig, NoiseHandshake};
use hostile_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

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
