//! `akex` in akex mode across two processes: SIGMA with Ed25519 key files,
//! a multi-protocol allow-list, refusals, and `akex protocols`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{start_listener, Listener};

/// The `akex` command, built once for this test binary.
static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
const SIGMA: &str = "akex-sigma-x25519-ed25519-chachapoly-sha256";
const SIGMA_GCM: &str = "akex-sigma-x25519-ed25519-aesgcm-sha256";

fn akex(args: &[&str]) -> Output {
    Command::new(&*AKEX).args(args).output().expect("run akex")
}

fn keygen(dir: &Path, name: &str, key_type: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = akex(&[
        "keygen",
        "--type",
        key_type,
        "--output",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(public.len(), 44, "base64 of 32 bytes");
    let again = akex(&[
        "pubkey",
        "--type",
        key_type,
        "--identity",
        path.to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8(again.stdout).unwrap().trim(), public);
    (path, public)
}

fn serve(args: &[&str]) -> Listener {
    start_listener(
        Command::new(&*AKEX)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--once", "--timeout", "5"])
            .args(args),
    )
}

fn finish(server: Listener) -> (bool, String) {
    server.finish()
}

fn connect(addr: &str, args: &[&str]) -> (bool, serde_json::Value) {
    let out = Command::new(&*AKEX)
        .args([
            "connect",
            "--addr",
            addr,
            "--messages",
            "3",
            "--size",
            "100",
            "--timeout",
            "5",
        ])
        .args(args)
        .output()
        .expect("run akex connect");
    let text = String::from_utf8(out.stdout).unwrap();
    let json = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: {text:?} {:?}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), json)
}

#[test]
fn sigma_between_two_processes_with_an_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let (server_key, server_pub) = keygen(dir.path(), "server.key", "ed25519");
    let (client_key, client_pub) = keygen(dir.path(), "client.key", "ed25519");
    for chosen in [SIGMA, SIGMA_GCM] {
        let allow = format!("{SIGMA},{SIGMA_GCM}");
        let server = serve(&[
            "--protocol",
            &allow,
            "--identity",
            server_key.to_str().unwrap(),
            "--remote-key",
            &client_pub,
        ]);
        let (ok, json) = connect(
            &server.addr,
            &[
                "--protocol",
                chosen,
                "--identity",
                client_key.to_str().unwrap(),
                "--remote-key",
                &server_pub,
            ],
        );
        assert!(ok, "{json}");
        assert_eq!(json["protocol"], chosen);
        assert_eq!(json["remote_key"], server_pub.as_str());
        let (ok, log) = finish(server);
        assert!(ok, "{log}");
        assert!(log.contains(&format!("protocol={chosen}")), "{log}");
        assert!(log.contains(&client_pub), "{log}");
    }
}

#[test]
fn protocol_outside_the_allow_list_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (server_key, _) = keygen(dir.path(), "server.key", "ed25519");
    let (client_key, _) = keygen(dir.path(), "client.key", "ed25519");
    let server = serve(&[
        "--protocol",
        SIGMA_GCM,
        "--identity",
        server_key.to_str().unwrap(),
    ]);
    let (ok, json) = connect(
        &server.addr,
        &[
            "--protocol",
            SIGMA,
            "--identity",
            client_key.to_str().unwrap(),
        ],
    );
    assert!(!ok, "{json}");
    let (ok, log) = finish(server);
    assert!(!ok);
    assert!(log.contains("is not allowed"), "{log}");
}

#[test]
fn wrong_pinned_key_fails_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let (server_key, _) = keygen(dir.path(), "server.key", "ed25519");
    let (client_key, client_pub) = keygen(dir.path(), "client.key", "ed25519");
    let server = serve(&[
        "--protocol",
        SIGMA,
        "--identity",
        server_key.to_str().unwrap(),
    ]);
    // The client pins its own key instead of the server's.
    let (ok, json) = connect(
        &server.addr,
        &[
            "--protocol",
            SIGMA,
            "--identity",
            client_key.to_str().unwrap(),
            "--remote-key",
            &client_pub,
        ],
    );
    assert!(!ok);
    assert_eq!(json["kind"], "peer_not_trusted", "{json}");
    let _ = finish(server);
}

#[test]
fn noise_names_cannot_be_mixed_into_an_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "server.key", "ed25519");
    let out = akex(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--protocol",
        &format!("{SIGMA},Noise_NN_25519_ChaChaPoly_BLAKE2s"),
        "--identity",
        key.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("can only be used alone"), "{err}");
    // SIGMA without an identity fails at start-up too.
    let out = akex(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--protocol",
        SIGMA,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("--identity"));
}

#[test]
fn noise_still_works_through_the_registry() {
    let server = serve(&["--protocol", "Noise_NN_25519_ChaChaPoly_BLAKE2s"]);
    let (ok, json) = connect(
        &server.addr,
        &["--protocol", "Noise_NN_25519_ChaChaPoly_BLAKE2s"],
    );
    assert!(ok, "{json}");
    assert!(finish(server).0);
}

/// snow's Noise HFS names between two processes: XXhfs with X25519 key
/// files, the server's key pinned by the client.
#[test]
fn noise_hfs_between_two_processes() {
    const XX_HFS: &str = "Noise_XXhfs_25519+Kyber1024_ChaChaPoly_BLAKE2s";
    let dir = tempfile::tempdir().unwrap();
    let (server_key, server_pub) = keygen(dir.path(), "server.key", "x25519");
    let (client_key, _) = keygen(dir.path(), "client.key", "x25519");
    let server = serve(&[
        "--protocol",
        XX_HFS,
        "--identity",
        server_key.to_str().unwrap(),
    ]);
    let (ok, json) = connect(
        &server.addr,
        &[
            "--protocol",
            XX_HFS,
            "--identity",
            client_key.to_str().unwrap(),
            "--remote-key",
            &server_pub,
        ],
    );
    assert!(ok, "{json}");
    assert_eq!(json["protocol"], XX_HFS);
    let (ok, log) = finish(server);
    assert!(ok, "{log}");
    assert_eq!(json["handshake_hash"], logged_hash(&log), "{log}");
}

#[test]
fn protocols_prints_the_table() {
    let out = akex(&["protocols"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        SIGMA,
        SIGMA_GCM,
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        "forward secrecy",
        "81/192/160",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[test]
fn default_keygen_is_unchanged() {
    // No --type: X25519, and `pubkey` without --type agrees.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let out = akex(&["keygen", "--output", path.to_str().unwrap()]);
    assert!(out.status.success());
    let public = String::from_utf8(out.stdout).unwrap();
    let again = akex(&["pubkey", "--identity", path.to_str().unwrap()]);
    assert_eq!(String::from_utf8(again.stdout).unwrap(), public);
    let ed = akex(&[
        "pubkey",
        "--type",
        "ed25519",
        "--identity",
        path.to_str().unwrap(),
    ]);
    assert_ne!(String::from_utf8(ed.stdout).unwrap(), public);
}

const PQ_XX: &str = "akex-pq-xx-x25519-mlkem768-chachapoly-sha256";
const PQ_IK: &str = "akex-pq-ik-x25519-mlkem768-chachapoly-sha256";
const HYBRID_XX: &str = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256";

/// An X25519 key file and an ML-KEM-768 key file, with the combined public
/// key (X25519 ‖ ML-KEM-768 encapsulation key) that `--remote-key` takes.
fn pq_identity(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    use base64::Engine;
    let (x25519, x25519_pub) = keygen(dir, &format!("{name}.key"), "x25519");
    let kem = dir.join(format!("{name}.kem"));
    let out = akex(&[
        "keygen",
        "--type",
        "mlkem768",
        "--output",
        kem.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let ek = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(b64.decode(&ek).unwrap().len(), 1184);
    let again = akex(&[
        "pubkey",
        "--type",
        "mlkem768",
        "--identity",
        kem.to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8(again.stdout).unwrap().trim(), ek);
    let seed = b64
        .decode(std::fs::read_to_string(&kem).unwrap().trim())
        .unwrap();
    assert_eq!(seed.len(), 64, "the key file is the 64-byte seed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kem).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = akex(&[
        "pubkey",
        "--identity",
        x25519.to_str().unwrap(),
        "--kem-identity",
        kem.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let combined = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let bytes = b64.decode(&combined).unwrap();
    assert_eq!(bytes.len(), 1216);
    assert_eq!(bytes[..32], b64.decode(&x25519_pub).unwrap()[..]);
    assert_eq!(bytes[32..], b64.decode(&ek).unwrap()[..]);
    (x25519, kem, combined)
}

/// The `handshake_hash=` of the server's `handshake ok` line.
fn logged_hash(log: &str) -> &str {
    log.split("handshake_hash=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no handshake hash in {log}"))
}

#[test]
fn mlkem768_keygen_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (_, kem, _) = pq_identity(dir.path(), "a");
    let before = std::fs::read(&kem).unwrap();
    let out = akex(&[
        "keygen",
        "--type",
        "mlkem768",
        "--output",
        kem.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&kem).unwrap(), before);
}

#[test]
fn pq_and_hybrid_between_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (server_key, server_kem, server_pub) = pq_identity(dir.path(), "server");
    let (client_key, client_kem, client_pub) = pq_identity(dir.path(), "client");
    for protocol in [PQ_XX, PQ_IK] {
        let server = serve(&[
            "--protocol",
            protocol,
            "--identity",
            server_key.to_str().unwrap(),
            "--kem-identity",
            server_kem.to_str().unwrap(),
            "--remote-key",
            &client_pub,
        ]);
        let (ok, json) = connect(
            &server.addr,
            &[
                "--protocol",
                protocol,
                "--identity",
                client_key.to_str().unwrap(),
                "--kem-identity",
                client_kem.to_str().unwrap(),
                "--remote-key",
                &server_pub,
            ],
        );
        assert!(ok, "{json}");
        assert_eq!(json["ok"], true);
        assert_eq!(json["protocol"], protocol);
        let (ok, log) = finish(server);
        assert!(ok, "{log}");
        assert!(log.contains(&format!("protocol={protocol}")), "{log}");
        assert_eq!(json["handshake_hash"], logged_hash(&log), "{log}");
    }
    // The hybrid XX: X25519 statics only, ML-KEM-768 ephemeral.
    let (server_x, _) = keygen(dir.path(), "hserver.key", "x25519");
    let (client_x, _) = keygen(dir.path(), "hclient.key", "x25519");
    let server = serve(&[
        "--protocol",
        HYBRID_XX,
        "--identity",
        server_x.to_str().unwrap(),
    ]);
    let (ok, json) = connect(
        &server.addr,
        &[
            "--protocol",
            HYBRID_XX,
            "--identity",
            client_x.to_str().unwrap(),
        ],
    );
    assert!(ok, "{json}");
    assert_eq!(json["ok"], true);
    let (ok, log) = finish(server);
    assert!(ok, "{log}");
    assert_eq!(json["handshake_hash"], logged_hash(&log), "{log}");
}

#[test]
fn pq_ik_client_needs_the_combined_remote_key() {
    let dir = tempfile::tempdir().unwrap();
    let (client_key, client_kem, _) = pq_identity(dir.path(), "client");
    let (_, x25519_only) = keygen(dir.path(), "other.key", "x25519");
    let (ok, json) = connect(
        "127.0.0.1:9",
        &[
            "--protocol",
            PQ_IK,
            "--identity",
            client_key.to_str().unwrap(),
            "--kem-identity",
            client_kem.to_str().unwrap(),
            "--remote-key",
            &x25519_only,
        ],
    );
    assert!(!ok);
    assert!(
        json["error"].as_str().unwrap().contains("1216 bytes"),
        "{json}"
    );
}

#[cfg(feature = "rsa-kt")]
#[test]
fn rsa_key_transport_between_two_processes() {
    const RSA_KT: &str = "akex-rsa3072-oaep-kt-not-forward-secret-chachapoly-sha256";
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rsa.key");
    let out = akex(&[
        "keygen",
        "--type",
        "rsa3072",
        "--output",
        key.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let again = akex(&[
        "pubkey",
        "--type",
        "rsa3072",
        "--identity",
        key.to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8(again.stdout).unwrap().trim(), public);
    let server = serve(&["--protocol", RSA_KT, "--identity", key.to_str().unwrap()]);
    let (ok, json) = connect(
        &server.addr,
        &["--protocol", RSA_KT, "--remote-key", &public],
    );
    assert!(ok, "{json}");
    assert_eq!(json["protocol"], RSA_KT);
    let (ok, log) = finish(server);
    assert!(ok, "{log}");
    assert_eq!(json["handshake_hash"], logged_hash(&log), "{log}");
    let help = akex(&["serve", "--help"]);
    assert!(String::from_utf8(help.stdout)
        .unwrap()
        .contains("NOT forward secret"));
}
