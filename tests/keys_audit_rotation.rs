//! The key store's audit log, trust-store integrity, rotation statements
//! and chains, and rate-limited use records at the library level, on real
//! files in temporary directories.

mod keys_support;

use std::path::Path;

use akex::error::{KeyStoreError, TrustFailure};
use akex::keys::{
    key_id, now_unix, AuditLog, KeyStatus, KeyStore, KeyType, RotationStatement, TrustPolicy,
    TrustStore,
};
use keys_support::{prot, store_err, trust_err};

fn b64d(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
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
