//! The FIPS-algorithm SIGMA suite (`akex-sigma-p256-ecdsa-aesgcm-sha256`):
//! the happy path with in-memory ECDSA keys, and the ways to break it, each
//! with a typed error. The suite is a parameter of the SIGMA code, so
//! these mirror `tests/sigma.rs` and `tests/sigma_attacks.rs` with P-256
//! lengths, plus what only the suite choice can get wrong (a key of the
//! other scheme, a failing signer).

mod sigma_support;

use std::sync::Arc;

use akex::crypto::Secret;
use akex::error::{ConfigError, Error, TrustFailure};
use akex::handshake::registry::{self, HandshakeKeys};
use akex::handshake::sigma::{SigmaConfig, SIGMA_AESGCM, SIGMA_CHACHAPOLY, SIGMA_P256_AESGCM};
use akex::handshake::Handshake;
use akex::hazmat::akex::{hello, labels, SymmetricState};
use akex::hazmat::p256::P256Ephemeral;
use akex::keys::{P256SigningKey, SignatureScheme, Signer, SigningKey};
use akex::{KeyKind, PublicKey, Session};
use sigma_support::{assert_err, read, run, write};

const NAME: &str = SIGMA_P256_AESGCM;

fn p256(seed: u8) -> P256SigningKey {
    P256SigningKey::from_scalar(&Secret::new([seed; 32])).unwrap()
}

fn public(k: &P256SigningKey) -> PublicKey {
    PublicKey::from_bytes(KeyKind::P256, k.public()).unwrap()
}

fn keys(seed: u8, remote: Option<&P256SigningKey>) -> HandshakeKeys {
    let keys = HandshakeKeys::new().signer(Arc::new(p256(seed)));
    match remote {
        Some(k) => keys.remote(public(k)),
        None => keys,
    }
}

fn client() -> Box<dyn Handshake> {
    registry::initiator(NAME, &keys(1, Some(&p256(2)))).unwrap()
}

fn server() -> Box<dyn Handshake> {
    registry::responder(&[NAME], &keys(2, Some(&p256(1)))).unwrap()
}

#[test]
fn handshake_completes_and_sizes_match_the_registry() {
    let (ie, re) = run(client(), server());
    assert_eq!(ie.protocol(), NAME);
    assert_eq!(ie.handshake_hash(), re.handshake_hash());
    assert_eq!(ie.sending_secret(), re.receiving_secret());
    assert_eq!(ie.remote_static(), Some(&public(&p256(2))));
    assert_eq!(re.remote_static().unwrap().kind(), KeyKind::P256);
    assert_eq!(ie.aead(), akex::crypto::AeadAlgorithm::AesGcm);
    let (mut a, mut b) = (Session::new(ie), Session::new(re));
    let (mut ct, mut pt) = (Vec::new(), Vec::new());
    a.seal(b"data", &mut ct).unwrap();
    b.open(&ct, &mut pt).unwrap();
    assert_eq!(pt, b"data");

    let (mut i, mut r) = (client(), server());
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    read(&mut i, &m2).unwrap();
    let m3 = write(&mut i, b"");
    read(&mut r, &m3).unwrap();
    let sizes = vec![m1.len(), m2.len(), m3.len()];
    assert_eq!(sizes, registry::info(NAME).unwrap().message_sizes);
    // Message 1 carries no long-term key.
    assert!(!m1.windows(65).any(|w| w == p256(1).public()));
}

/// One server holding an Ed25519 and a P-256 identity accepts clients of
/// either kind of suite; each client proves the key of its suite's kind.
#[test]
fn one_server_serves_both_kinds_of_suite() {
    let ed = |s: u8| SigningKey::from_seed(Secret::new([s; 32]));
    let server_keys = HandshakeKeys::new()
        .signing_key(ed(2))
        .signer(Arc::new(p256(2)));
    for name in [SIGMA_CHACHAPOLY, SIGMA_AESGCM, NAME] {
        let client_keys = HandshakeKeys::new()
            .signing_key(ed(1))
            .signer(Arc::new(p256(1)));
        let i = registry::initiator(name, &client_keys).unwrap();
        let r = registry::responder(&[SIGMA_CHACHAPOLY, SIGMA_AESGCM, NAME], &server_keys).unwrap();
        let (ie, _) = run(i, r);
        let want = if name == NAME {
            KeyKind::P256
        } else {
            KeyKind::Ed25519
        };
        assert_eq!(ie.remote_static().unwrap().kind(), want, "{name}");
    }
}

#[test]
fn keys_of_the_wrong_kind_are_refused_when_the_handshake_is_built() {
    let ed = SigningKey::from_seed(Secret::new([1; 32]));
    // Only an Ed25519 identity: the P-256 suite has no key.
    let only_ed = HandshakeKeys::new().signing_key(ed.clone());
    assert_err(
        registry::initiator(NAME, &only_ed).map(drop),
        "MissingLocalKey",
    );
    assert_err(
        registry::responder(&[NAME], &only_ed).map(drop),
        "MissingLocalKey",
    );
    // Only a P-256 identity: the Ed25519 suites have none.
    assert_err(
        registry::initiator(SIGMA_AESGCM, &keys(1, None)).map(drop),
        "MissingLocalKey",
    );
    // A pinned key of the other kind.
    let pinned_ed = keys(1, None).remote(PublicKey::ed25519(*ed.public()));
    assert!(matches!(
        registry::initiator(NAME, &pinned_ed).err(),
        Some(Error::Config(ConfigError::WrongKeyKind {
            expected: KeyKind::P256,
            ..
        }))
    ));
    assert_eq!(registry::remote_key_kind(NAME), Some(KeyKind::P256));
    // A signer of the other scheme given to the configuration directly.
    assert!(matches!(
        SigmaConfig::with_signer(NAME, Arc::new(ed)).err(),
        Some(Error::Config(ConfigError::WrongKeyKind {
            expected: KeyKind::P256,
            given: KeyKind::Ed25519
        }))
    ));
    assert!(SigmaConfig::with_signer(NAME, Arc::new(p256(1))).is_ok());
    // A P-256 public key must be a point on the curve.
    let mut off = *p256(1).public();
    off[64] ^= 1;
    assert!(PublicKey::from_bytes(KeyKind::P256, &off).is_err());
    assert!(PublicKey::from_bytes(KeyKind::P256, &off[..64]).is_err());
}

#[test]
fn tampering_with_each_byte_range_fails_with_a_typed_error() {
    let hello_end = 6 + NAME.len();
    // (message, byte range, error the receiver reports)
    let ranges: &[(usize, std::ops::Range<usize>, &[&str])] = &[
        (0, 0..4, &["NotAkexMode"]),
        (0, 6..hello_end, &["ProtocolNotAllowed"]),
        // e_i: off the curve (most flips) or another point.
        (
            0,
            hello_end..hello_end + 65,
            &["InvalidPublicKey", "DecryptFailed"],
        ),
        (1, 0..65, &["InvalidPublicKey", "DecryptFailed"]),
        (1, 65..65 + 177, &["DecryptFailed"]),
        (1, 242..258, &["DecryptFailed"]),
        (2, 0..177, &["DecryptFailed"]),
        (2, 177..193, &["DecryptFailed"]),
    ];
    for (idx, range, wants) in ranges {
        for pos in [range.start, (range.start + range.end) / 2, range.end - 1] {
            let err = tamper(*idx, pos);
            let text = format!("{err:?}");
            assert!(
                wants.iter().any(|w| text.contains(w)),
                "message {idx} byte {pos}: expected {wants:?}, got {err:?}"
            );
        }
    }
}

fn tamper(idx: usize, pos: usize) -> Error {
    let (mut i, mut r) = (client(), server());
    let mut m1 = write(&mut i, b"");
    if idx == 0 {
        m1[pos] ^= 1;
    }
    if let Err(e) = read(&mut r, &m1) {
        return e;
    }
    let mut m2 = write(&mut r, b"");
    if idx == 1 {
        m2[pos] ^= 1;
    }
    if let Err(e) = read(&mut i, &m2) {
        assert_err(i.write_message(b"", &mut Vec::new()), "HandshakeDead");
        return e;
    }
    let mut m3 = write(&mut i, b"");
    if idx == 2 {
        m3[pos] ^= 1;
    }
    read(&mut r, &m3).expect_err("tampering went unnoticed")
}

#[test]
fn truncated_messages_and_bad_ephemerals_fail() {
    let (mut i, mut r) = (client(), server());
    let m1 = write(&mut i, b"");
    for cut in [6 + NAME.len(), 6 + NAME.len() + 64] {
        assert_err(read(&mut server(), &m1[..cut]), "BadMessageLength");
    }
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    for cut in [64, 65 + 176, m2.len() - 17] {
        let mut i2 = client();
        let _ = write(&mut i2, b"");
        assert!(read(&mut i2, &m2[..cut]).is_err(), "cut at {cut}");
    }
    // The point at infinity has no 65-byte encoding; zeros, a compressed
    // point and an off-curve point are all refused.
    let e = p256(7);
    let mut compressed = vec![0x02 | (e.public()[64] & 1)];
    compressed.extend_from_slice(&e.public()[1..33]);
    compressed.extend_from_slice(&[0; 32]);
    let mut off = *e.public();
    off[40] ^= 0x10;
    for bad in [vec![0u8; 65], compressed, off.to_vec()] {
        let mut m = hello(NAME).unwrap();
        m.extend_from_slice(&bad);
        assert_err(read(&mut server(), &m), "InvalidPublicKey");
    }
}

#[test]
fn wrong_pinned_key_is_rejected_by_either_side() {
    let mut i = registry::initiator(NAME, &keys(1, Some(&p256(3)))).unwrap();
    let mut r = server();
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    assert!(matches!(
        read(&mut i, &m2),
        Err(Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch))
    ));
    let mut i = registry::initiator(NAME, &keys(7, Some(&p256(2)))).unwrap();
    let mut r = server();
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    read(&mut i, &m2).unwrap();
    let m3 = write(&mut i, b"");
    assert!(matches!(
        read(&mut r, &m3),
        Err(Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch))
    ));
}

#[test]
fn rewriting_the_suite_in_the_hello_fails_no_downgrade() {
    let ed = SigningKey::from_seed(Secret::new([2; 32]));
    let server_keys = keys(2, None).signing_key(ed);
    let mut i = client();
    let mut r = registry::responder(&[SIGMA_AESGCM, NAME], &server_keys).unwrap();
    let m1 = write(&mut i, b"");
    // Rewritten to the X25519 suite: the server reads a 32-byte ephemeral
    // out of the 65-byte P-256 point and answers; the client's transcript
    // differs.
    let mut rewritten = hello(SIGMA_AESGCM).unwrap();
    rewritten.extend_from_slice(&m1[6 + NAME.len()..]);
    if read(&mut r, &rewritten).is_ok() {
        let m2 = write(&mut r, b"");
        assert!(read(&mut i, &m2).is_err());
    }
    assert!(!i.is_finished());
}

/// Message 2 written by hand from the spec (P-256 lengths), so it can be
/// well encrypted and still carry a bad identity, signature or MAC.
fn forged_m2(m1: &[u8], flaw: &str) -> Vec<u8> {
    let hello = hello(NAME).unwrap();
    let rest = &m1[hello.len()..];
    let mut ss = SymmetricState::new(NAME, akex::crypto::AeadAlgorithm::AesGcm, &[]);
    ss.mix_hash(&hello);
    ss.mix_hash(&rest[..65]);
    ss.encrypt_and_hash(&rest[65..], &mut Vec::new()).unwrap();
    let e = P256Ephemeral::from_scalar(&Secret::new([5u8; 32])).unwrap();
    let dh = e.agree(&rest[..65]).unwrap();
    let mut out = e.public().to_vec();
    ss.mix_hash(e.public());
    ss.mix_key(labels::SIGMA_DH_EE, dh.expose());
    let id = p256(2);
    let mut identity = id.public().to_vec();
    if flaw == "off-curve" {
        identity[64] ^= 1;
    }
    let mut signed = labels::SIGMA_SIG_RESPONDER.to_vec();
    signed.extend_from_slice(&ss.handshake_hash());
    if flaw == "signature" {
        signed.push(0);
    }
    let sig = id.sign(&signed).unwrap();
    let km = ss.derive_key(if flaw == "mac" {
        labels::SIGMA_MAC_INITIATOR
    } else {
        labels::SIGMA_MAC_RESPONDER
    });
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(km.expose()).unwrap();
    mac.update(&identity);
    let mut block = identity;
    block.extend_from_slice(&sig);
    block.extend_from_slice(&mac.finalize().into_bytes());
    ss.encrypt_and_hash(&block, &mut out).unwrap();
    ss.encrypt_and_hash(b"", &mut out).unwrap();
    out
}

#[test]
fn bad_identity_signature_and_mac_under_valid_encryption() {
    let mut i = client();
    let m1 = write(&mut i, b"");
    // The hand-written responder is faithful: with no flaw it passes.
    read(&mut i, &forged_m2(&m1, "none")).unwrap();
    for (flaw, want) in [
        ("off-curve", "InvalidPublicKey"),
        ("signature", "BadSignature"),
        ("mac", "BadMac"),
    ] {
        let mut i = registry::initiator(NAME, &keys(1, None)).unwrap();
        let m1 = write(&mut i, b"");
        assert_err(read(&mut i, &forged_m2(&m1, flaw)), want);
    }
}

/// A signer whose module fails, or that returns a signature of the wrong
/// length: the handshake fails with that error and is dead.
#[derive(Debug)]
struct Broken {
    key: P256SigningKey,
    short: bool,
}

impl Signer for Broken {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::EcdsaP256Sha256
    }
    fn public_key(&self) -> &[u8] {
        self.key.public()
    }
    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, Error> {
        if self.short {
            return Ok(vec![0; 63]);
        }
        Err(akex::error::HsmError::Device {
            operation: "sign",
            token: "test".into(),
            reason: "CKR_DEVICE_REMOVED".into(),
        }
        .into())
    }
}

#[test]
fn a_failing_signer_fails_the_handshake() {
    for (short, want) in [(false, "CKR_DEVICE_REMOVED"), (true, "63-byte signature")] {
        let broken = HandshakeKeys::new().signer(Arc::new(Broken {
            key: p256(2),
            short,
        }));
        let mut i = client();
        let mut r = registry::responder(&[NAME], &broken).unwrap();
        let m1 = write(&mut i, b"");
        read(&mut r, &m1).unwrap();
        let mut out = Vec::new();
        let err = r.write_message(b"", &mut out).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert!(out.is_empty());
        assert_err(r.write_message(b"", &mut out), "HandshakeDead");
    }
}

/// A signer that works until `fail` is set (a token removed mid-session).
#[derive(Debug)]
struct Flaky {
    key: P256SigningKey,
    fail: std::sync::atomic::AtomicBool,
}

impl Signer for Flaky {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::EcdsaP256Sha256
    }
    fn public_key(&self) -> &[u8] {
        self.key.public()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(vec![0; 63]);
        }
        Signer::sign(&self.key, message)
    }
}

/// The DH ratchet of a P-256 session signs each step with the ECDSA
/// identities the handshake proved: steps complete in both directions and
/// data flows, and a signer that stops working fails the step with a typed
/// error instead of sending a bad signature.
#[test]
fn p256_sessions_ratchet_signed_by_their_identities() {
    use akex::crypto::OsRng;
    use akex::session::{Record, RecordType, SessionConfig};
    use std::time::Duration;

    fn pump(x: &mut Session, y: &mut Session) {
        let mut out = Vec::new();
        while x
            .poll_control(Duration::ZERO, &mut OsRng, &mut out)
            .unwrap()
        {
            y.open_record(&out, &mut Vec::new()).unwrap();
            out.clear();
        }
    }

    let flaky = Arc::new(Flaky {
        key: p256(1),
        fail: false.into(),
    });
    let client_keys = HandshakeKeys::new()
        .signer(flaky.clone())
        .remote(public(&p256(2)));
    let (ie, re) = run(registry::initiator(NAME, &client_keys).unwrap(), server());
    let config = SessionConfig::new();
    let mut a = Session::with_config(ie, config.clone()).unwrap();
    let mut b = Session::with_config(re, config).unwrap();
    for step in 1..=2u32 {
        let (from, to) = if step == 1 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let mut w = Vec::new();
        assert!(from.start_ratchet(&mut OsRng, &mut w).unwrap());
        assert_eq!(
            to.open_record(&w, &mut Vec::new()).unwrap(),
            Record::Ratchet
        );
        for _ in 0..4 {
            pump(from, to);
            pump(to, from);
        }
        assert_eq!(
            (a.ratchet_count(), b.ratchet_count()),
            (step as u64, step as u64)
        );
        let (mut ct, mut pt) = (Vec::new(), Vec::new());
        a.seal_record(RecordType::Data, b"after the step", &mut ct)
            .unwrap();
        b.open_record(&ct, &mut pt).unwrap();
        assert_eq!(pt, b"after the step");
    }

    flaky.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = a.start_ratchet(&mut OsRng, &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("63-byte signature"), "{err}");
}
