//! `akex keys` lifecycle end to end on temporary directories: generate,
//! list and show (text and JSON), destroy, tampered key files, audit logs
//! and trust stores, and handshake uses audited as rate-limited summaries.

mod keys_cli_support;
mod support;

use std::path::Path;

use keys_cli_support::*;

#[test]
fn generate_list_show_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let mut log = String::new();
    for ty in ["x25519", "ed25519", "mlkem768"] {
        let v = ok(
            &mut log,
            &[
                "keys",
                "--store",
                s(&st),
                "generate",
                "--name",
                ty,
                "--type",
                ty,
                "--json",
            ],
        );
        assert_eq!(v["type"], ty);
        assert_eq!(v["status"], "active");
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
    }
    let list = ok(&mut log, &["keys", "--store", s(&st), "list", "--json"]);
    assert_eq!(list["keys"].as_array().unwrap().len(), 3);
    let text = run(&mut log, &["keys", "--store", s(&st), "list"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("mlkem768"));
    let show = ok(
        &mut log,
        &[
            "keys",
            "--store",
            s(&st),
            "show",
            "--name",
            "x25519",
            "--json",
        ],
    );
    assert_eq!(show["name"], "x25519");
    // Errors are one line, typed in JSON.
    let err = fail(
        &mut log,
        &["keys", "--store", s(&st), "generate", "--name", "x25519"],
    );
    assert!(err.contains("already exists"), "{err}");
    let err = fail(
        &mut log,
        &[
            "keys",
            "--store",
            s(&st),
            "generate",
            "--name",
            "z",
            "--type",
            "rsa",
        ],
    );
    assert!(err.contains("unsupported key type"), "{err}");
    let err = fail(
        &mut log,
        &[
            "keys",
            "--store",
            s(&st),
            "show",
            "--name",
            "nope",
            "--json",
        ],
    );
    assert!(err.contains("\"kind\":\"key_store\""), "{err}");
    // The default store follows XDG_DATA_HOME.
    let xdg = dir.path().join("xdg");
    let out = cmd()
        .env("XDG_DATA_HOME", &xdg)
        .args(["keys", "generate", "--name", "d"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(xdg.join("akex/store.json").exists());
}

#[test]
fn destroy_and_tampering_over_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let mut log = String::new();
    let v = ok(
        &mut log,
        &[
            "keys",
            "--store",
            s(&st),
            "generate",
            "--name",
            "k",
            "--json",
        ],
    );
    let file = st
        .join("keys")
        .join(format!("{}.pem", v["id"].as_str().unwrap()));
    assert!(file.exists());

    // A truncated key file: a clear error, and the file is untouched.
    let original = std::fs::read(&file).unwrap();
    std::fs::write(&file, &original[..40]).unwrap();
    let out = run(
        &mut log,
        &[
            "connect",
            "--addr",
            "127.0.0.1:9",
            "--protocol",
            XX,
            "--store",
            s(&st),
            "--key",
            "k",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("corrupted"),
        "{out:?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), &original[..40]);
    std::fs::write(&file, &original).unwrap();

    ok(
        &mut log,
        &[
            "keys",
            "--store",
            s(&st),
            "destroy",
            "--name",
            "k",
            "--json",
        ],
    );
    assert!(!file.exists());
    let err = fail(
        &mut log,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--protocol",
            XX,
            "--store",
            s(&st),
            "--key",
            "k",
        ],
    );
    assert!(err.contains("destroyed"), "{err}");
    let list = ok(&mut log, &["keys", "--store", s(&st), "list", "--json"]);
    assert_eq!(list["keys"][0]["status"], "destroyed");

    // The audit log: intact, then edited, then with a line removed.
    let v = ok(
        &mut log,
        &["keys", "--store", s(&st), "audit", "--verify", "--json"],
    );
    assert_eq!(v["ok"], true);
    let audit = st.join("audit.jsonl");
    let original = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() >= 2, "{original}");
    let edited = original.replacen("\"generate\"", "\"rotate\"", 1);
    std::fs::write(&audit, &edited).unwrap();
    let err = fail(&mut log, &["keys", "--store", s(&st), "audit", "--verify"]);
    assert!(err.contains("audit log line 1"), "{err}");
    std::fs::write(&audit, lines[1..].join("\n") + "\n").unwrap();
    let err = fail(&mut log, &["keys", "--store", s(&st), "audit", "--verify"]);
    assert!(err.contains("audit log line 1"), "{err}");
    std::fs::write(&audit, &original).unwrap();
    ok(&mut log, &["keys", "--store", s(&st), "audit", "--verify"]);
    // The last line removed after the fact: `audit` says it can be put
    // back, and the next change does so.
    std::fs::write(&audit, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let err = fail(&mut log, &["keys", "--store", s(&st), "audit", "--verify"]);
    assert!(err.contains("the next change puts them back"), "{err}");
    ok(
        &mut log,
        &["keys", "--store", s(&st), "generate", "--name", "after"],
    );
    let v = ok(
        &mut log,
        &["keys", "--store", s(&st), "audit", "--verify", "--json"],
    );
    assert_eq!(v["lines"], lines.len() + 2, "{v}");

    // An edited trust store is refused.
    ok(
        &mut log,
        &[
            "keys",
            "--store",
            s(&st),
            "trust",
            "--name",
            "p",
            "--public",
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        ],
    );
    let trust = st.join("trust.json");
    let text = std::fs::read_to_string(&trust).unwrap();
    std::fs::write(&trust, text.replace("AQEBAQEB", "AgICAgIC")).unwrap();
    let err = fail(&mut log, &["keys", "--store", s(&st), "list"]);
    assert!(
        err.contains("trust.json") && err.contains("corrupted"),
        "{err}"
    );
}

fn use_lines(log: &mut String, store: &Path) -> Vec<serde_json::Value> {
    let out = run(log, &["keys", "--store", s(store), "audit", "--json"]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "use")
        .collect()
}

#[test]
fn handshake_uses_are_audited_as_rate_limited_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    let cli = dir.path().join("cli");
    let mut log = String::new();
    generate_and_pin(&mut log, &srv, "server", &cli, "server");
    ok(
        &mut log,
        &["keys", "--store", s(&cli), "generate", "--name", "client"],
    );
    let server = spawn_serve(&["--store", s(&srv), "--key", "server"]);
    for _ in 0..12 {
        ok(
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
                "1",
            ],
        );
    }
    let _ = stop(server);
    // Twelve handshakes on each side, one `use` line each (count=1; the
    // next line, a minute later, will carry the 11 counted since).
    for (store, name) in [(&srv, "server"), (&cli, "client")] {
        let uses = use_lines(&mut log, store);
        assert_eq!(uses.len(), 1, "{uses:?}");
        assert_eq!(uses[0]["name"], name);
        assert!(uses[0]["detail"].as_str().unwrap().starts_with("count=1 "));
        let pending: serde_json::Value =
            serde_json::from_slice(&std::fs::read(store.join("audit.uses")).unwrap()).unwrap();
        let id = uses[0]["key_id"].as_str().unwrap();
        assert_eq!(pending[id]["pending"], 11, "{pending}");
        ok(
            &mut log,
            &["keys", "--store", s(store), "audit", "--verify"],
        );
    }
}
