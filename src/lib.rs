//! akex: authenticated key exchange with a session layer and a tokio transport.
//!
//! Layers, bottom up: [`crypto`] (primitives wrapped once), [`handshake`]
//! (the sans-IO [`Handshake`] trait and its protocols),
//! [`session`] (traffic keys and records), [`transport`] (tokio framing and
//! [`SecureStream`](transport::SecureStream)), [`keys`] (long-term keys).
#![doc = include_str!("../docs/library-example.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
pub mod connection;
pub mod crypto;
pub mod error;
pub mod handshake;
#[cfg(feature = "hazmat")]
pub mod hazmat;
pub mod keys;
pub mod session;
#[cfg(feature = "tokio")]
pub mod transport;

pub use config::{ClientConfig, HandshakeKeys, ServerConfig};
pub use connection::Connection;
pub use error::{Error, Result};
pub use handshake::{Established, Handshake, NoiseConfig, NoiseHandshake, Role};
pub use keys::{KeyKind, PublicKey};
pub use session::{RecordMode, Session, SessionInfo};
