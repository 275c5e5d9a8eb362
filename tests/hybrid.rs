//! Hybrid X25519 + ML-KEM-768 handshakes (XX, IK, NK): round trips and
//! negative tests, each asserting a typed error; negotiation through the
//! registry, and RSA key transport (feature `rsa-kt`). snow's Noise HFS
//! patterns: tests/hybrid_noise_hfs.rs.

mod hybrid_support;

use akex::crypto::Secret;

use akex::error::{ApiMisuse, ConfigError, Error, PeerMisbehaved, TrustFailure};
use akex::handshake::hybrid::{
    self, HybridConfig, HybridHandshake, HYBRID_IK, HYBRID_NK, HYBRID_XX,
};
use akex::keys::StaticSecret;
use akex::{Handshake, Role};
use hybrid_support::*;

const ALL: [&str; 3] = [HYBRID_XX, HYBRID_IK, HYBRID_NK];

#[test]
fn round_trips() {
    let a = Party::new(1);
    let b = Party::new(2);
    for name in ALL {
        let (i, r) = pair(name, &a, &b, 1);
        let (ie, re, transcript) = run(i, r).unwrap();
        let info = hybrid::protocol_info(name).unwrap();
        assert_eq!(transcript.len(), info.messages);
        for (k, (m, size)) in transcript.iter().zip(&info.message_sizes).enumerate() {
            assert_eq!(m.len(), size + format!("msg{k}").len(), "{name} msg {k}");
        }
        assert_eq!(
            ie.remote_static().map(|k| k.as_bytes()),
            Some(&b.x.public()[..])
        );
        if info.authenticates_initiator {
            assert_eq!(
                re.remote_static().map(|k| k.as_bytes()),
                Some(&a.x.public()[..])
            );
        } else {
            assert_eq!(re.remote_static().map(|k| k.as_bytes()), None);
        }
        assert_eq!(ie.protocol(), name);
        check_established(ie, re);
    }
}

#[test]
fn deterministic_with_injected_rng() {
    let a = Party::new(1);
    let b = Party::new(2);
    for name in ALL {
        let (i1, r1) = pair(name, &a, &b, 3);
        let (i2, r2) = pair(name, &a, &b, 3);
        let t1 = run(i1, r1).unwrap().2;
        let t2 = run(i2, r2).unwrap().2;
        assert_eq!(t1, t2, "{name}");
        let (i3, r3) = pair(name, &a, &b, 4);
        assert_ne!(run(i3, r3).unwrap().2, t1, "{name}");
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

#[test]
fn wrong_responder_key_fails() {
    let a = Party::new(1);
    let b = Party::new(2);
    let mallory = Party::new(3);
    // IK and NK: the initiator encrypts to a key the responder does not hold.
    for name in [HYBRID_IK, HYBRID_NK] {
        let (i, _) = pair(name, &a, &mallory, 1);
        let (_, r) = pair(name, &a, &b, 1);
        let (k, side, err) = run(i, r).err().unwrap();
        assert_eq!((k, side), (0, Role::Responder), "{name}");
        assert!(
            matches!(err, Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)),
            "{name}: {err:?}"
        );
    }
    // XX with a pinned responder key: a different responder is refused.
    let ic = HybridConfig::new(HYBRID_XX)
        .unwrap()
        .local_static(a.x.clone())
        .remote(mallory.x_key());
    let (_, r) = pair(HYBRID_XX, &a, &b, 1);
    let (k, side, err) = run(HybridHandshake::initiator(ic).unwrap(), r)
        .err()
        .unwrap();
    assert_eq!((k, side), (1, Role::Initiator));
    assert!(matches!(
        err,
        Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch)
    ));
    // The responder pins the initiator (XX and IK).
    for name in [HYBRID_XX, HYBRID_IK] {
        let (i, _) = pair(name, &a, &b, 1);
        let rc = HybridConfig::new(name)
            .unwrap()
            .local_static(b.x.clone())
            .remote(mallory.x_key());
        let (_, side, err) = run(i, HybridHandshake::responder(rc).unwrap())
            .err()
            .unwrap();
        assert_eq!(side, Role::Responder);
        assert!(
            matches!(err, Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch)),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn reflection_fails() {
    let a = Party::new(1);
    let b = Party::new(2);
    for name in ALL {
        // The initiator's first message sent back to it.
        let (mut i, _) = pair(name, &a, &b, 1);
        let mut m1 = Vec::new();
        i.write_message(b"", &mut m1).unwrap();
        let err = i.read_message(&m1, &mut Vec::new()).unwrap_err();
        assert!(is_tamper_error(&err), "{name}: {err:?}");
        // ... and to another initiator (a reflection to the sender's peer role).
        let (mut i2, _) = pair(name, &a, &b, 2);
        let err = i2.read_message(&m1, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage)
            ),
            "{name}: {err:?}"
        );
        // The responder's reply sent back to the responder.
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
    }
}

#[test]
fn message_from_another_session_fails() {
    let a = Party::new(1);
    let b = Party::new(2);
    for name in ALL {
        let (mut i1, mut r1) = pair(name, &a, &b, 1);
        let (mut i2, mut r2) = pair(name, &a, &b, 2);
        let (mut m1, mut n1) = (Vec::new(), Vec::new());
        i1.write_message(b"", &mut m1).unwrap();
        i2.write_message(b"", &mut n1).unwrap();
        r1.read_message(&m1, &mut Vec::new()).unwrap();
        r2.read_message(&n1, &mut Vec::new()).unwrap();
        let mut n2 = Vec::new();
        r2.write_message(b"", &mut n2).unwrap();
        // Session 2's reply delivered to session 1's initiator.
        let err = i1.read_message(&n2, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)),
            "{name}: {err:?}"
        );
        // A dead handshake stays dead.
        assert!(matches!(
            i1.write_message(b"", &mut Vec::new()),
            Err(Error::ApiMisuse(ApiMisuse::HandshakeDead))
        ));
    }
}

#[test]
fn misuse_and_config_errors() {
    let a = Party::new(1);
    let b = Party::new(2);
    assert!(matches!(
        HybridConfig::new("akex-hybrid-zz"),
        Err(Error::Config(ConfigError::UnsupportedProtocol { .. }))
    ));
    // IK/NK initiators need the responder's key; responders need their own.
    for name in [HYBRID_IK, HYBRID_NK] {
        assert!(matches!(
            HybridHandshake::initiator(HybridConfig::new(name).unwrap().local_static(a.x.clone())),
            Err(Error::Config(ConfigError::MissingRemoteKey))
        ));
    }
    for name in ALL {
        assert!(matches!(
            HybridHandshake::responder(HybridConfig::new(name).unwrap()),
            Err(Error::Config(ConfigError::MissingLocalKey))
        ));
    }
    // NK never authenticates the initiator: a pinned initiator key is refused.
    assert!(matches!(
        HybridHandshake::responder(
            HybridConfig::new(HYBRID_NK)
                .unwrap()
                .local_static(b.x.clone())
                .remote(a.x_key())
        ),
        Err(Error::Config(ConfigError::Invalid(_)))
    ));
    // Wrong turn kills the handshake; finish before the end is refused.
    let (mut i, r) = pair(HYBRID_XX, &a, &b, 1);
    assert!(matches!(
        Box::new(r).finish(),
        Err(Error::ApiMisuse(ApiMisuse::HandshakeNotFinished))
    ));
    assert!(i.read_message(&[0u8; 64], &mut Vec::new()).is_err());
    assert!(matches!(
        i.write_message(b"", &mut Vec::new()),
        Err(Error::ApiMisuse(ApiMisuse::HandshakeDead))
    ));
    // Oversized payloads are refused before anything is written.
    let (mut i, _) = pair(HYBRID_XX, &a, &b, 1);
    let mut out = Vec::new();
    assert!(matches!(
        i.write_message(&vec![0u8; 65535], &mut out),
        Err(Error::ApiMisuse(ApiMisuse::MessageTooLarge))
    ));
    assert!(out.is_empty());
    let _ = StaticSecret::from_private(Secret::new([0u8; 32]));
}

#[test]
fn debug_output_is_redacted() {
    let a = Party::new(1);
    let b = Party::new(2);
    let (i, _) = pair(HYBRID_IK, &a, &b, 1);
    let text = format!("{i:?}");
    assert!(!text.contains(&hex::encode(a.x.private().expose())));
    let cfg = HybridConfig::new(HYBRID_XX)
        .unwrap()
        .local_static(a.x.clone())
        .local_kem(a.kem.clone());
    let text = format!("{cfg:?}");
    assert!(text.contains("redacted"), "{text}");
    assert!(!text.contains(&hex::encode(a.x.private().expose())));
}

/// Through the registry in akex mode: one server accepting every hybrid and
/// PQ protocol, each initiator negotiating its own; a hello rewritten in
/// flight to another allowed protocol fails the handshake (no downgrade).
#[test]
fn registry_negotiation_and_no_downgrade() {
    use akex::handshake::pq::{PQ_IK, PQ_XX};
    use akex::handshake::registry::{self, HandshakeKeys};
    let a = Party::new(1);
    let b = Party::new(2);
    let names = [HYBRID_XX, HYBRID_IK, HYBRID_NK, PQ_XX, PQ_IK];
    let server = || {
        HandshakeKeys::new()
            .static_key(b.x.clone())
            .kem_key(b.kem.clone())
    };
    let client = |name: &str| {
        let pq = name.starts_with("akex-pq");
        let info = hybrid::protocol_info(name).unwrap();
        let remote = if pq { b.pq_key() } else { b.x_key() };
        let keys = HandshakeKeys::new()
            .static_key(a.x.clone())
            .kem_key(a.kem.clone());
        if info.initiator_needs_responder_key {
            keys.remote(remote)
        } else {
            keys
        }
    };
    let drive = |mut i: Box<dyn Handshake>,
                 mut r: Box<dyn Handshake>,
                 rewrite: Option<(&str, &str)>|
     -> Result<(), Error> {
        let mut first = true;
        while !(i.is_finished() && r.is_finished()) {
            let (w, rd) = if i.wants_write() {
                (&mut i, &mut r)
            } else {
                (&mut r, &mut i)
            };
            let mut msg = Vec::new();
            w.write_message(b"hi", &mut msg)?;
            if first {
                if let Some((from, to)) = rewrite {
                    // Same length names: swap the name inside the hello.
                    let pos = msg
                        .windows(from.len())
                        .position(|w| w == from.as_bytes())
                        .unwrap();
                    msg[pos..pos + to.len()].copy_from_slice(to.as_bytes());
                }
                first = false;
            }
            rd.read_message(&msg, &mut Vec::new())?;
        }
        let ie = i.finish()?;
        let re = r.finish()?;
        assert_eq!(ie.handshake_hash(), re.handshake_hash());
        Ok(())
    };
    for name in names {
        let i = registry::initiator(name, &client(name)).unwrap();
        let r = registry::responder(&names, &server()).unwrap();
        drive(i, r, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(registry::info(name).is_some(), "{name} is registered");
    }
    // Downgrade: the client chose hybrid IK; an attacker rewrites the hello
    // to hybrid NK (also allowed, same name length). The responder runs NK
    // on a transcript that differs from the initiator's: the handshake fails.
    let i = registry::initiator(HYBRID_IK, &client(HYBRID_IK)).unwrap();
    let r = registry::responder(&names, &server()).unwrap();
    let err = drive(i, r, Some((HYBRID_IK, HYBRID_NK))).unwrap_err();
    assert!(is_tamper_error(&err), "{err:?}");
    // A protocol outside the allow-list is refused with a typed error.
    let i = registry::initiator(PQ_XX, &client(PQ_XX)).unwrap();
    let r = registry::responder(&[HYBRID_XX], &server()).unwrap();
    let err = drive(i, r, None).unwrap_err();
    assert!(matches!(
        err,
        Error::PeerIncompatible(akex::error::PeerIncompatible::ProtocolNotAllowed(_))
    ));
}

/// RSA key transport (feature `rsa-kt`): round trip, tampering, wrong key,
/// reflection, cross-session, and the name/registry say "not forward secret".
#[cfg(feature = "rsa-kt")]
mod rsa_kt {
    use super::*;
    use akex::handshake::registry;
    use akex::handshake::rsa::{RsaKeyPair, RsaKtConfig, RsaKtHandshake, RSA_BYTES, RSA_KT};
    use std::sync::OnceLock;

    fn key() -> &'static RsaKeyPair {
        static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
        KEY.get_or_init(|| RsaKeyPair::generate().unwrap())
    }

    fn pair(server: &RsaKeyPair, pinned: &RsaKeyPair) -> (RsaKtHandshake, RsaKtHandshake) {
        (
            RsaKtHandshake::initiator(RsaKtConfig::new().remote_key(pinned.public_key_der()))
                .unwrap(),
            RsaKtHandshake::responder(RsaKtConfig::new().local_key(server.clone())).unwrap(),
        )
    }

    fn run(
        mut i: RsaKtHandshake,
        mut r: RsaKtHandshake,
        index: usize,
        alter: &mut dyn FnMut(&mut Vec<u8>),
    ) -> Result<(akex::Established, akex::Established), (Role, Error)> {
        let mut msg = Vec::new();
        i.write_message(b"hello", &mut msg).unwrap();
        if index == 0 {
            alter(&mut msg);
        }
        r.read_message(&msg, &mut Vec::new())
            .map_err(|e| (Role::Responder, e))?;
        let mut msg = Vec::new();
        r.write_message(b"world", &mut msg).unwrap();
        if index == 1 {
            alter(&mut msg);
        }
        i.read_message(&msg, &mut Vec::new())
            .map_err(|e| (Role::Initiator, e))?;
        Ok((Box::new(i).finish().unwrap(), Box::new(r).finish().unwrap()))
    }

    #[test]
    fn rsa_round_trip_and_properties() {
        assert!(RSA_KT.contains("not-forward-secret"));
        let info = registry::info(RSA_KT).expect("registered");
        assert!(!info.forward_secrecy);
        let (i, r) = pair(key(), key());
        let (ie, re) = run(i, r, 9, &mut |_| {}).unwrap();
        assert_eq!(
            ie.remote_static().map(|k| k.as_bytes()),
            Some(key().public_key_der())
        );
        check_established(ie, re);
        let key2 = RsaKeyPair::from_pkcs8(&key().to_pkcs8().unwrap()).unwrap();
        assert_eq!(key2.public_key_der(), key().public_key_der());
        assert!(format!("{:?}", key()).contains("redacted"));
    }

    #[test]
    fn rsa_tampering_fails() {
        let hello = 6 + RSA_KT.len();
        // msg0: hello | ciphertext | payload+tag ; msg1: server random | payload+tag
        let ranges = [
            (
                0usize,
                vec![
                    0,
                    hello / 2,
                    hello - 1,
                    hello,
                    hello + RSA_BYTES / 2,
                    hello + RSA_BYTES - 1,
                    hello + RSA_BYTES,
                    hello + RSA_BYTES + 5 + 15,
                ],
            ),
            (1, vec![0, 16, 31, 32, 32 + 5 + 15]),
        ];
        let mut cases = 0;
        for (index, positions) in ranges {
            for pos in positions {
                let (i, r) = pair(key(), key());
                let (_, err) = run(i, r, index, &mut |m| m[pos] ^= 1).err().unwrap();
                assert!(is_tamper_error(&err), "msg {index} byte {pos}: {err:?}");
                cases += 1;
            }
            for cut in [1usize, 20] {
                let (i, r) = pair(key(), key());
                let (_, err) = run(i, r, index, &mut |m| {
                    let n = m.len() - cut;
                    m.truncate(n)
                })
                .err()
                .unwrap();
                assert!(is_tamper_error(&err), "msg {index} cut {cut}: {err:?}");
                cases += 1;
            }
        }
        println!("{RSA_KT}: {cases} tamper cases");
    }

    #[test]
    fn rsa_wrong_key_reflection_and_cross_session() {
        let other = RsaKeyPair::generate().unwrap();
        // Initiator encrypts to `other`; the responder holds `key()`: the
        // decryption failure shows only as the payload's AEAD tag.
        let (i, r) = pair(key(), &other);
        let (side, err) = run(i, r, 9, &mut |_| {}).err().unwrap();
        assert_eq!(side, Role::Responder);
        assert!(matches!(
            err,
            Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)
        ));
        // Reflection: the initiator's message back to it.
        let (mut i, _) = pair(key(), key());
        let mut m = Vec::new();
        i.write_message(b"", &mut m).unwrap();
        assert!(is_tamper_error(
            &i.read_message(&m, &mut Vec::new()).unwrap_err()
        ));
        // The responder's reply back to it.
        let (mut i, mut r) = pair(key(), key());
        let mut m = Vec::new();
        i.write_message(b"", &mut m).unwrap();
        r.read_message(&m, &mut Vec::new()).unwrap();
        let mut m2 = Vec::new();
        r.write_message(b"", &mut m2).unwrap();
        assert!(matches!(
            r.read_message(&m2, &mut Vec::new()),
            Err(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage))
        ));
        // Another session's reply.
        let (mut i1, mut r1) = pair(key(), key());
        let (mut i2, mut r2) = pair(key(), key());
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        i1.write_message(b"", &mut a).unwrap();
        i2.write_message(b"", &mut b).unwrap();
        r1.read_message(&a, &mut Vec::new()).unwrap();
        r2.read_message(&b, &mut Vec::new()).unwrap();
        r2.write_message(b"", &mut c).unwrap();
        assert!(matches!(
            i1.read_message(&c, &mut Vec::new()),
            Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))
        ));
        // A responder pinned to an initiator key is a configuration error.
        assert!(matches!(
            RsaKtHandshake::responder(
                RsaKtConfig::new()
                    .local_key(key().clone())
                    .remote_key(vec![1])
            ),
            Err(Error::Config(ConfigError::Invalid(_)))
        ));
        assert!(matches!(
            RsaKtHandshake::initiator(RsaKtConfig::new()),
            Err(Error::Config(ConfigError::MissingRemoteKey))
        ));
    }
}
