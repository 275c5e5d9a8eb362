//! Shared by the claims tests of `serve` and `connect` with a key store
//! (tests/keys_claims_serve.rs, tests/keys_claims_serve_peers.rs): the
//! `akex` binary with a fixed passphrase and a fast scrypt, `keys` on a
//! store, `serve` on a free port and a one-message `connect`. The test
//! crate must also declare `mod support;` (tests/support/mod.rs), which
//! this module uses.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::{self, start_listener, Listener};

/// The `akex` command, built once for this test binary.
pub static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
pub const PASS: &str = "serve claims passphrase";
pub const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

pub fn cmd() -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("AKEX_PASSPHRASE", PASS)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    c
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn keys(store: &Path, args: &[&str]) -> Output {
    cmd()
        .args(["keys", "--store", s(store)])
        .args(args)
        .output()
        .unwrap()
}

pub fn ok_keys(store: &Path, args: &[&str]) -> String {
    let out = keys(store, args);
    assert!(out.status.success(), "{}", support::describe("keys", &out));
    String::from_utf8(out.stdout).unwrap()
}

/// `serve` on a free port; `once` exits after one connection.
pub fn serve(protocol: &str, once: bool, args: &[&str]) -> Listener {
    let mut c = cmd();
    c.args(["serve", "--listen", "127.0.0.1:0", "--timeout", "5"])
        .args(["--protocol", protocol])
        .args(args);
    if once {
        c.arg("--once");
    }
    start_listener(&mut c)
}

pub fn connect(addr: &str, protocol: &str, args: &[&str]) -> Output {
    cmd()
        .args(["connect", "--addr", addr, "--protocol", protocol])
        .args(["--messages", "1"])
        .args(args)
        .output()
        .unwrap()
}

pub fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
