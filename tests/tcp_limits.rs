//! The TCP server's limits under honest bursts and hostile load, over
//! loopback: bursts from one address are served instead of reset, a busy
//! server says so (and `akex connect --retries` comes back), trickling
//! sessions cannot lock honest clients out, a flood writes a bounded log,
//! and every duration and size flag is checked.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use akex::error::{Error, PeerMisbehaved};
use akex::transport::{connect, Server, ServerLimits, ServerStats, TransportOptions};
use akex::{Handshake, NoiseConfig, NoiseHandshake};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

const NN: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";

/// Tests here count connections and compete for the CPU: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn tcp_from(host: u8, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0)))?;
    socket.connect(addr).await
}

fn nn_initiator() -> NoiseHandshake {
    NoiseHandshake::initiator(NoiseConfig::new(NN).unwrap()).unwrap()
}

/// One honest client: handshake, one echoed message, orderly close.
async fn honest(addr: SocketAddr, host: u8) -> Result<(), Error> {
    let tcp = tcp_from(host, addr).await?;
    let _ = tcp.set_nodelay(true);
    let stream = connect(tcp, nn_initiator(), &TransportOptions::default()).await?;
    let mut messages = stream.into_messages();
    messages.send(Bytes::from_static(b"ping")).await?;
    let echoed = messages
        .next()
        .await
        .ok_or(PeerMisbehaved::UnexpectedMessage)??;
    if &echoed[..] != b"ping" {
        return Err(PeerMisbehaved::UnexpectedMessage.into());
    }
    messages.close().await?;
    Ok(())
}

struct Running {
    addr: SocketAddr,
    stats: Arc<ServerStats>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: ServerLimits) -> Running {
    let server = Server::bind("127.0.0.1:0", limits, TransportOptions::default())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let stats = server.stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(
        |_| Ok(Box::new(NoiseHandshake::responder(NoiseConfig::new(NN)?)?) as Box<dyn Handshake>),
        |_peer, stream| async move {
            let mut messages = stream.into_messages();
            while let Some(m) = messages.next().await {
                messages.send(m?.freeze()).await?;
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
        stop,
        task,
    }
}

/// 1,000 honest clients from one address at once, default limits: every
/// one is served (the per-address cap of 16 half-open handshakes makes the
/// rest wait for a slot instead of being reset).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_clients_from_one_address_is_served_with_defaults() {
    let _serial = SERIAL.lock().await;
    let server = start(ServerLimits::default()).await;
    let addr = server.addr;
    let peak_queued = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stats, peak) = (server.stats.clone(), peak_queued.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(stats.snapshot().queued as usize, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..1000).map(|_| tokio::spawn(honest(addr, 1))).collect();
    let mut errors = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            errors.push(e.to_string());
        }
    }
    watcher.abort();
    let s = server.stats.snapshot();
    println!(
        "1000 concurrent NN clients from one address in {:?}: {} failed, at most {} waiting \
         for a slot at once; {s:?}",
        started.elapsed(),
        errors.len(),
        peak_queued.load(Ordering::Relaxed)
    );
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(5)]);
    assert_eq!(s.rejected, 0);
    assert_eq!(s.handshakes_ok, 1000);
    assert!(
        peak_queued.load(Ordering::Relaxed) > 0,
        "the burst did queue"
    );
    let _ = server.stop.send(());
    server.task.await.unwrap();
}

/// The report's scenario: 200 `akex connect` processes started at once
/// from one address against `akex serve` with its defaults: all succeed.
#[test]
fn two_hundred_akex_connect_processes_at_once_all_succeed_against_serve_defaults() {
    let _serial = SERIAL.blocking_lock();
    let bin = support::akex_binary();
    let server = support::start_listener(Command::new(&bin).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--protocol",
        NN,
    ]));
    let started = Instant::now();
    let clients: Vec<_> = (0..200)
        .map(|_| {
            Command::new(&bin)
                .args(["connect", "--addr", &server.addr, "--protocol", NN])
                .args(["--messages", "2", "--size", "100"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut failures = Vec::new();
    for c in clients {
        let out = c.wait_with_output().unwrap();
        if !out.status.success() {
            failures.push(String::from_utf8_lossy(&out.stdout).to_string());
        }
    }
    let log = server.stop();
    println!(
        "200 akex connect processes in {:?}, failures: {}",
        started.elapsed(),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:?}\n{log}");
}

/// A server at its global limit answers "busy": `akex connect` reports it
/// as `server_busy` in its JSON, and with `--retries` comes back with
/// backoff and gets in once a slot frees. Over UDP too.
#[test]
fn busy_is_reported_by_connect_and_retried_with_backoff() {
    let _serial = SERIAL.blocking_lock();
    let bin = support::akex_binary();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let connect = |addr: &str, extra: &[&str]| {
        let out = Command::new(&bin)
            .args([
                "connect",
                "--addr",
                addr,
                "--protocol",
                NN,
                "--messages",
                "1",
            ])
            .args(extra)
            .output()
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
        (out.status.success(), json)
    };
    for udp in [false, true] {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--protocol", NN];
        args.extend(["--max-half-open", "1", "--timeout", "3"]);
        if udp {
            args.push("--udp");
        }
        let server = support::start_listener(Command::new(&bin).args(&args));
        let addr: SocketAddr = server.addr.parse().unwrap();
        // A handshake that never finishes holds the only slot.
        let (holder, udp_holder) = if udp {
            let s = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
            let mut hs = nn_initiator();
            let mut m0 = Vec::new();
            hs.write_message(&[], &mut m0).unwrap();
            let mut p = vec![0x01, 9, 9, 9, 9, 9, 9, 9, 9, 0];
            p.extend_from_slice(&m0);
            s.send_to(&p, addr).unwrap();
            (None, Some(s))
        } else {
            (Some(rt.block_on(tcp_from(2, addr)).unwrap()), None)
        };
        std::thread::sleep(Duration::from_millis(300));
        let mut extra = vec![];
        if udp {
            extra.push("--udp");
        }
        let (ok, json) = connect(&server.addr, &extra);
        println!("udp={udp}: {json}");
        assert!(!ok);
        assert_eq!(json["kind"], "server_busy", "{json}");
        assert!(json["error"].as_str().unwrap().contains("server busy"));
        assert_eq!(json["attempts"], 1);
        // Retrying: the holder lets go after a while.
        let retrying = {
            let (bin, addr) = (bin.clone(), server.addr.clone());
            let mut extra = extra.clone();
            extra.extend(["--retries", "20"]);
            let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            std::thread::spawn(move || {
                Command::new(bin)
                    .args([
                        "connect",
                        "--addr",
                        &addr,
                        "--protocol",
                        NN,
                        "--messages",
                        "1",
                    ])
                    .args(&extra)
                    .output()
                    .unwrap()
            })
        };
        std::thread::sleep(Duration::from_millis(600));
        drop(holder);
        drop(udp_holder);
        let out = retrying.join().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        println!("udp={udp}, with --retries: {json}");
        assert_eq!(json["ok"], true, "{json}");
        assert!(json["attempts"].as_u64().unwrap() >= 2, "{json}");
        server.stop();
    }
}

/// 10,000 sessions attempted from one address, each established one then
/// trickling a byte at a time into a message it never finishes: at most
/// `max_connections_per_ip` get in, honest clients from elsewhere are
/// served meanwhile, the idle timeout closes every trickler, and then the
/// address is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_sessions_from_one_address_cannot_lock_out_honest_clients() {
    let _serial = SERIAL.lock().await;
    // Long enough that the first tricklers still hold their slots when the
    // last attempts come.
    let idle = Duration::from_secs(8);
    let server = start(ServerLimits {
        idle_timeout: idle,
        ..ServerLimits::default()
    })
    .await;
    let addr = server.addr;
    let cap = ServerLimits::default().max_connections_per_ip;
    let (in_count, busy_count) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let peak_open = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stats, peak) = (server.stats.clone(), peak_open.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(stats.snapshot().open as usize, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let started = Instant::now();
    let mut tricklers = Vec::new();
    for wave in 0..20 {
        let mut attempts = Vec::new();
        for _ in 0..500 {
            let (inn, busy) = (in_count.clone(), busy_count.clone());
            attempts.push(tokio::spawn(async move {
                let Ok(mut tcp) = tcp_from(3, addr).await else {
                    return None;
                };
                // NN by hand, so the raw stream stays ours for trickling.
                let mut hs = nn_initiator();
                let mut m = Vec::new();
                hs.write_message(&[], &mut m).unwrap();
                let mut framed = (m.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&m);
                tcp.write_all(&framed).await.ok()?;
                let mut header = [0u8; 2];
                tcp.read_exact(&mut header).await.ok()?;
                if header == [0, 0] {
                    busy.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let mut m1 = vec![0u8; usize::from(u16::from_be_bytes(header))];
                tcp.read_exact(&mut m1).await.ok()?;
                inn.fetch_add(1, Ordering::Relaxed);
                // A record of 4096 bytes announced, never finished.
                tcp.write_all(&[0x10, 0x00]).await.ok()?;
                Some(tokio::spawn(async move {
                    let begun = Instant::now();
                    let mut buf = [0u8; 64];
                    loop {
                        if tcp.write_all(&[0x5a]).await.is_err() {
                            return begun.elapsed();
                        }
                        match tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf))
                            .await
                        {
                            Ok(Ok(0)) | Ok(Err(_)) => return begun.elapsed(),
                            _ => {}
                        }
                        if begun.elapsed() > Duration::from_secs(30) {
                            return begun.elapsed();
                        }
                    }
                }))
            }));
        }
        for a in attempts {
            if let Some(t) = a.await.unwrap() {
                tricklers.push(t);
            }
        }
        if wave == 9 {
            // Honest clients from another address, while the trickles run.
            for _ in 0..20 {
                honest(addr, 4)
                    .await
                    .expect("honest client from another address");
            }
        }
    }
    let attempted = started.elapsed();
    // Every trickler is closed by the server's idle timeout.
    let mut longest = Duration::ZERO;
    for t in tricklers {
        longest = longest.max(t.await.unwrap());
    }
    watcher.abort();
    // And the address is served again.
    honest(addr, 3)
        .await
        .expect("the trickling address is served again");
    let s = server.stats.snapshot();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    println!(
        "10000 attempts from one address in {attempted:?}: {} got in, {} told busy, peak open {}, \
         longest trickle {longest:?}; test process (clients and server) {rss}; {s:?}",
        in_count.load(Ordering::Relaxed),
        busy_count.load(Ordering::Relaxed),
        peak_open.load(Ordering::Relaxed)
    );
    assert!(peak_open.load(Ordering::Relaxed) <= cap + 1);
    assert!(in_count.load(Ordering::Relaxed) >= cap);
    assert!(busy_count.load(Ordering::Relaxed) > 5000);
    assert!(longest < idle + Duration::from_secs(3), "{longest:?}");
    let _ = server.stop.send(());
    server.task.await.unwrap();
}

/// A flood of connections that fail or are turned away, for 8 s: the log
/// gets a bounded number of lines (a few per kind and interval, plus a
/// count), not one per connection.
#[test]
fn a_flood_writes_a_bounded_number_of_log_lines() {
    let _serial = SERIAL.blocking_lock();
    let bin = support::akex_binary();
    let mut server = Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--protocol", NN])
        .args([
            "--max-half-open",
            "4",
            "--timeout",
            "1",
            "--log-interval",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, lines) = support::listening_addr(&mut server);
    let addr: SocketAddr = addr.parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let attempts = rt.block_on(async {
        let attempts = Arc::new(AtomicUsize::new(0));
        let until = Instant::now() + Duration::from_secs(8);
        let mut tasks = Vec::new();
        for k in 0..64u8 {
            let attempts = attempts.clone();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    // Connect and hang up at once: a failed handshake, or a
                    // busy answer past the limit of 4.
                    if let Ok(tcp) = tcp_from(10 + k % 8, addr).await {
                        drop(tcp);
                    }
                    attempts.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        attempts.load(Ordering::Relaxed)
    });
    // The last interval's summary.
    std::thread::sleep(Duration::from_millis(2500));
    let _ = server.kill();
    let _ = server.wait();
    let log: Vec<String> = lines.try_iter().collect();
    let summaries = log.iter().filter(|l| l.contains(" more \"")).count();
    println!(
        "{attempts} connections in 8 s wrote {} log lines ({summaries} summaries); first lines:\n{}",
        log.len(),
        log.iter().take(12).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(attempts > 1000, "{attempts}");
    assert!(summaries >= 1);
    // 5 intervals, a handful of kinds, at most 5 lines each plus a summary.
    assert!(log.len() < 200, "{} lines", log.len());
}

fn akex(args: &[&str]) -> std::process::Output {
    Command::new(support::akex_binary())
        .args(args)
        .output()
        .unwrap()
}

/// Every duration and size on the command line is range-checked: values
/// out of range are refused with a message, never a panic, and the help
/// states the true limits.
#[test]
fn duration_and_size_flags_are_validated_and_never_panic() {
    let _serial = SERIAL.blocking_lock();
    let serve = ["serve", "--listen", "127.0.0.1:0", "--protocol", NN];
    for bad in [
        &["--idle-timeout", "18446744073709551615"][..],
        &["--idle-timeout", "0"],
        &["--idle-timeout", "31536001"],
        &["--timeout", "nan"],
        &["--timeout", "inf"],
        &["--timeout=-1"],
        &["--timeout", "0"],
        &["--timeout", "1e300"],
        &["--log-interval", "0"],
        &["--max-half-open", "0"],
        &["--max-connections-per-ip", "0"],
    ] {
        let out = akex(&[&serve[..], bad].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(!stderr.contains("panicked"), "{bad:?}: {stderr}");
        let flag = bad[0].split('=').next().unwrap();
        assert!(stderr.contains(flag), "{bad:?}: {stderr}");
    }
    for bad in [
        &["bench", "--quick", "--rtt", "inf"][..],
        &["bench", "--quick", "--bandwidth", "-1"],
        &["bench", "--quick", "--message-size", "18446744073709551615"],
        &["demo", "--bulk-mib", "18446744073709551615"],
        &[
            "connect",
            "--addr",
            "127.0.0.1:9",
            "--protocol",
            NN,
            "--timeout",
            "1e30",
        ],
        &[
            "connect",
            "--addr",
            "127.0.0.1:9",
            "--protocol",
            NN,
            "--retries",
            "1000",
        ],
    ] {
        let out = akex(bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(!stderr.contains("panicked"), "{bad:?}: {stderr}");
    }
    // The longest idle timeout is accepted and serves (the old code
    // panicked on every connection with a large one).
    let server = support::start_listener(
        Command::new(support::akex_binary())
            .args([&serve[..], &["--idle-timeout", "31536000"]].concat()),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(honest(server.addr.parse().unwrap(), 1))
        .expect("served with a one-year idle timeout");
    let log = server.stop();
    assert!(!log.contains("panicked"), "{log}");
    // The help says what --size really allows.
    let help = String::from_utf8_lossy(&akex(&["connect", "--help"]).stdout).to_string();
    assert!(
        help.contains("65519") && help.contains("65518") && help.contains("65465"),
        "{help}"
    );
}

/// `--size`: 65519 bytes in Noise mode and 65518 in akex mode work end to
/// end; one more is refused before connecting, naming the limit.
#[test]
fn size_limits_are_the_true_ones_in_each_mode() {
    let _serial = SERIAL.blocking_lock();
    let dir = tempfile::tempdir().unwrap();
    let bin = support::akex_binary();
    let key = |name: &str| {
        let path = dir.path().join(name);
        let out = Command::new(&bin)
            .args(["keygen", "--output", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success());
        path.to_str().unwrap().to_string()
    };
    let (server_key, client_key) = (key("server.key"), key("client.key"));
    let hybrid = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256";
    for (protocol, max, server_args, client_args) in [
        (NN, 65519usize, vec![], vec![]),
        (
            hybrid,
            65518,
            vec!["--identity", server_key.as_str()],
            vec!["--identity", client_key.as_str()],
        ),
    ] {
        let server = support::start_listener(
            Command::new(&bin)
                .args(["serve", "--listen", "127.0.0.1:0", "--protocol", protocol])
                .args(&server_args),
        );
        for (size, ok) in [(max, true), (max + 1, false)] {
            let out = Command::new(&bin)
                .args(["connect", "--addr", &server.addr, "--protocol", protocol])
                .args(&client_args)
                .args(["--messages", "2", "--size", &size.to_string()])
                .output()
                .unwrap();
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json["ok"], ok, "{protocol} --size {size}: {json}");
            if !ok {
                assert_eq!(json["kind"], "config");
                assert!(
                    json["error"].as_str().unwrap().contains(&max.to_string()),
                    "{json}"
                );
            }
        }
        server.stop();
    }
}
