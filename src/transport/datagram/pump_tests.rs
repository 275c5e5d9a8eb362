//! Unit tests of the datagram handshake rules, without sockets.

use super::*;
use crate::handshake::noise::{NoiseConfig, NoiseHandshake};

pub(super) const NN: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
pub(super) const MS: Duration = Duration::from_millis(1);

pub(super) fn timers() -> Timers {
    Timers {
        initial_rto: 200 * MS,
        max_rto: 2000 * MS,
        handshake_timeout: 10_000 * MS,
    }
}

pub(super) fn nn(role: Role) -> Box<dyn Handshake> {
    let config = NoiseConfig::new(NN).unwrap();
    Box::new(match role {
        Role::Initiator => NoiseHandshake::initiator(config).unwrap(),
        Role::Responder => NoiseHandshake::responder(config).unwrap(),
    })
}

pub(super) fn peer() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

/// An initiator's first packet and a responder started on it.
pub(super) fn pair(jar: Arc<CookieJar>) -> (Pump, Pump, Vec<u8>, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    let i = Pump::initiator(
        nn(Role::Initiator),
        [3; 8],
        peer(),
        timers(),
        Duration::ZERO,
        &mut out,
    )
    .unwrap();
    let first = out.pop().unwrap();
    let Some(Packet::Initiation { message, .. }) = packet::parse(&first) else {
        panic!("not an initiation");
    };
    let mut answer = Vec::new();
    let r = Pump::responder(
        nn(Role::Responder),
        [3; 8],
        peer(),
        timers(),
        Duration::ZERO,
        (message, first.len(), false),
        jar,
        Counters::default(),
        &mut answer,
    )
    .unwrap();
    (i, r, first, answer)
}

#[test]
fn repeats_are_answered_within_three_times_and_never_after_confirmation() {
    let (_i, mut r, first, answer) = pair(Arc::new(CookieJar::new()));
    assert_eq!(
        answer.len(),
        1,
        "NN's answer fits in three times the initiation"
    );
    let mut sent = answer[0].len();
    let mut received = first.len();
    // A flood of exact repeats, one per millisecond for 20 s.
    for ms in 1..20_000u32 {
        let now = ms * MS;
        let mut out = Vec::new();
        let p = packet::parse(&first).unwrap();
        r.on_packet(now, p, first.len(), &mut out).unwrap();
        r.on_timer(now, &mut out).unwrap();
        received += first.len();
        sent += out.iter().map(Vec::len).sum::<usize>();
    }
    let resends = r.counters.get().handshake_resends;
    assert!(resends <= u64::from(MAX_HANDSHAKE_RESENDS), "{resends}");
    assert!(sent <= 3 * received);
    // After confirmation nothing is sent again.
    r.confirm();
    let mut out = Vec::new();
    r.on_packet(
        30_000 * MS,
        packet::parse(&first).unwrap(),
        first.len(),
        &mut out,
    )
    .unwrap();
    r.on_timer(30_000 * MS, &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn noise_is_dropped_and_counted_and_the_handshake_still_completes() {
    let (mut i, mut r, first, answer) = pair(Arc::new(CookieJar::new()));
    let mut out = Vec::new();
    // A repeat with a changed byte is not the message we read.
    let mut forged = first.clone();
    *forged.last_mut().unwrap() ^= 1;
    r.on_packet(MS, packet::parse(&forged).unwrap(), forged.len(), &mut out)
        .unwrap();
    // A message out of turn and a cookie the responder never asks for.
    let stray = packet::handshake(&[3; 8], 2, b"garbage");
    r.on_packet(MS, packet::parse(&stray).unwrap(), stray.len(), &mut out)
        .unwrap();
    // The initiator gets a stale message index and then the answer.
    i.on_packet(MS, packet::parse(&stray).unwrap(), stray.len(), &mut out)
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(r.counters.get().unexpected, 2);
    assert_eq!(i.counters.get().unexpected, 1);
    i.on_packet(
        2 * MS,
        packet::parse(&answer[0]).unwrap(),
        answer[0].len(),
        &mut out,
    )
    .unwrap();
    assert!(i.is_finished() && r.is_finished());
    let (mut to_r, mut to_i) = (Vec::new(), Vec::new());
    let a = i.take_established(3 * MS, &mut to_r).unwrap();
    let b = r.take_established(3 * MS, &mut to_i).unwrap();
    assert_eq!(a.handshake_hash(), b.handshake_hash());
    // NN: the initiator read the last message and confirms it; the
    // responder takes the confirmation, and a forged one is refused.
    assert!(to_i.is_empty() && to_r.len() == 1 && !r.is_confirmed());
    let mut forged = to_r[0].clone();
    forged[12] ^= 1;
    r.on_packet(
        4 * MS,
        packet::parse(&forged).unwrap(),
        forged.len(),
        &mut out,
    )
    .unwrap();
    assert!(!r.is_confirmed());
    r.on_packet(
        4 * MS,
        packet::parse(&to_r[0]).unwrap(),
        to_r[0].len(),
        &mut out,
    )
    .unwrap();
    assert!(r.is_confirmed() && r.budget().is_validated());
}

#[test]
fn confirmation_tags_match_the_vectors() {
    let text = include_str!("../../../protocols/vectors/datagram.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let cases = json["confirm"]["cases"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for case in cases {
        let hex = |k: &str| hex::decode(case[k].as_str().unwrap()).unwrap();
        let secret: [u8; 32] = hex("traffic_secret").try_into().unwrap();
        let cid: ConnectionId = hex("connection_id").try_into().unwrap();
        let tag = confirm_tag(&secret, &cid);
        assert_eq!(tag.to_vec(), hex("tag"));
        assert_eq!(packet::confirm(&cid, &tag), hex("packet"));
    }
}

#[test]
fn a_busy_reply_fails_the_initiator_and_a_cookie_is_carried_once() {
    let mut out = Vec::new();
    let mut i = Pump::initiator(
        nn(Role::Initiator),
        [4; 8],
        peer(),
        timers(),
        Duration::ZERO,
        &mut out,
    )
    .unwrap();
    out.clear();
    let cookie = packet::cookie(&[4; 8], &[7; 20]);
    i.on_packet(MS, packet::parse(&cookie).unwrap(), cookie.len(), &mut out)
        .unwrap();
    let Some(Packet::Initiation { token, .. }) = packet::parse(&out[0]) else {
        panic!("expected the initiation again");
    };
    assert_eq!(token, &[7; 20]);
    // A second cookie updates the token but sends nothing by itself.
    out.clear();
    i.on_packet(
        2 * MS,
        packet::parse(&cookie).unwrap(),
        cookie.len(),
        &mut out,
    )
    .unwrap();
    assert!(out.is_empty());
    let busy = packet::busy(&[4; 8]);
    assert!(matches!(
        i.on_packet(3 * MS, packet::parse(&busy).unwrap(), busy.len(), &mut out),
        Err(Error::ServerBusy)
    ));
}

#[test]
fn the_initiator_gives_up_at_the_deadline() {
    let mut out = Vec::new();
    let mut i = Pump::initiator(
        nn(Role::Initiator),
        [5; 8],
        peer(),
        timers(),
        Duration::ZERO,
        &mut out,
    )
    .unwrap();
    let mut sends = 1;
    let last = loop {
        let now = i.next_timer().unwrap();
        out.clear();
        match i.on_timer(now, &mut out) {
            Ok(()) => sends += out.len(),
            Err(e) => {
                assert!(matches!(e, Error::Timeout(_)));
                break now;
            }
        }
    };
    assert_eq!(last, 10_000 * MS);
    assert!(sends <= 1 + MAX_HANDSHAKE_RESENDS as usize, "{sends}");
}
