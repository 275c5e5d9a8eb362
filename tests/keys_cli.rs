//! `akex keys` end to end on temporary directories, and `serve`/`connect`
//! with `--key NAME` and a pinned trust store over loopback.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{start_listener, Listener};

/// The `akex` command, built once for this test binary.
static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
const PASS: &str = "correct horse battery staple";
const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// An akex-mode protocol with the same X25519 keys: rotation announcements
/// travel as control records, which only akex mode has.
const AKEX_XX: &str = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256";

fn cmd() -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("AKEX_PASSPHRASE", PASS)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    c
}

/// Every output seen, for the secret grep.
fn run(log: &mut String, args: &[&str]) -> Output {
    let out = cmd().args(args).output().expect("run akex");
    log.push_str(&String::from_utf8_lossy(&out.stdout));
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    out
}

fn ok(log: &mut String, args: &[&str]) -> serde_json::Value {
    let out = run(log, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap_or("null")).unwrap_or(serde_json::Value::Null)
}

fn fail(log: &mut String, args: &[&str]) -> String {
    let out = run(log, args);
    assert!(!out.status.success(), "{args:?} should fail: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn serve(args: &[&str]) -> Listener {
    let mut c = cmd();
    c.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--timeout",
        "5",
    ]);
    if !args.contains(&"--protocol") {
        c.args(["--protocol", XX]);
    }
    start_listener(c.args(args))
}

fn finish(server: Listener) -> (bool, String) {
    server.finish()
}

/// `serve` without `--once`, for tests that stop it themselves.
fn spawn_serve(args: &[&str]) -> Listener {
    spawn_serve_with(XX, args)
}

fn spawn_serve_with(protocol: &str, args: &[&str]) -> Listener {
    let mut c = cmd();
    c.args(["serve", "--listen", "127.0.0.1:0", "--timeout", "5"]);
    c.args(["--protocol", protocol]);
    start_listener(c.args(args))
}

fn stop(server: Listener) -> String {
    server.stop()
}

/// Generates `name` in `store`, pins it as `as_name` in `peer_store`.
fn generate_and_pin(log: &mut String, store: &Path, name: &str, peer_store: &Path, as_name: &str) {
    ok(
        log,
        &[
            "keys",
            "--store",
            s(store),
            "generate",
            "--name",
            name,
            "--json",
        ],
    );
    pin_key(log, store, name, peer_store, as_name);
}

/// Pins `store`'s key `name` as `as_name` in `peer_store` (`keys show
/// --json`, then `keys trust --from`).
fn pin_key(log: &mut String, store: &Path, name: &str, peer_store: &Path, as_name: &str) {
    let show = run(
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
    assert!(show.status.success());
    let file = store.join(format!("{name}.pub.json"));
    std::fs::write(&file, &show.stdout).unwrap();
    ok(
        log,
        &[
            "keys",
            "--store",
            s(peer_store),
            "trust",
            "--name",
            as_name,
            "--from",
            s(&file),
            "--json",
        ],
    );
}

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
fn passphrase_is_required_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let mut log = String::new();
    ok(
        &mut log,
        &["keys", "--store", s(&st), "generate", "--name", "k"],
    );
    // No env var and no terminal: a clear error, not a hang.
    let out = cmd()
        .env_remove("AKEX_PASSPHRASE")
        .args(["keys", "--store", s(&st), "generate", "--name", "k2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AKEX_PASSPHRASE"), "{err}");
    // Wrong passphrase when loading for a handshake.
    let out = cmd()
        .env("AKEX_PASSPHRASE", "wrong")
        .args(["connect", "--addr", "127.0.0.1:9", "--protocol", XX])
        .args(["--store", s(&st), "--key", "k"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("wrong passphrase"), "{text}");
    // There is no passphrase argument.
    fail(
        &mut log,
        &[
            "keys",
            "--store",
            s(&st),
            "generate",
            "--name",
            "x",
            "--passphrase",
            "p",
        ],
    );
}

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

/// A connection held open with the library (akex mode): sends `payload`,
/// expects the echo. A rotation announcement never comes out as a message:
/// it is a control record.
struct LiveClient {
    rt: tokio::runtime::Runtime,
    messages: akex::transport::SecureFramed<tokio::net::TcpStream>,
    remote: Vec<u8>,
}

impl LiveClient {
    fn open(addr: &str) -> Self {
        use akex::crypto::OsRng;
        use akex::keys::StaticSecret;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let stream = rt.block_on(async {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let keys = akex::HandshakeKeys::new().static_key(StaticSecret::generate(&mut OsRng));
            let handshake = akex::handshake::registry::initiator(AKEX_XX, &keys).unwrap();
            akex::transport::connect(tcp, handshake, &Default::default())
                .await
                .unwrap()
        });
        let remote = stream
            .session_info()
            .remote_static
            .clone()
            .unwrap()
            .to_vec();
        LiveClient {
            rt,
            messages: stream.into_messages(),
            remote,
        }
    }

    fn echo(&mut self, payload: &[u8]) {
        use futures_util::{SinkExt, StreamExt};
        let messages = &mut self.messages;
        self.rt.block_on(async {
            messages
                .send(bytes::Bytes::copy_from_slice(payload))
                .await
                .unwrap();
            let echo = messages.next().await.unwrap().unwrap();
            assert_eq!(&echo[..], payload);
        });
    }
}

fn pin_ids(log: &mut String, store: &Path) -> Vec<String> {
    let list = ok(log, &["keys", "--store", s(store), "list", "--json"]);
    list["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn rotation_over_the_cli_keeps_clients_working() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    let cli = dir.path().join("cli");
    let mut log = String::new();
    generate_and_pin(&mut log, &srv, "server", &cli, "server");
    let old_id = pin_ids(&mut log, &cli)[0].clone();
    ok(
        &mut log,
        &["keys", "--store", s(&cli), "generate", "--name", "client"],
    );
    let connect = |log: &mut String, addr: &str| {
        run(
            log,
            &[
                "connect",
                "--addr",
                addr,
                "--protocol",
                AKEX_XX,
                "--store",
                s(&cli),
                "--key",
                "client",
                "--trust",
                "pinned",
                "--peer",
                "server",
                "--messages",
                "2",
            ],
        )
    };

    // v1 serves; the client that pinned v1 connects, and a second client
    // holds a connection open.
    let v1 = spawn_serve_with(AKEX_XX, &["--store", s(&srv), "--key", "server"]);
    let out = connect(&mut log, &v1.addr);
    assert!(out.status.success(), "{out:?}");
    let mut live = LiveClient::open(&v1.addr);
    live.echo(b"before the rotation");

    // Rotate while the connection is open: it keeps working.
    let v = ok(
        &mut log,
        &[
            "keys",
            "--store",
            s(&srv),
            "rotate",
            "--name",
            "server",
            "--overlap",
            "600",
            "--json",
        ],
    );
    let statement = v["statement_file"].as_str().unwrap().to_string();
    let new_id = v["new"]["id"].as_str().unwrap().to_string();
    let new_public = v["new"]["public"].as_str().unwrap().to_string();
    live.echo(b"after the rotation");
    // The old key still works during the overlap window.
    let out = connect(&mut log, &v1.addr);
    assert!(out.status.success(), "{out:?}");

    // The restarted server uses v2 and announces the rotation: the client
    // reconnects with no manual step and now pins v2.
    let v2 = spawn_serve_with(AKEX_XX, &["--store", s(&srv), "--key", "server"]);
    let out = connect(&mut log, &v2.addr);
    assert!(out.status.success(), "{out:?}");
    let line: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["remote_key"], new_public.as_str());
    assert!(String::from_utf8_lossy(&out.stderr).contains("accepted the peer's key rotation"));
    let pins = pin_ids(&mut log, &cli);
    assert!(pins.contains(&new_id), "{pins:?}");
    let list = ok(&mut log, &["keys", "--store", s(&cli), "list", "--json"]);
    let pin = |id: &str| {
        list["pins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(pin(&new_id)["rotated_from"], old_id.as_str());
    assert_eq!(pin(&old_id)["rotated_to"], new_id.as_str());
    assert!(pin(&old_id)["valid_until"].is_u64());
    // Again, now that v2 is pinned (the announcement is skipped).
    let out = connect(&mut log, &v2.addr);
    assert!(out.status.success(), "{out:?}");
    // A new library connection to v2 works too (the announcement never
    // reaches its plain echo), and the old one still does.
    let mut live2 = LiveClient::open(&v2.addr);
    assert_eq!(akex::keys::key_id(&live2.remote), new_id);
    live2.echo(b"to v2");
    live.echo(b"still on v1");
    assert_eq!(akex::keys::key_id(&live.remote), old_id);
    drop(live);
    drop(live2);
    stop(v1);
    stop(v2);

    // A tampered statement is refused by `keys trust --statement`.
    let text = std::fs::read_to_string(&statement).unwrap();
    let tampered = dir.path().join("tampered.json");
    std::fs::write(
        &tampered,
        text.replace("\"overlap_until\": ", "\"overlap_until\": 1"),
    )
    .unwrap();
    let err = fail(
        &mut log,
        &[
            "keys",
            "--store",
            s(&cli),
            "trust",
            "--statement",
            s(&tampered),
        ],
    );
    assert!(err.contains("invalid rotation statement"), "{err}");

    let audit = ok(&mut log, &["keys", "--store", s(&cli), "audit", "--json"]);
    let _ = audit;
    let out = run(&mut log, &["keys", "--store", s(&cli), "audit"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("rotation from {old_id} accepted"))
    );
    let list = ok(&mut log, &["keys", "--store", s(&srv), "list", "--json"]);
    let statuses: Vec<_> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].clone())
        .collect();
    assert_eq!(statuses, ["retired", "active"]);
    ok(&mut log, &["keys", "--store", s(&srv), "audit", "--verify"]);
    ok(&mut log, &["keys", "--store", s(&cli), "audit", "--verify"]);
}

/// A server that holds the rotated key but announces a forged statement
/// (or none): a client that pinned only the old key refuses it and its trust
/// store does not change.
#[test]
fn forged_rotation_announcement_is_refused() {
    use akex::keys::{encode_rotation_announcement, KeyStore, Passphrase, RotationStatement};
    use akex::session::ControlType;
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    let cli = dir.path().join("cli");
    let mut log = String::new();
    generate_and_pin(&mut log, &srv, "server", &cli, "server");
    ok(
        &mut log,
        &["keys", "--store", s(&cli), "generate", "--name", "client"],
    );
    let v = ok(
        &mut log,
        &[
            "keys",
            "--store",
            s(&srv),
            "rotate",
            "--name",
            "server",
            "--json",
        ],
    );
    let statement: RotationStatement = serde_json::from_value(v["statement"].clone()).unwrap();
    let store = KeyStore::open(&srv).unwrap();
    let passphrase = Passphrase::new(PASS.into());
    let v2 = store
        .load("server", Some(&passphrase))
        .unwrap()
        .static_secret()
        .unwrap();

    let mut forged = statement.clone();
    forged.overlap_until += 1_000_000;
    let mut no_old_sig = statement.clone();
    no_old_sig.old_signature = statement.new_signature.clone();
    let cases: Vec<(Option<Vec<u8>>, &str)> = vec![
        (
            Some(encode_rotation_announcement(&[forged]).unwrap()),
            "invalid rotation statement",
        ),
        (
            Some(encode_rotation_announcement(&[no_old_sig]).unwrap()),
            "invalid rotation statement",
        ),
        // Not an announcement at all: the key is simply not pinned.
        (Some(b"not json".to_vec()), "not pinned"),
        (None, "not pinned"),
    ];
    let before = std::fs::read(cli.join("trust.json")).unwrap();
    for (announcement, expected) in cases {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let key = v2.clone();
        let server = rt.spawn(async move {
            use futures_util::{SinkExt, StreamExt};
            let (tcp, _) = listener.accept().await.unwrap();
            let keys = akex::HandshakeKeys::new().static_key(key);
            // The announcement rides in the server's first handshake
            // message, where `serve` puts it, and again as a control record.
            let config = akex::ServerConfig::new(&[AKEX_XX], keys)
                .unwrap()
                .with_handshake_payloads(announcement.iter().cloned().collect())
                .unwrap();
            let acceptor = akex::transport::Acceptor::new(std::sync::Arc::new(config));
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let mut messages = stream.into_messages();
            if let Some(a) = announcement {
                let _ = messages
                    .send_control(ControlType::RotationAnnouncement, &a)
                    .await;
            }
            // Counts what the client sends: nothing, to a key it does not trust.
            let mut received = 0;
            while let Some(Ok(m)) = messages.next().await {
                received += 1;
                if messages.send(m.freeze()).await.is_err() {
                    break;
                }
            }
            assert_eq!(received, 0, "the client sent data to an untrusted server");
        });
        let err = fail(
            &mut log,
            &[
                "connect",
                "--addr",
                &addr,
                "--protocol",
                AKEX_XX,
                "--store",
                s(&cli),
                "--key",
                "client",
                "--trust",
                "pinned",
                "--peer",
                "server",
                "--timeout",
                "2",
            ],
        );
        assert!(err.contains(expected), "{expected}: {err}");
        rt.block_on(server).unwrap();
    }
    assert_eq!(std::fs::read(cli.join("trust.json")).unwrap(), before);
    ok(&mut log, &["keys", "--store", s(&cli), "audit", "--verify"]);
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

/// Extracts the private keys (X25519 scalars, Ed25519 seeds, ML-KEM seeds)
/// of every plaintext PKCS#8 key file.
fn plaintext_secrets(stores: &[&Path]) -> Vec<Vec<u8>> {
    use base64::Engine;
    let mut secrets = Vec::new();
    for store in stores {
        let Ok(dir) = std::fs::read_dir(store.join("keys")) else {
            continue;
        };
        for entry in dir.filter_map(|e| e.ok()) {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for block in text.split("-----BEGIN PRIVATE KEY-----\n").skip(1) {
                let body: String = block
                    .lines()
                    .take_while(|l| !l.starts_with("-----"))
                    .collect();
                let der = base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap();
                let n = der.len();
                // ML-KEM: [0] IMPLICIT OCTET STRING of the 64-byte seed;
                // X25519/Ed25519: an OCTET STRING of 32 bytes.
                if n >= 66 && der[n - 66..n - 64] == [0x80, 0x40] {
                    secrets.push(der[n - 64..].to_vec());
                } else {
                    assert_eq!(der[n - 34..n - 32], [0x04, 0x20]);
                    secrets.push(der[n - 32..].to_vec());
                }
            }
        }
    }
    secrets
}

/// Fails if any private key byte string appears, in hex or base64, in the
/// outputs or in the store's non-key files.
fn secret_grep(stores: &[&Path], log: &str) {
    use base64::Engine;
    let mut haystack = log.to_string();
    for store in stores {
        for name in ["store.json", "trust.json", "audit.jsonl", "audit.head"] {
            haystack.push_str(&std::fs::read_to_string(store.join(name)).unwrap_or_default());
        }
    }
    for secret in plaintext_secrets(stores) {
        for needle in [
            hex::encode(&secret),
            hex::encode_upper(&secret),
            base64::engine::general_purpose::STANDARD.encode(&secret),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&secret),
        ] {
            assert!(
                !haystack.contains(&needle),
                "a private key leaked: {needle}"
            );
        }
    }
    assert!(!haystack.contains(PASS), "the passphrase leaked");
}

#[test]
fn no_private_key_appears_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    let cli = dir.path().join("cli");
    let mut log = String::new();
    // Plaintext keys so the test can read the private bytes it greps for.
    for (st, name) in [(&srv, "server"), (&cli, "client")] {
        for ty in ["x25519", "ed25519", "mlkem768"] {
            let n = format!("{name}-{ty}");
            ok(
                &mut log,
                &[
                    "keys",
                    "--store",
                    s(st),
                    "generate",
                    "--name",
                    &n,
                    "--type",
                    ty,
                    "--insecure-plaintext",
                    "--json",
                ],
            );
            ok(
                &mut log,
                &["keys", "--store", s(st), "show", "--name", &n, "--json"],
            );
            run(&mut log, &["keys", "--store", s(st), "show", "--name", &n]);
        }
    }
    // Per store: x25519 and mlkem768 keys with their signing keys, and
    // the ed25519 key (its own signing key).
    assert_eq!(plaintext_secrets(&[&srv, &cli]).len(), 10);
    pin_key(&mut log, &srv, "server-x25519", &cli, "server");
    let server = serve(&[
        "--store",
        s(&srv),
        "--key",
        "server-x25519",
        "--trust",
        "tofu",
    ]);
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
            "client-x25519",
            "--trust",
            "pinned",
            "--peer",
            "server",
        ],
    );
    let (ok_server, slog) = finish(server);
    log.push_str(&slog);
    assert!(ok_server, "{slog}");
    // Failures too.
    let server = serve(&[
        "--store",
        s(&srv),
        "--key",
        "server-x25519",
        "--trust",
        "pinned",
    ]);
    run(
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
            "client-x25519",
        ],
    );
    log.push_str(&finish(server).1);
    ok(
        &mut log,
        &[
            "keys",
            "--store",
            s(&srv),
            "rotate",
            "--name",
            "server-ed25519",
            "--insecure-plaintext",
            "--json",
        ],
    );
    run(
        &mut log,
        &[
            "keys",
            "--store",
            s(&srv),
            "rotate",
            "--name",
            "server-x25519",
            "--insecure-plaintext",
        ],
    );
    ok(&mut log, &["keys", "--store", s(&srv), "list", "--json"]);
    run(&mut log, &["keys", "--store", s(&srv), "list"]);
    run(&mut log, &["keys", "--store", s(&srv), "audit"]);
    ok(&mut log, &["keys", "--store", s(&srv), "audit", "--json"]);
    run(
        &mut log,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--protocol",
            "Noise_XX_bogus",
            "--store",
            s(&srv),
            "--key",
            "server-mlkem768",
        ],
    );
    run(
        &mut log,
        &[
            "connect",
            "--addr",
            "127.0.0.1:9",
            "--protocol",
            XX,
            "--store",
            s(&srv),
            "--key",
            "server-ed25519",
        ],
    );
    assert!(log.contains("handshake ok"), "{log}");
    secret_grep(&[&srv, &cli], &log);
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

#[test]
fn passphrase_from_a_file_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let pass_file = dir.path().join("pass");
    std::fs::write(&pass_file, format!("{PASS}\n")).unwrap();
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, "not it\n").unwrap();
    // bash opens the file as fd 3 and execs akex with it.
    let bash_fd = |args: &str, file: &Path| {
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(format!(
                "exec \"$AKEX\" {args} --passphrase-fd 3 3<\"$PASSFILE\""
            ))
            .env("AKEX", &*AKEX)
            .env("PASSFILE", file)
            .env("AKEX_SCRYPT_LOG_N", "4")
            .env_remove("AKEX_PASSPHRASE")
            .env_remove("XDG_DATA_HOME")
            .stdin(Stdio::null());
        c
    };
    let akex_fd = |args: &str, file: &Path| {
        let out = bash_fd(args, file).output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stdout).contains(PASS));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(PASS));
        out
    };
    let st = s(&store);
    let out = akex_fd(
        &format!("keys --store '{st}' generate --name fd"),
        &pass_file,
    );
    assert!(out.status.success(), "{out:?}");
    // The key is encrypted with the passphrase read from fd 3: the env var
    // opens it, a wrong passphrase on the fd does not.
    let mut log = String::new();
    ok(
        &mut log,
        &[
            "keys",
            "--store",
            st,
            "rotate",
            "--name",
            "fd",
            "--overlap",
            "1",
        ],
    );
    let out = akex_fd(
        &format!("keys --store '{st}' rotate --name fd"),
        &wrong_file,
    );
    assert!(!out.status.success(), "{out:?}");
    let out = akex_fd(&format!("keys --store '{st}' rotate --name fd"), &pass_file);
    assert!(out.status.success(), "{out:?}");
    // A pipe works as well as a file.
    let out = Command::new("bash")
        .arg("-c")
        .arg("exec \"$AKEX\" keys --store \"$STORE\" rotate --name fd --passphrase-fd 3 3< <(printf '%s\\n' \"$PASS\")")
        .env("AKEX", &*AKEX)
        .env("STORE", st)
        .env("PASS", PASS)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("AKEX_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // serve/connect take it too.
    let mut child = bash_fd(
        &format!("serve --listen 127.0.0.1:0 --protocol {XX} --store '{st}' --key fd"),
        &pass_file,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().ok();
    child.wait().ok();
    assert!(line.contains("listening on"), "{line}");
    let out = akex_fd(
        &format!("serve --listen 127.0.0.1:0 --protocol {XX} --store '{st}' --key fd --once"),
        &wrong_file,
    );
    assert!(!out.status.success());
    // Without the env var or a descriptor, and no terminal: a clear error.
    let out = cmd()
        .env_remove("AKEX_PASSPHRASE")
        .args(["keys", "--store", st, "rotate", "--name", "fd"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--passphrase-fd"));
    // A descriptor that is not open is an error naming it.
    let out = cmd()
        .env_remove("AKEX_PASSPHRASE")
        .args([
            "keys",
            "--store",
            st,
            "rotate",
            "--name",
            "fd",
            "--passphrase-fd",
            "9",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--passphrase-fd 9"),
        "{out:?}"
    );
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
