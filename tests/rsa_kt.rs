//! RSA key transport's promises (protocols/rsa-kt.md), including the one
//! it makes against itself: whoever later holds the RSA private key reads
//! every recorded session. Feature `rsa-kt` (`.ci/run`, LEGACY step).

#![cfg(feature = "rsa-kt")]

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};

use akex::error::{ConfigError, Error};
use akex::handshake::registry::{self, HandshakeKeys};
use akex::handshake::rsa::{RsaKeyPair, RsaKtConfig, RsaKtHandshake, RSA_KT};
use akex::hazmat::ReplayRng;
use akex::{Handshake, KeyKind, PublicKey, Session};

fn key() -> &'static RsaKeyPair {
    static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
    KEY.get_or_init(|| RsaKeyPair::generate().unwrap())
}

fn is_size_error<T>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::Config(ConfigError::InvalidKey(m))) if m.contains("3072"))
}

/// "Keys other than 3072 bits are refused": the responder's private key
/// and the initiator's copy of the public key, directly and through the
/// registry; a 3072-bit key of the same encodings is accepted.
#[test]
fn rsa_keys_other_than_3072_bits_are_refused() {
    for size in [KeySize::Rsa2048, KeySize::Rsa4096] {
        let other = PrivateDecryptingKey::generate(size).unwrap();
        let pkcs8 = AsDer::as_der(&other).unwrap();
        assert!(
            is_size_error(RsaKeyPair::from_pkcs8(pkcs8.as_ref())),
            "{size:?}"
        );
        let public = other.public_key().as_der().unwrap().as_ref().to_vec();
        let config = RsaKtConfig::new().remote_key(public.clone());
        assert!(is_size_error(RsaKtHandshake::initiator(config)), "{size:?}");
        let keys =
            HandshakeKeys::new().remote(PublicKey::from_bytes(KeyKind::Rsa, &public).unwrap());
        assert!(
            is_size_error(registry::initiator(RSA_KT, &keys)),
            "{size:?}"
        );
    }
    let der = key().to_pkcs8().unwrap();
    assert!(RsaKeyPair::from_pkcs8(&der).is_ok());
    let config = RsaKtConfig::new().remote_key(key().public_key_der());
    assert!(RsaKtHandshake::initiator(config).is_ok());
}

fn read(hs: &mut RsaKtHandshake, m: &[u8]) -> Result<Vec<u8>, Error> {
    let mut payload = Vec::new();
    hs.read_message(m, &mut payload).map(|()| payload)
}

fn write(hs: &mut RsaKtHandshake, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    hs.write_message(payload, &mut m).unwrap();
    m
}

/// "Not forward secret": a recorded session, then the RSA key is stolen.
/// The thief decrypts message 1's secret with it, takes the server random
/// from the recorded message 2 and recomputes the session keys: every
/// recorded record opens. And a replayed message 1 is accepted again (its
/// payload delivered twice) but yields fresh keys (the server random).
#[test]
fn a_recorded_session_opens_with_the_rsa_key_stolen_later() {
    let mut i =
        RsaKtHandshake::initiator(RsaKtConfig::new().remote_key(key().public_key_der())).unwrap();
    let mut r = RsaKtHandshake::responder(RsaKtConfig::new().local_key(key().clone())).unwrap();
    let m1 = write(&mut i, b"first payload");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    read(&mut i, &m2).unwrap();
    let (ie, re) = (i.finish().unwrap(), r.finish().unwrap());
    let (mut si, mut sr) = (Session::new(ie), Session::new(re));
    let (mut i2r, mut r2i) = (Vec::new(), Vec::new());
    si.seal(b"recorded i->r", &mut i2r).unwrap();
    sr.seal(b"recorded r->i", &mut r2i).unwrap();

    // The responder draws 32 bytes for its fallback secret, then the
    // server random, which message 2 carries in clear.
    let mut script = vec![0u8; 32];
    script.extend_from_slice(&m2[..32]);
    let config = RsaKtConfig::new()
        .local_key(key().clone())
        .rng(ReplayRng::new(script));
    let mut thief = RsaKtHandshake::responder(config).unwrap();
    assert_eq!(read(&mut thief, &m1).unwrap(), b"first payload");
    write(&mut thief, b"");
    let mut stolen = Session::new(thief.finish().unwrap());
    let mut plain = Vec::new();
    stolen.open(&i2r, &mut plain).unwrap();
    assert_eq!(plain, b"recorded i->r");
    // The other direction: the thief's first record is the recorded one.
    let mut again = Vec::new();
    stolen.seal(b"recorded r->i", &mut again).unwrap();
    assert_eq!(again, r2i);

    // Replay of message 1 to a fresh responder: accepted, fresh keys.
    let mut replayed =
        RsaKtHandshake::responder(RsaKtConfig::new().local_key(key().clone())).unwrap();
    assert_eq!(read(&mut replayed, &m1).unwrap(), b"first payload");
    write(&mut replayed, b"");
    let mut fresh = Session::new(replayed.finish().unwrap());
    assert!(fresh.open(&i2r, &mut Vec::new()).is_err());
}

/// "DH ratchet of the session: not authenticated by the RSA key:
/// post-compromise security against passive attackers only": a thief
/// holding the session's secrets (traffic secrets and ratchet root) takes
/// a ratchet step over as either side, and the honest side follows it.
#[test]
fn the_ratchet_of_an_rsa_session_is_only_passively_protected() {
    use akex::crypto::OsRng;
    use akex::session::{Record, RecordType, RekeyPolicy, SessionConfig};
    use akex::{Established, Role};
    use std::time::Duration;
    let never = || SessionConfig::new().rekey_policy(RekeyPolicy::never());
    let thief_of = |victim: &Established, role: Role| {
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
        Session::with_config(e, never()).unwrap()
    };
    let pass = |from: &mut Session, to: &mut Session| {
        let mut out = Vec::new();
        while from
            .poll_control(Duration::ZERO, &mut OsRng, &mut out)
            .unwrap()
        {
            to.open_record(&out, &mut Vec::new()).unwrap();
            out.clear();
        }
    };
    for thief_role in [Role::Initiator, Role::Responder] {
        let mut i =
            RsaKtHandshake::initiator(RsaKtConfig::new().remote_key(key().public_key_der()))
                .unwrap();
        let mut r = RsaKtHandshake::responder(RsaKtConfig::new().local_key(key().clone())).unwrap();
        let m1 = write(&mut i, b"");
        read(&mut r, &m1).unwrap();
        let m2 = write(&mut r, b"");
        read(&mut i, &m2).unwrap();
        let (ie, re) = (i.finish().unwrap(), r.finish().unwrap());
        let (mut honest, mut thief) = match thief_role {
            Role::Initiator => (
                Session::with_config(re, never()).unwrap(),
                thief_of(&ie, thief_role),
            ),
            Role::Responder => (
                Session::with_config(ie, never()).unwrap(),
                thief_of(&re, thief_role),
            ),
        };
        let mut init = Vec::new();
        assert!(thief.start_ratchet(&mut OsRng, &mut init).unwrap());
        honest.open_record(&init, &mut Vec::new()).unwrap();
        for _ in 0..4 {
            pass(&mut honest, &mut thief);
            pass(&mut thief, &mut honest);
        }
        assert_eq!(honest.ratchet_count(), 1, "{thief_role}");
        // After the step the thief still reads the honest side.
        let mut wire = Vec::new();
        honest
            .seal_record(RecordType::Data, b"after the step", &mut wire)
            .unwrap();
        let mut got = Vec::new();
        assert_eq!(
            thief.open_record(&wire, &mut got).unwrap(),
            Record::Data(14)
        );
        assert_eq!(got, b"after the step");
    }
}
