//! Crash recovery and loss detection as docs/key-management.md states them:
//! a destroy cut short is finished by the next locked open, an unreferenced
//! key file is left alone, a decrypted key must match its public record, an
//! inserted audit line is detected, and after a cut log new lines continue
//! the committed numbering so the gap stays visible. Also: the handshake
//! asks a signer for one signature per handshake, and the types that hold
//! secrets zeroize them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use akex::error::KeyStoreError;
use akex::keys::{KeyStatus, KeyStore, KeyType, Passphrase, Protection, Signer, SigningKey};
use akex::Error;

fn prot() -> Protection {
    Protection::Passphrase {
        passphrase: Passphrase::new("pw".into()),
        log_n: 2,
    }
}

fn pass() -> Passphrase {
    Passphrase::new("pw".into())
}

fn index_with(dir: &std::path::Path, f: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("store.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, v.to_string()).unwrap();
}

#[test]
fn a_destroy_cut_short_is_finished_and_stray_key_files_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let a = store.generate("a", KeyType::X25519, &prot(), None).unwrap();
    let b = store.generate("b", KeyType::X25519, &prot(), None).unwrap();
    let a_file = dir.path().join(a.file());
    let b_file = dir.path().join(b.file());
    let a_bytes = std::fs::read(&a_file).unwrap();
    // A destroy committed, then killed before it removed the file: the
    // file is put back after a real destroy. B destroyed too, and a
    // different file put in its place: it no longer has the recorded
    // hash, so it is not touched.
    store.destroy("a", Some(&pass())).unwrap();
    store.destroy("b", Some(&pass())).unwrap();
    std::fs::write(&a_file, &a_bytes).unwrap();
    std::fs::write(&b_file, b"replaced by hand").unwrap();
    // A complete key file that no entry names (a crash between writing it
    // and the index commit).
    let stray = dir.path().join("keys/0123456789abcdef0123456789abcdef.pem");
    std::fs::write(&stray, &a_bytes).unwrap();
    // Readers change nothing.
    let mut store = KeyStore::open(dir.path()).unwrap();
    assert!(a_file.exists());
    assert!(matches!(
        store.load("a", Some(&pass())),
        Err(Error::KeyStore(KeyStoreError::Destroyed(_)))
    ));
    // The next locked change finishes the destroy.
    store.generate("c", KeyType::X25519, &prot(), None).unwrap();
    assert!(!a_file.exists());
    assert_eq!(std::fs::read(&b_file).unwrap(), b"replaced by hand");
    assert!(stray.exists(), "an unreferenced key file is never deleted");
    assert_eq!(store.find("a").unwrap().status, KeyStatus::Destroyed);
}

/// B's file under A's name with B's hash written into A's entry: the edit
/// of store.json is caught before any key is read (the check of the
/// decrypted key against its public record behind it is a unit test:
/// `keys::store::tests::a_decrypted_key_must_match_its_public_record`).
#[test]
fn a_key_file_swapped_with_its_hash_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let a = store.generate("a", KeyType::X25519, &prot(), None).unwrap();
    let b = store.generate("b", KeyType::X25519, &prot(), None).unwrap();
    std::fs::copy(dir.path().join(b.file()), dir.path().join(a.file())).unwrap();
    index_with(dir.path(), |v| {
        v["keys"][0]["file_sha256"] = v["keys"][1]["file_sha256"].clone();
    });
    let store = KeyStore::open(dir.path()).unwrap();
    assert!(store.index_damage().is_some());
    assert!(matches!(
        store.load("a", Some(&pass())),
        Err(Error::KeyStore(KeyStoreError::Corrupt { .. }))
    ));
}

#[test]
fn an_inserted_line_is_detected_and_a_cut_log_keeps_its_gap_visible() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    for name in ["a", "b", "c"] {
        store
            .generate(name, KeyType::X25519, &prot(), None)
            .unwrap();
    }
    let log = dir.path().join("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // A copy of line 2 inserted after it.
    let inserted = [lines[0], lines[1], lines[1], lines[2]].join("\n") + "\n";
    std::fs::write(&log, inserted).unwrap();
    match store.audit().verify() {
        Err(Error::KeyStore(KeyStoreError::AuditBroken { line, .. })) => assert_eq!(line, 3),
        other => panic!("{other:?}"),
    }
    // The log and its head deleted: the next lines continue after the
    // index's committed line 3, so the loss stays visible.
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(dir.path().join("audit.head")).unwrap();
    store.revoke("a", "log lost").unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 4);
    assert_eq!(first["event"], "revoke");
    assert!(store.audit().verify().is_err());
}

/// Removes the last `n` lines of the log at `log`.
fn cut(log: &std::path::Path, n: usize) {
    let text = std::fs::read_to_string(log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(log, lines[..lines.len() - n].join("\n") + "\n").unwrap();
}

/// A last line removed after it was written (the head file counted it)
/// is reported as damage, and put back by the next change with a
/// `recovered` line saying so; the same line missing after a crash
/// before its append (the head not moved yet) is completed without one.
#[test]
fn a_removed_last_line_is_restored_and_the_removal_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store.generate("a", KeyType::X25519, &prot(), None).unwrap();
    let log = dir.path().join("audit.jsonl");
    store.revoke("a", "lost").unwrap();
    let events = |store: &KeyStore| -> Vec<(String, String)> {
        let records = store.audit().verify().unwrap();
        records
            .into_iter()
            .map(|r| (r.event.event, r.event.detail.unwrap_or_default()))
            .collect()
    };

    // Removed after the fact: damage now, restored and logged next change.
    cut(&log, 1);
    let report = store.audit_report().unwrap();
    assert!(report.broken.is_some() && report.restorable, "{report:?}");
    store.generate("b", KeyType::X25519, &prot(), None).unwrap();
    let logged = events(&store);
    let kinds: Vec<&str> = logged.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(kinds, ["generate", "revoke", "recovered", "generate"]);
    assert!(logged[2]
        .1
        .contains("line(s) 2 had been removed after they were written"));

    // A crash before the append leaves the head behind the line: the
    // next change completes it, with no `recovered` line.
    let dir2 = tempfile::tempdir().unwrap();
    let mut fresh = KeyStore::open(dir2.path()).unwrap();
    fresh.generate("a", KeyType::X25519, &prot(), None).unwrap();
    let head2 = std::fs::read(dir2.path().join("audit.head")).unwrap();
    fresh.revoke("a", "lost").unwrap();
    cut(&dir2.path().join("audit.jsonl"), 1);
    std::fs::write(dir2.path().join("audit.head"), head2).unwrap();
    let report = fresh.audit_report().unwrap();
    assert!(report.broken.is_none(), "{report:?}");
    fresh.generate("b", KeyType::X25519, &prot(), None).unwrap();
    let kinds: Vec<String> = events(&fresh).into_iter().map(|(e, _)| e).collect();
    assert_eq!(kinds, ["generate", "revoke", "generate"]);
}

/// The same when the evidence is not the head's count: the head file
/// deleted as well, two lines removed (held by the index and the trust
/// store), a line a `--trust-store` file committed. Each is reported as
/// restorable damage and put back with one `recovered` line.
#[test]
fn removed_lines_are_restorable_damage_whatever_commits_hold_them() {
    for case in ["head deleted", "two lines", "trust-store file"] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = KeyStore::open(dir.path().join("store")).unwrap();
        store.generate("a", KeyType::X25519, &prot(), None).unwrap();
        let log = dir.path().join("store/audit.jsonl");
        match case {
            "head deleted" => {
                store.generate("b", KeyType::X25519, &prot(), None).unwrap();
                cut(&log, 1);
                std::fs::remove_file(dir.path().join("store/audit.head")).unwrap();
            }
            "two lines" => {
                store.generate("b", KeyType::X25519, &prot(), None).unwrap();
                let mut trust = store.trust_store().unwrap();
                trust
                    .pin("p", KeyType::X25519, &[4; 32], None, None)
                    .unwrap();
                cut(&log, 2);
            }
            _ => {
                let file = dir.path().join("peers.json");
                let mut trust =
                    akex::keys::TrustStore::open_audited(&file, store.audit().clone()).unwrap();
                trust
                    .pin("p", KeyType::X25519, &[4; 32], None, None)
                    .unwrap();
                cut(&log, 1);
            }
        }
        let report = store.audit_report().unwrap();
        assert!(
            report.broken.is_some() && report.restorable,
            "{case}: {report:?}"
        );
        store.generate("c", KeyType::X25519, &prot(), None).unwrap();
        let records = store.audit().verify().unwrap();
        let recovered: Vec<_> = records
            .iter()
            .filter(|r| r.event.event == "recovered")
            .collect();
        assert_eq!(recovered.len(), 1, "{case}");
        let detail = recovered[0].event.detail.as_deref().unwrap_or("");
        assert!(
            detail.contains("removed after they were written"),
            "{case}: {detail}"
        );
        assert!(store.audit_report().unwrap().broken.is_none(), "{case}");
    }
}

/// An in-memory Ed25519 signer that counts its signatures.
#[derive(Debug)]
struct Counting(SigningKey, AtomicUsize);

impl Signer for Counting {
    fn scheme(&self) -> akex::keys::SignatureScheme {
        self.0.scheme()
    }
    fn public_key(&self) -> &[u8] {
        self.0.public_key()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(self.0.sign(message).to_vec())
    }
}

#[test]
fn a_handshake_asks_each_signer_for_one_signature() {
    use akex::crypto::Secret;
    use akex::handshake::registry::{initiator, responder, HandshakeKeys};
    use akex::handshake::sigma::SIGMA_CHACHAPOLY;
    use akex::{KeyKind, PublicKey};
    let key = |b: u8| {
        Arc::new(Counting(
            SigningKey::from_seed(Secret::new([b; 32])),
            AtomicUsize::new(0),
        ))
    };
    let (a, b) = (key(1), key(2));
    let pk = |s: &Counting| PublicKey::from_bytes(KeyKind::Ed25519, s.public_key()).unwrap();
    let ik = HandshakeKeys::new().signer(a.clone()).remote(pk(&b));
    let rk = HandshakeKeys::new().signer(b.clone()).remote(pk(&a));
    for round in 1..=3 {
        let mut i = initiator(SIGMA_CHACHAPOLY, &ik).unwrap();
        let mut r = responder(&[SIGMA_CHACHAPOLY], &rk).unwrap();
        while !(i.is_finished() && r.is_finished()) {
            let (w, rd) = if i.wants_write() {
                (&mut i, &mut r)
            } else {
                (&mut r, &mut i)
            };
            let mut m = Vec::new();
            w.write_message(b"", &mut m).unwrap();
            rd.read_message(&m, &mut Vec::new()).unwrap();
        }
        i.finish().unwrap();
        r.finish().unwrap();
        assert_eq!(a.1.load(Ordering::SeqCst), round);
        assert_eq!(b.1.load(Ordering::SeqCst), round);
    }
}

#[test]
fn secrets_live_in_types_that_zeroize() {
    use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};
    fn zeroize_on_drop<T: ZeroizeOnDrop>() {}
    zeroize_on_drop::<akex::crypto::Secret<32>>();
    // Key, statement and index files are read into zeroizing buffers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"secret bytes").unwrap();
    let mut bytes: Zeroizing<Vec<u8>> = akex::keys::read_regular_file(&path, 64).unwrap();
    bytes.zeroize();
    assert!(bytes.iter().all(|&b| b == 0));
    let mut s = akex::crypto::Secret::new([7u8; 32]);
    s.zeroize();
    assert_eq!(s.expose(), &[0u8; 32]);
    // Debug output never shows them.
    let p = Passphrase::new("hunter2".into());
    assert_eq!(format!("{p:?}"), "Passphrase(<redacted>)");
    assert!(!format!("{:?}", akex::crypto::Secret::new([0x41u8; 32])).contains("41"));
}

/// Two messages of the PKCS#11 error table that SoftHSM2 cannot produce in
/// the token tests (a locked PIN) or only produces with the feature.
#[test]
fn pkcs11_error_messages_read_as_documented() {
    use akex::error::HsmError;
    let text = |e: HsmError| Error::from(e).to_string();
    assert_eq!(
        text(HsmError::PinLocked { token: "T".into() }),
        "PKCS#11: the PIN of token T is locked"
    );
    assert_eq!(
        text(HsmError::WrongPin { token: "T".into() }),
        "PKCS#11: wrong PIN for token T"
    );
    assert_eq!(
        text(HsmError::NotBuilt),
        "PKCS#11: this build of akex has no PKCS#11 support (cargo feature pkcs11)"
    );
}

/// store.json rolled back to before a revocation, or edited to make a
/// revoked key active: the store opens (revocation must stay possible) but
/// names the damage, loads no key and refuses other changes; the next
/// revoke puts back every revocation the log records and the store is
/// sound again.
#[test]
fn a_rolled_back_or_edited_index_never_brings_a_revoked_key_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store
        .generate("me", KeyType::X25519, &prot(), None)
        .unwrap();
    store
        .generate("you", KeyType::X25519, &prot(), None)
        .unwrap();
    let index = dir.path().join("store.json");
    let before = std::fs::read(&index).unwrap();
    store.revoke("me", "stolen").unwrap();

    std::fs::write(&index, &before).unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let damage = store.index_damage().unwrap().to_string();
    assert!(damage.contains("records it revoke"), "{damage}");
    assert_eq!(store.find("me").unwrap().status, KeyStatus::Active);
    assert!(matches!(
        store.load("me", Some(&pass())),
        Err(Error::KeyStore(KeyStoreError::Corrupt { .. }))
    ));
    assert!(store
        .generate("new", KeyType::X25519, &prot(), None)
        .is_err());
    // Revoking anything repairs: "me" is revoked again from the log.
    store.revoke("you", "retired").unwrap();
    assert!(store.index_damage().is_none());
    assert_eq!(store.find("me").unwrap().status, KeyStatus::Revoked);
    let store = KeyStore::open(dir.path()).unwrap();
    assert!(store.index_damage().is_none());
    assert!(store.audit_report().unwrap().broken.is_none());

    // A revoked status edited back to active by hand: the same.
    index_with(dir.path(), |v| v["keys"][0]["status"] = "active".into());
    let mut store = KeyStore::open(dir.path()).unwrap();
    assert!(store.index_damage().unwrap().contains("records it revoke"));
    assert!(store.load("me", Some(&pass())).is_err());
    store.revoke("you", "again").unwrap();
    assert_eq!(store.find("me").unwrap().status, KeyStatus::Revoked);
}

/// A rolled-back index whose `audit` field was also removed or pointed at
/// another line, or whose revocation line lost its index hash: still
/// damage, and the revoked key does not load. An index edited without a
/// revocation behind it is caught by its hash; a plain rollback of an
/// addition by the later index line.
#[test]
fn a_rolled_back_index_with_a_forged_audit_field_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store
        .generate("me", KeyType::X25519, &prot(), None)
        .unwrap();
    let index = dir.path().join("store.json");
    store
        .generate("you", KeyType::X25519, &prot(), None)
        .unwrap();
    let two_keys = std::fs::read(&index).unwrap();
    store.revoke("me", "stolen").unwrap();
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let last = log.lines().last().unwrap().to_string();
    let refused = |v: &serde_json::Value| {
        std::fs::write(&index, v.to_string()).unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        assert!(store.index_damage().is_some(), "{v}");
        assert!(store.load("me", Some(&pass())).is_err());
    };
    let old: serde_json::Value = serde_json::from_slice(&two_keys).unwrap();
    let mut no_audit = old.clone();
    no_audit.as_object_mut().unwrap().remove("audit");
    refused(&no_audit);
    let mut other_line = old.clone();
    other_line["audit"] = serde_json::json!({"seq": log.lines().count(), "line": last});
    refused(&other_line);
    for (seq, line) in [(100, "x"), (2, "x")] {
        let mut forged = old.clone();
        forged["audit"] = serde_json::json!({"seq": seq, "line": line});
        refused(&forged);
    }
    // Without any revocation: a rollback is caught by the later index
    // line, an edit by the hash.
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store.generate("a", KeyType::X25519, &prot(), None).unwrap();
    let index = dir.path().join("store.json");
    let one = std::fs::read(&index).unwrap();
    store.generate("b", KeyType::X25519, &prot(), None).unwrap();
    let two: serde_json::Value = serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    std::fs::write(&index, &one).unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    assert!(store.index_damage().unwrap().contains("rolled-back"));
    assert!(store.load("a", Some(&pass())).is_err());
    let mut edited = two.clone();
    edited["keys"][1]["name"] = "renamed".into();
    std::fs::write(&index, edited.to_string()).unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    assert!(store.index_damage().unwrap().contains("differ"));
    // The same entries written back in another layout are not damage:
    // the hash covers the entries, not the bytes.
    std::fs::write(&index, two.to_string()).unwrap();
    assert!(KeyStore::open(dir.path()).unwrap().index_damage().is_none());
}
