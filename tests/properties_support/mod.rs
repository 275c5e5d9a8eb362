//! Shared by the property and negative tests of Noise handshakes and
//! sessions (tests/properties.rs, tests/properties_transport.rs,
//! tests/properties_negative.rs): random protocols and keys, both sides'
//! configurations with deterministic ephemerals, moving handshake messages
//! between them (with tampering), and the check that a failed handshake is
//! dead.

#![allow(dead_code)]

use akex::crypto::Secret;
use akex::error::{ApiMisuse, Error};
use akex::handshake::noise::NoiseProtocol;
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::hazmat::SharedRng;
use akex::keys::StaticSecret;
use akex::{Handshake, NoiseConfig, NoiseHandshake, Role};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

const PATTERNS: [&str; 6] = ["NN", "XX", "IK", "KK", "NK", "XXpsk3"];
const CIPHERS: [&str; 2] = ["ChaChaPoly", "AESGCM"];
const HASHES: [&str; 2] = ["BLAKE2s", "SHA256"];
pub const MAX_MESSAGE_LEN: usize = 65535;

pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures print the minimal input; do not write regression files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A protocol: its pattern and full name.
#[derive(Debug, Clone)]
pub struct Proto {
    pub pattern: &'static str,
    pub name: String,
}

impl Proto {
    pub fn new(pattern: &'static str, cipher: &str, hash: &str) -> Self {
        Proto {
            pattern,
            name: format!("Noise_{pattern}_25519_{cipher}_{hash}"),
        }
    }

    /// Handshake messages in the pattern.
    pub fn message_count(&self) -> usize {
        match self.pattern {
            "XX" | "XXpsk3" => 3,
            _ => 2,
        }
    }

    /// Is the first message's payload encrypted (so tampering with it is
    /// caught by the responder at once)? In NN and XX it is plaintext and
    /// only the initiator notices, when message 2's MAC fails.
    pub fn first_message_authenticated(&self) -> bool {
        !matches!(self.pattern, "NN" | "XX")
    }

    /// Does the initiator learn the responder's static key?
    pub fn initiator_learns_static(&self) -> bool {
        self.pattern != "NN"
    }

    /// Does the responder learn the initiator's static key?
    pub fn responder_learns_static(&self) -> bool {
        matches!(self.pattern, "XX" | "IK" | "KK" | "XXpsk3")
    }
}

pub fn proto() -> impl Strategy<Value = Proto> {
    (
        select(PATTERNS.to_vec()),
        select(CIPHERS.to_vec()),
        select(HASHES.to_vec()),
    )
        .prop_map(|(p, c, h)| Proto::new(p, c, h))
}

/// Static keys, a PSK and both ephemeral keys: everything random in a handshake.
#[derive(Debug, Clone)]
pub struct Keys {
    pub init_static: [u8; 32],
    pub resp_static: [u8; 32],
    pub psk: [u8; 32],
    pub init_ephemeral: [u8; 32],
    pub resp_ephemeral: [u8; 32],
}

impl Keys {
    pub fn init(&self) -> StaticSecret {
        StaticSecret::from_private(Secret::new(self.init_static))
    }
    pub fn resp(&self) -> StaticSecret {
        StaticSecret::from_private(Secret::new(self.resp_static))
    }
}

pub fn keys() -> impl Strategy<Value = Keys> {
    any::<[[u8; 32]; 5]>().prop_map(|k| Keys {
        init_static: k[0],
        resp_static: k[1],
        psk: k[2],
        init_ephemeral: k[3],
        resp_ephemeral: k[4],
    })
}

pub fn fixed_keys() -> Keys {
    Keys {
        init_static: [1; 32],
        resp_static: [2; 32],
        psk: [3; 32],
        init_ephemeral: [4; 32],
        resp_ephemeral: [5; 32],
    }
}

/// The configuration `role` needs for `name`, with deterministic ephemerals.
pub fn noise_config(name: &str, keys: &Keys, role: Role) -> NoiseConfig {
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

pub fn pair(name: &str, keys: &Keys) -> (Box<dyn Handshake>, Box<dyn Handshake>) {
    let init = NoiseHandshake::initiator(noise_config(name, keys, Role::Initiator))
        .expect("initiator config is valid");
    let resp = NoiseHandshake::responder(noise_config(name, keys, Role::Responder))
        .expect("responder config is valid");
    (Box::new(init), Box::new(resp))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write,
    Read,
}

pub enum Pumped {
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
pub fn pump(
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

pub fn is_dead(err: &Result<(), Error>) -> bool {
    matches!(err, Err(Error::ApiMisuse(ApiMisuse::HandshakeDead)))
}

/// After an error every call on the handshake reports `HandshakeDead`.
pub fn check_dead(mut hs: Box<dyn Handshake>) -> Result<(), TestCaseError> {
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
