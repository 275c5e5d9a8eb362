//! `akex` in akex mode across two processes: SIGMA with Ed25519 key files,
//! a multi-protocol allow-list, refusals, and `akex protocols`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const AKEX: &str = env!("CARGO_BIN_EXE_akex");
const SIGMA: &str = "akex-sigma-x25519-ed25519-chachapoly-sha256";
const SIGMA_GCM: &str = "akex-sigma-x25519-ed25519-aesgcm-sha256";

fn akex(args: &[&str]) -> Output {
    Command::new(AKEX).args(args).output().expect("run akex")
}

fn keygen(dir: &Path, name: &str, key_type: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = akex(&[
        "keygen",
        "--type",
        key_type,
        "--output",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(public.len(), 44, "base64 of 32 bytes");
    let again = akex(&[
        "pubkey",
        "--type",
        key_type,
        "--identity",
        path.to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8(again.stdout).unwrap().trim(), public);
    (path, public)
}

struct Server {
    child: Child,
    addr: String,
    log: std::thread::JoinHandle<String>,
}

fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(AKEX)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--once", "--timeout", "5"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn akex serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let log = std::thread::spawn(move || {
        let mut all = line;
        for l in stderr.lines().map_while(Result::ok) {
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    Server { child, addr, log }
}

fn finish(mut server: Server) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            server.child.kill().ok();
            panic!("akex serve did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.success(), server.log.join().unwrap())
}

fn connect(addr: &str, args: &[&str]) -> (bool, serde_json::Value) {
    let out = Command::new(AKEX)
        .args([
            "connect",
            "--addr",
            addr,
            "--messages",
            "3",
            "--size",
            "100",
            "--timeout",
            "5",
        ])
        .args(args)
        .output()
        .expect("run akex connect");
    let text = String::from_utf8(out.stdout).unwrap();
    let json = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text:?} {:?}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), json)
}

#[test]
fn sigma_between_two_processes_with_an_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let (server_key, server_pub) = keygen(dir.path(), "server.key", "ed25519");
    let (client_key, client_pub) = keygen(dir.path(), "client.key", "ed25519");
    for chosen in [SIGMA, SIGMA_GCM] {
        let allow = format!("{SIGMA},{SIGMA_GCM}");
        let server = serve(&[
            "--protocol",
            &allow,
            "--identity",
            server_key.to_str().unwrap(),
            "--remote-key",
            &client_pub,
        ]);
        let (ok, json) = connect(
            &server.addr,
            &[
                "--protocol",
                chosen,
                "--identity",
                client_key.to_str().unwrap(),
                "--remote-key",
                &server_pub,
            ],
        );
        assert!(ok, "{json}");
        assert_eq!(json["protocol"], chosen);
        assert_eq!(json["remote_key"], server_pub.as_str());
        let (ok, log) = finish(server);
        assert!(ok, "{log}");
        assert!(log.contains(&format!("protocol={chosen}")), "{log}");
        assert!(log.contains(&client_pub), "{log}");
    }
}

#[test]
fn protocol_outside_the_allow_list_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (server_key, _) = keygen(dir.path(), "server.key", "ed25519");
    let (client_key, _) = keygen(dir.path(), "client.key", "ed25519");
    let server = serve(&[
        "--protocol",
        SIGMA_GCM,
        "--identity",
        server_key.to_str().unwrap(),
    ]);
    let (ok, json) = connect(
        &server.addr,
        &[
            "--protocol",
            SIGMA,
            "--identity",
            client_key.to_str().unwrap(),
        ],
    );
    assert!(!ok, "{json}");
    let (ok, log) = finish(server);
    assert!(!ok);
    assert!(log.contains("is not allowed"), "{log}");
}

#[test]
fn wrong_pinned_key_fails_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let (server_key, _) = keygen(dir.path(), "server.key", "ed25519");
    let (client_key, client_pub) = keygen(dir.path(), "client.key", "ed25519");
    let server = serve(&[
        "--protocol",
        SIGMA,
        "--identity",
        server_key.to_str().unwrap(),
    ]);
    // The client pins its own key instead of the server's.
    let (ok, json) = connect(
        &server.addr,
        &[
            "--protocol",
            SIGMA,
            "--identity",
            client_key.to_str().unwrap(),
            "--remote-key",
            &client_pub,
        ],
    );
    assert!(!ok);
    assert_eq!(json["kind"], "peer_not_trusted", "{json}");
    let _ = finish(server);
}

#[test]
fn noise_names_cannot_be_mixed_into_an_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "server.key", "ed25519");
    let out = akex(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--protocol",
        &format!("{SIGMA},Noise_NN_25519_ChaChaPoly_BLAKE2s"),
        "--identity",
        key.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("can only be used alone"), "{err}");
    // SIGMA without an identity fails at start-up too.
    let out = akex(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--protocol",
        SIGMA,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("--identity"));
}

#[test]
fn noise_still_works_through_the_registry() {
    let server = serve(&["--protocol", "Noise_NN_25519_ChaChaPoly_BLAKE2s"]);
    let (ok, json) = connect(
        &server.addr,
        &["--protocol", "Noise_NN_25519_ChaChaPoly_BLAKE2s"],
    );
    assert!(ok, "{json}");
    assert!(finish(server).0);
}

#[test]
fn protocols_prints_the_table() {
    let out = akex(&["protocols"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        SIGMA,
        SIGMA_GCM,
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        "forward secrecy",
        "81/192/160",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[test]
fn default_keygen_is_unchanged() {
    // No --type: X25519, and `pubkey` without --type agrees.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let out = akex(&["keygen", "--output", path.to_str().unwrap()]);
    assert!(out.status.success());
    let public = String::from_utf8(out.stdout).unwrap();
    let again = akex(&["pubkey", "--identity", path.to_str().unwrap()]);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), public);
    let ed = akex(&[
        "pubkey",
        "--type",
        "ed25519",
        "--identity",
        path.to_str().unwrap(),
    ]);
    assert_ne!(String::from_utf8(ed.stdout).unwrap(), public);
}
