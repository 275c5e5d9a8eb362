//! PQ-authenticated handshakes (PQNoise-style pqXX / pqIK with ML-KEM-768
//! static keys, hybrid with X25519): round trips and negative tests, each
//! asserting a typed error.

mod hybrid_support;

use akex::error::{ConfigError, Error, PeerMisbehaved, TrustFailure};
use akex::handshake::hybrid::{self, HybridConfig, HybridHandshake, HYBRID_IK};
use akex::handshake::pq::{PqConfig, PqHandshake, PQ_IK, PQ_XX};
use akex::{Handshake, Role};
use hybrid_support::*;

const ALL: [&str; 2] = [PQ_XX, PQ_IK];

fn identity(p: &Party) -> Vec<u8> {
    let mut v = p.x.public().to_vec();
    v.extend_from_slice(p.kem.encapsulation_key());
    v
}

#[test]
fn round_trips() {
    let a = Party::new(1);
    let b = Party::new(2);
    for name in ALL {
        let (i, r) = pair(name, &a, &b, 1);
        let (ie, re, transcript) = run(i, r).unwrap();
        let info = hybrid::protocol_info(name).unwrap();
        assert!(info.pq_authentication);
        assert_eq!(transcript.len(), info.messages);
        for (k, (m, size)) in transcript.iter().zip(&info.message_sizes).enumerate() {
            assert_eq!(m.len(), size + format!("msg{k}").len(), "{name} msg {k}");
        }
        // The authenticated identity is X25519 public key || ML-KEM-768 ek.
        assert_eq!(
            ie.remote_static().map(|k| k.as_bytes()),
            Some(&identity(&b)[..])
        );
        assert_eq!(
            re.remote_static().map(|k| k.as_bytes()),
            Some(&identity(&a)[..])
        );
        check_established(ie, re);
    }
}

#[test]
fn tampering_each_field_fails() {
    for name in ALL {
        let cases = tamper_every_field(name);
        println!("{name}: {cases} tamper cases");
        assert!(cases > 20);
    }
}

/// The property the hybrid handshake lacks: an attacker who has broken the
/// responder's X25519 static key (say, with a quantum computer) but not its
/// ML-KEM key cannot impersonate it in pqIK, while in hybrid IK it can.
#[test]
fn broken_x25519_static_does_not_allow_impersonation() {
    let a = Party::new(1);
    let b = Party::new(2);
    let mallory = Party {
        x: b.x.clone(),
        kem: Party::new(3).kem,
    };
    // pqIK: the initiator encapsulates to b's real ML-KEM key; mallory's
    // decapsulation yields the implicit-rejection key.
    let (i, _) = pair(PQ_IK, &a, &b, 1);
    let (_, r) = pair(PQ_IK, &a, &mallory, 1);
    let (k, side, err) = run(i, r).err().unwrap();
    assert_eq!((k, side), (0, Role::Responder));
    assert!(matches!(
        err,
        Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)
    ));
    // Hybrid IK authenticates with X25519 alone: the same attacker succeeds.
    let (i, _) = pair(HYBRID_IK, &a, &b, 1);
    let (_, r) = pair(HYBRID_IK, &a, &mallory, 1);
    assert!(run(i, r).is_ok());
}

#[test]
fn wrong_peer_keys_fail() {
    let a = Party::new(1);
    let b = Party::new(2);
    let c = Party::new(3);
    // pqIK initiator with c's keys, talking to b.
    let (i, _) = pair(PQ_IK, &a, &c, 1);
    let (_, r) = pair(PQ_IK, &a, &b, 1);
    let (_, side, err) = run(i, r).err().unwrap();
    assert_eq!(side, Role::Responder);
    assert!(matches!(
        err,
        Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)
    ));
    // pqXX with pinned keys: a different ML-KEM key (same X25519 key) is refused.
    let ic = PqConfig::new(PQ_XX)
        .unwrap()
        .local_static(a.x.clone())
        .local_kem(a.kem.clone())
        .remote(pq_key(b.x.public(), c.kem.encapsulation_key()));
    let (_, r) = pair(PQ_XX, &a, &b, 1);
    let (k, side, err) = run(PqHandshake::initiator(ic).unwrap(), r).err().unwrap();
    assert_eq!((k, side), (1, Role::Initiator));
    assert!(matches!(
        err,
        Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch)
    ));
    // Responder pins the initiator (both patterns).
    for name in ALL {
        let (i, _) = pair(name, &a, &b, 1);
        let rc = PqConfig::new(name)
            .unwrap()
            .local_static(b.x.clone())
            .local_kem(b.kem.clone())
            .remote(c.pq_key());
        let (_, side, err) = run(i, PqHandshake::responder(rc).unwrap()).err().unwrap();
        assert_eq!(side, Role::Responder);
        assert!(
            matches!(err, Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch)),
            "{name}: {err:?}"
        );
    }
    // An invalid remote ML-KEM key is a configuration error.
    assert!(matches!(
        PqHandshake::initiator(
            PqConfig::new(PQ_IK)
                .unwrap()
                .local_static(a.x.clone())
                .local_kem(a.kem.clone())
                .remote(pq_key(b.x.public(), &[0xffu8; 1184]))
        ),
        Err(Error::Config(ConfigError::InvalidKey(_)))
    ));
    // Half a PQ peer key (the X25519 half alone) is refused: the ML-KEM
    // half would go unchecked.
    assert!(matches!(
        PqHandshake::initiator(
            PqConfig::new(PQ_XX)
                .unwrap()
                .local_static(a.x.clone())
                .local_kem(a.kem.clone())
                .remote(b.x_key())
        ),
        Err(Error::Config(ConfigError::WrongKeyKind { .. }))
    ));
    // A missing ML-KEM static key is refused up front.
    assert!(matches!(
        PqHandshake::responder(PqConfig::new(PQ_XX).unwrap().local_static(b.x.clone())),
        Err(Error::Config(ConfigError::MissingLocalKey))
    ));
    // Hybrid protocols take no ML-KEM static keys.
    assert!(matches!(
        HybridHandshake::initiator(
            HybridConfig::new(hybrid::HYBRID_XX)
                .unwrap()
                .local_static(a.x.clone())
                .remote(b.pq_key())
        ),
        Err(Error::Config(ConfigError::WrongKeyKind { .. }))
    ));
}

#[test]
fn reflection_and_cross_session_fail() {
    let a = Party::new(1);
    let b = Party::new(2);
    for name in ALL {
        // Reflection of the first message to its sender.
        let (mut i, _) = pair(name, &a, &b, 1);
        let mut m1 = Vec::new();
        i.write_message(b"", &mut m1).unwrap();
        let err = i.read_message(&m1, &mut Vec::new()).unwrap_err();
        assert!(is_tamper_error(&err), "{name}: {err:?}");
        // Reflection of the responder's reply to the responder.
        let (mut i, mut r) = pair(name, &a, &b, 1);
        let mut m1 = Vec::new();
        i.write_message(b"", &mut m1).unwrap();
        r.read_message(&m1, &mut Vec::new()).unwrap();
        let mut m2 = Vec::new();
        r.write_message(b"", &mut m2).unwrap();
        let err = r.read_message(&m2, &mut Vec::new()).unwrap_err();
        assert!(
            is_tamper_error(&err)
                || matches!(
                    err,
                    Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage)
                ),
            "{name}: {err:?}"
        );
        // Session 2's reply delivered to session 1's initiator.
        let (mut i1, mut r1) = pair(name, &a, &b, 1);
        let (mut i2, mut r2) = pair(name, &a, &b, 2);
        let (mut m1, mut n1, mut n2) = (Vec::new(), Vec::new(), Vec::new());
        i1.write_message(b"", &mut m1).unwrap();
        i2.write_message(b"", &mut n1).unwrap();
        r1.read_message(&m1, &mut Vec::new()).unwrap();
        r2.read_message(&n1, &mut Vec::new()).unwrap();
        r2.write_message(b"", &mut n2).unwrap();
        let err = i1.read_message(&n2, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)),
            "{name}: {err:?}"
        );
    }
}

/// ML-KEM-768 identities from the key store (stored as their 64-byte
/// seed in PKCS#8) drive a pqXX handshake through the registry.
#[test]
fn key_store_mlkem_identities_work() {
    use akex::handshake::registry::{self, HandshakeKeys};
    use akex::keys::{KeyStore, KeyType, Protection};
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let p = Protection::InsecurePlaintext;
    for name in ["alice-kem", "bob-kem"] {
        store.generate(name, KeyType::Mlkem768, &p, None).unwrap();
    }
    let alice = store.load("alice-kem", None).unwrap().mlkem768().unwrap();
    let bob = store.load("bob-kem", None).unwrap().mlkem768().unwrap();
    assert_eq!(
        &bob.encapsulation_key()[..],
        &store.find("bob-kem").unwrap().public_bytes()[..]
    );
    let a = Party::new(1);
    let b = Party::new(2);
    let remote = pq_key(b.x.public(), bob.encapsulation_key());
    let ik = HandshakeKeys::new()
        .static_key(a.x.clone())
        .kem_key(alice)
        .remote(remote);
    let rk = HandshakeKeys::new().static_key(b.x.clone()).kem_key(bob);
    let mut i = registry::initiator(PQ_XX, &ik).unwrap();
    let mut r = registry::responder(&[PQ_XX, PQ_IK], &rk).unwrap();
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
    check_established(i.finish().unwrap(), r.finish().unwrap());
    // An x25519 identity is not an ML-KEM key.
    store.generate("x", KeyType::X25519, &p, None).unwrap();
    assert!(store.load("x", None).unwrap().mlkem768().is_err());
}
