//! `akex` with signing keys in SoftHSM2 tokens, as separate processes:
//! `keys generate --pkcs11`, `serve`/`connect` completing SIGMA with both
//! keys in tokens (Ed25519 and P-256 suites, by store name and by URI),
//! rotate/revoke/destroy with their audit lines, the protection of the
//! private objects seen by OpenSC's `pkcs11-tool`, and the error cases.
//! `cargo test --features pkcs11 --test pkcs11_cli`.

#[path = "support/softhsm.rs"]
mod softhsm;
mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use softhsm::{SoftHsm, PIN};
use support::{start_listener, Listener};

static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
const ED: &str = "akex-sigma-x25519-ed25519-aesgcm-sha256";
const P256: &str = "akex-sigma-p256-ecdsa-aesgcm-sha256";

/// The command with this installation; the PIN from the environment.
fn cmd(hsm: &SoftHsm) -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("SOFTHSM2_CONF", &hsm.conf)
        .env("AKEX_PKCS11_MODULE", &hsm.module)
        .env("AKEX_PKCS11_PIN", PIN)
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    c
}

/// The command with the PIN on file descriptor 3 only (`--pin-fd 3`).
fn cmd_pin_fd(hsm: &SoftHsm, args: &[&str]) -> Command {
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

fn run(log: &mut String, c: &mut Command) -> Output {
    let out = c.output().expect("run akex");
    log.push_str(&String::from_utf8_lossy(&out.stdout));
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    out
}

fn ok(log: &mut String, hsm: &SoftHsm, args: &[&str]) -> serde_json::Value {
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
fn fail_one_line(log: &mut String, c: &mut Command) -> String {
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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Generates `name` of `key_type` in `token`, recorded in `store`.
fn generate(
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
fn pin(log: &mut String, hsm: &SoftHsm, store: &Path, name: &str, peer: &Path, as_name: &str) {
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

fn serve(hsm: &SoftHsm, store: &Path, protocol: &str, key: &str) -> Listener {
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

fn connect_args<'a>(
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

fn public_of(log: &mut String, hsm: &SoftHsm, store: &Path, name: &str) -> String {
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

#[test]
fn pkcs11_tool_sees_sensitive_never_extractable_private_keys() {
    let hsm = SoftHsm::new(&["keys"]);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut log = String::new();
    generate(&mut log, &hsm, &store, "ed", "ed25519", "keys");
    generate(&mut log, &hsm, &store, "p", "p256", "keys");
    let tool = || {
        hsm.pkcs11_tool()
            .expect("pkcs11-tool (apt-get install opensc)")
    };
    let out = tool()
        .args(["--login", "--pin", PIN, "-O", "--type", "privkey"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let blocks: Vec<&str> = text.split("Private Key Object").skip(1).collect();
    assert_eq!(blocks.len(), 2, "{text}");
    for block in blocks {
        assert!(
            block.contains("Access:     sensitive, always sensitive, never extractable"),
            "{block}"
        );
        assert!(
            block.contains("Usage:") && block.contains("sign"),
            "{block}"
        );
        assert!(!block.contains("derive"), "{block}");
    }
    // Both halves carry the key's label and id; the public half verifies
    // and names its curve (edwards25519 as a PrintableString, prime256v1).
    let out = tool()
        .args(["--login", "--pin", PIN, "-O"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |block: &str, name: &str| {
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    for (label, params) in [
        ("ed", "130c6564776172647332353531"),
        ("p", "06082a8648ce3d030107"),
    ] {
        let halves: Vec<&str> = text
            .split("Key Object")
            .skip(1)
            .filter(|b| field(b, "label:") == label)
            .collect();
        assert_eq!(halves.len(), 2, "{label}: {text}");
        assert_eq!(field(halves[0], "ID:"), field(halves[1], "ID:"));
        let public = halves.iter().find(|b| b.contains("EC_PARAMS")).unwrap();
        assert!(field(public, "Usage:").contains("verify"), "{public}");
        assert!(field(public, "EC_PARAMS:").starts_with(params), "{public}");
    }
    // (pkcs11-tool cannot be asked for CKA_VALUE; tests/pkcs11.rs checks
    // through the PKCS#11 API that the token refuses to return it.)
}

#[test]
fn each_failure_is_one_line_and_leaves_store_and_token_unchanged() {
    let hsm = SoftHsm::new(&["t"]);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut log = String::new();
    generate(&mut log, &hsm, &store, "first", "ed25519", "t");
    let index = || std::fs::read(store.join("store.json")).unwrap();
    let before = index();
    let count = || {
        let out = hsm
            .pkcs11_tool()
            .expect("pkcs11-tool")
            .args(["--login", "--pin", PIN, "-O"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .matches("Object;")
            .count()
    };
    let objects = count();
    // (URI, key type, environment changes: name -> Some(value) or None
    // to remove, the message expected). An empty URI means `connect`.
    let restricted = hsm.conf_without(&["CKM_EC_EDWARDS_KEY_PAIR_GEN", "CKM_EDDSA"]);
    let restricted = [("SOFTHSM2_CONF", Some(restricted.to_str().unwrap()))];
    let with_pin = format!("pkcs11:token=t;object=second?pin-value={PIN}");
    let ok_uri = "pkcs11:token=t;object=second";
    type Env<'a> = &'a [(&'a str, Option<&'a str>)];
    let cases: Vec<(&str, &str, Env, &str)> = vec![
        (
            ok_uri,
            "ed25519",
            &[("AKEX_PKCS11_MODULE", Some("/no/such/pkcs11.so"))],
            "cannot load module /no/such/pkcs11.so",
        ),
        (
            ok_uri,
            "ed25519",
            &[("AKEX_PKCS11_MODULE", None)],
            "no module",
        ),
        (
            "pkcs11:token=absent;object=second",
            "ed25519",
            &[],
            "no token token=absent",
        ),
        (
            ok_uri,
            "ed25519",
            &[("AKEX_PKCS11_PIN", Some("000000"))],
            "wrong PIN for token t",
        ),
        // A module without Ed25519 (SoftHSM's slots.mechanisms).
        (
            ok_uri,
            "ed25519",
            &restricted,
            "token t does not support CKM_",
        ),
        (
            "pkcs11:token=t;object=first",
            "ed25519",
            &[],
            "already holds a key labelled \"first\"",
        ),
        (ok_uri, "x25519", &[], "stay in the key store"),
        // Refused before a PIN is asked for (there is none here).
        (
            ok_uri,
            "mlkem768",
            &[("AKEX_PKCS11_PIN", None)],
            "stay in the key store",
        ),
        (&with_pin, "ed25519", &[], "never goes in a URI"),
        (
            ok_uri,
            "ed25519",
            &[("AKEX_PKCS11_PIN", None)],
            "set AKEX_PKCS11_PIN",
        ),
        // A key that is not in the token, and a wrong PIN, for a handshake.
        (
            "",
            "",
            &[],
            "no private key matching pkcs11:token=t;object=missing in token t",
        ),
        (
            "",
            "",
            &[("AKEX_PKCS11_PIN", Some("111111"))],
            "wrong PIN for token t",
        ),
    ];
    let cases = cases.into_iter().map(|(uri, key_type, env, want)| {
        let mut c = cmd(&hsm);
        if uri.is_empty() {
            c.args([
                "connect",
                "--addr",
                "127.0.0.1:9",
                "--protocol",
                ED,
                "--store",
                s(&store),
            ])
            .args(["--key", "pkcs11:token=t;object=missing"]);
        } else {
            c.args(["keys", "--store", s(&store), "generate", "--name", "second"])
                .args(["--type", key_type, "--pkcs11", uri]);
        }
        for (name, value) in env {
            match value {
                Some(v) => c.env(name, v),
                None => c.env_remove(name),
            };
        }
        (c, want)
    });
    for (mut c, want) in cases {
        let out = run(&mut log, &mut c);
        assert!(
            !out.status.success(),
            "{want}: {}",
            support::describe("akex", &out)
        );
        // `keys` reports on stderr, `connect` as one JSON line on stdout.
        let text = if out.stderr.is_empty() {
            out.stdout.clone()
        } else {
            out.stderr.clone()
        };
        let text = String::from_utf8_lossy(&text);
        assert_eq!(text.lines().count(), 1, "{want}: {text:?}");
        assert!(text.contains(want), "expected {want:?} in {text:?}");
        assert_eq!(index(), before, "{want}: store.json changed");
        assert_eq!(count(), objects, "{want}: the token changed");
    }
    // The refused login is in the audit log, without the PIN.
    let audit = run(
        &mut log,
        cmd(&hsm).args(["keys", "--store", s(&store), "audit"]),
    );
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(
        text.contains("pkcs11-login-failed") && text.contains("wrong PIN for token t"),
        "{text}"
    );
    assert!(!log.contains(PIN), "the PIN appeared in an output");
    assert!(!text.contains("000000") && !text.contains("111111"));
    assert_eq!(text.matches("pkcs11-login-failed").count(), 2, "{text}");
}
