//! Property tests and negative tests for Noise handshakes and sessions,
//! driven in memory through `Box<dyn Handshake>` and `Session`.

use akex::crypto::Secret;
use akex::error::{ApiMisuse, ConfigError, Error, PeerMisbehaved, TrustFailure};
use akex::handshake::noise::NoiseProtocol;
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::hazmat::SharedRng;
use akex::keys::StaticSecret;
use akex::session::MAX_PLAINTEXT_LEN;
use akex::{Handshake, NoiseConfig, NoiseHandshake, Role, Session};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;

const PATTERNS: [&str; 6] = ["NN", "XX", "IK", "KK", "NK", "XXpsk3"];
const CIPHERS: [&str; 2] = ["ChaChaPoly", "AESGCM"];
const HASHES: [&str; 2] = ["BLAKE2s", "SHA256"];
const MAX_MESSAGE_LEN: usize = 65535;
const TAG_LEN: usize = 16;
/// Cap on the plaintext bytes one transport case moves.
const MAX_CASE_BYTES: usize = 1 << 20;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures print the minimal input; do not write regression files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A protocol: its pattern and full name.
#[derive(Debug, Clone)]
struct Proto {
    pattern: &'static str,
    name: String,
}

impl Proto {
    fn new(pattern: &'static str, cipher: &str, hash: &str) -> Self {
        Proto {
            pattern,
            name: format!("Noise_{pattern}_25519_{cipher}_{hash}"),
        }
    }

    /// Handshake messages in the pattern.
    fn message_count(&self) -> usize {
        match self.pattern {
            "XX" | "XXpsk3" => 3,
            _ => 2,
        }
    }

    /// Is the first message's payload encrypted (so tampering with it is
    /// caught by the responder at once)? In NN and XX it is plaintext and
    /// only the initiator notices, when message 2's MAC fails.
    fn first_message_authenticated(&self) -> bool {
        !matches!(self.pattern, "NN" | "XX")
    }

    /// Does the initiator learn the responder's static key?
    fn initiator_learns_static(&self) -> bool {
        self.pattern != "NN"
    }

    /// Does the responder learn the initiator's static key?
    fn responder_learns_static(&self) -> bool {
        matches!(self.pattern, "XX" | "IK" | "KK" | "XXpsk3")
    }
}

fn proto() -> impl Strategy<Value = Proto> {
    (
        select(PATTERNS.to_vec()),
        select(CIPHERS.to_vec()),
        select(HASHES.to_vec()),
    )
        .prop_map(|(p, c, h)| Proto::new(p, c, h))
}

/// Static keys, a PSK and both ephemeral keys: everything random in a handshake.
#[derive(Debug, Clone)]
struct Keys {
    init_static: [u8; 32],
    resp_static: [u8; 32],
    psk: [u8; 32],
    init_ephemeral: [u8; 32],
    resp_ephemeral: [u8; 32],
}

impl Keys {
    fn init(&self) -> StaticSecret {
        StaticSecret::from_private(Secret::new(self.init_static))
    }
    fn resp(&self) -> StaticSecret {
        StaticSecret::from_private(Secret::new(self.resp_static))
    }
}

fn keys() -> impl Strategy<Value = Keys> {
    any::<[[u8; 32]; 5]>().prop_map(|k| Keys {
        init_static: k[0],
        resp_static: k[1],
        psk: k[2],
        init_ephemeral: k[3],
        resp_ephemeral: k[4],
    })
}

fn fixed_keys() -> Keys {
    Keys {
        init_static: [1; 32],
        resp_static: [2; 32],
        psk: [3; 32],
        init_ephemeral: [4; 32],
        resp_ephemeral: [5; 32],
    }
}

/// The configuration `role` needs for `name`, with deterministic ephemerals.
fn noise_config(name: &str, keys: &Keys, role: Role) -> NoiseConfig {
    let protocol = NoiseProtocol::parse(name).expect("test protocols are supported");
    let (me, peer, ephemeral) = match role {
        Role::Initiator => (keys.init(), keys.resp(), keys.init_ephemeral),
        Role::Responder => (keys.resp(), keys.init(), keys.resp_ephemeral),
    };
    let mut config = NoiseConfig::new(name)
        .unwrap()
        .prologue(&b"akex properties"[..])
        .rng(SharedRng::new(Box::new(ScriptedRng::new(
            ephemeral.to_vec(),
        ))));
    if protocol.needs_local_static(role) {
        config = config.local_static(me);
    }
    if protocol.needs_remote_static(role) {
        config = config.remote_static(akex::PublicKey::x25519(*peer.public()));
    }
    for _ in protocol.psk_slots() {
        config = config.psk(Secret::new(keys.psk));
    }
    config
}

fn pair(name: &str, keys: &Keys) -> (Box<dyn Handshake>, Box<dyn Handshake>) {
    let init = NoiseHandshake::initiator(noise_config(name, keys, Role::Initiator))
        .expect("initiator config is valid");
    let resp = NoiseHandshake::responder(noise_config(name, keys, Role::Responder))
        .expect("responder config is valid");
    (Box::new(init), Box::new(resp))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write,
    Read,
}

enum Pumped {
    Done {
        init: Box<dyn Handshake>,
        resp: Box<dyn Handshake>,
        received: Vec<Vec<u8>>,
    },
    Failed {
        index: usize,
        role: Role,
        op: Op,
        error: Error,
        failed: Box<dyn Handshake>,
        /// What the failing read left in its payload buffer.
        leftover: Vec<u8>,
    },
}

/// Moves messages until both sides finish or one fails; `tamper` may
/// change message `i` on the wire.
fn pump(
    mut init: Box<dyn Handshake>,
    mut resp: Box<dyn Handshake>,
    payloads: &[Vec<u8>],
    mut tamper: impl FnMut(usize, &mut Vec<u8>),
) -> Pumped {
    let mut received = Vec::new();
    let mut index = 0;
    while !(init.is_finished() && resp.is_finished()) {
        assert!(index < 4, "handshake did not finish after {index} messages");
        let init_writes = init.wants_write();
        assert_ne!(
            init_writes,
            resp.wants_write(),
            "exactly one side must want to write"
        );
        let expected_writer = if index % 2 == 0 {
            Role::Initiator
        } else {
            Role::Responder
        };
        let (writer, reader) = if init_writes {
            (&mut init, &mut resp)
        } else {
            (&mut resp, &mut init)
        };
        assert_eq!(writer.role(), expected_writer, "message {index}");
        let payload = payloads.get(index).map(Vec::as_slice).unwrap_or(&[]);
        let mut message = Vec::new();
        if let Err(error) = writer.write_message(payload, &mut message) {
            let role = writer.role();
            let failed = if role == Role::Initiator { init } else { resp };
            return Pumped::Failed {
                index,
                role,
                op: Op::Write,
                error,
                failed,
                leftover: message,
            };
        }
        assert!(message.len() <= MAX_MESSAGE_LEN);
        tamper(index, &mut message);
        let mut got = Vec::new();
        if let Err(error) = reader.read_message(&message, &mut got) {
            let role = reader.role();
            let failed = if role == Role::Initiator { init } else { resp };
            return Pumped::Failed {
                index,
                role,
                op: Op::Read,
                error,
                failed,
                leftover: got,
            };
        }
        received.push(got);
        index += 1;
    }
    Pumped::Done {
        init,
        resp,
        received,
    }
}

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

fn is_dead(err: &Result<(), Error>) -> bool {
    matches!(err, Err(Error::ApiMisuse(ApiMisuse::HandshakeDead)))
}

/// After an error every call on the handshake reports `HandshakeDead`.
fn check_dead(mut hs: Box<dyn Handshake>) -> Result<(), TestCaseError> {
    prop_assert!(!hs.is_finished());
    prop_assert!(!hs.wants_write());
    let mut out = Vec::new();
    let write = hs.write_message(b"again", &mut out);
    prop_assert!(is_dead(&write), "write after failure: {:?}", write);
    prop_assert!(out.is_empty());
    let read = hs.read_message(&[0u8; 96], &mut out);
    prop_assert!(is_dead(&read), "read after failure: {:?}", read);
    prop_assert!(out.is_empty());
    let finish = hs.finish().map(|_| ());
    prop_assert!(is_dead(&finish), "finish after failure: {:?}", finish);
    Ok(())
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

// ---------------------------------------------------------------------------
// Negative tests.

fn expect_config_error(result: Result<NoiseHandshake, Error>) -> ConfigError {
    match result {
        Err(Error::Config(e)) => e,
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(hs) => panic!("expected a configuration error, got a handshake {hs:?}"),
    }
}

#[test]
fn ik_with_wrong_remote_key_fails_at_the_responder() {
    let name = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
    let keys = fixed_keys();
    let wrong = StaticSecret::from_private(Secret::new([0x66; 32]));
    let mut init: Box<dyn Handshake> = Box::new(
        NoiseHandshake::initiator(
            NoiseConfig::new(name)
                .unwrap()
                .local_static(keys.init())
                .remote_static(akex::PublicKey::x25519(*wrong.public())),
        )
        .unwrap(),
    );
    let resp =
        Box::new(NoiseHandshake::responder(noise_config(name, &keys, Role::Responder)).unwrap());
    let mut msg = Vec::new();
    init.write_message(b"hello", &mut msg).unwrap();
    let mut resp: Box<dyn Handshake> = resp;
    let mut payload = Vec::new();
    let r = resp.read_message(&msg, &mut payload);
    assert!(
        matches!(r, Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))),
        "{r:?}"
    );
    assert!(payload.is_empty());
    check_dead(resp).unwrap();
}

#[test]
fn xx_with_pinned_wrong_key_is_not_trusted() {
    let name = "Noise_XX_25519_ChaChaPoly_SHA256";
    let keys = fixed_keys();
    let wrong = StaticSecret::from_private(Secret::new([0x77; 32]));
    let mut init: Box<dyn Handshake> = Box::new(
        NoiseHandshake::initiator(
            noise_config(name, &keys, Role::Initiator)
                .remote_static(akex::PublicKey::x25519(*wrong.public())),
        )
        .unwrap(),
    );
    let mut resp: Box<dyn Handshake> =
        Box::new(NoiseHandshake::responder(noise_config(name, &keys, Role::Responder)).unwrap());
    let (mut m1, mut m2, mut payload) = (Vec::new(), Vec::new(), Vec::new());
    init.write_message(b"", &mut m1).unwrap();
    resp.read_message(&m1, &mut payload).unwrap();
    resp.write_message(b"secret for the right peer only", &mut m2)
        .unwrap();
    let r = init.read_message(&m2, &mut payload);
    assert!(
        matches!(
            r,
            Err(Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch))
        ),
        "{r:?}"
    );
    assert!(
        payload.is_empty(),
        "a payload from an untrusted peer was handed out: {} bytes",
        payload.len()
    );
    check_dead(init).unwrap();
}

#[test]
fn xx_with_pinned_right_key_succeeds() {
    let name = "Noise_XX_25519_AESGCM_BLAKE2s";
    let keys = fixed_keys();
    let init = Box::new(
        NoiseHandshake::initiator(
            noise_config(name, &keys, Role::Initiator)
                .remote_static(akex::PublicKey::x25519(*keys.resp().public())),
        )
        .unwrap(),
    );
    let resp =
        Box::new(NoiseHandshake::responder(noise_config(name, &keys, Role::Responder)).unwrap());
    match pump(init, resp, &[], |_, _| {}) {
        Pumped::Done { mut init, .. } => {
            let est = init.finish().unwrap();
            assert_eq!(
                est.remote_static().map(|k| k.as_bytes()),
                Some(&keys.resp().public()[..])
            );
        }
        Pumped::Failed { error, .. } => panic!("pinned handshake failed: {error}"),
    }
}

#[test]
fn missing_local_key_is_a_config_error() {
    let e = expect_config_error(NoiseHandshake::initiator(
        NoiseConfig::new("Noise_XX_25519_ChaChaPoly_BLAKE2s").unwrap(),
    ));
    assert_eq!(e, ConfigError::MissingLocalKey);
    let e = expect_config_error(NoiseHandshake::responder(
        NoiseConfig::new("Noise_NK_25519_ChaChaPoly_BLAKE2s").unwrap(),
    ));
    assert_eq!(e, ConfigError::MissingLocalKey);
}

#[test]
fn missing_remote_key_is_a_config_error() {
    let keys = fixed_keys();
    let e = expect_config_error(NoiseHandshake::initiator(
        NoiseConfig::new("Noise_IK_25519_ChaChaPoly_BLAKE2s")
            .unwrap()
            .local_static(keys.init()),
    ));
    assert_eq!(e, ConfigError::MissingRemoteKey);
}

#[test]
fn wrong_psk_count_is_a_config_error() {
    let keys = fixed_keys();
    let name = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
    let e = expect_config_error(NoiseHandshake::initiator(
        NoiseConfig::new(name).unwrap().local_static(keys.init()),
    ));
    assert_eq!(
        e,
        ConfigError::PskCount {
            needed: 1,
            given: 0
        }
    );
    let e = expect_config_error(NoiseHandshake::responder(
        NoiseConfig::new(name)
            .unwrap()
            .local_static(keys.resp())
            .psk(Secret::new([1; 32]))
            .psk(Secret::new([2; 32])),
    ));
    assert_eq!(
        e,
        ConfigError::PskCount {
            needed: 1,
            given: 2
        }
    );
}

#[test]
fn mismatched_psk_fails_the_handshake() {
    let name = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
    let keys = fixed_keys();
    let mut other = keys.clone();
    other.psk = [0x99; 32];
    let init =
        Box::new(NoiseHandshake::initiator(noise_config(name, &keys, Role::Initiator)).unwrap());
    let resp =
        Box::new(NoiseHandshake::responder(noise_config(name, &other, Role::Responder)).unwrap());
    match pump(init, resp, &[], |_, _| {}) {
        Pumped::Done { .. } => panic!("handshake with different PSKs finished"),
        Pumped::Failed {
            index, role, error, ..
        } => {
            // psk3 is mixed into message 3 (index 2), read by the responder.
            assert_eq!((index, role), (2, Role::Responder));
            assert!(
                matches!(error, Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)),
                "{error:?}"
            );
        }
    }
}

#[test]
fn unknown_protocols_are_unsupported() {
    for name in [
        "Noise_QQ_25519_ChaChaPoly_BLAKE2s",
        "Noise_XX_448_ChaChaPoly_BLAKE2s",
        "Noise_XX_25519_Rot13_BLAKE2s",
        "Noise_XX_25519_ChaChaPoly_MD5",
        "not a protocol",
        "",
    ] {
        // The name is checked when the configuration is built.
        match NoiseConfig::new(name) {
            Err(Error::Config(ConfigError::UnsupportedProtocol { name: got, .. })) => {
                assert_eq!(got, name)
            }
            other => panic!("{name:?}: expected UnsupportedProtocol, got {other:?}"),
        }
        assert!(matches!(
            NoiseProtocol::parse(name),
            Err(Error::Config(ConfigError::UnsupportedProtocol { .. }))
        ));
    }
}

#[test]
fn writing_out_of_turn_is_api_misuse() {
    let name = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
    let (mut init, mut resp) = pair(name, &fixed_keys());
    assert!(init.wants_write());
    assert!(!resp.wants_write());
    let mut out = Vec::new();
    let r = resp.write_message(b"", &mut out);
    assert!(
        matches!(r, Err(Error::ApiMisuse(ApiMisuse::WrongTurn))),
        "{r:?}"
    );
    assert!(out.is_empty());
    // "After any error the handshake is dead", the caller's errors included.
    let r = resp.write_message(b"", &mut out);
    assert!(is_dead(&r), "{r:?}");

    // Writing twice in a row is out of turn as well.
    init.write_message(b"", &mut out).unwrap();
    assert!(!init.wants_write());
    let mut second = Vec::new();
    let r = init.write_message(b"", &mut second);
    assert!(
        matches!(r, Err(Error::ApiMisuse(ApiMisuse::WrongTurn))),
        "{r:?}"
    );
    assert!(second.is_empty());
}

#[test]
fn reading_out_of_turn_is_unexpected() {
    let (mut init, _resp) = pair("Noise_XX_25519_ChaChaPoly_BLAKE2s", &fixed_keys());
    let mut payload = Vec::new();
    let r = init.read_message(&[0u8; 48], &mut payload);
    assert!(
        matches!(
            r,
            Err(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage))
        ),
        "{r:?}"
    );
    check_dead(init).unwrap();
}

#[test]
fn finishing_early_is_api_misuse() {
    let name = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
    let (mut init, _resp) = pair(name, &fixed_keys());
    let r = init.finish().map(|_| ());
    assert!(
        matches!(r, Err(Error::ApiMisuse(ApiMisuse::HandshakeNotFinished))),
        "{r:?}"
    );

    // Part-way through: the responder has read message 1 of 3.
    let (mut init, mut resp) = pair(name, &fixed_keys());
    let (mut m1, mut payload) = (Vec::new(), Vec::new());
    init.write_message(b"", &mut m1).unwrap();
    resp.read_message(&m1, &mut payload).unwrap();
    assert!(!resp.is_finished());
    let r = resp.finish().map(|_| ());
    assert!(
        matches!(r, Err(Error::ApiMisuse(ApiMisuse::HandshakeNotFinished))),
        "{r:?}"
    );
}

#[test]
fn truncated_handshake_message_fails() {
    let name = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
    let (mut init, mut resp) = pair(name, &fixed_keys());
    let (mut m1, mut payload) = (Vec::new(), Vec::new());
    init.write_message(b"payload", &mut m1).unwrap();
    let r = resp.read_message(&m1[..20], &mut payload);
    assert!(
        matches!(
            r,
            Err(Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength))
        ),
        "{r:?}"
    );
    check_dead(resp).unwrap();
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
