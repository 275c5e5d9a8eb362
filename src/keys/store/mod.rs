//! The key store: a directory with an index (`store.json`), one private key
//! file per identity under `keys/<id>.pem`, the trust store (`trust.json`)
//! and the audit log (`audit.jsonl`). Opening and loading never write;
//! every change goes through the store lock (see `journal.rs`).

use std::path::{Path, PathBuf};

use super::audit::{AuditEvent, AuditLog, AuditReport};
use super::encrypted::{self, Passphrase, Protection};
use super::fsutil::{corrupt, ensure_dir, io_err, read_file, write_atomic, MAX_KEY_FILE};
use super::index::{Index, KeyEntry, KeyStatus, KeyType};
use super::index_check::{index_damage, read_checked_index, restore_logged_statuses};
use super::journal::{commit_of, Journal};
use super::material::{LoadedKey, Material};
use super::paths::StorePaths;
use super::{b64, key_id, now_unix};

mod retire;
use crate::error::{Error, KeyStoreError};
use retire::complete_destructions;

/// A directory of identities. See the module docs for the layout.
#[derive(Debug)]
pub struct KeyStore {
    paths: StorePaths,
    index: Index,
    audit: AuditLog,
    /// Why the index does not match the audit log (edited or rolled back),
    /// if it does not: keys are then not loaded.
    damage: Option<String>,
}

/// A sealed key file ready to be written, made outside the lock (scrypt is
/// slow and must not hold up other writers).
pub(crate) struct Sealed {
    pub(crate) entry: KeyEntry,
    pub(crate) file: zeroize::Zeroizing<Vec<u8>>,
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

    /// Opens the store in `dir`. An existing store is only read (a
    /// read-only store opens); a directory that does not exist is created
    /// (mode 0700), and nothing else is written. A corrupted index is an error and is left untouched; so is a
    /// missing index while keys, a trust store or an audit log exist.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        if !dir.exists() {
            ensure_dir(&dir)?;
        }
        let paths = StorePaths::new(dir);
        let audit = AuditLog::new(paths.audit());
        let (index, damage) = read_checked_index(&paths, &audit)?;
        Ok(KeyStore {
            paths,
            index,
            audit,
            damage,
        })
    }

    /// Re-reads the index from disk.
    pub fn reload(&mut self) -> Result<(), Error> {
        (self.index, self.damage) = read_checked_index(&self.paths, &self.audit)?;
        Ok(())
    }

    /// Why `store.json` does not match the audit log, if it does not: it
    /// was edited outside akex, or is a rolled-back copy (a revoked key
    /// could be active again). Keys of such a store are not loaded;
    /// `revoke` and `destroy` still work, and put back every revocation
    /// and destruction the log records before they write.
    pub fn index_damage(&self) -> Option<&str> {
        self.damage.as_deref()
    }

    pub(crate) fn check_undamaged(&self) -> Result<(), Error> {
        match &self.damage {
            Some(reason) => Err(corrupt(&self.paths.index(), reason.clone())),
            None => Ok(()),
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        self.paths.dir()
    }

    pub(crate) fn paths(&self) -> &StorePaths {
        &self.paths
    }

    /// The trust store's path in this directory.
    pub fn trust_path(&self) -> PathBuf {
        self.paths.trust()
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Opens this store's `trust.json`, checked against the audit log
    /// ([`TrustStore::open_audited`](super::TrustStore::open_audited)): a
    /// file edited outside akex, a
    /// rolled-back copy or a cut log is an error, not trusted pins.
    pub fn trust_store(&self) -> Result<super::TrustStore, Error> {
        super::TrustStore::open_audited(self.trust_path(), self.audit.clone())
    }

    /// Checks the audit log against what the index and the trust store
    /// committed (so a deleted or cut log is detected), without writing.
    pub fn audit_report(&self) -> Result<AuditReport, Error> {
        // The audited `--trust-store` files too: a line one committed is
        // in the log, or is what the next locked open appends.
        let mut files = vec![self.paths.index(), self.paths.trust()];
        for path in super::journal::registered_trust_files(self.paths.dir()) {
            if !files.contains(&path) {
                files.push(path);
            }
        }
        let commits: Vec<_> = files
            .iter()
            .filter_map(|f| commit_of(f).map(|c| (f.clone(), c)))
            .collect();
        let borrowed: Vec<_> = commits.iter().map(|(f, c)| (f.as_path(), c)).collect();
        self.audit.check(&borrowed)
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> &[KeyEntry] {
        &self.index.keys
    }

    /// The current entry for `name`: the newest one that is not retired,
    /// else the newest one.
    pub fn find(&self, name: &str) -> Option<&KeyEntry> {
        self.index.find(name)
    }

    /// The entry with id `id` (or a unique id prefix of at least 8 hex digits).
    pub fn find_id(&self, id: &str) -> Option<&KeyEntry> {
        self.index.find_id(id)
    }

    /// Runs one change under the store lock: `change` gets the index as it
    /// is on disk now and returns the audit event; the index is then
    /// committed with that event's line, and the line appended.
    pub(crate) fn transact<T>(
        &mut self,
        change: impl FnOnce(&mut Index, &mut Journal, &StorePaths) -> Result<(T, AuditEvent), Error>,
    ) -> Result<T, Error> {
        self.transact_as(false, change)
    }

    /// [`transact`](Self::transact); a change that only removes trust
    /// (`removes_trust`: revoke, destroy) goes ahead on an index that was
    /// edited or rolled back, after putting back what the log records.
    pub(crate) fn transact_as<T>(
        &mut self,
        removes_trust: bool,
        change: impl FnOnce(&mut Index, &mut Journal, &StorePaths) -> Result<(T, AuditEvent), Error>,
    ) -> Result<T, Error> {
        ensure_dir(self.paths.dir())?;
        let mut journal = Journal::open(&self.audit, &[])?;
        let mut index = read_index(&self.paths)?;
        // Under the lock no writer races the check.
        let damage = index_damage(&index, &self.audit);
        let mut repaired = None;
        if let Some(reason) = damage {
            if !removes_trust {
                // A damaged log is the first thing to report.
                journal.require_intact()?;
                return Err(corrupt(&self.paths.index(), reason));
            }
            let n = restore_logged_statuses(&mut index, &self.audit)?;
            repaired = Some(format!(
                "store.json had been changed outside akex: {reason}; \
                 {n} logged revocation(s) or destruction(s) put back"
            ));
        }
        // A destroy killed after its commit left the file: finish it.
        let _ = complete_destructions(&index, &self.paths);
        let known: Vec<String> = index.keys.iter().map(|e| e.id.clone()).collect();
        let outcome = (|| {
            let (value, mut event) = change(&mut index, &mut journal, &self.paths)?;
            if let Some(note) = repaired {
                event.detail = Some(match event.detail.take() {
                    Some(d) => format!("{d}; {note}"),
                    None => note,
                });
            }
            event.index_sha256 = Some(index.keys_sha256());
            let commit = journal.next_line(&event, now_unix())?;
            index.audit = Some(commit.clone());
            let path = self.paths.index();
            write_atomic(&path, &index.to_json(&path)?)?;
            Ok((value, commit))
        })();
        let (value, commit) = match outcome {
            Ok(done) => done,
            Err(e) => {
                remove_uncommitted_key_files(&self.paths, &known, &index);
                return Err(e);
            }
        };
        journal.append_committed(&commit);
        self.index = index;
        self.damage = None;
        complete_destructions(&self.index, &self.paths)?;
        Ok(value)
    }

    /// Generates a new identity named `name`, expiring at `expires` (Unix
    /// seconds, absolute; `None` never). Fails if an active key with
    /// that name exists, or if the passphrase does not open the store's
    /// existing encrypted keys (checked before anything is written).
    pub fn generate(
        &mut self,
        name: &str,
        key_type: KeyType,
        protection: &Protection,
        expires: Option<u64>,
    ) -> Result<KeyEntry, Error> {
        check_name(name)?;
        if self
            .index
            .find(name)
            .is_some_and(|e| e.status == KeyStatus::Active)
        {
            return Err(KeyStoreError::AlreadyExists(name.into()).into());
        }
        let checked = self.check_passphrase(protection)?;
        let sealed = seal_new(
            name,
            &Material::generate(key_type)?,
            protection,
            expires,
            None,
        )?;
        let entry = sealed.entry.clone();
        self.transact(|index, journal, paths| {
            journal.require_intact()?;
            if index
                .keys
                .iter()
                .any(|e| e.name == name && e.status == KeyStatus::Active)
            {
                return Err(KeyStoreError::AlreadyExists(name.into()).into());
            }
            recheck_passphrase(index, paths, protection, checked.as_deref())?;
            write_key_file(paths, &sealed)?;
            index.keys.push(sealed.entry);
            let event = AuditEvent::new(
                "generate",
                Some(&entry.id),
                Some(name),
                Some(format!("type={key_type}")),
            );
            Ok((entry.clone(), event))
        })
    }

    /// Checks that `protection`'s passphrase opens the newest encrypted key
    /// of the store (none: nothing to check). Returns the id checked.
    pub(crate) fn check_passphrase(
        &self,
        protection: &Protection,
    ) -> Result<Option<String>, Error> {
        let Some(passphrase) = protection.passphrase_ref() else {
            return Ok(None);
        };
        match newest_encrypted(&self.index) {
            None => Ok(None),
            Some(entry) => {
                read_private(&self.paths, entry, Some(passphrase))?;
                Ok(Some(entry.id.clone()))
            }
        }
    }

    /// Loads the current key named `name` (or with id `name`), checking that
    /// it is usable now. Never writes: works on a read-only store. Record
    /// the load in the audit log with [`record_load`](Self::record_load) if
    /// wanted.
    pub fn load(&self, name: &str, passphrase: Option<&Passphrase>) -> Result<LoadedKey, Error> {
        self.load_at(name, passphrase, now_unix())
    }

    /// [`load`](Self::load) at time `now`.
    pub fn load_at(
        &self,
        name: &str,
        passphrase: Option<&Passphrase>,
        now: u64,
    ) -> Result<LoadedKey, Error> {
        self.check_undamaged()?;
        let entry = self.index.lookup(name)?;
        entry.check_usable(now)?;
        read_private(&self.paths, entry, passphrase)
    }

    /// Logs a `load` event for `entry` (optional: loading itself never
    /// writes); for a key in a PKCS#11 token, with its URI (the first use
    /// of the token key by this process).
    pub fn record_load(&self, entry: &KeyEntry) -> Result<(), Error> {
        self.audit.append(&AuditEvent::new(
            "load",
            Some(&entry.id),
            Some(&entry.name),
            entry.pkcs11.as_ref().map(|uri| format!("pkcs11={uri}")),
        ))
    }

    /// Reads and decrypts the private key of `entry` without status checks.
    pub(crate) fn read_private(
        &self,
        entry: &KeyEntry,
        passphrase: Option<&Passphrase>,
    ) -> Result<LoadedKey, Error> {
        read_private(&self.paths, entry, passphrase)
    }
}

/// Refuses file operations on a key held in a PKCS#11 token.
pub(crate) fn in_token_error(entry: &KeyEntry) -> Result<(), Error> {
    match &entry.pkcs11 {
        Some(uri) => Err(KeyStoreError::InToken {
            name: entry.name.clone(),
            uri: uri.clone(),
        }
        .into()),
        None => Ok(()),
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    let invalid = |why: &str| -> Error {
        crate::error::ConfigError::Invalid(format!("key name {name:?}: {why}")).into()
    };
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
        return Err(invalid("key names must be 1-128 printable characters"));
    }
    if name.trim() != name || matches!(name, "." | "..") || name.contains(['/', '\\']) {
        return Err(invalid(
            "no leading or trailing spaces, no '/' or '\\', not '.' or '..'",
        ));
    }
    // `--name` also takes a key id: a name that looks like one would be
    // ambiguous.
    if name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("32 hex digits would read as a key id"));
    }
    Ok(())
}

/// The index on disk; a missing one is an empty store only if nothing else
/// of a store is there.
pub(crate) fn read_index(paths: &StorePaths) -> Result<Index, Error> {
    if let Some(index) = Index::read(&paths.index())? {
        return Ok(index);
    }
    let keys_present = std::fs::read_dir(paths.keys_dir()).is_ok_and(|mut d| d.next().is_some());
    let others = [paths.audit(), paths.trust(), paths.rotations_dir()];
    if keys_present || others.iter().any(|p| p.exists()) {
        return Err(corrupt(
            &paths.index(),
            "the index is missing but keys, a trust store or an audit log exist \
             (restore store.json from a backup; akex will not start a new index over them)",
        ));
    }
    Ok(Index::empty())
}

fn newest_encrypted(index: &Index) -> Option<&KeyEntry> {
    index
        .keys
        .iter()
        .rev()
        .find(|e| e.encrypted && e.status != KeyStatus::Destroyed)
}

/// Under the lock: if encrypted keys appeared since the passphrase was
/// checked (a concurrent first `generate`), check it against them too.
pub(crate) fn recheck_passphrase(
    index: &Index,
    paths: &StorePaths,
    protection: &Protection,
    checked: Option<&str>,
) -> Result<(), Error> {
    let Some(passphrase) = protection.passphrase_ref() else {
        return Ok(());
    };
    match newest_encrypted(index) {
        Some(entry)
            if checked.is_none_or(|id| {
                index
                    .find_id(id)
                    .is_none_or(|e| e.status == KeyStatus::Destroyed)
            }) =>
        {
            read_private(paths, entry, Some(passphrase)).map(drop)
        }
        _ => Ok(()),
    }
}

/// Seals new key material into its file and index entry (no I/O).
pub(crate) fn seal_new(
    name: &str,
    material: &Material,
    protection: &Protection,
    expires: Option<u64>,
    replaces: Option<String>,
) -> Result<Sealed, Error> {
    let public = material
        .public()
        .ok_or_else(|| KeyStoreError::Unsupported("key generation failed".into()))?;
    let file = encrypted::seal(&material.to_pkcs8()?, protection)?;
    let entry = KeyEntry {
        id: key_id(&public),
        name: name.into(),
        key_type: material.key_type,
        public: b64(&public),
        signing_public: b64(&material.signing_public()),
        created: now_unix(),
        expires,
        status: KeyStatus::Active,
        status_changed: None,
        revoked_reason: None,
        retire_at: None,
        replaced_by: None,
        replaces,
        encrypted: protection.is_encrypted(),
        file_sha256: hex::encode(crate::crypto::hash::sha256(&[&file[..]])),
        pkcs11: None,
    };
    Ok(Sealed { entry, file })
}

/// Writes a sealed key file (under the lock); never replaces a file.
/// After a change failed to commit (a full disk, say): removes the key
/// files it wrote for entries that neither the index before it (`known`)
/// nor the index now on disk holds, so nothing is left orphaned. If the
/// index cannot be read, nothing is removed.
fn remove_uncommitted_key_files(paths: &StorePaths, known: &[String], changed: &Index) {
    let Ok(on_disk) = read_index(paths) else {
        return;
    };
    for entry in &changed.keys {
        let committed = known.contains(&entry.id) || on_disk.keys.iter().any(|e| e.id == entry.id);
        if !committed {
            if let Ok(path) = paths.key_file(&entry.id) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

pub(crate) fn write_key_file(paths: &StorePaths, sealed: &Sealed) -> Result<(), Error> {
    ensure_dir(&paths.keys_dir())?;
    let path = paths.key_file(&sealed.entry.id)?;
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(KeyStoreError::AlreadyExists(sealed.entry.id.clone()).into());
    }
    write_atomic(&path, &sealed.file)
}

pub(crate) fn read_private(
    paths: &StorePaths,
    entry: &KeyEntry,
    passphrase: Option<&Passphrase>,
) -> Result<LoadedKey, Error> {
    if entry.status == KeyStatus::Destroyed {
        return Err(KeyStoreError::Destroyed(entry.name.clone()).into());
    }
    in_token_error(entry)?;
    let path = paths.key_file(&entry.id)?;
    let bytes = read_file(&path, MAX_KEY_FILE)?
        .ok_or_else(|| io_err(&path, std::io::ErrorKind::NotFound.into()))?;
    if hex::encode(crate::crypto::hash::sha256(&[&bytes[..]])) != entry.file_sha256 {
        return Err(corrupt(
            &path,
            "its SHA-256 differs from the one recorded in store.json (truncated or modified)",
        ));
    }
    let blocks = encrypted::open(&bytes, entry.encrypted, passphrase, &entry.name, &path)?;
    let material = Material::from_pkcs8(entry.key_type, &blocks).ok_or_else(|| {
        if entry.encrypted {
            // A wrong passphrase that happens to pass the padding check.
            Error::from(KeyStoreError::WrongPassphrase(entry.name.clone()))
        } else {
            corrupt(&path, "malformed PKCS#8 key")
        }
    })?;
    if material.public().map(|p| b64(&p)).as_deref() != Some(&entry.public)
        || b64(&material.signing_public()) != entry.signing_public
    {
        return Err(corrupt(
            &path,
            "the private key does not match the recorded public key",
        ));
    }
    Ok(material.into_loaded(entry.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Behind the index hash (which catches an edited `file_sha256`): a
    /// key file whose hash is the recorded one but whose key is another
    /// is still refused once decrypted.
    #[test]
    fn a_decrypted_key_must_match_its_public_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = KeyStore::open(dir.path()).unwrap();
        let plain = Protection::InsecurePlaintext;
        let a = store.generate("a", KeyType::X25519, &plain, None).unwrap();
        let b = store.generate("b", KeyType::X25519, &plain, None).unwrap();
        let (a_path, b_path) = (
            store.paths.key_file(&a.id).unwrap(),
            store.paths.key_file(&b.id).unwrap(),
        );
        std::fs::copy(&b_path, &a_path).unwrap();
        let mut forged = a.clone();
        forged.file_sha256 = b.file_sha256.clone();
        match read_private(&store.paths, &forged, None) {
            Err(Error::KeyStore(KeyStoreError::Corrupt { reason, .. })) => {
                assert!(
                    reason.contains("does not match the recorded public key"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
