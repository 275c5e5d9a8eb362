//! Negative tests of Noise handshakes, driven in memory through
//! `Box<dyn Handshake>`: wrong or missing keys and PSKs, unknown
//! protocols, calls out of turn, finishing early and truncated messages,
//! each a typed error that leaves the handshake dead.

mod properties_support;

use akex::crypto::Secret;
use akex::error::{ApiMisuse, ConfigError, Error, PeerMisbehaved, TrustFailure};
use akex::handshake::noise::NoiseProtocol;
use akex::keys::StaticSecret;
use akex::{Handshake, NoiseConfig, NoiseHandshake, Role};
use properties_support::*;

fn expect_config_error(result: Result<NoiseHandshake, Error>) -> ConfigError {
    match result {
        Err(Error::Config(e)) => e,
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(hs) => panic!("expected a configuration error, got a handshake {hs:?}"),
    }
}

#[test]
fn ik_with_wrong_remote_key_fails_at_the_responder() {
    let name = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
    let keys = fixed_keys();
    let wrong = StaticSecret::from_private(Secret::new([0x66; 32]));
    let mut init: Box<dyn Handshake> = Box::new(
        NoiseHandshake::initiator(
            NoiseConfig::new(name)
                .unwrap()
                .local_static(keys.init())
                .remote_static(akex::PublicKey::x25519(*wrong.public())),
        )
        .unwrap(),
    );
    let resp =
        Box::new(NoiseHandshake::responder(noise_config(name, &keys, Role::Responder)).unwrap());
    let mut msg = Vec::new();
    init.write_message(b"hello", &mut msg).unwrap();
    let mut resp: Box<dyn Handshake> = resp;
    let mut payload = Vec::new();
    let r = resp.read_message(&msg, &mut payload);
    assert!(
        matches!(r, Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))),
        "{r:?}"
    );
    assert!(payload.is_empty());
    check_dead(resp).unwrap();
}

#[test]
fn xx_with_pinned_wrong_key_is_not_trusted() {
    let name = "Noise_XX_25519_ChaChaPoly_SHA256";
    let keys = fixed_keys();
    let wrong = StaticSecret::from_private(Secret::new([0x77; 32]));
    let mut init: Box<dyn Handshake> = Box::new(
        NoiseHandshake::initiator(
            noise_config(name, &keys, Role::Initiator)
                .remote_static(akex::PublicKey::x25519(*wrong.public())),
        )
        .unwrap(),
    );
    let mut resp: Box<dyn Handshake> =
        Box::new(NoiseHandshake::responder(noise_config(name, &keys, Role::Responder)).unwrap());
    let (mut m1, mut m2, mut payload) = (Vec::new(), Vec::new(), Vec::new());
    init.write_message(b"", &mut m1).unwrap();
    resp.read_message(&m1, &mut payload).unwrap();
    resp.write_message(b"secret for the right peer only", &mut m2)
        .unwrap();
    let r = init.read_message(&m2, &mut payload);
    assert!(
        matches!(
            r,
            Err(Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch))
        ),
        "{r:?}"
    );
    assert!(
        payload.is_empty(),
        "a payload from an untrusted peer was handed out: {} bytes",
        payload.len()
    );
    check_dead(init).unwrap();
}

#[test]
fn xx_with_pinned_right_key_succeeds() {
    let name = "Noise_XX_25519_AESGCM_BLAKE2s";
    let keys = fixed_keys();
    let init = Box::new(
        NoiseHandshake::initiator(
            noise_config(name, &keys, Role::Initiator)
                .remote_static(akex::PublicKey::x25519(*keys.resp().public())),
        )
        .unwrap(),
    );
    let resp =
        Box::new(NoiseHandshake::responder(noise_config(name, &keys, Role::Responder)).unwrap());
    match pump(init, resp, &[], |_, _| {}) {
        Pumped::Done { mut init, .. } => {
            let est = init.finish().unwrap();
            assert_eq!(
                est.remote_static().map(|k| k.as_bytes()),
                Some(&keys.resp().public()[..])
            );
        }
        Pumped::Failed { error, .. } => panic!("pinned handshake failed: {error}"),
    }
}

#[test]
fn missing_local_key_is_a_config_error() {
    let e = expect_config_error(NoiseHandshake::initiator(
        NoiseConfig::new("Noise_XX_25519_ChaChaPoly_BLAKE2s").unwrap(),
    ));
    assert_eq!(e, ConfigError::MissingLocalKey);
    let e = expect_config_error(NoiseHandshake::responder(
        NoiseConfig::new("Noise_NK_25519_ChaChaPoly_BLAKE2s").unwrap(),
    ));
    assert_eq!(e, ConfigError::MissingLocalKey);
}

#[test]
fn missing_remote_key_is_a_config_error() {
    let keys = fixed_keys();
    let e = expect_config_error(NoiseHandshake::initiator(
        NoiseConfig::new("Noise_IK_25519_ChaChaPoly_BLAKE2s")
            .unwrap()
            .local_static(keys.init()),
    ));
    assert_eq!(e, ConfigError::MissingRemoteKey);
}

#[test]
fn wrong_psk_count_is_a_config_error() {
    let keys = fixed_keys();
    let name = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
    let e = expect_config_error(NoiseHandshake::initiator(
        NoiseConfig::new(name).unwrap().local_static(keys.init()),
    ));
    assert_eq!(
        e,
        ConfigError::PskCount {
            needed: 1,
            given: 0
        }
    );
    let e = expect_config_error(NoiseHandshake::responder(
        NoiseConfig::new(name)
            .unwrap()
            .local_static(keys.resp())
            .psk(Secret::new([1; 32]))
            .psk(Secret::new([2; 32])),
    ));
    assert_eq!(
        e,
        ConfigError::PskCount {
            needed: 1,
            given: 2
        }
    );
}

#[test]
fn mismatched_psk_fails_the_handshake() {
    let name = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
    let keys = fixed_keys();
    let mut other = keys.clone();
    other.psk = [0x99; 32];
    let init =
        Box::new(NoiseHandshake::initiator(noise_config(name, &keys, Role::Initiator)).unwrap());
    let resp =
        Box::new(NoiseHandshake::responder(noise_config(name, &other, Role::Responder)).unwrap());
    match pump(init, resp, &[], |_, _| {}) {
        Pumped::Done { .. } => panic!("handshake with different PSKs finished"),
        Pumped::Failed {
            index, role, error, ..
        } => {
            // psk3 is mixed into message 3 (index 2), read by the responder.
            assert_eq!((index, role), (2, Role::Responder));
            assert!(
                matches!(error, Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)),
                "{error:?}"
            );
        }
    }
}

#[test]
fn unknown_protocols_are_unsupported() {
    for name in [
        "Noise_QQ_25519_ChaChaPoly_BLAKE2s",
        "Noise_XX_448_ChaChaPoly_BLAKE2s",
        "Noise_XX_25519_Rot13_BLAKE2s",
        "Noise_XX_25519_ChaChaPoly_MD5",
        "not a protocol",
        "",
    ] {
        // The name is checked when the configuration is built.
        match NoiseConfig::new(name) {
            Err(Error::Config(ConfigError::UnsupportedProtocol { name: got, .. })) => {
                assert_eq!(got, name)
            }
            other => panic!("{name:?}: expected UnsupportedProtocol, got {other:?}"),
        }
        assert!(matches!(
            NoiseProtocol::parse(name),
            Err(Error::Config(ConfigError::UnsupportedProtocol { .. }))
        ));
    }
}

#[test]
fn writing_out_of_turn_is_api_misuse() {
    let name = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
    let (mut init, mut resp) = pair(name, &fixed_keys());
    assert!(init.wants_write());
    assert!(!resp.wants_write());
    let mut out = Vec::new();
    let r = resp.write_message(b"", &mut out);
    assert!(
        matches!(r, Err(Error::ApiMisuse(ApiMisuse::WrongTurn))),
        "{r:?}"
    );
    assert!(out.is_empty());
    // "After any error the handshake is dead", the caller's errors included.
    let r = resp.write_message(b"", &mut out);
    assert!(is_dead(&r), "{r:?}");

    // Writing twice in a row is out of turn as well.
    init.write_message(b"", &mut out).unwrap();
    assert!(!init.wants_write());
    let mut second = Vec::new();
    let r = init.write_message(b"", &mut second);
    assert!(
        matches!(r, Err(Error::ApiMisuse(ApiMisuse::WrongTurn))),
        "{r:?}"
    );
    assert!(second.is_empty());
}

#[test]
fn reading_out_of_turn_is_unexpected() {
    let (mut init, _resp) = pair("Noise_XX_25519_ChaChaPoly_BLAKE2s", &fixed_keys());
    let mut payload = Vec::new();
    let r = init.read_message(&[0u8; 48], &mut payload);
    assert!(
        matches!(
            r,
            Err(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage))
        ),
        "{r:?}"
    );
    check_dead(init).unwrap();
}

#[test]
fn finishing_early_is_api_misuse() {
    let name = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
    let (mut init, _resp) = pair(name, &fixed_keys());
    let r = init.finish().map(|_| ());
    assert!(
        matches!(r, Err(Error::ApiMisuse(ApiMisuse::HandshakeNotFinished))),
        "{r:?}"
    );

    // Part-way through: the responder has read message 1 of 3.
    let (mut init, mut resp) = pair(name, &fixed_keys());
    let (mut m1, mut payload) = (Vec::new(), Vec::new());
    init.write_message(b"", &mut m1).unwrap();
    resp.read_message(&m1, &mut payload).unwrap();
    assert!(!resp.is_finished());
    let r = resp.finish().map(|_| ());
    assert!(
        matches!(r, Err(Error::ApiMisuse(ApiMisuse::HandshakeNotFinished))),
        "{r:?}"
    );
}

#[test]
fn truncated_handshake_message_fails() {
    let name = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
    let (mut init, mut resp) = pair(name, &fixed_keys());
    let (mut m1, mut payload) = (Vec::new(), Vec::new());
    init.write_message(b"payload", &mut m1).unwrap();
    let r = resp.read_message(&m1[..20], &mut payload);
    assert!(
        matches!(
            r,
            Err(Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength))
        ),
        "{r:?}"
    );
    check_dead(resp).unwrap();
}
