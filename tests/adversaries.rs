//! Attackers who hold some long-term secret: key-compromise impersonation
//! (SIGMA, hybrid, PQ), PQ identities with one half broken, and the hybrid
//! key schedule with every X25519 secret (or the ML-KEM secret) known.
//! Each forger is first run with the true secrets and must succeed, so a
//! refusal below is the protocol's doing, not a broken forger.

mod threat_support;

use akex::crypto::{AeadAlgorithm, Secret};
use akex::error::{Error, PeerMisbehaved};
use akex::handshake::hybrid::{HYBRID_IK, HYBRID_NK, HYBRID_XX};
use akex::handshake::pq::{PQ_IK, PQ_XX};
use akex::handshake::sigma::{SIGMA_CHACHAPOLY, SIGMA_P256_AESGCM};
use akex::handshake::TrafficSecret;
use akex::hazmat::akex::{hello, labels, SymmetricState};
use akex::hazmat::hash::hmac_sha256;
use akex::hazmat::p256::P256Ephemeral;
use akex::hazmat::x25519::X25519Private;
use akex::keys::{MlKem768KeyPair, P256SigningKey, Signer, SigningKey, StaticSecret};
use akex::{Handshake, Role};
use threat_support::forge::{duel, Claim, Engine, Outcome};
use threat_support::*;

const A: u8 = 1;
const B: u8 = 2;

// ---- SIGMA ----------------------------------------------------------

fn signer(name: &str, seed: u8) -> Box<dyn Signer> {
    if name == SIGMA_P256_AESGCM {
        Box::new(P256SigningKey::from_scalar(&Secret::new([seed; 32])).unwrap())
    } else {
        Box::new(SigningKey::from_seed(Secret::new([seed; 32])))
    }
}

enum Eph {
    X(X25519Private),
    P(P256Ephemeral),
}

impl Eph {
    fn new(name: &str) -> Eph {
        if name == SIGMA_P256_AESGCM {
            Eph::P(P256Ephemeral::from_scalar(&Secret::new([5; 32])).unwrap())
        } else {
            Eph::X(X25519Private::new(&Secret::new([5; 32])))
        }
    }
    fn public(&self) -> Vec<u8> {
        match self {
            Eph::X(e) => e.public().to_vec(),
            Eph::P(e) => e.public().to_vec(),
        }
    }
    fn agree(&self, peer: &[u8]) -> Secret<32> {
        match self {
            Eph::X(e) => e.agree(peer).unwrap(),
            Eph::P(e) => e.agree(peer).unwrap(),
        }
    }
}

/// A SIGMA party written from protocols/sigma.md that claims `identity`
/// and signs with `signer` (which need not be the identity's key).
struct SigmaForger<'a> {
    name: &'static str,
    ss: SymmetricState,
    e: Eph,
    identity: Vec<u8>,
    signer: &'a dyn Signer,
}

impl<'a> SigmaForger<'a> {
    fn new(name: &'static str, identity: Vec<u8>, signer: &'a dyn Signer) -> Self {
        let aead = if name == SIGMA_CHACHAPOLY {
            AeadAlgorithm::ChaChaPoly
        } else {
            AeadAlgorithm::AesGcm
        };
        SigmaForger {
            name,
            ss: SymmetricState::new(name, aead, b""),
            e: Eph::new(name),
            identity,
            signer,
        }
    }

    fn auth_block(&mut self, sig_label: &[u8], mac_label: &[u8], out: &mut Vec<u8>) {
        let mut signed = sig_label.to_vec();
        signed.extend_from_slice(&self.ss.handshake_hash());
        let sig = self.signer.sign(&signed).unwrap();
        let mac = hmac_sha256(
            self.ss.derive_key(mac_label).expose(),
            &[&self.identity[..]],
        );
        let mut block = self.identity.clone();
        block.extend_from_slice(&sig);
        block.extend_from_slice(mac.expose());
        self.ss.encrypt_and_hash(&block, out).unwrap();
        self.ss.encrypt_and_hash(b"", out).unwrap();
    }

    /// As the responder: message 2 for the initiator's message 1.
    fn m2(&mut self, m1: &[u8]) -> Vec<u8> {
        let h = hello(self.name).unwrap();
        let (re, payload) = m1[h.len()..].split_at(self.e.public().len());
        self.ss.mix_hash(&h);
        self.ss.mix_hash(re);
        self.ss.encrypt_and_hash(payload, &mut Vec::new()).unwrap();
        let mut out = self.e.public();
        self.ss.mix_hash(&out.clone());
        self.ss
            .mix_key(labels::SIGMA_DH_EE, self.e.agree(re).expose());
        self.auth_block(
            labels::SIGMA_SIG_RESPONDER,
            labels::SIGMA_MAC_RESPONDER,
            &mut out,
        );
        out
    }

    /// As the initiator: message 1.
    fn m1(&mut self) -> Vec<u8> {
        let mut out = hello(self.name).unwrap();
        self.ss.mix_hash(&out.clone());
        let e = self.e.public();
        self.ss.mix_hash(&e);
        out.extend_from_slice(&e);
        self.ss.encrypt_and_hash(b"", &mut out).unwrap();
        out
    }

    /// As the initiator: message 3 after the responder's message 2 (whose
    /// identity block it decrypts without checking: it does not care).
    fn m3(&mut self, m2: &[u8]) -> Vec<u8> {
        let n = self.e.public().len();
        // identity, a 64-byte signature (both schemes), the MAC, the tag
        let block_len = self.identity.len() + 64 + 32 + 16;
        let (re, rest) = m2.split_at(n);
        self.ss.mix_hash(re);
        self.ss
            .mix_key(labels::SIGMA_DH_EE, self.e.agree(re).expose());
        let (block, payload) = rest.split_at(block_len);
        self.ss.decrypt_and_hash(block, &mut Vec::new()).unwrap();
        self.ss.decrypt_and_hash(payload, &mut Vec::new()).unwrap();
        let mut out = Vec::new();
        self.auth_block(
            labels::SIGMA_SIG_INITIATOR,
            labels::SIGMA_MAC_INITIATOR,
            &mut out,
        );
        out
    }
}

/// A (the victim) expects B. The attacker holds A's signing key and
/// claims to be B: it can make every field of B's identity block except
/// B's signature over this session's transcript, so A refuses it with
/// `BadSignature`, in either role. With B's key the same forger passes.
#[test]
fn sigma_a_stolen_key_does_not_impersonate_others_to_its_owner() {
    for name in [SIGMA_CHACHAPOLY, SIGMA_P256_AESGCM] {
        let b_id = public(name, B).to_vec();
        for (who_signs, accepted) in [(B, true), (A, false)] {
            let key = signer(name, who_signs);
            // A initiates; the forger answers as B.
            let mut a = build(
                name,
                Role::Initiator,
                &keys(name, Role::Initiator, A, B, true),
            );
            let mut m1 = Vec::new();
            a.write_message(b"", &mut m1).unwrap();
            let m2 = SigmaForger::new(name, b_id.clone(), key.as_ref()).m2(&m1);
            let r = a.read_message(&m2, &mut Vec::new());
            check(name, "A initiator", r, accepted);

            // A responds; the forger initiates as B.
            let mut a = build(
                name,
                Role::Responder,
                &keys(name, Role::Responder, A, B, true),
            );
            let mut forger = SigmaForger::new(name, b_id.clone(), key.as_ref());
            a.read_message(&forger.m1(), &mut Vec::new()).unwrap();
            let mut m2 = Vec::new();
            a.write_message(b"", &mut m2).unwrap();
            let r = a.read_message(&forger.m3(&m2), &mut Vec::new());
            check(name, "A responder", r, accepted);
            if accepted {
                assert_eq!(
                    a.finish().unwrap().remote_static().unwrap().as_bytes(),
                    &b_id[..]
                );
            }
        }
    }
}

fn check(name: &str, case: &str, result: Result<(), Error>, accepted: bool) {
    match (result, accepted) {
        (Ok(()), true) => {}
        (Err(Error::PeerMisbehaved(PeerMisbehaved::BadSignature)), false) => {}
        (other, _) => panic!("{name} {case}: expected accepted={accepted}, got {other:?}"),
    }
}

// ---- hybrid and PQ ---------------------------------------------------

fn x(seed: u8) -> StaticSecret {
    StaticSecret::from_private(Secret::new([seed; 32]))
}

fn kem(seed: u8) -> MlKem768KeyPair {
    MlKem768KeyPair::from_seed(&Secret::new([seed; 64]))
}

fn is_pq(name: &str) -> bool {
    name.starts_with("akex-pq")
}

/// B's identity as `claim` plays it, against a real A that expects B.
fn against_a(
    name: &'static str,
    a_role: Role,
    claim: Claim,
) -> (Outcome, Box<dyn Handshake>, Engine) {
    let mut a = build(name, a_role, &keys(name, a_role, A, B, true));
    let peer = (
        *x(A).public(),
        is_pq(name).then(|| kem(A).encapsulation_key().to_vec()),
    );
    let mut engine = Engine::new(name, a_role.peer(), Some(claim), Some(peer));
    let outcome = duel(&mut a, &mut engine);
    (outcome, a, engine)
}

fn true_b(name: &str) -> Claim {
    Claim::real(&x(B), is_pq(name).then(|| kem(B)).as_ref())
}

/// B's public keys, claimed by someone who holds `x_key` and `kem_key`.
fn claimed_b(name: &str, x_key: &StaticSecret, kem_key: &MlKem768KeyPair) -> Claim {
    let ek = kem(B).encapsulation_key().to_vec();
    Claim::impostor(
        x(B).public(),
        is_pq(name).then_some(&ek[..]),
        x_key,
        kem_key,
    )
}

/// The faithful forger with B's true keys completes against A, and both
/// ends hold the same traffic secrets.
fn assert_forger_is_faithful(name: &'static str, a_role: Role) {
    let (outcome, mut a, mut engine) = against_a(name, a_role, true_b(name));
    assert!(
        matches!(outcome, Outcome::Finished),
        "{name} {a_role}: {outcome:?}"
    );
    let est = a.finish().unwrap();
    let (i2r, r2i) = engine.split();
    let (mine, theirs) = if a_role == Role::Initiator {
        (i2r, r2i)
    } else {
        (r2i, i2r)
    };
    assert_eq!(est.sending_secret(), &mine, "{name} {a_role}");
    assert_eq!(est.receiving_secret(), &theirs, "{name} {a_role}");
}

/// KCI: the attacker holds A's X25519 (and ML-KEM) keys and claims to be
/// B. Everything it computes with A's keys that a real B would compute
/// with its own comes out exact (`ss`); the rest (`es`/`se` with A's
/// ephemeral, decapsulation for B) it cannot. Where the specs say A
/// accepts something anyway (IK's message 1: "KCI-resistant only from
/// msg 2"), the attacker is stuck at the next message and never shares a
/// key with A.
#[test]
fn hybrid_and_pq_a_stolen_key_does_not_impersonate_others_to_its_owner() {
    use Outcome::*;
    let cases: [(&'static str, Role, &str); 8] = [
        (HYBRID_XX, Role::Initiator, "A refuses msg 2"),
        (HYBRID_XX, Role::Responder, "A refuses msg 3"),
        (HYBRID_IK, Role::Initiator, "attacker stuck at msg 1"),
        (HYBRID_IK, Role::Responder, "attacker stuck at msg 2"),
        (PQ_XX, Role::Initiator, "A refuses msg 2"),
        (PQ_XX, Role::Responder, "A refuses msg 3"),
        (PQ_IK, Role::Initiator, "attacker stuck at msg 1"),
        (PQ_IK, Role::Responder, "attacker stuck at msg 2"),
    ];
    for (name, a_role, expected) in cases {
        assert_forger_is_faithful(name, a_role);
        let (outcome, a, _) = against_a(name, a_role, claimed_b(name, &x(A), &kem(A)));
        let got = match &outcome {
            RealRefused(k, _) => format!("A refuses msg {}", k + 1),
            EngineStuck(k, _) => format!("attacker stuck at msg {}", k + 1),
            Finished => "finished".into(),
        };
        assert_eq!(got, expected, "{name}, A {a_role}: {outcome:?}");
        if let RealRefused(_, e) = &outcome {
            assert!(
                matches!(e, Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)),
                "{name}: {e:?}"
            );
        }
        // IK, A responding: A accepted message 1 as B's (documented) and
        // finished, with keys the attacker could not follow.
        assert_eq!(
            a.is_finished(),
            expected == "attacker stuck at msg 2",
            "{name} {a_role}"
        );
    }
}

/// A PQ identity is an X25519 key and an ML-KEM-768 key: holding either
/// half of B's identity alone does not let an attacker pass as B, in
/// either role (protocols/pq.md). The hybrid family, authenticated by
/// X25519 alone, falls to B's X25519 key (its documented limit).
#[test]
fn pq_impersonation_needs_both_halves_of_the_identity() {
    let other_x = x(77);
    let other_kem = kem(77);
    for name in [PQ_XX, PQ_IK] {
        for a_role in [Role::Initiator, Role::Responder] {
            assert_forger_is_faithful(name, a_role);
            let ek = kem(B).encapsulation_key().to_vec();
            // B's X25519 key broken, its ML-KEM key not.
            let mut claim = Claim::real(&x(B), Some(&kem(B)));
            let wrong = other_kem.clone();
            claim.decaps = Box::new(move |ct| wrong.decapsulate(ct).unwrap());
            let (outcome, a, _) = against_a(name, a_role, claim);
            assert!(
                !matches!(outcome, Outcome::Finished),
                "{name} {a_role}: {outcome:?}"
            );
            if a.is_finished() {
                // A responding wrote the last message and finished, but the
                // attacker cannot read it (its skem is to B's ML-KEM key).
                assert!(matches!(outcome, Outcome::EngineStuck(..)), "{outcome:?}");
            }
            // B's ML-KEM key broken, its X25519 key not.
            let claim = Claim::impostor(x(B).public(), Some(&ek), &other_x, &kem(B));
            let (outcome, a, _) = against_a(name, a_role, claim);
            assert!(
                !matches!(outcome, Outcome::Finished),
                "{name} {a_role}: {outcome:?}"
            );
            assert!(!a.is_finished() || matches!(outcome, Outcome::EngineStuck(..)));
        }
    }
    for name in [HYBRID_XX, HYBRID_IK] {
        let (outcome, _, _) = against_a(name, Role::Initiator, Claim::real(&x(B), None));
        assert!(matches!(outcome, Outcome::Finished), "{name}: {outcome:?}");
    }
}

// ---- the hybrid key schedule -----------------------------------------

fn keys_from(name: &str, chain: &[(String, Secret<32>)]) -> (TrafficSecret, TrafficSecret) {
    // ck starts as SHA-256(name); the prologue, hello and transcript enter
    // only h. Split() uses ck alone.
    let mut ss = SymmetricState::new(name, AeadAlgorithm::ChaChaPoly, b"");
    for (label, secret) in chain {
        ss.mix_key(label.as_bytes(), secret.expose());
    }
    ss.split()
}

/// "Confidential if either X25519 or ML-KEM-768 holds" (hybrid.md; pq.md
/// too): the traffic secrets are the HKDF chain over exactly the X25519
/// results and the ML-KEM secrets, each under its own label, in the order
/// the specs give (so in IK and NK the first payload is under X25519 keys
/// only, and pqIK's under `es` and `skem`). An attacker who knows every
/// X25519 secret of a session computes every input but the ML-KEM
/// secrets, and any guess for one gives other keys; one who knows the
/// ML-KEM secrets but guesses any X25519 result gets other keys too.
#[test]
fn hybrid_keys_need_both_the_x25519_and_the_mlkem_secrets() {
    let schedules: [(&'static str, &[&str]); 5] = [
        (HYBRID_XX, &["dh ee", "kem ekem", "dh es", "dh se"]),
        (HYBRID_IK, &["dh es", "dh ss", "dh ee", "kem ekem", "dh se"]),
        (HYBRID_NK, &["dh es", "dh ee", "kem ekem"]),
        (
            PQ_XX,
            &[
                "dh ee", "kem ekem", "dh es", "kem skem", "dh se", "kem skem",
            ],
        ),
        (
            PQ_IK,
            &[
                "dh es", "kem skem", "dh ss", "dh ee", "kem ekem", "dh se", "kem skem",
            ],
        ),
    ];
    for (name, order) in schedules {
        let pq = is_pq(name);
        let initiator_claim =
            (name != HYBRID_NK).then(|| Claim::real(&x(A), pq.then(|| kem(A)).as_ref()));
        let responder = (
            *x(B).public(),
            pq.then(|| kem(B).encapsulation_key().to_vec()),
        );
        let mut engine = Engine::new(name, Role::Initiator, initiator_claim, Some(responder));
        let mut real = build(
            name,
            Role::Responder,
            &keys(name, Role::Responder, B, A, false),
        );
        assert!(
            matches!(duel(&mut real, &mut engine), Outcome::Finished),
            "{name}"
        );
        let est = real.finish().unwrap();
        let labels: Vec<String> = engine.chain.iter().map(|(l, _)| l.clone()).collect();
        let family = if pq { "pq" } else { "hybrid" };
        let want: Vec<String> = order.iter().map(|l| format!("akex {family} {l}")).collect();
        assert_eq!(labels, want, "{name}: the key schedule");

        // With every input the attacker recomputes the real keys: nothing
        // else enters them.
        let (i2r, r2i) = keys_from(name, &engine.chain);
        assert_eq!(
            (&i2r, &r2i),
            (est.receiving_secret(), est.sending_secret()),
            "{name}"
        );

        let guess_kem = kem(99).decapsulate(&[7; 1088]).unwrap();
        for (k, (label, _)) in engine.chain.iter().enumerate() {
            let mut chain = engine.chain.clone();
            chain[k].1 = if label.contains("kem") {
                guess_kem.clone() // all X25519 known, ML-KEM guessed
            } else {
                X25519Private::new(&Secret::new([42; 32]))
                    .agree(x(B).public())
                    .unwrap()
            };
            let (g1, g2) = keys_from(name, &chain);
            assert_ne!(&g1, est.receiving_secret(), "{name}: {label} guessed");
            assert_ne!(&g2, est.sending_secret(), "{name}: {label} guessed");
        }
    }
}

// ---- SIGMA: what is and is not hidden or authenticated ------------------

/// Payload 1 goes out before any key: in clear, and unchecked until
/// message 2, whose transcript covers it. A changed payload 1 is taken by
/// the responder and refused by the initiator at message 2.
#[test]
fn sigma_payload_1_is_clear_and_checked_at_message_2() {
    for name in [SIGMA_CHACHAPOLY, SIGMA_P256_AESGCM] {
        let mut i = build(
            name,
            Role::Initiator,
            &keys(name, Role::Initiator, A, B, true),
        );
        let mut r = build(
            name,
            Role::Responder,
            &keys(name, Role::Responder, B, A, true),
        );
        let mut m1 = Vec::new();
        i.write_message(b"public greeting", &mut m1).unwrap();
        assert!(contains(&m1, b"public greeting"), "{name}");
        let at = m1.len() - 1;
        m1[at] ^= 1;
        let mut payload = Vec::new();
        r.read_message(&m1, &mut payload).unwrap();
        assert_eq!(payload, b"public greetinf", "{name}");
        let mut m2 = Vec::new();
        r.write_message(b"", &mut m2).unwrap();
        let err = i.read_message(&m2, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)),
            "{err:?}"
        );
    }
}

/// The responder's identity is encrypted under keys from an
/// unauthenticated DH: an active attacker who starts a handshake learns it
/// from message 2 (hidden from passive observers only, as sigma.md says).
#[test]
fn sigma_responder_identity_is_learned_by_an_active_initiator() {
    for name in [SIGMA_CHACHAPOLY, SIGMA_P256_AESGCM] {
        let mut attacker = build(
            name,
            Role::Initiator,
            &keys(name, Role::Initiator, 66, B, false),
        );
        let mut r = build(
            name,
            Role::Responder,
            &keys(name, Role::Responder, B, A, true),
        );
        let (mut m1, mut m2) = (Vec::new(), Vec::new());
        attacker.write_message(b"", &mut m1).unwrap();
        r.read_message(&m1, &mut Vec::new()).unwrap();
        r.write_message(b"", &mut m2).unwrap();
        attacker.read_message(&m2, &mut Vec::new()).unwrap();
        assert_eq!(attacker.remote_static(), Some(public(name, B)), "{name}");
        assert!(!contains(&m2, &public(name, B)), "{name}: not in clear");
    }
}

/// ECDSA with a fresh nonce per signature (sigma-p256.md, "Nonce
/// quality"): two signatures of one message differ, and both verify.
#[test]
fn p256_signatures_draw_a_fresh_nonce_each_time() {
    let key = P256SigningKey::from_scalar(&Secret::new([3; 32])).unwrap();
    let (s1, s2) = (
        key.sign(b"same message").unwrap(),
        key.sign(b"same message").unwrap(),
    );
    assert_ne!(s1, s2);
    for s in [&s1, &s2] {
        akex::hazmat::p256::verify(key.public(), b"same message", s).unwrap();
    }
    assert_ne!(s1[..32], s2[..32], "r repeats: the nonce repeated");
}

/// "Identities encrypted under keys that include ML-KEM secrets:
/// PQ-hidden" (pq.md pqXX, hybrid.md XX): each static identity goes out
/// only after an ML-KEM secret entered the chaining key, as in the real
/// implementation (which the forger matches byte for byte).
#[test]
fn xx_identities_travel_under_mlkem_keys() {
    let mut engine = Engine::new(
        PQ_XX,
        Role::Initiator,
        Some(Claim::real(&x(A), Some(&kem(A)))),
        None,
    );
    let mut real = build(
        PQ_XX,
        Role::Responder,
        &keys(PQ_XX, Role::Responder, B, A, false),
    );
    assert!(matches!(duel(&mut real, &mut engine), Outcome::Finished));
    assert_eq!(engine.before_statics.len(), 2);
    for labels in &engine.before_statics {
        assert!(labels.iter().any(|l| l.contains(" kem ")), "{labels:?}");
    }
    // Hybrid XX too: both statics come after `ekem` (hybrid.md: hidden
    // from passive attackers, a quantum one included).
    let mut engine = Engine::new(
        HYBRID_XX,
        Role::Initiator,
        Some(Claim::real(&x(A), None)),
        None,
    );
    let mut real = build(
        HYBRID_XX,
        Role::Responder,
        &keys(HYBRID_XX, Role::Responder, B, A, false),
    );
    assert!(matches!(duel(&mut real, &mut engine), Outcome::Finished));
    assert_eq!(engine.before_statics.len(), 2);
    for labels in &engine.before_statics {
        assert!(labels.iter().any(|l| l.contains(" kem ")), "{labels:?}");
    }
}
