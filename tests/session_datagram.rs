//! Datagram mode (sans-IO): the replay window against a model, and random
//! interleavings with loss, duplication and reordering.

use std::collections::HashSet;
use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::error::PeerMisbehaved;
use akex::handshake::TrafficSecret;
use akex::hazmat::replay::WINDOW_SIZE;
use akex::hazmat::replay::{ReplayCheck, ReplayWindow};
use akex::session::datagram::{DatagramSession, Epoch};
use akex::session::{Record, RekeyPolicy, SessionConfig};
use akex::{Error, Established, Role};
use proptest::prelude::*;

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

fn established(role: Role) -> Established {
    Established::new(
        "akex-datagram-test".into(),
        role,
        vec![1; 32],
        None,
        AeadAlgorithm::ChaChaPoly,
        TrafficSecret::new(Secret::new([0x31; 32])),
        TrafficSecret::new(Secret::new([0x32; 32])),
    )
    .with_root_secret(TrafficSecret::new(Secret::new([0x33; 32])))
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

// ---- issue 15: sessions that never stall, old keys that expire, every
// ---- forgery counted ----------------------------------------------------

fn limited_pair(max_forgeries: u64, grace: Duration) -> (DatagramSession, DatagramSession) {
    let limits = akex::session::AeadLimits {
        max_forgeries,
        ..akex::session::AeadLimits::for_aead(AeadAlgorithm::ChaChaPoly)
    };
    let config = SessionConfig::new()
        .rekey_policy(RekeyPolicy::never())
        .limits(limits)
        .previous_epoch_grace(grace);
    (
        DatagramSession::new(established(Role::Initiator), config.clone()).unwrap(),
        DatagramSession::new(established(Role::Responder), config).unwrap(),
    )
}

/// A datagram with a valid-looking header for `epoch` and a forged body.
fn forgery(epoch: Epoch, counter: u64) -> Vec<u8> {
    let mut wire = epoch.generation.to_be_bytes().to_vec();
    wire.extend_from_slice(&epoch.update.to_be_bytes());
    wire.extend_from_slice(&counter.to_be_bytes());
    wire.extend_from_slice(&[0x5a; 1 + 16 + 8]);
    wire
}

#[test]
fn forgeries_against_any_epoch_count_toward_the_limit() {
    let e = |generation, update| Epoch { generation, update };
    // Every kind of key a forgery can be tried against: the current epoch,
    // the previous one, a key update ahead (a trial decryption), and the
    // next generation once a ratchet step made it known.
    for target in ["current", "previous", "next update", "next generation"] {
        let (mut a, mut b) = limited_pair(4, Duration::from_secs(30));
        let mut rng = OsRng;
        // Give b a previous epoch and a known next generation.
        a.key_update();
        let mut w = Vec::new();
        a.seal(b"epoch (0, 1)", &mut w).unwrap();
        b.open(&w, &mut Vec::new()).unwrap();
        let mut init = Vec::new();
        assert!(a.start_ratchet(&mut rng, &mut init).unwrap());
        b.open(&init, &mut Vec::new()).unwrap();
        assert!(b
            .poll_control(Duration::ZERO, &mut rng, &mut Vec::new())
            .unwrap());
        let epoch = match target {
            "current" => e(0, 1),
            "previous" => e(0, 0),
            "next update" => e(0, 5),
            _ => e(1, 0),
        };
        let mut sent = 0u64;
        while sent < 100_000 && !b.has_failed() {
            // Counters past the ones used, so each is a decryption attempt.
            let result = b.open(&forgery(epoch, 1000 + sent), &mut Vec::new());
            sent += 1;
            assert!(result.is_err());
        }
        assert!(
            b.has_failed(),
            "{target}: 100,000 forgeries left the session open"
        );
        assert_eq!(sent, 4, "{target}: closed after {sent} forgeries");
        assert_eq!(b.forgeries(), 4);
    }
}

#[test]
fn previous_epoch_keys_expire_after_the_grace_period() {
    let grace = Duration::from_millis(500);
    let (mut a, mut b) = limited_pair(1 << 20, grace);
    let mut rng = OsRng;
    let mut old = Vec::new();
    for i in 0..3u8 {
        let mut w = Vec::new();
        a.seal(&[i], &mut w).unwrap();
        old.push(w);
    }
    // A ratchet step: pre-ratchet records in flight still open for the
    // grace period after the new generation arrived, then never.
    let mut init = Vec::new();
    assert!(a.start_ratchet(&mut rng, &mut init).unwrap());
    b.set_time(Duration::from_secs(10));
    b.open(&init, &mut Vec::new()).unwrap();
    let mut resp = Vec::new();
    assert!(b
        .poll_control(Duration::from_secs(10), &mut rng, &mut resp)
        .unwrap());
    a.open(&resp, &mut Vec::new()).unwrap();
    let mut fin = Vec::new();
    assert!(a
        .poll_control(Duration::from_secs(10), &mut rng, &mut fin)
        .unwrap());
    b.open(&fin, &mut Vec::new()).unwrap();
    assert_eq!(b.recv_epoch().generation, 1);
    assert!(b.previous_epoch_accepted());
    b.set_time(Duration::from_millis(10_400));
    let mut got = Vec::new();
    assert_eq!(b.open(&old[0], &mut got).unwrap(), Record::Data(1));
    b.set_time(Duration::from_millis(10_500));
    assert!(!b.previous_epoch_accepted());
    for w in &old[1..] {
        assert!(matches!(
            b.open(w, &mut Vec::new()),
            Err(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage))
        ));
    }
    // Someone holding the pre-ratchet key injects a fresh record: refused
    // (no key for that epoch any more), and nothing was decrypted.
    let record_key = akex::hazmat::schedule::record_key(&Secret::new([0x31; 32]));
    let key = akex::hazmat::aead::AeadKey::new(AeadAlgorithm::ChaChaPoly, record_key.expose());
    let header = [0u8; 16];
    let mut body = vec![0x01, b'!'];
    let mut counter_header = header;
    counter_header[15] = 99;
    key.seal_in_place(99, &counter_header, &mut body);
    let mut injected = counter_header.to_vec();
    injected.extend_from_slice(&body);
    assert!(b.open(&injected, &mut Vec::new()).is_err());
    assert!(!b.has_failed());
    assert_eq!(b.forgeries(), 0);
    // The grace period is bounded.
    let config = SessionConfig::new().previous_epoch_grace(Duration::from_secs(61));
    assert!(DatagramSession::new(established(Role::Initiator), config).is_err());
}

/// A small deterministic generator for the simulated traffic.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Days of a virtual clock: idle stretches (minutes to a day) with both
/// sides' timers polling every 30 s, and bursts with 25% loss. With the
/// default policy (key update after 120 s) an idle session used to move
/// its key on every 120 s and stall its peer after 8 unseen updates; now
/// it never stalls.
#[test]
fn idle_and_bursty_traffic_over_simulated_days() {
    let config = SessionConfig::new().ratchet_every(Duration::from_secs(6 * 3600));
    let mut a = DatagramSession::new(established(Role::Initiator), config.clone()).unwrap();
    let mut b = DatagramSession::new(established(Role::Responder), config).unwrap();
    let mut rng = OsRng;
    let mut lcg = Lcg(18);
    let mut now = Duration::ZERO;
    let end = Duration::from_secs(4 * 86_400);
    let (mut sent, mut delivered, mut bursts) = (0u64, 0u64, 0u64);
    let mut in_flight: Vec<(bool, Vec<u8>)> = Vec::new();
    let deliver = |a: &mut DatagramSession,
                   b: &mut DatagramSession,
                   now: Duration,
                   lcg: &mut Lcg,
                   in_flight: &mut Vec<(bool, Vec<u8>)>|
     -> u64 {
        let mut got = 0;
        for (to_b, wire) in std::mem::take(in_flight) {
            if lcg.next().is_multiple_of(4) {
                continue; // lost
            }
            let to = if to_b { &mut *b } else { &mut *a };
            to.set_time(now);
            if let Ok(Record::Data(_)) = to.open(&wire, &mut Vec::new()) {
                got += 1;
            }
            assert!(!to.has_failed());
        }
        got
    };
    while now < end {
        // Idle: minutes to a day, both timers firing every 30 s.
        let idle = Duration::from_secs(60 + lcg.next() % 86_400);
        let until = now + idle;
        while now < until {
            now += Duration::from_secs(30);
            for (s, to_b) in [(&mut a, true), (&mut b, false)] {
                let mut out = Vec::new();
                while s.poll_control(now, &mut rng, &mut out).unwrap() {
                    in_flight.push((to_b, std::mem::take(&mut out)));
                }
            }
            delivered += deliver(&mut a, &mut b, now, &mut lcg, &mut in_flight);
        }
        // A burst: 10 records each way, 25% lost, answers as they come.
        bursts += 1;
        let mut burst_delivered = 0;
        for i in 0..10u8 {
            now += Duration::from_millis(50);
            for (s, to_b) in [(&mut a, true), (&mut b, false)] {
                let mut out = Vec::new();
                while s.poll_control(now, &mut rng, &mut out).unwrap() {
                    in_flight.push((to_b, std::mem::take(&mut out)));
                }
                let mut w = Vec::new();
                s.seal(&[i; 100], &mut w).unwrap();
                in_flight.push((to_b, w));
                sent += 1;
            }
            burst_delivered += deliver(&mut a, &mut b, now, &mut lcg, &mut in_flight);
        }
        delivered += burst_delivered;
        assert!(
            burst_delivered >= 5,
            "burst {bursts} at {now:?}: {burst_delivered} of 20 records delivered \
             (epochs a {:?}/{:?}, b {:?}/{:?})",
            a.send_epoch(),
            a.recv_epoch(),
            b.send_epoch(),
            b.recv_epoch()
        );
    }
    assert!(bursts >= 4);
    assert!(
        a.ratchet_count() >= 1 && b.ratchet_count() >= 1,
        "the ratchet ran too"
    );
    assert!(
        delivered * 10 >= sent * 6,
        "{delivered} of {sent} delivered"
    );
    assert!(!a.is_closed() && !b.is_closed());
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
