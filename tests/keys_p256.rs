//! ECDSA P-256 identities in the key store (the FIPS-algorithm SIGMA
//! suite's keys in software): PKCS#8 files OpenSSL reads, rotation
//! statements signed with ECDSA, and `serve`/`connect` with them.

mod support;

use std::process::{Command, Stdio};

use akex::keys::{
    now_unix, KeyStore, KeyType, Passphrase, Protection, SignatureScheme, TrustStore,
};

fn protection() -> Protection {
    Protection::Passphrase {
        passphrase: Passphrase::new("p256 pass".into()),
        log_n: 4,
    }
}

fn b64d(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[test]
fn p256_keys_are_stored_loaded_and_rotated_with_ecdsa_statements() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path().join("s")).unwrap();
    let pass = Passphrase::new("p256 pass".into());
    let entry = store
        .generate("srv", KeyType::P256, &protection(), None)
        .unwrap();
    assert_eq!(entry.public, entry.signing_public);
    assert_eq!(b64d(&entry.public).len(), 65);
    let loaded = store.load("srv", Some(&pass)).unwrap();
    let signer = loaded.signer().unwrap();
    assert_eq!(signer.scheme(), SignatureScheme::EcdsaP256Sha256);
    assert_eq!(signer.public_key(), &b64d(&entry.public)[..]);
    let sig = signer.sign(b"m").unwrap();
    SignatureScheme::EcdsaP256Sha256
        .verify(signer.public_key(), b"m", &sig)
        .unwrap();
    assert!(loaded.ed25519().is_err());
    assert_eq!(loaded.p256().unwrap().public(), signer.public_key());

    // A peer pinned the key with its signing key; the statement moves it.
    let mut trust = TrustStore::open(dir.path().join("peer.json")).unwrap();
    let public = b64d(&entry.public);
    trust
        .pin("srv", KeyType::P256, &public, Some(&public), None)
        .unwrap();
    let (new, statement) = store.rotate("srv", &protection(), 60).unwrap();
    statement.verify().unwrap();
    let mut forged = statement.clone();
    forged.new_signature = forged.old_signature.clone();
    assert!(forged
        .verify()
        .unwrap_err()
        .to_string()
        .contains("signature does not verify"));
    let pin = trust.accept_rotation(&statement, now_unix()).unwrap();
    assert_eq!(pin.public, new.public);
    assert_eq!(
        store.load("srv", Some(&pass)).unwrap().entry().id,
        new.id,
        "the new key loads"
    );
}

#[test]
fn openssl_reads_p256_key_files() {
    let Ok(version) = Command::new("openssl").arg("version").output() else {
        println!("SKIPPED: openssl is not installed");
        return;
    };
    println!("using {}", String::from_utf8_lossy(&version.stdout).trim());
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let entry = store
        .generate("p", KeyType::P256, &protection(), None)
        .unwrap();
    let out = Command::new("openssl")
        .args([
            "pkey",
            "-pubout",
            "-outform",
            "DER",
            "-passin",
            "pass:p256 pass",
            "-in",
        ])
        .arg(dir.path().join(entry.file()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The SubjectPublicKeyInfo ends with the uncompressed point.
    assert!(out.stdout.ends_with(&b64d(&entry.public)));
}

static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
const P256: &str = "akex-sigma-p256-ecdsa-aesgcm-sha256";

fn akex() -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("AKEX_PASSPHRASE", "p256 pass")
        .env("AKEX_SCRYPT_LOG_N", "4")
        .stdin(Stdio::null());
    c
}

fn stdout_of(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", support::describe("akex", &out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn serve_and_connect_run_the_p256_suite_with_store_and_file_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let s = store.to_str().unwrap();
    stdout_of(akex().args([
        "keys", "--store", s, "generate", "--name", "srv", "--type", "p256",
    ]));
    let show = stdout_of(akex().args(["keys", "--store", s, "show", "--name", "srv", "--json"]));
    let srv_pub = serde_json::from_str::<serde_json::Value>(&show).unwrap()["public"]
        .as_str()
        .unwrap()
        .to_string();
    // The client: a one-line key file from `akex keygen --type p256`.
    let key_file = dir.path().join("client.key");
    let cli_pub = stdout_of(
        akex()
            .args(["keygen", "--type", "p256", "--output"])
            .arg(&key_file),
    );
    let again = stdout_of(
        akex()
            .args(["pubkey", "--type", "p256", "--identity"])
            .arg(&key_file),
    );
    assert_eq!(cli_pub, again);
    let server = support::start_listener(akex().args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--protocol",
        P256,
        "--store",
        s,
        "--key",
        "srv",
        "--remote-key",
        cli_pub.trim(),
    ]));
    let out = stdout_of(
        akex()
            .args([
                "connect",
                "--addr",
                &server.addr,
                "--protocol",
                P256,
                "--messages",
                "2",
            ])
            .args(["--remote-key", &srv_pub, "--identity"])
            .arg(&key_file),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["remote_key"], srv_pub.as_str());
    let (ok, log) = server.finish();
    assert!(ok, "{log}");
    // An Ed25519 store key for the P-256 suite is refused with a reason.
    stdout_of(akex().args([
        "keys", "--store", s, "generate", "--name", "ed", "--type", "ed25519",
    ]));
    let out = akex()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--protocol",
            P256,
            "--store",
            s,
        ])
        .args(["--key", "ed"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SIGMA on P-256 needs a p256 identity"),
        "{err}"
    );
}
