//! Promises of docs/key-management.md that no other test held to their
//! letter: key ids, old index versions, the documented file formats and
//! modes, size caps, the `use` line interval and lock patience, destroy's
//! in-place overwrite, readers that never lock, the trust file's inode and
//! re-reads, the index checks of token entries, and the unaudited trust
//! store's own lock.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use akex::error::{KeyStoreError, TrustFailure};
use akex::keys::{
    key_id, now_unix, AuditLog, KeyStore, KeyType, Passphrase, Protection, TrustPolicy, TrustStore,
    MAX_KEY_FILE_LEN, USE_LINE_INTERVAL, USE_LOCK_PATIENCE,
};
use akex::Error;
use sha2::{Digest, Sha256};

fn prot() -> Protection {
    Protection::Passphrase {
        passphrase: Passphrase::new("pw".into()),
        log_n: 2,
    }
}

fn pass() -> Passphrase {
    Passphrase::new("pw".into())
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn store_err(r: Result<impl std::fmt::Debug, Error>) -> KeyStoreError {
    match r {
        Err(Error::KeyStore(e)) => e,
        other => panic!("expected a key store error, got {other:?}"),
    }
}

/// Holds the store lock, as a writer in another process would.
fn hold_lock(dir: &Path) -> std::fs::File {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("store.lock"))
        .unwrap();
    file.lock().unwrap();
    file
}

/// Runs `f` on a thread; fails if it takes more than `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).expect("it blocked")
}

#[test]
fn key_ids_are_the_first_16_bytes_of_sha256_of_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    for (name, ty) in [
        ("x", KeyType::X25519),
        ("e", KeyType::Ed25519),
        ("p", KeyType::P256),
        ("m", KeyType::Mlkem768),
    ] {
        let entry = store.generate(name, ty, &prot(), None).unwrap();
        let digest = Sha256::digest(entry.public_bytes());
        assert_eq!(entry.id, hex::encode(&digest[..16]), "{ty}");
        assert_eq!(key_id(&entry.public_bytes()), entry.id);
    }
}

#[test]
fn stores_from_before_pkcs8_are_refused_not_migrated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("store.json"), r#"{"version":1,"keys":[]}"#).unwrap();
    let err = store_err(KeyStore::open(dir.path()));
    assert!(matches!(err, KeyStoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("must be re-created"), "{err}");
}

#[test]
fn use_lines_come_at_most_once_a_minute_and_never_wait_long_for_the_lock() {
    assert_eq!(USE_LINE_INTERVAL, 60);
    assert_eq!(USE_LOCK_PATIENCE, Duration::from_millis(250));
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::new(dir.path().join("audit.jsonl"));
    let t0 = 1_000_000;
    assert!(log.record_use("k", None, t0, USE_LINE_INTERVAL).unwrap());
    assert!(!log
        .record_use("k", None, t0 + 59, USE_LINE_INTERVAL)
        .unwrap());
    assert!(log
        .record_use("k", None, t0 + 60, USE_LINE_INTERVAL)
        .unwrap());
    let details: Vec<String> = log
        .verify()
        .unwrap()
        .into_iter()
        .map(|r| r.event.detail.unwrap())
        .collect();
    assert_eq!(
        details,
        [format!("count=1 since={t0}"), format!("count=2 since={t0}")]
    );
    // Another process holds the lock: the use is dropped after the patience.
    let uses = std::fs::read(dir.path().join("audit.uses")).unwrap();
    let lines = std::fs::read(log.path()).unwrap();
    let _held = hold_lock(dir.path());
    let start = Instant::now();
    assert!(!log
        .record_use("k", None, t0 + 600, USE_LINE_INTERVAL)
        .unwrap());
    let waited = start.elapsed();
    assert!(
        waited >= USE_LOCK_PATIENCE && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(std::fs::read(dir.path().join("audit.uses")).unwrap(), uses);
    assert_eq!(std::fs::read(log.path()).unwrap(), lines);
}

#[cfg(unix)]
#[test]
fn destroy_by_id_overwrites_the_bytes_in_place_then_unlinks() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path().join("s")).unwrap();
    let entry = store.generate("k", KeyType::X25519, &prot(), None).unwrap();
    let file = dir.path().join("s").join(entry.file());
    let original = std::fs::read(&file).unwrap();
    // A second name for the same inode shows what happened to its bytes.
    let twin = dir.path().join("twin");
    std::fs::hard_link(&file, &twin).unwrap();
    let done = store.destroy(&entry.id[..12], Some(&pass())).unwrap();
    assert_eq!(done.id, entry.id);
    assert!(!file.exists());
    let after = std::fs::read(&twin).unwrap();
    assert_eq!(after.len(), original.len());
    assert_ne!(after, original);
    assert!(!after
        .windows(16)
        .any(|w| original.windows(16).any(|o| o == w)));
    let events: Vec<String> = store
        .audit()
        .verify()
        .unwrap()
        .into_iter()
        .map(|r| r.event.event)
        .collect();
    assert_eq!(events, ["generate", "destroy"]);
}

#[test]
fn readers_never_take_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mut store = KeyStore::open(&root).unwrap();
    store.generate("k", KeyType::X25519, &prot(), None).unwrap();
    TrustStore::open_audited(store.trust_path(), store.audit().clone())
        .unwrap()
        .pin("peer", KeyType::X25519, &[4; 32], None, None)
        .unwrap();
    let _held = hold_lock(&root);
    within(Duration::from_secs(20), move || {
        let store = KeyStore::open(&root).unwrap();
        store.load("k", Some(&pass())).unwrap();
        store.audit().verify().unwrap();
        assert!(store.audit_report().unwrap().broken.is_none());
        let trust = TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
        let mut policy = TrustPolicy::Pinned(trust);
        policy.check(&[4; 32], now_unix()).unwrap();
    });
}

#[cfg(unix)]
#[test]
fn trust_writes_replace_the_file_and_checks_reread_only_after_a_change() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let audited = || TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
    let mut writer = audited();
    writer
        .pin("a", KeyType::X25519, &[1; 32], None, None)
        .unwrap();
    let mut reader = audited();
    let inode = || std::fs::metadata(store.trust_path()).unwrap().ino();
    let first = inode();
    for _ in 0..3 {
        assert!(!reader.refresh().unwrap(), "re-read an unchanged file");
    }
    writer
        .pin("b", KeyType::X25519, &[2; 32], None, None)
        .unwrap();
    assert_ne!(inode(), first, "a change must be a new file");
    assert!(reader.refresh().unwrap());
    assert_eq!(reader.pins().len(), 2);
    assert!(!reader.refresh().unwrap());
}

#[test]
fn tofu_pins_the_expected_name_and_no_statement_moves_a_tofu_pin() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = KeyStore::open(dir.path().join("srv")).unwrap();
    let old = server
        .generate("srv", KeyType::X25519, &prot(), None)
        .unwrap();
    let client = KeyStore::open(dir.path().join("cli")).unwrap();
    let audited = || TrustStore::open_audited(client.trust_path(), client.audit().clone()).unwrap();
    let now = now_unix();
    let mut tofu = TrustPolicy::Tofu(audited());
    tofu.check_peer(&old.public_bytes(), Some("web"), now)
        .unwrap();
    tofu.check_peer(&[9; 32], None, now).unwrap();
    let pins = audited().pins().to_vec();
    assert_eq!((pins[0].name.as_str(), pins[0].tofu), ("web", true));
    assert_eq!(pins[1].name, format!("tofu-{}", &key_id(&[9; 32])[..16]));
    // A pin made on first use has no signing key: no statement moves it.
    assert!(pins.iter().all(|p| p.signing_public.is_none()));
    let (_, statement) = server.rotate("srv", &prot(), 60).unwrap();
    let err = store_err(audited().accept_rotation(&statement, now));
    assert!(matches!(err, KeyStoreError::InvalidStatement(_)), "{err}");
    assert_eq!(audited().pins().len(), 2);

    // A changed key under a pinned name is refused, not pinned beside the
    // old one (through the in-handshake verifier too); once the name's
    // pins are removed, the new key is a first use again.
    let changed = |e: akex::Error| {
        assert!(
            matches!(&e, akex::Error::PeerNotTrusted(TrustFailure::Changed { name, .. }) if name == "web"),
            "{e:?}"
        );
    };
    changed(tofu.check_peer(&[10; 32], Some("web"), now).unwrap_err());
    let verifier = TrustPolicy::Tofu(audited()).verifier(Some("web"));
    let other = akex::PublicKey::x25519([11; 32]);
    changed(akex::handshake::PeerVerifier::verify_peer(&verifier, &other, &[]).unwrap_err());
    assert_eq!(audited().pins().len(), 2);
    tofu.check_peer(&old.public_bytes(), Some("web"), now)
        .unwrap();
    assert_eq!(audited().unpin("web").unwrap(), 1);
    tofu.check_peer(&[10; 32], Some("web"), now).unwrap();
    let pins = audited().pins().to_vec();
    assert!(pins
        .iter()
        .any(|p| p.name == "web" && p.id == key_id(&[10; 32])));
}

#[test]
fn an_unaudited_trust_store_locks_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peers.json");
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let path = &path;
            s.spawn(move || {
                let mut trust = TrustStore::open(path).unwrap();
                for i in 0..10u8 {
                    let key = [t * 16 + i + 1; 32];
                    trust
                        .pin(&format!("p{t}-{i}"), KeyType::X25519, &key, None, None)
                        .unwrap();
                }
            });
        }
    });
    assert!(dir.path().join("peers.json.lock").exists());
    assert_eq!(TrustStore::open(&path).unwrap().pins().len(), 40);
    assert!(!dir.path().join("store.lock").exists());
}

#[test]
fn the_first_write_into_a_new_store_creates_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    assert!(!dir.path().join("store.json").exists(), "opening writes");
    TrustStore::open_audited(store.trust_path(), store.audit().clone())
        .unwrap()
        .pin("peer", KeyType::X25519, &[1; 32], None, None)
        .unwrap();
    assert_eq!(json(&dir.path().join("store.json"))["version"], 2);
    std::fs::remove_file(dir.path().join("store.json")).unwrap();
    let err = store_err(KeyStore::open(dir.path()));
    assert!(err.to_string().contains("store.json"), "{err}");
}

#[test]
fn token_entries_are_checked_when_the_index_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let plain = Protection::InsecurePlaintext;
    store.generate("e", KeyType::Ed25519, &plain, None).unwrap();
    store.generate("x", KeyType::X25519, &plain, None).unwrap();
    let index = dir.path().join("store.json");
    let original = json(&index);
    let edited = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = original.clone();
        f(&mut v);
        std::fs::write(&index, v.to_string()).unwrap();
    };
    let uri = "pkcs11:token=t;object=k";
    // A token key with a file hash, or of a type tokens cannot hold.
    edited(&|v| v["keys"][0]["pkcs11"] = uri.into());
    assert!(matches!(
        store_err(KeyStore::open(dir.path())),
        KeyStoreError::Corrupt { .. }
    ));
    edited(&|v| {
        v["keys"][1]["pkcs11"] = uri.into();
        v["keys"][1].as_object_mut().unwrap().remove("file_sha256");
    });
    assert!(matches!(
        store_err(KeyStore::open(dir.path())),
        KeyStoreError::Corrupt { .. }
    ));
    // A well-formed one written by hand opens (revocation must stay
    // possible) but is not loaded: it differs from what the audit log
    // recorded. (Loading a real token entry as a file is `InToken`:
    // tests/pkcs11.rs.)
    edited(&|v| {
        v["keys"][0]["pkcs11"] = uri.into();
        v["keys"][0].as_object_mut().unwrap().remove("file_sha256");
    });
    let store = KeyStore::open(dir.path()).unwrap();
    assert!(store.index_damage().is_some());
    assert!(matches!(
        store_err(store.load("e", None)),
        KeyStoreError::Corrupt { .. }
    ));
}

#[test]
fn size_caps_hold_at_their_documented_values() {
    assert_eq!(MAX_KEY_FILE_LEN, 64 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let entry = store.generate("k", KeyType::X25519, &prot(), None).unwrap();
    let key = dir.path().join(entry.file());
    // 64 KiB is read (and fails its hash); one byte more is not read.
    std::fs::write(&key, vec![b'A'; 64 * 1024]).unwrap();
    assert!(matches!(
        store_err(store.load("k", Some(&pass()))),
        KeyStoreError::Corrupt { .. }
    ));
    std::fs::write(&key, vec![b'A'; 64 * 1024 + 1]).unwrap();
    let err = store_err(store.load("k", Some(&pass())));
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::InvalidData),
        "{err}"
    );
    // The index and the trust store: 16 MiB is read, one byte more is not
    // (trailing spaces keep the JSON, and the audit hash, the same).
    TrustStore::open_audited(store.trust_path(), store.audit().clone())
        .unwrap()
        .pin("p", KeyType::X25519, &[1; 32], None, None)
        .unwrap();
    for file in [dir.path().join("store.json"), store.trust_path()] {
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.resize(16 << 20, b' ');
        std::fs::write(&file, &bytes).unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
        bytes.push(b' ');
        std::fs::write(&file, &bytes).unwrap();
        let err = match KeyStore::open(dir.path()) {
            Ok(s) => store_err(TrustStore::open_audited(s.trust_path(), s.audit().clone())),
            Err(e) => store_err(Err::<(), _>(e)),
        };
        assert_eq!(
            err.io_kind(),
            Some(std::io::ErrorKind::InvalidData),
            "{err}"
        );
        bytes.truncate(16 << 20);
        std::fs::write(&file, &bytes).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_in_place_of_a_key_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let entry = store.generate("k", KeyType::X25519, &prot(), None).unwrap();
    let key = dir.path().join(entry.file());
    std::fs::remove_file(&key).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&key).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    let root = dir.path().to_path_buf();
    let err = within(Duration::from_secs(10), move || {
        let store = KeyStore::open(&root).unwrap();
        store_err(store.load("k", Some(&pass())))
    });
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::InvalidInput),
        "{err}"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(unix)]
#[test]
fn state_files_have_the_documented_formats_and_modes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut store = KeyStore::open(&root).unwrap();
    let a = store.generate("a", KeyType::X25519, &prot(), None).unwrap();
    store.generate("b", KeyType::X25519, &prot(), None).unwrap();
    let (a2, _) = store.rotate("a", &prot(), 60).unwrap();
    store.revoke("b", "gone").unwrap();
    let mut trust = TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
    trust
        .pin("peer", KeyType::X25519, &[3; 32], None, None)
        .unwrap();
    trust.unpin("peer").unwrap();
    store
        .audit()
        .record_use(&a2.id, Some("a"), now_unix(), USE_LINE_INTERVAL)
        .unwrap();

    // The log: seq from 1, each line chained to the previous by SHA-256.
    let log = std::fs::read_to_string(root.join("audit.jsonl")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let mut prev = "0".repeat(64);
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seq"], i as u64 + 1);
        assert_eq!(v["prev"], prev.as_str());
        assert!(v["time"].is_u64() && v["event"].is_string(), "{line}");
        prev = sha256_hex(line.as_bytes());
    }
    let head = json(&root.join("audit.head"));
    assert_eq!(head["lines"], lines.len() as u64);
    assert_eq!(head["head"], prev.as_str());
    // The index and the trust store carry their last change's line.
    let index = json(&root.join("store.json"));
    assert_eq!(index["version"], 2);
    let seq = index["audit"]["seq"].as_u64().unwrap() as usize;
    assert_eq!(index["audit"]["line"], lines[seq - 1]);
    let t = json(&root.join("trust.json"));
    assert!(t["pins"].as_array().unwrap().is_empty());
    assert_eq!(t["former"][0]["name"], "peer");
    let seq = t["audit"]["seq"].as_u64().unwrap() as usize;
    assert_eq!(t["audit"]["line"], lines[seq - 1]);
    let untrust: serde_json::Value = serde_json::from_str(lines[seq - 1]).unwrap();
    assert_eq!(untrust["trust_file"], "trust.json");
    // Entries: the fields the document lists, the file name never stored.
    let keys = index["keys"].as_array().unwrap();
    let by_id = |id: &str| keys.iter().find(|k| k["id"] == id).unwrap();
    let old = by_id(&a.id);
    assert_eq!(old["status"], "retired");
    assert_eq!(old["replaced_by"], a2.id.as_str());
    assert!(old["retire_at"].is_u64() && old["status_changed"].is_u64());
    assert_eq!(by_id(&a2.id)["replaces"], a.id.as_str());
    assert_eq!(keys[1]["revoked_reason"], "gone");
    for k in keys {
        for field in ["id", "name", "type", "public", "signing_public", "created"] {
            assert!(!k[field].is_null(), "{field} missing in {k}");
        }
        assert!(k.get("file").is_none());
        assert_eq!(k["encrypted"], true);
        let file = root.join(format!("keys/{}.pem", k["id"].as_str().unwrap()));
        assert_eq!(
            k["file_sha256"],
            sha256_hex(&std::fs::read(&file).unwrap()).as_str()
        );
    }
    let uses = json(&root.join("audit.uses"));
    assert_eq!(uses[&a2.id]["pending"], 0);
    assert!(uses[&a2.id]["last_line"].is_u64());
    // Modes: the directories 0700, every file 0600.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for d in ["", "keys", "rotations"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    let rotation = root.join(format!("rotations/{}.json", a.id));
    for f in ["store.lock", "audit.uses", "audit.head", "trust.json"] {
        assert_eq!(mode(&root.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&rotation), 0o600);
}

/// The DER of every PEM block of a key file.
fn pem_ders(path: &Path) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for block in text.split("-----BEGIN ").skip(1) {
        let (label, rest) = block.split_once("-----\n").unwrap();
        let body: String = rest
            .lines()
            .take_while(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        out.push((label.to_string(), der));
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn key_files_are_pkcs8_with_the_documented_algorithms() {
    // AlgorithmIdentifiers with no parameters: the SEQUENCE holds the OID
    // alone.
    const X25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e];
    const ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
    const MLKEM768: &[u8] = &[
        0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, 0x02,
    ];
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let plain = Protection::InsecurePlaintext;
    for (ty, first) in [
        (KeyType::X25519, X25519),
        (KeyType::Ed25519, ED25519),
        (KeyType::Mlkem768, MLKEM768),
        (KeyType::P256, EC_PUBLIC_KEY),
    ] {
        let entry = store.generate(&ty.to_string(), ty, &plain, None).unwrap();
        let blocks = pem_ders(&dir.path().join(entry.file()));
        let companion = matches!(ty, KeyType::X25519 | KeyType::Mlkem768);
        assert_eq!(blocks.len(), if companion { 2 } else { 1 }, "{ty}");
        assert!(blocks.iter().all(|(l, _)| l == "PRIVATE KEY"), "{ty}");
        let der = &blocks[0].1;
        assert!(contains(der, first), "{ty}: algorithm OID");
        match ty {
            // CurvePrivateKey: an OCTET STRING of 32 bytes inside the
            // privateKey OCTET STRING.
            KeyType::X25519 | KeyType::Ed25519 => {
                assert_eq!(
                    der[der.len() - 36..der.len() - 32],
                    [0x04, 0x22, 0x04, 0x20]
                )
            }
            // The seed form: [0] IMPLICIT OCTET STRING (SIZE (64)).
            KeyType::Mlkem768 => assert_eq!(der[der.len() - 66..der.len() - 64], [0x80, 0x40]),
            _ => {
                assert!(contains(der, PRIME256V1), "the curve's OID");
                // RFC 5915 ECPrivateKey, version 1, a 32-byte scalar.
                assert!(contains(der, &[0x02, 0x01, 0x01, 0x04, 0x20]));
                assert!(contains(der, &entry.public_bytes()), "public key included");
            }
        }
        if companion {
            let ed = &blocks[1].1;
            assert!(contains(ed, ED25519), "{ty}: companion Ed25519 block");
            assert_eq!(ed[ed.len() - 36..ed.len() - 32], [0x04, 0x22, 0x04, 0x20]);
        }
    }
}
