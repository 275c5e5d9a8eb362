//! Noise-mode sessions: the rekey schedule against snow, the refusal of
//! time policies and akex-only calls, sessions that disagree on the record
//! mode, and the AEAD usage limits (ours and the peer's).

mod session_support;

use akex::crypto::AeadAlgorithm;
use akex::error::{ApiMisuse, LimitReached, PeerMisbehaved};
use akex::session::{
    AeadLimits, Record, RecordMode, RecordType, RekeyPolicy, Session, SessionConfig,
};
use akex::{Error, Handshake, NoiseConfig, NoiseHandshake, Role};
use session_support::*;

#[test]
fn noise_mode_rekey_schedule_interoperates_with_snow() {
    for (proto, every) in [
        ("Noise_NN_25519_ChaChaPoly_BLAKE2s", 3u64),
        ("Noise_NN_25519_AESGCM_SHA256", 1),
    ] {
        // Our initiator against snow's own responder, built directly.
        let mut ours = NoiseHandshake::initiator(NoiseConfig::new(proto).unwrap()).unwrap();
        let mut theirs = snow::Builder::new(proto.parse().unwrap())
            .build_responder()
            .unwrap();
        let mut m = Vec::new();
        ours.write_message(&[], &mut m).unwrap();
        let mut buf = vec![0u8; 65535];
        theirs.read_message(&m, &mut buf).unwrap();
        let n = theirs.write_message(&[], &mut buf).unwrap();
        ours.read_message(&buf[..n], &mut Vec::new()).unwrap();
        let est = Box::new(ours).finish().unwrap();
        let mut theirs = theirs.into_transport_mode().unwrap();
        let mut session =
            Session::with_config(est, SessionConfig::noise_rekey_every(every)).unwrap();
        assert_eq!(session.mode(), RecordMode::Noise);

        let mut snow_sent = 0u64;
        let mut snow_recv = 0u64;
        for i in 0..10u8 {
            // us -> snow
            let mut wire = Vec::new();
            session.seal(&[i; 40], &mut wire).unwrap();
            let n = theirs.read_message(&wire, &mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 40]);
            snow_recv += 1;
            if snow_recv.is_multiple_of(every) {
                theirs.rekey_incoming();
            }
            // snow -> us
            let n = theirs.write_message(&[i; 17], &mut buf).unwrap();
            snow_sent += 1;
            if snow_sent.is_multiple_of(every) {
                theirs.rekey_outgoing();
            }
            let mut got = Vec::new();
            session.open(&buf[..n], &mut got).unwrap();
            assert_eq!(got, [i; 17]);
        }
        assert_eq!(session.send_epoch(), 10 / every);
        assert_eq!(session.recv_epoch(), 10 / every);
    }
}

#[test]
fn noise_mode_rejects_time_policy_and_akex_calls() {
    let e = noise_established(Role::Initiator, AeadAlgorithm::ChaChaPoly, 1);
    let config =
        SessionConfig::new().rekey_policy(RekeyPolicy::recommended(AeadAlgorithm::ChaChaPoly));
    assert!(matches!(
        Session::with_config(e, config),
        Err(Error::Config(_))
    ));
    let mut s = Session::new(noise_established(
        Role::Initiator,
        AeadAlgorithm::ChaChaPoly,
        1,
    ));
    assert_eq!(s.mode(), RecordMode::Noise);
    assert!(matches!(
        s.seal_record(RecordType::Data, b"x", &mut Vec::new()),
        Err(Error::ApiMisuse(ApiMisuse::WrongRecordMode))
    ));
    // `seal` and `open` work in both modes: a data record in akex mode.
    let (mut a, mut b) = akex_pair(AeadAlgorithm::ChaChaPoly, never());
    assert_eq!(a.mode(), RecordMode::Akex);
    let mut wire = Vec::new();
    a.seal(b"x", &mut wire).unwrap();
    let mut got = Vec::new();
    assert_eq!(b.open(&wire, &mut got).unwrap(), Record::Data(1));
    assert_eq!(got, b"x");
}

/// Sessions that disagree on the record mode (the same secrets, one side
/// made from a Noise name, the other from an akex name) never exchange a
/// byte: every record fails to authenticate, in both directions and for
/// both AEADs.
#[test]
fn mismatched_record_modes_fail_in_both_directions() {
    for aead in [AeadAlgorithm::ChaChaPoly, AeadAlgorithm::AesGcm] {
        for noise_role in [Role::Initiator, Role::Responder] {
            let akex_role = match noise_role {
                Role::Initiator => Role::Responder,
                _ => Role::Initiator,
            };
            let mut noise = Session::new(noise_established(noise_role, aead, 4));
            let mut akex = Session::new(established_named("akex-x", akex_role, aead, 4, true));
            assert_eq!(
                (noise.mode(), akex.mode()),
                (RecordMode::Noise, RecordMode::Akex)
            );
            for data in [&b""[..], b"\x01hello", &[0u8; 100][..]] {
                let mut wire = Vec::new();
                noise.seal(data, &mut wire).unwrap();
                let mut out = Vec::new();
                assert!(
                    matches!(
                        akex.open(&wire, &mut out),
                        Err(Error::PeerMisbehaved(
                            PeerMisbehaved::DecryptFailed | PeerMisbehaved::BadMessageLength
                        ))
                    ),
                    "{aead:?}: an akex-mode session opened a Noise record"
                );
                assert!(out.is_empty());
                let mut wire = Vec::new();
                let mut fresh = Session::new(established_named("akex-x", akex_role, aead, 4, true));
                fresh.seal(data, &mut wire).unwrap();
                assert!(
                    matches!(
                        noise.open(&wire, &mut out),
                        Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))
                    ),
                    "{aead:?}: a Noise-mode session opened an akex record"
                );
                assert!(out.is_empty());
                noise = Session::new(noise_established(noise_role, aead, 4));
                akex = Session::new(established_named("akex-x", akex_role, aead, 4, true));
            }
        }
    }
}

#[test]
fn noise_mode_refuses_past_the_usage_limit_until_rekeyed() {
    let limits = AeadLimits {
        max_records: 10,
        ..AeadLimits::for_aead(AeadAlgorithm::AesGcm)
    };
    let config = SessionConfig::new().limits(limits);
    let mut a = Session::with_config(
        noise_established(Role::Initiator, AeadAlgorithm::AesGcm, 3),
        config.clone(),
    )
    .unwrap();
    let mut b = Session::with_config(
        noise_established(Role::Responder, AeadAlgorithm::AesGcm, 3),
        config,
    )
    .unwrap();
    for _ in 0..10 {
        let mut w = Vec::new();
        a.seal(b"m", &mut w).unwrap();
        b.open(&w, &mut Vec::new()).unwrap();
    }
    assert!(matches!(
        a.seal(b"m", &mut Vec::new()),
        Err(Error::Limit(LimitReached::AeadUsageLimit))
    ));
    a.rekey_outgoing();
    b.rekey_incoming();
    let mut w = Vec::new();
    a.seal(b"m", &mut w).unwrap();
    b.open(&w, &mut Vec::new()).unwrap();
    // Raising the limits is refused.
    let raise = SessionConfig::new().limits(AeadLimits {
        max_records: u64::MAX,
        ..AeadLimits::for_aead(AeadAlgorithm::AesGcm)
    });
    assert!(Session::with_config(
        established(Role::Initiator, AeadAlgorithm::AesGcm, 3, false),
        raise
    )
    .is_err());
}

#[test]
fn noise_mode_peer_past_the_limit_is_refused() {
    let small = SessionConfig::new().limits(AeadLimits {
        max_records: 10,
        ..AeadLimits::for_aead(AeadAlgorithm::ChaChaPoly)
    });
    let mut a = Session::new(noise_established(
        Role::Initiator,
        AeadAlgorithm::ChaChaPoly,
        4,
    ));
    let mut b = Session::with_config(
        noise_established(Role::Responder, AeadAlgorithm::ChaChaPoly, 4),
        small,
    )
    .unwrap();
    for i in 0..11 {
        let mut w = Vec::new();
        a.seal(b"m", &mut w).unwrap();
        let r = b.open(&w, &mut Vec::new());
        if i < 10 {
            r.unwrap();
        } else {
            assert!(matches!(
                r,
                Err(Error::Limit(LimitReached::PeerExceededLimit))
            ));
        }
    }
}
