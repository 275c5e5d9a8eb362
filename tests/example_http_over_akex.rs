//! Runs `examples/http_over_akex.rs`: a server process allowing one client
//! key, and `get` clients: the allowed key gets 200 and a body naming it, an
//! authenticated but unlisted key gets 403, and a client pinning the wrong
//! server key fails the handshake.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use akex::keys::{encode_public_key, write_new_identity};

const DEADLINE: Duration = Duration::from_secs(30);

/// Builds the example once (with the test's own profile) and returns its path,
/// as cargo reports it, so `CARGO_TARGET_DIR` and `--release` are honoured.
fn example_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--quiet",
            "--example",
            "http_over_akex",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        // This test binary lives in <target>/<profile>/deps/.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir");
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "cargo build --example http_over_akex failed"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| {
                msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "http_over_akex"
            })
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no http_over_akex executable")
    })
}

fn spawn(args: &[&str]) -> Child {
    Command::new(example_binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn http_over_akex")
}

/// Reads the listener's stderr until "listening on ADDR"; returns the
/// address and a receiver for the rest of stderr (so the pipe never fills).
fn listening_addr(child: &mut Child) -> (String, mpsc::Receiver<String>) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap().to_string();
                    return (addr, rx);
                }
                seen.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    panic!("listener never printed its address; stderr: {seen:#?}");
}

/// Waits for `child` to exit (killing it after the deadline) and collects its
/// output; `stderr_lines` replaces the child's stderr if it was taken.
fn finish(mut child: Child, stderr_lines: Option<mpsc::Receiver<String>>) -> (Output, bool) {
    let start = Instant::now();
    let mut timed_out = false;
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let mut stderr = Vec::new();
    match stderr_lines {
        Some(rx) => {
            // The reader thread ends when the pipe closes.
            while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
                stderr.extend_from_slice(line.as_bytes());
                stderr.push(b'\n');
            }
        }
        None => {
            child
                .stderr
                .take()
                .unwrap()
                .read_to_end(&mut stderr)
                .unwrap();
        }
    }
    let status = child.wait().unwrap();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        timed_out,
    )
}

fn describe(name: &str, out: &Output) -> String {
    format!(
        "{name}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn key(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let public = encode_public_key(
        write_new_identity(&path, &mut akex::crypto::OsRng)
            .unwrap()
            .public(),
    );
    (path.to_str().unwrap().to_string(), public)
}

#[test]
fn authorizes_by_client_static_key() {
    let dir = tempfile::tempdir().unwrap();
    let (server, server_pub) = key(dir.path(), "server.key");
    let (allowed, allowed_pub) = key(dir.path(), "allowed.key");
    let (stranger, stranger_pub) = key(dir.path(), "stranger.key");
    let (_, wrong_server_pub) = key(dir.path(), "wrong.key");
    let mut srv = spawn(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--identity",
        &server,
        "--allow",
        &allowed_pub,
    ]);
    let (addr, srv_err) = listening_addr(&mut srv);
    let get = |identity: &str, server_key: &str| {
        let child = spawn(&[
            "get",
            "--addr",
            &addr,
            "--identity",
            identity,
            "--peer-key",
            server_key,
            "--path",
            "/hello",
        ]);
        let (out, hung) = finish(child, None);
        assert!(!hung, "{}", describe("get", &out));
        out
    };

    let ok = get(&allowed, &server_pub);
    let report = describe("allowed get", &ok);
    assert!(ok.status.success(), "{report}");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.starts_with("200 OK\n"), "{report}");
    assert!(
        stdout.contains(&format!("hello {allowed_pub}, you asked for GET /hello")),
        "{report}"
    );

    let denied = get(&stranger, &server_pub);
    let report = describe("stranger get", &denied);
    assert!(!denied.status.success(), "{report}");
    let stdout = String::from_utf8_lossy(&denied.stdout);
    assert!(stdout.starts_with("403 Forbidden\n"), "{report}");
    assert!(stdout.contains(&stranger_pub), "{report}");

    let wrong = get(&allowed, &wrong_server_pub);
    let report = describe("wrong server key", &wrong);
    assert!(!wrong.status.success(), "{report}");
    assert!(wrong.stdout.is_empty(), "{report}");

    srv.kill().unwrap();
    let (srv_out, _) = finish(srv, Some(srv_err));
    let log = String::from_utf8_lossy(&srv_out.stderr);
    assert!(
        log.contains(&format!("GET /hello from {allowed_pub} -> 200")),
        "{log}"
    );
    assert!(
        log.contains(&format!("GET /hello from {stranger_pub} -> 403")),
        "{log}"
    );
}
