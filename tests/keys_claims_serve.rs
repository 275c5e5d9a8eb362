//! Promises of docs/key-management.md about `serve` and `connect` with a
//! key store: a `--trust-store` file audited by the store, a forged pin in a
//! fresh store, `serve --peer`, the patterns that take the peer's key from
//! its pin, and the rules of in-band rotation announcements.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{start_listener, Listener};

static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
const PASS: &str = "serve claims passphrase";
const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
const AKEX_XX: &str = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256";

fn cmd() -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("AKEX_PASSPHRASE", PASS)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    c
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn keys(store: &Path, args: &[&str]) -> Output {
    cmd()
        .args(["keys", "--store", s(store)])
        .args(args)
        .output()
        .unwrap()
}

fn ok_keys(store: &Path, args: &[&str]) -> String {
    let out = keys(store, args);
    assert!(out.status.success(), "{}", support::describe("keys", &out));
    String::from_utf8(out.stdout).unwrap()
}

/// `serve` on a free port; `once` exits after one connection.
fn serve(protocol: &str, once: bool, args: &[&str]) -> Listener {
    let mut c = cmd();
    c.args(["serve", "--listen", "127.0.0.1:0", "--timeout", "5"])
        .args(["--protocol", protocol])
        .args(args);
    if once {
        c.arg("--once");
    }
    start_listener(&mut c)
}

fn connect(addr: &str, protocol: &str, args: &[&str]) -> Output {
    cmd()
        .args(["connect", "--addr", addr, "--protocol", protocol])
        .args(["--messages", "1"])
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Generates `name` in `store` and pins it as `as_name` in `peer`.
fn generate_and_pin(store: &Path, name: &str, peer: &Path, as_name: &str) {
    ok_keys(store, &["generate", "--name", name]);
    let file = store.join(format!("{name}.show.json"));
    std::fs::write(&file, ok_keys(store, &["show", "--name", name, "--json"])).unwrap();
    ok_keys(peer, &["trust", "--name", as_name, "--from", s(&file)]);
}

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

#[test]
fn serve_peer_restricts_clients_and_ik_nk_kk_take_the_pinned_key() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, a, b) = (
        dir.path().join("srv"),
        dir.path().join("a"),
        dir.path().join("b"),
    );
    generate_and_pin(&a, "a", &srv, "alice");
    generate_and_pin(&b, "b", &srv, "bob");
    generate_and_pin(&srv, "server", &a, "server");
    let file = srv.join("server.show.json");
    ok_keys(&b, &["trust", "--name", "server", "--from", s(&file)]);
    // serve --peer alice: bob is pinned, but not as alice.
    let only_alice = ["--store", s(&srv), "--key", "server", "--trust", "pinned"];
    let only_alice = [&only_alice[..], &["--peer", "alice"]].concat();
    let server = serve(XX, true, &only_alice);
    let out = connect(&server.addr, XX, &["--store", s(&b), "--key", "b"]);
    let (served, log) = server.finish();
    assert!(!out.status.success() && !served, "{log}");
    assert!(log.contains("not pinned as \"alice\""), "{log}");
    let server = serve(XX, true, &only_alice);
    let out = connect(&server.addr, XX, &["--store", s(&a), "--key", "a"]);
    assert!(out.status.success() && server.finish().0, "{out:?}");
    // The peer's key in advance comes from its pin: NK (the client has no
    // static key), IK, and KK (the server takes alice's pin too).
    for (protocol, server_args, client_key) in [
        ("Noise_NK_25519_ChaChaPoly_BLAKE2s", &[][..], None),
        ("Noise_IK_25519_ChaChaPoly_BLAKE2s", &[][..], Some("a")),
        (
            "Noise_KK_25519_ChaChaPoly_BLAKE2s",
            &["--peer", "alice"][..],
            Some("a"),
        ),
    ] {
        let server = serve(
            protocol,
            true,
            &[&["--store", s(&srv), "--key", "server"][..], server_args].concat(),
        );
        let mut args = vec!["--store", s(&a), "--peer", "server"];
        if let Some(key) = client_key {
            args.extend(["--key", key]);
        }
        let out = connect(&server.addr, protocol, &args);
        let (served, log) = server.finish();
        assert!(out.status.success() && served, "{protocol}: {out:?} {log}");
    }
    // A revoked pin is never used as the key in advance.
    ok_keys(&b, &["revoke", "--name", "server", "--reason", "test"]);
    let out = connect(
        "127.0.0.1:9",
        "Noise_NK_25519_ChaChaPoly_BLAKE2s",
        &["--store", s(&b), "--peer", "server"],
    );
    assert!(text(&out).contains("no key named"), "{out:?}");
}

/// A library client in akex mode: the handshake, one echo, then whether a
/// control record arrives within `wait`.
fn control_record_within(addr: &str, wait: Duration) -> bool {
    use akex::crypto::OsRng;
    use akex::keys::StaticSecret;
    use futures_util::{SinkExt, StreamExt};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let keys = akex::HandshakeKeys::new().static_key(StaticSecret::generate(&mut OsRng));
        let handshake = akex::handshake::registry::initiator(AKEX_XX, &keys).unwrap();
        let stream = akex::transport::connect(tcp, handshake, &Default::default())
            .await
            .unwrap();
        let mut messages = stream.into_messages();
        messages
            .send(bytes::Bytes::from_static(b"hi"))
            .await
            .unwrap();
        assert_eq!(&messages.next().await.unwrap().unwrap()[..], b"hi");
        matches!(
            tokio::time::timeout(wait, messages.next_control()).await,
            Ok(Ok(Some(_)))
        )
    })
}

#[test]
fn rotation_announcements_follow_the_documented_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, fresh, cli, tofu) = (
        dir.path().join("srv"),
        dir.path().join("fresh"),
        dir.path().join("cli"),
        dir.path().join("tofu"),
    );
    generate_and_pin(&srv, "server", &cli, "server");
    generate_and_pin(&fresh, "fresh", &cli, "fresh");
    ok_keys(&cli, &["generate", "--name", "client"]);
    ok_keys(&tofu, &["generate", "--name", "t"]);
    // A key that was never rotated announces nothing.
    let server = serve(AKEX_XX, false, &["--store", s(&fresh), "--key", "fresh"]);
    assert!(!control_record_within(
        &server.addr,
        Duration::from_millis(500)
    ));
    let _ = server.stop();
    // Wrong-peer, expired and revoked keys fail at once: no waiting for an
    // announcement (the client's timeout is 10 s).
    let show = fresh.join("fresh.show.json");
    ok_keys(
        &cli,
        &[
            "trust",
            "--name",
            "old",
            "--from",
            s(&show),
            "--expires-in",
            "0",
        ],
    );
    let args = [
        "--store",
        s(&cli),
        "--key",
        "client",
        "--trust",
        "pinned",
        "--timeout",
        "10",
    ];
    let server = serve(AKEX_XX, false, &["--store", s(&fresh), "--key", "fresh"]);
    for (peer, reason, revoke) in [
        ("server", "not pinned as", false),
        ("old", "expired", false),
        ("fresh", "revoked", true),
    ] {
        if revoke {
            ok_keys(&cli, &["revoke", "--name", "fresh", "--reason", "test"]);
        }
        let start = Instant::now();
        let out = connect(
            &server.addr,
            AKEX_XX,
            &[&args[..], &["--peer", peer]].concat(),
        );
        assert!(text(&out).contains(reason), "{peer}: {out:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{peer}: {:?}",
            start.elapsed()
        );
    }
    let _ = server.stop();

    let v: serde_json::Value =
        serde_json::from_str(&ok_keys(&srv, &["rotate", "--name", "server", "--json"])).unwrap();
    let new_id = v["new"]["id"].as_str().unwrap().to_string();
    let new_public = v["new"]["public"].as_str().unwrap().to_string();
    // Noise NK cannot announce (its client uses the server's key from the
    // first message), and says so at start-up.
    let nk = "Noise_NK_25519_ChaChaPoly_BLAKE2s";
    let server = serve(nk, false, &["--store", s(&srv), "--key", "server"]);
    // One connection: the server is past its start-up notes.
    let out = connect(&server.addr, nk, &["--remote-key", &new_public]);
    assert!(out.status.success(), "{out:?}");
    let log = server.stop();
    assert!(
        log.contains("this Noise pattern has the client use the server's key"),
        "{log}"
    );
    // Noise XX carries it in message 2: no such note.
    let server = serve(XX, false, &["--store", s(&srv), "--key", "server"]);
    let out = connect(&server.addr, XX, &["--store", s(&tofu), "--key", "t"]);
    assert!(out.status.success(), "{out:?}");
    let log = server.stop();
    assert!(!log.contains("out of band"), "{log}");
    // akex mode announces it.
    let server = serve(AKEX_XX, false, &["--store", s(&srv), "--key", "server"]);
    assert!(control_record_within(&server.addr, Duration::from_secs(5)));
    // With --trust tofu the new key is pinned on first use; the
    // announcement plays no part.
    let out = connect(
        &server.addr,
        AKEX_XX,
        &[
            "--store",
            s(&tofu),
            "--key",
            "t",
            "--trust",
            "tofu",
            "--peer",
            "server",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value =
        serde_json::from_str(&ok_keys(&tofu, &["list", "--json"])).unwrap();
    let pin = &list["pins"][0];
    assert_eq!(
        (pin["id"].as_str(), pin["tofu"].as_bool()),
        (Some(new_id.as_str()), Some(true))
    );
    assert!(pin["rotated_from"].is_null());
    let _ = server.stop();
    // Statements are verified at start-up: an edited one stops serve.
    let statement = v["statement_file"].as_str().unwrap();
    let original = std::fs::read_to_string(statement).unwrap();
    std::fs::write(
        statement,
        original.replace("\"overlap_until\": ", "\"overlap_until\": 1"),
    )
    .unwrap();
    let out = cmd()
        .args(["serve", "--listen", "127.0.0.1:0", "--protocol", AKEX_XX])
        .args(["--store", s(&srv), "--key", "server"])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("invalid rotation statement"),
        "{out:?}"
    );
}

/// Mounts `src` read-only at `at` (root only); the reason when impossible.
fn read_only_view(src: &Path, at: &Path) -> Result<(), String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    let run = |args: &[&str]| {
        let out = Command::new("mount")
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };
    run(&["--bind", s(src), s(at)])?;
    if let Err(e) = run(&["-o", "remount,bind,ro", s(at)]) {
        let _ = Command::new("umount").arg(at).status();
        return Err(e);
    }
    Ok(())
}

#[test]
fn handshakes_on_a_read_only_store_work_and_only_warn() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, cli) = (dir.path().join("srv"), dir.path().join("cli"));
    generate_and_pin(&srv, "server", &cli, "server");
    ok_keys(&cli, &["generate", "--name", "client"]);
    let ro = dir.path().join("ro");
    if let Err(reason) = read_only_view(&cli, &ro) {
        println!("SKIPPED: a read-only bind mount is not possible here: {reason}");
        return;
    }
    let before: Vec<_> = std::fs::read_dir(&cli)
        .unwrap()
        .flatten()
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap_or_default()))
        .collect();
    let server = serve(XX, true, &["--store", s(&srv), "--key", "server"]);
    let out = connect(
        &server.addr,
        XX,
        &[
            "--store",
            s(&ro),
            "--key",
            "client",
            "--trust",
            "pinned",
            "--peer",
            "server",
        ],
    );
    let served = server.finish().0;
    let _ = Command::new("umount").arg(&ro).status();
    assert!(out.status.success() && served, "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: cannot record the key's"), "{err}");
    let after: Vec<_> = std::fs::read_dir(&cli)
        .unwrap()
        .flatten()
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap_or_default()))
        .collect();
    assert_eq!(before, after);
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
