//! Post-compromise security of the DH ratchet against an active attacker
//! holding every session secret: it cannot take a step over from a side
//! with a long-term key, and can from hybrid NK's anonymous initiator.

mod session_support;

use std::time::Duration;

use akex::crypto::{OsRng, Secret};
use akex::error::PeerMisbehaved;
use akex::session::{Record, RecordType, Session, SessionConfig};
use akex::{Error, Established, Handshake, Role};
use session_support::*;

/// Runs `name` through the registry and returns both sides' results.
fn real_handshake(
    name: &str,
    ik: akex::HandshakeKeys,
    rk: akex::HandshakeKeys,
) -> (Established, Established) {
    use akex::handshake::registry;
    let mut i = registry::initiator(name, &ik).unwrap();
    let mut r = registry::responder(&[name], &rk).unwrap();
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

/// What an attacker who compromised a session's state holds: every
/// session secret (both traffic secrets, the root) and everything public.
/// It builds its own session from them to play `role`, with its own
/// long-term key for the ratchet (it does not have the victim's).
fn stolen(victim: &Established, role: Role, family: &str, config: SessionConfig) -> Session {
    use akex::keys::{SigningKey, StaticSecret};
    let (i2r, r2i) = match victim.role() {
        Role::Initiator => (victim.sending_secret(), victim.receiving_secret()),
        Role::Responder => (victim.receiving_secret(), victim.sending_secret()),
    };
    let e = Established::new(
        victim.protocol().to_string(),
        role,
        victim.handshake_hash().to_vec(),
        victim.remote_static().cloned(),
        victim.aead(),
        i2r.clone(),
        r2i.clone(),
    )
    .with_root_secret(victim.root_secret().unwrap().clone());
    // The victim's peer's public key is public; its own private key is not.
    let peer_public = |e: &Established| -> [u8; 32] {
        e.remote_static().unwrap().as_bytes()[..32]
            .try_into()
            .unwrap()
    };
    let e = match family {
        "sigma" => {
            let own = SigningKey::from_seed(Secret::new([0x66; 32]));
            e.with_ratchet_signing_keys(own, peer_public(victim))
        }
        "nk-initiator" => e.with_ratchet_static_keys(None, Some(peer_public(victim))),
        _ => {
            let own = StaticSecret::from_private(Secret::new([0x66; 32]));
            let remote = victim.remote_static().map(|_| peer_public(victim));
            e.with_ratchet_static_keys(Some(own), remote)
        }
    };
    Session::with_config(e, config).unwrap()
}

fn copy(e: &Established) -> Established {
    let (i2r, r2i) = match e.role() {
        Role::Initiator => (e.sending_secret(), e.receiving_secret()),
        Role::Responder => (e.receiving_secret(), e.sending_secret()),
    };
    Established::new(
        e.protocol().to_string(),
        e.role(),
        e.handshake_hash().to_vec(),
        e.remote_static().cloned(),
        e.aead(),
        i2r.clone(),
        r2i.clone(),
    )
}

/// The families whose handshakes authenticate both sides, with keys.
fn mutual_families() -> Vec<(
    &'static str,
    &'static str,
    akex::HandshakeKeys,
    akex::HandshakeKeys,
)> {
    use akex::handshake::hybrid::{HYBRID_IK, HYBRID_XX};
    use akex::handshake::pq::{PQ_IK, PQ_XX};
    use akex::handshake::sigma::SIGMA_CHACHAPOLY;
    use akex::keys::{MlKem768KeyPair, SigningKey, StaticSecret};
    use akex::{HandshakeKeys, KeyKind, PublicKey};
    let x = |b: u8| StaticSecret::from_private(Secret::new([b; 32]));
    let ed = |b: u8| SigningKey::from_seed(Secret::new([b; 32]));
    let kem = |b: u8| MlKem768KeyPair::from_seed(&Secret::new([b; 64]));
    let pq_id = |s: &StaticSecret, k: &MlKem768KeyPair| {
        let mut v = s.public().to_vec();
        v.extend_from_slice(k.encapsulation_key());
        PublicKey::from_bytes(KeyKind::X25519MlKem768, &v).unwrap()
    };
    vec![
        (
            HYBRID_XX,
            "static-dh",
            HandshakeKeys::new().static_key(x(1)),
            HandshakeKeys::new().static_key(x(2)),
        ),
        (
            HYBRID_IK,
            "static-dh",
            HandshakeKeys::new()
                .static_key(x(1))
                .remote(PublicKey::x25519(*x(2).public())),
            HandshakeKeys::new().static_key(x(2)),
        ),
        (
            PQ_XX,
            "static-dh",
            HandshakeKeys::new().static_key(x(1)).kem_key(kem(1)),
            HandshakeKeys::new().static_key(x(2)).kem_key(kem(2)),
        ),
        (
            PQ_IK,
            "static-dh",
            HandshakeKeys::new()
                .static_key(x(1))
                .kem_key(kem(1))
                .remote(pq_id(&x(2), &kem(2))),
            HandshakeKeys::new().static_key(x(2)).kem_key(kem(2)),
        ),
        (
            SIGMA_CHACHAPOLY,
            "sigma",
            HandshakeKeys::new().signing_key(ed(1)),
            HandshakeKeys::new().signing_key(ed(2)),
        ),
    ]
}

/// The claim of protocols/session.md, tested: an attacker who holds every
/// secret of a session (both traffic secrets and the root, so it reads and
/// forges records at will) but no long-term private key cannot take a DH
/// ratchet step over. Impersonating either side, its step fails at the
/// honest side with a typed error (the peer's signature, or the key
/// confirmation that needs the static DH it cannot compute), and the keys
/// the honest side moves to are not the attacker's.
#[test]
fn ratchet_resists_an_active_attacker_holding_every_session_secret() {
    for (name, family, ik, rk) in mutual_families() {
        for hybrid in [false, true] {
            let config = never().hybrid_ratchet(hybrid);
            // 1. The attacker plays the initiator and starts a step with B.
            let (ie, re) = real_handshake(name, ik.clone(), rk.clone());
            let mut m = stolen(&ie, Role::Initiator, family, config.clone());
            let mut b = Session::with_config(re, config.clone()).unwrap();
            let mut init = Vec::new();
            assert!(m.start_ratchet(&mut OsRng, &mut init).unwrap());
            match b.open_record(&init, &mut Vec::new()) {
                // SIGMA: the init's signature is the victim's or nobody's.
                Err(Error::PeerMisbehaved(PeerMisbehaved::BadSignature)) => {
                    assert_eq!(family, "sigma");
                    assert!(b.has_failed());
                }
                Ok(Record::Ratchet) => {
                    assert_ne!(family, "sigma", "{name}: a forged signature passed");
                    let mut response = Vec::new();
                    assert!(b
                        .poll_control(Duration::ZERO, &mut OsRng, &mut response)
                        .unwrap());
                    // B moved its sending key; the attacker cannot follow.
                    let mut later = Vec::new();
                    b.seal_record(RecordType::Data, b"for A only", &mut later)
                        .unwrap();
                    assert!(
                        matches!(
                            m.open_record(&response, &mut Vec::new()),
                            Err(Error::PeerMisbehaved(PeerMisbehaved::BadKeyConfirmation))
                        ),
                        "{name}: the attacker completed the step as A"
                    );
                    let mut spy = Session::with_config(copy(&ie), never()).unwrap();
                    let _ = spy.open_record(&response, &mut Vec::new());
                    assert!(spy.open_record(&later, &mut Vec::new()).is_err());
                }
                other => panic!("{name}: unexpected {other:?}"),
            }

            // 2. The attacker plays the responder and answers A's step.
            let (ie, re) = real_handshake(name, ik.clone(), rk.clone());
            let mut a = Session::with_config(ie, config.clone()).unwrap();
            let mut m = stolen(&re, Role::Responder, family, config.clone());
            let mut init = Vec::new();
            assert!(a.start_ratchet(&mut OsRng, &mut init).unwrap());
            assert_eq!(
                m.open_record(&init, &mut Vec::new()).unwrap(),
                Record::Ratchet
            );
            let mut response = Vec::new();
            assert!(m
                .poll_control(Duration::ZERO, &mut OsRng, &mut response)
                .unwrap());
            let err = a.open_record(&response, &mut Vec::new()).unwrap_err();
            let expected = if family == "sigma" {
                PeerMisbehaved::BadSignature
            } else {
                PeerMisbehaved::BadKeyConfirmation
            };
            assert!(
                matches!(err, Error::PeerMisbehaved(e) if e == expected),
                "{name}: {err:?}"
            );
            assert!(a.has_failed(), "{name}: A must stop");

            // 3. The honest sides ratchet, and records under the new keys
            //    are out of the attacker's reach.
            let (ie, re) = real_handshake(name, ik.clone(), rk.clone());
            let mut spy_a = Session::with_config(copy(&ie), never()).unwrap();
            let mut a = Session::with_config(ie, config.clone()).unwrap();
            let mut b = Session::with_config(re, config.clone()).unwrap();
            let mut w = Vec::new();
            assert!(a.start_ratchet(&mut OsRng, &mut w).unwrap());
            b.open_record(&w, &mut Vec::new()).unwrap();
            let _ = spy_a.open_record(&w, &mut Vec::new());
            settle(&mut a, &mut b);
            assert_eq!((a.ratchet_count(), b.ratchet_count()), (1, 1), "{name}");
            let mut secret = Vec::new();
            a.seal_record(RecordType::Data, b"healed", &mut secret)
                .unwrap();
            assert!(spy_a.open_record(&secret, &mut Vec::new()).is_err());
            let mut got = Vec::new();
            b.open_record(&secret, &mut got).unwrap();
            assert_eq!(got, b"healed");
        }
    }
}

/// The stated limit: a side the handshake did not authenticate (hybrid
/// NK's initiator has no long-term key) can be impersonated by an attacker
/// holding the session's secrets; the responder's side stays protected.
#[test]
fn ratchet_of_an_anonymous_initiator_is_only_passively_protected() {
    use akex::handshake::hybrid::HYBRID_NK;
    use akex::keys::StaticSecret;
    use akex::{HandshakeKeys, PublicKey};
    let s = StaticSecret::from_private(Secret::new([2; 32]));
    let ik = HandshakeKeys::new().remote(PublicKey::x25519(*s.public()));
    let rk = HandshakeKeys::new().static_key(s);
    // The attacker as the (anonymous) initiator: B cannot tell.
    let (ie, re) = real_handshake(HYBRID_NK, ik.clone(), rk.clone());
    let mut m = stolen(&ie, Role::Initiator, "nk-initiator", never());
    let mut b = Session::with_config(re, never()).unwrap();
    let mut w = Vec::new();
    assert!(m.start_ratchet(&mut OsRng, &mut w).unwrap());
    b.open_record(&w, &mut Vec::new()).unwrap();
    settle(&mut m, &mut b);
    assert_eq!(b.ratchet_count(), 1);
    send_data(&mut b, &mut m, b"the responder talks to the attacker");
    // The attacker as the responder: A's confirmation check stops it.
    let (ie, re) = real_handshake(HYBRID_NK, ik, rk);
    let mut a = Session::with_config(ie, never()).unwrap();
    let mut m = stolen(&re, Role::Responder, "hybrid", never());
    let mut w = Vec::new();
    assert!(a.start_ratchet(&mut OsRng, &mut w).unwrap());
    m.open_record(&w, &mut Vec::new()).unwrap();
    let mut resp = Vec::new();
    assert!(m
        .poll_control(Duration::ZERO, &mut OsRng, &mut resp)
        .unwrap());
    assert!(matches!(
        a.open_record(&resp, &mut Vec::new()),
        Err(Error::PeerMisbehaved(PeerMisbehaved::BadKeyConfirmation))
    ));
}
