//! The `akex` command across two processes: keys, serve/connect for each
//! required pattern, and clear one-line errors (never a panic or a hang).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::time::{Duration, Instant};
use support::{start_listener, Listener};

/// The `akex` command, built once for this test binary.
static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);

fn akex(args: &[&str]) -> Output {
    Command::new(&*AKEX).args(args).output().expect("run akex")
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = akex(&["keygen", "--output", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(public.len(), 44, "base64 of 32 bytes");
    (path, public)
}

/// A running `akex serve --once` and the address it bound.
fn serve(args: &[&str]) -> Listener {
    start_listener(
        Command::new(&*AKEX)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--once", "--timeout", "5"])
            .args(args),
    )
}

/// Waits for the server to exit (bounded) and returns (success, its log).
fn finish(server: Listener) -> (bool, String) {
    server.finish()
}

fn connect(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(&*AKEX)
        .arg("connect")
        .args(["--timeout", "5"])
        .args(args)
        .output()
        .expect("run akex connect");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout:?}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON line");
    (out.status.success(), json, stderr)
}

#[test]
fn keygen_pubkey_and_refusal_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (path, public) = keygen(dir.path(), "a.key");
    let out = akex(&["pubkey", "--identity", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), public);
    let before = std::fs::read(&path).unwrap();
    let out = akex(&["keygen", "--output", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let out = akex(&[
        "pubkey",
        "--identity",
        dir.path().join("nope").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
}

#[test]
fn serve_and_connect_complete_each_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let (server_key, server_pub) = keygen(dir.path(), "server.key");
    let (client_key, client_pub) = keygen(dir.path(), "client.key");
    let (sk, ck) = (server_key.to_str().unwrap(), client_key.to_str().unwrap());
    let psk = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("Noise_NN_25519_ChaChaPoly_BLAKE2s", vec![], vec![], None),
        (
            "Noise_XX_25519_ChaChaPoly_BLAKE2s",
            vec!["--identity", sk, "--remote-key", &client_pub],
            vec!["--identity", ck, "--remote-key", &server_pub],
            Some(&server_pub),
        ),
        (
            "Noise_IK_25519_AESGCM_SHA256",
            vec!["--identity", sk],
            vec!["--identity", ck, "--remote-key", &server_pub],
            Some(&server_pub),
        ),
        (
            "Noise_KK_25519_ChaChaPoly_SHA256",
            vec!["--identity", sk, "--remote-key", &client_pub],
            vec!["--identity", ck, "--remote-key", &server_pub],
            Some(&server_pub),
        ),
        (
            "Noise_XXpsk3_25519_AESGCM_BLAKE2b",
            vec!["--identity", sk, "--psk", psk],
            vec!["--identity", ck, "--psk", psk],
            Some(&server_pub),
        ),
    ];
    for (protocol, server_args, client_args, expect_remote) in cases {
        let mut s = vec!["--protocol", protocol];
        s.extend(&server_args);
        let server = serve(&s);
        let mut c = vec![
            "--protocol",
            protocol,
            "--addr",
            &server.addr,
            "--messages",
            "5",
            "--size",
            "3000",
        ];
        c.extend(&client_args);
        let (ok, json, stderr) = connect(&c);
        let (server_ok, log) = finish(server);
        assert!(ok, "{protocol}: {json} {stderr} / server: {log}");
        assert!(server_ok, "{protocol}: {log}");
        assert_eq!(json["ok"], true);
        assert_eq!(json["protocol"], protocol);
        assert_eq!(json["messages"], 5);
        let hash = json["handshake_hash"].as_str().unwrap();
        assert!(log.contains(&format!("handshake_hash={hash}")), "{log}");
        match expect_remote {
            Some(key) => assert_eq!(json["remote_key"], key),
            None => assert!(json["remote_key"].is_null()),
        }
        if server_args.contains(&"--remote-key") || protocol.contains("_XX") {
            assert!(log.contains(&format!("remote_key={client_pub}")), "{log}");
        }
    }
}

fn expect_failure(server_args: &[&str], client_args: &[&str], error_contains: &str) -> String {
    let server = serve(server_args);
    let mut c = vec!["--addr", server.addr.as_str()];
    c.extend(client_args);
    let started = Instant::now();
    let (ok, json, _) = connect(&c);
    let (server_ok, log) = finish(server);
    assert!(!ok, "{json}");
    assert_eq!(json["ok"], false);
    let err = json["error"].as_str().unwrap();
    assert!(
        err.contains(error_contains),
        "{err:?} lacks {error_contains:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(12), "took too long");
    assert!(!log.contains("panicked"), "{log}");
    let _ = server_ok;
    log
}

#[test]
fn clear_errors_for_bad_peers_and_configurations() {
    let dir = tempfile::tempdir().unwrap();
    let (server_key, _) = keygen(dir.path(), "server.key");
    let (client_key, _) = keygen(dir.path(), "client.key");
    let (_, other_pub) = keygen(dir.path(), "other.key");
    let (sk, ck) = (server_key.to_str().unwrap(), client_key.to_str().unwrap());
    let xx = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

    // Wrong pinned server key.
    let log = expect_failure(
        &["--protocol", xx, "--identity", sk],
        &[
            "--protocol",
            xx,
            "--identity",
            ck,
            "--remote-key",
            &other_pub,
        ],
        "does not match the expected key",
    );
    assert!(log.contains("failed"), "{log}");

    // Different protocols on each side.
    expect_failure(
        &["--protocol", xx, "--identity", sk],
        &[
            "--protocol",
            "Noise_XX_25519_AESGCM_BLAKE2s",
            "--identity",
            ck,
        ],
        "",
    );

    // Configuration errors never touch the network.
    for (args, needle) in [
        (
            vec![
                "--protocol",
                "Noise_ZZ_25519_ChaChaPoly_BLAKE2s",
                "--addr",
                "127.0.0.1:9",
            ],
            "unsupported protocol",
        ),
        (
            vec![
                "--protocol",
                "Noise_IK_25519_ChaChaPoly_BLAKE2s",
                "--addr",
                "127.0.0.1:9",
                "--identity",
                ck,
            ],
            "--remote-key",
        ),
        (
            vec!["--protocol", xx, "--addr", "127.0.0.1:9"],
            "--identity",
        ),
        (
            vec![
                "--protocol",
                xx,
                "--addr",
                "127.0.0.1:9",
                "--identity",
                ck,
                "--remote-key",
                "bm9wZQ==",
            ],
            "32 bytes",
        ),
        (
            vec![
                "--protocol",
                "Noise_NN_25519_ChaChaPoly_BLAKE2s",
                "--addr",
                "127.0.0.1:9",
                "--size",
                "70000",
            ],
            "--size",
        ),
    ] {
        let (ok, json, _) = connect(&args);
        assert!(!ok);
        let err = json["error"].as_str().unwrap();
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    }
}

#[test]
fn garbage_and_truncation_are_one_line_errors() {
    use std::io::{Read, Write};
    let nn = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
    for bytes in [&b"\x00\x05ab"[..], b"GET / HTTP/1.1\r\n\r\n", b"\x00\x01x"] {
        let server = serve(&["--protocol", nn]);
        let mut tcp = std::net::TcpStream::connect(&server.addr).unwrap();
        tcp.write_all(bytes).unwrap();
        tcp.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest);
        let (ok, log) = finish(server);
        assert!(!ok, "{log}");
        let failures: Vec<_> = log.lines().filter(|l| l.contains("failed:")).collect();
        assert_eq!(failures.len(), 1, "{log}");
        assert!(!log.contains("panicked"), "{log}");
    }

    // A client facing a server that accepts and says nothing times out.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let started = Instant::now();
    let out = Command::new(&*AKEX)
        .args([
            "connect",
            "--protocol",
            nn,
            "--addr",
            &addr,
            "--timeout",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("timed out"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}
