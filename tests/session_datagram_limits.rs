//! Datagram mode (sans-IO) over time and under attack: every forgery,
//! under any epoch, counts toward the session's limit; the previous epoch's
//! keys expire after the grace period; and sessions never stall over
//! simulated days of idle and bursty traffic with loss.

mod session_datagram_support;

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::error::PeerMisbehaved;
use akex::session::datagram::{DatagramSession, Epoch};
use akex::session::{Record, RekeyPolicy, SessionConfig};
use akex::{Error, Role};
use session_datagram_support::established;

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
