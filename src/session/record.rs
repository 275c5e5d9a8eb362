//! akex-mode records: a type byte inside the AEAD, then the body.
//!
//! | type | name        | body |
//! |------|-------------|------|
//! | 0x01 | data        | application bytes |
//! | 0x02 | key update  | empty: the sender's next record uses the next epoch's key |
//! | 0x03 | ratchet     | step (1 byte), then per step: see below |
//! | 0x04 | close       | empty: authenticated end of the stream |
//!
//! Ratchet steps (see `protocols/session.md`):
//! `0x01 init`: X25519 public key (32) || u16 BE length || ML-KEM-768
//! encapsulation key (0 or 1184 bytes). `0x02 response`: X25519 public key
//! (32) || u16 BE length || ML-KEM-768 ciphertext (0 or 1088 bytes).
//! `0x03 finish`: no body.

use crate::crypto::kem::{self, MlKem768KeyPair};
use crate::crypto::x25519::X25519Private;
use crate::crypto::Secret;
use crate::error::{Error, PeerMisbehaved};
use crate::handshake::Role;

use super::schedule::{self, RatchetKeys};

/// The type byte at the start of every akex-mode record's plaintext.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordType {
    /// Application data.
    Data = 0x01,
    /// Move the sender's direction to the next epoch.
    KeyUpdate = 0x02,
    /// A DH ratchet step.
    Ratchet = 0x03,
    /// Authenticated end of the stream.
    Close = 0x04,
}

impl RecordType {
    /// Parses a type byte; an unknown type is a fatal peer error.
    pub fn from_byte(b: u8) -> Result<Self, Error> {
        Ok(match b {
            0x01 => RecordType::Data,
            0x02 => RecordType::KeyUpdate,
            0x03 => RecordType::Ratchet,
            0x04 => RecordType::Close,
            other => return Err(PeerMisbehaved::UnknownRecordType(other).into()),
        })
    }
}

/// What an opened akex-mode record was.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Application data of this many bytes (appended to the output, or at
    /// `1..1 + len` of the in-place buffer).
    Data(usize),
    /// The peer moved its sending direction to the next epoch.
    KeyUpdate,
    /// A DH ratchet step was processed (a reply may now be pending: call
    /// `poll_control`).
    Ratchet,
    /// The peer closed the session cleanly.
    Close,
}

pub(crate) const STEP_INIT: u8 = 0x01;
pub(crate) const STEP_RESPONSE: u8 = 0x02;
pub(crate) const STEP_FINISH: u8 = 0x03;

/// Our side of a DH ratchet in progress.
pub(crate) enum RatchetState {
    Idle,
    /// We sent an init and wait for the response.
    Initiated {
        private: X25519Private,
        kem: Option<Box<MlKem768KeyPair>>,
    },
    /// The peer's init arrived (its key already checked); our response is
    /// built and sent by `poll_control`.
    Received {
        public: [u8; 32],
        kem: Vec<u8>,
    },
    /// We sent our response and switched our sending key; the receiving
    /// key switches when the peer's finish arrives.
    Responded {
        recv: Secret<32>,
    },
    /// We got the response and switched our receiving key; our sending key
    /// switches after the finish is sent.
    Finishing {
        send: Secret<32>,
    },
}

impl std::fmt::Debug for RatchetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RatchetState::Idle => "Idle",
            RatchetState::Initiated { .. } => "Initiated",
            RatchetState::Received { .. } => "Received",
            RatchetState::Responded { .. } => "Responded",
            RatchetState::Finishing { .. } => "Finishing",
        })
    }
}

/// A parsed ratchet init or response.
pub(crate) struct RatchetMessage<'a> {
    pub step: u8,
    pub public: &'a [u8],
    pub kem: &'a [u8],
}

/// Parses a ratchet body (after the type byte).
pub(crate) fn parse_ratchet(body: &[u8]) -> Result<RatchetMessage<'_>, Error> {
    let bad = || Error::from(PeerMisbehaved::MalformedRecord);
    let (&step, rest) = body.split_first().ok_or_else(bad)?;
    match step {
        STEP_FINISH if rest.is_empty() => Ok(RatchetMessage {
            step,
            public: &[],
            kem: &[],
        }),
        STEP_INIT | STEP_RESPONSE if rest.len() >= 34 => {
            let (public, rest) = rest.split_at(32);
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let kem = &rest[2..];
            let expected = if step == STEP_INIT {
                kem::ENCAPSULATION_KEY_LEN
            } else {
                kem::CIPHERTEXT_LEN
            };
            if kem.len() != len || (len != 0 && len != expected) {
                return Err(bad());
            }
            Ok(RatchetMessage { step, public, kem })
        }
        _ => Err(bad()),
    }
}

/// Builds a ratchet init or response body (after the type byte).
pub(crate) fn ratchet_body(step: u8, public: &[u8; 32], kem: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(35 + kem.len());
    body.push(step);
    body.extend_from_slice(public);
    body.extend_from_slice(&(kem.len() as u16).to_be_bytes());
    body.extend_from_slice(kem);
    body
}

/// Starts a ratchet: a fresh X25519 key (and ML-KEM-768 key pair when
/// `hybrid`); returns the init body and our state.
pub(crate) fn start(
    rng: &mut dyn crate::crypto::RandomSource,
    hybrid: bool,
) -> (Vec<u8>, RatchetState) {
    let private = X25519Private::new(&Secret::random(rng));
    let kem = hybrid.then(|| Box::new(MlKem768KeyPair::generate(rng)));
    let ek: &[u8] = match &kem {
        Some(k) => k.encapsulation_key(),
        None => &[],
    };
    let body = ratchet_body(STEP_INIT, private.public(), ek);
    (body, RatchetState::Initiated { private, kem })
}

/// Answers a peer's init: the response body and the new keys.
pub(crate) fn respond(
    rng: &mut dyn crate::crypto::RandomSource,
    root: &Secret<32>,
    init: &RatchetMessage<'_>,
    hybrid: bool,
) -> Result<(Vec<u8>, RatchetKeys), Error> {
    if hybrid && init.kem.is_empty() {
        // A hybrid session must not be downgraded to a classical ratchet.
        return Err(PeerMisbehaved::MalformedRecord.into());
    }
    let private = X25519Private::new(&Secret::random(rng));
    let dh = private.agree(init.public)?;
    let (ct, kem_secret) = if init.kem.is_empty() {
        (Vec::new(), None)
    } else {
        let (ct, ss) = kem::encapsulate_random(init.kem, rng)?;
        (ct.to_vec(), Some(ss))
    };
    let keys = schedule::ratchet(root, &dh, kem_secret.as_ref());
    Ok((ratchet_body(STEP_RESPONSE, private.public(), &ct), keys))
}

/// Completes our ratchet with the peer's response.
pub(crate) fn complete(
    root: &Secret<32>,
    private: &X25519Private,
    kem: Option<&MlKem768KeyPair>,
    response: &RatchetMessage<'_>,
) -> Result<RatchetKeys, Error> {
    let dh = private.agree(response.public)?;
    let kem_secret = match (kem, response.kem.is_empty()) {
        (None, true) => None,
        (Some(pair), false) => Some(pair.decapsulate(response.kem)?),
        _ => return Err(PeerMisbehaved::MalformedRecord.into()),
    };
    Ok(schedule::ratchet(root, &dh, kem_secret.as_ref()))
}

/// The traffic secrets of a ratchet step as (our sending, our receiving).
pub(crate) fn directional(role: Role, keys: RatchetKeys) -> (Secret<32>, Secret<32>, Secret<32>) {
    let RatchetKeys {
        root,
        initiator_to_responder,
        responder_to_initiator,
    } = keys;
    match role {
        Role::Initiator => (root, initiator_to_responder, responder_to_initiator),
        Role::Responder => (root, responder_to_initiator, initiator_to_responder),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_and_unknown_fails() {
        for t in [
            RecordType::Data,
            RecordType::KeyUpdate,
            RecordType::Ratchet,
            RecordType::Close,
        ] {
            assert_eq!(RecordType::from_byte(t as u8).unwrap(), t);
        }
        assert!(matches!(
            RecordType::from_byte(0x7f),
            Err(Error::PeerMisbehaved(PeerMisbehaved::UnknownRecordType(
                0x7f
            )))
        ));
        assert!(parse_ratchet(&[]).is_err());
        assert!(parse_ratchet(&[STEP_FINISH, 0]).is_err());
        assert!(parse_ratchet(&[STEP_INIT; 33]).is_err());
        let body = ratchet_body(STEP_INIT, &[9u8; 32], &[]);
        let m = parse_ratchet(&body).unwrap();
        assert_eq!(m.public, &[9u8; 32]);
        let mut bad = body.clone();
        bad[33] = 1;
        assert!(parse_ratchet(&bad).is_err());
    }
}
