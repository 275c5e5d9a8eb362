//! The logic behind the fuzz targets, in one place.
//!
//! The targets in `fuzz_targets/` are one-line wrappers around the functions
//! here, and the main crate's `tests/fuzz_corpus.rs` compiles this same file
//! (through `#[path]`) to replay the committed corpus on the stable
//! toolchain. A crash libFuzzer finds therefore replays under `cargo test`
//! once its input is copied into `fuzz/corpus/<target>/`.
//!
//! Input layout, for every target but `frame_decoder` (which takes a raw
//! stream): one selector byte, then frames as on the
//! wire (2-byte big-endian length, then that many bytes). A frame whose
//! length runs past the end of the input takes whatever is left, so any
//! byte string is a valid input.
//!
//! Every key and every "random" ephemeral is fixed, so the seeds written by
//! [`noise_responder_seeds`] and [`session_open_seeds`] stay valid messages
//! from one run to the next.

use std::sync::OnceLock;

pub mod akex_handshake;
pub mod akex_record;
pub mod datagram;
pub mod session_ops;

pub use akex_handshake::{
    akex_initiator, akex_initiator_seeds, akex_responder, akex_responder_seeds,
};
pub use akex_record::{akex_record, akex_record_seeds};
pub use datagram::{datagram_responder, datagram_responder_seeds};
pub use session_ops::{session_ops, session_ops_seeds};

use akex::crypto::Secret;
use akex::handshake::TrafficSecret;
use akex::hazmat::aead::TAG_LEN;
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::hazmat::SharedRng;
use akex::keys::StaticSecret;
use akex::{Established, Handshake, NoiseConfig, NoiseHandshake, Role, Session};

/// The responder protocols; the selector byte picks one (modulo the length).
pub const RESPONDER_PROTOCOLS: [&str; 2] = [
    "Noise_XX_25519_ChaChaPoly_BLAKE2s",
    "Noise_IK_25519_ChaChaPoly_BLAKE2s",
];

/// The protocols of the in-memory sessions; the selector byte picks one.
pub const SESSION_PROTOCOLS: [&str; 2] = [
    "Noise_XX_25519_ChaChaPoly_BLAKE2s",
    "Noise_XX_25519_AESGCM_BLAKE2s",
];

/// How far one input got; the replay test checks that seeds get as far as
/// they were built to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The responder accepted message 1 and wrote message 2.
    pub answered: bool,
    /// The handshake finished and a session was built.
    pub finished: bool,
    /// Transport records that decrypted.
    pub records: usize,
}

/// Splits an input into frames (see the module docs for the layout).
pub struct Frames<'a>(&'a [u8]);

impl<'a> Frames<'a> {
    /// The frames of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Frames(data)
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self.0 {
            [hi, lo, rest @ ..] => {
                let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
                let (frame, tail) = rest.split_at(len);
                self.0 = tail;
                Some(frame)
            }
            // A lone trailing byte cannot hold a length prefix.
            _ => None,
        }
    }
}

/// Appends `message` to `out` as one frame.
pub fn push_frame(out: &mut Vec<u8>, message: &[u8]) {
    let len = u16::try_from(message.len()).expect("a frame holds at most 65535 bytes");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
}

/// The responder's long-term key.
pub fn responder_static() -> StaticSecret {
    StaticSecret::from_private(Secret::new([0x52; 32]))
}

/// The initiator's long-term key.
pub fn initiator_static() -> StaticSecret {
    StaticSecret::from_private(Secret::new([0x49; 32]))
}

/// A fixed ephemeral for `role`. Twice the bytes one ephemeral needs: if a
/// later snow ever drew more, it gets an error from the RNG, not a panic.
fn scripted_rng(role: Role) -> SharedRng {
    let byte = match role {
        Role::Initiator => 0x65,
        Role::Responder => 0x72,
    };
    SharedRng::new(Box::new(ScriptedRng::new(vec![byte; 64])))
}

fn responder(protocol: &str) -> NoiseHandshake {
    let config = NoiseConfig::new(protocol)
        .unwrap()
        .local_static(responder_static())
        .rng(scripted_rng(Role::Responder));
    NoiseHandshake::responder(config).expect("the fixed responder configuration is valid")
}

fn initiator(protocol: &str) -> NoiseHandshake {
    let config = NoiseConfig::new(protocol)
        .unwrap()
        .local_static(initiator_static())
        .remote_static(akex::PublicKey::x25519(*responder_static().public()))
        .rng(scripted_rng(Role::Initiator));
    NoiseHandshake::initiator(config).expect("the fixed initiator configuration is valid")
}

/// After an error the handshake must stay dead, not panic or recover.
fn assert_dead(hs: &mut NoiseHandshake) {
    let mut sink = Vec::new();
    assert!(hs.read_message(&[0u8; 48], &mut sink).is_err());
    assert!(hs.write_message(b"", &mut sink).is_err());
    assert!(!hs.is_finished());
}

/// Opens every remaining frame as a transport record, checking that a
/// failure leaves the nonce alone and a success strips exactly the tag.
fn open_records<'a>(session: &mut Session, frames: impl Iterator<Item = &'a [u8]>) -> usize {
    let mut opened = 0;
    let mut buf = Vec::new();
    for frame in frames {
        buf.clear();
        buf.extend_from_slice(frame);
        let nonce = session.receiving().nonce();
        if session.mode() == akex::RecordMode::Noise {
            match session.open_in_place(&mut buf) {
                Ok(n) => {
                    assert_eq!(n + TAG_LEN, frame.len());
                    assert_eq!(session.receiving().nonce(), nonce + 1);
                    opened += 1;
                }
                Err(_) => assert_eq!(session.receiving().nonce(), nonce),
            }
        } else {
            // akex mode: a type byte inside the AEAD; an error closes it.
            let mut out = Vec::new();
            match session.open(frame, &mut out) {
                Ok(akex::session::Record::Data(n)) => {
                    assert_eq!(n + 1 + TAG_LEN, frame.len());
                    assert_eq!(out.len(), n);
                    opened += 1;
                }
                Ok(_) => {}
                Err(_) => {
                    assert!(out.is_empty());
                    return opened;
                }
            }
        }
    }
    opened
}

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

/// The results of a real handshake, kept so each fuzz input gets a fresh
/// `Session` without paying for the handshake again.
struct SessionKeys {
    protocol: String,
    handshake_hash: Vec<u8>,
    initiator_static: akex::PublicKey,
    responder_static: akex::PublicKey,
    aead: akex::crypto::AeadAlgorithm,
    i2r: Secret<32>,
    r2i: Secret<32>,
}

impl SessionKeys {
    fn establish(protocol: &str) -> Self {
        let mut alice = initiator(protocol);
        let mut bob = responder(protocol);
        pump(&mut alice, &mut bob);
        let alice = alice.finish().expect("in-memory handshake");
        let bob = bob.finish().expect("in-memory handshake");
        SessionKeys {
            protocol: protocol.to_string(),
            handshake_hash: alice.handshake_hash().to_vec(),
            initiator_static: bob.remote_static().expect("XX sends s").clone(),
            responder_static: alice.remote_static().expect("XX sends s").clone(),
            aead: alice.aead(),
            i2r: Secret::new(*alice.sending_secret().expose()),
            r2i: Secret::new(*alice.receiving_secret().expose()),
        }
    }

    fn session(&self, role: Role) -> Session {
        let remote = match role {
            Role::Initiator => &self.responder_static,
            Role::Responder => &self.initiator_static,
        };
        Session::new(Established::new(
            self.protocol.clone(),
            role,
            self.handshake_hash.clone(),
            Some(remote.clone()),
            self.aead,
            TrafficSecret::new(self.i2r.clone()),
            TrafficSecret::new(self.r2i.clone()),
        ))
    }
}

fn session_keys() -> &'static [SessionKeys] {
    static KEYS: OnceLock<Vec<SessionKeys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        SESSION_PROTOCOLS
            .iter()
            .map(|p| SessionKeys::establish(p))
            .collect()
    })
}

/// A fresh pair of sessions (initiator, responder) from the fixed handshake
/// of `SESSION_PROTOCOLS[index]`.
pub fn session_pair(index: usize) -> (Session, Session) {
    let keys = &session_keys()[index];
    (keys.session(Role::Initiator), keys.session(Role::Responder))
}

/// Fuzz target `session_open`: every frame goes to `Session::open_in_place`
/// of a responder session established in memory.
pub fn session_open(data: &[u8]) -> Progress {
    let Some((&selector, rest)) = data.split_first() else {
        return Progress::default();
    };
    let (_, mut session) = session_pair(usize::from(selector) % SESSION_PROTOCOLS.len());
    Progress {
        answered: true,
        finished: true,
        records: open_records(&mut session, Frames::new(rest)),
    }
}

/// Moves handshake messages between two sides until both finish.
fn pump(alice: &mut NoiseHandshake, bob: &mut NoiseHandshake) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut payload = Vec::new();
    while !(alice.is_finished() && bob.is_finished()) {
        let (from, to) = if alice.wants_write() {
            (&mut *alice, &mut *bob)
        } else {
            (&mut *bob, &mut *alice)
        };
        let mut message = Vec::new();
        from.write_message(b"", &mut message)
            .expect("in-memory handshake");
        to.read_message(&message, &mut payload)
            .expect("in-memory handshake");
        messages.push(message);
    }
    messages
}

/// A named seed input and how far it must get.
pub struct Seed {
    /// File name in the corpus directory.
    pub name: &'static str,
    /// The input bytes.
    pub data: Vec<u8>,
    /// The progress the harness must report for it.
    pub expect: Progress,
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

/// Records for `session_open`: valid ones in order, a replay and a forgery.
pub fn session_open_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (selector, protocol) in SESSION_PROTOCOLS.iter().enumerate() {
        let short = if protocol.contains("ChaChaPoly") {
            "chachapoly"
        } else {
            "aesgcm"
        };
        let (mut alice, _) = session_pair(selector);
        let records: Vec<Vec<u8>> = [&b""[..], b"first", &[0xa5; 300]]
            .iter()
            .map(|plain| {
                let mut record = Vec::new();
                alice.seal(plain, &mut record).expect("seal");
                record
            })
            .collect();

        let mut in_order = vec![selector as u8];
        for record in &records {
            push_frame(&mut in_order, record);
        }
        let mut replayed = vec![selector as u8];
        push_frame(&mut replayed, &records[0]);
        push_frame(&mut replayed, &records[0]);
        let mut forged = vec![selector as u8];
        let mut bad = records[1].clone();
        bad[0] ^= 1;
        push_frame(&mut forged, &bad);
        push_frame(&mut forged, &records[0]);

        let done = |records| Progress {
            answered: true,
            finished: true,
            records,
        };
        let name = |kind| match (short, kind) {
            ("chachapoly", 0) => "chachapoly-in-order",
            ("chachapoly", 1) => "chachapoly-replayed",
            ("chachapoly", _) => "chachapoly-forged",
            (_, 0) => "aesgcm-in-order",
            (_, 1) => "aesgcm-replayed",
            _ => "aesgcm-forged",
        };
        seeds.push(Seed {
            name: name(0),
            data: in_order,
            expect: done(3),
        });
        seeds.push(Seed {
            name: name(1),
            data: replayed,
            expect: done(1),
        });
        // The forgery fails and leaves the nonce at 0, so record 0 still opens.
        seeds.push(Seed {
            name: name(2),
            data: forged,
            expect: done(1),
        });
    }
    seeds
}

/// Fuzz target `frame_decoder`: the selector byte picks the decoder's limit
/// (0..=63 bytes for even selectors, the default for odd ones) and the
/// chunk size (1..=16 bytes) in which the rest arrives. Frames are taken
/// after every chunk and the end is checked at the end; no frame may exceed
/// the limit, and an error ends the stream. `records` counts frames.
pub fn frame_decoder(data: &[u8]) -> Progress {
    let mut progress = Progress::default();
    let Some((&selector, rest)) = data.split_first() else {
        return progress;
    };
    let limit = if selector & 1 == 0 {
        usize::from(selector >> 2) % 64
    } else {
        65535
    };
    let mut decoder = akex::hazmat::FrameDecoder::new(limit);
    let chunk = usize::from((selector >> 1) & 0x0f) + 1;
    let mut consumed = 0;
    for piece in rest.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= limit, "frame over the limit");
                    consumed += 2 + frame.len();
                    progress.records += 1;
                }
                Ok(None) => break,
                Err(_) => return progress,
            }
        }
    }
    progress.answered = true;
    if decoder.finish().is_ok() {
        // A clean end means every byte belonged to a whole frame (a stream
        // cut after a length header is `TruncatedFrame`).
        assert_eq!(consumed, rest.len(), "clean end inside a frame");
        progress.finished = true;
    }
    progress
}

pub fn frame_decoder_seeds() -> Vec<Seed> {
    let mut two = Vec::new();
    push_frame(&mut two, b"hello");
    push_frame(&mut two, b"");
    let mut big = Vec::new();
    push_frame(&mut big, &[0x5a; 100]);
    let seed = |name, selector: u8, body: &[u8], expect| {
        let mut data = vec![selector];
        data.extend_from_slice(body);
        Seed { name, data, expect }
    };
    let done = |records| Progress {
        answered: true,
        finished: true,
        records,
    };
    vec![
        // Default limit, chunks of 3.
        seed("two-frames", 0x05, &two, done(2)),
        // Limit 16, chunks of 1: both fit.
        seed("two-frames-small", 0x40, &two, done(2)),
        // Limit 16: the 100-byte frame is too large.
        seed("too-large", 0x40, &big, Progress::default()),
        // Default limit: fits.
        seed("large-default", 0x1f, &big, done(1)),
        // A stream cut inside a frame fails at EOF.
        seed(
            "truncated",
            0x01,
            &big[..50],
            Progress {
                answered: true,
                finished: false,
                records: 0,
            },
        ),
    ]
}

/// After an error a handshake must stay unfinished (and not panic).
pub(crate) fn assert_dead_dyn(hs: &mut dyn Handshake) {
    let mut sink = Vec::new();
    let _ = hs.read_message(&[0u8; 48], &mut sink);
    let _ = hs.write_message(b"", &mut sink);
    assert!(!hs.is_finished(), "a failed handshake must not finish");
}

/// Drives `hs` with `frames` as the peer's messages, answering whenever it
/// wants to write. Fills in `answered` (wrote at least one message after
/// reading one) and `finished`.
pub(crate) fn drive<'a>(
    mut hs: Box<dyn Handshake>,
    mut frames: impl Iterator<Item = &'a [u8]>,
    progress: &mut Progress,
) {
    let (mut payload, mut out) = (Vec::new(), Vec::new());
    let mut read_any = false;
    while !hs.is_finished() {
        if hs.wants_write() {
            out.clear();
            if hs.write_message(b"", &mut out).is_err() {
                assert_dead_dyn(&mut *hs);
                return;
            }
            if read_any {
                progress.answered = true;
            }
            continue;
        }
        let Some(message) = frames.next() else {
            return;
        };
        payload.clear();
        if hs.read_message(message, &mut payload).is_err() {
            assert_dead_dyn(&mut *hs);
            return;
        }
        read_any = true;
    }
    let established = hs.finish().expect("a finished handshake yields its keys");
    progress.finished = true;
    let mut session = Session::new(established);
    progress.records = open_records(&mut session, frames);
}

/// Seed names are `&'static str`; the few built at run time are leaked.
pub(crate) fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

/// Fuzz target `keystore_parsers`: the selector byte (modulo 4) picks a
/// parser and the rest is its input: 0, a key-store index (`store.json`,
/// through `KeyStore::open`); 1, a trust-store file (`TrustStore::open`);
/// 2, an audit log (`AuditLog::verify`); 3, a rotation announcement's
/// payload (`decode_rotation_announcement`, then `verify` on each statement). The file
/// parsers get the bytes in a fresh temporary directory. Errors are fine,
/// panics are not; `finished` says the input parsed.
pub fn keystore_parsers(data: &[u8]) -> Progress {
    use akex::keys::{audit::AuditLog, rotation, store::KeyStore, trust::TrustStore};

    let mut progress = Progress::default();
    let Some((&selector, rest)) = data.split_first() else {
        return progress;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, rest).expect("write the input");
        path
    };
    progress.answered = true;
    progress.finished = match selector % 4 {
        0 => {
            write("store.json");
            KeyStore::open(dir.path()).is_ok()
        }
        1 => TrustStore::open(write("trust.json")).is_ok(),
        2 => AuditLog::new(write("audit.log")).verify().is_ok(),
        _ => match rotation::decode_rotation_announcement(rest) {
            Ok(chain) => {
                for statement in &chain {
                    let _ = statement.verify();
                }
                true
            }
            _ => false,
        },
    };
    progress
}

/// Seeds for `keystore_parsers`: empty and near-empty documents for each
/// parser (they exercise the JSON paths without needing real keys).
pub fn keystore_parsers_seeds() -> Vec<Seed> {
    let seed = |name, selector: u8, body: &[u8]| {
        let mut data = vec![selector];
        data.extend_from_slice(body);
        Seed {
            name,
            data,
            expect: Progress {
                answered: true,
                finished: false,
                records: 0,
            },
        }
    };
    vec![
        seed("store-not-json", 0, b"{\"version\":"),
        seed("trust-not-json", 1, b"[1,2"),
        seed("audit-garbage", 2, b"not a record\n"),
        seed("rotation-not-a-list", 3, b"{}"),
    ]
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
