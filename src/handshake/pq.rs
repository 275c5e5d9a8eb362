//! PQ-authenticated handshakes: PQNoise-style pqXX and pqIK (Angel,
//! Dowling, Hülsing, Schwabe, Weber, CCS 2022) with ML-KEM-768 static keys,
//! in hybrid form with X25519.
//!
//! Each side's static key is an X25519 key *and* an ML-KEM-768 key. A peer
//! is authenticated by `skem` (a ciphertext encapsulated to its static
//! ML-KEM key: only the holder of the decapsulation key derives the next
//! chaining key) and, as in classical Noise, by the static DH tokens. So
//! authentication holds if either X25519 or ML-KEM-768 holds at handshake
//! time, and confidentiality holds if either holds ever. Run by the token
//! engine in [`super::hybrid`] on the patterns in `pattern.rs`; spec in
//! `protocols/pq.md`.

pub use super::hybrid::{HybridConfig as PqConfig, HybridHandshake as PqHandshake};
pub use super::pattern::{PQ_IK, PQ_XX};
