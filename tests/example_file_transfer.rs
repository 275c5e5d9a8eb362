//! Runs `examples/file_transfer.rs` as two processes (a receiver on port 0
//! and a sender): a 3 MiB random file arrives intact with matching SHA-256
//! on both sides, and a sender that drops the connection mid-transfer
//! (`--truncate-after`) makes the receiver fail instead of reporting success.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use akex::keys::{encode_public_key, write_new_identity};
use sha2::{Digest, Sha256};

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
            "file_transfer",
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
            "cargo build --example file_transfer failed"
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| {
                msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "file_transfer"
            })
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no file_transfer executable")
    })
}

fn spawn(args: &[&str]) -> Child {
    Command::new(example_binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn file_transfer")
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

struct Setup {
    dir: tempfile::TempDir,
    recv_key: PathBuf,
    recv_pub: String,
    send_key: PathBuf,
    send_pub: String,
    file: PathBuf,
    digest: String,
}

fn setup(size: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = akex::crypto::OsRng;
    let recv_key = dir.path().join("recv.key");
    let send_key = dir.path().join("send.key");
    let recv_pub = encode_public_key(write_new_identity(&recv_key, &mut rng).unwrap().public());
    let send_pub = encode_public_key(write_new_identity(&send_key, &mut rng).unwrap().public());
    let mut data = vec![0u8; size];
    getrandom::getrandom(&mut data).unwrap();
    let file = dir.path().join("input.bin");
    std::fs::write(&file, &data).unwrap();
    let digest = hex::encode(Sha256::digest(&data));
    Setup {
        dir,
        recv_key,
        recv_pub,
        send_key,
        send_pub,
        file,
        digest,
    }
}

/// Starts a receiver and a sender; returns (receiver, sender) outputs.
fn transfer(s: &Setup, protocol: &str, extra_send: &[&str]) -> (Output, Output, PathBuf) {
    let output = s.dir.path().join("output.bin");
    let mut receiver = spawn(&[
        "recv",
        "--addr",
        "127.0.0.1:0",
        "--identity",
        s.recv_key.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--peer-key",
        &s.send_pub,
        "--protocol",
        protocol,
        "--quiet",
    ]);
    let (addr, receiver_err) = listening_addr(&mut receiver);
    let mut args = vec![
        "send",
        "--addr",
        &addr,
        "--identity",
        s.send_key.to_str().unwrap(),
        "--peer-key",
        &s.recv_pub,
        "--file",
        s.file.to_str().unwrap(),
        "--protocol",
        protocol,
        "--quiet",
    ];
    args.extend_from_slice(extra_send);
    let sender = spawn(&args);
    let (sender_out, sender_hung) = finish(sender, None);
    let (receiver_out, receiver_hung) = finish(receiver, Some(receiver_err));
    let report = format!(
        "{}\n{}",
        describe("receiver", &receiver_out),
        describe("sender", &sender_out)
    );
    assert!(!sender_hung && !receiver_hung, "a side hung\n{report}");
    (receiver_out, sender_out, output)
}

fn transfers_intact(protocol: &str) {
    let s = setup(3 * 1024 * 1024);
    let (receiver, sender, output) = transfer(&s, protocol, &[]);
    let report = format!(
        "{}\n{}",
        describe("receiver", &receiver),
        describe("sender", &sender)
    );
    assert!(
        receiver.status.success() && sender.status.success(),
        "{report}"
    );
    let line = format!("sha256 {}\n", s.digest);
    assert_eq!(String::from_utf8_lossy(&receiver.stdout), line, "{report}");
    assert_eq!(String::from_utf8_lossy(&sender.stdout), line, "{report}");
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(&s.file).unwrap()
    );
}

#[test]
fn three_mib_noise_xx() {
    transfers_intact("Noise_XX_25519_ChaChaPoly_BLAKE2s");
}

#[test]
fn three_mib_noise_ik() {
    transfers_intact("Noise_IK_25519_ChaChaPoly_BLAKE2s");
}

#[test]
fn three_mib_hybrid_xx() {
    transfers_intact("akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256");
}

/// A sender that drops the connection mid-transfer: the receiver must exit
/// non-zero with an error, print no hash and leave no output file behind.
#[test]
fn truncated_transfer_is_an_error() {
    for protocol in [
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256",
    ] {
        let s = setup(3 * 1024 * 1024);
        let (receiver, sender, output) = transfer(&s, protocol, &["--truncate-after", "1000000"]);
        let report = format!(
            "{protocol}\n{}\n{}",
            describe("receiver", &receiver),
            describe("sender", &sender)
        );
        assert!(!receiver.status.success(), "{report}");
        assert!(!sender.status.success(), "{report}");
        assert!(receiver.stdout.is_empty(), "{report}");
        let stderr = String::from_utf8_lossy(&receiver.stderr);
        assert!(stderr.contains("file_transfer: error:"), "{report}");
        assert!(stderr.contains("of 3145728 bytes"), "{report}");
        assert!(!output.exists(), "{report}");
    }
}
