//! The trust store (`trust.json`): pinned peer keys with names, revocation
//! entries, and the [`TrustPolicy`] checked after each handshake.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::audit::{AuditEvent, AuditLog};
use super::fsutil::{io_err, write_atomic};
use super::store::KeyType;
use super::{b64, key_id, now_unix, unb64};
use crate::error::{Error, KeyStoreError, TrustFailure};

/// A pinned peer key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The peer's name.
    pub name: String,
    /// Key id (hex SHA-256 of the public key, 16 bytes).
    pub id: String,
    /// The key's type.
    #[serde(rename = "type")]
    pub key_type: KeyType,
    /// The public key, base64.
    pub public: String,
    /// The Ed25519 key that may sign this key's rotation statement, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_public: Option<String>,
    /// When it was pinned, Unix seconds.
    pub added: u64,
    /// Not trusted from this time on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// End of the overlap window after the key was rotated away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<u64>,
    /// The id of the key that replaced it (by a verified statement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_to: Option<String>,
    /// The id of the key it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<String>,
    /// Pinned automatically on first use.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tofu: bool,
}

impl Pin {
    /// True if the pin is valid at `now`.
    pub fn is_valid(&self, now: u64) -> bool {
        self.expires.is_none_or(|t| now < t) && self.valid_until.is_none_or(|t| now < t)
    }
}

/// A revoked key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The key's id.
    pub key_id: String,
    /// When it was revoked, Unix seconds.
    pub time: u64,
    /// Why.
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TrustFile {
    #[serde(default)]
    pins: Vec<Pin>,
    #[serde(default)]
    revocations: Vec<Revocation>,
}

/// Pinned peers and revocations, saved atomically to one JSON file.
#[derive(Debug, Clone)]
pub struct TrustStore {
    path: PathBuf,
    data: TrustFile,
    audit: Option<AuditLog>,
}

impl TrustStore {
    /// Opens the trust store at `path` (empty if the file does not exist).
    /// A malformed file is an error and is left untouched.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let data = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::from(KeyStoreError::Corrupt {
                    path: path.display().to_string(),
                    reason: format!(
                        "invalid trust store at line {} column {}",
                        e.line(),
                        e.column()
                    ),
                })
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => TrustFile::default(),
            Err(e) => return Err(io_err(&path, e)),
        };
        Ok(TrustStore {
            path,
            data,
            audit: None,
        })
    }

    /// Opens the trust store and checks it against `audit`: every change is
    /// logged with the file's hash, so an edit made outside akex is reported
    /// as corruption. Later changes are logged there too.
    pub fn open_audited(path: impl Into<PathBuf>, audit: AuditLog) -> Result<Self, Error> {
        let mut store = Self::open(path)?;
        let records = audit.verify()?;
        let recorded = records
            .iter()
            .rev()
            .find_map(|r| r.event.trust_sha256.clone());
        match (std::fs::read(&store.path), recorded) {
            (Ok(bytes), Some(hash)) if hex::encode(Sha256::digest(&bytes)) != hash => {
                return Err(KeyStoreError::Corrupt {
                    path: store.path.display().to_string(),
                    reason: "it differs from the version recorded in the audit log".into(),
                }
                .into())
            }
            (Err(e), Some(_)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyStoreError::Corrupt {
                    path: store.path.display().to_string(),
                    reason: "the audit log records a trust store but the file is missing".into(),
                }
                .into())
            }
            _ => {}
        }
        store.audit = Some(audit);
        Ok(store)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every pin.
    pub fn pins(&self) -> &[Pin] {
        &self.data.pins
    }

    /// Every revocation.
    pub fn revocations(&self) -> &[Revocation] {
        &self.data.revocations
    }

    /// The revocation of `key_id`, if any.
    pub fn revocation(&self, key_id: &str) -> Option<&Revocation> {
        self.data.revocations.iter().find(|r| r.key_id == key_id)
    }

    /// The pins with this name.
    pub fn pins_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Pin> + 'a {
        self.data.pins.iter().filter(move |p| p.name == name)
    }

    pub(crate) fn pins_mut(&mut self) -> &mut Vec<Pin> {
        &mut self.data.pins
    }

    /// Saves atomically (mode 0600) and logs `event` with the file's hash.
    pub(crate) fn save_and_log(&self, mut event: AuditEvent) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(&self.data).map_err(|e| io_err(&self.path, e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            super::fsutil::ensure_dir(dir)?;
        }
        write_atomic(&self.path, &json)?;
        if let Some(audit) = &self.audit {
            event.trust_sha256 = Some(hex::encode(Sha256::digest(&json)));
            audit.append(&event)?;
        }
        Ok(())
    }

    /// Pins `public` under `name`. Pinning a key that is already pinned under
    /// the same name is a no-op.
    pub fn pin(
        &mut self,
        name: &str,
        key_type: KeyType,
        public: &[u8],
        signing_public: Option<&[u8]>,
        expires: Option<u64>,
    ) -> Result<Pin, Error> {
        let id = key_id(public);
        if let Some(existing) = self.data.pins.iter().find(|p| p.id == id && p.name == name) {
            return Ok(existing.clone());
        }
        let pin = Pin {
            name: name.into(),
            id,
            key_type,
            public: b64(public),
            signing_public: signing_public.map(b64),
            added: now_unix(),
            expires,
            valid_until: None,
            rotated_to: None,
            rotated_from: None,
            tofu: false,
        };
        self.data.pins.push(pin.clone());
        self.save_and_log(AuditEvent::new("trust", Some(&pin.id), Some(name), None))?;
        Ok(pin)
    }

    /// Removes every pin named `name`; returns how many.
    pub fn unpin(&mut self, name: &str) -> Result<usize, Error> {
        let before = self.data.pins.len();
        self.data.pins.retain(|p| p.name != name);
        let removed = before - self.data.pins.len();
        if removed == 0 {
            return Err(KeyStoreError::NotFound(name.into()).into());
        }
        self.save_and_log(AuditEvent::new(
            "untrust",
            None,
            Some(name),
            Some(format!("{removed} pin(s)")),
        ))?;
        Ok(removed)
    }

    /// Adds a revocation for `key_id` (idempotent).
    pub fn revoke(&mut self, key_id: &str, reason: &str, time: u64) -> Result<(), Error> {
        if self.revocation(key_id).is_none() {
            self.data.revocations.push(Revocation {
                key_id: key_id.into(),
                time,
                reason: reason.into(),
            });
        }
        self.save_and_log(AuditEvent::new(
            "revoke",
            Some(key_id),
            None,
            Some(reason.into()),
        ))
    }

    /// Judges `remote_static` at `now`: revoked, then pinned and valid,
    /// then pinned but expired; `None` if it is not pinned at all.
    fn judge(&self, remote_static: &[u8], now: u64) -> Option<Result<(), Error>> {
        let id = key_id(remote_static);
        if let Some(r) = self.revocation(&id) {
            return Some(Err(TrustFailure::Revoked {
                key_id: id,
                reason: r.reason.clone(),
            }
            .into()));
        }
        let public = b64(remote_static);
        let mut pins = self
            .data
            .pins
            .iter()
            .filter(|p| p.public == public)
            .peekable();
        let first = pins.peek().map(|p| p.name.clone())?;
        if pins.any(|p| p.is_valid(now)) {
            Some(Ok(()))
        } else {
            Some(Err(TrustFailure::Expired {
                key_id: id,
                name: first,
            }
            .into()))
        }
    }

    /// The valid pinned public key named `name` (for patterns that need the
    /// peer's key in advance).
    pub fn pinned_key(&self, name: &str, now: u64) -> Result<Vec<u8>, Error> {
        self.pins_named(name)
            .filter(|p| p.is_valid(now) && self.revocation(&p.id).is_none())
            .max_by_key(|p| p.added)
            .and_then(|p| unb64(&p.public))
            .ok_or_else(|| KeyStoreError::NotFound(name.into()).into())
    }
}

/// How a peer's static key is judged after the handshake.
#[derive(Debug, Clone)]
pub enum TrustPolicy {
    /// Only pinned, unexpired, unrevoked keys.
    Pinned(TrustStore),
    /// As `Pinned`, but an unknown key is pinned on first use (and saved).
    /// Revoked and expired keys still fail.
    Tofu(TrustStore),
    /// Anything (tests only).
    AllowAny,
}

impl TrustPolicy {
    /// Checks the peer's static key at `now` (Unix seconds). Fails with
    /// [`TrustFailure::Revoked`], [`TrustFailure::Expired`] or
    /// [`TrustFailure::Unknown`].
    pub fn check(&mut self, remote_static: &[u8], now: u64) -> Result<(), Error> {
        match self {
            TrustPolicy::AllowAny => Ok(()),
            TrustPolicy::Pinned(store) => store.judge(remote_static, now).unwrap_or_else(|| {
                Err(TrustFailure::Unknown {
                    key_id: key_id(remote_static),
                }
                .into())
            }),
            TrustPolicy::Tofu(store) => match store.judge(remote_static, now) {
                Some(result) => result,
                None => {
                    let id = key_id(remote_static);
                    let name = format!("tofu-{}", &id[..16]);
                    store.data.pins.push(Pin {
                        name: name.clone(),
                        id: id.clone(),
                        key_type: KeyType::X25519,
                        public: b64(remote_static),
                        signing_public: None,
                        added: now,
                        expires: None,
                        valid_until: None,
                        rotated_to: None,
                        rotated_from: None,
                        tofu: true,
                    });
                    store.save_and_log(AuditEvent::new(
                        "trust",
                        Some(&id),
                        Some(&name),
                        Some("trust on first use".into()),
                    ))
                }
            },
        }
    }

    /// [`check`](Self::check) for an optional key: `None` fails with
    /// [`TrustFailure::NoRemoteKey`] unless the policy is `AllowAny`.
    pub fn check_optional(&mut self, remote_static: Option<&[u8]>, now: u64) -> Result<(), Error> {
        match (remote_static, &self) {
            (Some(key), _) => self.check(key, now),
            (None, TrustPolicy::AllowAny) => Ok(()),
            (None, _) => Err(TrustFailure::NoRemoteKey.into()),
        }
    }
}
