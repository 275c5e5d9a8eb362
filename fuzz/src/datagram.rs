//! Fuzz target `datagram_responder`: the datagram-mode handshake of a UDP
//! server's responder (`akex::hazmat::datagram::DatagramResponder`, the
//! server's rules without its socket), fed datagrams from the peer's
//! address and from another one, and clock steps.
//!
//! Input: the selector byte picks the protocol (`RESPONDER_PROTOCOLS`,
//! XX or IK); frame 1 is the first datagram, from the peer's address (a
//! well-formed initiation starts the handshake; anything else ends the
//! input). Each later frame is an operation, its first byte (modulo 4)
//! saying which: 0, the rest is a datagram from the peer's address; 1, the
//! same from another address; 2, the clock moves on by the next byte ×
//! 50 ms and the timers run; 3, the clock moves to the next timer and the
//! timers run.
//!
//! Checked after every step: nothing panics; until the peer's address is
//! validated, every byte sent to it is counted by the responder's budget,
//! the budget never counts more than came from the peer's address, and
//! what was sent is at most three times what the budget counted as
//! received (anti-amplification, protocols/datagram.md; the budget counts
//! only datagrams with this handshake's id, so this is tighter than three
//! times everything the address sent); after an error the input ends; the
//! keys come out exactly once the handshake has finished.

use std::net::SocketAddr;
use std::time::Duration;

use akex::hazmat::datagram::DatagramResponder;
use akex::transport::datagram::AMPLIFICATION_FACTOR;
use akex::Handshake;

use super::noise_handshake::RESPONDER_PROTOCOLS;
use super::parties::{initiator, pump, responder};
use super::{push_frame, Frames, Progress, Seed};

const PEER: &str = "192.0.2.1:4433";
const OTHER: &str = "192.0.2.2:4433";
/// The initiator's connection id in the seeds.
const CID: [u8; 8] = [7; 8];

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a fixed address")
}

/// Bytes in and out, for the amplification check.
#[derive(Default)]
struct Wire {
    from_peer: u64,
    to_peer: u64,
}

impl Wire {
    fn sent(&mut self, out: &mut Vec<Vec<u8>>, progress: &mut Progress) {
        for datagram in out.drain(..) {
            self.to_peer += datagram.len() as u64;
            progress.answered = true;
        }
    }

    fn check(&self, responder: &DatagramResponder) {
        if responder.is_address_validated() {
            return;
        }
        let budget = responder.budget();
        assert_eq!(
            self.to_peer,
            budget.sent(),
            "bytes sent to an unvalidated address bypassed the budget"
        );
        assert!(
            budget.received() <= self.from_peer,
            "the budget counted {} bytes received; the address sent {}",
            budget.received(),
            self.from_peer
        );
        assert!(
            budget.sent() <= AMPLIFICATION_FACTOR * budget.received(),
            "sent {} bytes to an unvalidated address, counted {} from it",
            budget.sent(),
            budget.received()
        );
    }
}

/// The fuzz target (see the module docs).
pub fn datagram_responder(data: &[u8]) -> Progress {
    let mut progress = Progress::default();
    let Some((&selector, rest)) = data.split_first() else {
        return progress;
    };
    let protocol = RESPONDER_PROTOCOLS[usize::from(selector) % RESPONDER_PROTOCOLS.len()];
    let mut frames = Frames::new(rest);
    let Some(first) = frames.next() else {
        return progress;
    };
    let (peer, other) = (addr(PEER), addr(OTHER));
    let mut wire = Wire {
        from_peer: first.len() as u64,
        to_peer: 0,
    };
    let mut out = Vec::new();
    let mut now = Duration::ZERO;
    let handshake: Box<dyn Handshake> = Box::new(responder(protocol));
    let Ok(mut hs) = DatagramResponder::accept(handshake, peer, first, now, &mut out) else {
        return progress;
    };
    wire.sent(&mut out, &mut progress);
    wire.check(&hs);
    let mut keys_taken = false;
    for frame in frames {
        let Some((&op, body)) = frame.split_first() else {
            continue;
        };
        let step = match op % 4 {
            0 => {
                wire.from_peer += body.len() as u64;
                hs.on_datagram(now, peer, body, &mut out)
            }
            1 => hs.on_datagram(now, other, body, &mut out),
            2 => {
                let ms = u64::from(body.first().copied().unwrap_or(0)) * 50;
                now += Duration::from_millis(ms);
                hs.on_timer(now, &mut out)
            }
            _ => {
                now = hs.next_timer().unwrap_or(now).max(now);
                hs.on_timer(now, &mut out)
            }
        };
        wire.sent(&mut out, &mut progress);
        wire.check(&hs);
        if step.is_err() {
            return progress;
        }
        if hs.is_finished() && !keys_taken {
            hs.take_established(now, &mut out)
                .expect("a finished handshake yields its keys once");
            keys_taken = true;
            progress.finished = true;
            assert!(
                hs.take_established(now, &mut out).is_err(),
                "the keys come out only once"
            );
            wire.sent(&mut out, &mut progress);
            wire.check(&hs);
        }
    }
    // A two-message pattern finishes on the initiation alone.
    if hs.is_finished() && !keys_taken {
        hs.take_established(now, &mut out)
            .expect("a finished handshake yields its keys once");
        progress.finished = true;
    }
    progress
}

fn initiation(message: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x01];
    packet.extend_from_slice(&CID);
    packet.push(0); // no cookie token
    packet.extend_from_slice(message);
    packet
}

fn handshake_packet(index: u8, message: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x02];
    packet.extend_from_slice(&CID);
    packet.push(index);
    packet.extend_from_slice(message);
    packet
}

fn op(code: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = vec![code];
    frame.extend_from_slice(body);
    frame
}

/// Seeds: each protocol's initiation; XX's whole handshake; XX's third
/// message from a spoofed address; XX's initiation left to its timers.
pub fn datagram_responder_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (selector, protocol) in RESPONDER_PROTOCOLS.iter().enumerate() {
        let xx = protocol.contains("_XX_");
        let messages = pump(&mut initiator(protocol), &mut responder(protocol));
        let mut first = vec![selector as u8];
        push_frame(&mut first, &initiation(&messages[0]));
        seeds.push(Seed {
            name: if xx { "xx-initiation" } else { "ik-initiation" },
            data: first.clone(),
            expect: Progress {
                answered: true,
                finished: !xx,
                records: 0,
            },
        });
        if !xx {
            continue;
        }
        let third = handshake_packet(2, &messages[2]);
        let mut full = first.clone();
        push_frame(&mut full, &op(0, &third));
        seeds.push(Seed {
            name: "xx-full",
            data: full,
            expect: Progress {
                answered: true,
                finished: true,
                records: 0,
            },
        });
        let mut spoofed = first.clone();
        push_frame(&mut spoofed, &op(1, &third));
        seeds.push(Seed {
            name: "xx-third-from-elsewhere",
            data: spoofed,
            expect: Progress {
                answered: true,
                finished: false,
                records: 0,
            },
        });
        let mut timers = first;
        for _ in 0..4 {
            push_frame(&mut timers, &[3]);
        }
        push_frame(&mut timers, &[2, 255]);
        seeds.push(Seed {
            name: "xx-timers",
            data: timers,
            expect: Progress {
                answered: true,
                finished: false,
                records: 0,
            },
        });
    }
    seeds
}
