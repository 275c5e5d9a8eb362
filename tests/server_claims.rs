//! Promises of docs/security.md, "Server limits (denial of service)",
//! about the TCP `Server`, each tested so that it fails if the promise
//! breaks (rows LIM-n of docs/claims.md): defaults, the wait for a
//! per-address slot and the deadline that counts it, shutdown, the
//! counters, and a library that never prints. The `akex serve` side is in
//! tests/serve_cli_claims.rs.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akex::error::Error;
use akex::transport::{
    connect, RejectReason, Server, ServerEvent, ServerLimits, TransportOptions, BUSY_FRAME,
};
use akex::{Handshake, NoiseConfig, NoiseHandshake};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

const NN: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";

/// Tests here count connections and time waits: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn nn(initiator: bool) -> Box<dyn Handshake> {
    let config = NoiseConfig::new(NN).unwrap();
    Box::new(if initiator {
        NoiseHandshake::initiator(config).unwrap()
    } else {
        NoiseHandshake::responder(config).unwrap()
    })
}

async fn tcp_from(host: u8, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))?;
    socket.connect(addr).await
}

/// One honest client: handshake, one echoed message, close.
async fn honest(addr: SocketAddr) -> Result<(), Error> {
    let tcp = TcpStream::connect(addr).await?;
    let stream = connect(tcp, nn(true), &TransportOptions::default()).await?;
    let mut messages = stream.into_messages();
    messages.send(Bytes::from_static(b"hello")).await?;
    let echo = messages.next().await.expect("an echo")?;
    assert_eq!(&echo[..], b"hello");
    messages.close().await?;
    Ok(())
}

/// The documented defaults of the TCP server's limits and options.
#[test]
fn documented_tcp_defaults() {
    let o = TransportOptions::default();
    assert_eq!(o.handshake_timeout, Duration::from_secs(10));
    assert_eq!(o.max_frame_len, 65_535);
    assert_eq!(
        TransportOptions::new().max_frame_len(100_000).max_frame_len,
        65_535
    );
    assert_eq!(BUSY_FRAME, [0, 0]);
    let l = ServerLimits::default();
    assert_eq!((l.max_half_open, l.max_half_open_per_ip), (1024, 16));
    assert_eq!((l.max_queued, l.max_connections), (1024, 10_000));
    assert_eq!(l.max_connections_per_ip, 1024);
    assert_eq!(l.idle_timeout, Duration::from_secs(60));
}

/// Past its address's share of half-open handshakes, a connection waits
/// for a slot for three quarters of the handshake timeout, then is told
/// the server is busy (`00 00` and a close) with `HalfOpenPerIpLimit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_waits_three_quarters_of_the_timeout_for_a_slot() {
    let _serial = SERIAL.lock().await;
    let limits = ServerLimits {
        max_half_open_per_ip: 1,
        ..ServerLimits::default()
    };
    let options = TransportOptions::new().handshake_timeout(Duration::from_secs(4));
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let server = Server::bind("127.0.0.1:0", limits, options)
        .await
        .unwrap()
        .on_event(move |e| {
            if let ServerEvent::Rejected { reason, .. } = e {
                log.lock().unwrap().push(*reason);
            }
        });
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(
        server.run(|_| Ok(nn(false)), |_, _| async { Ok(()) }, async move {
            let _ = stopped.await;
        }),
    );
    // A silent connection holds the address's one slot for 4 s.
    let _holder = tcp_from(71, addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut waiting = tcp_from(71, addr).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(6), waiting.read_to_end(&mut got))
        .await
        .expect("an answer before the holder's deadline")
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(got, BUSY_FRAME);
    assert!(waited >= Duration::from_millis(2950), "{waited:?}");
    assert!(waited < Duration::from_millis(3900), "{waited:?}");
    assert_eq!(
        *events.lock().unwrap(),
        vec![RejectReason::HalfOpenPerIpLimit(1)]
    );
    let _ = stop.send(());
    task.await.unwrap();
}

/// `Server::run`: when its shutdown future completes, the listener closes
/// and every connection task is aborted at once (grace zero).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_aborts_every_connection_at_shutdown() {
    let _serial = SERIAL.lock().await;
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let aborted = Arc::new(AtomicBool::new(false));
    let server = Server::bind(
        "127.0.0.1:0",
        ServerLimits::default(),
        TransportOptions::default(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let flag = Arc::clone(&aborted);
    let task = tokio::spawn(server.run(
        |_| Ok(nn(false)),
        move |_, _stream| {
            let guard = Flag(Arc::clone(&flag));
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(())
            }
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let _client = connect(tcp, nn(true), &TransportOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!aborted.load(Ordering::SeqCst));
    let started = Instant::now();
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("run returns")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(aborted.load(Ordering::SeqCst), "the handler was aborted");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

/// A server on `limits` with a 2 s handshake deadline whose handler echoes
/// and fails on the message "fail"; events are kept as short strings.
async fn echo_server(
    limits: ServerLimits,
    timeout: Duration,
) -> (
    SocketAddr,
    Arc<akex::transport::ServerStats>,
    Arc<Mutex<Vec<String>>>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let server = Server::bind(
        "127.0.0.1:0",
        limits,
        TransportOptions::new().handshake_timeout(timeout),
    )
    .await
    .unwrap()
    .on_event(move |e| {
        let short = match e {
            ServerEvent::HandshakeFailed {
                error: Error::Timeout(_),
                ..
            } => "handshake timeout".to_string(),
            other => match other.failure() {
                Some(reason) => reason,
                None => "ok".to_string(),
            },
        };
        log.lock().unwrap().push(short);
    });
    let addr = server.local_addr().unwrap();
    let stats = server.stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(
        |_| Ok(nn(false)),
        |_, stream| async move {
            let mut messages = stream.into_messages();
            while let Some(m) = messages.next().await {
                let m = m?;
                if &m[..] == b"fail" {
                    return Err(Error::Io(std::io::Error::other("handler failed")));
                }
                messages.send(m.freeze()).await?;
            }
            Ok(())
        },
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stats, events, stop, task)
}

/// The handshake deadline counts the wait for a slot: a connection that
/// waited 1 s for its address's slot has 3 s left of a 4 s deadline, and
/// its silence ends in `HandshakeFailed` with `Timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_deadline_counts_the_wait_for_a_slot() {
    let _serial = SERIAL.lock().await;
    let limits = ServerLimits {
        max_half_open_per_ip: 1,
        ..ServerLimits::default()
    };
    let (addr, _stats, events, stop, task) = echo_server(limits, Duration::from_secs(4)).await;
    let holder = tcp_from(91, addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut waiter = tcp_from(91, addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    drop(holder); // its handshake fails at once; the waiter gets the slot
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(8), waiter.read_to_end(&mut got))
        .await
        .expect("closed by the server");
    let waited = started.elapsed();
    assert!(got.is_empty(), "not busy: it had the slot");
    assert!(waited >= Duration::from_millis(3950), "{waited:?}");
    assert!(waited < Duration::from_millis(4900), "{waited:?}");
    let seen = events.lock().unwrap().clone();
    assert_eq!(
        seen.last().map(String::as_str),
        Some("handshake timeout"),
        "{seen:?}"
    );
    let _ = stop.send(());
    task.await.unwrap();
}

/// `Server::stats()` counts accepted, rejected, handshakes ok and failed,
/// connections failed and closed, and the connections waiting, half-open
/// and open right now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stats_count_every_outcome() {
    let _serial = SERIAL.lock().await;
    let limits = ServerLimits {
        max_half_open_per_ip: 1,
        max_queued: 1,
        ..ServerLimits::default()
    };
    let (addr, stats, events, stop, task) = echo_server(limits, Duration::from_secs(5)).await;
    honest(addr).await.unwrap();
    {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let stream = connect(tcp, nn(true), &TransportOptions::default())
            .await
            .unwrap();
        let mut messages = stream.into_messages();
        messages.send(Bytes::from_static(b"fail")).await.unwrap();
        assert!(messages.next().await.is_none_or(|r| r.is_err()));
    }
    drop(tcp_from(93, addr).await.unwrap());
    let holder = tcp_from(94, addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiter = tcp_from(94, addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut turned_away = tcp_from(94, addr).await.unwrap();
    let mut got = Vec::new();
    turned_away.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, BUSY_FRAME);
    let s = stats.snapshot();
    assert_eq!((s.queued, s.half_open, s.open), (1, 1, 2), "{s:?}");
    drop((holder, waiter));
    let started = Instant::now();
    while stats.snapshot().open > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            stats.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = stats.snapshot();
    assert_eq!((s.accepted, s.rejected), (6, 1), "{s:?}");
    assert_eq!((s.handshakes_ok, s.handshakes_failed), (2, 3), "{s:?}");
    assert_eq!((s.connections_failed, s.closed_ok), (1, 1), "{s:?}");
    assert_eq!((s.queued, s.half_open, s.open), (0, 0, 0), "{s:?}");
    // One event with a reason for each connection that did not end well.
    let failures = events.lock().unwrap().iter().filter(|e| *e != "ok").count();
    assert_eq!(failures, 5);
    let _ = stop.send(());
    task.await.unwrap();
}
