//! Long-term keys. For now: X25519 identity files, WireGuard-style.

pub mod file;

pub use file::{decode_public_key, encode_public_key, load_identity, write_new_identity};
