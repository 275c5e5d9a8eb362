//! The ratchet's messages and the long-term keys that authenticate them:
//! constants, parsing (exact lengths), the transcript's public fields,
//! signature contexts, key confirmation and the low-order check.

use std::time::Duration;

use super::super::schedule::RatchetKeys;
use crate::crypto::ed25519;
use crate::crypto::kem;
use crate::crypto::secret::ct_eq;
use crate::crypto::x25519::X25519Private;
use crate::crypto::Secret;
use crate::error::{Error, PeerMisbehaved};
use crate::handshake::Role;
use crate::keys::{PublicKey, Signer};
use std::sync::Arc;

pub(crate) const STEP_INIT: u8 = 0x01;
pub(crate) const STEP_RESPONSE: u8 = 0x02;
pub(crate) const STEP_FINISH: u8 = 0x03;

pub(super) const SIG_LEN: usize = ed25519::SIGNATURE_LEN;
pub(super) const CONFIRM_LEN: usize = 32;

/// First retransmission delay of a datagram ratchet init (doubles each
/// time, up to 8 s).
pub const RATCHET_RTO: Duration = Duration::from_millis(250);
/// Longest retransmission delay of a datagram ratchet init.
pub const MAX_RTO: Duration = Duration::from_secs(8);

/// The long-term keys a handshake authenticated, which every ratchet step
/// mixes in so that session secrets alone cannot take a step over.
#[derive(Clone, Default)]
pub(crate) enum RatchetAuth {
    /// No long-term key (RSA key transport, sessions built from raw
    /// secrets): post-compromise security against passive attackers only.
    #[default]
    None,
    /// X25519 static keys (hybrid and PQ-authenticated handshakes). Either
    /// side may lack one (hybrid NK's initiator has none).
    StaticDh {
        local: Option<Arc<X25519Private>>,
        remote: Option<[u8; 32]>,
    },
    /// Signing identities (SIGMA, Ed25519 or ECDSA P-256, in memory or in
    /// a token): each ratchet init and response is signed by its sender.
    Signature {
        local: Arc<dyn Signer>,
        remote: PublicKey,
    },
}

impl std::fmt::Debug for RatchetAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RatchetAuth::None => "None",
            RatchetAuth::StaticDh { .. } => "StaticDh(<redacted>)",
            RatchetAuth::Signature { .. } => "Signature(<redacted>)",
        })
    }
}

impl RatchetAuth {
    pub(super) fn sig_len(&self) -> usize {
        match self {
            RatchetAuth::Signature { .. } => SIG_LEN,
            _ => 0,
        }
    }
}

/// A parsed ratchet record body.
pub(super) struct Message<'a> {
    pub(super) generation: u32,
    pub(super) step: u8,
    pub(super) public: &'a [u8],
    pub(super) kem: &'a [u8],
    pub(super) sig: &'a [u8],
    pub(super) confirm: &'a [u8],
}

/// Parses a ratchet record body (after the type byte). The lengths are
/// exact: the KEM field is empty or the ML-KEM-768 size for the step, the
/// signature is there exactly in signed sessions.
pub(super) fn parse(body: &[u8], sig_len: usize) -> Result<Message<'_>, Error> {
    let bad = || Error::from(PeerMisbehaved::MalformedRecord);
    if body.len() < 5 {
        return Err(bad());
    }
    let generation = u32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
    let step = body[4];
    let rest = &body[5..];
    let empty: &[u8] = &[];
    match step {
        STEP_FINISH if rest.len() == CONFIRM_LEN => Ok(Message {
            generation,
            step,
            public: empty,
            kem: empty,
            sig: empty,
            confirm: rest,
        }),
        STEP_INIT | STEP_RESPONSE if rest.len() >= 34 => {
            let (public, rest) = rest.split_at(32);
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let rest = &rest[2..];
            let (expected, tail) = if step == STEP_INIT {
                (kem::ENCAPSULATION_KEY_LEN, sig_len)
            } else {
                (kem::CIPHERTEXT_LEN, sig_len + CONFIRM_LEN)
            };
            if (len != 0 && len != expected) || rest.len() != len + tail {
                return Err(bad());
            }
            let (kem, rest) = rest.split_at(len);
            let (sig, confirm) = rest.split_at(sig_len);
            Ok(Message {
                generation,
                step,
                public,
                kem,
                sig,
                confirm,
            })
        }
        _ => Err(bad()),
    }
}

/// `public (32) ‖ len (u16 BE) ‖ kem`: the part of an init or response
/// that the transcript covers.
pub(super) fn public_fields(public: &[u8], kem: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(34 + kem.len());
    out.extend_from_slice(public);
    out.extend_from_slice(&(kem.len() as u16).to_be_bytes());
    out.extend_from_slice(kem);
    out
}

pub(super) fn header(generation: u32, step: u8, capacity: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(5 + capacity);
    body.extend_from_slice(&generation.to_be_bytes());
    body.push(step);
    body
}

pub(super) fn signed(label: &[u8], digest: &[u8; 32]) -> Vec<u8> {
    [label, &digest[..]].concat()
}

pub(super) fn check_confirm(expected: &Secret<32>, got: &[u8]) -> Result<(), Error> {
    if ct_eq(expected.expose(), got) {
        Ok(())
    } else {
        Err(PeerMisbehaved::BadKeyConfirmation.into())
    }
}

/// `(root, our sending, our receiving, confirm_finish)` for our role.
pub(super) fn split(
    role: Role,
    keys: RatchetKeys,
) -> (Secret<32>, Secret<32>, Secret<32>, Secret<32>) {
    let RatchetKeys {
        root,
        initiator_to_responder,
        responder_to_initiator,
        confirm_finish,
        ..
    } = keys;
    match role {
        Role::Initiator => (
            root,
            initiator_to_responder,
            responder_to_initiator,
            confirm_finish,
        ),
        Role::Responder => (
            root,
            responder_to_initiator,
            initiator_to_responder,
            confirm_finish,
        ),
    }
}

/// Rejects a ratchet public key that is a low-order point, without any
/// secret: the X25519 output of a low-order point is all zeros for every
/// (clamped) scalar, so a fixed public scalar detects it.
pub(super) fn check_public(public: &[u8]) -> Result<(), Error> {
    use std::sync::OnceLock;
    static PROBE: OnceLock<X25519Private> = OnceLock::new();
    PROBE
        .get_or_init(|| X25519Private::new(&Secret::new([0x5a; 32])))
        .agree(public)
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_exact() {
        assert!(parse(&[], 0).is_err());
        let mut finish = vec![0, 0, 0, 1, STEP_FINISH];
        finish.extend_from_slice(&[7; 32]);
        assert_eq!(parse(&finish, 0).unwrap().confirm, &[7; 32]);
        assert!(parse(&finish[..36], 0).is_err());
        let mut init = vec![0, 0, 0, 1, STEP_INIT];
        init.extend_from_slice(&public_fields(&[9; 32], &[]));
        let m = parse(&init, 0).unwrap();
        assert_eq!((m.generation, m.public), (1, &[9u8; 32][..]));
        assert!(parse(&init, SIG_LEN).is_err());
        let mut bad = init.clone();
        bad[38] = 1; // a KEM length with no KEM bytes
        assert!(parse(&bad, 0).is_err());
        bad[5] = 0x04;
        assert!(parse(&bad, 0).is_err());
    }
}
