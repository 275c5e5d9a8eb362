//! The trust store (`trust.json`): pinned peer keys with names and
//! revocation entries. Changes run under the store lock on a fresh read of
//! the file (see `journal.rs`); a long-running holder re-reads the file
//! when it changes on disk ([`TrustStore::refresh`]), so other processes'
//! revocations and pins count from the next handshake on.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::audit::{AuditEvent, AuditLog};
use super::fsutil::{corrupt, ensure_dir, io_err, parent_dir, write_atomic};
use super::index::KeyType;
use super::journal::Journal;
use super::lock::StoreLock;
use super::trust_file::{
    check_integrity, file_identity, file_name, read_trust_file, restore_logged_revocations, stamp,
    Stamp, TrustFile,
};
use super::{b64, key_id, now_unix, unb64};
use crate::error::{Error, KeyStoreError, TrustFailure};

/// A pinned peer key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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

    pub(crate) fn new(name: &str, key_type: KeyType, public: &[u8], now: u64) -> Self {
        Pin {
            name: name.into(),
            id: key_id(public),
            key_type,
            public: b64(public),
            signing_public: None,
            added: now,
            expires: None,
            valid_until: None,
            rotated_to: None,
            rotated_from: None,
            tofu: false,
        }
    }
}

/// A revoked key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Revocation {
    /// The key's id.
    pub key_id: String,
    /// When it was revoked, Unix seconds.
    pub time: u64,
    /// Why.
    pub reason: String,
}

/// A pin removed by `unpin`, remembered so that revoking the name later
/// still covers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FormerPin {
    pub(crate) name: String,
    pub(crate) id: String,
}

/// The trust decisions: what the audit log's hash covers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct TrustData {
    #[serde(default)]
    pub(crate) pins: Vec<Pin>,
    #[serde(default)]
    pub(crate) revocations: Vec<Revocation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) former: Vec<FormerPin>,
}

impl TrustData {
    pub(crate) fn sha256(&self) -> String {
        hex::encode(crate::crypto::hash::sha256(&[
            &serde_json::to_vec(self).unwrap_or_default()
        ]))
    }

    /// True if the file would grant or withdraw nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.pins.is_empty() && self.revocations.is_empty() && self.former.is_empty()
    }

    pub(crate) fn revocation(&self, key_id: &str) -> Option<&Revocation> {
        self.revocations.iter().find(|r| r.key_id == key_id)
    }

    pub(crate) fn add_revocation(&mut self, key_id: &str, reason: &str, time: u64) {
        if self.revocation(key_id).is_none() {
            self.revocations.push(Revocation {
                key_id: key_id.into(),
                time,
                reason: reason.into(),
            });
        }
    }
}

/// How often a reader re-reads a trust file that writers keep replacing
/// before it reports what it found.
const MAX_REREADS: u32 = 20;

/// Pinned peers and revocations, saved atomically to one JSON file.
#[derive(Debug, Clone)]
pub struct TrustStore {
    path: PathBuf,
    data: TrustData,
    audit: Option<AuditLog>,
    /// Check the file against the audit log when (re)reading it.
    checked: bool,
    stamp: Option<Stamp>,
}

impl TrustStore {
    /// Opens the trust store at `path` (empty if the file does not exist),
    /// unaudited: changes are locked by `<file>.lock` and not logged. A
    /// malformed file is an error and is left untouched. The file's
    /// directory must exist by the first change: it is not created. For a key store's
    /// own `trust.json` use [`KeyStore::trust_store`](super::KeyStore::trust_store),
    /// which checks the file against the store's audit log.
    ///
    /// A `trust.json` next to a store's audit log is that store's: opening
    /// it unaudited is refused, because a change made without its audit
    /// line would make the store report the file as corrupted from then on.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        if file_name(&path) == super::paths::TRUST
            && parent_dir(&path).join(super::paths::AUDIT).exists()
        {
            return Err(crate::error::ConfigError::Invalid(format!(
                "{} belongs to the key store beside it: open it with KeyStore::trust_store() \
                 (or TrustStore::open_audited), so its changes are logged",
                path.display()
            ))
            .into());
        }
        Self::open_with(path, None, false)
    }

    /// Opens the trust store and checks it against `audit` (the store whose
    /// lock and log it shares): every change is logged with the hash of the
    /// file's contents, so an edit made outside akex, a rolled-back copy or
    /// a cut log is reported as corruption. The check is repeated whenever
    /// [`refresh`](Self::refresh) finds the file changed.
    pub fn open_audited(path: impl Into<PathBuf>, audit: AuditLog) -> Result<Self, Error> {
        Self::open_with(path.into(), Some(audit), true)
    }

    /// Opens the trust store for changes that only remove trust (revoke,
    /// unpin) without the integrity check, which must never block a
    /// revocation. Changes are still locked and logged.
    pub fn open_for_revocation(path: impl Into<PathBuf>, audit: AuditLog) -> Result<Self, Error> {
        Self::open_with(path.into(), Some(audit), false)
    }

    fn open_with(path: PathBuf, audit: Option<AuditLog>, checked: bool) -> Result<Self, Error> {
        let mut store = TrustStore {
            path,
            data: TrustData::default(),
            audit,
            checked,
            stamp: None,
        };
        store.reread()?;
        Ok(store)
    }

    fn reread(&mut self) -> Result<(), Error> {
        let mut attempts = 0;
        loop {
            let before = stamp(&self.path);
            let file = read_trust_file(&self.path)?;
            if let (true, Some(audit)) = (self.checked, &self.audit) {
                if let Err(e) = check_integrity(&self.path, file.as_ref(), audit) {
                    // Readers take no lock: a writer that replaced the file
                    // after we read it may have logged the newer version
                    // already. Only a file that stayed put is judged.
                    attempts += 1;
                    if attempts < MAX_REREADS && stamp(&self.path) != before {
                        continue;
                    }
                    return Err(e);
                }
            }
            self.data = file.map(|f| f.data).unwrap_or_default();
            // A write between the stat and the read is caught by the next refresh.
            self.stamp = before;
            return Ok(());
        }
    }

    /// Re-reads the file if it changed on disk since it was last read (one
    /// `stat`, about a microsecond, when it did not). Returns true if it
    /// was re-read. A file that became corrupt is an error, so a policy
    /// using it fails closed.
    pub fn refresh(&mut self) -> Result<bool, Error> {
        if stamp(&self.path) == self.stamp {
            return Ok(false);
        }
        self.reread()?;
        Ok(true)
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
        self.data.revocation(key_id)
    }

    /// The pins with this name.
    pub fn pins_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Pin> + 'a {
        self.data.pins.iter().filter(move |p| p.name == name)
    }

    /// Runs one change under the lock on the file as it is on disk now.
    /// `change` returns the audit event, or `None` when nothing changed
    /// (then nothing is written). Never writes back an older copy.
    pub(crate) fn modify<T>(
        &mut self,
        change: impl FnOnce(
            &mut TrustData,
            Option<&mut Journal>,
        ) -> Result<(T, Option<AuditEvent>), Error>,
    ) -> Result<T, Error> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // A key store's own directory is made on demand; any other
            // trust file's must exist: a mistyped path is an error, not a
            // fresh, empty trust store somewhere new.
            let own = self
                .audit
                .as_ref()
                .is_some_and(|audit| audit.path().with_file_name(super::paths::TRUST) == self.path);
            if own {
                ensure_dir(dir)?;
            } else if !dir.is_dir() {
                return Err(io_err(
                    dir,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the trust file's directory does not exist",
                    ),
                ));
            }
        }
        let mut journal = match &self.audit {
            Some(audit) => {
                let default = audit.path().with_file_name(super::paths::TRUST);
                let extra: Vec<&Path> = if self.path == default {
                    Vec::new()
                } else {
                    vec![self.path.as_path()]
                };
                let journal = Journal::open(audit, &extra)?;
                if !extra.is_empty() {
                    let identity = file_identity(&self.path, audit);
                    super::journal::register_trust_file(
                        super::fsutil::parent_dir(audit.path()),
                        Path::new(&identity),
                    )?;
                }
                Some(journal)
            }
            None => None,
        };
        let _plain_lock = match &journal {
            None => {
                let mut lock = self.path.clone().into_os_string();
                lock.push(".lock");
                Some(StoreLock::acquire(Path::new(&lock))?)
            }
            Some(_) => None,
        };
        let on_disk = read_trust_file(&self.path)?;
        // Checked again under the lock, on the version about to be changed:
        // an audited store refuses an edited file; a revocation goes ahead
        // (it must never be blocked) and its audit line records the edit,
        // so rewriting the file does not silently adopt a forged pin.
        let edited = match &self.audit {
            Some(audit) => match check_integrity(&self.path, on_disk.as_ref(), audit) {
                Ok(()) => None,
                Err(e) if self.checked => return Err(e),
                Err(e) => Some(e),
            },
            None => None,
        };
        let mut data = on_disk.map(|f| f.data).unwrap_or_default();
        let mut restored = 0;
        if let (Some(_), Some(audit)) = (&edited, &self.audit) {
            restored = restore_logged_revocations(&self.path, &mut data, audit)?;
        }
        let (value, event) = change(&mut data, journal.as_mut())?;
        let Some(mut event) = event else {
            self.data = data;
            self.stamp = None; // re-read at the next refresh
            return Ok(value);
        };
        let mut file = TrustFile { data, audit: None };
        if let Some(journal) = journal.as_mut() {
            if let Some(Error::KeyStore(KeyStoreError::Corrupt { reason, .. })) = &edited {
                let note = format!(
                    "the trust file had been changed outside akex: {reason}; \
                     {restored} logged revocation(s) put back"
                );
                event.detail = Some(match event.detail.take() {
                    Some(d) => format!("{d}; {note}"),
                    None => note,
                });
            }
            event.trust_sha256 = Some(file.data.sha256());
            event.trust_file = self.audit.as_ref().map(|a| file_identity(&self.path, a));
            file.audit = Some(journal.next_line(&event, now_unix())?);
        }
        let json =
            serde_json::to_vec_pretty(&file).map_err(|e| corrupt(&self.path, e.to_string()))?;
        write_atomic(&self.path, &json)?;
        if let (Some(journal), Some(commit)) = (journal.as_mut(), &file.audit) {
            journal.append_committed(commit);
        }
        self.data = file.data;
        self.stamp = stamp(&self.path);
        Ok(value)
    }

    /// Pins `public` under `name`. Pinning a key that is already pinned under
    /// the same name is a no-op. Refused while the audit log is broken, and
    /// for a key whose length fits no key of `key_type` (an `X25519` pin may
    /// also hold the X25519 + ML-KEM-768 key of the PQ protocols).
    pub fn pin(
        &mut self,
        name: &str,
        key_type: KeyType,
        public: &[u8],
        signing_public: Option<&[u8]>,
        expires: Option<u64>,
    ) -> Result<Pin, Error> {
        if !fits_pin_type(key_type, public.len()) {
            return Err(crate::error::ConfigError::InvalidKey(
                "the public key's length fits no key of its type",
            )
            .into());
        }
        let id = key_id(public);
        self.modify(|data, journal| {
            if let Some(journal) = journal {
                journal.require_intact()?;
            }
            if let Some(existing) = data.pins.iter().find(|p| p.id == id && p.name == name) {
                return Ok((existing.clone(), None));
            }
            let mut pin = Pin::new(name, key_type, public, now_unix());
            pin.signing_public = signing_public.map(b64);
            pin.expires = expires;
            data.pins.push(pin.clone());
            let event = AuditEvent::new("trust", Some(&pin.id), Some(name), None);
            Ok((pin, Some(event)))
        })
    }

    /// Removes every pin named `name` (remembering their ids, so revoking
    /// the name later covers them); returns how many.
    pub fn unpin(&mut self, name: &str) -> Result<usize, Error> {
        self.modify(|data, _| {
            let (gone, kept): (Vec<Pin>, Vec<Pin>) =
                data.pins.drain(..).partition(|p| p.name == name);
            data.pins = kept;
            if gone.is_empty() {
                return Err(KeyStoreError::NotFound(name.into()).into());
            }
            data.former.extend(gone.iter().map(|p| FormerPin {
                name: p.name.clone(),
                id: p.id.clone(),
            }));
            let event = AuditEvent::new(
                "untrust",
                None,
                Some(name),
                Some(format!("{} pin(s)", gone.len())),
            );
            Ok((gone.len(), Some(event)))
        })
    }

    /// Adds a revocation for `key_id` (idempotent).
    pub fn revoke(&mut self, key_id: &str, reason: &str, time: u64) -> Result<(), Error> {
        self.revoke_ids(&[key_id.to_string()], None, reason, time)
    }

    /// Revokes every key ever pinned under `name` (current pins, pins
    /// replaced by rotations, pins removed by `unpin`) and the extra
    /// `ids` (keys of our own store held under that name). Returns the
    /// ids revoked; none is an error.
    pub fn revoke_name(
        &mut self,
        name: &str,
        ids: &[String],
        reason: &str,
        time: u64,
    ) -> Result<Vec<String>, Error> {
        let mut all = ids.to_vec();
        let mut from_disk = Vec::new();
        self.modify(|data, _| {
            from_disk.extend(
                data.pins
                    .iter()
                    .map(|p| (&p.name, &p.id))
                    .chain(data.former.iter().map(|f| (&f.name, &f.id)))
                    .filter(|(n, _)| *n == name)
                    .map(|(_, id)| id.clone()),
            );
            Ok(((), None))
        })?;
        for id in from_disk {
            if !all.contains(&id) {
                all.push(id);
            }
        }
        if all.is_empty() {
            return Err(KeyStoreError::NotFound(name.into()).into());
        }
        self.revoke_ids(&all, Some(name), reason, time)?;
        Ok(all)
    }

    fn revoke_ids(
        &mut self,
        ids: &[String],
        name: Option<&str>,
        reason: &str,
        time: u64,
    ) -> Result<(), Error> {
        self.modify(|data, _| {
            for id in ids {
                data.add_revocation(id, reason, time);
            }
            let detail = if ids.len() > 1 {
                format!("{reason} (keys: {})", ids.join(","))
            } else {
                reason.to_string()
            };
            let event =
                AuditEvent::new("revoke", ids.last().map(String::as_str), name, Some(detail));
            Ok(((), Some(event)))
        })
    }

    /// Judges `remote_static` at `now`: revoked, then pinned (under
    /// `expected` if given) and valid, then pinned but expired; `None` if it
    /// is not pinned at all.
    pub(crate) fn judge(
        &self,
        remote_static: &[u8],
        expected: Option<&str>,
        now: u64,
    ) -> Option<Result<(), Error>> {
        let id = key_id(remote_static);
        if let Some(r) = self.revocation(&id) {
            let reason = r.reason.clone();
            return Some(Err(TrustFailure::Revoked { key_id: id, reason }.into()));
        }
        let public = b64(remote_static);
        let mut any_name = self
            .data
            .pins
            .iter()
            .filter(|p| p.public == public)
            .peekable();
        any_name.peek()?;
        let pins: Vec<&Pin> = any_name
            .filter(|p| expected.is_none_or(|n| p.name == n))
            .collect();
        let Some(first) = pins.first() else {
            let expected = expected.unwrap_or_default().to_string();
            return Some(Err(TrustFailure::WrongPeer {
                key_id: id,
                expected,
            }
            .into()));
        };
        if pins.iter().any(|p| p.is_valid(now)) {
            Some(Ok(()))
        } else {
            let name = first.name.clone();
            Some(Err(TrustFailure::Expired { key_id: id, name }.into()))
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

/// True if a public key of `len` bytes can be a key of `key_type` (an
/// `X25519` pin may also hold the X25519 + ML-KEM-768 key of the PQ
/// protocols).
pub(crate) fn fits_pin_type(key_type: KeyType, len: usize) -> bool {
    let lengths: &[usize] = match key_type {
        KeyType::X25519 => &[32, 32 + crate::crypto::kem::ENCAPSULATION_KEY_LEN],
        KeyType::Ed25519 => &[32],
        KeyType::P256 => &[crate::crypto::p256::PUBLIC_KEY_LEN],
        KeyType::Mlkem768 => &[crate::crypto::kem::ENCAPSULATION_KEY_LEN],
    };
    lengths.contains(&len)
}
