//! Rotation statements as docs/key-management.md describes them: the signed
//! bytes rebuilt independently and checked with other libraries
//! (ed25519-dalek's `verify_strict`, the RustCrypto p256 crate), the
//! conditions under which a peer accepts one, and the chain a server
//! announces (oldest first, at most 16, verified when read).

use akex::error::KeyStoreError;
use akex::keys::{
    decode_rotation_announcement, encode_rotation_announcement, key_id, now_unix, KeyStore,
    KeyType, Passphrase, Protection, RotationStatement, TrustStore, MAX_ROTATION_CHAIN,
};
use akex::Error;
use base64::Engine;

fn prot() -> Protection {
    Protection::Passphrase {
        passphrase: Passphrase::new("pw".into()),
        log_n: 2,
    }
}

fn b64d(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn invalid(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(Error::KeyStore(KeyStoreError::InvalidStatement(m))) => m,
        other => panic!("expected an invalid statement, got {other:?}"),
    }
}

/// The bytes both signatures cover, written from the document's layout.
fn documented_bytes(s: &RotationStatement) -> Vec<u8> {
    let mut out = b"akex rotation statement v1\0".to_vec();
    out.extend_from_slice(&s.version.to_be_bytes());
    let key_type = s.key_type.to_string();
    for field in [
        s.name.as_bytes().to_vec(),
        key_type.as_bytes().to_vec(),
        b64d(&s.old_public),
        b64d(&s.old_signing_public),
        b64d(&s.new_public),
        b64d(&s.new_signing_public),
    ] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(&field);
    }
    out.extend_from_slice(&s.created.to_be_bytes());
    out.extend_from_slice(&s.overlap_until.to_be_bytes());
    out
}

#[test]
fn statements_sign_the_documented_bytes_not_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store.generate("x", KeyType::X25519, &prot(), None).unwrap();
    store.generate("p", KeyType::P256, &prot(), None).unwrap();
    let (_, x) = store.rotate("x", &prot(), 600).unwrap();
    let (_, p) = store.rotate("p", &prot(), 600).unwrap();
    for s in [&x, &p] {
        assert_eq!(s.signed_message().unwrap(), documented_bytes(s));
        assert_eq!(s.overlap_until, s.created + 600);
    }
    // Ed25519 under ed25519-dalek's strict rules.
    let msg = documented_bytes(&x);
    for (key, sig) in [
        (&x.old_signing_public, &x.old_signature),
        (&x.new_signing_public, &x.new_signature),
    ] {
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&b64d(key).try_into().unwrap()).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&b64d(sig).try_into().unwrap());
        vk.verify_strict(&msg, &sig).unwrap();
    }
    // ECDSA P-256 over SHA-256, r || s.
    use p256::ecdsa::signature::Verifier;
    let msg = documented_bytes(&p);
    for (key, sig) in [
        (&p.old_signing_public, &p.old_signature),
        (&p.new_signing_public, &p.new_signature),
    ] {
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&b64d(key)).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&b64d(sig)).unwrap();
        vk.verify(&msg, &sig).unwrap();
    }
    // Formatting does not matter: compact JSON verifies like pretty JSON.
    let compact: RotationStatement =
        serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
    compact.verify().unwrap();
}

#[test]
fn malleated_signatures_and_weak_signing_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store.generate("x", KeyType::X25519, &prot(), None).unwrap();
    let (_, s) = store.rotate("x", &prot(), 600).unwrap();
    // S + L: the same signature with a non-canonical scalar.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut sig = b64d(&s.old_signature);
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        sig[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    let mut malleated = s.clone();
    malleated.old_signature = b64(&sig);
    invalid(malleated.verify());
    // A signing key of small order (the identity point).
    let mut weak = s.clone();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    weak.old_signing_public = b64(&identity);
    let m = invalid(weak.verify());
    assert!(m.contains("old_signing_public"), "{m}");
}

#[test]
fn a_peer_accepts_only_from_a_valid_unrevoked_pin_with_that_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = KeyStore::open(dir.path().join("srv")).unwrap();
    let old = server
        .generate("srv", KeyType::X25519, &prot(), None)
        .unwrap();
    let (new, s) = server.rotate("srv", &prot(), 600).unwrap();
    let now = now_unix();
    let signing = b64d(&old.signing_public);
    let mut n = 0;
    let mut pinned = |signing: &[u8], expires: Option<u64>| {
        n += 1;
        let mut t = TrustStore::open(dir.path().join(format!("t{n}.json"))).unwrap();
        t.pin(
            "server",
            KeyType::X25519,
            &old.public_bytes(),
            Some(signing),
            expires,
        )
        .unwrap();
        t
    };
    // Pinned with another signing key.
    let m = invalid(pinned(&[7; 32], None).accept_rotation(&s, now));
    assert!(m.contains("signing key"), "{m}");
    // The old pin has expired.
    let m = invalid(pinned(&signing, Some(now + 5)).accept_rotation(&s, now + 5));
    assert!(m.contains("expired"), "{m}");
    // The old key is revoked, or the new one.
    let mut t = pinned(&signing, None);
    t.revoke(&old.id, "stolen", now).unwrap();
    assert!(invalid(t.accept_rotation(&s, now)).contains("old key is revoked"));
    let mut t = pinned(&signing, None);
    t.revoke(&new.id, "stolen", now).unwrap();
    assert!(invalid(t.accept_rotation(&s, now)).contains("new key is revoked"));
    // Pinned, but under another name than the one expected.
    let mut t = pinned(&signing, None);
    invalid(t.accept_rotation_for(&s, Some("other"), now));
    // Accepted: the new pin under the same name, the old one ends with the
    // overlap window and names its successor.
    let pin = t.accept_rotation(&s, now).unwrap();
    assert_eq!(
        (pin.name.as_str(), pin.rotated_from.as_deref()),
        ("server", Some(old.id.as_str()))
    );
    assert_eq!(
        pin.signing_public.as_deref(),
        Some(s.new_signing_public.as_str())
    );
    let old_pin = t.pins().iter().find(|p| p.id == old.id).unwrap();
    assert_eq!(old_pin.valid_until, Some(s.overlap_until));
    assert_eq!(old_pin.rotated_to.as_deref(), Some(new.id.as_str()));
}

#[test]
fn announced_chains_are_oldest_first_at_most_16_and_verified_when_read() {
    assert_eq!(MAX_ROTATION_CHAIN, 16);
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let first = store.generate("s", KeyType::X25519, &prot(), None).unwrap();
    let mut ids = vec![first.id.clone()];
    for _ in 0..17 {
        ids.push(store.rotate("s", &prot(), 600).unwrap().0.id);
    }
    let last = ids.last().unwrap().clone();
    let chain = store.rotation_chain(&last).unwrap();
    assert_eq!(chain.len(), 16);
    // The newest 16 rotations, oldest first, each linked to the next.
    assert_eq!(chain[0].old_id, ids[1]);
    assert_eq!(chain[15].new_id, last);
    assert!(chain.windows(2).all(|w| w[0].new_id == w[1].old_id));
    // 17 statements are refused on the wire and by the trust store.
    let mut long = store.rotation_chain(&ids[16]).unwrap();
    long.push(chain[15].clone());
    assert_eq!(long.len(), 17);
    invalid(decode_rotation_announcement(
        &encode_rotation_announcement(&long).unwrap(),
    ));
    let mut t = TrustStore::open(dir.path().join("t.json")).unwrap();
    let m = invalid(t.accept_rotation_chain(&long, &b64d(&chain[15].new_public), None, now_unix()));
    assert!(m.contains("too many"), "{m}");
    // A never-rotated key has no chain; a statement edited on disk stops
    // the chain from being read at all.
    assert!(store.rotation_chain(&first.id).unwrap().is_empty());
    let file = dir
        .path()
        .join("rotations")
        .join(format!("{}.json", ids[16]));
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("\"overlap_until\": ", "\"overlap_until\": 1"),
    )
    .unwrap();
    assert!(store.rotation_chain(&last).is_err());
    assert_eq!(key_id(&b64d(&chain[15].new_public)), last);
}
