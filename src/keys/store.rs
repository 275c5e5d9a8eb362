//! The key store: a directory with an index (`store.json`), one private key
//! file per identity under `keys/`, the trust store (`trust.json`) and the
//! audit log (`audit.jsonl`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::audit::{AuditEvent, AuditLog};
use super::encrypted::{self, Protection};
use super::fsutil::{ensure_dir, io_err, overwrite_and_remove, write_atomic};
use super::material::{
    decode_payload, derive_public, encode_payload, generate_material, LoadedKey,
};
use super::{b64, key_id, now_unix, unb64};
use crate::error::{Error, KeyStoreError};

/// The kinds of long-term key akex uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// A Noise static key.
    X25519,
    /// A signing key (SIGMA, rotation statements).
    Ed25519,
    /// An ML-KEM-768 decapsulation key (hybrid post-quantum protocols).
    Mlkem768,
}

impl KeyType {
    pub(crate) fn code(self) -> u8 {
        match self {
            KeyType::X25519 => 1,
            KeyType::Ed25519 => 2,
            KeyType::Mlkem768 => 3,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(KeyType::X25519),
            2 => Some(KeyType::Ed25519),
            3 => Some(KeyType::Mlkem768),
            _ => None,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::X25519 => "x25519",
            KeyType::Ed25519 => "ed25519",
            KeyType::Mlkem768 => "mlkem768",
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
            other => Err(KeyStoreError::Unsupported(format!(
                "{other:?} (expected x25519, ed25519 or mlkem768)"
            ))
            .into()),
        }
    }
}

/// Where a key is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
    /// The Ed25519 key that signs this identity's rotation statements, base64
    /// (for an ed25519 identity, its own public key).
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
    /// The private key file, relative to the store directory.
    pub file: String,
    /// SHA-256 of the private key file as written (detects tampering and
    /// truncation before any decryption is attempted).
    pub file_sha256: String,
}

impl KeyEntry {
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    version: u32,
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

/// A directory of identities. See the module docs for the layout.
#[derive(Debug)]
pub struct KeyStore {
    dir: PathBuf,
    index: Index,
    audit: AuditLog,
}

impl KeyStore {
    /// The default store directory: `$XDG_DATA_HOME/akex`, else
    /// `~/.local/share/akex`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(xdg).join("akex"));
        }
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|home| PathBuf::from(home).join(".local/share/akex"))
    }

    /// Opens (creating if needed, mode 0700) the store in `dir`. A corrupted
    /// index is an error and is left untouched.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        ensure_dir(&dir)?;
        ensure_dir(&dir.join("keys"))?;
        let path = dir.join("store.json");
        let index = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Index>(&bytes).map_err(|e| {
                Error::from(KeyStoreError::Corrupt {
                    path: path.display().to_string(),
                    reason: format!(
                        "invalid store index at line {} column {}",
                        e.line(),
                        e.column()
                    ),
                })
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index {
                version: 1,
                keys: Vec::new(),
            },
            Err(e) => return Err(io_err(&path, e)),
        };
        if index.version != 1 {
            return Err(KeyStoreError::Corrupt {
                path: path.display().to_string(),
                reason: format!("unknown store version {}", index.version),
            }
            .into());
        }
        let audit = AuditLog::new(dir.join("audit.jsonl"));
        Ok(KeyStore { dir, index, audit })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The trust store's path in this directory.
    pub fn trust_path(&self) -> PathBuf {
        self.dir.join("trust.json")
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.index.keys
    }

    /// The current entry for `name`: the newest one that is not retired,
    /// else the newest one.
    pub fn find(&self, name: &str) -> Option<&KeyEntry> {
        let mut with_name = self.index.keys.iter().rev().filter(|e| e.name == name);
        let newest = with_name.clone().next();
        with_name
            .find(|e| e.status != KeyStatus::Retired)
            .or(newest)
    }

    /// The entry with id `id` (or a unique id prefix of at least 8 hex digits).
    pub fn find_id(&self, id: &str) -> Option<&KeyEntry> {
        let id = id.to_ascii_lowercase();
        if id.len() < 8 {
            return None;
        }
        let mut hits = self.index.keys.iter().filter(|e| e.id.starts_with(&id));
        let first = hits.next()?;
        hits.next().is_none().then_some(first)
    }

    fn position(&self, name_or_id: &str) -> Result<usize, Error> {
        let entry = self
            .find(name_or_id)
            .or_else(|| self.find_id(name_or_id))
            .ok_or_else(|| KeyStoreError::NotFound(name_or_id.into()))?;
        let id = entry.id.clone();
        Ok(self
            .index
            .keys
            .iter()
            .position(|e| e.id == id)
            .unwrap_or_default())
    }

    fn save_index(&self) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(&self.index)
            .map_err(|e| io_err(&self.dir.join("store.json"), e))?;
        write_atomic(&self.dir.join("store.json"), &json)
    }

    pub(crate) fn log(
        &self,
        event: &str,
        entry: &KeyEntry,
        detail: Option<String>,
    ) -> Result<(), Error> {
        self.audit.append(&AuditEvent::new(
            event,
            Some(&entry.id),
            Some(&entry.name),
            detail,
        ))
    }

    /// Generates a new identity named `name`. Fails if an active key with
    /// that name exists.
    pub fn generate(
        &mut self,
        name: &str,
        key_type: KeyType,
        protection: &Protection,
        expires: Option<u64>,
    ) -> Result<KeyEntry, Error> {
        if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
            return Err(KeyStoreError::Unsupported(
                "key names must be 1-128 printable characters".into(),
            )
            .into());
        }
        // Refuse to change keys while the audit log is broken.
        self.audit.verify()?;
        if self
            .index
            .keys
            .iter()
            .any(|e| e.name == name && e.status == KeyStatus::Active)
        {
            return Err(KeyStoreError::AlreadyExists(name.into()).into());
        }
        let entry = self.create(name, key_type, protection, expires, None)?;
        self.log("generate", &entry, Some(format!("type={key_type}")))?;
        Ok(entry)
    }

    /// Writes a new key file and index entry (no audit event).
    pub(crate) fn create(
        &mut self,
        name: &str,
        key_type: KeyType,
        protection: &Protection,
        expires: Option<u64>,
        replaces: Option<String>,
    ) -> Result<KeyEntry, Error> {
        let (private, public, signing) = generate_material(key_type)?;
        let id = key_id(&public);
        let payload = encode_payload(key_type, &private, &signing);
        let sealed = encrypted::seal(&payload, protection)?;
        let ext = if protection.is_encrypted() {
            "age"
        } else {
            "plain"
        };
        let file = format!("keys/{id}.{ext}");
        let path = self.dir.join(&file);
        if path.exists() {
            return Err(KeyStoreError::AlreadyExists(id).into());
        }
        write_atomic(&path, &sealed)?;
        let entry = KeyEntry {
            id,
            name: name.into(),
            key_type,
            public: b64(&public),
            signing_public: b64(&signing.verifying_key().to_bytes()),
            created: now_unix(),
            expires,
            status: KeyStatus::Active,
            status_changed: None,
            revoked_reason: None,
            retire_at: None,
            replaced_by: None,
            replaces,
            encrypted: protection.is_encrypted(),
            file,
            file_sha256: hex::encode(Sha256::digest(&sealed)),
        };
        self.index.keys.push(entry.clone());
        self.save_index()?;
        Ok(entry)
    }

    /// Loads the current key named `name` (or with id `name`), checking that
    /// it is usable now.
    pub fn load(&self, name: &str, protection: Option<&Protection>) -> Result<LoadedKey, Error> {
        self.load_at(name, protection, now_unix())
    }

    /// [`load`](Self::load) at time `now`.
    pub fn load_at(
        &self,
        name: &str,
        protection: Option<&Protection>,
        now: u64,
    ) -> Result<LoadedKey, Error> {
        let entry = &self.index.keys[self.position(name)?];
        entry.check_usable(now)?;
        let loaded = self.read_private(entry, protection)?;
        self.log("load", entry, None)?;
        Ok(loaded)
    }

    /// Reads and decrypts the private key of `entry` without status checks.
    pub(crate) fn read_private(
        &self,
        entry: &KeyEntry,
        protection: Option<&Protection>,
    ) -> Result<LoadedKey, Error> {
        let path = self.dir.join(&entry.file);
        let corrupt = |reason: &str| -> Error {
            KeyStoreError::Corrupt {
                path: path.display().to_string(),
                reason: reason.into(),
            }
            .into()
        };
        if entry.status == KeyStatus::Destroyed {
            return Err(KeyStoreError::Destroyed(entry.name.clone()).into());
        }
        let bytes = Zeroizing::new(std::fs::read(&path).map_err(|e| io_err(&path, e))?);
        if hex::encode(Sha256::digest(&bytes[..])) != entry.file_sha256 {
            return Err(corrupt(
                "its SHA-256 differs from the one recorded in store.json (truncated or modified)",
            ));
        }
        let payload = encrypted::open(&bytes, entry.encrypted, protection, &entry.name, &path)?;
        let (key_type, private, signing) =
            decode_payload(&payload).ok_or_else(|| corrupt("malformed key payload"))?;
        if key_type != entry.key_type
            || derive_public(key_type, &private)
                .map(|p| b64(&p))
                .as_deref()
                != Some(&entry.public)
            || b64(&signing.verifying_key().to_bytes()) != entry.signing_public
        {
            return Err(corrupt(
                "the private key does not match the recorded public key",
            ));
        }
        Ok(LoadedKey::new(entry.clone(), private, signing))
    }

    /// Marks the key revoked (it will never load again) and logs it.
    pub fn revoke(&mut self, name: &str, reason: &str) -> Result<KeyEntry, Error> {
        self.audit.verify()?;
        let pos = self.position(name)?;
        let entry = &mut self.index.keys[pos];
        if entry.status != KeyStatus::Destroyed {
            entry.status = KeyStatus::Revoked;
        }
        entry.status_changed = Some(now_unix());
        entry.revoked_reason = Some(reason.into());
        let entry = entry.clone();
        self.save_index()?;
        self.log("revoke", &entry, Some(reason.into()))?;
        Ok(entry)
    }

    /// Overwrites and removes the private key file and marks the entry
    /// destroyed; the public record stays for the audit trail.
    pub fn destroy(&mut self, name: &str) -> Result<KeyEntry, Error> {
        self.audit.verify()?;
        let pos = self.position(name)?;
        let path = self.dir.join(&self.index.keys[pos].file);
        if self.index.keys[pos].status == KeyStatus::Destroyed {
            return Err(KeyStoreError::Destroyed(self.index.keys[pos].name.clone()).into());
        }
        if path.exists() {
            overwrite_and_remove(&path)?;
        }
        let entry = &mut self.index.keys[pos];
        entry.status = KeyStatus::Destroyed;
        entry.status_changed = Some(now_unix());
        let entry = entry.clone();
        self.save_index()?;
        self.log("destroy", &entry, None)?;
        Ok(entry)
    }

    pub(crate) fn entry_mut(&mut self, id: &str) -> Option<&mut KeyEntry> {
        self.index.keys.iter_mut().find(|e| e.id == id)
    }

    pub(crate) fn save(&self) -> Result<(), Error> {
        self.save_index()
    }
}
