//! Rules checked for every protocol of the registry, with the keys of the
//! akex vector recipes (tests/akex_vectors_support/mod.rs) and fixed Noise
//! keys: the message sizes the registry states are what the protocol sends,
//! every protocol binds the prologue, and a peer key of the wrong kind is a
//! configuration error. With the features `rsa-kt` and `ffdh` the legacy
//! baselines are checked too.

mod akex_vectors_support;

use akex::crypto::Secret;
use akex::handshake::noise::NoiseProtocol;
use akex::handshake::registry::{self, HandshakeKeys, Mode};
use akex::handshake::{Handshake, Role};
use akex::keys::MlKem768KeyPair;
use akex::keys::SigningKey;
use akex::keys::StaticSecret;
use akex::{KeyKind, PublicKey};
use akex_vectors_support::{derive, Keys, CASES};

/// Every registry row's message sizes are what the protocol really sends
/// (empty payloads). Akex rows need a case in `CASES`.
#[test]
fn registry_message_sizes_are_true() {
    for info in registry::protocols() {
        let (ik, rk) = match info.mode {
            Mode::Akex => {
                let Some(case) = CASES.iter().find(|c| c.name == info.name) else {
                    // Every akex protocol should have vectors: add a line to CASES.
                    eprintln!("{}: no vector case yet, sizes not checked", info.name);
                    continue;
                };
                let keys: Keys = case
                    .keys
                    .iter()
                    .map(|(k, len)| (k.to_string(), derive(case.name, k, *len)))
                    .collect();
                (case.setup)(&keys)
            }
            _ => noise_keys(info.name),
        };
        let mut i = registry::initiator(info.name, &ik).unwrap();
        let mut r = registry::responder(&[info.name], &rk).unwrap();
        let mut sizes = Vec::new();
        while !(i.is_finished() && r.is_finished()) {
            let (s, rcv) = if i.wants_write() {
                (&mut i, &mut r)
            } else {
                (&mut r, &mut i)
            };
            let mut m = Vec::new();
            s.write_message(b"", &mut m).unwrap();
            rcv.read_message(&m, &mut Vec::new()).unwrap();
            sizes.push(m.len());
        }
        assert_eq!(sizes, info.message_sizes, "{}", info.name);
        let _: Box<dyn Handshake> = i;
    }
}

fn noise_keys(name: &str) -> (HandshakeKeys, HandshakeKeys) {
    let p = NoiseProtocol::parse(name).unwrap();
    let si = StaticSecret::from_private(akex::crypto::Secret::new([1; 32]));
    let sr = StaticSecret::from_private(akex::crypto::Secret::new([2; 32]));
    let psks = vec![akex::crypto::Secret::new([3; 32]); p.psk_slots().len()];
    let side = |role: Role, me: &StaticSecret, peer: &StaticSecret| {
        let mut keys = HandshakeKeys::new();
        if p.needs_local_static(role) {
            keys = keys.static_key(me.clone());
        }
        if p.needs_remote_static(role) {
            keys = keys.remote(PublicKey::x25519(*peer.public()));
        }
        for psk in &psks {
            keys = keys.psk(psk.clone());
        }
        keys
    };
    (
        side(Role::Initiator, &si, &sr),
        side(Role::Responder, &sr, &si),
    )
}

/// The two sides' keys for any registry protocol (akex rows from `CASES`,
/// Noise rows from `noise_keys`, RSA key transport from a fresh key).
fn keys_for(name: &str) -> (HandshakeKeys, HandshakeKeys) {
    #[cfg(feature = "rsa-kt")]
    if name == akex::handshake::rsa::RSA_KT {
        use std::sync::OnceLock;
        static KEY: OnceLock<akex::handshake::rsa::RsaKeyPair> = OnceLock::new();
        let key = KEY.get_or_init(|| akex::handshake::rsa::RsaKeyPair::generate().unwrap());
        let public = PublicKey::from_bytes(KeyKind::Rsa, key.public_key_der()).unwrap();
        return (
            HandshakeKeys::new().remote(public),
            HandshakeKeys::new().rsa_key(key.clone()),
        );
    }
    #[cfg(feature = "ffdh")]
    if name == akex::handshake::ffdh::FFDH_NK {
        use std::sync::OnceLock;
        static KEY: OnceLock<akex::handshake::ffdh::FfdhKeyPair> = OnceLock::new();
        let key = KEY.get_or_init(|| {
            akex::handshake::ffdh::FfdhKeyPair::generate(&mut akex::crypto::OsRng).unwrap()
        });
        let public = PublicKey::from_bytes(KeyKind::Ffdhe3072, key.public()).unwrap();
        return (
            HandshakeKeys::new().remote(public),
            HandshakeKeys::new().ffdh_key(key.clone()),
        );
    }
    match CASES.iter().find(|c| c.name == name) {
        Some(case) => {
            let keys: Keys = case
                .keys
                .iter()
                .map(|(k, len)| (k.to_string(), derive(case.name, k, *len)))
                .collect();
            (case.setup)(&keys)
        }
        None => noise_keys(name),
    }
}

/// Runs a handshake to its end or its first error.
fn pump(i: &mut Box<dyn Handshake>, r: &mut Box<dyn Handshake>) -> Result<(), akex::Error> {
    while !(i.is_finished() && r.is_finished()) {
        let (s, rcv) = if i.wants_write() {
            (&mut *i, &mut *r)
        } else {
            (&mut *r, &mut *i)
        };
        let mut m = Vec::new();
        s.write_message(b"", &mut m)?;
        rcv.read_message(&m, &mut Vec::new())?;
    }
    Ok(())
}

/// One prologue rule for every family: each protocol binds the configured
/// prologue (always, empty included) right after its name, so sides
/// configured with different prologues never both finish, and the same
/// prologue (empty or not) always works.
#[test]
fn mismatched_prologues_fail_for_every_protocol() {
    let mut families = std::collections::BTreeSet::new();
    for info in registry::protocols() {
        let (ik, rk) = keys_for(info.name);
        for (pi, pr, ok) in [
            (&b"AAA"[..], &b"BBB"[..], false),
            (b"", b"x", false),
            (b"x", b"", false),
            (b"", b"", true),
            (b"same", b"same", true),
        ] {
            let mut i = registry::initiator(info.name, &ik.clone().prologue(pi)).unwrap();
            let mut r = registry::responder(&[info.name], &rk.clone().prologue(pr)).unwrap();
            let result = pump(&mut i, &mut r);
            if ok {
                result.unwrap_or_else(|e| panic!("{}: same prologue failed: {e}", info.name));
                let (ie, re) = (i.finish().unwrap(), r.finish().unwrap());
                assert_eq!(ie.handshake_hash(), re.handshake_hash());
            } else {
                assert!(
                    result.is_err() && !(i.is_finished() && r.is_finished()),
                    "{}: prologues {pi:?} and {pr:?} both finished",
                    info.name
                );
            }
        }
        families.insert(info.family);
    }
    println!(
        "prologue rule: checked {} families: {families:?}",
        families.len()
    );
    assert!(families.len() >= 5);
}

/// Library guards: a peer key of the wrong kind — half of a PQ identity
/// (its X25519 part alone), an Ed25519 key for a DH protocol, a PQ
/// identity for a classical one — is a typed configuration error when the
/// configuration is built, for every protocol that takes a peer key.
#[test]
fn mixed_up_key_kinds_are_config_time_errors() {
    use akex::error::ConfigError;
    use akex::{ClientConfig, Error};
    let kem = MlKem768KeyPair::from_seed(&Secret::new([9; 64]));
    let x = StaticSecret::from_private(Secret::new([8; 32]));
    let mut pq = x.public().to_vec();
    pq.extend_from_slice(kem.encapsulation_key());
    let wrong_keys = [
        PublicKey::x25519(*x.public()),
        PublicKey::ed25519(*SigningKey::from_seed(Secret::new([7; 32])).public()),
        PublicKey::from_bytes(KeyKind::X25519MlKem768, &pq).unwrap(),
    ];
    let mut checked = 0;
    for info in registry::protocols() {
        let (ik, _) = keys_for(info.name);
        let Some(right) = ik.remote_key().map(|k| k.kind()) else {
            continue;
        };
        for wrong in wrong_keys.iter().filter(|k| k.kind() != right) {
            let err = ClientConfig::new(info.name, ik.clone().remote(wrong.clone())).unwrap_err();
            assert!(
                matches!(err, Error::Config(ConfigError::WrongKeyKind { .. })),
                "{}: a {} key gave {err:?}",
                info.name,
                wrong.kind()
            );
            checked += 1;
        }
    }
    println!("key kinds: {checked} wrong-kind configurations refused");
    assert!(checked >= 20);
}
