//! Property tests of Noise transport messages through `Session`: traffic
//! round-trips through the copying and in-place APIs, and replayed,
//! reordered, oversized, truncated or tampered messages fail without
//! advancing the receiver.

mod properties_support;

use akex::error::{ApiMisuse, Error, PeerMisbehaved};
use akex::session::MAX_PLAINTEXT_LEN;
use akex::Session;
use properties_support::*;
use proptest::prelude::*;
use proptest::sample::Index;

const TAG_LEN: usize = 16;
/// Cap on the plaintext bytes one transport case moves.
const MAX_CASE_BYTES: usize = 1 << 20;

fn handshake(name: &str, keys: &Keys) -> (Session, Session) {
    let (init, resp) = pair(name, keys);
    match pump(init, resp, &[], |_, _| {}) {
        Pumped::Done {
            mut init, mut resp, ..
        } => (
            Session::new(init.finish().expect("initiator finishes")),
            Session::new(resp.finish().expect("responder finishes")),
        ),
        Pumped::Failed {
            index, role, error, ..
        } => panic!("handshake failed at message {index} on the {role}: {error}"),
    }
}

/// Deterministic filler for large plaintexts (cheap to build in debug builds).
fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn transport_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..=300,
        3 => 0usize..=MAX_PLAINTEXT_LEN,
        1 => Just(MAX_PLAINTEXT_LEN),
        1 => Just(0usize),
    ]
}

#[test]
fn plaintext_limit_is_the_noise_limit() {
    assert_eq!(MAX_PLAINTEXT_LEN, 65519);
    assert_eq!(MAX_PLAINTEXT_LEN + TAG_LEN, MAX_MESSAGE_LEN);
}

proptest! {
    #![proptest_config(config(32))]

    /// (b) Arbitrary transport traffic in both directions round-trips through
    /// both the copying and the in-place APIs.
    #[test]
    fn transport_round_trips(
        proto in proto(),
        keys in keys(),
        ops in prop::collection::vec(
            (any::<bool>(), transport_size(), any::<bool>(), any::<u64>()),
            1..24,
        ),
    ) {
        let (mut init, mut resp) = handshake(&proto.name, &keys);
        let mut total = 0;
        for (step, (from_initiator, size, in_place, seed)) in ops.into_iter().enumerate() {
            total += size;
            if total > MAX_CASE_BYTES {
                break;
            }
            let (sender, receiver) = if from_initiator {
                (&mut init, &mut resp)
            } else {
                (&mut resp, &mut init)
            };
            let (sent_before, received_before) =
                (sender.sending().nonce(), receiver.receiving().nonce());
            let plaintext = filler(size, seed);
            let opened = if in_place {
                let mut buf = plaintext.clone();
                sender.seal_in_place(&mut buf).unwrap();
                prop_assert_eq!(buf.len(), size + TAG_LEN);
                let n = receiver.open_in_place(&mut buf).unwrap();
                buf.truncate(n);
                buf
            } else {
                let mut wire = vec![0xAA];
                sender.seal(&plaintext, &mut wire).unwrap();
                prop_assert_eq!(wire.len(), 1 + size + TAG_LEN, "seal must append");
                let mut out = vec![0xBB];
                receiver.open(&wire[1..], &mut out).unwrap();
                prop_assert_eq!(out[0], 0xBB, "open must append");
                out.remove(0);
                out
            };
            prop_assert!(opened == plaintext, "step {}: {} bytes did not round-trip", step, size);
            prop_assert_eq!(sender.sending().nonce(), sent_before + 1);
            prop_assert_eq!(receiver.receiving().nonce(), received_before + 1);
        }
    }

    /// (d) A replayed or reordered transport message fails with
    /// `DecryptFailed`, does not advance the receiver, and the right message
    /// still opens afterwards.
    #[test]
    fn replay_and_reorder_fail(
        proto in proto(),
        keys in keys(),
        count in 2usize..7,
        replay in any::<bool>(),
        in_place in any::<bool>(),
        from_initiator in any::<bool>(),
        delivered_pick in any::<Index>(),
        attack_pick in any::<Index>(),
    ) {
        let (mut init, mut resp) = handshake(&proto.name, &keys);
        let (sender, receiver) = if from_initiator {
            (&mut init, &mut resp)
        } else {
            (&mut resp, &mut init)
        };
        let plaintexts: Vec<Vec<u8>> =
            (0..count).map(|i| format!("message {i}").into_bytes()).collect();
        let wire: Vec<Vec<u8>> = plaintexts
            .iter()
            .map(|p| {
                let mut w = Vec::new();
                sender.seal(p, &mut w).unwrap();
                w
            })
            .collect();
        // Deliver `delivered` messages in order, then try message `attack`:
        // an old one (replay) or a later one (reorder).
        let (delivered, attack) = if replay {
            let d = 1 + delivered_pick.index(count - 1);
            (d, attack_pick.index(d))
        } else {
            let d = delivered_pick.index(count - 1);
            (d, d + 1 + attack_pick.index(count - 1 - d))
        };
        let open = |receiver: &mut Session, message: &[u8]| -> Result<Vec<u8>, Error> {
            if in_place {
                let mut buf = message.to_vec();
                let n = receiver.open_in_place(&mut buf)?;
                buf.truncate(n);
                Ok(buf)
            } else {
                let mut out = Vec::new();
                receiver.open(message, &mut out)?;
                Ok(out)
            }
        };
        for i in 0..delivered {
            prop_assert_eq!(open(receiver, &wire[i]).unwrap(), plaintexts[i].clone());
        }
        let result = open(receiver, &wire[attack]);
        prop_assert!(
            matches!(result, Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))),
            "{} message {} after {} delivered: {:?}",
            if replay { "replayed" } else { "reordered" }, attack, delivered, result
        );
        prop_assert_eq!(receiver.receiving().nonce(), delivered as u64);
        for i in delivered..count {
            prop_assert_eq!(open(receiver, &wire[i]).unwrap(), plaintexts[i].clone());
        }
    }

    /// (d) Oversized messages are rejected before any crypto, without
    /// touching the nonces.
    #[test]
    fn oversized_messages_are_rejected(
        proto in proto(),
        open_len in (MAX_MESSAGE_LEN + 1)..(MAX_MESSAGE_LEN + 5000),
        seal_len in (MAX_PLAINTEXT_LEN + 1)..(MAX_PLAINTEXT_LEN + 5000),
    ) {
        let (mut init, mut resp) = handshake(&proto.name, &fixed_keys());
        let mut out = Vec::new();
        let r = resp.open(&vec![0u8; open_len], &mut out);
        prop_assert!(matches!(r, Err(Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength))), "{:?}", r);
        let r = resp.open_in_place(&mut vec![0u8; open_len]);
        prop_assert!(matches!(r, Err(Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength))), "{:?}", r);
        prop_assert!(out.is_empty());
        let r = init.seal(&vec![0u8; seal_len], &mut out);
        prop_assert!(matches!(r, Err(Error::ApiMisuse(ApiMisuse::MessageTooLarge))), "{:?}", r);
        prop_assert!(out.is_empty(), "a refused seal appended bytes");
        let mut buf = vec![0u8; seal_len];
        let r = init.seal_in_place(&mut buf);
        prop_assert!(matches!(r, Err(Error::ApiMisuse(ApiMisuse::MessageTooLarge))), "{:?}", r);
        prop_assert_eq!(buf.len(), seal_len);
        prop_assert_eq!(init.sending().nonce(), 0);
        prop_assert_eq!(resp.receiving().nonce(), 0);
        // The session still works after the refusals.
        init.seal(b"still fine", &mut out).unwrap();
        let mut plain = Vec::new();
        resp.open(&out, &mut plain).unwrap();
        prop_assert_eq!(&plain[..], b"still fine");
    }
}

#[test]
fn largest_message_round_trips_and_garbage_of_max_length_fails_mac() {
    let (mut init, mut resp) = handshake("Noise_XX_25519_AESGCM_SHA256", &fixed_keys());
    let plaintext = filler(MAX_PLAINTEXT_LEN, 9);
    let mut wire = Vec::new();
    init.seal(&plaintext, &mut wire).unwrap();
    assert_eq!(wire.len(), MAX_MESSAGE_LEN);
    let mut out = Vec::new();
    let r = resp.open(&vec![0u8; MAX_MESSAGE_LEN], &mut out);
    assert!(
        matches!(r, Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))),
        "{r:?}"
    );
    resp.open(&wire, &mut out).unwrap();
    assert_eq!(out, plaintext);
    // Shorter than a tag: cannot even hold the MAC.
    let r = resp.open(&[0u8; TAG_LEN - 1], &mut out);
    assert!(
        matches!(
            r,
            Err(Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength))
        ),
        "{r:?}"
    );
}

proptest! {
    #![proptest_config(config(32))]

    /// A transport message with any bit flipped fails with `DecryptFailed`,
    /// leaves no (near-)plaintext in the in-place buffer, and does not
    /// advance the receiver.
    #[test]
    fn tampered_transport_message_fails(
        proto in proto(),
        len in 0usize..200,
        bit in any::<usize>(),
        in_place in any::<bool>(),
    ) {
        let (mut init, mut resp) = handshake(&proto.name, &fixed_keys());
        let plaintext = filler(len, len as u64 + 7);
        let mut wire = Vec::new();
        init.seal(&plaintext, &mut wire).unwrap();
        let mut tampered = wire.clone();
        let b = bit % (tampered.len() * 8);
        tampered[b / 8] ^= 1 << (b % 8);
        let r = if in_place {
            let r = resp.open_in_place(&mut tampered).map(|_| ());
            if len > 0 {
                let mut flipped_plain = plaintext.clone();
                if b / 8 < len {
                    flipped_plain[b / 8] ^= 1 << (b % 8);
                }
                prop_assert!(
                    tampered[..len] != plaintext[..] && tampered[..len] != flipped_plain[..],
                    "unauthenticated plaintext left in the buffer"
                );
            }
            r
        } else {
            let mut out = Vec::new();
            let r = resp.open(&tampered, &mut out).map(|_| ());
            prop_assert!(out.is_empty());
            r
        };
        prop_assert!(
            matches!(r, Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))),
            "{:?}", r
        );
        prop_assert_eq!(resp.receiving().nonce(), 0);
        let mut out = Vec::new();
        resp.open(&wire, &mut out).unwrap();
        prop_assert_eq!(out, plaintext);
    }
}
