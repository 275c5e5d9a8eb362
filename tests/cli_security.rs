//! The command line's part of docs/security.md: `connect --trust pinned`
//! checks the server's key inside the handshake (a server with a key that
//! is not pinned never receives the client's identity), `connect` puts no
//! data in its first handshake message, and `akex protocols` marks the
//! one-way patterns as not forward secret.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{start_listener, Listener};

static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
const SIGMA: &str = "akex-sigma-x25519-ed25519-chachapoly-sha256";
const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

fn cmd() -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("AKEX_PASSPHRASE", "a passphrase for the test stores")
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    cmd().args(args).output().expect("run akex")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Generates key `name` of `kind` in `store`; returns its public key
/// (base64, as `serve` logs it).
fn generate(store: &Path, name: &str, kind: &str) -> String {
    let out = run(&[
        "keys",
        "--store",
        s(store),
        "generate",
        "--name",
        name,
        "--type",
        kind,
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let show = run(&[
        "keys",
        "--store",
        s(store),
        "show",
        "--name",
        name,
        "--json",
    ]);
    assert!(show.status.success(), "{show:?}");
    std::fs::write(store.join(format!("{name}.pub.json")), &show.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    v["public"].as_str().unwrap().to_string()
}

/// Pins `store`'s key `name` in `peer_store` as `as_name`.
fn pin(store: &Path, name: &str, peer_store: &Path, as_name: &str) {
    let file = store.join(format!("{name}.pub.json"));
    let out = run(&[
        "keys",
        "--store",
        s(peer_store),
        "trust",
        "--name",
        as_name,
        "--from",
        s(&file),
    ]);
    assert!(out.status.success(), "{out:?}");
}

fn serve(protocol: &str, store: &Path) -> Listener {
    let mut c = cmd();
    c.args(["serve", "--listen", "127.0.0.1:0", "--timeout", "5"]);
    c.args([
        "--protocol",
        protocol,
        "--store",
        s(store),
        "--key",
        "server",
    ]);
    start_listener(&mut c)
}

fn connect(addr: &str, protocol: &str, store: &Path) -> Output {
    run(&[
        "connect",
        "--addr",
        addr,
        "--protocol",
        protocol,
        "--store",
        s(store),
        "--key",
        "client",
        "--trust",
        "pinned",
        "--peer",
        "server",
        "--timeout",
        "5",
    ])
}

#[test]
fn pinned_trust_stops_before_the_client_identity_is_sent() {
    for (protocol, kind) in [(SIGMA, "ed25519"), (XX, "x25519")] {
        let dir = tempfile::tempdir().unwrap();
        let (srv, cli, evil) = (
            dir.path().join("srv"),
            dir.path().join("cli"),
            dir.path().join("evil"),
        );
        generate(&srv, "server", kind);
        generate(&evil, "server", kind);
        let client_key = generate(&cli, "client", kind);
        pin(&srv, "server", &cli, "server");

        // A server whose key is not the pinned one: the client stops after
        // message 2, and the server never sees the client's key.
        let impostor = serve(protocol, &evil);
        let out = connect(&impostor.addr, protocol, &cli);
        let log = impostor.stop();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{protocol}: {out:?}");
        let text = format!("{stderr}{}", String::from_utf8_lossy(&out.stdout));
        assert!(text.contains("not pinned"), "{protocol}: {text}");
        assert!(!log.contains("handshake ok"), "{protocol}: {log}");
        assert!(!log.contains(&client_key), "{protocol}: {log}");
        assert!(log.contains("failed"), "{protocol}: {log}");

        // Control: the pinned server gets the client's key, and logs it.
        let real = serve(protocol, &srv);
        let out = connect(&real.addr, protocol, &cli);
        let log = real.stop();
        assert!(out.status.success(), "{protocol}: {out:?}\n{log}");
        assert!(
            log.contains(&format!("remote_key={client_key}")),
            "{protocol}: {log}"
        );
    }
}

#[test]
fn protocols_marks_the_one_way_patterns() {
    let out = run(&["protocols"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} row in\n{text}"))
            .to_string()
    };
    for p in ["Noise_N_", "Noise_K_", "Noise_X_"] {
        assert!(row(p).contains("NO (one-way)"), "{}", row(p));
    }
    for p in ["Noise_NN_", "Noise_XX_", "Noise_IK_", "akex-sigma-x25519"] {
        assert!(!row(p).contains("NO"), "{}", row(p));
    }
    assert!(text.contains("One-way patterns"), "{text}");
    // RSA key transport, when built (the LEGACY step of .ci/run).
    if cfg!(feature = "rsa-kt") {
        let rsa = row("akex-rsa3072-oaep-kt-not-forward-secret");
        assert!(
            rsa.contains(" NO ") && rsa.contains("NOT forward secret"),
            "{rsa}"
        );
    }
}

/// "akex sends empty handshake payloads": the first message of `connect`
/// (Noise IK, where it would be encrypted only to the server's static key)
/// is exactly the pattern's keys and tag, with no payload.
#[test]
fn connect_puts_nothing_in_its_first_message() {
    use std::io::Read;
    let name = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
    let dir = tempfile::tempdir().unwrap();
    let (me, server) = (dir.path().join("me"), dir.path().join("server"));
    let _ = run(&["keygen", "--output", s(&me)]);
    let server_pub = String::from_utf8(run(&["keygen", "--output", s(&server)]).stdout).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut client = cmd()
        .args([
            "connect",
            "--addr",
            &addr,
            "--protocol",
            name,
            "--identity",
            s(&me),
        ])
        .args(["--remote-key", server_pub.trim(), "--timeout", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut tcp, _) = listener.accept().unwrap();
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).unwrap();
    let want = akex::handshake::registry::info(name).unwrap().message_sizes[0];
    assert_eq!(usize::from(u16::from_be_bytes(len)), want);
    drop(tcp);
    let _ = client.wait();
}

/// The legacy rows (RSA key transport, FFDH) have no pin type, so a trust
/// store cannot authenticate their servers: `--trust` and `--trust-store`
/// are refused before anything is sent, saying that `--remote-key` does
/// (no connection is tried: port 9 would refuse it).
#[cfg(any(feature = "rsa-kt", feature = "ffdh"))]
#[test]
fn trust_modes_are_refused_for_the_legacy_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        #[cfg(feature = "rsa-kt")]
        (akex::handshake::rsa::RSA_KT, 398),
        #[cfg(feature = "ffdh")]
        (
            akex::handshake::ffdh::FFDH_NK,
            akex::handshake::ffdh::FFDH_BYTES,
        ),
    ];
    use base64::Engine;
    for (protocol, len) in rows {
        let key = base64::engine::general_purpose::STANDARD.encode(vec![0x30; len]);
        for trust in [
            &["--trust", "tofu"][..],
            &["--trust", "pinned"],
            &["--trust-store", "t.json"],
        ] {
            let out = run(&[
                &[
                    "connect",
                    "--addr",
                    "127.0.0.1:9",
                    "--protocol",
                    protocol,
                    "--remote-key",
                    &key,
                    "--store",
                    s(dir.path()),
                ][..],
                trust,
            ]
            .concat());
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{protocol} {trust:?}: {text}");
            assert!(
                text.contains("--remote-key alone authenticates the server"),
                "{protocol} {trust:?}: {text}"
            );
            assert!(
                !text.contains("refused"),
                "{protocol} {trust:?} connected: {text}"
            );
        }
    }
}
