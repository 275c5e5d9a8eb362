//! The session layer: traffic keys after the handshake, for every protocol.
//!
//! A [`Session`] runs in one of two [`RecordMode`]s:
//!
//! * **Noise mode** ([`Session::new`]): exactly the pair of Noise
//!   CipherStates (section 5.1 of the Noise spec), so it interoperates with
//!   any Noise implementation. An optional [`RekeyPolicy`] applies Noise
//!   `REKEY()` after every N messages (or B bytes) in each direction; the
//!   peer must be configured with the same schedule.
//! * **akex mode** ([`Session::with_config`]): each record's plaintext
//!   starts with a [`RecordType`] byte inside the AEAD: data, key update,
//!   DH ratchet, close, control. Each traffic secret derives its epoch's
//!   AEAD key and, under another label, the next epoch's secret; the DH
//!   ratchet mixes a fresh X25519 (and optionally ML-KEM-768) secret and
//!   the handshake's long-term keys into the root key, for
//!   post-compromise security. See `protocols/session.md` and
//!   `docs/session-keys.md`.
//!
//! [`DatagramSession`] is the variant with explicit epochs and counters
//! and a replay window for unreliable transports. Both share one key
//! schedule (`schedule`), one notion of epochs (`epoch`) and one ratchet
//! (`ratchet`); only the record framing around them differs.
//!
//! In every mode no key is used past its AEAD's usage limit
//! ([`AeadLimits`]) and the nonce 2^64-1 is never used. The session is
//! sans-IO: time comes in as a `Duration` since the session started and
//! randomness as an RNG argument.

#[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
pub(crate) mod cipher_state;
pub mod datagram;
pub(crate) mod epoch;
pub mod policy;
pub(crate) mod ratchet;
pub(crate) mod record;
#[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
pub(crate) mod replay;
pub(crate) mod schedule;
mod stream;

pub(crate) use cipher_state::CipherState;
pub use datagram::DatagramSession;
pub use epoch::Epoch;
pub use policy::{AeadLimits, RekeyPolicy};
pub(crate) use ratchet::RatchetAuth;
pub use record::{ControlType, Record, RecordType, CONTROL_HEADER_LEN};
pub use stream::Session;

use std::time::Duration;

use crate::crypto::{AeadAlgorithm, TAG_LEN};
use crate::error::{ConfigError, Error};
use crate::handshake::{Established, Role, MAX_MESSAGE_LEN};
use crate::keys::PublicKey;

/// Largest plaintext in one transport message.
pub const MAX_PLAINTEXT_LEN: usize = MAX_MESSAGE_LEN - TAG_LEN;

/// Largest application payload in one akex-mode record (one byte of the
/// plaintext is the record type).
pub const MAX_RECORD_PAYLOAD: usize = MAX_PLAINTEXT_LEN - 1;

/// Records kept in reserve below the hard limit for key updates, ratchet
/// steps and close, so a sender at its data limit can still rekey.
pub(crate) const CONTROL_RESERVE: u64 = 8;

/// Largest payload of one akex-mode control record.
pub const MAX_CONTROL_PAYLOAD: usize = MAX_RECORD_PAYLOAD - CONTROL_HEADER_LEN;

/// How long a datagram session keeps accepting the previous epoch's
/// records after moving to a new one, by default (records in flight
/// across a key change).
pub const DEFAULT_PREVIOUS_EPOCH_GRACE: Duration = Duration::from_secs(3);

/// What a session knows about the handshake that made it (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The full protocol name.
    pub protocol: String,
    /// Our role in the handshake.
    pub role: Role,
    /// The handshake hash (channel binding).
    pub handshake_hash: Vec<u8>,
    /// The peer's authenticated static public key, if any.
    pub remote_static: Option<PublicKey>,
    /// The AEAD in use.
    pub aead: AeadAlgorithm,
    /// How records are laid out (decided by the protocol).
    pub mode: RecordMode,
}

/// How records are laid out. The protocol decides it
/// ([`RecordMode::for_protocol`]); nothing else can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordMode {
    /// Plain Noise transport messages (interoperable with any Noise
    /// implementation). Noise has no authenticated close: a peer cannot
    /// tell a truncated stream from a finished one. Use an akex-mode
    /// protocol where that matters.
    Noise,
    /// Typed akex records (data, key update, ratchet, close), under record
    /// keys derived from the traffic secrets.
    Akex,
}

impl RecordMode {
    /// The one rule: `Noise_*` names use Noise records, every other
    /// protocol (the `akex-*` names) akex records.
    ///
    /// Both sides of a handshake agree on the protocol name (it is bound
    /// into the transcript), so they agree on the mode. Even sessions made
    /// to disagree cannot exchange a byte: akex-mode record keys are
    /// derived from the traffic secrets under a label, while Noise mode
    /// uses the secrets directly, so every record fails to authenticate in
    /// both directions.
    pub fn for_protocol(protocol: &str) -> RecordMode {
        if protocol.starts_with("Noise_") {
            RecordMode::Noise
        } else {
            RecordMode::Akex
        }
    }
}

/// How a session rekeys and ratchets. The record mode is not here: the
/// protocol decides it ([`RecordMode::for_protocol`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SessionConfig {
    /// When to rekey our sending direction; `None` for the mode's default
    /// (Noise: never, like every Noise implementation; akex:
    /// [`RekeyPolicy::recommended`]). Noise mode rekeys both directions on
    /// a schedule both peers must share, and counts only.
    pub policy: Option<RekeyPolicy>,
    /// akex mode: start a DH ratchet this long after the last one (needs a
    /// root secret from the handshake).
    pub ratchet_interval: Option<Duration>,
    /// akex mode: add an ML-KEM-768 encapsulation to every ratchet step
    /// (and refuse a peer's ratchet without one).
    pub hybrid_ratchet: bool,
    /// The hard usage limits; may only be lowered from
    /// [`AeadLimits::for_aead`] (useful in tests).
    pub limits: Option<AeadLimits>,
    /// Datagram mode: how long the previous epoch's key keeps opening
    /// records after the peer moved to a new epoch (a key update or a
    /// ratchet step); then it is erased. `None` for
    /// [`DEFAULT_PREVIOUS_EPOCH_GRACE`].
    pub previous_epoch_grace: Option<Duration>,
}

impl SessionConfig {
    /// The mode's defaults (see the fields).
    pub fn new() -> Self {
        Self::default()
    }

    /// Rekeys on `policy`.
    pub fn rekey_policy(mut self, policy: RekeyPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Noise mode: `REKEY()` after every `messages` messages per direction.
    pub fn noise_rekey_every(messages: u64) -> Self {
        Self::new().rekey_policy(RekeyPolicy::every_messages(messages))
    }

    /// akex mode: a DH ratchet every `interval`.
    pub fn ratchet_every(mut self, interval: Duration) -> Self {
        self.ratchet_interval = Some(interval);
        self
    }

    /// akex mode: every ratchet step also encapsulates to ML-KEM-768.
    pub fn hybrid_ratchet(mut self, hybrid: bool) -> Self {
        self.hybrid_ratchet = hybrid;
        self
    }

    /// Lowers the hard usage limits.
    pub fn limits(mut self, limits: AeadLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Datagram mode: the previous epoch's records are accepted for
    /// `grace` after the peer's first record of a new epoch, then its key
    /// is erased (a few retransmission timeouts is right; at most 60 s).
    pub fn previous_epoch_grace(mut self, grace: Duration) -> Self {
        self.previous_epoch_grace = Some(grace);
        self
    }

    /// The policy in force for `mode` and `aead`.
    pub(crate) fn policy_for(&self, mode: RecordMode, aead: AeadAlgorithm) -> RekeyPolicy {
        self.policy.unwrap_or(match mode {
            RecordMode::Noise => RekeyPolicy::never(),
            RecordMode::Akex => RekeyPolicy::recommended(aead),
        })
    }
}

pub(crate) fn session_info(established: &Established) -> SessionInfo {
    SessionInfo {
        protocol: established.protocol().to_string(),
        role: established.role(),
        handshake_hash: established.handshake_hash().to_vec(),
        remote_static: established.remote_static().cloned(),
        aead: established.aead(),
        mode: RecordMode::for_protocol(established.protocol()),
    }
}

pub(crate) fn check_limits(
    aead: AeadAlgorithm,
    limits: Option<AeadLimits>,
) -> Result<AeadLimits, Error> {
    let max = AeadLimits::for_aead(aead);
    match limits {
        None => Ok(max),
        Some(l)
            if l.max_records <= max.max_records
                && l.max_bytes <= max.max_bytes
                && l.max_forgeries <= max.max_forgeries
                && l.max_records > CONTROL_RESERVE =>
        {
            Ok(l)
        }
        Some(_) => Err(ConfigError::Invalid(
            "AEAD limits may only be lowered (and must leave room for control records)".into(),
        )
        .into()),
    }
}

/// The tail of a `Vec` from `.1` on, for sealing in place after a header
/// without copying.
pub(crate) struct Tail<'a>(pub(crate) &'a mut Vec<u8>, pub(crate) usize);

impl AsMut<[u8]> for Tail<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0[self.1..]
    }
}

impl<'b> Extend<&'b u8> for Tail<'_> {
    fn extend<I: IntoIterator<Item = &'b u8>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}
