//! Datagram mode (sans-IO): the replay window against a model, reordering,
//! replays and lost or duplicated ratchet records, random interleavings
//! with loss, duplication and reordering, and records that close the
//! session. Forgery limits, expiring epochs and simulated days of traffic:
//! tests/session_datagram_limits.rs.

mod session_datagram_support;

use std::collections::HashSet;
use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::error::PeerMisbehaved;
use akex::hazmat::replay::WINDOW_SIZE;
use akex::hazmat::replay::{ReplayCheck, ReplayWindow};
use akex::session::datagram::{DatagramSession, Epoch};
use akex::session::{Record, RekeyPolicy, SessionConfig};
use akex::{Error, Role};
use proptest::prelude::*;
use session_datagram_support::established;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The bitmap window agrees with a set of everything accepted: fresh
    /// counters inside the window are accepted once, replays never, and
    /// only counters more than WINDOW_SIZE below the highest are too old.
    #[test]
    fn replay_window_matches_a_set_model(
        steps in proptest::collection::vec((0u64..6000, any::<bool>()), 1..400),
    ) {
        let mut w = ReplayWindow::new();
        let mut seen = HashSet::new();
        let mut highest: Option<u64> = None;
        // Mostly move forward with jitter, sometimes jump.
        let mut base = 0u64;
        for (delta, jump) in steps {
            let counter = if jump { base + delta } else { base.saturating_sub(delta % 3000) };
            base = base.max(counter);
            let expected = if highest.is_some_and(|h| h >= counter && h - counter >= WINDOW_SIZE) {
                ReplayCheck::TooOld
            } else if seen.contains(&counter) {
                ReplayCheck::Replayed
            } else {
                ReplayCheck::Fresh
            };
            prop_assert_eq!(w.accept(counter), expected, "counter {}", counter);
            if expected == ReplayCheck::Fresh {
                seen.insert(counter);
                highest = Some(highest.map_or(counter, |h| h.max(counter)));
            }
        }
    }
}

fn pair(policy: RekeyPolicy) -> (DatagramSession, DatagramSession) {
    let config = SessionConfig::new().rekey_policy(policy);
    (
        DatagramSession::new(established(Role::Initiator), config.clone()).unwrap(),
        DatagramSession::new(established(Role::Responder), config).unwrap(),
    )
}

#[test]
fn datagram_reorder_replay_and_previous_epoch() {
    let (mut a, mut b) = pair(RekeyPolicy::never());
    let mut wires = Vec::new();
    for i in 0..5u8 {
        let mut w = Vec::new();
        a.seal(&[i], &mut w).unwrap();
        wires.push(w);
    }
    a.key_update();
    let mut after = Vec::new();
    a.seal(b"new epoch", &mut after).unwrap();
    // The new epoch arrives first; old records still decrypt.
    let mut out = Vec::new();
    b.open(&after, &mut out).unwrap();
    assert_eq!(
        b.recv_epoch(),
        Epoch {
            generation: 0,
            update: 1
        }
    );
    for w in wires.iter().rev() {
        b.open(w, &mut out).unwrap();
    }
    assert!(matches!(
        b.open(&wires[2], &mut out),
        Err(Error::PeerMisbehaved(PeerMisbehaved::Replayed))
    ));
    assert!(!b.is_closed());
    // Garbage is dropped, not fatal.
    assert!(b.open(&[0u8; 40], &mut out).is_err());
    assert!(!b.has_failed());
}

#[test]
fn datagram_ratchet_survives_lost_init() {
    let (mut a, mut b) = pair(RekeyPolicy::never());
    let mut rng = OsRng;
    let mut w = Vec::new();
    assert!(a.start_ratchet(&mut rng, &mut w).unwrap());
    drop(w); // lost
    let mut w = Vec::new();
    assert!(a
        .poll_control(Duration::from_secs(1), &mut rng, &mut w)
        .unwrap()); // retransmit
    b.open(&w, &mut Vec::new()).unwrap();
    let mut resp = Vec::new();
    assert!(b
        .poll_control(Duration::from_secs(1), &mut rng, &mut resp)
        .unwrap());
    a.open(&resp, &mut Vec::new()).unwrap();
    let mut fin = Vec::new();
    assert!(a
        .poll_control(Duration::from_secs(1), &mut rng, &mut fin)
        .unwrap());
    b.open(&fin, &mut Vec::new()).unwrap();
    assert_eq!(
        a.send_epoch(),
        Epoch {
            generation: 1,
            update: 0
        }
    );
    assert_eq!(b.recv_epoch(), a.send_epoch());
    assert_eq!(
        b.send_epoch(),
        Epoch {
            generation: 1,
            update: 0
        }
    );
    let mut d = Vec::new();
    b.seal(b"hi", &mut d).unwrap();
    let mut got = Vec::new();
    assert_eq!(a.open(&d, &mut got).unwrap(), Record::Data(2));
    assert_eq!(a.recv_epoch(), b.send_epoch());
}

#[derive(Debug, Clone)]
enum Op {
    Send(bool),
    KeyUpdate(bool),
    Ratchet(bool),
    /// Deliver the in-flight datagram at this index (mod len) to its peer;
    /// keep a copy (duplicate) or drop it instead (loss).
    Deliver(bool, usize, Fate),
    Tick,
}

#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver,
    Duplicate,
    Lose,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(Op::Send),
        1 => any::<bool>().prop_map(Op::KeyUpdate),
        1 => any::<bool>().prop_map(Op::Ratchet),
        6 => (any::<bool>(), any::<usize>(), prop_oneof![
            6 => Just(Fate::Deliver), 1 => Just(Fate::Duplicate), 1 => Just(Fate::Lose)
        ]).prop_map(|(s, i, f)| Op::Deliver(s, i, f)),
        1 => Just(Op::Tick),
    ]
}

struct Side {
    s: DatagramSession,
    inflight: Vec<Vec<u8>>,
    sent: HashSet<Vec<u8>>,
    delivered: HashSet<Vec<u8>>,
    counter: u64,
    key_updates: u32,
}

fn poll(side: &mut Side, now: Duration) {
    loop {
        let mut out = Vec::new();
        if !side.s.poll_control(now, &mut OsRng, &mut out).unwrap() {
            return;
        }
        side.inflight.push(out);
    }
}

fn receive(from: &mut Side, to: &mut Side, wire: &[u8]) -> Result<(), TestCaseError> {
    let mut got = Vec::new();
    match to.s.open(wire, &mut got) {
        Ok(Record::Data(_)) => {
            prop_assert!(from.sent.contains(&got), "delivered data was never sent");
            prop_assert!(to.delivered.insert(got), "a replay was accepted");
        }
        Ok(_) => {}
        Err(e) => prop_assert!(!to.s.has_failed(), "fatal error {e}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn datagram_interleavings_with_loss_duplication_and_reordering(
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let (a, b) = pair(RekeyPolicy::every_messages(9));
        let side = |s| Side {
            s, inflight: Vec::new(), sent: HashSet::new(), delivered: HashSet::new(),
            counter: 0, key_updates: 0,
        };
        let mut sides = [side(a), side(b)];
        let mut now = Duration::ZERO;
        for op in ops {
            match op {
                Op::Send(i) => {
                    let s = &mut sides[i as usize];
                    poll(s, now);
                    let mut payload = vec![i as u8];
                    payload.extend_from_slice(&s.counter.to_be_bytes());
                    s.counter += 1;
                    let mut w = Vec::new();
                    s.s.seal(&payload, &mut w).unwrap();
                    s.sent.insert(payload);
                    s.inflight.push(w);
                }
                // Bounded: a receiver catches up at most MAX_SKIP updates
                // past its current epoch without hearing the middle ones.
                Op::KeyUpdate(i) if sides[i as usize].key_updates < 6 => {
                    sides[i as usize].s.key_update();
                    sides[i as usize].key_updates += 1;
                }
                Op::KeyUpdate(_) => {}
                Op::Ratchet(i) => {
                    let s = &mut sides[i as usize];
                    let mut w = Vec::new();
                    if s.s.start_ratchet(&mut OsRng, &mut w).unwrap() {
                        s.inflight.push(w);
                    }
                }
                Op::Deliver(i, index, fate) => {
                    let [a, b] = &mut sides;
                    let (from, to) = if i { (b, a) } else { (a, b) };
                    if from.inflight.is_empty() {
                        continue;
                    }
                    let index = index % from.inflight.len();
                    let wire = match fate {
                        Fate::Duplicate => from.inflight[index].clone(),
                        _ => from.inflight.swap_remove(index),
                    };
                    if !matches!(fate, Fate::Lose) {
                        receive(from, to, &wire)?;
                        poll(to, now);
                    }
                }
                Op::Tick => {
                    now += Duration::from_secs(1);
                    for s in &mut sides {
                        poll(s, now);
                    }
                }
            }
        }
        // Heal: no more loss; deliver everything, retransmit, exchange data.
        for round in 0..12 {
            now += Duration::from_secs(10);
            for i in 0..2 {
                let [a, b] = &mut sides;
                let (from, to) = if i == 1 { (b, a) } else { (a, b) };
                poll(from, now);
                if round >= 2 {
                    let mut payload = vec![i as u8, 0xff];
                    payload.extend_from_slice(&from.counter.to_be_bytes());
                    from.counter += 1;
                    let mut w = Vec::new();
                    from.s.seal(&payload, &mut w).unwrap();
                    from.sent.insert(payload);
                    from.inflight.push(w);
                }
                for wire in std::mem::take(&mut from.inflight) {
                    receive(from, to, &wire)?;
                }
                poll(to, now);
            }
        }
        // A last data record each way, with no poll after it (a poll may
        // move a sending key, which the peer only sees with the next record).
        for i in 0..2 {
            let [a, b] = &mut sides;
            let (from, to) = if i == 1 { (b, a) } else { (a, b) };
            let payload = vec![i as u8, 0xee];
            let mut w = Vec::new();
            from.s.seal(&payload, &mut w).unwrap();
            from.sent.insert(payload);
            receive(from, to, &w)?;
        }
        let [a, b] = &sides;
        prop_assert!(!a.s.ratchet_in_progress() && !b.s.ratchet_in_progress());
        prop_assert_eq!(a.s.send_epoch(), b.s.recv_epoch());
        prop_assert_eq!(b.s.send_epoch(), a.s.recv_epoch());
        prop_assert_eq!(a.s.ratchet_count(), b.s.ratchet_count());
    }
}

/// An authenticated datagram (sealed with the initiator's key) with the
/// given plaintext, as a peer could send it.
fn forged(plaintext: &[u8]) -> Vec<u8> {
    // Records are sealed under the record key derived from the secret.
    let record_key = akex::hazmat::schedule::record_key(&Secret::new([0x31; 32]));
    let key = akex::hazmat::aead::AeadKey::new(AeadAlgorithm::ChaChaPoly, record_key.expose());
    let mut wire = [0u8; 16].to_vec();
    let mut body = plaintext.to_vec();
    key.seal_in_place(0, &wire, &mut body);
    wire.extend_from_slice(&body);
    wire
}

#[test]
fn datagram_unknown_type_and_bad_ratchet_key_close_the_session() {
    let (_, mut b) = pair(RekeyPolicy::never());
    assert!(matches!(
        b.open(&forged(&[0x7f, 1, 2]), &mut Vec::new()),
        Err(Error::PeerMisbehaved(PeerMisbehaved::UnknownRecordType(
            0x7f
        )))
    ));
    assert!(b.has_failed());

    let (_, mut b) = pair(RekeyPolicy::never());
    let mut init = vec![0x03, 0, 0, 0, 1, 0x01];
    init.extend_from_slice(&[0u8; 32]); // low-order point
    init.extend_from_slice(&[0, 0]);
    assert!(matches!(
        b.open(&forged(&init), &mut Vec::new()),
        Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey))
    ));
    assert!(b.has_failed());

    // Unauthenticated garbage never closes it.
    let (_, mut b) = pair(RekeyPolicy::never());
    let mut bad = forged(&[0x01, 9]);
    bad[20] ^= 1;
    assert!(b.open(&bad, &mut Vec::new()).is_err());
    assert!(!b.has_failed());
}

#[test]
fn datagram_hybrid_ratchet_with_duplicated_init() {
    let config = SessionConfig::new()
        .rekey_policy(RekeyPolicy::never())
        .hybrid_ratchet(true);
    let mut a = DatagramSession::new(established(Role::Initiator), config.clone()).unwrap();
    let mut b = DatagramSession::new(established(Role::Responder), config).unwrap();
    let mut rng = OsRng;
    let mut init = Vec::new();
    assert!(b.start_ratchet(&mut rng, &mut init).unwrap());
    a.open(&init, &mut Vec::new()).unwrap();
    let mut resp = Vec::new();
    assert!(a.poll_control(Duration::ZERO, &mut rng, &mut resp).unwrap());
    // The init arrives again (duplicated by the network): not a replay
    // error that matters, and no second response key.
    assert!(a.open(&init, &mut Vec::new()).is_err());
    b.open(&resp, &mut Vec::new()).unwrap();
    let mut fin = Vec::new();
    assert!(b.poll_control(Duration::ZERO, &mut rng, &mut fin).unwrap());
    a.open(&fin, &mut Vec::new()).unwrap();
    assert_eq!((a.ratchet_count(), b.ratchet_count()), (1, 1));
    assert_eq!(a.recv_epoch(), b.send_epoch());
    let mut d = Vec::new();
    a.seal(b"hybrid", &mut d).unwrap();
    let mut got = Vec::new();
    b.open(&d, &mut got).unwrap();
    assert_eq!(got, b"hybrid");
    assert_eq!(b.recv_epoch(), a.send_epoch());
}

#[test]
fn control_records_are_not_data() {
    let (mut a, mut b) = pair(RekeyPolicy::never());
    let mut w = Vec::new();
    a.seal_control(
        akex::session::ControlType::RotationAnnouncement,
        b"[]",
        &mut w,
    )
    .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        b.open(&w, &mut out).unwrap(),
        Record::Control(akex::session::ControlType::RotationAnnouncement, 2)
    );
    assert!(out.is_empty(), "a control payload came out as data");
    // An unknown control type ends the session.
    let (_, mut b) = pair(RekeyPolicy::never());
    assert!(matches!(
        b.open(&forged(&[0x05, 0x12, 0x34]), &mut Vec::new()),
        Err(Error::PeerMisbehaved(PeerMisbehaved::UnknownControlType(
            0x1234
        )))
    ));
    assert!(b.has_failed());
}
