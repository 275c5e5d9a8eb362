//! akex: authenticated key exchange (Noise, SIGMA, hybrid and
//! PQ-authenticated handshakes) with a session layer, a sans-IO connection
//! and an optional tokio transport.
//!
//! Layers, bottom up: [`crypto`] (randomness and the AEAD choice),
//! [`handshake`] (the sans-IO [`Handshake`] trait and its protocols),
//! [`session`] (traffic keys and records), [`Connection`] (framing,
//! handshake and records over any byte stream), [`config`] (validated,
//! shareable [`ClientConfig`] and [`ServerConfig`]), [`keys`] (key types
//! and identity files).
//!
//! Cargo features, all off by default (`docs/embedding.md`):
//!
//! | feature | adds |
//! |---|---|
//! | `tokio` | `transport`: `Connector`/`Acceptor`, `SecureStream`, a TCP server with limits, datagram mode over UDP |
//! | `keystore` | the key store in `keys`: encrypted PKCS#8 key files, trust store, rotation, audit log |
//! | `hfs` | snow's `Noise_*hfs_25519+Kyber1024_*` patterns (ML-KEM-1024) |
//! | `rsa-kt` | RSA-3072 key transport, a legacy baseline (NOT forward secret) |
//! | `pkcs11` | `pkcs11`: signing keys in hardware security modules (PKCS#11), for SIGMA |
//! | `hazmat` | `hazmat`: replay RNG, raw primitives, secret exposure (tests and protocol work only) |
#![doc = include_str!("../docs/library-example.md")]
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod config;
pub mod connection;
pub mod crypto;
pub mod error;
pub mod handshake;
#[cfg(feature = "hazmat")]
pub mod hazmat;
pub mod keys;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod session;
#[cfg(feature = "tokio")]
pub mod transport;

pub use config::{ClientConfig, HandshakeKeys, ServerConfig};
pub use connection::Connection;
pub use error::{Error, Result};
pub use handshake::{Established, Handshake, NoiseConfig, NoiseHandshake, PeerVerifier, Role};
pub use keys::{KeyKind, PublicKey};
pub use session::{RecordMode, Session, SessionInfo};

// Every Rust example in the README and docs/embedding.md compiles as a
// doctest (README.md's client runs against `akex serve` in
// tests/readme_example.rs).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_examples {}

#[cfg(doctest)]
#[doc = include_str!("../docs/embedding.md")]
mod embedding_examples {}
