//! Promises of docs/key-management.md about `serve` and `connect` with
//! pinned peers: `serve --peer`, the patterns that take the peer's key from
//! its pin, the rules of in-band rotation announcements, and handshakes on
//! a read-only store.

mod keys_claims_serve_support;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use keys_claims_serve_support::*;

const AKEX_XX: &str = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256";

/// Generates `name` in `store` and pins it as `as_name` in `peer`.
fn generate_and_pin(store: &Path, name: &str, peer: &Path, as_name: &str) {
    ok_keys(store, &["generate", "--name", name]);
    let file = store.join(format!("{name}.show.json"));
    std::fs::write(&file, ok_keys(store, &["show", "--name", name, "--json"])).unwrap();
    ok_keys(peer, &["trust", "--name", as_name, "--from", s(&file)]);
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
