//! Property tests of Noise handshakes, driven in memory through
//! `Box<dyn Handshake>`: payloads round-trip and both sides agree, and any
//! flipped bit fails the handshake. (Transport properties are in
//! tests/properties_transport.rs, negative tests in
//! tests/properties_negative.rs.)

mod properties_support;

use akex::error::{Error, PeerMisbehaved};
use akex::{Role, Session};
use properties_support::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

proptest! {
    #![proptest_config(config(192))]

    /// (a) Payloads round-trip and both sides agree on the transcript and
    /// on each other's static keys.
    #[test]
    fn handshake_round_trips(
        proto in proto(),
        keys in keys(),
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 3),
    ) {
        let (init, resp) = pair(&proto.name, &keys);
        let (mut init, mut resp, received) = match pump(init, resp, &payloads, |_, _| {}) {
            Pumped::Done { init, resp, received } => (init, resp, received),
            Pumped::Failed { index, role, error, .. } => {
                return Err(TestCaseError::fail(format!(
                    "{}: message {index} failed on the {role}: {error}", proto.name
                )));
            }
        };
        prop_assert_eq!(received.len(), proto.message_count());
        for (got, sent) in received.iter().zip(&payloads) {
            prop_assert_eq!(got, sent);
        }
        prop_assert_eq!(init.protocol(), proto.name.as_str());
        prop_assert_eq!(resp.role(), Role::Responder);
        let init = init.finish().expect("initiator finishes");
        let resp = resp.finish().expect("responder finishes");
        prop_assert_eq!(init.handshake_hash().len(), 32);
        prop_assert_eq!(init.handshake_hash(), resp.handshake_hash());
        let resp_public = *keys.resp().public();
        let init_public = *keys.init().public();
        let expected_at_init = proto.initiator_learns_static().then_some(&resp_public[..]);
        let expected_at_resp = proto.responder_learns_static().then_some(&init_public[..]);
        prop_assert_eq!(init.remote_static().map(|k| k.as_bytes()), expected_at_init);
        prop_assert_eq!(resp.remote_static().map(|k| k.as_bytes()), expected_at_resp);

        let mut init = Session::new(init);
        let mut resp = Session::new(resp);
        prop_assert_eq!(&init.info().handshake_hash, &resp.info().handshake_hash);
        let (mut wire, mut plain) = (Vec::new(), Vec::new());
        init.seal(b"ping", &mut wire).unwrap();
        resp.open(&wire, &mut plain).unwrap();
        prop_assert_eq!(&plain[..], b"ping");
        wire.clear();
        plain.clear();
        resp.seal(b"pong", &mut wire).unwrap();
        init.open(&wire, &mut plain).unwrap();
        prop_assert_eq!(&plain[..], b"pong");
    }

    /// (c) Flipping any bit of any handshake message fails the handshake
    /// with a MAC or public-key error, and the failed side is dead.
    #[test]
    fn any_bit_flip_fails_the_handshake(
        proto in proto(),
        keys in keys(),
        message in 0usize..3,
        bit in any::<usize>(),
    ) {
        let target = message % proto.message_count();
        let (init, resp) = pair(&proto.name, &keys);
        let mut flipped = None;
        let outcome = pump(init, resp, &[], |index, msg| {
            if index == target {
                let b = bit % (msg.len() * 8);
                msg[b / 8] ^= 1 << (b % 8);
                flipped = Some(b);
            }
        });
        prop_assert!(flipped.is_some());
        match outcome {
            Pumped::Done { .. } => {
                return Err(TestCaseError::fail(format!(
                    "{}: bit {flipped:?} of message {target} flipped, handshake still finished",
                    proto.name
                )));
            }
            Pumped::Failed { index, role, op, error, failed, leftover } => {
                let detected_at = if target == 0 && !proto.first_message_authenticated() {
                    1
                } else {
                    target
                };
                prop_assert_eq!(index, detected_at);
                prop_assert_eq!(op, Op::Read);
                let reader = if detected_at % 2 == 0 { Role::Responder } else { Role::Initiator };
                prop_assert_eq!(role, reader);
                prop_assert!(
                    matches!(
                        error,
                        Error::PeerMisbehaved(
                            PeerMisbehaved::DecryptFailed | PeerMisbehaved::InvalidPublicKey
                        )
                    ),
                    "unexpected error {:?}", error
                );
                prop_assert!(leftover.is_empty(), "a failed read left a payload behind");
                check_dead(failed)?;
            }
        }
    }
}
