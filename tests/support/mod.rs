//! Helpers shared by the integration tests that run child processes (the
//! examples and the `akex` binary): building an example, spawning it,
//! waiting for its "listening on ADDR" line, and collecting its output
//! with a deadline.
//!
//! Each test crate uses only some of these, hence the `dead_code` allow.
#![allow(dead_code)]

pub mod udp_relay;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a child may take to print its address or to exit.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Builds a target once per test binary (with the test's own profile) and
/// returns its path as cargo reports it, so `CARGO_TARGET_DIR` and
/// `--release` are honoured. `args` selects the target (`--example NAME`,
/// or `-p akex-cli --bin akex`); `name` is the artifact's target name.
fn build_once(name: &str, args: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    // Held across the build: two tests asking at once build it once.
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let key = args.join(" ");
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "build",
        "--quiet",
        "--message-format=json-render-diagnostics",
    ])
    .args(args)
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
    assert!(out.status.success(), "cargo build {key} failed");
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == name)
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no {name} executable"));
    built.insert(key, path.clone());
    path
}

/// Builds example `name` once per test binary and returns its path.
pub fn example_binary(name: &str) -> PathBuf {
    build_once(name, &["--example", name])
}

/// The `akex` command (package `akex-cli`), built once per test binary with
/// the same optional features as this test (`rsa-kt`, `pkcs11`).
pub fn akex_binary() -> PathBuf {
    let mut args = vec!["-p", "akex-cli", "--bin", "akex"];
    for (on, feature) in [
        (cfg!(feature = "rsa-kt"), "rsa-kt"),
        (cfg!(feature = "ffdh"), "ffdh"),
        (cfg!(feature = "openssl"), "openssl"),
    ] {
        if on {
            args.extend(["--features", feature]);
        }
    }
    if cfg!(feature = "pkcs11") {
        args.extend(["--features", "pkcs11"]);
    }
    build_once("akex", &args)
}

/// A command for example `name` with all three standard streams piped.
pub fn example_command(name: &str) -> Command {
    let mut cmd = Command::new(example_binary(name));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Spawns example `name` with all three standard streams piped.
pub fn spawn_example(name: &str, args: &[&str]) -> Child {
    example_command(name)
        .args(args)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
}

/// Reads the child's stderr until "listening on ADDR"; returns the address
/// and a receiver for the rest of stderr (so the pipe never fills).
pub fn listening_addr(child: &mut Child) -> (String, mpsc::Receiver<String>) {
    let stderr = child.stderr.take().expect("stderr is piped");
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
                if let Some(addr) = line
                    .split("listening on ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                {
                    return (addr.to_string(), rx);
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

/// Waits for `child` to exit (killing it after [`DEADLINE`]) and collects
/// its output; `stderr_lines` replaces the child's stderr if it was taken.
/// Returns the output and whether the deadline killed it.
pub fn finish(mut child: Child, stderr_lines: Option<mpsc::Receiver<String>>) -> (Output, bool) {
    let start = Instant::now();
    let mut timed_out = false;
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout).expect("read stdout");
    }
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
            if let Some(mut err) = child.stderr.take() {
                err.read_to_end(&mut stderr).expect("read stderr");
            }
        }
    }
    let status = child.wait().expect("wait");
    (
        Output {
            status,
            stdout,
            stderr,
        },
        timed_out,
    )
}

/// A child's exit status and both streams, for assertion messages.
pub fn describe(name: &str, out: &Output) -> String {
    format!(
        "{name}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A child (usually `akex serve`) that printed "listening on ADDR" as its
/// first stderr line; a thread collects the rest of its stderr.
pub struct Listener {
    /// The process.
    pub child: Child,
    /// The address from its first line.
    pub addr: String,
    log: std::thread::JoinHandle<String>,
}

/// Spawns `cmd` (stdout discarded, stderr piped) and waits for its
/// "listening on ADDR" line.
pub fn start_listener(cmd: &mut Command) -> Listener {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the listener");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("read stderr");
    let Some(addr) = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
    else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no address in {line:?}");
    };
    let log = std::thread::spawn(move || {
        let mut all = line;
        for l in stderr.lines().map_while(Result::ok) {
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    Listener { child, addr, log }
}

impl Listener {
    /// Waits up to 15 s for the process to exit by itself (panicking if it
    /// does not) and returns (success, its whole stderr).
    pub fn finish(mut self) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{} did not exit", self.addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status.success(), self.log.join().expect("log thread"))
    }

    /// Kills the process and returns its whole stderr.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.join().expect("log thread")
    }
}
