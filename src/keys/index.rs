//! The key index (`store.json`): one public record per identity.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::audit::Commit;
use super::fsutil::{corrupt, read_file, MAX_STATE_FILE};
use super::paths::is_key_id;
use super::unb64;
use crate::error::{Error, KeyStoreError};
use crate::keys::SignatureScheme;

/// The kinds of long-term key akex uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyType {
    /// A Noise static key.
    X25519,
    /// A signing key (SIGMA, rotation statements).
    Ed25519,
    /// An ML-KEM-768 decapsulation key (hybrid post-quantum protocols).
    Mlkem768,
    /// An ECDSA P-256 signing key (the FIPS-algorithm SIGMA suite; it signs
    /// its own rotation statements).
    P256,
}

impl KeyType {
    /// The scheme that signs this identity's rotation statements: ECDSA
    /// P-256 for p256 keys, Ed25519 for the others (the key itself or its
    /// companion).
    pub fn signature_scheme(self) -> SignatureScheme {
        match self {
            KeyType::P256 => SignatureScheme::EcdsaP256Sha256,
            _ => SignatureScheme::Ed25519,
        }
    }

    /// True for the types a handshake signs with (SIGMA identities), the
    /// only ones a PKCS#11 token can hold for akex.
    pub fn is_signing(self) -> bool {
        matches!(self, KeyType::Ed25519 | KeyType::P256)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::X25519 => "x25519",
            KeyType::Ed25519 => "ed25519",
            KeyType::Mlkem768 => "mlkem768",
            KeyType::P256 => "p256",
        })
    }
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "x25519" => Ok(KeyType::X25519),
            "ed25519" => Ok(KeyType::Ed25519),
            "mlkem768" | "ml-kem-768" => Ok(KeyType::Mlkem768),
            "p256" | "p-256" => Ok(KeyType::P256),
            other => Err(KeyStoreError::Unsupported(format!(
                "{other:?} (expected x25519, ed25519, p256 or mlkem768)"
            ))
            .into()),
        }
    }
}

/// Where a key is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyStatus {
    /// In use.
    Active,
    /// Replaced by a rotation (usable until `retire_at`, for the overlap).
    Retired,
    /// Must never be used again.
    Revoked,
    /// The private key file was overwritten and removed.
    Destroyed,
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyStatus::Active => "active",
            KeyStatus::Retired => "retired",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Destroyed => "destroyed",
        })
    }
}

/// The public record of one identity (no private material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyEntry {
    /// Hex of SHA-256(public key), first 16 bytes.
    pub id: String,
    /// The user's name for it (several entries share a name across rotations).
    pub name: String,
    /// The key's type.
    #[serde(rename = "type")]
    pub key_type: KeyType,
    /// The public key, base64.
    pub public: String,
    /// The key that signs this identity's rotation statements, base64 (for
    /// ed25519 and p256 identities, their own public key; see
    /// [`KeyType::signature_scheme`]).
    pub signing_public: String,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Expiry time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// Lifecycle status.
    pub status: KeyStatus,
    /// When the status last changed, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_changed: Option<u64>,
    /// The revocation reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
    /// For a retired key: end of the overlap window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_at: Option<u64>,
    /// The id of the key that replaced this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// The id of the key this one replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// True if the private key file is encrypted.
    pub encrypted: bool,
    /// SHA-256 of the private key file as written: checked before the file
    /// is decrypted, overwritten or removed. The file itself is always
    /// `keys/<id>.pem`, derived from the id, never read from the index.
    /// Empty for a key held in a PKCS#11 token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file_sha256: String,
    /// For a key held in a PKCS#11 token: its `pkcs11:` URI (RFC 7512,
    /// with the object's `id`). Such a key has no private key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs11: Option<String>,
}

impl KeyEntry {
    /// The private key file, relative to the store directory.
    pub fn file(&self) -> String {
        format!("{}/{}.pem", super::paths::KEYS, self.id)
    }

    /// True if the private key is held in a PKCS#11 token.
    pub fn in_token(&self) -> bool {
        self.pkcs11.is_some()
    }

    /// The public key's bytes.
    pub fn public_bytes(&self) -> Vec<u8> {
        unb64(&self.public).unwrap_or_default()
    }

    /// Checks that the key may be used at time `now`.
    pub fn check_usable(&self, now: u64) -> Result<(), Error> {
        match self.status {
            KeyStatus::Destroyed => Err(KeyStoreError::Destroyed(self.name.clone()).into()),
            KeyStatus::Revoked => Err(KeyStoreError::Revoked(self.name.clone()).into()),
            KeyStatus::Retired if self.retire_at.is_none_or(|t| now >= t) => {
                Err(KeyStoreError::Retired(self.name.clone()).into())
            }
            _ if self.expires.is_some_and(|t| now >= t) => {
                Err(KeyStoreError::Expired(self.name.clone()).into())
            }
            _ => Ok(()),
        }
    }
}

/// The index format version. Version 1 stores (age-encrypted key files)
/// are refused: re-create them.
pub(crate) const INDEX_VERSION: u32 = 2;

/// `store.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Index {
    pub(crate) version: u32,
    #[serde(default)]
    pub(crate) keys: Vec<KeyEntry>,
    /// The audit line of the last change (see `journal.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audit: Option<Commit>,
}

impl Index {
    pub(crate) fn empty() -> Self {
        Index {
            version: INDEX_VERSION,
            keys: Vec::new(),
            audit: None,
        }
    }

    /// Reads `store.json`: `Ok(None)` if it does not exist; a malformed
    /// file, an older version or an id that is not hex is an error and the
    /// file is left untouched.
    pub(crate) fn read(path: &Path) -> Result<Option<Self>, Error> {
        let Some(bytes) = read_file(path, MAX_STATE_FILE)? else {
            return Ok(None);
        };
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
            corrupt(
                path,
                format!(
                    "invalid store index at line {} column {}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if index.version != INDEX_VERSION {
            return Err(corrupt(
                path,
                format!(
                    "store version {} is not {INDEX_VERSION}: stores made before \
                     the PKCS#8 key files must be re-created",
                    index.version
                ),
            ));
        }
        if index.keys.iter().any(|e| !is_key_id(&e.id)) {
            return Err(corrupt(path, "a key id is not 32 lowercase hex digits"));
        }
        if index
            .keys
            .iter()
            .any(|e| e.in_token() && (!e.key_type.is_signing() || !e.file_sha256.is_empty()))
        {
            return Err(corrupt(
                path,
                "a key held in a PKCS#11 token must be ed25519 or p256 and have no key file",
            ));
        }
        Ok(Some(index))
    }

    /// Serializes the index.
    /// SHA-256 (hex) of the key entries, as the audit line of each index
    /// change records it.
    pub(crate) fn keys_sha256(&self) -> String {
        hex::encode(crate::crypto::hash::sha256(&[&serde_json::to_vec(
            &self.keys,
        )
        .unwrap_or_default()]))
    }

    pub(crate) fn to_json(&self, path: &Path) -> Result<Vec<u8>, Error> {
        serde_json::to_vec_pretty(self).map_err(|e| corrupt(path, e.to_string()))
    }

    /// The current entry for `name`: the newest one that is not retired,
    /// else the newest one.
    pub(crate) fn find(&self, name: &str) -> Option<&KeyEntry> {
        let mut with_name = self.keys.iter().rev().filter(|e| e.name == name);
        let newest = with_name.clone().next();
        with_name
            .find(|e| e.status != KeyStatus::Retired)
            .or(newest)
    }

    /// The entry with id `id` (or a unique id prefix of at least 8 hex digits).
    pub(crate) fn find_id(&self, id: &str) -> Option<&KeyEntry> {
        let id = id.to_ascii_lowercase();
        if id.len() < 8 {
            return None;
        }
        let mut hits = self.keys.iter().filter(|e| e.id.starts_with(&id));
        let first = hits.next()?;
        hits.next().is_none().then_some(first)
    }

    /// The entry for a name, else an id.
    pub(crate) fn lookup(&self, name_or_id: &str) -> Result<&KeyEntry, Error> {
        self.find(name_or_id)
            .or_else(|| self.find_id(name_or_id))
            .ok_or_else(|| KeyStoreError::NotFound(name_or_id.into()).into())
    }

    pub(crate) fn entry_mut(&mut self, id: &str) -> Option<&mut KeyEntry> {
        self.keys.iter_mut().find(|e| e.id == id)
    }
}
