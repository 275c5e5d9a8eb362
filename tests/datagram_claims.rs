//! Promises of protocols/session.md ("Datagram mode") about the sans-IO
//! `DatagramSession`, each tested so that it fails if the promise breaks
//! (rows SESS-n of docs/claims.md): the record layout, which epochs open,
//! the replay window, forged records that move nothing, the ratchet's
//! retransmissions and switch points, and the documented defaults. Time
//! is passed in explicitly: nothing here sleeps.

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::error::{ApiMisuse, LimitReached, PeerMisbehaved};
use akex::handshake::TrafficSecret;
use akex::hazmat::aead::AeadKey;
use akex::hazmat::schedule::{next_traffic_secret, ratchet, record_key};
use akex::hazmat::ReplayRng;
use akex::session::datagram::{
    DatagramSession, Epoch, MAX_PREVIOUS_EPOCH_GRACE, MAX_SKIP, RATCHET_RTO,
};
use akex::session::{AeadLimits, Record, RekeyPolicy, SessionConfig, DEFAULT_PREVIOUS_EPOCH_GRACE};
use akex::{Error, Established, Role};

const I2R: [u8; 32] = [0x31; 32];
const R2I: [u8; 32] = [0x32; 32];
const ROOT: [u8; 32] = [0x33; 32];
const HASH: [u8; 32] = [1; 32];

fn established(role: Role) -> Established {
    Established::new(
        "akex-datagram-claims".into(),
        role,
        HASH.to_vec(),
        None,
        AeadAlgorithm::ChaChaPoly,
        TrafficSecret::new(Secret::new(I2R)),
        TrafficSecret::new(Secret::new(R2I)),
    )
    .with_root_secret(TrafficSecret::new(Secret::new(ROOT)))
}

fn pair_with(a: SessionConfig, b: SessionConfig) -> (DatagramSession, DatagramSession) {
    (
        DatagramSession::new(established(Role::Initiator), a).unwrap(),
        DatagramSession::new(established(Role::Responder), b).unwrap(),
    )
}

fn never() -> SessionConfig {
    SessionConfig::new().rekey_policy(RekeyPolicy::never())
}

fn pair() -> (DatagramSession, DatagramSession) {
    pair_with(never(), never())
}

fn epoch(generation: u32, update: u32) -> Epoch {
    Epoch { generation, update }
}

fn seal(s: &mut DatagramSession, data: &[u8]) -> Vec<u8> {
    let mut w = Vec::new();
    s.seal(data, &mut w).unwrap();
    w
}

fn header(e: Epoch, counter: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&e.generation.to_be_bytes());
    h[4..8].copy_from_slice(&e.update.to_be_bytes());
    h[8..].copy_from_slice(&counter.to_be_bytes());
    h
}

/// Opens a datagram record as the spec says, independently of the
/// session: header as associated data, its counter as the nonce, the
/// record key of `secret`. Returns the plaintext (type byte and body).
fn open_as_spec(secret: &[u8; 32], wire: &[u8]) -> Option<Vec<u8>> {
    let key = AeadKey::new(
        AeadAlgorithm::ChaChaPoly,
        record_key(&Secret::new(*secret)).expose(),
    );
    let counter = u64::from_be_bytes(wire[8..16].try_into().unwrap());
    let mut body = wire[16..].to_vec();
    let n = key.open_in_place(counter, &wire[..16], &mut body).ok()?;
    body.truncate(n);
    Some(body)
}

/// Seals `plaintext` as the spec says under `secret`'s record key.
fn seal_as_spec(secret: &[u8; 32], e: Epoch, counter: u64, plaintext: &[u8]) -> Vec<u8> {
    let key = AeadKey::new(
        AeadAlgorithm::ChaChaPoly,
        record_key(&Secret::new(*secret)).expose(),
    );
    let h = header(e, counter);
    let mut body = plaintext.to_vec();
    key.seal_in_place(counter, &h, &mut body);
    [&h[..], &body].concat()
}

fn is_peer(result: Result<Record, Error>, expected: PeerMisbehaved) -> bool {
    matches!(result, Err(Error::PeerMisbehaved(e)) if e == expected)
}

/// `generation u32 ‖ update u32 ‖ counter u64 ‖ AEAD(type ‖ body)`, the
/// header as associated data, the counter as nonce restarting at 0 with
/// every key; a key update sends no record, only the header changes.
#[test]
fn datagram_records_are_laid_out_as_specified() {
    let (mut a, mut b) = pair();
    let r0 = seal(&mut a, b"zero");
    let r1 = seal(&mut a, b"one");
    assert_eq!(&r0[..16], &header(epoch(0, 0), 0));
    assert_eq!(&r1[..16], &header(epoch(0, 0), 1));
    assert_eq!(open_as_spec(&I2R, &r0).unwrap(), b"\x01zero");
    a.key_update();
    assert_eq!(a.send_epoch(), epoch(0, 1));
    let r2 = seal(&mut a, b"two");
    assert_eq!(&r2[..16], &header(epoch(0, 1), 0));
    let next = *next_traffic_secret(&Secret::new(I2R)).expose();
    assert_eq!(open_as_spec(&next, &r2).unwrap(), b"\x01two");
    assert!(open_as_spec(&I2R, &r2).is_none());
    // Changing the header (the associated data) breaks the record.
    let mut moved = r1.clone();
    moved[15] = 7;
    assert!(open_as_spec(&I2R, &moved).is_none());
    for w in [&r0, &r1, &r2] {
        b.open(w, &mut Vec::new()).unwrap();
    }
    assert_eq!(b.recv_epoch(), epoch(0, 1));
}

/// A key is updated by the policy only once it has protected a record: an
/// idle session's keys never move, whatever the time; a used key moves
/// 120 s after it was installed (the default policy).
#[test]
fn an_idle_key_is_never_updated() {
    let (mut a, _) = pair_with(SessionConfig::new(), SessionConfig::new());
    let poll = |s: &mut DatagramSession, secs: u64| {
        let mut out = Vec::new();
        s.poll_control(Duration::from_secs(secs), &mut OsRng, &mut out)
            .unwrap();
        assert!(out.is_empty(), "a key update sends no record");
    };
    poll(&mut a, 30 * 86_400);
    assert_eq!(a.send_epoch(), epoch(0, 0));
    let (mut a, _) = pair_with(SessionConfig::new(), SessionConfig::new());
    seal(&mut a, b"used");
    poll(&mut a, 119);
    assert_eq!(a.send_epoch(), epoch(0, 0));
    poll(&mut a, 120);
    assert_eq!(a.send_epoch(), epoch(0, 1));
    poll(&mut a, 30 * 86_400);
    assert_eq!(a.send_epoch(), epoch(0, 1), "the new key is unused");
}

/// The previous epoch's key opens records for 3 s by default after the
/// peer moved on, then never again; the grace may be set up to 60 s.
#[test]
fn the_previous_epoch_is_kept_3_s_by_default() {
    assert_eq!(DEFAULT_PREVIOUS_EPOCH_GRACE, Duration::from_secs(3));
    assert_eq!(MAX_PREVIOUS_EPOCH_GRACE, Duration::from_secs(60));
    let (mut a, mut b) = pair_with(
        never(),
        SessionConfig::new().rekey_policy(RekeyPolicy::never()),
    );
    let old: Vec<_> = (0..2u8).map(|i| seal(&mut a, &[i])).collect();
    a.key_update();
    let new = seal(&mut a, b"new");
    b.set_time(Duration::from_secs(100));
    b.open(&new, &mut Vec::new()).unwrap();
    b.set_time(Duration::from_millis(102_999));
    assert_eq!(b.open(&old[0], &mut Vec::new()).unwrap(), Record::Data(1));
    b.set_time(Duration::from_secs(103));
    assert!(is_peer(
        b.open(&old[1], &mut Vec::new()),
        PeerMisbehaved::UnexpectedMessage
    ));
    assert!(!b.has_failed());
    let config = |secs| SessionConfig::new().previous_epoch_grace(Duration::from_secs(secs));
    assert!(DatagramSession::new(established(Role::Initiator), config(60)).is_ok());
    assert!(matches!(
        DatagramSession::new(established(Role::Initiator), config(61)),
        Err(Error::Config(_))
    ));
}

/// The replay window covers 2048 records below the highest accepted:
/// 2047 below opens, 2048 below is too old, a repeat is a replay.
#[test]
fn the_replay_window_holds_2048_records() {
    assert_eq!(akex::hazmat::replay::WINDOW_SIZE, 2048);
    let (mut a, mut b) = pair();
    let wires: Vec<_> = (0..=2048u32)
        .map(|i| seal(&mut a, &i.to_be_bytes()))
        .collect();
    b.open(&wires[2048], &mut Vec::new()).unwrap();
    assert!(is_peer(
        b.open(&wires[0], &mut Vec::new()),
        PeerMisbehaved::TooOld
    ));
    b.open(&wires[1], &mut Vec::new()).unwrap();
    assert!(is_peer(
        b.open(&wires[1], &mut Vec::new()),
        PeerMisbehaved::Replayed
    ));
    b.open(&wires[1000], &mut Vec::new()).unwrap();
    assert!(!b.has_failed());
    assert_eq!(b.forgeries(), 0, "refused before any decryption");
}

/// A record up to 8 key updates ahead is tried with the derived key and
/// becomes current; 9 ahead has no key (dropped, nothing decrypted).
#[test]
fn records_up_to_8_updates_ahead_are_followed() {
    assert_eq!(MAX_SKIP, 8);
    for (updates, followed) in [(8u32, true), (9, false)] {
        let (mut a, mut b) = pair();
        for _ in 0..updates {
            a.key_update();
        }
        let w = seal(&mut a, b"ahead");
        let r = b.open(&w, &mut Vec::new());
        if followed {
            assert_eq!(r.unwrap(), Record::Data(5));
            assert_eq!(b.recv_epoch(), epoch(0, 8));
        } else {
            assert!(is_peer(r, PeerMisbehaved::UnexpectedMessage));
            assert_eq!(b.recv_epoch(), epoch(0, 0));
            assert!(!b.has_failed());
            assert_eq!(b.forgeries(), 0);
        }
    }
}

/// A ratchet step from `a` to the point where `a` has the response: `a`
/// switched its sending key; its finish is pending. Returns the init,
/// response and the finish `a` would send.
fn step(
    a: &mut DatagramSession,
    b: &mut DatagramSession,
    x: u8,
    y: u8,
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut init = Vec::new();
    assert!(a
        .start_ratchet(&mut ReplayRng::new(vec![x; 32]), &mut init)
        .unwrap());
    b.open(&init, &mut Vec::new()).unwrap();
    let mut response = Vec::new();
    assert!(b
        .poll_control(
            Duration::ZERO,
            &mut ReplayRng::new(vec![y; 32]),
            &mut response
        )
        .unwrap());
    assert_eq!(
        b.send_epoch(),
        epoch(0, 0),
        "R keeps its key until S proves it switched"
    );
    a.open(&response, &mut Vec::new()).unwrap();
    assert_eq!(
        a.send_epoch(),
        epoch(1, 0),
        "S switches as soon as the response checks out"
    );
    let mut finish = Vec::new();
    assert!(a
        .poll_control(Duration::ZERO, &mut OsRng, &mut finish)
        .unwrap());
    assert_eq!(
        &finish[..8],
        &header(epoch(1, 0), 0)[..8],
        "the finish is in g+1"
    );
    (init, response, finish)
}

/// Once a step made the next generation known, its epochs (g+1, 0…8)
/// open; (g+1, 9) does not. The step's responder switches its sending key
/// on the first record of g+1 that authenticates.
#[test]
fn the_next_generation_is_followed_up_to_8_updates_ahead() {
    for (updates, followed) in [(8u32, true), (9, false)] {
        let (mut a, mut b) = pair();
        let _finish_lost = step(&mut a, &mut b, 0x21, 0x22);
        for _ in 0..updates {
            a.key_update();
        }
        let w = seal(&mut a, b"g+1");
        let r = b.open(&w, &mut Vec::new());
        if followed {
            assert_eq!(r.unwrap(), Record::Data(3));
            assert_eq!(b.recv_epoch(), epoch(1, 8));
            assert_eq!(b.send_epoch(), epoch(1, 0));
        } else {
            assert!(is_peer(r, PeerMisbehaved::UnexpectedMessage));
            assert_eq!(b.send_epoch(), epoch(0, 0));
        }
    }
}

/// Only the current and the previous epoch open: when the peer moves on
/// twice, the epoch before the previous one is dropped at once, even
/// within the grace period.
#[test]
fn the_epoch_before_the_previous_is_dropped() {
    let (mut a, mut b) = pair();
    let e0 = [seal(&mut a, b"a"), seal(&mut a, b"b")];
    a.key_update();
    let e1 = [seal(&mut a, b"c"), seal(&mut a, b"d")];
    a.key_update();
    let e2 = seal(&mut a, b"e");
    b.open(&e1[0], &mut Vec::new()).unwrap();
    b.open(&e0[0], &mut Vec::new()).unwrap(); // previous: still open
    b.open(&e2, &mut Vec::new()).unwrap();
    assert_eq!(b.recv_epoch(), epoch(0, 2));
    b.open(&e1[1], &mut Vec::new()).unwrap(); // (0, 1) is the previous now
    assert!(is_peer(
        b.open(&e0[1], &mut Vec::new()),
        PeerMisbehaved::UnexpectedMessage
    ));
}

/// Check before decrypting, accept after authenticating: a forged record
/// with a huge counter (2^63, 2^64 − 2) moves no replay window, and one
/// for a later epoch moves no epoch; genuine records still open after it.
#[test]
fn forged_records_never_move_a_window_or_an_epoch() {
    let (mut a, mut b) = pair();
    let genuine: Vec<_> = (0..4u8).map(|i| seal(&mut a, &[i])).collect();
    b.open(&genuine[0], &mut Vec::new()).unwrap();
    for counter in [1u64 << 63, u64::MAX - 1] {
        let mut forged = header(epoch(0, 0), counter).to_vec();
        forged.extend_from_slice(&[0xa5; 1 + 16 + 4]);
        assert!(is_peer(
            b.open(&forged, &mut Vec::new()),
            PeerMisbehaved::DecryptFailed
        ));
    }
    // The reserved nonce is not even tried.
    let mut reserved = header(epoch(0, 0), u64::MAX).to_vec();
    reserved.extend_from_slice(&[0xa5; 21]);
    assert!(b.open(&reserved, &mut Vec::new()).is_err());
    // A forgery for the next key update does not make it current.
    let mut ahead = header(epoch(0, 1), 0).to_vec();
    ahead.extend_from_slice(&[0xa5; 21]);
    assert!(is_peer(
        b.open(&ahead, &mut Vec::new()),
        PeerMisbehaved::DecryptFailed
    ));
    assert_eq!(b.recv_epoch(), epoch(0, 0));
    for w in &genuine[1..] {
        b.open(w, &mut Vec::new()).unwrap();
    }
    assert_eq!(b.forgeries(), 3);
    assert!(!b.has_failed());
}

/// Replayed, too old, forged, unknown-epoch and badly sized datagrams are
/// dropped with a typed error, and the session stays open.
#[test]
fn dropped_datagrams_leave_the_session_open() {
    let (mut a, mut b) = pair();
    let wires: Vec<_> = (0..=2100u32)
        .map(|i| seal(&mut a, &i.to_be_bytes()))
        .collect();
    b.open(&wires[2100], &mut Vec::new()).unwrap();
    let mut forged = wires[2000].clone();
    forged[20] ^= 1;
    let unknown = seal_as_spec(&I2R, epoch(7, 0), 0, b"\x01?");
    let cases: [(&str, &[u8], PeerMisbehaved); 5] = [
        ("replayed", &wires[2100], PeerMisbehaved::Replayed),
        ("too old", &wires[0], PeerMisbehaved::TooOld),
        ("forged", &forged, PeerMisbehaved::DecryptFailed),
        ("unknown epoch", &unknown, PeerMisbehaved::UnexpectedMessage),
        (
            "too short",
            &wires[1][..32],
            PeerMisbehaved::BadMessageLength,
        ),
    ];
    for (what, wire, expected) in cases {
        assert!(is_peer(b.open(wire, &mut Vec::new()), expected), "{what}");
        assert!(!b.has_failed() && !b.is_closed(), "{what}");
    }
    assert_eq!(
        b.open(&wires[2099], &mut Vec::new()).unwrap(),
        Record::Data(4)
    );
}

/// Forgeries count per session, over every epoch: two against the
/// previous epoch and two against the current one reach a limit of 4,
/// which closes the session with `PeerExceededLimit`.
#[test]
fn forgeries_add_up_over_epochs_and_close_the_session_at_the_limit() {
    let limits = AeadLimits {
        max_forgeries: 4,
        ..AeadLimits::for_aead(AeadAlgorithm::ChaChaPoly)
    };
    let (mut a, mut b) = pair_with(never(), never().limits(limits));
    let old = seal(&mut a, b"old");
    a.key_update();
    b.open(&seal(&mut a, b"new"), &mut Vec::new()).unwrap();
    let forgery = |e: Epoch, counter: u64| {
        let mut w = header(e, counter).to_vec();
        w.extend_from_slice(&[0x5a; 21]);
        w
    };
    let results: Vec<_> = [
        forgery(epoch(0, 0), 10),
        forgery(epoch(0, 0), 11),
        forgery(epoch(0, 1), 10),
        forgery(epoch(0, 1), 11),
    ]
    .iter()
    .map(|w| b.open(w, &mut Vec::new()))
    .collect();
    for r in &results[..3] {
        assert!(matches!(
            r,
            Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))
        ));
    }
    assert!(matches!(
        results[3],
        Err(Error::Limit(LimitReached::PeerExceededLimit))
    ));
    assert!(b.has_failed());
    assert!(matches!(
        b.open(&old, &mut Vec::new()),
        Err(Error::ApiMisuse(ApiMisuse::SessionClosed))
    ));
}

/// The ratchet init is sent again at 250 ms, the delay doubling up to 8 s,
/// until the response arrives; then never again.
#[test]
fn the_ratchet_init_is_resent_with_backoff_until_answered() {
    assert_eq!(RATCHET_RTO, Duration::from_millis(250));
    let (mut a, mut b) = pair();
    let mut init = Vec::new();
    assert!(a.start_ratchet(&mut OsRng, &mut init).unwrap());
    let ms = Duration::from_millis;
    let mut resent = Vec::new();
    // 250, +500, +1 s, +2 s, +4 s, then +8 s each time.
    for at in [250u64, 750, 1750, 3750, 7750, 15_750, 23_750, 31_750] {
        let mut out = Vec::new();
        assert!(
            !a.poll_control(ms(at - 1), &mut OsRng, &mut out).unwrap(),
            "{at}"
        );
        assert!(
            a.poll_control(ms(at), &mut OsRng, &mut out).unwrap(),
            "{at}"
        );
        assert!(
            !a.poll_control(ms(at), &mut OsRng, &mut out).unwrap(),
            "{at}"
        );
        resent.push(out);
    }
    // Each resend is the same init in a fresh record.
    let body = |w: &[u8]| open_as_spec(&I2R, w).unwrap();
    assert!(resent.iter().all(|w| body(w) == body(&init)));
    b.open(&resent[7], &mut Vec::new()).unwrap();
    let mut response = Vec::new();
    assert!(b
        .poll_control(ms(31_800), &mut OsRng, &mut response)
        .unwrap());
    a.open(&response, &mut Vec::new()).unwrap();
    let mut finish = Vec::new();
    assert!(a.poll_control(ms(31_800), &mut OsRng, &mut finish).unwrap());
    for at in [40_000u64, 100_000, 1_000_000] {
        assert!(!a.poll_control(ms(at), &mut OsRng, &mut Vec::new()).unwrap());
    }
}

/// A repeat of an init that was answered gets the same response again
/// (the same plaintext, sealed anew), which completes the step when the
/// first response was lost.
#[test]
fn a_repeated_init_gets_the_same_response() {
    let (mut a, mut b) = pair();
    let mut init = Vec::new();
    assert!(a.start_ratchet(&mut OsRng, &mut init).unwrap());
    b.open(&init, &mut Vec::new()).unwrap();
    let mut lost = Vec::new();
    assert!(b
        .poll_control(Duration::ZERO, &mut OsRng, &mut lost)
        .unwrap());
    let mut again = Vec::new();
    let ms = Duration::from_millis;
    assert!(a.poll_control(ms(250), &mut OsRng, &mut again).unwrap());
    assert_eq!(b.open(&again, &mut Vec::new()).unwrap(), Record::Ratchet);
    let mut response = Vec::new();
    assert!(b.poll_control(ms(250), &mut OsRng, &mut response).unwrap());
    assert_ne!(lost, response, "a new record");
    assert_eq!(
        open_as_spec(&R2I, &lost).unwrap(),
        open_as_spec(&R2I, &response).unwrap(),
        "the same response"
    );
    a.open(&response, &mut Vec::new()).unwrap();
    let mut finish = Vec::new();
    assert!(a.poll_control(ms(300), &mut OsRng, &mut finish).unwrap());
    b.open(&finish, &mut Vec::new()).unwrap();
    let mut got = Vec::new();
    a.open(&seal(&mut b, b"healed"), &mut got).unwrap();
    assert_eq!(got, b"healed");
    assert_eq!((a.ratchet_count(), b.ratchet_count()), (1, 1));
}

/// Ratchet records of a generation other than the one in progress are
/// ignored in datagram mode (duplicates and leftovers), not fatal.
#[test]
fn ratchet_records_of_another_generation_are_ignored() {
    let (_, mut b) = pair();
    let x_pub = akex::hazmat::x25519::public_key(&Secret::new([3; 32]));
    for generation in [0u32, 5] {
        let mut plaintext = vec![0x03];
        plaintext.extend_from_slice(&generation.to_be_bytes());
        plaintext.push(1);
        plaintext.extend_from_slice(&x_pub);
        plaintext.extend_from_slice(&[0, 0]);
        let w = seal_as_spec(&I2R, epoch(0, 0), u64::from(generation), &plaintext);
        assert_eq!(b.open(&w, &mut Vec::new()).unwrap(), Record::Ratchet);
    }
    assert!(!b.has_failed() && !b.ratchet_in_progress());
    assert!(!b
        .poll_control(Duration::ZERO, &mut OsRng, &mut Vec::new())
        .unwrap());
}

/// The step's keys are the spec's HKDF over `dh_ee` and the transcript,
/// recomputed here from the step's randomness; the finish carries
/// `confirm_finish`, and a finish in g+1 with any other value is
/// `BadKeyConfirmation` and closes the session.
#[test]
fn the_finish_confirmation_is_checked_when_it_arrives() {
    let (mut a, mut b) = pair();
    let (init, response, finish) = step(&mut a, &mut b, 0x21, 0x22);
    let init = open_as_spec(&I2R, &init).unwrap();
    let response = open_as_spec(&R2I, &response).unwrap();
    let mut ctx = HASH.to_vec();
    ctx.extend_from_slice(&1u32.to_be_bytes());
    ctx.push(0x01); // started by the handshake initiator
    let th = akex::hazmat::hash::sha256(&[&ctx, &init[6..40], &response[6..40]]);
    let x = akex::hazmat::x25519::X25519Private::new(&Secret::new([0x21; 32]));
    let dh_ee = x.agree(&response[6..38]).unwrap();
    let keys = ratchet(&Secret::new(ROOT), &[&dh_ee], &th);
    let i2r = *keys.initiator_to_responder.expose();
    let plaintext = open_as_spec(&i2r, &finish).expect("the finish under the spec's key");
    assert_eq!(&plaintext[6..], keys.confirm_finish.expose());
    // The same finish with another confirmation value.
    let mut wrong = plaintext.clone();
    wrong[6] ^= 1;
    let forged = seal_as_spec(&i2r, epoch(1, 0), 0, &wrong);
    assert!(is_peer(
        b.open(&forged, &mut Vec::new()),
        PeerMisbehaved::BadKeyConfirmation
    ));
    assert!(b.has_failed());
    // The genuine finish completes the step.
    let (mut a, mut b) = pair();
    let (_, _, finish) = step(&mut a, &mut b, 0x21, 0x22);
    b.open(&finish, &mut Vec::new()).unwrap();
    assert_eq!(b.send_epoch(), epoch(1, 0));
    assert_eq!(b.ratchet_count(), 1);
}

/// A hybrid datagram session refuses a classical ratchet init
/// (`MalformedRecord`), like a stream session.
#[test]
fn a_hybrid_datagram_session_refuses_a_classical_init() {
    let (mut a, mut b) = pair_with(never(), never().hybrid_ratchet(true));
    let mut init = Vec::new();
    assert!(a.start_ratchet(&mut OsRng, &mut init).unwrap());
    assert!(is_peer(
        b.open(&init, &mut Vec::new()),
        PeerMisbehaved::MalformedRecord
    ));
    assert!(b.has_failed());
}
