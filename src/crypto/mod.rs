//! Primitives, each wrapped once.
//!
//! X25519, Ed25519, P-256 (ECDH, ECDSA), SHA-256/HMAC/HKDF and the AEADs
//! come from aws-lc-rs,
//! which measured fastest here (see `docs/benchmarks.md`); ML-KEM from
//! aws-lc through its deterministic API (randomness passed in, see
//! `docs/mlkem-choice.md`; the crate's only `unsafe` is there); BLAKE2 for Noise names that ask for it from the
//! RustCrypto `blake2` crate.
//!
//! The public part is small: [`RandomSource`] and [`OsRng`] (randomness is
//! passed in), [`AeadAlgorithm`] and [`Secret`]. Long-term key types live
//! in [`crate::keys`]; the raw primitives are behind the `hazmat` feature
//! (`akex::hazmat`).

pub(crate) mod aead;
pub(crate) mod dh;
pub(crate) mod ed25519;
pub(crate) mod hash;
pub(crate) mod kem;
mod mlkem_ffi;
pub(crate) mod p256;
pub(crate) mod rng;
pub(crate) mod secret;
#[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
pub(crate) mod snow_resolver;
#[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
pub(crate) mod x25519;

pub use aead::AeadAlgorithm;
pub use dh::DhGroup;
pub use rng::{OsRng, RandomSource};
pub use secret::Secret;

pub(crate) use aead::{AeadKey, TAG_LEN};
pub(crate) use rng::SharedRng;
pub(crate) use x25519::StaticSecret;
