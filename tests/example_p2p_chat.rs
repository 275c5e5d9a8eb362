//! Runs `examples/p2p_chat.rs` as two processes (a listener on port 0 and a
//! dialer), pipes one line into each side's stdin and checks that each side
//! printed the other's line; and checks that a wrong pinned key is refused.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use akex::keys::{encode_public_key, write_new_identity};
use support::{describe, finish, listening_addr, DEADLINE};

fn spawn(args: &[&str]) -> Child {
    support::spawn_example("p2p_chat", args)
}

struct Keys {
    _dir: tempfile::TempDir,
    a: PathBuf,
    a_pub: String,
    b: PathBuf,
    b_pub: String,
    other_pub: String,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = akex::crypto::OsRng;
    let a = dir.path().join("a.key");
    let b = dir.path().join("b.key");
    let a_pub = encode_public_key(write_new_identity(&a, &mut rng).unwrap().public());
    let b_pub = encode_public_key(write_new_identity(&b, &mut rng).unwrap().public());
    let other = write_new_identity(&dir.path().join("other.key"), &mut rng).unwrap();
    Keys {
        other_pub: encode_public_key(other.public()),
        _dir: dir,
        a,
        a_pub,
        b,
        b_pub,
    }
}

fn send_and_close(child: &mut Child, text: &str) {
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    // Dropping stdin is end of input: that side stops sending.
}

fn chat_both_ways(pattern: &str) {
    let k = keys();
    let a = k.a.to_str().unwrap();
    let b = k.b.to_str().unwrap();
    chat(
        pattern,
        &["--identity", a, "--peer-key", &k.b_pub],
        &["--identity", b, "--peer-key", &k.a_pub],
        (&k.a_pub, &k.b_pub),
        &[],
    );
}

/// Runs a chat: the listener with `a_args`, the dialer with `b_args`;
/// `keys` are (a's public key, b's public key); `env` is set for both.
fn chat(pattern: &str, a_args: &[&str], b_args: &[&str], keys: (&str, &str), env: &[(&str, &str)]) {
    let (a_pub, b_pub) = keys;
    let mut listener = support::example_command("p2p_chat")
        .args(["listen", "--addr", "127.0.0.1:0", "--pattern", pattern])
        .args(a_args)
        .envs(env.iter().copied())
        .spawn()
        .expect("spawn the listener");
    let (addr, listener_err) = listening_addr(&mut listener);
    let mut dialer = support::example_command("p2p_chat")
        .args(["dial", "--addr", &addr, "--pattern", pattern])
        .args(b_args)
        .envs(env.iter().copied())
        .spawn()
        .expect("spawn the dialer");
    send_and_close(&mut dialer, "hello from the dialer\nsecond line from b\n");
    send_and_close(&mut listener, "hello from the listener\n");

    let (dialer_out, dialer_hung) = finish(dialer, None);
    let (listener_out, listener_hung) = finish(listener, Some(listener_err));
    let report = format!(
        "{}\n{}",
        describe("listener", &listener_out),
        describe("dialer", &dialer_out)
    );
    assert!(!dialer_hung && !listener_hung, "a side hung\n{report}");
    assert!(
        listener_out.status.success() && dialer_out.status.success(),
        "{report}"
    );

    let listener_stdout = String::from_utf8_lossy(&listener_out.stdout);
    let dialer_stdout = String::from_utf8_lossy(&dialer_out.stdout);
    // Each line is printed with the first 8 characters of the sender's key.
    let from_b = format!("<{}>", &b_pub[..8]);
    let from_a = format!("<{}>", &a_pub[..8]);
    assert!(
        listener_stdout.contains(&format!("{from_b} hello from the dialer\n"))
            && listener_stdout.contains(&format!("{from_b} second line from b\n")),
        "{report}"
    );
    assert!(
        dialer_stdout.contains(&format!("{from_a} hello from the listener\n")),
        "{report}"
    );
    // Nobody sees their own lines echoed.
    assert!(
        !listener_stdout.contains("hello from the listener"),
        "{report}"
    );
    assert!(!dialer_stdout.contains("hello from the dialer"), "{report}");
    // Both report the peer key they pinned.
    assert!(
        String::from_utf8_lossy(&listener_out.stderr).contains(b_pub),
        "{report}"
    );
    assert!(
        String::from_utf8_lossy(&dialer_out.stderr).contains(a_pub),
        "{report}"
    );
}

#[test]
fn chat_ik() {
    chat_both_ways("IK");
}

#[test]
fn chat_xx() {
    chat_both_ways("XX");
}

const PASS: &str = "p2p chat test passphrase";

/// `akex keys` with a fast scrypt setting and the test passphrase.
fn akex_keys(store: &Path, args: &[&str]) -> String {
    let out = Command::new(support::akex_binary())
        .args(["keys", "--store", store.to_str().unwrap()])
        .args(args)
        .env("AKEX_PASSPHRASE", PASS)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .output()
        .expect("run akex keys");
    assert!(out.status.success(), "akex keys {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Identities from two key stores (encrypted), each side's peer key from
/// a pin in its own trust store.
#[test]
fn chat_with_key_store_identities_and_pins() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let mut public = Vec::new();
    for (store, other, other_name) in [(&alice, &bob, "alice"), (&bob, &alice, "bob")] {
        akex_keys(store, &["generate", "--name", "me"]);
        let record = akex_keys(store, &["show", "--name", "me", "--json"]);
        let v: serde_json::Value = serde_json::from_str(record.trim()).unwrap();
        public.push(v["public"].as_str().unwrap().to_string());
        let file = dir.path().join(format!("{other_name}.json"));
        std::fs::write(&file, record).unwrap();
        akex_keys(
            other,
            &[
                "trust",
                "--name",
                other_name,
                "--from",
                file.to_str().unwrap(),
            ],
        );
    }
    let (alice_dir, bob_dir) = (alice.to_str().unwrap(), bob.to_str().unwrap());
    chat(
        "IK",
        &["--store", alice_dir, "--key", "me", "--peer", "bob"],
        &["--store", bob_dir, "--key", "me", "--peer", "alice"],
        (&public[0], &public[1]),
        &[("AKEX_PASSPHRASE", PASS)],
    );
}

/// A dialer pinning a key the listener does not hold must fail; the listener
/// reports the failed handshake and keeps listening.
#[test]
fn wrong_peer_key_is_refused() {
    for pattern in ["IK", "XX"] {
        let k = keys();
        let a = k.a.to_str().unwrap();
        let b = k.b.to_str().unwrap();
        let mut listener = spawn(&[
            "listen",
            "--addr",
            "127.0.0.1:0",
            "--identity",
            a,
            "--pattern",
            pattern,
        ]);
        let (addr, listener_err) = listening_addr(&mut listener);
        let mut dialer = spawn(&[
            "dial",
            "--addr",
            &addr,
            "--identity",
            b,
            "--peer-key",
            &k.other_pub,
            "--pattern",
            pattern,
        ]);
        send_and_close(&mut dialer, "must never arrive\n");
        let (dialer_out, dialer_hung) = finish(dialer, None);
        let dialer_report = describe("dialer", &dialer_out);
        assert!(!dialer_hung, "{pattern}: dialer hung\n{dialer_report}");
        assert!(!dialer_out.status.success(), "{pattern}: {dialer_report}");
        assert!(dialer_out.stdout.is_empty(), "{pattern}: {dialer_report}");

        // The listener logs the failure and is still waiting: stop it.
        let start = Instant::now();
        let mut logged = Vec::new();
        while start.elapsed() < DEADLINE {
            match listener_err.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("handshake failed") => {
                    logged.push(line);
                    break;
                }
                Ok(line) => logged.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        assert!(
            listener.try_wait().unwrap().is_none(),
            "{pattern}: listener exited after a failed handshake: {logged:#?}"
        );
        listener.kill().unwrap();
        let (listener_out, _) = finish(listener, Some(listener_err));
        assert!(
            logged.iter().any(|l| l.contains("handshake failed")),
            "{pattern}: listener did not report the failed handshake: {logged:#?}\n{}",
            describe("listener", &listener_out)
        );
        assert!(
            listener_out.stdout.is_empty(),
            "{pattern}: {}",
            describe("listener", &listener_out)
        );
    }
}
