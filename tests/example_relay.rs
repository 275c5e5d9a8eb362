//! Runs `examples/relay/` headless: a relay and its clients as child
//! processes on 127.0.0.1 (port 0), driven through stdin and checked on
//! their output. Covers forwarding between named clients, the error
//! replies, a few hundred sessions at once (`load`), the connection limit,
//! a slow consumer being dropped, and the shutdown (`quit` on stdin and
//! SIGINT) that ends every session with an authenticated close.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use akex::keys::{encode_public_key, write_new_identity};

/// Generous: the machine may be loaded, and the example is a debug build.
const DEADLINE: Duration = Duration::from_secs(120);

fn example_binary() -> PathBuf {
    support::example_binary("relay")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Out,
    Err,
}

/// A running example: its stdout and stderr lines arrive on one channel
/// (read by threads, so no pipe ever fills), and everything seen is kept
/// for the failure report.
struct Proc {
    name: String,
    child: Child,
    lines: mpsc::Receiver<(Source, String)>,
    seen: Vec<(Source, String)>,
}

fn read_lines(
    source: Source,
    pipe: impl std::io::Read + Send + 'static,
    tx: mpsc::Sender<(Source, String)>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send((source, line)).is_err() {
                break;
            }
        }
    });
}

impl Proc {
    fn spawn(name: &str, args: &[&str]) -> Proc {
        let mut child = Command::new(example_binary())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn relay");
        let (tx, lines) = mpsc::channel();
        read_lines(Source::Out, child.stdout.take().unwrap(), tx.clone());
        read_lines(Source::Err, child.stderr.take().unwrap(), tx);
        Proc {
            name: name.to_string(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn report(&self) -> String {
        let mut out = format!("--- {} output\n", self.name);
        for (source, line) in &self.seen {
            let tag = if *source == Source::Out { "out" } else { "err" };
            out.push_str(&format!("{tag}| {line}\n"));
        }
        out
    }

    /// Waits for a line from `source` containing `needle`; returns it.
    fn wait_for(&mut self, source: Source, needle: &str) -> String {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.0 == source && line.1.contains(needle) {
                        return line.1;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = self.child.kill();
        panic!(
            "{}: no {source:?} line containing {needle:?}\n{}",
            self.name,
            self.report()
        );
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Waits for the exit (killing the process after the deadline) and
    /// for the rest of its output.
    fn finish(mut self) -> Finished {
        let start = Instant::now();
        let mut hung = false;
        while self.child.try_wait().unwrap().is_none() {
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                hung = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = self.child.wait().unwrap();
        // The reader threads end when the pipes close.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(line);
        }
        let report = self.report();
        assert!(!hung, "{} hung\n{report}", self.name);
        Finished {
            status,
            seen: std::mem::take(&mut self.seen),
            report,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A failed assertion must not leave processes behind.
        let _ = self.child.kill();
    }
}

struct Finished {
    status: ExitStatus,
    seen: Vec<(Source, String)>,
    report: String,
}

impl Finished {
    fn has(&self, source: Source, needle: &str) -> bool {
        self.seen
            .iter()
            .any(|(s, line)| *s == source && line.contains(needle))
    }
}

struct Relay {
    _dir: tempfile::TempDir,
    proc: Proc,
    addr: String,
    key: String,
}

/// Starts `relay serve` on a free port with a fresh key and waits for it to
/// listen.
fn start_relay(extra: &[&str]) -> Relay {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("relay.key");
    let key = write_new_identity(&key_path, &mut akex::crypto::OsRng).unwrap();
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--identity",
        key_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut proc = Proc::spawn("relay", &args);
    let line = proc.wait_for(Source::Err, "listening on ");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address after `listening on`")
        .to_string();
    Relay {
        _dir: dir,
        proc,
        addr,
        key: encode_public_key(key.public()),
    }
}

impl Relay {
    /// Starts a client named `name` (pinning the relay's key); does not
    /// wait for its registration.
    fn client(&self, name: &str) -> Proc {
        Proc::spawn(
            name,
            &[
                "client",
                "--connect",
                &self.addr,
                "--peer-key",
                &self.key,
                "--name",
                name,
            ],
        )
    }

    /// A client that has been welcomed.
    fn joined(&self, name: &str) -> Proc {
        let mut client = self.client(name);
        client.wait_for(Source::Out, &format!("OK welcome {name}"));
        client
    }

    /// Starts `load`; with `hold` its sessions stay open until the relay
    /// closes them.
    fn load(&self, clients: usize, messages: usize, hold: bool) -> Proc {
        let (clients, messages) = (clients.to_string(), messages.to_string());
        let mut args = vec![
            "load",
            "--connect",
            &self.addr,
            "--peer-key",
            &self.key,
            "--clients",
            &clients,
            "--messages",
            &messages,
            "--timeout",
            "100",
        ];
        if hold {
            args.push("--hold");
        }
        Proc::spawn("load", &args)
    }
}

/// A client that saw the relay's authenticated close and left cleanly.
fn assert_closed_by_relay(client: Proc) {
    let done = client.finish();
    assert!(done.status.success(), "{}", done.report);
    assert!(
        done.has(Source::Err, "authenticated close from the relay"),
        "{}",
        done.report
    );
}

#[test]
fn forwards_between_named_clients_and_closes_on_quit() {
    let mut relay = start_relay(&["--max-message", "64"]);
    let mut alice = relay.joined("alice");
    let mut bob = relay.joined("bob");

    bob.send("TO alice hello from bob");
    alice.wait_for(Source::Out, "FROM bob hello from bob");
    alice.send("TO bob hi bob, alice here");
    bob.wait_for(Source::Out, "FROM alice hi bob, alice here");

    bob.send("TO nobody are you there");
    bob.wait_for(Source::Out, "ERR no such peer: nobody");
    bob.send("SHOUT hello");
    bob.wait_for(Source::Out, "ERR unknown command");
    bob.send(&format!("TO alice {}", "x".repeat(100)));
    bob.wait_for(Source::Out, "ERR message too large (109 > 64 bytes)");

    // A name is held by one session at a time.
    let impostor = relay.client("alice").finish();
    assert!(!impostor.status.success(), "{}", impostor.report);
    assert!(
        impostor.has(Source::Out, "ERR the name alice is taken"),
        "{}",
        impostor.report
    );
    // Alice still gets her messages.
    bob.send("TO alice still there?");
    alice.wait_for(Source::Out, "FROM bob still there?");

    relay.proc.send("quit");
    assert_closed_by_relay(alice);
    assert_closed_by_relay(bob);
    let done = relay.proc.finish();
    assert!(done.status.success(), "{}", done.report);
    assert!(
        done.has(
            Source::Out,
            "relay: shut down: served 2 sessions, forwarded 3 messages, dropped 0 slow clients"
        ),
        "{}",
        done.report
    );
    assert!(done.has(Source::Err, "quit on stdin"), "{}", done.report);
}

/// A few hundred sessions at once, closed by the clients; then a few
/// hundred more held open, and Ctrl-C (SIGINT) on the relay closes every
/// one of them with an authenticated close.
#[test]
fn load_then_ctrl_c() {
    let mut relay = start_relay(&[]);
    let carol = relay.joined("carol");

    let load = relay.load(200, 5, false).finish();
    assert!(load.status.success(), "{}", load.report);
    assert!(
        load.has(
            Source::Out,
            "load: 200 clients, 200 sessions, 1000 messages delivered, 200 authenticated closes, 0 failures"
        ),
        "{}",
        load.report
    );

    let mut held = relay.load(200, 1, true);
    held.wait_for(Source::Err, "load: holding 200 sessions open");
    let pid = relay.proc.child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success(), "kill -INT {pid}");
    relay.proc.wait_for(Source::Err, "Ctrl-C: shutting down");
    assert_closed_by_relay(carol);
    let held = held.finish();
    assert!(held.status.success(), "{}", held.report);
    assert!(
        held.has(
            Source::Out,
            "load: 200 clients, 200 sessions, 200 messages delivered, 200 authenticated closes, 0 failures"
        ),
        "{}",
        held.report
    );
    let done = relay.proc.finish();
    assert!(done.status.success(), "{}", done.report);
    assert!(
        done.has(
            Source::Out,
            "relay: shut down: served 401 sessions, forwarded 1200 messages, dropped 0 slow clients, rejected 0 connections, 0 failed handshakes"
        ),
        "{}",
        done.report
    );
}

#[test]
fn connection_limit_refuses_extra_clients() {
    let mut relay = start_relay(&["--max-clients", "1"]);
    let alice = relay.joined("alice");
    let bob = relay.client("bob").finish();
    assert!(!bob.status.success(), "{}", bob.report);
    assert!(bob.has(Source::Err, "relay: error:"), "{}", bob.report);
    relay
        .proc
        .wait_for(Source::Err, "rejected: 1 connections already open");

    relay.proc.send("quit");
    assert_closed_by_relay(alice);
    let done = relay.proc.finish();
    assert!(done.status.success(), "{}", done.report);
    assert!(
        done.has(Source::Out, "served 1 sessions")
            && done.has(Source::Out, "rejected 1 connections"),
        "{}",
        done.report
    );
}

/// A client that stops reading fills its bounded queue and is dropped; the
/// sender is told, and the relay's memory does not grow with the backlog.
#[test]
fn slow_consumer_is_dropped() {
    let mut relay = start_relay(&["--queue", "4"]);

    // The sleeper's stdout is never read after its welcome: once the pipe
    // is full it blocks on printing and stops reading its session.
    let mut sleeper = Command::new(example_binary())
        .args([
            "client",
            "--connect",
            &relay.addr,
            "--peer-key",
            &relay.key,
            "--name",
            "sleeper",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sleeper");
    let mut sleeper_out: BufReader<ChildStdout> = BufReader::new(sleeper.stdout.take().unwrap());
    let mut welcome = String::new();
    sleeper_out.read_line(&mut welcome).unwrap();
    assert!(welcome.starts_with("OK welcome sleeper"), "{welcome:?}");

    let mut flood = relay.joined("flood");
    // Far more than the socket buffers between relay and sleeper can hold.
    let mut stdin = flood.child.stdin.take().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let line = format!("TO sleeper {}\n", "z".repeat(4000));
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) || stdin.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
            // Dropping stdin: the flooder leaves with an authenticated close.
        })
    };
    flood.wait_for(
        Source::Out,
        "ERR sleeper was not keeping up and was disconnected",
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    relay
        .proc
        .wait_for(Source::Err, "sleeper left (dropped: too slow)");
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    relay.proc.send("quit");
    let flood = flood.finish();
    assert!(flood.status.success(), "{}", flood.report);
    let done = relay.proc.finish();
    assert!(done.status.success(), "{}", done.report);
    assert!(
        done.has(Source::Out, "dropped 1 slow clients"),
        "{}",
        done.report
    );
    drop(sleeper_out);
}
