//! Long-term keys: WireGuard-style identity files ([`mod@file`]) and a key store
//! with encryption at rest (PKCS#8), a trust store, rotation, destruction and
//! a hash-chained audit log, safe for several processes at once (see
//! `docs/key-management.md`).

#[cfg(feature = "keystore")]
pub mod audit;
#[cfg(feature = "keystore")]
pub mod encrypted;
pub mod file;
#[cfg(feature = "keystore")]
mod fsutil;
#[cfg(all(feature = "keystore", feature = "pkcs11"))]
mod hsm;
#[cfg(feature = "keystore")]
pub mod index;
#[cfg(feature = "keystore")]
mod index_check;
#[cfg(feature = "keystore")]
mod journal;
#[cfg(feature = "keystore")]
mod lock;
#[cfg(feature = "keystore")]
mod material;
#[cfg(feature = "keystore")]
mod paths;
#[cfg(feature = "keystore")]
pub mod policy;
mod public;
#[cfg(feature = "keystore")]
mod rotate;
#[cfg(feature = "keystore")]
pub mod rotation;
pub mod signer;
#[cfg(feature = "keystore")]
pub mod store;
#[cfg(feature = "keystore")]
pub mod trust;
#[cfg(feature = "keystore")]
mod trust_file;

pub use crate::crypto::ed25519::SigningKey;
pub use crate::crypto::kem::MlKem768KeyPair;
pub use crate::crypto::p256::P256SigningKey;
pub use crate::crypto::x25519::StaticSecret;
#[cfg(feature = "keystore")]
pub use audit::{AuditEvent, AuditLog, AuditRecord, AuditReport};
#[cfg(feature = "keystore")]
pub use encrypted::{Passphrase, Protection, DEFAULT_SCRYPT_LOG_N, MAX_SCRYPT_LOG_N};
pub use file::{
    decode_public_key, encode_public_key, load_identity, read_regular_file, write_new_identity,
};
#[cfg(all(feature = "keystore", feature = "pkcs11"))]
pub use hsm::check_token_type;
#[cfg(feature = "keystore")]
pub use index::{KeyEntry, KeyStatus, KeyType};
#[cfg(feature = "keystore")]
pub use journal::{USE_LINE_INTERVAL, USE_LOCK_PATIENCE};
#[cfg(feature = "keystore")]
pub use material::LoadedKey;
#[cfg(feature = "keystore")]
pub use policy::{PolicyVerifier, TrustPolicy};
pub use public::{KeyKind, PublicKey};
#[cfg(feature = "keystore")]
pub use rotation::{
    decode_rotation_announcement, encode_rotation_announcement, RotationStatement,
    MAX_ROTATION_CHAIN,
};
pub use signer::{SignatureScheme, Signer};
#[cfg(feature = "keystore")]
pub use store::KeyStore;
#[cfg(feature = "keystore")]
pub use trust::{Pin, Revocation, TrustStore};

/// The largest key, statement or `keys show --json` file the store and the
/// command line read (they are a few KiB at most).
pub const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// A key's id: hex of the first 16 bytes of SHA-256 of its public key.
pub fn key_id(public: &[u8]) -> String {
    hex::encode(&crate::crypto::hash::sha256(&[public])[..16])
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(feature = "keystore")]
pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(feature = "keystore")]
pub(crate) fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}
