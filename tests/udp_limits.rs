//! The UDP datagram server at its limits, over loopback: a burst from one
//! address proves itself with cookies and waits for slots, and past the
//! global half-open limit a new peer is told the server is busy.

mod udp_server_support;

use udp_server_support::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use akex::error::Error;
use akex::transport::datagram::{connect_udp, CookiePolicy, DatagramOptions};
use akex::transport::ServerLimits;

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
