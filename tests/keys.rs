//! The key store and trust store at the library level, on real files in
//! temporary directories: every key type, passphrases, corrupted files,
//! permissions, plaintext keys, trust policies, TOFU pins, revoked, expired
//! and destroyed keys. The audit log and rotation: tests/keys_audit_rotation.rs.

mod keys_support;

use std::path::Path;

use akex::error::{KeyStoreError, TrustFailure};
use akex::keys::{
    key_id, now_unix, KeyStatus, KeyStore, KeyType, Passphrase, Protection, TrustPolicy, TrustStore,
};
use keys_support::{prot, store_err, trust_err};

fn pass(p: &str) -> Passphrase {
    Passphrase::new(p.into())
}

#[test]
fn round_trip_every_key_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let p = prot("correct horse");
    for (name, ty) in [
        ("a", KeyType::X25519),
        ("b", KeyType::Ed25519),
        ("c", KeyType::Mlkem768),
    ] {
        let entry = store.generate(name, ty, &p, None).unwrap();
        assert_eq!(entry.id, key_id(&entry.public_bytes()));
        assert_eq!(entry.id.len(), 32);
        assert_eq!(entry.status, KeyStatus::Active);
        // Reopen from disk.
        let reopened = KeyStore::open(dir.path()).unwrap();
        let loaded = reopened.load(name, p.passphrase_ref()).unwrap();
        assert_eq!(loaded.entry(), &entry);
    }
    let store = KeyStore::open(dir.path()).unwrap();
    let x = store
        .load("a", p.passphrase_ref())
        .unwrap()
        .static_secret()
        .unwrap();
    assert_eq!(x.public().to_vec(), store.find("a").unwrap().public_bytes());
    let err = store
        .load("b", p.passphrase_ref())
        .unwrap()
        .static_secret()
        .unwrap_err();
    assert!(matches!(store_err(err), KeyStoreError::Unsupported(_)));
    assert_eq!(store.find("c").unwrap().public_bytes().len(), 1184);
    // Names are unique among active keys.
    let mut store = store;
    let err = store.generate("a", KeyType::X25519, &p, None).unwrap_err();
    assert!(matches!(store_err(err), KeyStoreError::AlreadyExists(_)));
}

#[test]
fn wrong_or_missing_passphrase_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store
        .generate("k", KeyType::X25519, &prot("right"), None)
        .unwrap();
    let err = store.load("k", Some(&pass("wrong"))).unwrap_err();
    assert!(matches!(store_err(err), KeyStoreError::WrongPassphrase(ref n) if n == "k"));
    let err = store.load("k", None).unwrap_err();
    assert!(matches!(store_err(err), KeyStoreError::NoPassphrase(_)));
    let err = store.load("missing", Some(&pass("right"))).unwrap_err();
    assert!(matches!(store_err(err), KeyStoreError::NotFound(_)));
}

#[test]
fn corrupted_or_truncated_files_are_errors_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let p = prot("pw");
    let entry = store.generate("k", KeyType::X25519, &p, None).unwrap();
    let key_path = dir.path().join(entry.file());
    let original = std::fs::read(&key_path).unwrap();

    // Truncated.
    let truncated = original[..original.len() / 2].to_vec();
    std::fs::write(&key_path, &truncated).unwrap();
    let err = store.load("k", p.passphrase_ref()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(store_err(err), KeyStoreError::Corrupt { .. }),
        "{text}"
    );
    assert!(text.contains("left untouched"), "{text}");
    assert_eq!(std::fs::read(&key_path).unwrap(), truncated);

    // One flipped byte.
    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    std::fs::write(&key_path, &flipped).unwrap();
    assert!(matches!(
        store_err(store.load("k", p.passphrase_ref()).unwrap_err()),
        KeyStoreError::Corrupt { .. }
    ));
    assert_eq!(std::fs::read(&key_path).unwrap(), flipped);

    // Restored, it loads again.
    std::fs::write(&key_path, &original).unwrap();
    store.load("k", p.passphrase_ref()).unwrap();

    // A corrupted index: an error on open, and the file is not rewritten.
    let index = dir.path().join("store.json");
    std::fs::write(&index, b"{\"version\":1,\"keys\":[").unwrap();
    let err = KeyStore::open(dir.path()).unwrap_err();
    assert!(matches!(store_err(err), KeyStoreError::Corrupt { .. }));
    assert_eq!(std::fs::read(&index).unwrap(), b"{\"version\":1,\"keys\":[");

    // A corrupted trust store.
    let trust = dir.path().join("trust.json");
    std::fs::write(&trust, b"not json").unwrap();
    assert!(matches!(
        store_err(TrustStore::open_audited(&trust, store.audit().clone()).unwrap_err()),
        KeyStoreError::Corrupt { .. }
    ));
    assert_eq!(std::fs::read(&trust).unwrap(), b"not json");
    // Unaudited, the store's own trust file is not opened at all.
    let err = TrustStore::open(&trust).unwrap_err().to_string();
    assert!(err.contains("KeyStore::trust_store()"), "{err}");
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut store = KeyStore::open(&root).unwrap();
    let entry = store
        .generate("k", KeyType::X25519, &prot("pw"), None)
        .unwrap();
    let mut trust = TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
    trust
        .pin("peer", KeyType::X25519, &[9u8; 32], None, None)
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for file in [
        root.join(entry.file()),
        root.join("store.json"),
        root.join("trust.json"),
        root.join("audit.jsonl"),
        root.join("audit.head"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&root), 0o700);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .chain(std::fs::read_dir(root.join("keys")).unwrap())
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn plaintext_only_when_asked_and_secrets_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let enc = store
        .generate("enc", KeyType::X25519, &prot("pw"), None)
        .unwrap();
    let plain = store
        .generate(
            "plain",
            KeyType::X25519,
            &Protection::InsecurePlaintext,
            None,
        )
        .unwrap();
    assert!(enc.encrypted && !plain.encrypted);
    assert!(enc.file().ends_with(".pem") && plain.file().ends_with(".pem"));
    let loaded = store.load("plain", None).unwrap();
    let secret = loaded.static_secret().unwrap();
    let private = *secret.private().expose();
    let enc_secret = *store
        .load("enc", Some(&pass("pw")))
        .unwrap()
        .static_secret()
        .unwrap()
        .private()
        .expose();
    let pem = std::fs::read(dir.path().join(enc.file())).unwrap();
    assert!(pem.starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    assert!(!pem.windows(32).any(|w| w == enc_secret));
    let plain_pem = std::fs::read(dir.path().join(plain.file())).unwrap();
    assert!(plain_pem.starts_with(b"-----BEGIN PRIVATE KEY-----\n"));
    for text in [
        format!("{loaded:?}"),
        format!("{:?}", prot("hunter2")),
        format!("{secret:?}"),
    ] {
        assert!(!text.contains(&hex::encode(private)), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        use base64::Engine;
        assert!(!text.contains(&base64::engine::general_purpose::STANDARD.encode(private)));
    }
}

#[test]
fn trust_policy_failures_name_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.json");
    let mut trust = TrustStore::open(&path).unwrap();
    let good = [1u8; 32];
    let expiring = [2u8; 32];
    let revoked = [3u8; 32];
    let unknown = [4u8; 32];
    let now = now_unix();
    trust
        .pin("good", KeyType::X25519, &good, None, None)
        .unwrap();
    trust
        .pin("old", KeyType::X25519, &expiring, None, Some(now + 100))
        .unwrap();
    trust
        .pin("bad", KeyType::X25519, &revoked, None, None)
        .unwrap();
    trust
        .revoke(&key_id(&revoked), "laptop stolen", now)
        .unwrap();

    let mut policy = TrustPolicy::Pinned(TrustStore::open(&path).unwrap());
    policy.check(&good, now).unwrap();
    policy.check(&expiring, now).unwrap();
    assert!(matches!(
        trust_err(policy.check(&expiring, now + 100).unwrap_err()),
        TrustFailure::Expired { ref name, .. } if name == "old"
    ));
    match trust_err(policy.check(&revoked, now).unwrap_err()) {
        TrustFailure::Revoked { key_id: id, reason } => {
            assert_eq!(id, key_id(&revoked));
            assert_eq!(reason, "laptop stolen");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        trust_err(policy.check(&unknown, now).unwrap_err()),
        TrustFailure::Unknown { .. }
    ));
    assert!(matches!(
        trust_err(policy.check_optional(None, now).unwrap_err()),
        TrustFailure::NoRemoteKey
    ));
    let msg = policy.check(&revoked, now).unwrap_err().to_string();
    assert!(
        msg.contains("revoked") && msg.contains("laptop stolen"),
        "{msg}"
    );

    // TOFU: unknown keys are pinned (and saved) on first use; revoked still fail.
    let mut tofu = TrustPolicy::Tofu(TrustStore::open(&path).unwrap());
    tofu.check(&unknown, now).unwrap();
    assert!(tofu.check(&revoked, now).is_err());
    let mut pinned = TrustPolicy::Pinned(TrustStore::open(&path).unwrap());
    pinned.check(&unknown, now).unwrap();
    assert!(TrustStore::open(&path)
        .unwrap()
        .pins()
        .iter()
        .any(|p| p.tofu));

    TrustPolicy::AllowAny.check(&[7u8; 32], now).unwrap();
}

/// TOFU records the key's type: a SIGMA identity pinned on first use is
/// an ed25519 pin (as `keys trust` would pin it), a P-256 one a p256 pin,
/// through `check_key` and through the in-handshake verifier alike; an RSA
/// or FFDH key (no pin type) is refused, not pinned.
#[test]
fn tofu_pins_record_the_key_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.json");
    let now = now_unix();
    let ed = akex::PublicKey::ed25519([5u8; 32]);
    let x = akex::PublicKey::x25519([6u8; 32]);
    let mut tofu = TrustPolicy::Tofu(TrustStore::open(&path).unwrap());
    tofu.check_key(&ed, None, now).unwrap();
    tofu.check_key(&x, None, now).unwrap();
    let signer = akex::keys::P256SigningKey::generate().unwrap();
    let p256_key = akex::PublicKey::from_bytes(akex::KeyKind::P256, signer.public()).unwrap();
    let verifier = TrustPolicy::Tofu(TrustStore::open(&path).unwrap()).verifier(None);
    akex::handshake::PeerVerifier::verify_peer(&verifier, &p256_key, &[]).unwrap();
    let pins = TrustStore::open(&path).unwrap().pins().to_vec();
    let type_of = |key: &akex::PublicKey| {
        pins.iter()
            .find(|p| p.id == key_id(key.as_bytes()))
            .map(|p| (p.key_type, p.tofu))
    };
    assert_eq!(type_of(&ed), Some((KeyType::Ed25519, true)));
    assert_eq!(type_of(&x), Some((KeyType::X25519, true)));
    assert_eq!(type_of(&p256_key), Some((KeyType::P256, true)));

    // The legacy RSA and FFDH keys have no pin type, and bytes of no key's
    // length fit none: never pinned, so never recorded as something they
    // are not, whichever entry point met them.
    let rsa = akex::PublicKey::from_bytes(akex::KeyKind::Rsa, &[0x30; 400]).unwrap();
    let ffdh = akex::PublicKey::from_bytes(akex::KeyKind::Ffdhe3072, &[9u8; 384]).unwrap();
    let unpinnable = |e: akex::Error| {
        assert!(
            matches!(
                e,
                akex::Error::PeerNotTrusted(TrustFailure::Unpinnable { .. })
            ),
            "{e:?}"
        );
    };
    for key in [&rsa, &ffdh] {
        unpinnable(tofu.check_key(key, None, now).unwrap_err());
        unpinnable(tofu.check_peer(key.as_bytes(), None, now).unwrap_err());
        unpinnable(akex::handshake::PeerVerifier::verify_peer(&verifier, key, &[]).unwrap_err());
    }
    unpinnable(tofu.check(&[1u8; 17], now).unwrap_err());
    let after = TrustStore::open(&path).unwrap().pins().to_vec();
    assert_eq!(after.len(), pins.len(), "{after:?}");
}

#[test]
fn revoked_and_expired_keys_refuse_to_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let p = prot("pw");
    let now = now_unix();
    store.generate("r", KeyType::X25519, &p, None).unwrap();
    store
        .generate("e", KeyType::X25519, &p, Some(now + 50))
        .unwrap();
    store.load_at("e", p.passphrase_ref(), now).unwrap();
    assert!(matches!(
        store_err(
            store
                .load_at("e", p.passphrase_ref(), now + 50)
                .unwrap_err()
        ),
        KeyStoreError::Expired(_)
    ));
    store.revoke("r", "compromised").unwrap();
    assert!(matches!(
        store_err(store.load("r", p.passphrase_ref()).unwrap_err()),
        KeyStoreError::Revoked(_)
    ));
    assert_eq!(
        KeyStore::open(dir.path())
            .unwrap()
            .find("r")
            .unwrap()
            .status,
        KeyStatus::Revoked
    );
}

#[test]
fn destroy_removes_the_file_and_the_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let p = prot("pw");
    let entry = store.generate("k", KeyType::Ed25519, &p, None).unwrap();
    let path = dir.path().join(entry.file());
    assert!(path.exists());
    // The passphrase is proven first.
    assert!(matches!(
        store_err(store.destroy("k", Some(&pass("wrong"))).unwrap_err()),
        KeyStoreError::WrongPassphrase(_)
    ));
    assert!(path.exists());
    let destroyed = store.destroy("k", p.passphrase_ref()).unwrap();
    assert_eq!(destroyed.status, KeyStatus::Destroyed);
    assert!(!path.exists());
    assert!(matches!(
        store_err(store.load("k", p.passphrase_ref()).unwrap_err()),
        KeyStoreError::Destroyed(_)
    ));
    let reopened = KeyStore::open(dir.path()).unwrap();
    assert_eq!(reopened.find("k").unwrap().status, KeyStatus::Destroyed);
    assert!(reopened.load("k", p.passphrase_ref()).is_err());
    assert!(store.destroy("k", p.passphrase_ref()).is_err());
    // The public record stays; the name can be reused.
    store.generate("k", KeyType::Ed25519, &p, None).unwrap();
}
