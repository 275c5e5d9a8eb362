//! The TCP server under honest load and a failing handler: 2,000
//! handshakes from 100 concurrent clients with no failure and no leaked
//! descriptor or task, and a panicking connection handler reported as a
//! failure while the server keeps serving.

mod hostile_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akex::transport::{Server, ServerLimits, TransportOptions};
use akex::{Handshake, NoiseConfig, NoiseHandshake};
use hostile_support::*;
use tokio::sync::oneshot;

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
