//! Shared by the `akex` command-line PKCS#11 tests (tests/pkcs11_cli*.rs):
//! running the `akex` binary against a SoftHSM2 installation (PIN in the
//! environment or on a file descriptor), generating keys in a token,
//! pinning them in a peer's trust store, and `serve`/`connect` arguments.
//! The test crate must also declare `mod support;` (tests/support/mod.rs)
//! and `#[path = "support/softhsm.rs"] mod softhsm;`, which this uses.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::softhsm::{SoftHsm, PIN};
use crate::support::{self, start_listener, Listener};

pub static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
pub const ED: &str = "akex-sigma-x25519-ed25519-aesgcm-sha256";
pub const P256: &str = "akex-sigma-p256-ecdsa-aesgcm-sha256";

/// The command with this installation; the PIN from the environment.
pub fn cmd(hsm: &SoftHsm) -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("SOFTHSM2_CONF", &hsm.conf)
        .env("AKEX_PKCS11_MODULE", &hsm.module)
        .env("AKEX_PKCS11_PIN", PIN)
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    c
}

/// The command with the PIN on file descriptor 3 only (`--pin-fd 3`).
pub fn cmd_pin_fd(hsm: &SoftHsm, args: &[&str]) -> Command {
    let pin_file = hsm.dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("exec \"$0\" \"$@\" --pin-fd 3 3<\"$PIN_FILE\"")
        .arg(&*AKEX)
        .args(args)
        .env("PIN_FILE", &pin_file)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env("AKEX_PKCS11_MODULE", &hsm.module)
        .env_remove("AKEX_PKCS11_PIN")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    c
}

pub fn run(log: &mut String, c: &mut Command) -> Output {
    let out = c.output().expect("run akex");
    log.push_str(&String::from_utf8_lossy(&out.stdout));
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    out
}

pub fn ok(log: &mut String, hsm: &SoftHsm, args: &[&str]) -> serde_json::Value {
    let out = run(log, cmd(hsm).args(args));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        support::describe("akex", &out)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap_or("null")).unwrap_or(serde_json::Value::Null)
}

/// Runs a command that must fail; returns its single stderr line.
pub fn fail_one_line(log: &mut String, c: &mut Command) -> String {
    let out = run(log, c);
    assert!(
        !out.status.success(),
        "should fail: {}",
        support::describe("akex", &out)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {err:?}");
    lines[0].to_string()
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Generates `name` of `key_type` in `token`, recorded in `store`.
pub fn generate(
    log: &mut String,
    hsm: &SoftHsm,
    store: &Path,
    name: &str,
    key_type: &str,
    token: &str,
) {
    let uri = format!("pkcs11:token={token};object={name}");
    let entry = ok(
        log,
        hsm,
        &[
            "keys",
            "--store",
            s(store),
            "--json",
            "generate",
            "--name",
            name,
            "--type",
            key_type,
            "--pkcs11",
            &uri,
        ],
    );
    assert_eq!(entry["type"], key_type);
    assert!(entry["pkcs11"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{uri};id=%")));
}

/// Pins `store`'s key `name` as `as_name` in `peer` (`show --json`, then
/// `trust --from`).
pub fn pin(log: &mut String, hsm: &SoftHsm, store: &Path, name: &str, peer: &Path, as_name: &str) {
    let show = run(
        log,
        cmd(hsm).args([
            "keys",
            "--store",
            s(store),
            "show",
            "--name",
            name,
            "--json",
        ]),
    );
    assert!(show.status.success());
    let file = store.join(format!("{name}.show.json"));
    std::fs::write(&file, &show.stdout).unwrap();
    ok(
        log,
        hsm,
        &[
            "keys",
            "--store",
            s(peer),
            "trust",
            "--name",
            as_name,
            "--from",
            s(&file),
        ],
    );
}

pub fn serve(hsm: &SoftHsm, store: &Path, protocol: &str, key: &str) -> Listener {
    start_listener(cmd(hsm).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--timeout",
        "10",
        "--protocol",
        protocol,
        "--store",
        s(store),
        "--key",
        key,
        "--trust",
        "pinned",
    ]))
}

pub fn connect_args<'a>(
    store: &'a Path,
    addr: &'a str,
    protocol: &'a str,
    key: &'a str,
) -> Vec<&'a str> {
    vec![
        "connect",
        "--addr",
        addr,
        "--protocol",
        protocol,
        "--messages",
        "2",
        "--timeout",
        "10",
        "--store",
        s(store),
        "--key",
        key,
        "--trust",
        "pinned",
        "--peer",
        "server",
    ]
}

pub fn public_of(log: &mut String, hsm: &SoftHsm, store: &Path, name: &str) -> String {
    let v = ok(
        log,
        hsm,
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
    v["public"].as_str().unwrap().to_string()
}
