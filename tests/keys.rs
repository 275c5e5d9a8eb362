//! The key store, trust store, rotation and audit log at the library level,
//! on real files in temporary directories.

use std::path::Path;

use akex::error::{KeyStoreError, TrustFailure};
use akex::keys::{
    key_id, now_unix, AuditLog, KeyStatus, KeyStore, KeyType, Passphrase, Protection,
    RotationStatement, TrustPolicy, TrustStore,
};
use akex::Error;

fn pass(p: &str) -> Passphrase {
    Passphrase::new(p.into())
}

fn prot(p: &str) -> Protection {
    // A tiny scrypt work factor keeps the tests fast; the default is 18.
    Protection::Passphrase {
        passphrase: Passphrase::new(p.into()),
        log_n: 2,
    }
}

fn store_err(e: Error) -> KeyStoreError {
    match e {
        Error::KeyStore(k) => k,
        other => panic!("expected a key store error, got {other:?}"),
    }
}

fn trust_err(e: Error) -> TrustFailure {
    match e {
        Error::PeerNotTrusted(t) => t,
        other => panic!("expected a trust failure, got {other:?}"),
    }
}

fn b64d(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
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
/// through `check_key` and through the in-handshake verifier alike.
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

fn audit_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn broken_line(log: &AuditLog) -> usize {
    match store_err(log.verify().unwrap_err()) {
        KeyStoreError::AuditBroken { line, .. } => line,
        other => panic!("{other:?}"),
    }
}

#[test]
fn audit_log_detects_edit_removal_reordering_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let p = prot("pw");
    for name in ["a", "b", "c"] {
        store.generate(name, KeyType::X25519, &p, None).unwrap();
    }
    let loaded = store.load("a", p.passphrase_ref()).unwrap();
    store.record_load(loaded.entry()).unwrap();
    store.revoke("b", "test").unwrap();
    store.destroy("c", p.passphrase_ref()).unwrap();
    let log = store.audit().clone();
    let records = log.verify().unwrap();
    let events: Vec<_> = records.iter().map(|r| r.event.event.as_str()).collect();
    assert_eq!(
        events,
        ["generate", "generate", "generate", "load", "revoke", "destroy"]
    );
    let path = log.path().to_path_buf();
    let original = audit_lines(&path);

    // Edit line 2.
    let mut edited = original.clone();
    edited[1] = edited[1].replace("\"b\"", "\"x\"");
    assert_ne!(edited, original);
    write_lines(&path, &edited);
    assert_eq!(broken_line(&log), 2);
    let msg = log.verify().unwrap_err().to_string();
    assert!(msg.contains("line 2"), "{msg}");

    // Remove line 3.
    let mut removed = original.clone();
    removed.remove(2);
    write_lines(&path, &removed);
    assert_eq!(broken_line(&log), 3);

    // Swap lines 4 and 5.
    let mut reordered = original.clone();
    reordered.swap(3, 4);
    write_lines(&path, &reordered);
    assert_eq!(broken_line(&log), 4);

    // Drop the last line, or edit it.
    write_lines(&path, &original[..original.len() - 1]);
    assert!(log.verify().is_err());
    let mut last = original.clone();
    let n = last.len() - 1;
    last[n] = last[n].replace("destroy", "generate");
    write_lines(&path, &last);
    assert_eq!(broken_line(&log), 6);

    // A broken log is not extended.
    assert!(store.generate("d", KeyType::X25519, &p, None).is_err());
    assert!(store.find("d").is_none());
    write_lines(&path, &original);
    log.verify().unwrap();
}

#[test]
fn trust_store_edits_outside_akex_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let mut trust = TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
    trust
        .pin("peer", KeyType::X25519, &[5u8; 32], None, None)
        .unwrap();
    TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
    // Someone pins their own key by editing the file.
    let text = std::fs::read_to_string(store.trust_path()).unwrap();
    let forged = text.replace(
        &akex::keys::encode_public_key(&[5u8; 32]),
        &akex::keys::encode_public_key(&[6u8; 32]),
    );
    std::fs::write(store.trust_path(), &forged).unwrap();
    let err = TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap_err();
    assert!(matches!(store_err(err), KeyStoreError::Corrupt { .. }));
    assert_eq!(std::fs::read_to_string(store.trust_path()).unwrap(), forged);
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

#[test]
fn rotation_statement_is_accepted_by_a_peer_that_pinned_the_old_key() {
    let server_dir = tempfile::tempdir().unwrap();
    let client_dir = tempfile::tempdir().unwrap();
    let p = prot("pw");
    let mut server = KeyStore::open(server_dir.path()).unwrap();
    let old = server.generate("srv", KeyType::X25519, &p, None).unwrap();

    let client = KeyStore::open(client_dir.path()).unwrap();
    let mut trust = TrustStore::open_audited(client.trust_path(), client.audit().clone()).unwrap();
    trust
        .pin(
            "server",
            KeyType::X25519,
            &old.public_bytes(),
            Some(&b64d(&old.signing_public)),
            None,
        )
        .unwrap();

    let (new, statement) = server.rotate("srv", &p, 3600).unwrap();
    assert_ne!(new.id, old.id);
    assert_eq!(new.replaces.as_deref(), Some(old.id.as_str()));
    statement.verify().unwrap();
    let file = server_dir
        .path()
        .join("rotations")
        .join(format!("{}.json", old.id));
    let from_file: RotationStatement =
        serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(from_file, statement);
    // The server now loads the new key under the same name; the old one is retired.
    let loaded = server.load("srv", p.passphrase_ref()).unwrap();
    assert_eq!(loaded.entry().id, new.id);
    assert_eq!(server.find_id(&old.id).unwrap().status, KeyStatus::Retired);

    // Tampered statements are rejected.
    let mut forged = statement.clone();
    forged.new_public = akex::keys::encode_public_key(&[8u8; 32]);
    forged.new_id = key_id(&[8u8; 32]);
    assert!(matches!(
        store_err(trust.accept_rotation(&forged, now_unix()).unwrap_err()),
        KeyStoreError::InvalidStatement(_)
    ));
    let mut late = statement.clone();
    late.overlap_until += 1_000_000;
    assert!(late.verify().is_err());

    let now = now_unix();
    let pin = trust.accept_rotation(&statement, now).unwrap();
    assert_eq!(pin.name, "server");
    assert_eq!(pin.rotated_from.as_deref(), Some(old.id.as_str()));
    // Idempotent.
    trust.accept_rotation(&statement, now).unwrap();

    let reopened = TrustStore::open_audited(client.trust_path(), client.audit().clone()).unwrap();
    let mut policy = TrustPolicy::Pinned(reopened);
    policy.check(&new.public_bytes(), now).unwrap();
    policy.check(&old.public_bytes(), now).unwrap();
    assert!(matches!(
        trust_err(
            policy
                .check(&old.public_bytes(), statement.overlap_until)
                .unwrap_err()
        ),
        TrustFailure::Expired { .. }
    ));
    policy
        .check(&new.public_bytes(), statement.overlap_until)
        .unwrap();
    let events: Vec<_> = client
        .audit()
        .verify()
        .unwrap()
        .into_iter()
        .map(|r| r.event.detail.unwrap_or_default())
        .collect();
    assert!(
        events.iter().any(|d| d.contains("rotation from")),
        "{events:?}"
    );

    // A peer that pinned the old key without its signing key refuses.
    let other = tempfile::tempdir().unwrap();
    let mut bare = TrustStore::open(other.path().join("trust.json")).unwrap();
    bare.pin("server", KeyType::X25519, &old.public_bytes(), None, None)
        .unwrap();
    assert!(bare.accept_rotation(&statement, now).is_err());
    // And one that never pinned it refuses too.
    let mut empty = TrustStore::open(other.path().join("t2.json")).unwrap();
    assert!(empty.accept_rotation(&statement, now).is_err());
}

#[test]
fn rotation_chains_are_announced_and_accepted_in_the_overlap_window() {
    use akex::keys::{decode_rotation_announcement, encode_rotation_announcement};
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path().join("srv")).unwrap();
    let p = prot("pw");
    let v1 = store.generate("srv", KeyType::X25519, &p, None).unwrap();
    assert!(store.rotation_chain(&v1.id).unwrap().is_empty());
    let (v2, _) = store.rotate("srv", &p, 600).unwrap();
    let (v3, _) = store.rotate("srv", &p, 600).unwrap();
    let chain = store.rotation_chain(&v3.id).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].old_id, v1.id);
    assert_eq!(chain[1].new_id, v3.id);
    // The payload of a rotation-announcement control record.
    let payload = encode_rotation_announcement(&chain).unwrap();
    assert_eq!(decode_rotation_announcement(&payload).unwrap(), chain);
    assert!(decode_rotation_announcement(b"echo data").is_err());
    assert!(decode_rotation_announcement(b"[]").is_err());

    let now = now_unix();
    let pin_v1 = |name: &str| {
        let mut t = TrustStore::open(dir.path().join(name)).unwrap();
        t.pin(
            "srv",
            KeyType::X25519,
            &v1.public_bytes(),
            Some(&b64d(&v1.signing_public)),
            None,
        )
        .unwrap();
        t
    };
    // The presented key must be the chain's last key.
    let mut t = pin_v1("a.json");
    let err = store_err(
        t.accept_rotation_chain(&chain, &v2.public_bytes(), None, now)
            .unwrap_err(),
    );
    assert!(matches!(err, KeyStoreError::InvalidStatement(_)), "{err}");
    // Unlinked statements are refused.
    let reversed: Vec<RotationStatement> = chain.iter().rev().cloned().collect();
    assert!(t
        .accept_rotation_chain(&reversed, &v3.public_bytes(), None, now)
        .is_err());
    // After the overlap window, no automatic acceptance.
    assert!(t
        .accept_rotation_chain(&chain, &v3.public_bytes(), None, now + 601)
        .is_err());
    assert_eq!(t.pins().len(), 1);
    // In the window, v1 -> v2 -> v3 is accepted and v3 passes the policy.
    let pin = t
        .accept_rotation_chain(&chain, &v3.public_bytes(), Some("srv"), now)
        .unwrap();
    assert_eq!(pin.id, v3.id);
    assert_eq!(pin.rotated_from.as_deref(), Some(v2.id.as_str()));
    let mut policy = TrustPolicy::Pinned(TrustStore::open(dir.path().join("a.json")).unwrap());
    policy.check(&v3.public_bytes(), now).unwrap();
    // A peer that pinned nothing of the chain gets nothing.
    let mut empty = TrustStore::open(dir.path().join("b.json")).unwrap();
    assert!(empty
        .accept_rotation_chain(&chain, &v3.public_bytes(), None, now)
        .is_err());
    assert!(empty.pins().is_empty());
}

#[test]
fn handshake_uses_are_logged_as_rate_limited_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::new(dir.path().join("audit.jsonl"));
    let t0 = 1_000_000;
    let mut written = 0;
    for i in 0..100u64 {
        // 100 uses over 99 seconds, two keys.
        written += log.record_use("k1", Some("one"), t0 + i, 60).unwrap() as usize;
        written += log.record_use("k2", None, t0 + i, 60).unwrap() as usize;
    }
    let records = log.verify().unwrap();
    let uses: Vec<_> = records.iter().filter(|r| r.event.event == "use").collect();
    assert_eq!(uses.len(), written);
    // At t0 (count 1) and at t0+60 (the 60 uses since), per key.
    assert_eq!(uses.len(), 4);
    let k1: Vec<_> = uses
        .iter()
        .filter(|r| r.event.key_id.as_deref() == Some("k1"))
        .map(|r| r.event.detail.clone().unwrap())
        .collect();
    assert_eq!(
        k1,
        [
            format!("count=1 since={t0}"),
            format!("count=60 since={t0}")
        ]
    );
}
