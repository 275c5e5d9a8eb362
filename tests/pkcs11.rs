//! The PKCS#11 backend against SoftHSM2, in this process: generating keys
//! in a token, finding them by URI, signing, their protection attributes,
//! SIGMA in both roles with the key in the token, the key store's
//! lifecycle (generate, rotate, revoke, destroy, all audited) and the
//! typed errors. `cargo test --features pkcs11 --test pkcs11`.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the module is initialised, once per
//! process, so every test here shares one installation, set up first; each
//! test uses its own token.

#[path = "support/softhsm.rs"]
mod softhsm;

use std::sync::{Arc, OnceLock};

use akex::crypto::Secret;
use akex::error::{Error, HsmError, KeyStoreError};
use akex::handshake::registry::{self, HandshakeKeys};
use akex::handshake::sigma::{SIGMA_AESGCM, SIGMA_CHACHAPOLY, SIGMA_P256_AESGCM};
use akex::handshake::{Established, Handshake};
use akex::keys::{
    KeyStatus, KeyStore, KeyType, P256SigningKey, SignatureScheme, Signer, SigningKey,
};
use akex::pkcs11::{Pkcs11Signer, Pkcs11Uri, Token, TokenPin};
use akex::{KeyKind, PublicKey};
use softhsm::{SoftHsm, PIN};

const TOKENS: &[&str] = &[
    "keys", "sigma", "protect", "errors", "wrongpin", "store", "rollback", "threads", "mismatch",
];

fn hsm() -> &'static SoftHsm {
    static HSM: OnceLock<SoftHsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let hsm = SoftHsm::new(TOKENS);
        // Before any test loads the module (which reads it once).
        std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
        std::env::remove_var(akex::pkcs11::MODULE_ENV);
        hsm
    })
}

fn uri(token: &str, object: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(&hsm().uri(token, object)).unwrap()
}

fn pin() -> TokenPin {
    TokenPin::new(PIN.into())
}

fn scheme_of(t: KeyType) -> SignatureScheme {
    t.signature_scheme()
}

#[test]
fn generate_find_and_sign_in_the_token() {
    let token = Token::open(&uri("keys", "x"), &pin()).unwrap();
    assert_eq!(token.label(), "keys");
    for (object, scheme) in [
        ("ed", SignatureScheme::Ed25519),
        ("p256", SignatureScheme::EcdsaP256Sha256),
    ] {
        let made = token.generate(&uri("keys", object), scheme, true).unwrap();
        assert_eq!(made.scheme, scheme);
        assert!(made.uri.id.as_ref().is_some_and(|id| id.len() == 8));
        // Found again by label, and by id alone.
        let by_label = Pkcs11Signer::open(&uri("keys", object), &pin()).unwrap();
        assert_eq!(by_label.public_key(), &made.public[..]);
        let mut id_only = made.uri.clone();
        id_only.object = None;
        let by_id = Pkcs11Signer::open(&id_only, &pin()).unwrap();
        assert_eq!(by_id.public_key(), &made.public[..]);
        let sig = by_label.sign(b"a transcript").unwrap();
        assert_eq!(sig.len(), 64);
        scheme.verify(&made.public, b"a transcript", &sig).unwrap();
        assert!(scheme.verify(&made.public, b"another", &sig).is_err());
        // The label is taken now.
        assert!(matches!(
            token.generate(&uri("keys", object), scheme, true),
            Err(Error::Hsm(HsmError::AlreadyExists { .. }))
        ));
        let text = format!("{by_label:?}");
        assert!(
            text.contains("pkcs11:token=keys") && !text.contains(PIN),
            "{text}"
        );
    }
}

#[test]
fn private_keys_are_sensitive_and_never_extractable() {
    let token = Token::open(&uri("protect", "x"), &pin()).unwrap();
    for (object, scheme) in [
        ("ed", SignatureScheme::Ed25519),
        ("p256", SignatureScheme::EcdsaP256Sha256),
    ] {
        let key = token
            .generate(&uri("protect", object), scheme, true)
            .unwrap();
        let p = token.protection(&key).unwrap();
        assert!(p.sensitive, "{object}: {p:?}");
        assert!(!p.extractable, "{object}: {p:?}");
        assert!(p.always_sensitive && p.never_extractable, "{object}: {p:?}");
        assert!(p.value_unreadable, "{object}: CKA_VALUE was readable");
    }
}

/// Both sides through the registry; returns both results.
fn run(ik: &HandshakeKeys, rk: &HandshakeKeys, name: &str) -> (Established, Established) {
    let mut i = registry::initiator(name, ik).unwrap();
    let mut r = registry::responder(&[name], rk).unwrap();
    while !(i.is_finished() && r.is_finished()) {
        let (s, rcv) = if i.wants_write() {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let mut m = Vec::new();
        s.write_message(b"", &mut m).unwrap();
        rcv.read_message(&m, &mut Vec::new()).unwrap();
    }
    (i.finish().unwrap(), r.finish().unwrap())
}

#[test]
fn sigma_runs_with_the_key_in_the_token_in_both_roles() {
    let token = Token::open(&uri("sigma", "x"), &pin()).unwrap();
    for (name, scheme) in [
        (SIGMA_CHACHAPOLY, SignatureScheme::Ed25519),
        (SIGMA_AESGCM, SignatureScheme::Ed25519),
        (SIGMA_P256_AESGCM, SignatureScheme::EcdsaP256Sha256),
    ] {
        let object = format!("{name}-hsm");
        token
            .generate(&uri("sigma", &object), scheme, true)
            .unwrap();
        let in_token: Arc<dyn Signer> =
            Arc::new(Pkcs11Signer::open(&uri("sigma", &object), &pin()).unwrap());
        let in_memory: Arc<dyn Signer> = match scheme {
            SignatureScheme::Ed25519 => Arc::new(SigningKey::from_seed(Secret::new([7; 32]))),
            _ => Arc::new(P256SigningKey::generate().unwrap()),
        };
        let kind = scheme.key_kind();
        let pk = |s: &Arc<dyn Signer>| PublicKey::from_bytes(kind, s.public_key()).unwrap();
        // Token as initiator, then as responder, then on both sides.
        for (a, b) in [
            (&in_token, &in_memory),
            (&in_memory, &in_token),
            (&in_token, &in_token),
        ] {
            let ik = HandshakeKeys::new().signer(a.clone()).remote(pk(b));
            let rk = HandshakeKeys::new().signer(b.clone()).remote(pk(a));
            let (ie, re) = run(&ik, &rk, name);
            assert_eq!(ie.handshake_hash(), re.handshake_hash(), "{name}");
            assert_eq!(ie.remote_static(), Some(&pk(b)));
            assert_eq!(re.remote_static(), Some(&pk(a)));
            assert_eq!(re.remote_static().unwrap().kind(), kind);
        }
    }
}

#[test]
fn one_signer_serves_many_threads() {
    let token = Token::open(&uri("threads", "x"), &pin()).unwrap();
    token
        .generate(&uri("threads", "k"), SignatureScheme::EcdsaP256Sha256, true)
        .unwrap();
    let signer = Arc::new(Pkcs11Signer::open(&uri("threads", "k"), &pin()).unwrap());
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            let signer = signer.clone();
            std::thread::spawn(move || {
                for n in 0..20u8 {
                    let msg = [t, n];
                    let sig = signer.sign(&msg).unwrap();
                    SignatureScheme::EcdsaP256Sha256
                        .verify(signer.public_key(), &msg, &sig)
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn one_line(err: &Error) -> String {
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(!text.contains(PIN), "{text}");
    text
}

#[test]
fn each_failure_is_a_typed_one_line_error() {
    let module = hsm().module.display().to_string();
    // No module named anywhere.
    let err = Token::open(
        &Pkcs11Uri::parse("pkcs11:token=errors;object=k").unwrap(),
        &pin(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Hsm(HsmError::NoModule)), "{err}");
    assert!(one_line(&err).contains("AKEX_PKCS11_MODULE"));
    // A module that does not exist.
    let missing =
        Pkcs11Uri::parse("pkcs11:token=errors;object=k?module-path=/no/such/module.so").unwrap();
    let err = Token::open(&missing, &pin()).unwrap_err();
    assert!(one_line(&err).contains("/no/such/module.so"), "{err}");
    // A token that is not there: the message lists the ones that are.
    let err = Token::open(&uri("no-such-token", "k"), &pin()).unwrap_err();
    assert!(
        matches!(err, Error::Hsm(HsmError::TokenNotFound { .. })),
        "{err}"
    );
    let text = one_line(&err);
    assert!(
        text.contains("token=no-such-token") && text.contains("errors"),
        "{text}"
    );
    assert!(text.contains(&module), "{text}");
    // A wrong PIN (on a token no other test logs into: a login lasts).
    let err = Token::open(&uri("wrongpin", "k"), &TokenPin::new("000000".into())).unwrap_err();
    assert!(
        matches!(err, Error::Hsm(HsmError::WrongPin { .. })),
        "{err}"
    );
    assert!(one_line(&err).contains("wrong PIN for token wrongpin"));
    // A key that is not there, and a name that matches two keys.
    let token = Token::open(&uri("errors", "k"), &pin()).unwrap();
    let err = Pkcs11Signer::open(&uri("errors", "missing"), &pin()).unwrap_err();
    assert!(
        matches!(err, Error::Hsm(HsmError::KeyNotFound { .. })),
        "{err}"
    );
    assert!(one_line(&err).contains("object=missing"));
    let twice = uri("errors", "twice");
    token
        .generate(&twice, SignatureScheme::Ed25519, true)
        .unwrap();
    token
        .generate(&twice, SignatureScheme::Ed25519, false)
        .unwrap();
    let err = token.find(&twice).unwrap_err();
    assert!(one_line(&err).contains("2 keys match"), "{err}");
    // A URI that names no key.
    let err = token
        .find(&Pkcs11Uri::parse("pkcs11:token=errors").unwrap())
        .unwrap_err();
    assert!(one_line(&err).contains("object="), "{err}");
    assert_eq!(err.kind(), "hsm");
}

fn store_text(dir: &std::path::Path) -> String {
    let mut all = String::new();
    for entry in walk(dir) {
        all.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry).unwrap_or_default(),
        ));
    }
    all
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_store_lifecycle_of_token_keys_is_complete_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path().join("store")).unwrap();
    for (name, key_type) in [("sig-ed", KeyType::Ed25519), ("sig-p256", KeyType::P256)] {
        let u = uri("store", name);
        let entry = store
            .generate_in_token(name, key_type, &u, &pin(), None)
            .unwrap();
        assert!(entry.in_token() && entry.file_sha256.is_empty() && !entry.encrypted);
        assert_eq!(entry.public, entry.signing_public);
        assert!(!dir
            .path()
            .join(format!("store/keys/{}.pem", entry.id))
            .exists());
        // A file load says where the key is.
        assert!(matches!(
            store.load(name, None),
            Err(Error::KeyStore(KeyStoreError::InToken { .. }))
        ));
        // The second generate of an active name touches nothing.
        assert!(matches!(
            store.generate_in_token(name, key_type, &uri("store", "other"), &pin(), None),
            Err(Error::KeyStore(KeyStoreError::AlreadyExists(_)))
        ));
        let signer = store.open_in_token(name, &pin()).unwrap();
        assert_eq!(signer.scheme(), scheme_of(key_type));
        assert_eq!(
            store.entry_for_public(signer.public_key()).unwrap().id,
            entry.id
        );
        store.record_load(&entry).unwrap();

        // Rotate: both keys sign the statement in the token.
        let (new, statement) = store.rotate_in_token(name, &pin(), 3600).unwrap();
        statement.verify().unwrap();
        assert_eq!(statement.old_id, entry.id);
        assert_eq!(statement.new_id, new.id);
        assert_eq!(store.find_id(&entry.id).unwrap().status, KeyStatus::Retired);
        let new_uri = Pkcs11Uri::parse(new.pkcs11.as_deref().unwrap()).unwrap();
        assert_eq!(new_uri.object.as_deref(), Some(name));
        assert_ne!(
            new_uri.id,
            Pkcs11Uri::parse(entry.pkcs11.as_deref().unwrap())
                .unwrap()
                .id
        );
        let rotated = store.open_in_token(name, &pin()).unwrap();
        assert_eq!(rotated.public_key(), &new.public_bytes()[..]);
        assert_eq!(store.rotation_chain(&new.id).unwrap().len(), 1);
        // The peer's view: the statement moves a pin made from `show`.
        let mut trust =
            akex::keys::TrustStore::open(dir.path().join(format!("{name}-trust.json"))).unwrap();
        trust
            .pin(
                name,
                key_type,
                &entry.public_bytes(),
                Some(&entry.public_bytes()),
                None,
            )
            .unwrap();
        trust
            .accept_rotation(&statement, akex::keys::now_unix())
            .unwrap();

        // Revoke: never opens again.
        store.revoke(name, "test").unwrap();
        assert!(matches!(
            store.open_in_token(name, &pin()),
            Err(Error::KeyStore(KeyStoreError::Revoked(_)))
        ));
        // Destroy: both objects leave the token.
        let destroyed = store.destroy_in_token(name, &pin()).unwrap();
        assert_eq!(destroyed.status, KeyStatus::Destroyed);
        let token = Token::open(&new_uri, &pin()).unwrap();
        assert!(matches!(
            token.find(&new_uri),
            Err(Error::Hsm(HsmError::KeyNotFound { .. }))
        ));
        assert!(store.destroy_in_token(name, &pin()).is_err());
    }
    // A wrong PIN is logged, without the PIN.
    let err = store
        .generate_in_token(
            "late",
            KeyType::Ed25519,
            &uri("wrongpin", "late"),
            &TokenPin::new("999999".into()),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Hsm(HsmError::WrongPin { .. })),
        "{err}"
    );
    assert!(store.find("late").is_none());
    let events: Vec<String> = store
        .audit()
        .verify()
        .unwrap()
        .into_iter()
        .map(|r| r.event.event)
        .collect();
    for want in [
        "generate",
        "load",
        "rotate",
        "revoke",
        "destroy",
        "pkcs11-login-failed",
    ] {
        assert!(
            events.iter().any(|e| e == want),
            "{want} missing from {events:?}"
        );
    }
    let all = store_text(dir.path());
    assert!(
        !all.contains(PIN) && !all.contains("999999"),
        "a PIN reached the store"
    );
    assert!(all.contains("pkcs11:token=store;object=sig-ed;id=%"));
    // The index is valid for a reader without the pkcs11 code too.
    let reopened = KeyStore::open(dir.path().join("store")).unwrap();
    assert_eq!(reopened.entries().len(), 4);
}

#[test]
fn nothing_half_made_when_the_store_cannot_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut store = KeyStore::open(&path).unwrap();
    store
        .generate_in_token(
            "first",
            KeyType::Ed25519,
            &uri("rollback", "first"),
            &pin(),
            None,
        )
        .unwrap();
    // Damage the audit log: generating adds trust, so it is refused.
    let log = path.join("audit.jsonl");
    let text = std::fs::read_to_string(&log)
        .unwrap()
        .replace("generate", "gEnerate");
    std::fs::write(&log, text).unwrap();
    let err = store
        .generate_in_token(
            "second",
            KeyType::P256,
            &uri("rollback", "second"),
            &pin(),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::KeyStore(KeyStoreError::AuditBroken { .. })),
        "{err}"
    );
    assert!(store.find("second").is_none());
    // The key made in the token before the refusal was removed again.
    let token = Token::open(&uri("rollback", "x"), &pin()).unwrap();
    assert!(matches!(
        token.find(&uri("rollback", "second")),
        Err(Error::Hsm(HsmError::KeyNotFound { .. }))
    ));
    // Rotation too: the new key does not stay behind.
    let err = store.rotate_in_token("first", &pin(), 60).unwrap_err();
    assert!(
        matches!(err, Error::KeyStore(KeyStoreError::AuditBroken { .. })),
        "{err}"
    );
    let first = uri("rollback", "first");
    assert!(token.find(&first).is_ok(), "only the original key remains");
    // Destroy still works on a damaged log (it only removes trust).
    store.destroy_in_token("first", &pin()).unwrap();
    let _ = KeyKind::P256;
}

/// A token key whose public key is not the one its entry records is never
/// used or destroyed; a key already gone from the token (a destroy whose
/// commit failed after the objects were removed) only marks the entry.
#[test]
fn a_token_key_that_differs_from_its_entry_is_never_used_or_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut store = KeyStore::open(&path).unwrap();
    let k = store
        .generate_in_token("k", KeyType::Ed25519, &uri("mismatch", "k"), &pin(), None)
        .unwrap();
    let other = store
        .generate_in_token("o", KeyType::Ed25519, &uri("mismatch", "o"), &pin(), None)
        .unwrap();
    let index = path.join("store.json");
    let original = std::fs::read_to_string(&index).unwrap();
    // k's entry now points at the other key's objects.
    let k_uri = k.pkcs11.clone().unwrap();
    let o_uri = other.pkcs11.clone().unwrap();
    std::fs::write(&index, original.replace(&k_uri, &o_uri)).unwrap();
    let mut store = KeyStore::open(&path).unwrap();
    assert!(matches!(
        store.open_in_token("k", &pin()),
        Err(Error::KeyStore(KeyStoreError::Corrupt { .. }))
    ));
    assert!(store.destroy_in_token("k", &pin()).is_err());
    let token = Token::open(&uri("mismatch", "x"), &pin()).unwrap();
    let o = Pkcs11Uri::parse(&o_uri).unwrap();
    assert!(token.find(&o).is_ok(), "the other key was destroyed");
    // Put back; then k's objects disappear from the token behind akex.
    std::fs::write(&index, &original).unwrap();
    let mut store = KeyStore::open(&path).unwrap();
    let k_key = token.find(&Pkcs11Uri::parse(&k_uri).unwrap()).unwrap();
    token.destroy(&k_key).unwrap();
    let done = store.destroy_in_token("k", &pin()).unwrap();
    assert_eq!(done.status, KeyStatus::Destroyed);
    let last = store.audit().verify().unwrap().pop().unwrap();
    let detail = last.event.detail.unwrap();
    assert!(detail.contains("pkcs11 key already absent"), "{detail}");
    assert!(token.find(&o).is_ok());
}
