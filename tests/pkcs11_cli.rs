//! `akex` with signing keys in SoftHSM2 tokens, as separate processes:
//! `keys generate --pkcs11`, `serve`/`connect` completing SIGMA with both
//! keys in tokens (Ed25519 and P-256 suites, by store name and by URI), and
//! rotate/revoke/destroy with their audit lines. The protection of the
//! private objects and the error cases are in tests/pkcs11_cli_token.rs.
//! `cargo test --features pkcs11 --test pkcs11_cli`.

mod pkcs11_cli_support;
#[path = "support/softhsm.rs"]
mod softhsm;
mod support;

use std::process::Command;

use pkcs11_cli_support::*;
use softhsm::{SoftHsm, PIN};

#[test]
fn serve_and_connect_complete_sigma_with_both_keys_in_tokens() {
    let hsm = SoftHsm::new(&["server", "client"]);
    let dir = tempfile::tempdir().unwrap();
    let (srv, cli) = (dir.path().join("srv"), dir.path().join("cli"));
    let mut log = String::new();
    for (protocol, key_type) in [(ED, "ed25519"), (P256, "p256")] {
        let (sname, cname) = (format!("srv-{key_type}"), format!("cli-{key_type}"));
        generate(&mut log, &hsm, &srv, &sname, key_type, "server");
        generate(&mut log, &hsm, &cli, &cname, key_type, "client");
        pin(&mut log, &hsm, &srv, &sname, &cli, "server");
        pin(&mut log, &hsm, &cli, &cname, &srv, "client");
        let (srv_pub, cli_pub) = (
            public_of(&mut log, &hsm, &srv, &sname),
            public_of(&mut log, &hsm, &cli, &cname),
        );
        // By store name, the client's PIN on a file descriptor.
        let server = serve(&hsm, &srv, protocol, &sname);
        let out = run(
            &mut log,
            &mut cmd_pin_fd(&hsm, &connect_args(&cli, &server.addr, protocol, &cname)),
        );
        assert!(
            out.status.success(),
            "{}",
            support::describe("connect", &out)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(v["protocol"], protocol);
        assert_eq!(v["remote_key"], srv_pub.as_str());
        let (served, text) = server.finish();
        assert!(served, "{text}");
        assert!(text.contains(&format!("remote_key={cli_pub}")), "{text}");
        // By URI: the store still finds the key's entry (status, audit).
        let uri = format!("pkcs11:token=client;object={cname}");
        let server = serve(&hsm, &srv, protocol, &sname);
        let v = ok(
            &mut log,
            &hsm,
            &connect_args(&cli, &server.addr, protocol, &uri),
        );
        assert_eq!(v["remote_key"], srv_pub.as_str());
        assert!(server.finish().0);
    }
    let audit = ok(
        &mut log,
        &hsm,
        &["keys", "--store", s(&cli), "--json", "audit", "--verify"],
    );
    assert_eq!(audit["ok"], true);
    assert!(!log.contains(PIN), "the PIN appeared in an output");
}

#[test]
fn token_keys_rotate_revoke_and_destroy_with_audit_lines() {
    let hsm = SoftHsm::new(&["server", "client"]);
    let dir = tempfile::tempdir().unwrap();
    let (srv, cli) = (dir.path().join("srv"), dir.path().join("cli"));
    let mut log = String::new();
    generate(&mut log, &hsm, &srv, "srv", "p256", "server");
    generate(&mut log, &hsm, &cli, "cli", "p256", "client");
    pin(&mut log, &hsm, &srv, "srv", &cli, "server");
    pin(&mut log, &hsm, &cli, "cli", &srv, "client");
    let old_pub = public_of(&mut log, &hsm, &srv, "srv");

    // Rotate in the token: both keys sign the statement.
    let rotated = ok(
        &mut log,
        &hsm,
        &[
            "keys",
            "--store",
            s(&srv),
            "--json",
            "rotate",
            "--name",
            "srv",
        ],
    );
    let new_pub = rotated["new"]["public"].as_str().unwrap().to_string();
    assert_ne!(new_pub, old_pub);
    assert!(rotated["new"]["pkcs11"]
        .as_str()
        .unwrap()
        .contains("object=srv;id=%"));
    // A third store accepts the statement file against the old pin.
    let third = dir.path().join("third");
    pin(
        &mut log,
        &hsm,
        &srv,
        &rotated["statement"]["old_id"].as_str().unwrap()[..16],
        &third,
        "server",
    );
    let statement = rotated["statement_file"].as_str().unwrap();
    ok(
        &mut log,
        &hsm,
        &[
            "keys",
            "--store",
            s(&third),
            "trust",
            "--statement",
            statement,
        ],
    );
    // The client, pinned to the old key, follows the announced rotation.
    let server = serve(&hsm, &srv, P256, "srv");
    let v = ok(
        &mut log,
        &hsm,
        &connect_args(&cli, &server.addr, P256, "cli"),
    );
    assert_eq!(v["remote_key"], new_pub.as_str());
    assert!(server.finish().0);

    // Revoke: the server's key no longer loads.
    ok(
        &mut log,
        &hsm,
        &[
            "keys",
            "--store",
            s(&srv),
            "revoke",
            "--name",
            "srv",
            "--reason",
            "test",
        ],
    );
    let line = fail_one_line(
        &mut log,
        cmd(&hsm).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--protocol",
            P256,
            "--store",
            s(&srv),
            "--key",
            "srv",
        ]),
    );
    assert!(line.contains("revoked"), "{line}");
    // Not through its URI either: the store knows the key.
    let new_uri = rotated["new"]["pkcs11"].as_str().unwrap();
    let line = fail_one_line(
        &mut log,
        cmd(&hsm).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--protocol",
            P256,
            "--store",
            s(&srv),
            "--key",
            new_uri,
        ]),
    );
    assert!(line.contains("revoked"), "{line}");
    // list and show say where the key is.
    let list = run(
        &mut log,
        cmd(&hsm).args(["keys", "--store", s(&srv), "list"]),
    );
    assert!(String::from_utf8_lossy(&list.stdout).contains(" pkcs11 "));
    let show = run(
        &mut log,
        cmd(&hsm).args(["keys", "--store", s(&srv), "show", "--name", "srv"]),
    );
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains(&format!("pkcs11: {new_uri}")), "{shown}");

    // Destroy: the objects leave the token.
    let tool = hsm
        .pkcs11_tool()
        .expect("pkcs11-tool (apt-get install opensc)");
    let objects = |tool: Option<Command>| {
        let out = tool
            .unwrap()
            .args(["--login", "--pin", PIN, "--token-label", "server", "-O"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(objects(Some(tool)).contains("label:      srv"));
    // The current key by name, the retired one (still in the token after
    // the rotation) by its id.
    let old_id = rotated["statement"]["old_id"].as_str().unwrap();
    for name in ["srv", old_id] {
        let done = ok(
            &mut log,
            &hsm,
            &[
                "keys",
                "--store",
                s(&srv),
                "--json",
                "destroy",
                "--name",
                name,
            ],
        );
        assert_eq!(done["status"], "destroyed");
    }
    assert!(
        !objects(hsm.pkcs11_tool()).contains("label:      srv"),
        "objects left in the token"
    );

    let records = run(
        &mut log,
        cmd(&hsm).args(["keys", "--store", s(&srv), "--json", "audit"]),
    );
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&records.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for want in ["generate", "load", "use", "rotate", "revoke", "destroy"] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    assert!(events
        .iter()
        .any(|e| e["event"] == "rotate" && e["detail"].as_str().unwrap().contains("pkcs11=")));
    let verify = ok(
        &mut log,
        &hsm,
        &["keys", "--store", s(&srv), "--json", "audit", "--verify"],
    );
    assert_eq!(verify["ok"], true);
    assert!(!log.contains(PIN), "the PIN appeared in an output");
    for entry in std::fs::read_dir(&srv).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PIN),
            "{:?}",
            entry.path()
        );
    }
}
