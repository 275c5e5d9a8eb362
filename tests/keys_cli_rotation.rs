//! Key rotation over the `akex` command line: clients keep working across
//! a rotation (open connections, the overlap window, the in-band
//! announcement), and forged or missing announcements are refused.

mod keys_cli_support;
mod support;

use std::path::Path;

use keys_cli_support::*;

/// An akex-mode protocol with the same X25519 keys: rotation announcements
/// travel as control records, which only akex mode has.
const AKEX_XX: &str = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256";

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

/// Over UDP too: a restarted `serve --udp` announces the rotation in its
/// first handshake message and a pinned client accepts it, for hybrid XX
/// (a large first message) and for SIGMA, whose small first message gives
/// the announcement too little amplification budget: the server asks for
/// a cookie first, and the handshake still completes.
#[test]
fn rotations_are_announced_over_udp() {
    let logs = rotation_is_accepted(AKEX_XX, "x25519", true);
    assert!(logs.contains("transport=udp"), "{logs}");
    let logs = rotation_is_accepted(SIGMA, "ed25519", true);
    // The per-second summary names the answer held by the 3x limit.
    assert!(logs.contains("held by the 3x limit 1"), "{logs}");
}

/// Noise XX carries the announcement in message 2 too (over TCP, where
/// Noise mode has no control records): a pinned client accepts it.
#[test]
fn noise_xx_servers_announce_rotations_in_the_handshake() {
    rotation_is_accepted("Noise_XX_25519_ChaChaPoly_BLAKE2s", "x25519", false);
}

const SIGMA: &str = "akex-sigma-x25519-ed25519-chachapoly-sha256";

/// Rotates the server's key, serves the new one (`--udp` if `udp`) and
/// connects a client that pinned the old key: it must accept the announced
/// rotation and pin the new key. Returns the server's log.
fn rotation_is_accepted(protocol: &str, key_type: &str, udp: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (srv, cli) = (dir.path().join("srv"), dir.path().join("cli"));
    let mut log = String::new();
    for (store, name) in [(&srv, "server"), (&cli, "client")] {
        let args = ["keys", "--store", s(store), "generate", "--name", name];
        ok(&mut log, &[&args[..], &["--type", key_type]].concat());
    }
    pin_key(&mut log, &srv, "server", &cli, "server");
    let rotate = ["rotate", "--name", "server", "--overlap", "600", "--json"];
    let v = ok(
        &mut log,
        &[&["keys", "--store", s(&srv)], &rotate[..]].concat(),
    );
    let new_id = v["new"]["id"].as_str().unwrap().to_string();
    let transport: &[&str] = if udp { &["--udp"] } else { &[] };
    let serve_args = ["--store", s(&srv), "--key", "server", "--log-interval", "1"];
    let server = spawn_serve_with(protocol, &[transport, &serve_args[..]].concat());
    let connect_args = [
        "connect",
        "--addr",
        &server.addr,
        "--protocol",
        protocol,
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
    ];
    let out = run(&mut log, &[&connect_args[..], transport].concat());
    // Let the server print its per-second summary before it stops.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let logs = stop(server);
    assert!(out.status.success(), "{protocol}: {out:?}\n{log}\n{logs}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("accepted the peer's key rotation"),
        "{stderr}"
    );
    assert!(pin_ids(&mut log, &cli).contains(&new_id), "{protocol}");
    logs
}
