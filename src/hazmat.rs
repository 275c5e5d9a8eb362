//! Hazardous materials: APIs that are easy to misuse and never needed to
//! use akex. Behind the `hazmat` cargo feature.
//!
//! They exist for known-answer tests, fuzzing, interop work and people
//! writing new protocols on akex's primitives: a replay RNG, the raw
//! primitives, the Noise `CipherState` with its nonce setter, the akex-mode
//! symmetric state and key-schedule labels, the snow resolver, and
//! constructors that take traffic secrets directly
//! ([`Established::new`](crate::Established::new),
//! [`TrafficSecret::expose`](crate::handshake::TrafficSecret::expose)).
//!
//! Nothing here is covered by semver promises beyond the crate's version.

pub use crate::crypto::rng::{ReplayRng, SharedRng};

/// The AEADs with Noise's nonce layout.
pub mod aead {
    pub use crate::crypto::aead::{AeadKey, KEY_LEN, TAG_LEN};
    pub use crate::crypto::AeadAlgorithm;
}

/// X25519 on aws-lc-rs.
pub mod x25519 {
    pub use crate::crypto::x25519::{public_key, X25519Private, KEY_LEN};
}

/// Ed25519 verification and the weak-key check.
pub mod ed25519 {
    pub use crate::crypto::ed25519::{is_weak_public_key, verify, SIGNATURE_LEN};
}

/// P-256 ECDH and ECDSA verification on aws-lc-rs.
pub mod p256 {
    pub use crate::crypto::p256::{
        is_valid_public_key, verify, P256Ephemeral, PUBLIC_KEY_LEN, SCALAR_LEN, SIGNATURE_LEN,
    };
}

/// ML-KEM-768 with the randomness passed in.
pub mod kem {
    pub use crate::crypto::kem::*;
}

/// SHA-256, HMAC-SHA256, HKDF-SHA256.
pub mod hash {
    pub use crate::crypto::hash::{hkdf_expand_sha256, hkdf_sha256, hmac_sha256, sha256};
}

/// snow's primitives, resolved to akex's.
pub use crate::crypto::snow_resolver::AkexResolver;

/// Constant-time comparison.
pub use crate::crypto::secret::ct_eq;

/// The Noise `CipherState` (with `set_nonce`).
pub use crate::session::cipher_state::CipherState;

/// The replay window of datagram mode.
pub mod replay {
    pub use crate::session::replay::*;
}

/// The session layer's key schedule (record keys, key updates, ratchet).
pub mod schedule {
    pub use crate::session::schedule::*;
}

/// The building blocks of akex-mode handshakes: the hello, the symmetric
/// state and its labels, the negotiating responder.
pub mod akex {
    pub use crate::handshake::akex::symmetric::labels;
    pub use crate::handshake::akex::*;
}

/// The 2-byte length framing on its own.
pub use crate::connection::FrameDecoder;

/// The datagram handshake without a socket (fuzzing, protocol work).
#[cfg(feature = "tokio")]
pub mod datagram {
    pub use crate::transport::datagram::engine::DatagramResponder;
    pub use crate::transport::datagram::AmplificationBudget;
}
