//! `serve`/`connect` with store keys (`--key NAME`) over loopback: pinned
//! trust on both sides, unpinned and revoked peers refused, IK with the
//! pinned key, and SIGMA and PQ-authenticated IK with keys of every type.

mod keys_cli_support;
mod support;

use std::path::Path;

use keys_cli_support::*;

#[test]
fn serve_and_connect_with_store_keys_and_pinned_trust() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    let cli = dir.path().join("cli");
    let mut log = String::new();
    generate_and_pin(&mut log, &srv, "server", &cli, "server");
    generate_and_pin(&mut log, &cli, "client", &srv, "client");

    // Both sides check the other against their pins.
    let server = serve(&["--store", s(&srv), "--key", "server", "--trust", "pinned"]);
    let v = ok(
        &mut log,
        &[
            "connect",
            "--addr",
            &server.addr,
            "--protocol",
            XX,
            "--store",
            s(&cli),
            "--key",
            "client",
            "--trust",
            "pinned",
            "--peer",
            "server",
            "--messages",
            "3",
        ],
    );
    assert_eq!(v["ok"], true);
    let (ok_server, slog) = finish(server);
    log.push_str(&slog);
    assert!(ok_server, "{slog}");

    // An unpinned client is refused by the server, naming the reason.
    ok(
        &mut log,
        &["keys", "--store", s(&cli), "generate", "--name", "stranger"],
    );
    let server = serve(&["--store", s(&srv), "--key", "server", "--trust", "pinned"]);
    let out = run(
        &mut log,
        &[
            "connect",
            "--addr",
            &server.addr,
            "--protocol",
            XX,
            "--store",
            s(&cli),
            "--key",
            "stranger",
        ],
    );
    assert!(!out.status.success());
    let (ok_server, slog) = finish(server);
    log.push_str(&slog);
    assert!(!ok_server);
    assert!(slog.contains("not pinned"), "{slog}");

    // The client revokes the server's key: the handshake is refused with the reason.
    ok(
        &mut log,
        &[
            "keys",
            "--store",
            s(&cli),
            "revoke",
            "--name",
            "server",
            "--reason",
            "host decommissioned",
        ],
    );
    let server = serve(&["--store", s(&srv), "--key", "server"]);
    let err = fail(
        &mut log,
        &[
            "connect",
            "--addr",
            &server.addr,
            "--protocol",
            XX,
            "--store",
            s(&cli),
            "--key",
            "client",
            "--trust",
            "pinned",
            "--peer",
            "server",
        ],
    );
    assert!(
        err.contains("revoked") && err.contains("host decommissioned"),
        "{err}"
    );
    assert!(err.contains("peer_not_trusted"), "{err}");
    let _ = finish(server);

    // IK: the server's key comes from the trust store by pin name (--peer);
    // a revoked pin is not used.
    const IK: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
    let err = fail(
        &mut log,
        &[
            "connect",
            "--addr",
            "127.0.0.1:9",
            "--protocol",
            IK,
            "--store",
            s(&cli),
            "--key",
            "client",
            "--peer",
            "server",
        ],
    );
    assert!(err.contains("no key named"), "{err}");
    ok(
        &mut log,
        &["keys", "--store", s(&cli), "untrust", "--name", "server"],
    );
    ok(
        &mut log,
        &["keys", "--store", s(&srv), "generate", "--name", "server2"],
    );
    pin_key(&mut log, &srv, "server2", &cli, "server");
    let server = serve(&[
        "--protocol",
        IK,
        "--store",
        s(&srv),
        "--key",
        "server2",
        "--trust",
        "pinned",
    ]);
    let v = ok(
        &mut log,
        &[
            "connect",
            "--addr",
            &server.addr,
            "--protocol",
            IK,
            "--store",
            s(&cli),
            "--key",
            "client",
            "--peer",
            "server",
            "--messages",
            "1",
        ],
    );
    assert_eq!(v["ok"], true);
    assert!(finish(server).0);
    ok(
        &mut log,
        &["keys", "--store", s(&cli), "untrust", "--name", "server"],
    );
    let list = ok(&mut log, &["keys", "--store", s(&cli), "list", "--json"]);
    assert!(list["pins"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["name"] != "server"));
    secret_grep(&[&srv, &cli], &log);
}

/// The public key of store identity `name`, base64 (`keys show --json`).
fn store_public(log: &mut String, store: &Path, name: &str) -> String {
    let v = ok(
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
    v["public"].as_str().expect("public key").to_string()
}

/// Store keys of every type through `--key`: SIGMA with Ed25519 identities,
/// PQ-authenticated IK with an X25519 and an ML-KEM-768 key per side, and
/// the refusals (a key of the wrong type, two keys of one type).
#[test]
fn sigma_and_pq_with_store_keys() {
    use base64::Engine;
    const SIGMA: &str = "akex-sigma-x25519-ed25519-chachapoly-sha256";
    const PQ_IK: &str = "akex-pq-ik-x25519-mlkem768-chachapoly-sha256";
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    let cli = dir.path().join("cli");
    let mut log = String::new();
    for (store, prefix) in [(&srv, "s"), (&cli, "c")] {
        for kind in ["x25519", "ed25519", "mlkem768"] {
            let name = format!("{prefix}-{kind}");
            ok(
                &mut log,
                &[
                    "keys",
                    "--store",
                    s(store),
                    "generate",
                    "--name",
                    &name,
                    "--type",
                    kind,
                ],
            );
        }
    }

    // SIGMA: the client pins the server's Ed25519 key.
    let server_ed = store_public(&mut log, &srv, "s-ed25519");
    let server = serve(&[
        "--protocol",
        SIGMA,
        "--store",
        s(&srv),
        "--key",
        "s-ed25519",
    ]);
    let v = ok(
        &mut log,
        &[
            "connect",
            "--addr",
            &server.addr,
            "--protocol",
            SIGMA,
            "--store",
            s(&cli),
            "--key",
            "c-ed25519",
            "--remote-key",
            &server_ed,
            "--messages",
            "2",
        ],
    );
    assert_eq!(v["ok"], true, "{v}");
    let (ok_server, slog) = finish(server);
    assert!(ok_server, "{slog}");

    // PQ IK: the remote key is the X25519 key followed by the ML-KEM key.
    let combined = |log: &mut String, store: &Path, prefix: &str| {
        let mut bytes = b64
            .decode(store_public(log, store, &format!("{prefix}-x25519")))
            .unwrap();
        bytes.extend(
            b64.decode(store_public(log, store, &format!("{prefix}-mlkem768")))
                .unwrap(),
        );
        assert_eq!(bytes.len(), 32 + 1184);
        b64.encode(bytes)
    };
    let server_pub = combined(&mut log, &srv, "s");
    let client_pub = combined(&mut log, &cli, "c");
    let server = serve(&[
        "--protocol",
        PQ_IK,
        "--store",
        s(&srv),
        "--key",
        "s-x25519",
        "--key",
        "s-mlkem768",
        "--remote-key",
        &client_pub,
    ]);
    let v = ok(
        &mut log,
        &[
            "connect",
            "--addr",
            &server.addr,
            "--protocol",
            PQ_IK,
            "--store",
            s(&cli),
            "--key",
            "c-mlkem768",
            "--key",
            "c-x25519",
            "--remote-key",
            &server_pub,
            "--messages",
            "2",
        ],
    );
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["protocol"], PQ_IK);
    let (ok_server, slog) = finish(server);
    assert!(ok_server, "{slog}");

    // Refusals name the problem.
    let err = fail(
        &mut log,
        &[
            "connect",
            "--addr",
            "127.0.0.1:9",
            "--protocol",
            PQ_IK,
            "--store",
            s(&cli),
            "--key",
            "c-x25519",
            "--key",
            "c-x25519",
        ],
    );
    assert!(err.contains("x25519 key was already given"), "{err}");
    let err = fail(
        &mut log,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--protocol",
            SIGMA,
            "--store",
            s(&srv),
            "--key",
            "s-x25519",
        ],
    );
    assert!(err.contains("SIGMA needs an Ed25519 identity"), "{err}");
    secret_grep(&[&srv, &cli], &log);
}

/// `connect --trust tofu --peer NAME` pins the first key it meets as NAME
/// and then refuses a server with another key under that name (a changed
/// key), leaving the pin alone; after `keys untrust` the new key is a
/// first use again.
#[test]
fn tofu_refuses_a_changed_server_key_until_untrusted() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, other, cli) = (
        dir.path().join("srv"),
        dir.path().join("other"),
        dir.path().join("cli"),
    );
    let mut log = String::new();
    for store in [&srv, &other, &cli] {
        ok(
            &mut log,
            &["keys", "--store", s(store), "generate", "--name", "k"],
        );
    }
    let connect = |log: &mut String, addr: &str| {
        run(
            log,
            &[
                "connect",
                "--addr",
                addr,
                "--protocol",
                XX,
                "--store",
                s(&cli),
                "--key",
                "k",
                "--trust",
                "tofu",
                "--peer",
                "web",
            ],
        )
    };
    let pins = |log: &mut String| {
        let list = ok(log, &["keys", "--store", s(&cli), "list", "--json"]);
        list["pins"].as_array().unwrap().len()
    };
    let server = serve(&["--store", s(&srv), "--key", "k"]);
    assert!(connect(&mut log, &server.addr).status.success(), "{log}");
    let _ = finish(server);
    assert_eq!(pins(&mut log), 1);

    let server = serve(&["--store", s(&other), "--key", "k"]);
    let out = connect(&mut log, &server.addr);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("a changed key is not pinned"), "{text}");
    let _ = finish(server);
    assert_eq!(pins(&mut log), 1);

    ok(
        &mut log,
        &["keys", "--store", s(&cli), "untrust", "--name", "web"],
    );
    let server = serve(&["--store", s(&other), "--key", "k"]);
    assert!(connect(&mut log, &server.addr).status.success(), "{log}");
    let _ = finish(server);
    assert_eq!(pins(&mut log), 1);
}
