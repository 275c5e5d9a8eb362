//! Promises about the `akex` command as a server and client (rows LIM-n,
//! DGRAM-n and SESS-n of docs/claims.md): accept errors, the bounded log,
//! flag ranges at their edges, the UDP cookie flags, closes at the end of
//! an echo session, and retries of a busy server.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akex::error::Error;
use akex::transport::{connect, Server, ServerLimits, TransportOptions};
use akex::{Handshake, NoiseConfig, NoiseHandshake};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const NN: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";

/// The servers here compete for ports, descriptors and CPU: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn nn_initiator() -> Box<dyn Handshake> {
    Box::new(NoiseHandshake::initiator(NoiseConfig::new(NN).unwrap()).unwrap())
}

/// One honest client: handshake, one echoed message, close.
async fn honest(addr: SocketAddr) -> Result<(), Error> {
    let tcp = TcpStream::connect(addr).await?;
    let stream = connect(tcp, nn_initiator(), &TransportOptions::default()).await?;
    let mut messages = stream.into_messages();
    messages.send(Bytes::from_static(b"hello")).await?;
    let echo = messages.next().await.expect("an echo")?;
    assert_eq!(&echo[..], b"hello");
    messages.close().await?;
    Ok(())
}
/// Out of file descriptors, `accept` fails: the server reports it (a few
/// lines, the rest counted), pauses 50 ms between tries instead of
/// spinning or exiting, and serves again once descriptors free up.
#[test]
fn accept_errors_are_reported_and_the_server_keeps_serving() {
    use std::os::unix::process::CommandExt;
    let _serial = serial();
    let bin = support::akex_binary();
    let mut cmd = Command::new(&bin);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--protocol", NN])
        .args(["--log-interval", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 32, 32)
                .map_err(std::io::Error::from)
        });
    }
    let mut server = cmd.spawn().unwrap();
    let (addr, lines) = support::listening_addr(&mut server);
    let addr: SocketAddr = addr.parse().unwrap();
    // Hold more connections than the server has descriptors, for 2.5 s.
    let held: Vec<_> = (0..60)
        .filter_map(|_| std::net::TcpStream::connect(addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(2500));
    drop(held);
    std::thread::sleep(Duration::from_millis(1500));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let served = rt.block_on(honest(addr));
    std::thread::sleep(Duration::from_millis(1200));
    let _ = server.kill();
    let _ = server.wait();
    let log: Vec<String> = lines.try_iter().collect();
    served.unwrap_or_else(|e| panic!("{e}: {log:#?}"));
    let shown = log
        .iter()
        .filter(|l| l.contains(": accept failed: "))
        .count();
    let counted: u64 = log
        .iter()
        .filter(|l| l.contains("more \"failed: accept failed"))
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum();
    let failures = shown as u64 + counted;
    println!("accept failures over ~2.5 s: {failures} ({shown} shown)");
    assert!(shown >= 1, "{log:#?}");
    assert!(shown <= 5 * 4, "a few lines per interval: {log:#?}");
    // 50 ms apart: at most ~50 in 2.5 s (a spinning loop makes thousands).
    assert!(failures <= 80, "{failures}: {log:#?}");
}

/// `akex serve`'s log: at most 100 success lines and 5 failure lines of
/// one kind per `--log-interval` (default 10 s); the rest are counted in
/// one line at the end of the interval.
#[test]
fn the_serve_log_shows_100_successes_and_5_failures_per_kind_and_interval() {
    let _serial = serial();
    let bin = support::akex_binary();
    let mut server = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--protocol", NN])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let (addr, lines) = support::listening_addr(&mut server);
    let addr: SocketAddr = addr.parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for _ in 0..11 {
            let batch: Vec<_> = (0..10).map(|_| tokio::spawn(honest(addr))).collect();
            for t in batch {
                t.await.unwrap().unwrap();
            }
        }
        for _ in 0..8 {
            // Connect and hang up: a handshake that fails.
            drop(TcpStream::connect(addr).await.unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let busy = started.elapsed();
    assert!(
        busy < Duration::from_secs(9),
        "too slow for one interval: {busy:?}"
    );
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            log.push(line);
        }
        let summaries = log.iter().filter(|l| l.contains(" more \"")).count();
        if summaries >= 3 {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let count = |needle: &str| log.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count(": handshake ok "), 100, "{log:#?}");
    assert_eq!(count("handshake_hash="), 100, "{log:#?}");
    assert_eq!(count(": failed: "), 5, "{log:#?}");
    assert_eq!(
        count("10 more \"handshake ok\" in the last 10s"),
        1,
        "{log:#?}"
    );
    assert_eq!(count("3 more \"failed: "), 1, "{log:#?}");
}

fn akex(args: &[&str]) -> std::process::Output {
    Command::new(support::akex_binary())
        .args(args)
        .output()
        .unwrap()
}

/// The ranges of the duration and size flags, at their edges: the idle
/// timeout from 1 s, the handshake timeout up to an hour, and over UDP a
/// message of 65465 bytes (one more is refused, naming the limit).
#[test]
fn command_line_ranges_at_their_edges() {
    let _serial = serial();
    let bin = support::akex_binary();
    let serve = ["serve", "--listen", "127.0.0.1:0", "--protocol", NN];
    for ok in [
        &["--idle-timeout", "1"][..],
        &["--timeout", "3600"],
        &["--timeout", "0.5"],
    ] {
        let server = support::start_listener(Command::new(&bin).args(serve).args(ok));
        server.stop();
    }
    for bad in [&["--timeout", "3600.5"][..], &["--idle-timeout", "0.5"]] {
        let out = akex(&[&serve[..], bad].concat());
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains(bad[0]));
    }
    let server = support::start_listener(Command::new(&bin).args(serve).args(["--udp"]));
    for (size, ok) in [(65_465usize, true), (65_466, false)] {
        let size = size.to_string();
        let out = akex(&[
            "connect",
            "--addr",
            &server.addr,
            "--protocol",
            NN,
            "--udp",
            "--messages",
            "1",
            "--size",
            &size,
        ]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["ok"], ok, "--size {size}: {json}");
        if !ok {
            assert!(json["error"].as_str().unwrap().contains("65465"), "{json}");
        }
    }
    server.stop();
}

/// `akex serve --udp`: `--cookies always` answers every new initiation
/// with a 29-byte cookie; by default cookies start once an eighth of
/// `--max-half-open` handshakes are in progress.
#[test]
fn serve_udp_cookie_flags() {
    let _serial = serial();
    let bin = support::akex_binary();
    let mut m0 = Vec::new();
    nn_initiator().write_message(&[], &mut m0).unwrap();
    let initiation = |cid: u8| {
        let mut p = vec![0x01];
        p.extend_from_slice(&[cid; 8]);
        p.push(0);
        p.extend_from_slice(&m0);
        p
    };
    let ask = |socket: &std::net::UdpSocket, addr: &str, cid: u8| {
        socket.send_to(&initiation(cid), addr).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = socket.recv_from(&mut buf).expect("an answer");
        (buf[0], n)
    };
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let serve = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--protocol",
        NN,
        "--udp",
    ];
    let server =
        support::start_listener(Command::new(&bin).args(serve).args(["--cookies", "always"]));
    assert_eq!(ask(&socket, &server.addr, 1), (0x04, 29));
    server.stop();
    // 16 / 8 = 2 handshakes in progress before cookies start.
    let server = support::start_listener(
        Command::new(&bin)
            .args(serve)
            .args(["--max-half-open", "16"]),
    );
    assert_eq!(ask(&socket, &server.addr, 1).0, 0x02);
    assert_eq!(ask(&socket, &server.addr, 2).0, 0x02);
    assert_eq!(ask(&socket, &server.addr, 3), (0x04, 29));
    server.stop();
}

fn keygen(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    let out = akex(&["keygen", "--output", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    path.to_str().unwrap().to_string()
}

/// `akex serve` answers a client's close with its own after its last
/// echo; `akex connect` closes when it has its echoes and accepts the
/// server's close (akex mode: both ends are authenticated, not cut).
#[test]
fn serve_and_connect_end_with_authenticated_closes() {
    use akex::handshake::hybrid::HYBRID_XX;
    use akex::handshake::registry::{self, HandshakeKeys};
    use akex::keys::StaticSecret;
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (server_key, client_key) = (keygen(dir.path(), "s.key"), keygen(dir.path(), "c.key"));
    let bin = support::akex_binary();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // An in-process client against `akex serve`.
    let server = support::start_listener(
        Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--protocol", HYBRID_XX])
            .args(["--identity", &server_key]),
    );
    let addr: SocketAddr = server.addr.parse().unwrap();
    rt.block_on(async {
        let keys =
            HandshakeKeys::new().static_key(StaticSecret::generate(&mut akex::crypto::OsRng));
        let handshake = registry::initiator(HYBRID_XX, &keys).unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let stream = connect(tcp, handshake, &TransportOptions::default())
            .await
            .unwrap();
        let mut messages = stream.into_messages();
        messages.send(Bytes::from_static(b"one")).await.unwrap();
        assert_eq!(&messages.next().await.unwrap().unwrap()[..], b"one");
        messages.close().await.unwrap();
        let end = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .expect("the server's answer");
        assert!(end.is_none(), "the server's close, not a cut: {end:?}");
    });
    // The server logs the session's end right after its close went out.
    std::thread::sleep(Duration::from_millis(500));
    let log = server.stop();
    assert!(log.contains("closed after echoing 1 message(s)"), "{log}");

    // `akex connect` against an in-process server that reports how the
    // client's direction ended.
    let ended = Arc::new(Mutex::new(Vec::new()));
    let (stop, addr, task) = rt.block_on(async {
        let key = StaticSecret::generate(&mut akex::crypto::OsRng);
        let keys = HandshakeKeys::new().static_key(key);
        let server = Server::bind(
            "127.0.0.1:0",
            ServerLimits::default(),
            TransportOptions::default(),
        )
        .await
        .unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let ended = Arc::clone(&ended);
        let task = tokio::spawn(server.run(
            move |_| registry::responder(&[HYBRID_XX], &keys),
            move |_, stream| {
                let ended = Arc::clone(&ended);
                async move {
                    let mut messages = stream.into_messages();
                    let end = loop {
                        match messages.next().await {
                            Some(Ok(m)) => messages.send(m.freeze()).await?,
                            Some(Err(e)) => break format!("error: {e}"),
                            None => break "close".to_string(),
                        }
                    };
                    ended.lock().unwrap().push(end);
                    messages.close().await?;
                    Ok(())
                }
            },
            async move {
                let _ = stopped.await;
            },
        ));
        (stop, addr, task)
    });
    let addr = addr.to_string();
    let out = akex(&[
        "connect",
        "--addr",
        &addr,
        "--protocol",
        HYBRID_XX,
        "--identity",
        &client_key,
        "--messages",
        "2",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true, "{json}");
    rt.block_on(async {
        let started = Instant::now();
        while ended.lock().unwrap().is_empty() && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop.send(());
        task.await.unwrap();
    });
    assert_eq!(*ended.lock().unwrap(), vec!["close".to_string()]);
}

/// Turned away as busy, `akex connect --retries N` tries again after
/// 100 ms, then twice as long each time, each wait between half and all
/// of its step (jitter), and reports `server_busy` when out of tries.
#[test]
fn connect_retries_a_busy_server_with_doubling_backoff() {
    let _serial = serial();
    let bin = support::akex_binary();
    let server = support::start_listener(Command::new(&bin).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--protocol",
        NN,
        "--udp",
        "--max-half-open",
        "1",
        "--timeout",
        "30",
    ]));
    // A silent initiation holds the only slot for 30 s.
    let holder = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    let mut m0 = Vec::new();
    nn_initiator().write_message(&[], &mut m0).unwrap();
    let mut p = vec![0x01, 9, 9, 9, 9, 9, 9, 9, 9, 0];
    p.extend_from_slice(&m0);
    holder.send_to(&p, &server.addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let out = akex(&[
        "connect",
        "--addr",
        &server.addr,
        "--protocol",
        NN,
        "--udp",
        "--messages",
        "1",
        "--retries",
        "4",
    ]);
    let elapsed = started.elapsed();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "server_busy", "{json}");
    assert_eq!(json["attempts"], 5, "{json}");
    // Waits of 100, 200, 400 and 800 ms, each scaled by 0.5 to 1.
    assert!(elapsed >= Duration::from_millis(750), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500 + 2000), "{elapsed:?}");
    server.stop();
}
