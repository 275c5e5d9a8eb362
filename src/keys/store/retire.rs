//! Revocation and destruction: the store's changes that only withdraw
//! trust, and so still run while the audit log or the index is damaged.

use std::path::Path;

use super::{in_token_error, read_private, KeyStore};
use crate::error::{Error, KeyStoreError};
use crate::keys::audit::AuditEvent;
use crate::keys::encrypted::Passphrase;
use crate::keys::fsutil::{corrupt, overwrite_and_remove, read_file, MAX_KEY_FILE};
use crate::keys::index::{Index, KeyEntry, KeyStatus};
use crate::keys::now_unix;
use crate::keys::paths::StorePaths;

impl KeyStore {
    /// Revokes every key named `name` (all its rotations), or the one key
    /// with id `name`: they never load again. Works while the audit log is
    /// broken (the break is still reported by `verify`). Returns the
    /// entries revoked.
    pub fn revoke(&mut self, name: &str, reason: &str) -> Result<Vec<KeyEntry>, Error> {
        self.index.lookup(name)?;
        self.transact_as(true, |index, _journal, _paths| {
            let ids: Vec<String> = if index.keys.iter().any(|e| e.name == name) {
                index
                    .keys
                    .iter()
                    .filter(|e| e.name == name)
                    .map(|e| e.id.clone())
                    .collect()
            } else {
                vec![index.lookup(name)?.id.clone()]
            };
            let now = now_unix();
            let mut revoked = Vec::new();
            for id in &ids {
                if let Some(entry) = index.entry_mut(id) {
                    if entry.status != KeyStatus::Destroyed {
                        entry.status = KeyStatus::Revoked;
                    }
                    entry.status_changed = Some(now);
                    entry.revoked_reason = Some(reason.into());
                    revoked.push(entry.clone());
                }
            }
            let last = revoked
                .last()
                .cloned()
                .ok_or_else(|| KeyStoreError::NotFound(name.into()))?;
            let detail = if ids.len() > 1 {
                format!("{reason} (keys: {})", ids.join(","))
            } else {
                reason.to_string()
            };
            let event = AuditEvent::new("revoke", Some(&last.id), Some(&last.name), Some(detail));
            Ok((revoked, event))
        })
    }

    /// Overwrites and removes the private key file and marks the entry
    /// destroyed; the public record stays for the audit trail. An
    /// encrypted key's passphrase is proven first. The file is always
    /// `keys/<id>.pem` inside the store, and it is only touched if its hash
    /// is the one recorded.
    pub fn destroy(
        &mut self,
        name: &str,
        passphrase: Option<&Passphrase>,
    ) -> Result<KeyEntry, Error> {
        let entry = self.index.lookup(name)?.clone();
        if entry.status == KeyStatus::Destroyed {
            return Err(KeyStoreError::Destroyed(entry.name).into());
        }
        in_token_error(&entry)?;
        let path = self.paths.key_file(&entry.id)?;
        let exists = std::fs::symlink_metadata(&path).is_ok();
        if entry.encrypted && exists {
            read_private(&self.paths, &entry, passphrase)?;
        }
        self.transact_as(true, |index, _journal, paths| {
            let current = index
                .entry_mut(&entry.id)
                .ok_or_else(|| KeyStoreError::NotFound(name.into()))?;
            if current.status == KeyStatus::Destroyed {
                return Err(KeyStoreError::Destroyed(current.name.clone()).into());
            }
            // Commit first, remove after (still under the lock): a crash in
            // between leaves a key that never loads again and a file the
            // next locked open removes, never a live key without its file.
            let path = paths.key_file(&current.id)?;
            if std::fs::symlink_metadata(&path).is_ok() && !file_matches(&path, current)? {
                return Err(corrupt(
                    &path,
                    "it is not a regular file with the SHA-256 recorded in store.json; \
                     refusing to overwrite it",
                ));
            }
            current.status = KeyStatus::Destroyed;
            current.status_changed = Some(now_unix());
            let done = current.clone();
            let event = AuditEvent::new("destroy", Some(&done.id), Some(&done.name), None);
            Ok((done, event))
        })
    }
}

/// True if `path` is a regular file whose hash is the one `entry` records.
fn file_matches(path: &Path, entry: &KeyEntry) -> Result<bool, Error> {
    let is_file = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
    if !is_file {
        return Ok(false);
    }
    let bytes = read_file(path, MAX_KEY_FILE)?.unwrap_or_default();
    Ok(hex::encode(crate::crypto::hash::sha256(&[&bytes[..]])) == entry.file_sha256)
}

/// Under the lock: overwrites and removes the files of destroyed keys that
/// are still there (only files with the recorded hash).
pub(super) fn complete_destructions(index: &Index, paths: &StorePaths) -> Result<(), Error> {
    for entry in index
        .keys
        .iter()
        .filter(|e| e.status == KeyStatus::Destroyed)
    {
        let path = paths.key_file(&entry.id)?;
        if file_matches(&path, entry)? {
            overwrite_and_remove(&path)?;
        }
    }
    Ok(())
}
