//! Cookies of the UDP datagram server, over loopback: responders sharing a
//! cookie key accept each other's tokens, a spoofing flood costs no DH or
//! KEM work once cookies are on, and the cookie vectors of
//! protocols/vectors/datagram.json hold for the library and an independent
//! HMAC.

mod udp_server_support;

use udp_server_support::*;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use akex::transport::datagram::{CookieJar, CookiePolicy, DatagramOptions, DatagramServer};
use akex::transport::ServerLimits;
use akex::{Handshake, NoiseHandshake};
use tokio::sync::oneshot;

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
