//! Shared by the `akex keys` command-line tests (tests/keys_cli_*.rs):
//! running the `akex` binary on a temporary store with a fixed passphrase,
//! `serve` over loopback, pinning a key in a peer's trust store, and the
//! grep for leaked private keys. The test crate must also declare `mod
//! support;` (tests/support/mod.rs), which this module uses.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::{self, start_listener, Listener};

/// The `akex` command, built once for this test binary.
pub static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
pub const PASS: &str = "correct horse battery staple";
pub const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

pub fn cmd() -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("AKEX_PASSPHRASE", PASS)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    c
}

/// Every output seen, for the secret grep.
pub fn run(log: &mut String, args: &[&str]) -> Output {
    let out = cmd().args(args).output().expect("run akex");
    log.push_str(&String::from_utf8_lossy(&out.stdout));
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    out
}

pub fn ok(log: &mut String, args: &[&str]) -> serde_json::Value {
    let out = run(log, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap_or("null")).unwrap_or(serde_json::Value::Null)
}

pub fn fail(log: &mut String, args: &[&str]) -> String {
    let out = run(log, args);
    assert!(!out.status.success(), "{args:?} should fail: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn serve(args: &[&str]) -> Listener {
    let mut c = cmd();
    c.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--timeout",
        "5",
    ]);
    if !args.contains(&"--protocol") {
        c.args(["--protocol", XX]);
    }
    start_listener(c.args(args))
}

pub fn finish(server: Listener) -> (bool, String) {
    server.finish()
}

/// `serve` without `--once`, for tests that stop it themselves.
pub fn spawn_serve(args: &[&str]) -> Listener {
    spawn_serve_with(XX, args)
}

pub fn spawn_serve_with(protocol: &str, args: &[&str]) -> Listener {
    let mut c = cmd();
    c.args(["serve", "--listen", "127.0.0.1:0", "--timeout", "5"]);
    c.args(["--protocol", protocol]);
    start_listener(c.args(args))
}

pub fn stop(server: Listener) -> String {
    server.stop()
}

/// Generates `name` in `store`, pins it as `as_name` in `peer_store`.
pub fn generate_and_pin(
    log: &mut String,
    store: &Path,
    name: &str,
    peer_store: &Path,
    as_name: &str,
) {
    ok(
        log,
        &[
            "keys",
            "--store",
            s(store),
            "generate",
            "--name",
            name,
            "--json",
        ],
    );
    pin_key(log, store, name, peer_store, as_name);
}

/// Pins `store`'s key `name` as `as_name` in `peer_store` (`keys show
/// --json`, then `keys trust --from`).
pub fn pin_key(log: &mut String, store: &Path, name: &str, peer_store: &Path, as_name: &str) {
    let show = run(
        log,
        &[
            "keys",
            "--store",
            s(store),
            "show",
            "--name",
            name,
            "--json",
        ],
    );
    assert!(show.status.success());
    let file = store.join(format!("{name}.pub.json"));
    std::fs::write(&file, &show.stdout).unwrap();
    ok(
        log,
        &[
            "keys",
            "--store",
            s(peer_store),
            "trust",
            "--name",
            as_name,
            "--from",
            s(&file),
            "--json",
        ],
    );
}

/// Extracts the private keys (X25519 scalars, Ed25519 seeds, ML-KEM seeds)
/// of every plaintext PKCS#8 key file.
pub fn plaintext_secrets(stores: &[&Path]) -> Vec<Vec<u8>> {
    use base64::Engine;
    let mut secrets = Vec::new();
    for store in stores {
        let Ok(dir) = std::fs::read_dir(store.join("keys")) else {
            continue;
        };
        for entry in dir.filter_map(|e| e.ok()) {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for block in text.split("-----BEGIN PRIVATE KEY-----\n").skip(1) {
                let body: String = block
                    .lines()
                    .take_while(|l| !l.starts_with("-----"))
                    .collect();
                let der = base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap();
                let n = der.len();
                // ML-KEM: [0] IMPLICIT OCTET STRING of the 64-byte seed;
                // X25519/Ed25519: an OCTET STRING of 32 bytes.
                if n >= 66 && der[n - 66..n - 64] == [0x80, 0x40] {
                    secrets.push(der[n - 64..].to_vec());
                } else {
                    assert_eq!(der[n - 34..n - 32], [0x04, 0x20]);
                    secrets.push(der[n - 32..].to_vec());
                }
            }
        }
    }
    secrets
}

/// Fails if any private key byte string appears, in hex or base64, in the
/// outputs or in the store's non-key files.
pub fn secret_grep(stores: &[&Path], log: &str) {
    use base64::Engine;
    let mut haystack = log.to_string();
    for store in stores {
        for name in ["store.json", "trust.json", "audit.jsonl", "audit.head"] {
            haystack.push_str(&std::fs::read_to_string(store.join(name)).unwrap_or_default());
        }
    }
    for secret in plaintext_secrets(stores) {
        for needle in [
            hex::encode(&secret),
            hex::encode_upper(&secret),
            base64::engine::general_purpose::STANDARD.encode(&secret),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&secret),
        ] {
            assert!(
                !haystack.contains(&needle),
                "a private key leaked: {needle}"
            );
        }
    }
    assert!(!haystack.contains(PASS), "the passphrase leaked");
}
