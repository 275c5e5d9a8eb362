//! The TCP server's denial-of-service limits one at a time, over real
//! sockets: the global half-open limit turns clients away as busy and
//! recovers, an idle established connection is closed with a reason, and
//! `akex serve` logs limit rejections while a client over the per-address
//! share waits for its slot.

mod hostile_support;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use akex::error::Error;
use akex::transport::{connect, RejectReason, ServerLimits, TransportOptions};
use akex::{NoiseConfig, NoiseHandshake};
use futures_util::StreamExt;
use hostile_support::*;
use tokio::io::AsyncReadExt;

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
