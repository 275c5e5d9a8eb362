//! The session layer: Noise-mode rekey schedules (against snow), akex-mode
//! records (key update, DH ratchet, close), limits, and interleavings.

use std::collections::VecDeque;
use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::error::{ApiMisuse, LimitReached, PeerMisbehaved};
use akex::handshake::TrafficSecret;
use akex::hazmat::aead::AeadKey;
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::session::{
    AeadLimits, ControlType, Record, RecordMode, RecordType, RekeyPolicy, Session, SessionConfig,
};
use akex::{Error, Established, Handshake, NoiseConfig, NoiseHandshake, Role};
use proptest::prelude::*;

fn established(role: Role, aead: AeadAlgorithm, seed: u8, root: bool) -> Established {
    established_named("akex-session-test", role, aead, seed, root)
}

fn established_named(
    name: &str,
    role: Role,
    aead: AeadAlgorithm,
    seed: u8,
    root: bool,
) -> Established {
    let e = Established::new(
        name.into(),
        role,
        vec![seed; 32],
        None,
        aead,
        TrafficSecret::new(Secret::new([seed; 32])),
        TrafficSecret::new(Secret::new([seed.wrapping_add(1); 32])),
    );
    if root {
        e.with_root_secret(TrafficSecret::new(Secret::new([seed.wrapping_add(2); 32])))
    } else {
        e
    }
}

fn akex_pair(aead: AeadAlgorithm, config: SessionConfig) -> (Session, Session) {
    (
        Session::with_config(established(Role::Initiator, aead, 7, true), config.clone()).unwrap(),
        Session::with_config(established(Role::Responder, aead, 7, true), config).unwrap(),
    )
}

fn never() -> SessionConfig {
    SessionConfig::new().rekey_policy(RekeyPolicy::never())
}

/// Moves every control record `from` has due to `to`, in both directions,
/// until neither has anything to send.
fn settle(a: &mut Session, b: &mut Session) {
    for _ in 0..16 {
        let mut moved = false;
        for flip in [false, true] {
            let (from, to) = if flip {
                (&mut *b, &mut *a)
            } else {
                (&mut *a, &mut *b)
            };
            loop {
                let mut out = Vec::new();
                if !from
                    .poll_control(Duration::ZERO, &mut OsRng, &mut out)
                    .unwrap()
                {
                    break;
                }
                to.open_record(&out, &mut Vec::new()).unwrap();
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
    panic!("control records did not settle");
}

fn send_data(from: &mut Session, to: &mut Session, data: &[u8]) {
    let mut wire = Vec::new();
    from.seal_record(RecordType::Data, data, &mut wire).unwrap();
    let mut got = Vec::new();
    assert_eq!(
        to.open_record(&wire, &mut got).unwrap(),
        Record::Data(data.len())
    );
    assert_eq!(got, data);
}

// ---- Noise mode ----------------------------------------------------------

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

/// A Noise-mode session's `Established` (the protocol name decides the
/// mode).
fn noise_established(role: Role, aead: AeadAlgorithm, seed: u8) -> Established {
    established_named("Noise_session_test", role, aead, seed, false)
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

// ---- akex mode -----------------------------------------------------------

#[test]
fn akex_key_update_moves_one_direction() {
    let (mut a, mut b) = akex_pair(AeadAlgorithm::AesGcm, never());
    send_data(&mut a, &mut b, b"before");
    let mut w = Vec::new();
    a.send_key_update(&mut w).unwrap();
    assert_eq!(
        b.open_record(&w, &mut Vec::new()).unwrap(),
        Record::KeyUpdate
    );
    assert_eq!((a.send_epoch(), b.recv_epoch()), (1, 1));
    assert_eq!((b.send_epoch(), a.recv_epoch()), (0, 0));
    send_data(&mut a, &mut b, b"after");
    send_data(&mut b, &mut a, b"reply");
}

#[test]
fn akex_policy_triggers_key_updates_by_count_and_time() {
    let config = SessionConfig::new().rekey_policy(RekeyPolicy {
        max_messages: Some(2),
        max_bytes: None,
        max_age: Some(Duration::from_secs(120)),
    });
    let (mut a, mut b) = akex_pair(AeadAlgorithm::ChaChaPoly, config);
    let mut rng = OsRng;
    for _ in 0..2 {
        send_data(&mut a, &mut b, b"x");
    }
    let mut w = Vec::new();
    assert!(a
        .poll_control(Duration::from_secs(1), &mut rng, &mut w)
        .unwrap());
    b.open_record(&w, &mut Vec::new()).unwrap();
    assert_eq!(b.recv_epoch(), 1);
    // Nothing due right after; 120 s later nothing either while the new
    // key has protected no record (an unused key is never updated for its
    // age); once it has, the update comes.
    assert!(!a
        .poll_control(Duration::from_secs(2), &mut rng, &mut Vec::new())
        .unwrap());
    assert!(!a
        .poll_control(Duration::from_secs(121), &mut rng, &mut Vec::new())
        .unwrap());
    send_data(&mut a, &mut b, b"y");
    let mut w = Vec::new();
    assert!(a
        .poll_control(Duration::from_secs(122), &mut rng, &mut w)
        .unwrap());
    b.open_record(&w, &mut Vec::new()).unwrap();
    assert_eq!((a.send_epoch(), b.recv_epoch()), (2, 2));
}

#[test]
fn akex_ratchet_step_and_post_compromise_security() {
    for hybrid in [false, true] {
        let config = never().hybrid_ratchet(hybrid);
        let (mut a, mut b) = akex_pair(AeadAlgorithm::ChaChaPoly, config);
        // The attacker steals every secret the session started with,
        // including the root, and can follow any number of key updates.
        let stolen_i2r = Secret::new([7u8; 32]);
        let stolen_b2a = Secret::new([8u8; 32]);
        let mut w = Vec::new();
        assert!(a.start_ratchet(&mut OsRng, &mut w).unwrap());
        assert!(!a.start_ratchet(&mut OsRng, &mut Vec::new()).unwrap());
        assert_eq!(b.open_record(&w, &mut Vec::new()).unwrap(), Record::Ratchet);
        settle(&mut a, &mut b);
        assert_eq!((a.ratchet_count(), b.ratchet_count()), (1, 1));
        assert!(!a.ratchet_in_progress() && !b.ratchet_in_progress());
        assert_eq!((a.send_epoch(), b.recv_epoch()), (1, 1));
        assert_eq!((b.send_epoch(), a.recv_epoch()), (1, 1));

        let mut wire = Vec::new();
        a.seal_record(RecordType::Data, b"post-ratchet secret", &mut wire)
            .unwrap();
        let mut reply = Vec::new();
        b.seal_record(RecordType::Data, b"reply", &mut reply)
            .unwrap();
        for stolen in [&stolen_i2r, &stolen_b2a] {
            let mut k = stolen.clone();
            for _ in 0..4 {
                for (n, msg) in [(0u64, &wire), (0, &reply), (1, &wire), (1, &reply)] {
                    let key = AeadKey::new(AeadAlgorithm::ChaChaPoly, k.expose());
                    let mut buf = msg.clone();
                    assert!(key.open_in_place(n, &[], &mut buf).is_err());
                }
                k = akex::hazmat::schedule::next_traffic_secret(&k);
            }
        }
        let mut got = Vec::new();
        b.open_record(&wire, &mut got).unwrap();
        assert_eq!(got, b"post-ratchet secret");
        a.open_record(&reply, &mut Vec::new()).unwrap();
    }
}

#[test]
fn simultaneous_ratchets_resolve_by_role() {
    let (mut a, mut b) = akex_pair(AeadAlgorithm::AesGcm, never());
    let (mut wa, mut wb) = (Vec::new(), Vec::new());
    assert!(a.start_ratchet(&mut OsRng, &mut wa).unwrap());
    assert!(b.start_ratchet(&mut OsRng, &mut wb).unwrap());
    a.open_record(&wb, &mut Vec::new()).unwrap(); // the initiator ignores B's
    b.open_record(&wa, &mut Vec::new()).unwrap(); // the responder answers A's
    settle(&mut a, &mut b);
    assert_eq!((a.ratchet_count(), b.ratchet_count()), (1, 1));
    send_data(&mut a, &mut b, b"ok");
    send_data(&mut b, &mut a, b"ok");
}

#[test]
fn bad_ratchet_key_and_unknown_type_close_the_session() {
    // A ratchet init with a low-order point. Build it through a session
    // with the same keys, by sealing a data record whose payload mimics
    // the ratchet body, then flipping the type byte under the AEAD is not
    // possible; so use the raw CipherState to forge a well-authenticated one.
    let (_, mut b) = akex_pair(AeadAlgorithm::ChaChaPoly, never());
    let record_key = akex::hazmat::schedule::record_key(&Secret::new([7u8; 32]));
    let key = AeadKey::new(AeadAlgorithm::ChaChaPoly, record_key.expose());
    // type, generation 1, step init, then the X25519 key.
    let mut body = vec![RecordType::Ratchet as u8, 0, 0, 0, 1, 0x01];
    body.extend_from_slice(&[0u8; 32]); // low-order point
    body.extend_from_slice(&[0, 0]);
    key.seal_in_place(0, &[], &mut body);
    assert!(matches!(
        b.open_record(&body, &mut Vec::new()),
        Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey))
    ));
    assert!(b.is_closed());
    assert!(matches!(
        b.open_record(&body, &mut Vec::new()),
        Err(Error::ApiMisuse(ApiMisuse::SessionClosed))
    ));

    let (_, mut b) = akex_pair(AeadAlgorithm::ChaChaPoly, never());
    let mut body = vec![0x7fu8, 1, 2, 3];
    key.seal_in_place(0, &[], &mut body);
    assert!(matches!(
        b.open_record(&body, &mut Vec::new()),
        Err(Error::PeerMisbehaved(PeerMisbehaved::UnknownRecordType(
            0x7f
        )))
    ));
    assert!(b.is_closed());
}

#[test]
fn close_is_authenticated_and_final() {
    let (mut a, mut b) = akex_pair(AeadAlgorithm::ChaChaPoly, never());
    send_data(&mut a, &mut b, b"last words");
    let mut w = Vec::new();
    a.seal_close(&mut w).unwrap();
    assert!(matches!(
        a.seal_record(RecordType::Data, b"x", &mut Vec::new()),
        Err(Error::ApiMisuse(ApiMisuse::SessionClosed))
    ));
    // A forged close does not authenticate.
    let mut forged = w.clone();
    forged[0] ^= 1;
    let (_, mut b2) = akex_pair(AeadAlgorithm::ChaChaPoly, never());
    b2.open_record(&[0u8; 17], &mut Vec::new()).unwrap_err();
    assert!(!b2.peer_closed());
    assert_eq!(b.open_record(&w, &mut Vec::new()).unwrap(), Record::Close);
    assert!(b.peer_closed());
    assert!(b.open_record(&forged, &mut Vec::new()).is_err());
    assert!(matches!(
        a.seal_record(RecordType::Close, b"body", &mut Vec::new()),
        Err(Error::ApiMisuse(_))
    ));
}

#[test]
fn akex_limit_forces_a_key_update() {
    let config = never().limits(AeadLimits {
        max_records: 20,
        ..AeadLimits::for_aead(AeadAlgorithm::AesGcm)
    });
    let (mut a, mut b) = akex_pair(AeadAlgorithm::AesGcm, config);
    let mut sent = 0;
    loop {
        let mut w = Vec::new();
        match a.seal_record(RecordType::Data, b"d", &mut w) {
            Ok(()) => {
                b.open_record(&w, &mut Vec::new()).unwrap();
                sent += 1;
            }
            Err(Error::Limit(LimitReached::AeadUsageLimit)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent < 20);
    let mut w = Vec::new();
    a.send_key_update(&mut w).unwrap();
    b.open_record(&w, &mut Vec::new()).unwrap();
    send_data(&mut a, &mut b, b"fresh key");
}

#[test]
fn ratchet_without_root_is_refused() {
    let mut a = Session::with_config(
        established(Role::Initiator, AeadAlgorithm::ChaChaPoly, 9, false),
        never(),
    )
    .unwrap();
    assert!(matches!(
        a.start_ratchet(&mut OsRng, &mut Vec::new()),
        Err(Error::ApiMisuse(ApiMisuse::NoRootSecret))
    ));
}

// ---- interleavings -------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Send(bool, usize),
    KeyUpdate(bool),
    Ratchet(bool),
    Deliver(bool, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0usize..300).prop_map(|(s, n)| Op::Send(s, n)),
        1 => any::<bool>().prop_map(Op::KeyUpdate),
        1 => any::<bool>().prop_map(Op::Ratchet),
        4 => (any::<bool>(), 1usize..5).prop_map(|(s, n)| Op::Deliver(s, n)),
    ]
}

struct Side {
    s: Session,
    inflight: VecDeque<Vec<u8>>,
    expected: VecDeque<Vec<u8>>,
    counter: u64,
}

fn deliver(from: &mut Side, to: &mut Side, n: usize) {
    for _ in 0..n {
        let Some(wire) = from.inflight.pop_front() else {
            return;
        };
        let mut got = Vec::new();
        if let Record::Data(_) = to.s.open_record(&wire, &mut got).unwrap() {
            assert_eq!(Some(got), from.expected.pop_front());
        }
        loop {
            let mut out = Vec::new();
            if !to
                .s
                .poll_control(Duration::ZERO, &mut OsRng, &mut out)
                .unwrap()
            {
                break;
            }
            to.inflight.push_back(out);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn stream_interleavings_deliver_everything_and_agree_on_epochs(
        ops in proptest::collection::vec(op(), 1..80),
        aes in any::<bool>(),
    ) {
        let aead = if aes { AeadAlgorithm::AesGcm } else { AeadAlgorithm::ChaChaPoly };
        let config = SessionConfig::new().rekey_policy(RekeyPolicy::every_messages(7));
        let (a, b) = akex_pair(aead, config);
        let mut sides = [
            Side { s: a, inflight: VecDeque::new(), expected: VecDeque::new(), counter: 0 },
            Side { s: b, inflight: VecDeque::new(), expected: VecDeque::new(), counter: 0 },
        ];
        for op in ops {
            match op {
                Op::Send(i, len) => {
                    let side = &mut sides[i as usize];
                    let mut payload = side.counter.to_be_bytes().to_vec();
                    payload.resize(8 + len, i as u8);
                    side.counter += 1;
                    loop {
                        let mut out = Vec::new();
                        if !side.s.poll_control(Duration::ZERO, &mut OsRng, &mut out).unwrap() {
                            break;
                        }
                        side.inflight.push_back(out);
                    }
                    let mut w = Vec::new();
                    side.s.seal_record(RecordType::Data, &payload, &mut w).unwrap();
                    side.inflight.push_back(w);
                    side.expected.push_back(payload);
                }
                Op::KeyUpdate(i) => {
                    let side = &mut sides[i as usize];
                    let mut w = Vec::new();
                    side.s.send_key_update(&mut w).unwrap();
                    side.inflight.push_back(w);
                }
                Op::Ratchet(i) => {
                    let side = &mut sides[i as usize];
                    let mut w = Vec::new();
                    if side.s.start_ratchet(&mut OsRng, &mut w).unwrap() {
                        side.inflight.push_back(w);
                    }
                }
                Op::Deliver(i, n) => {
                    let [a, b] = &mut sides;
                    if i { deliver(b, a, n) } else { deliver(a, b, n) }
                }
            }
        }
        // Drain.
        for _ in 0..20 {
            let [a, b] = &mut sides;
            deliver(a, b, usize::MAX);
            deliver(b, a, usize::MAX);
        }
        let [a, b] = &sides;
        prop_assert!(a.inflight.is_empty() && b.inflight.is_empty());
        prop_assert!(a.expected.is_empty() && b.expected.is_empty());
        prop_assert_eq!(a.s.send_epoch(), b.s.recv_epoch());
        prop_assert_eq!(b.s.send_epoch(), a.s.recv_epoch());
        prop_assert!(!a.s.ratchet_in_progress() && !b.s.ratchet_in_progress());
        prop_assert_eq!(a.s.ratchet_count(), b.s.ratchet_count());
    }
}

// ---- known-answer vectors --------------------------------------------------

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/protocols/vectors/session.json"
);

/// How a scripted run's ratchet is authenticated.
#[derive(Clone, Copy)]
enum Auth {
    /// No long-term keys (sessions from raw secrets, RSA key transport).
    None,
    /// X25519 static keys (hybrid, PQ-authenticated).
    StaticDh,
    /// Ed25519 signatures (SIGMA).
    Signature,
}

const INITIATOR_STATIC: [u8; 32] = [0x31; 32];
const RESPONDER_STATIC: [u8; 32] = [0x32; 32];
const INITIATOR_ED25519: [u8; 32] = [0x41; 32];
const RESPONDER_ED25519: [u8; 32] = [0x42; 32];

/// A session pair with i2r = 07…07, r2i = 08…08, root = 09…09, handshake
/// hash 07…07, and the ratchet authenticated as `auth` says.
fn vector_pair(aead: AeadAlgorithm, hybrid: bool, auth: Auth) -> (Session, Session) {
    use akex::keys::{SigningKey, StaticSecret};
    let with_auth = |e: Established, role: Role| -> Established {
        let (mine, theirs, my_ed, their_ed) = match role {
            Role::Initiator => (
                INITIATOR_STATIC,
                RESPONDER_STATIC,
                INITIATOR_ED25519,
                RESPONDER_ED25519,
            ),
            Role::Responder => (
                RESPONDER_STATIC,
                INITIATOR_STATIC,
                RESPONDER_ED25519,
                INITIATOR_ED25519,
            ),
        };
        match auth {
            Auth::None => e,
            Auth::StaticDh => {
                let peer = *StaticSecret::from_private(Secret::new(theirs)).public();
                e.with_ratchet_static_keys(
                    Some(StaticSecret::from_private(Secret::new(mine))),
                    Some(peer),
                )
            }
            Auth::Signature => {
                let peer = *SigningKey::from_seed(Secret::new(their_ed)).public();
                e.with_ratchet_signing_keys(SigningKey::from_seed(Secret::new(my_ed)), peer)
            }
        }
    };
    let config = never().hybrid_ratchet(hybrid);
    let a = with_auth(established(Role::Initiator, aead, 7, true), Role::Initiator);
    let b = with_auth(established(Role::Responder, aead, 7, true), Role::Responder);
    (
        Session::with_config(a, config.clone()).unwrap(),
        Session::with_config(b, config).unwrap(),
    )
}

/// The randomness one side draws for a ratchet step: its X25519 key (32
/// bytes), then (hybrid) the ML-KEM key-generation seed (64, the step's
/// initiator) or the encapsulation randomness (32, its responder).
fn step_rng(byte: u8, hybrid: bool, initiator: bool) -> Vec<u8> {
    let mut v = vec![byte; 32];
    if hybrid {
        v.extend(vec![byte.wrapping_add(1); if initiator { 64 } else { 32 }]);
    }
    v
}

/// A scripted run: every record both sides send, its plaintext (type byte
/// and body) and its wire bytes, in order.
fn scripted_run(aead: AeadAlgorithm, hybrid: bool, auth: Auth) -> serde_json::Value {
    use serde_json::json;
    let (mut a, mut b) = vector_pair(aead, hybrid, auth);
    let mut records = Vec::new();
    let mut rngs = Vec::new();
    // Opens `wire` at `to`, records the plaintext.
    fn record(
        records: &mut Vec<serde_json::Value>,
        who: &str,
        what: &str,
        wire: Vec<u8>,
        to: &mut Session,
    ) {
        let mut buf = wire.clone();
        to.open_record_in_place(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let plaintext = &buf[..wire.len() - 16];
        records.push(json!({
            "from": who,
            "record": what,
            "plaintext": hex::encode(plaintext),
            "wire": hex::encode(&wire),
        }));
    }
    let data = |s: &mut Session, text: &[u8]| {
        let mut w = Vec::new();
        s.seal_record(RecordType::Data, text, &mut w).unwrap();
        w
    };
    let w = data(&mut a, b"hello");
    record(&mut records, "initiator", "data", w, &mut b);
    let mut w = Vec::new();
    a.send_key_update(&mut w).unwrap();
    record(&mut records, "initiator", "key_update", w, &mut b);
    let w = data(&mut a, b"epoch 1");
    record(&mut records, "initiator", "data", w, &mut b);
    let mut w = Vec::new();
    b.seal_control(ControlType::RotationAnnouncement, b"[]", &mut w)
        .unwrap();
    record(&mut records, "responder", "control", w, &mut a);

    // Two ratchet steps: the handshake initiator starts the first, the
    // handshake responder the second (directions stay the handshake's).
    for (n, starter) in [(1u8, Role::Initiator), (2, Role::Responder)] {
        let (s, r, s_name, r_name) = match starter {
            Role::Initiator => (&mut a, &mut b, "initiator", "responder"),
            Role::Responder => (&mut b, &mut a, "responder", "initiator"),
        };
        let s_rng = step_rng(0x10 * n + 1, hybrid, true);
        let r_rng = step_rng(0x10 * n + 2, hybrid, false);
        rngs.push(json!({ "step": n, "started_by": s_name,
            "starter_rng": hex::encode(&s_rng), "responder_rng": hex::encode(&r_rng) }));
        let mut w = Vec::new();
        assert!(s
            .start_ratchet(&mut ScriptedRng::new(s_rng), &mut w)
            .unwrap());
        record(&mut records, s_name, "ratchet_init", w, r);
        let mut w = Vec::new();
        assert!(r
            .poll_control(Duration::ZERO, &mut ScriptedRng::new(r_rng), &mut w)
            .unwrap());
        record(&mut records, r_name, "ratchet_response", w, s);
        let mut w = Vec::new();
        assert!(s
            .poll_control(Duration::ZERO, &mut ScriptedRng::new(Vec::new()), &mut w)
            .unwrap());
        record(&mut records, s_name, "ratchet_finish", w, r);
        let w = data(s, format!("after ratchet {n}").as_bytes());
        record(&mut records, s_name, "data", w, r);
        let w = data(r, format!("reply {n}").as_bytes());
        record(&mut records, r_name, "data", w, s);
    }
    assert_eq!((a.ratchet_count(), b.ratchet_count()), (2, 2));
    // Close ends one direction: the responder may still send, then closes.
    let mut w = Vec::new();
    a.seal_close(&mut w).unwrap();
    record(&mut records, "initiator", "close", w, &mut b);
    let w = data(&mut b, b"after the initiator's close");
    record(&mut records, "responder", "data", w, &mut a);
    let mut w = Vec::new();
    b.seal_close(&mut w).unwrap();
    record(&mut records, "responder", "close", w, &mut a);
    json!({
        "aead": format!("{aead:?}"),
        "hybrid": hybrid,
        "auth": match auth { Auth::None => "none", Auth::StaticDh => "static_dh", Auth::Signature => "signature" },
        "handshake_hash": hex::encode([7u8; 32]),
        "initiator_to_responder": hex::encode([7u8; 32]),
        "responder_to_initiator": hex::encode([8u8; 32]),
        "root": hex::encode([9u8; 32]),
        "initiator_static": hex::encode(INITIATOR_STATIC),
        "responder_static": hex::encode(RESPONDER_STATIC),
        "initiator_ed25519_seed": hex::encode(INITIATOR_ED25519),
        "responder_ed25519_seed": hex::encode(RESPONDER_ED25519),
        "ratchet_randomness": rngs,
        "records": records,
    })
}

fn schedule_vectors() -> serde_json::Value {
    use akex::hazmat::schedule;
    use serde_json::json;
    let mut chain = Vec::new();
    let mut record_keys = Vec::new();
    let mut s = Secret::new([7u8; 32]);
    record_keys.push(hex::encode(schedule::record_key(&s).expose()));
    for _ in 0..3 {
        s = schedule::next_traffic_secret(&s);
        chain.push(hex::encode(s.expose()));
        record_keys.push(hex::encode(schedule::record_key(&s).expose()));
    }
    let root = Secret::new([9u8; 32]);
    let th = [0x7au8; 32];
    let ikm = [
        Secret::new([0xd4u8; 32]),
        Secret::new([0x4bu8; 32]),
        Secret::new([0xe5u8; 32]),
        Secret::new([0x5eu8; 32]),
    ];
    let out = |n: usize| {
        let k = schedule::ratchet(&root, &ikm[..n].iter().collect::<Vec<_>>(), &th);
        json!({
            "secrets": ikm[..n].iter().map(|s| hex::encode(s.expose())).collect::<Vec<_>>(),
            "root": hex::encode(k.root.expose()),
            "initiator_to_responder": hex::encode(k.initiator_to_responder.expose()),
            "responder_to_initiator": hex::encode(k.responder_to_initiator.expose()),
            "confirm_response": hex::encode(k.confirm_response.expose()),
            "confirm_finish": hex::encode(k.confirm_finish.expose()),
        })
    };
    json!({
        "key_update": { "start": hex::encode([7u8; 32]), "label": "akex key update", "chain": chain },
        "record_key": { "label": "akex record key", "keys": record_keys },
        "ratchet": {
            "label": "akex ratchet",
            "root": hex::encode(root.expose()),
            "transcript": hex::encode(th),
            "outputs": [out(1), out(2), out(4)],
        }
    })
}

fn all_vectors() -> serde_json::Value {
    serde_json::json!({
        "description": "akex session layer, wire version 2: key schedule and scripted runs (every record's plaintext and wire bytes); see protocols/session.md",
        "schedule": schedule_vectors(),
        "runs": [
            scripted_run(AeadAlgorithm::ChaChaPoly, false, Auth::None),
            scripted_run(AeadAlgorithm::AesGcm, false, Auth::StaticDh),
            scripted_run(AeadAlgorithm::ChaChaPoly, true, Auth::StaticDh),
            scripted_run(AeadAlgorithm::ChaChaPoly, false, Auth::Signature),
        ],
    })
}

#[test]
#[ignore = "writes protocols/vectors/session.json; run once when the format changes"]
fn generate_session_vectors() {
    let text = serde_json::to_string_pretty(&all_vectors()).unwrap();
    std::fs::write(VECTORS, text + "\n").unwrap();
}

#[test]
fn session_vectors_replay_byte_for_byte() {
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(VECTORS).expect("vector file")).unwrap();
    let now = all_vectors();
    assert_eq!(stored["schedule"], now["schedule"]);
    assert_eq!(stored["runs"], now["runs"]);
}

// ---- post-compromise security against an active attacker --------------------

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

// ---- control records -----------------------------------------------------

#[test]
fn control_records_are_typed_and_never_data() {
    let (mut a, mut b) = akex_pair(AeadAlgorithm::ChaChaPoly, never());
    let mut w = Vec::new();
    a.seal_control(ControlType::RotationAnnouncement, b"[1]", &mut w)
        .unwrap();
    // `open` hands out application data only.
    let mut out = Vec::new();
    let mut w2 = w.clone();
    let (_, mut b2) = akex_pair(AeadAlgorithm::ChaChaPoly, never());
    assert_eq!(
        b2.open(&w2, &mut out).unwrap(),
        Record::Control(ControlType::RotationAnnouncement, 3)
    );
    assert!(out.is_empty());
    assert_eq!(
        b.open_record(&w, &mut out).unwrap(),
        Record::Control(ControlType::RotationAnnouncement, 3)
    );
    assert_eq!(out, b"[1]");
    // An unknown control type is a typed error that ends the session.
    let key = akex::hazmat::schedule::record_key(&Secret::new([7u8; 32]));
    let key = AeadKey::new(AeadAlgorithm::ChaChaPoly, key.expose());
    w2 = vec![RecordType::Control as u8, 0xbe, 0xef, 1];
    key.seal_in_place(1, &[], &mut w2);
    assert!(matches!(
        b.open_record(&w2, &mut Vec::new()),
        Err(Error::PeerMisbehaved(PeerMisbehaved::UnknownControlType(
            0xbeef
        )))
    ));
    assert!(b.has_failed());
    // Noise mode has no record types: no control records.
    let mut n = Session::new(noise_established(
        Role::Initiator,
        AeadAlgorithm::ChaChaPoly,
        1,
    ));
    assert!(matches!(
        n.seal_control(ControlType::RotationAnnouncement, b"", &mut Vec::new()),
        Err(Error::ApiMisuse(ApiMisuse::WrongRecordMode))
    ));
}

/// A plain echo peer on the sans-IO `Connection` never sees a control
/// record: the application reads the data only, and the control waits in
/// its own queue.
#[test]
fn a_plain_echo_peer_never_sees_a_control_record() {
    use akex::connection::Connection;
    use akex::handshake::hybrid::HYBRID_XX;
    use akex::keys::StaticSecret;
    use akex::{ClientConfig, HandshakeKeys, ServerConfig};
    let ck = HandshakeKeys::new().static_key(StaticSecret::from_private(Secret::new([1; 32])));
    let sk = HandshakeKeys::new().static_key(StaticSecret::from_private(Secret::new([2; 32])));
    let mut client = Connection::client(&ClientConfig::new(HYBRID_XX, ck).unwrap()).unwrap();
    let mut server = Connection::server(&ServerConfig::new(&[HYBRID_XX], sk).unwrap()).unwrap();
    let shuttle = |from: &mut Connection, to: &mut Connection| {
        let bytes = from.wire_output().to_vec();
        from.consume_wire_output(bytes.len());
        to.read_wire(&bytes).unwrap();
    };
    while client.is_handshaking() || server.is_handshaking() {
        shuttle(&mut client, &mut server);
        shuttle(&mut server, &mut client);
    }
    server
        .send_control(ControlType::RotationAnnouncement, b"announcement")
        .unwrap();
    server.send(b"data").unwrap();
    shuttle(&mut server, &mut client);
    // The echo client reads messages: only the data.
    assert_eq!(client.next_message(), Some(&b"data"[..]));
    client.consume_message().unwrap();
    assert_eq!(client.next_message(), None);
    let control = client.take_control().unwrap();
    assert_eq!(control.ty, ControlType::RotationAnnouncement);
    assert_eq!(control.payload, b"announcement");
    // And it echoes data only; the server's application sees only that.
    client.send(b"data").unwrap();
    shuttle(&mut client, &mut server);
    let mut buf = [0u8; 16];
    assert_eq!(server.recv(&mut buf).unwrap(), 4);
    assert!(server.take_control().is_none());
}
