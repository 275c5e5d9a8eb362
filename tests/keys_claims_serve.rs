//! Promises of docs/key-management.md about `serve` and `connect` with a
//! key store and trust files: a `--trust-store` file audited by the store,
//! provisioned with `keys trust`, named without a directory and reached by
//! revocations, and a forged pin in a fresh store. `serve --peer`, pinned
//! keys in advance, rotation announcements and a read-only store:
//! tests/keys_claims_serve_peers.rs.

mod keys_claims_serve_support;
mod support;

use std::path::Path;

use keys_claims_serve_support::*;
use support::start_listener;

#[test]
fn a_trust_store_file_is_written_and_checked_under_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, c1, c2) = (
        dir.path().join("srv"),
        dir.path().join("c1"),
        dir.path().join("c2"),
    );
    ok_keys(&srv, &["generate", "--name", "server"]);
    ok_keys(&c1, &["generate", "--name", "one"]);
    ok_keys(&c2, &["generate", "--name", "two"]);
    let file = dir.path().join("peers.json");
    // TOFU fills the file, logged in the store's audit log.
    let base = [
        "--store",
        s(&srv),
        "--key",
        "server",
        "--trust-store",
        s(&file),
    ];
    let server = serve(XX, true, &[&base[..], &["--trust", "tofu"]].concat());
    let out = connect(&server.addr, XX, &["--store", s(&c1), "--key", "one"]);
    assert!(out.status.success(), "{out:?}");
    assert!(server.finish().0);
    let audit = ok_keys(&srv, &["audit", "--json"]);
    let trusts: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "trust")
        .collect();
    assert_eq!(trusts.len(), 1, "{audit}");
    // Named by its absolute path (the store's own would be "trust.json").
    let named = trusts[0]["trust_file"].as_str().unwrap();
    assert!(
        Path::new(named).is_absolute() && named.ends_with("/peers.json"),
        "{named}"
    );
    // --trust-store alone means pinned: one is accepted, two is not.
    for (store, key, accepted) in [(&c2, "two", false), (&c1, "one", true)] {
        let server = serve(XX, true, &base);
        let out = connect(&server.addr, XX, &["--store", s(store), "--key", key]);
        let (served, log) = server.finish();
        assert_eq!(
            (out.status.success(), served),
            (accepted, accepted),
            "{log}"
        );
    }
    // A client with --trust-store must name the peer it expects.
    let out = connect(
        "127.0.0.1:9",
        XX,
        &["--store", s(&c1), "--trust-store", s(&file)],
    );
    assert!(text(&out).contains("--peer NAME"), "{out:?}");
    // The file edited by hand: serve refuses to start on it.
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("\"tofu\": true", "\"tofu\": false");
    std::fs::write(&file, edited).unwrap();
    let out = cmd()
        .args(["serve", "--listen", "127.0.0.1:0", "--protocol", XX])
        .args(base)
        .output()
        .unwrap();
    let err = text(&out);
    assert!(!out.status.success() && err.contains("peers.json"), "{err}");
}

/// Pins provisioned into a `--trust-store` file with `keys trust
/// --trust-store` are accepted by `serve`, `untrust` takes them out again,
/// and the same pins written by hand are refused.
#[test]
fn keys_trust_provisions_a_trust_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, cli) = (dir.path().join("srv"), dir.path().join("cli"));
    ok_keys(&srv, &["generate", "--name", "server"]);
    ok_keys(&cli, &["generate", "--name", "client"]);
    let shown = cli.join("client.show.json");
    std::fs::write(
        &shown,
        ok_keys(&cli, &["show", "--name", "client", "--json"]),
    )
    .unwrap();
    let file = dir.path().join("clients.json");
    let pin = ["trust", "--name", "client", "--from", s(&shown)];
    ok_keys(&srv, &[&pin[..], &["--trust-store", s(&file)]].concat());
    assert!(
        !srv.join("trust.json").exists()
            || !std::fs::read_to_string(srv.join("trust.json"))
                .unwrap()
                .contains("client")
    );
    let base = [
        "--store",
        s(&srv),
        "--key",
        "server",
        "--trust-store",
        s(&file),
    ];
    let accepted = |expect: bool| {
        let server = serve(XX, true, &base);
        let out = connect(&server.addr, XX, &["--store", s(&cli), "--key", "client"]);
        let (served, log) = server.finish();
        assert_eq!((out.status.success(), served), (expect, expect), "{log}");
    };
    accepted(true);
    ok_keys(
        &srv,
        &["untrust", "--name", "client", "--trust-store", s(&file)],
    );
    accepted(false);
    // The pin written back by hand: refused, the file was not made by akex.
    ok_keys(&srv, &[&pin[..], &["--trust-store", s(&file)]].concat());
    let made = std::fs::read(&file).unwrap();
    let copy = dir.path().join("copy.json");
    std::fs::write(&copy, &made).unwrap();
    let out = cmd()
        .args(["serve", "--listen", "127.0.0.1:0", "--protocol", XX])
        .args([
            "--store",
            s(&srv),
            "--key",
            "server",
            "--trust-store",
            s(&copy),
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("copy.json"),
        "{}",
        text(&out)
    );
}

/// A trust file named without a directory (`--trust-store t.json`, relative
/// to the working directory) is written, fsynced, used and unpinned like
/// any other.
#[test]
fn a_trust_store_named_without_a_directory_works() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = cmd().current_dir(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{}", support::describe("akex", &out));
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["keys", "--store", "s", "generate", "--name", "server"]);
    run(&["keys", "--store", "c", "generate", "--name", "client"]);
    let shown = run(&["keys", "--store", "c", "show", "--name", "client", "--json"]);
    std::fs::write(dir.path().join("client.json"), shown).unwrap();
    let pin = ["keys", "--store", "s", "trust", "--name", "client"];
    run(&[
        &pin[..],
        &["--from", "client.json", "--trust-store", "t.json"],
    ]
    .concat());
    assert!(dir.path().join("t.json").is_file());
    let server = start_listener(
        cmd()
            .current_dir(dir.path())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--timeout",
                "5",
                "--once",
            ])
            .args(["--protocol", XX, "--store", "s", "--key", "server"])
            .args(["--trust-store", "t.json"]),
    );
    let out = cmd()
        .current_dir(dir.path())
        .args(["connect", "--addr", &server.addr, "--protocol", XX])
        .args(["--store", "c", "--key", "client", "--messages", "1"])
        .output()
        .unwrap();
    let (served, log) = server.finish();
    assert!(out.status.success() && served, "{log}");
    run(&[
        "keys",
        "--store",
        "s",
        "untrust",
        "--name",
        "client",
        "--trust-store",
        "t.json",
    ]);
    let audit = run(&["keys", "--store", "s", "audit", "--verify"]);
    assert!(audit.contains("chain intact"), "{audit}");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".t.json")),
        "a temporary file was left: {names:?}"
    );
}

#[test]
fn a_forged_pin_in_a_fresh_store_is_refused_and_revocation_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let (evil, cli) = (dir.path().join("evil"), dir.path().join("cli"));
    let shown: serde_json::Value =
        serde_json::from_str(&ok_keys(&evil, &["generate", "--name", "evil", "--json"])).unwrap();
    ok_keys(&cli, &["generate", "--name", "client"]);
    let public = shown["public"].as_str().unwrap();
    let forged = serde_json::json!({
        "pins": [{"name": "server", "id": shown["id"], "type": "x25519",
                  "public": public, "added": 1}],
        "revocations": [],
    });
    std::fs::write(cli.join("trust.json"), forged.to_string()).unwrap();
    let server = serve(XX, false, &["--store", s(&evil), "--key", "evil"]);
    let args = ["--store", s(&cli), "--key", "client", "--trust", "pinned"];
    let out = connect(
        &server.addr,
        XX,
        &[&args[..], &["--peer", "server"]].concat(),
    );
    let _ = server.stop();
    let err = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("trust.json") && err.contains("never recorded"),
        "{err}"
    );
    let out = keys(&cli, &["list"]);
    assert!(!out.status.success() && text(&out).contains("trust.json"));
    // Revoking goes ahead, says what it found, and the log keeps it.
    let out = keys(&cli, &["revoke", "--name", "server", "--reason", "forged"]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out).contains("WARNING"), "{out:?}");
    let audit = ok_keys(&cli, &["audit", "--json"]);
    assert!(audit.contains("changed outside akex"), "{audit}");
}

/// Revocations reach a server that judges peers by a `--trust-store` file:
/// `keys revoke --trust-store FILE` revokes in that file (and in
/// trust.json), and a revocation only in the store's trust.json counts for
/// `serve --trust-store FILE` as well.
#[test]
fn revocations_reach_a_server_using_a_trust_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, c1, c2) = (
        dir.path().join("srv"),
        dir.path().join("c1"),
        dir.path().join("c2"),
    );
    ok_keys(&srv, &["generate", "--name", "server"]);
    let file = dir.path().join("clients.json");
    for (store, name) in [(&c1, "one"), (&c2, "two")] {
        ok_keys(store, &["generate", "--name", name]);
        let shown = store.join("show.json");
        std::fs::write(&shown, ok_keys(store, &["show", "--name", name, "--json"])).unwrap();
        let pin = ["trust", "--name", name, "--from", s(&shown)];
        ok_keys(&srv, &[&pin[..], &["--trust-store", s(&file)]].concat());
        // "two" is pinned in trust.json as well.
        if name == "two" {
            ok_keys(&srv, &pin);
        }
    }
    let base = [
        "--store",
        s(&srv),
        "--key",
        "server",
        "--trust-store",
        s(&file),
    ];
    let accepted = |client: &Path, name: &str| {
        let server = serve(XX, true, &base);
        let out = connect(&server.addr, XX, &["--store", s(client), "--key", name]);
        let (served, log) = server.finish();
        assert_eq!(out.status.success(), served, "{log}");
        served
    };
    assert!(accepted(&c1, "one") && accepted(&c2, "two"));
    // Pinned only in the file: revoked through --trust-store.
    let out = keys(&srv, &["revoke", "--name", "one", "--reason", "lost"]);
    assert!(!out.status.success(), "nothing named one in trust.json");
    ok_keys(
        &srv,
        &[
            "revoke",
            "--name",
            "one",
            "--reason",
            "lost",
            "--trust-store",
            s(&file),
        ],
    );
    assert!(!accepted(&c1, "one"));
    // Revoked in trust.json only: the server using the file refuses too.
    ok_keys(&srv, &["revoke", "--name", "two", "--reason", "lost"]);
    // The file holds only the first revocation: the refusal below comes
    // from trust.json.
    let in_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(in_file["revocations"].as_array().unwrap().len(), 1);
    assert!(!accepted(&c2, "two"));
    let list = ok_keys(&srv, &["list"]);
    assert_eq!(list.matches("revoked ").count(), 2, "{list}");
}
