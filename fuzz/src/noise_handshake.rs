//! Fuzz targets `noise_responder` and `noise_initiator`: Noise responders
//! (XX, IK) and initiators (XX, IK, NK) with fixed keys and ephemerals, fed
//! the peer's messages and then transport records.

use akex::{Handshake, Session};

use super::checks::{assert_dead, drive, open_records};
use super::parties::{initiator, pump, responder};
use super::{leak, push_frame, Frames, Progress, Seed};

/// The responder protocols; the selector byte picks one (modulo the length).
pub const RESPONDER_PROTOCOLS: [&str; 2] = [
    "Noise_XX_25519_ChaChaPoly_BLAKE2s",
    "Noise_IK_25519_ChaChaPoly_BLAKE2s",
];

/// Fuzz target `noise_responder`: an XX or IK responder with fixed keys
/// reads frame 1 as message 1; if that works it answers, reads frame 2 as
/// message 3 (XX only), and opens the remaining frames as transport records.
pub fn noise_responder(data: &[u8]) -> Progress {
    let mut progress = Progress::default();
    let Some((&selector, rest)) = data.split_first() else {
        return progress;
    };
    let protocol = RESPONDER_PROTOCOLS[usize::from(selector) % RESPONDER_PROTOCOLS.len()];
    let mut hs = responder(protocol);
    let mut frames = Frames::new(rest);
    let (mut payload, mut out) = (Vec::new(), Vec::new());

    let Some(first) = frames.next() else {
        return progress;
    };
    if hs.read_message(first, &mut payload).is_err() {
        assert_dead(&mut hs);
        return progress;
    }
    assert!(hs.wants_write(), "the responder answers message 1");
    // Writing can fail on a peer's low-order ephemeral (the ee DH).
    if hs.write_message(b"", &mut out).is_err() {
        assert_dead(&mut hs);
        return progress;
    }
    progress.answered = true;

    while !hs.is_finished() {
        let Some(message) = frames.next() else {
            return progress;
        };
        payload.clear();
        if hs.read_message(message, &mut payload).is_err() {
            assert_dead(&mut hs);
            return progress;
        }
    }
    let established = hs.finish().expect("a finished handshake yields its keys");
    assert_eq!(established.remote_static().map(|k| k.len()), Some(32));
    let mut session = Session::new(established);
    progress.finished = true;
    progress.records = open_records(&mut session, frames);
    progress
}

/// Valid (and a few nearly valid) inputs for `noise_responder`, built by
/// running the initiator side against the fixed responder.
pub fn noise_responder_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (selector, protocol) in RESPONDER_PROTOCOLS.iter().enumerate() {
        let short = if protocol.contains("_XX_") {
            "xx"
        } else {
            "ik"
        };
        let selector = selector as u8;
        let mut alice = initiator(protocol);
        let mut bob = responder(protocol);
        let messages = pump(&mut alice, &mut bob);
        let mut alice = Session::new(Box::new(alice).finish().expect("in-memory handshake"));
        let mut record = Vec::new();
        alice.seal(b"hello responder", &mut record).expect("seal");

        // Message 1 alone: the responder answers, and for IK (two messages)
        // that already finishes the handshake.
        let mut first = vec![selector];
        push_frame(&mut first, &messages[0]);
        let answered = Progress {
            answered: true,
            finished: short == "ik",
            records: 0,
        };
        seeds.push(Seed {
            name: if short == "xx" { "xx-msg1" } else { "ik-msg1" },
            data: first.clone(),
            expect: answered,
        });

        // The whole handshake and one record.
        let mut full = vec![selector];
        for message in messages.iter().step_by(2) {
            push_frame(&mut full, message);
        }
        push_frame(&mut full, &record);
        seeds.push(Seed {
            name: if short == "xx" { "xx-full" } else { "ik-full" },
            data: full,
            expect: Progress {
                answered: true,
                finished: true,
                records: 1,
            },
        });

        // Message 1 with its last byte flipped: for IK that breaks the tag.
        let mut flipped = first;
        *flipped.last_mut().expect("non-empty") ^= 0x80;
        seeds.push(Seed {
            name: if short == "xx" {
                "xx-msg1-flipped"
            } else {
                "ik-msg1-flipped"
            },
            data: flipped,
            expect: if short == "xx" {
                answered
            } else {
                Progress::default()
            },
        });
    }
    seeds
}

/// The Noise protocols of `noise_initiator`; the selector byte picks one.
pub const INITIATOR_PROTOCOLS: [&str; 3] = [
    "Noise_XX_25519_ChaChaPoly_BLAKE2s",
    "Noise_IK_25519_ChaChaPoly_BLAKE2s",
    "Noise_NK_25519_ChaChaPoly_BLAKE2s",
];

fn noise_short(protocol: &str) -> &'static str {
    if protocol.contains("_XX_") {
        "xx"
    } else if protocol.contains("_IK_") {
        "ik"
    } else {
        "nk"
    }
}

/// Fuzz target `noise_initiator`: the initiator of
/// `INITIATOR_PROTOCOLS[selector % 3]` (fixed keys and ephemeral) writes
/// its valid message 1; the frames are the responder's replies (the
/// initiator answers when it is its turn), then transport records for the
/// new `Session`.
pub fn noise_initiator(data: &[u8]) -> Progress {
    let mut progress = Progress::default();
    let Some((&selector, rest)) = data.split_first() else {
        return progress;
    };
    let protocol = INITIATOR_PROTOCOLS[usize::from(selector) % INITIATOR_PROTOCOLS.len()];
    let mut hs = initiator(protocol);
    let mut first = Vec::new();
    hs.write_message(b"", &mut first)
        .expect("the fixed first message");
    drive(Box::new(hs), Frames::new(rest), &mut progress);
    progress
}

/// Seeds for `noise_initiator`: each protocol's valid responder replies
/// and one transport record, and the replies with the last byte flipped.
pub fn noise_initiator_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (selector, protocol) in INITIATOR_PROTOCOLS.iter().enumerate() {
        let short = noise_short(protocol);
        let mut alice = initiator(protocol);
        let mut bob = responder(protocol);
        let messages = pump(&mut alice, &mut bob);
        let mut bob = Session::new(Box::new(bob).finish().expect("in-memory handshake"));
        let mut record = Vec::new();
        bob.seal(b"hello initiator", &mut record).expect("seal");

        let mut replies = vec![selector as u8];
        for message in messages.iter().skip(1).step_by(2) {
            push_frame(&mut replies, message);
        }
        let mut full = replies.clone();
        push_frame(&mut full, &record);
        let xx = short == "xx";
        seeds.push(Seed {
            name: leak(format!("{short}-replies-record")),
            data: full,
            expect: Progress {
                answered: xx,
                finished: true,
                records: 1,
            },
        });
        let mut flipped = replies;
        *flipped.last_mut().expect("non-empty") ^= 0x80;
        seeds.push(Seed {
            name: leak(format!("{short}-reply-flipped")),
            data: flipped,
            expect: Progress::default(),
        });
    }
    seeds
}
