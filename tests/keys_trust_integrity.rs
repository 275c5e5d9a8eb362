//! The audited trust store against changes made outside akex: a forged pin
//! on a fresh store (no trust change logged yet) or on a used one, a
//! removed revocation, a rolled-back copy, a deleted log; a running policy
//! fails closed on each; an interrupted write is not mistaken for one;
//! revocations still go ahead and record the edit; changes that add trust
//! wait for a sound log.

use std::path::Path;

use akex::error::KeyStoreError;
use akex::keys::{
    encode_public_key, key_id, now_unix, KeyStore, KeyType, Passphrase, Protection, TrustPolicy,
    TrustStore,
};
use akex::Error;

fn prot() -> Protection {
    Protection::Passphrase {
        passphrase: Passphrase::new("pw".into()),
        log_n: 2,
    }
}

/// The store's own trust file, as embedders open it.
fn audited(store: &KeyStore) -> Result<TrustStore, Error> {
    store.trust_store()
}

fn corrupt_reason(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::KeyStore(KeyStoreError::Corrupt { path, reason })) => {
            assert!(path.ends_with("trust.json"), "{path}");
            reason
        }
        other => panic!("expected the trust store reported as corrupted, got {other:?}"),
    }
}

/// A trust file as someone would write it by hand: akex's format, a pin
/// for `key` named `name`, and no audit line.
fn forged(name: &str, key: &[u8; 32]) -> String {
    serde_json::json!({
        "pins": [{
            "name": name, "id": key_id(key), "type": "x25519",
            "public": encode_public_key(key), "added": now_unix(),
        }],
        "revocations": [],
    })
    .to_string()
}

fn last_line(store: &KeyStore) -> serde_json::Value {
    let text = std::fs::read_to_string(store.audit().path()).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn a_forged_pin_on_a_fresh_store_is_reported_and_not_trusted() {
    let evil = [0xEE; 32];
    let dir = tempfile::tempdir().unwrap();
    // A store that never logged anything, and one whose log has key events
    // but no trust change yet.
    let fresh = KeyStore::open(dir.path().join("fresh")).unwrap();
    let mut used = KeyStore::open(dir.path().join("used")).unwrap();
    used.generate("me", KeyType::X25519, &prot(), None).unwrap();
    for store in [&fresh, &used] {
        std::fs::write(store.trust_path(), forged("server", &evil)).unwrap();
        let reason = corrupt_reason(audited(store));
        assert!(reason.contains("never recorded"), "{reason}");
        // Nothing was written, and a revocation still opens it.
        assert_eq!(
            std::fs::read_to_string(store.trust_path()).unwrap(),
            forged("server", &evil)
        );
        TrustStore::open_for_revocation(store.trust_path(), store.audit().clone()).unwrap();
    }
    // A file that grants nothing is harmless and accepted.
    std::fs::write(fresh.trust_path(), r#"{"pins":[],"revocations":[]}"#).unwrap();
    assert!(audited(&fresh).unwrap().pins().is_empty());
    // Removing the forged file restores the fresh store; a legitimate first
    // pin then works, survives a reopen and passes the policy.
    std::fs::remove_file(used.trust_path()).unwrap();
    let mut trust = audited(&used).unwrap();
    let good = [0x11; 32];
    trust
        .pin("server", KeyType::X25519, &good, None, None)
        .unwrap();
    let mut policy = TrustPolicy::Pinned(audited(&used).unwrap());
    policy
        .check_peer(&good, Some("server"), now_unix())
        .unwrap();
    assert!(policy
        .check_peer(&evil, Some("server"), now_unix())
        .is_err());
    used.audit().verify().unwrap();
}

#[test]
fn edits_rollbacks_and_a_deleted_log_are_reported_and_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let path = store.trust_path();
    let (a, b) = ([1u8; 32], [2u8; 32]);
    let now = now_unix();
    let mut trust = audited(&store).unwrap();
    trust.pin("a", KeyType::X25519, &a, None, None).unwrap();
    let v1 = std::fs::read(&path).unwrap();
    trust.pin("b", KeyType::X25519, &b, None, None).unwrap();
    trust.revoke(&key_id(&a), "stolen", now).unwrap();
    let v3 = std::fs::read(&path).unwrap();
    // Each change is logged with the hash of what it wrote.
    let line = last_line(&store);
    assert_eq!(line["event"], "revoke");
    assert_eq!(line["trust_file"], "trust.json");
    assert_eq!(line["trust_sha256"].as_str().unwrap().len(), 64);

    let mut policy = TrustPolicy::Pinned(audited(&store).unwrap());
    policy.check(&b, now).unwrap();
    assert!(policy.check(&a, now).is_err());
    // Someone deletes the revocation of A: reported, and a running policy
    // fails every check, the revoked key's and the good key's alike.
    let text = String::from_utf8(v3.clone()).unwrap();
    let unrevoked = {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["revocations"] = serde_json::json!([]);
        v.to_string()
    };
    std::fs::write(&path, &unrevoked).unwrap();
    corrupt_reason(audited(&store));
    assert!(policy.check(&a, now).is_err());
    corrupt_reason(policy.check(&b, now));
    // Put back, it works again.
    std::fs::write(&path, &v3).unwrap();
    policy.check(&b, now).unwrap();
    // A rolled-back copy (before B and the revocation).
    std::fs::write(&path, &v1).unwrap();
    let reason = corrupt_reason(audited(&store));
    assert!(reason.contains("older version"), "{reason}");
    corrupt_reason(policy.check(&a, now));
    std::fs::write(&path, &v3).unwrap();
    policy.check(&b, now).unwrap();
    // Deleting the log and its head is detected from the trust file alone.
    std::fs::remove_file(store.audit().path()).unwrap();
    std::fs::remove_file(dir.path().join("audit.head")).unwrap();
    let reason = corrupt_reason(audited(&store));
    assert!(reason.contains("lacks its line"), "{reason}");
}

#[test]
fn an_interrupted_trust_write_is_not_taken_for_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let head = dir.path().join("audit.head");
    let mut trust = audited(&store).unwrap();
    trust
        .pin("a", KeyType::X25519, &[1; 32], None, None)
        .unwrap();
    let head_before = std::fs::read(&head).unwrap();
    let log_before = std::fs::read_to_string(store.audit().path()).unwrap();
    trust
        .pin("c", KeyType::X25519, &[3; 32], None, None)
        .unwrap();
    // A crash after the rename of trust.json, before the append.
    std::fs::write(store.audit().path(), &log_before).unwrap();
    std::fs::write(&head, &head_before).unwrap();
    let mut policy = TrustPolicy::Pinned(audited(&store).unwrap());
    policy.check(&[3; 32], now_unix()).unwrap();
    let report = store.audit_report().unwrap();
    assert!(report.broken.is_none() && !report.interrupted.is_empty());
    // The next locked write appends the committed line once.
    audited(&store)
        .unwrap()
        .pin("d", KeyType::X25519, &[4; 32], None, None)
        .unwrap();
    let records = store.audit().verify().unwrap();
    let trusts = records.iter().filter(|r| r.event.event == "trust").count();
    assert_eq!(trusts, 3);
}

#[test]
fn a_revocation_on_an_edited_trust_store_goes_ahead_and_records_the_edit() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let path = store.trust_path();
    let mut trust = audited(&store).unwrap();
    let good = [1u8; 32];
    trust
        .pin("peer", KeyType::X25519, &good, None, None)
        .unwrap();
    // A pin added by hand, keeping the old audit line.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let extra: serde_json::Value = serde_json::from_str(&forged("evil", &[0xEE; 32])).unwrap();
    v["pins"]
        .as_array_mut()
        .unwrap()
        .push(extra["pins"][0].clone());
    std::fs::write(&path, v.to_string()).unwrap();
    corrupt_reason(audited(&store));
    // An audited store refuses to build on it, even when opened before the
    // edit: the check is repeated under the lock.
    assert!(trust
        .pin("other", KeyType::X25519, &[2; 32], None, None)
        .is_err());
    // A revocation is never blocked, and its line says what it found.
    let mut revoker = TrustStore::open_for_revocation(&path, store.audit().clone()).unwrap();
    revoker
        .revoke_name("peer", &[], "retired host", now_unix())
        .unwrap();
    let line = last_line(&store);
    assert_eq!(line["event"], "revoke");
    let detail = line["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("retired host; the trust file had been changed outside akex"),
        "{detail}"
    );
    store.audit().verify().unwrap();
    let mut policy = TrustPolicy::Pinned(audited(&store).unwrap());
    assert!(policy.check(&good, now_unix()).is_err());
}

fn damage_first_line(log: &Path) {
    let text = std::fs::read_to_string(log)
        .unwrap()
        .replacen("generate", "gEnerate", 1);
    std::fs::write(log, text).unwrap();
}

#[test]
fn changes_that_add_trust_wait_for_a_sound_log_and_revocations_do_not() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut server = KeyStore::open(dir.path().join("srv")).unwrap();
    let old = server
        .generate("srv", KeyType::X25519, &prot(), None)
        .unwrap();
    let (_, statement) = server.rotate("srv", &prot(), 600).unwrap();
    let mut client = KeyStore::open(dir.path().join("cli")).unwrap();
    client
        .generate("me", KeyType::X25519, &prot(), None)
        .unwrap();
    let mut trust = audited(&client).unwrap();
    let signing = b64(&old.signing_public);
    trust
        .pin(
            "srv",
            KeyType::X25519,
            &old.public_bytes(),
            Some(&signing),
            None,
        )
        .unwrap();
    trust
        .pin("gone", KeyType::X25519, &[9; 32], None, None)
        .unwrap();
    damage_first_line(client.audit().path());
    let broken = |r: Result<(), Error>| {
        assert!(
            matches!(r, Err(Error::KeyStore(KeyStoreError::AuditBroken { .. }))),
            "{r:?}"
        );
    };
    let now = now_unix();
    broken(
        trust
            .pin("new", KeyType::X25519, &[5; 32], None, None)
            .map(drop),
    );
    broken(trust.accept_rotation(&statement, now).map(drop));
    let mut tofu = TrustPolicy::Tofu(audited(&client).unwrap());
    broken(tofu.check(&[6; 32], now));
    broken(
        client
            .generate("k2", KeyType::X25519, &prot(), None)
            .map(drop),
    );
    broken(client.rotate("me", &prot(), 60).map(drop));
    let names: Vec<String> = audited(&client)
        .unwrap()
        .pins()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(names, ["srv", "gone"]);
    // Removing trust works: untrust, revoke, and our own key's revocation.
    let mut revoker =
        TrustStore::open_for_revocation(client.trust_path(), client.audit().clone()).unwrap();
    revoker.unpin("gone").unwrap();
    revoker.revoke_name("srv", &[], "log damaged", now).unwrap();
    client.revoke("me", "log damaged").unwrap();
    let mut policy = TrustPolicy::Pinned(audited(&client).unwrap());
    assert!(policy.check(&old.public_bytes(), now).is_err());
}

/// The limit the document states: the chain has no key, so someone who can
/// read the log can write a trust file together with a well-formed next
/// line, and it passes for an interrupted write.
#[test]
fn a_forger_who_reads_the_log_passes_for_an_interrupted_write() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    audited(&store)
        .unwrap()
        .pin("a", KeyType::X25519, &[1; 32], None, None)
        .unwrap();
    let log = std::fs::read_to_string(store.audit().path()).unwrap();
    let last = log.lines().last().unwrap();
    let evil = [0xEE; 32];
    // The pins exactly as akex serializes them, and their hash.
    let data = format!(
        r#"{{"pins":[{{"name":"evil","id":"{}","type":"x25519","public":"{}","added":1}}],"revocations":[]}}"#,
        key_id(&evil),
        encode_public_key(&evil)
    );
    let line = serde_json::json!({
        "seq": 2, "time": 1, "event": "trust", "name": "evil",
        "trust_sha256": hex::encode(Sha256::digest(data.as_bytes())),
        "trust_file": "trust.json",
        "prev": hex::encode(Sha256::digest(last.as_bytes())),
    })
    .to_string();
    let mut file: serde_json::Value = serde_json::from_str(&data).unwrap();
    file["audit"] = serde_json::json!({ "seq": 2, "line": line });
    std::fs::write(store.trust_path(), file.to_string()).unwrap();
    let mut policy = TrustPolicy::Pinned(audited(&store).unwrap());
    policy.check_peer(&evil, Some("evil"), now_unix()).unwrap();
    assert!(!store.audit_report().unwrap().interrupted.is_empty());
}

/// A state file whose audit commit claims line 0 (no such line) is damage
/// to report, never a panic, and revocations still go ahead.
#[test]
fn a_commit_claiming_line_zero_is_reported_and_revocation_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store
        .generate("me", KeyType::X25519, &prot(), None)
        .unwrap();
    let peer = [5u8; 32];
    audited(&store)
        .unwrap()
        .pin("peer", KeyType::X25519, &peer, None, None)
        .unwrap();
    for file in [store.trust_path(), dir.path().join("store.json")] {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        v["audit"]["seq"] = 0.into();
        std::fs::write(&file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
    let report = store.audit_report();
    assert!(
        report.as_ref().map_or(true, |r| r.broken.is_some()),
        "{report:?}"
    );
    assert!(audited(&store).is_err());
    let mut trust =
        TrustStore::open_for_revocation(store.trust_path(), store.audit().clone()).unwrap();
    trust.revoke(&key_id(&peer), "stolen", now_unix()).unwrap();
    assert!(trust.revocation(&key_id(&peer)).is_some());
    let mut store = KeyStore::open(dir.path()).unwrap();
    store.revoke("me", "stolen").unwrap();
}

/// A revocation deleted from trust.json by hand, or lost to a rolled-back
/// copy, comes back when the next change rewrites the file: the audit log
/// remembers it, and the rewritten file is then sound again.
#[test]
fn a_removed_revocation_is_put_back_by_the_next_change() {
    let (c1, c2, c3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let mut trust = audited(&store).unwrap();
    for (name, key) in [("c1", &c1), ("c2", &c2), ("c3", &c3)] {
        trust.pin(name, KeyType::X25519, key, None, None).unwrap();
    }
    let before = std::fs::read(store.trust_path()).unwrap();
    trust.revoke_name("c2", &[], "stolen", now_unix()).unwrap();
    // Deleted by hand: reported.
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.trust_path()).unwrap()).unwrap();
    v["revocations"] = serde_json::json!([]);
    std::fs::write(store.trust_path(), serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    corrupt_reason(audited(&store));
    // The next revocation rewrites the file: c2's revocation is back.
    let revoke = |name: &str| {
        let mut t =
            TrustStore::open_for_revocation(store.trust_path(), store.audit().clone()).unwrap();
        t.revoke_name(name, &[], "retired", now_unix()).unwrap();
    };
    revoke("c1");
    let trust = audited(&store).unwrap();
    assert!(trust.revocation(&key_id(&c2)).is_some());
    assert!(trust.revocation(&key_id(&c1)).is_some());
    let mut policy = TrustPolicy::Pinned(audited(&store).unwrap());
    assert!(policy.check(&c2, now_unix()).is_err());
    assert!(last_line(&store)["detail"]
        .as_str()
        .unwrap()
        .contains("1 logged revocation(s) put back"));

    // A rolled-back copy from before any revocation: the same.
    std::fs::write(store.trust_path(), &before).unwrap();
    corrupt_reason(audited(&store));
    revoke("c3");
    let trust = audited(&store).unwrap();
    for key in [&c1, &c2, &c3] {
        assert!(trust.revocation(&key_id(key)).is_some());
    }
    assert!(store.audit_report().unwrap().broken.is_none());
}

/// The log names a `--trust-store` file by its absolute path: two files of
/// one name in different directories are audited apart, and a copy moved
/// to another directory under the same name is refused.
#[test]
fn trust_files_of_one_name_in_two_directories_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("store")).unwrap();
    let open = |p: &Path| TrustStore::open_audited(p, store.audit().clone());
    let (prod, staging) = (
        dir.path().join("prod/peers.json"),
        dir.path().join("staging/peers.json"),
    );
    for sub in ["prod", "staging", "other"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    open(&prod)
        .unwrap()
        .pin("a", KeyType::X25519, &[1; 32], None, None)
        .unwrap();
    open(&staging)
        .unwrap()
        .pin("b", KeyType::X25519, &[2; 32], None, None)
        .unwrap();
    assert_eq!(open(&prod).unwrap().pins().len(), 1);
    assert_eq!(open(&staging).unwrap().pins().len(), 1);
    // A file named trust.json outside the store is not the store's.
    let elsewhere = dir.path().join("other/trust.json");
    open(&elsewhere)
        .unwrap()
        .pin("c", KeyType::X25519, &[3; 32], None, None)
        .unwrap();
    assert_eq!(open(&elsewhere).unwrap().pins().len(), 1);
    assert!(audited(&store).unwrap().pins().is_empty());
    // A copy in another directory, same name: not that file.
    let copy = dir.path().join("copy/peers.json");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(&prod, &copy).unwrap();
    assert!(open(&copy).is_err());
}

/// A trust file's directory is not created: a mistyped `--trust-store`
/// path fails at the first change instead of starting an empty trust
/// store somewhere new. The key store's own directory is still made.
#[test]
fn a_trust_file_in_a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("store")).unwrap();
    let missing = dir.path().join("no/such/dir/peers.json");
    for result in [
        TrustStore::open_audited(&missing, store.audit().clone())
            .unwrap()
            .pin("a", KeyType::X25519, &[1; 32], None, None),
        TrustStore::open(&missing)
            .unwrap()
            .pin("a", KeyType::X25519, &[1; 32], None, None),
    ] {
        let err = result.unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
    assert!(!dir.path().join("no").exists());
    store
        .trust_store()
        .unwrap()
        .pin("b", KeyType::X25519, &[2; 32], None, None)
        .unwrap();
}
