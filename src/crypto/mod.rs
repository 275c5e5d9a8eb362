//! Primitives, each wrapped once.
//!
//! X25519 and the AEADs come from aws-lc-rs, which measured fastest here
//! (see `docs/benchmarks.md`). The hashes used inside Noise handshakes stay
//! with snow's RustCrypto implementations (aws-lc-rs has no BLAKE2).

pub mod aead;
pub mod kem;
pub mod rng;
pub mod secret;
pub mod snow_resolver;
pub mod x25519;

pub use aead::{AeadAlgorithm, AeadKey, TAG_LEN};
pub use rng::{OsRng, SharedRng};
pub use secret::{Secret, StaticSecret};
