//! The handshake rules of protocols/datagram.md, one promise per test
//! (rows DGRAM-n of docs/claims.md): the retransmission schedule and its
//! cap, pacing of answers to repeats, confirmation, early records, when an
//! address counts as validated, what the budget holds back, and a cookie
//! in place of an answer too large for it. Time is passed in explicitly.

use super::tests::{nn, pair, peer, timers, MS, NN};
use super::*;
use crate::crypto::OsRng;
use crate::handshake::noise::{NoiseConfig, NoiseHandshake};
use crate::keys::StaticSecret;
use crate::transport::datagram::{
    CookiePolicy, DatagramOptions, AMPLIFICATION_FACTOR, TOKEN_LEN, TOKEN_LIFETIME_SECS,
};

fn parsed(bytes: &[u8]) -> Packet<'_> {
    packet::parse(bytes).expect("a well-formed packet")
}

/// Feeds `bytes` to `pump` at `now`; returns what it sent.
fn feed(pump: &mut Pump, now: Duration, bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    pump.on_packet(now, parsed(bytes), bytes.len(), &mut out)
        .unwrap();
    out
}

/// Runs an initiator's timers to the deadline; returns when it resent.
fn resend_times(handshake_timeout: Duration) -> Vec<Duration> {
    let timers = Timers {
        handshake_timeout,
        ..timers()
    };
    let mut out = Vec::new();
    let mut i = Pump::initiator(
        nn(Role::Initiator),
        [1; 8],
        peer(),
        timers,
        Duration::ZERO,
        &mut out,
    )
    .unwrap();
    let mut times = Vec::new();
    loop {
        let now = i.next_timer().expect("the deadline at least");
        out.clear();
        match i.on_timer(now, &mut out) {
            Ok(()) if out.is_empty() => {}
            Ok(()) => times.push(now),
            Err(Error::Timeout(_)) => {
                assert_eq!(now, handshake_timeout);
                assert_eq!(i.counters.get().handshake_resends, times.len() as u64);
                return times;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// First resend after 200 ms, the delay doubling up to 2 s, at most 8
/// resends, none at or after the deadline (10 s by default).
#[test]
fn resends_back_off_and_stop_at_8() {
    assert_eq!(MAX_HANDSHAKE_RESENDS, 8);
    let ms = |v: &[u64]| {
        v.iter()
            .map(|&t| Duration::from_millis(t))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        resend_times(Duration::from_secs(60)),
        ms(&[200, 600, 1400, 3000, 5000, 7000, 9000, 11_000])
    );
    assert_eq!(
        resend_times(Duration::from_secs(10)),
        ms(&[200, 600, 1400, 3000, 5000, 7000, 9000])
    );
}

/// An exact repeat is answered at most once per half retransmission delay
/// (each answer doubles the delay); a repeat after the deadline is not.
#[test]
fn repeats_are_answered_at_most_once_per_half_delay() {
    let (_i, mut r, first, answer) = pair(Arc::new(CookieJar::new()));
    assert_eq!(answer.len(), 1);
    // Sent at 0 with a 200 ms delay: the first answer at 100 ms or later.
    assert!(feed(&mut r, 50 * MS, &first).is_empty());
    assert_eq!(feed(&mut r, 100 * MS, &first), answer);
    // Now 400 ms: the next one 200 ms after the last send.
    assert!(feed(&mut r, 250 * MS, &first).is_empty());
    assert_eq!(feed(&mut r, 300 * MS, &first), answer);
    assert_eq!(r.counters.get().handshake_resends, 2);
    assert_eq!(r.counters.get().duplicates, 2);
    assert!(
        feed(&mut r, 10_000 * MS, &first).is_empty(),
        "past the deadline"
    );
}

/// The side that wrote the last message (NN's responder) resends it on
/// its timer until the peer's confirmation arrives, then never again.
#[test]
fn the_writer_of_the_last_message_resends_it_until_confirmed() {
    let (mut i, mut r, _first, answer) = pair(Arc::new(CookieJar::new()));
    let mut none = Vec::new();
    let _keys = r.take_established(Duration::ZERO, &mut none).unwrap();
    assert!(none.is_empty() && !r.is_confirmed());
    let mut out = Vec::new();
    r.on_timer(200 * MS, &mut out).unwrap();
    assert_eq!(out, answer, "resent on the timer");
    assert!(feed(&mut i, 210 * MS, &answer[0]).is_empty());
    let mut confirm = Vec::new();
    let _keys = i.take_established(210 * MS, &mut confirm).unwrap();
    assert_eq!(confirm.len(), 1);
    assert_eq!(confirm[0][0], packet::KIND_CONFIRM);
    assert!(feed(&mut r, 220 * MS, &confirm[0]).is_empty());
    assert!(r.is_confirmed());
    assert_eq!(r.next_timer(), None);
    let mut out = Vec::new();
    r.on_timer(600 * MS, &mut out).unwrap();
    assert!(out.is_empty());
}

/// The reader of the last message confirms once when it finishes and
/// once more for each exact repeat of that message, at most 8 times.
#[test]
fn confirmations_answer_repeats_of_the_last_message_at_most_8_times() {
    let (mut i, _r, _first, answer) = pair(Arc::new(CookieJar::new()));
    assert!(feed(&mut i, MS, &answer[0]).is_empty());
    let mut out = Vec::new();
    let _keys = i.take_established(MS, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    let mut confirms = 0;
    for k in 1..=20u32 {
        for p in feed(&mut i, k * 10_000 * MS, &answer[0]) {
            assert_eq!(p, out[0]);
            confirms += 1;
        }
    }
    assert_eq!(confirms, 8);
}

/// Records that arrive before the handshake finished are kept, at most 8
/// and at most 32 KiB; the rest are dropped and counted.
#[test]
fn early_records_are_kept_up_to_8_and_32_kib() {
    let record = |len: usize| {
        let mut p = packet::record_header(&[1; 8], len);
        p.extend(std::iter::repeat_n(0x33, len));
        p
    };
    let start = || {
        let mut out = Vec::new();
        Pump::initiator(
            nn(Role::Initiator),
            [1; 8],
            peer(),
            timers(),
            Duration::ZERO,
            &mut out,
        )
        .unwrap()
    };
    let mut i = start();
    for _ in 0..10 {
        feed(&mut i, MS, &record(40));
    }
    assert_eq!(i.counters.get().early_overflow, 2);
    assert_eq!(i.take_early().len(), 8);
    let mut i = start();
    for _ in 0..7 {
        feed(&mut i, MS, &record(5000));
    }
    assert_eq!(
        i.counters.get().early_overflow,
        1,
        "6 × 5000 fit in 32 KiB, 7 do not"
    );
    assert_eq!(i.take_early().len(), 6);
}

fn xx(role: Role) -> Box<dyn Handshake> {
    let config = NoiseConfig::new("Noise_XX_25519_ChaChaPoly_BLAKE2s")
        .unwrap()
        .local_static(StaticSecret::generate(&mut OsRng));
    Box::new(match role {
        Role::Initiator => NoiseHandshake::initiator(config).unwrap(),
        Role::Responder => NoiseHandshake::responder(config).unwrap(),
    })
}

/// An initiator's peer needs no validation; a responder's is validated by
/// a valid cookie for its address and id, by handshake message 2, or by
/// a valid confirmation (see the pump tests), and not by anything else.
#[test]
fn when_an_address_counts_as_validated() {
    let jar = Arc::new(CookieJar::new());
    let (i, r, first, _) = pair(Arc::clone(&jar));
    assert!(i.budget().is_validated());
    assert!(!r.budget().is_validated());
    // A repeat of the initiation carrying a token for another id: no.
    let Some(Packet::Initiation { message, .. }) = packet::parse(&first) else {
        panic!()
    };
    let (mut r, cid) = (r, [3u8; 8]);
    let other = jar.mint(unix_now(), peer(), &[4; 8]);
    feed(&mut r, 500 * MS, &packet::initiation(&cid, &other, message));
    assert!(!r.budget().is_validated());
    let token = jar.mint(unix_now(), peer(), &cid);
    feed(&mut r, 600 * MS, &packet::initiation(&cid, &token, message));
    assert!(r.budget().is_validated(), "a valid cookie");

    // XX: reading message 2 validates.
    let mut out = Vec::new();
    let mut i = Pump::initiator(
        xx(Role::Initiator),
        cid,
        peer(),
        timers(),
        Duration::ZERO,
        &mut out,
    )
    .unwrap();
    let first = out.pop().unwrap();
    let Some(Packet::Initiation { message, .. }) = packet::parse(&first) else {
        panic!()
    };
    let mut answer = Vec::new();
    let mut r = Pump::responder(
        xx(Role::Responder),
        cid,
        peer(),
        timers(),
        Duration::ZERO,
        (message, first.len(), false),
        Arc::clone(&jar),
        Counters::default(),
        &mut answer,
    )
    .unwrap();
    let message_2 = feed(&mut i, MS, &answer[0]);
    assert!(!r.budget().is_validated());
    feed(&mut r, 2 * MS, &message_2[0]);
    assert!(r.budget().is_validated(), "message 2");
}

/// What does not fit in three times what arrived is not sent and is
/// counted; a repeat from the peer brings the budget that lets it go.
#[test]
fn what_exceeds_the_budget_waits_for_a_repeat() {
    let (_i, mut r, first, answer) = pair(Arc::new(CookieJar::new()));
    let (init_len, answer_len) = (first.len(), answer[0].len());
    assert_eq!((init_len, answer_len), (42, 58));
    let mut out = Vec::new();
    r.on_timer(200 * MS, &mut out).unwrap();
    assert_eq!(out.len(), 1, "116 bytes of 126");
    out.clear();
    r.on_timer(600 * MS, &mut out).unwrap();
    assert!(out.is_empty(), "174 bytes would exceed 126");
    assert_eq!(r.counters.get().over_budget, 1);
    let b = r.budget();
    assert!(b.sent() <= AMPLIFICATION_FACTOR * b.received());
    assert_eq!(feed(&mut r, 700 * MS, &first), answer);
    let b = r.budget();
    assert_eq!((b.received(), b.sent()), (84, 174));
}

/// A responder handshake that answers a 10-byte message 0 with 200 bytes:
/// larger than any akex protocol's, to exercise the cookie path.
struct Verbose {
    read: bool,
}

impl Handshake for Verbose {
    fn protocol(&self) -> &str {
        "verbose-test"
    }
    fn role(&self) -> Role {
        Role::Responder
    }
    fn wants_write(&self) -> bool {
        self.read
    }
    fn write_message(&mut self, _payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(&[0x77; 200]);
        self.read = false;
        Ok(())
    }
    fn read_message(&mut self, _message: &[u8], _payload: &mut Vec<u8>) -> Result<(), Error> {
        self.read = true;
        Ok(())
    }
    fn is_finished(&self) -> bool {
        false
    }
    fn finish(&mut self) -> Result<Established, Error> {
        Err(crate::error::ApiMisuse::HandshakeDead.into())
    }
}

/// When the responder's very answer does not fit in the budget, it sends
/// a cookie instead, and message 1 once the initiation comes back with
/// the token.
#[test]
fn an_answer_too_large_for_the_budget_becomes_a_cookie() {
    let jar = Arc::new(CookieJar::new());
    let cid = [6u8; 8];
    let m0 = [0x10; 10];
    let initiation = packet::initiation(&cid, &[], &m0);
    let mut out = Vec::new();
    let mut r = Pump::responder(
        Box::new(Verbose { read: false }),
        cid,
        peer(),
        timers(),
        Duration::ZERO,
        (&m0, initiation.len(), false),
        Arc::clone(&jar),
        Counters::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!(out.len(), 1);
    let Some(Packet::Cookie { token, .. }) = packet::parse(&out[0]) else {
        panic!("expected a cookie, got {:?}", out[0])
    };
    assert_eq!(out[0].len(), 29);
    assert!(out[0].len() <= 3 * initiation.len());
    let back = packet::initiation(&cid, token, &m0);
    let sent = feed(&mut r, 10 * MS, &back);
    assert_eq!(sent.len(), 1);
    assert!(matches!(
        packet::parse(&sent[0]),
        Some(Packet::Handshake { index: 1, .. })
    ));
    assert!(r.budget().is_validated());
}

/// The initiator sends its initiation again at once with the cookie's
/// token, and the token rides on its timer resends; the handshake
/// message is the same bytes every time.
#[test]
fn a_cookie_token_rides_on_every_later_initiation() {
    let mut out = Vec::new();
    let mut i = Pump::initiator(
        nn(Role::Initiator),
        [8; 8],
        peer(),
        timers(),
        Duration::ZERO,
        &mut out,
    )
    .unwrap();
    let Some(Packet::Initiation { message: m0, .. }) = packet::parse(&out[0]) else {
        panic!()
    };
    let m0 = m0.to_vec();
    let sent = feed(&mut i, MS, &packet::cookie(&[8; 8], &[9; TOKEN_LEN]));
    let mut timer = Vec::new();
    i.on_timer(i.next_timer().unwrap(), &mut timer).unwrap();
    for p in sent.iter().chain(&timer) {
        let Some(Packet::Initiation { token, message, .. }) = packet::parse(p) else {
            panic!()
        };
        assert_eq!((token, message), (&[9; TOKEN_LEN][..], &m0[..]));
    }
    assert_eq!((sent.len(), timer.len()), (1, 1));
}

/// A busy packet after the initiator has read an answer is dropped and
/// counted, not an error.
#[test]
fn a_late_busy_packet_is_dropped() {
    let (mut i, _r, _first, answer) = pair(Arc::new(CookieJar::new()));
    feed(&mut i, MS, &answer[0]);
    let busy = packet::busy(&[3; 8]);
    let mut out = Vec::new();
    i.on_packet(2 * MS, parsed(&busy), busy.len(), &mut out)
        .unwrap();
    assert_eq!(i.counters.get().unexpected, 1);
}

/// The documented numbers (protocols/datagram.md).
#[test]
fn documented_datagram_defaults() {
    assert_eq!((MAX_EARLY_RECORDS, MAX_EARLY_BYTES), (8, 32 * 1024));
    let o = DatagramOptions::default();
    assert_eq!(o.handshake_timeout, Duration::from_secs(10));
    assert_eq!(o.initial_rto, 200 * MS);
    assert_eq!(o.max_rto, Duration::from_secs(2));
    assert_eq!(o.cookies, CookiePolicy::UnderLoad(128));
    assert_eq!(CookiePolicy::default(), CookiePolicy::UnderLoad(128));
    assert_eq!(AMPLIFICATION_FACTOR, 3);
    assert_eq!((TOKEN_LEN, TOKEN_LIFETIME_SECS), (20, 30));
    assert_eq!(packet::PACKET_HEADER_LEN, 9);
    assert_eq!(NN, "Noise_NN_25519_ChaChaPoly_BLAKE2s");
}
