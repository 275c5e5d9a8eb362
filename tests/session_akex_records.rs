//! akex-mode records: key updates, the policy that triggers them, DH
//! ratchet steps (simultaneous, refused without a root), bad ratchet keys
//! and unknown types, the authenticated close, the usage limit, control
//! records, and random interleavings of all of them on a stream.

mod session_support;

use std::collections::VecDeque;
use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::error::{ApiMisuse, LimitReached, PeerMisbehaved};
use akex::hazmat::aead::AeadKey;
use akex::session::{
    AeadLimits, ControlType, Record, RecordType, RekeyPolicy, Session, SessionConfig,
};
use akex::{Error, Role};
use proptest::prelude::*;
use session_support::*;

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
