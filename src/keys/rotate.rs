//! Rotation on both sides: [`KeyStore::rotate`] makes the successor and the
//! signed statement; [`TrustStore::accept_rotation`] moves a peer's pin.
//!
//! No forks: a key rotates once. The store refuses to rotate a retired key,
//! and a trust store that accepted A → B refuses a second statement A → X
//! (typed [`KeyStoreError::Equivocation`], logged as `equivocation`): if A
//! leaked, its thief cannot name a successor of their own. A successor's
//! pin inherits the terms of the pin it replaces (expiry, TOFU), and an
//! announcement only moves the pin of the name the connection expected.

use super::audit::AuditEvent;
use super::encrypted::Protection;
use super::fsutil::{corrupt, ensure_dir, write_atomic};
use super::index::{Index, KeyEntry, KeyStatus};
use super::material::Material;
use super::paths::StorePaths;
use super::rotation::{decode_field, RotationStatement, MAX_ROTATION_CHAIN};
use super::store::{recheck_passphrase, seal_new, write_key_file, KeyStore};
use super::trust::{Pin, TrustStore};
use super::{b64, now_unix};
use crate::error::{Error, KeyStoreError};

impl KeyStore {
    /// Replaces the active key `name` by a new one of the same type, retires
    /// the old one after `overlap` seconds, writes the signed statement to
    /// `rotations/<old_id>.json` and returns (new entry, statement). The
    /// passphrase must open the old key (encrypted keys) and is checked
    /// before anything is written; a key that was already rotated is
    /// refused, so one key never names two successors. A key held in a
    /// PKCS#11 token is rotated in its token instead (`rotate_in_token`,
    /// feature `pkcs11`).
    pub fn rotate(
        &mut self,
        name: &str,
        protection: &Protection,
        overlap: u64,
    ) -> Result<(KeyEntry, RotationStatement), Error> {
        let now = now_unix();
        let old = self.rotatable(name, now)?;
        // The slow parts (scrypt) before the lock.
        let old_key = self.read_private(&old, protection.passphrase_ref())?;
        let checked = if old.encrypted {
            Some(old.id.clone())
        } else {
            self.check_passphrase(protection)?
        };
        let material = Material::generate(old.key_type)?;
        let sealed = seal_new(
            &old.name,
            &material,
            protection,
            old.expires,
            Some(old.id.clone()),
        )?;
        let mut statement = new_statement(&old, &sealed.entry, now, overlap);
        let message = statement.signed_message()?;
        statement.old_signature = b64(&old_key.sign(&message));
        statement.new_signature = b64(&material.sign(&message));
        self.commit_rotation(&old, sealed.entry.clone(), statement, |index, paths| {
            recheck_passphrase(index, paths, protection, checked.as_deref())?;
            write_key_file(paths, &sealed)
        })
    }

    /// The entry `name` if it may be rotated now: usable, active and not
    /// already rotated.
    pub(crate) fn rotatable(&self, name: &str, now: u64) -> Result<KeyEntry, Error> {
        let old = self
            .find(name)
            .cloned()
            .ok_or_else(|| KeyStoreError::NotFound(name.into()))?;
        old.check_usable(now)?;
        if old.status != KeyStatus::Active || old.replaced_by.is_some() {
            return Err(KeyStoreError::Retired(name.into()).into());
        }
        Ok(old)
    }

    /// Verifies the signed `statement` and commits the rotation `old` ->
    /// `new` under the lock: re-checks that `old` is still rotatable, runs
    /// `before` (writes the new key's file, if it has one), writes the
    /// statement, retires `old` and adds `new`, logged as `rotate`.
    pub(crate) fn commit_rotation(
        &mut self,
        old: &KeyEntry,
        new: KeyEntry,
        statement: RotationStatement,
        before: impl FnOnce(&Index, &StorePaths) -> Result<(), Error>,
    ) -> Result<(KeyEntry, RotationStatement), Error> {
        statement.verify()?;
        let json = serde_json::to_vec_pretty(&statement)
            .map_err(|e| corrupt(self.dir(), e.to_string()))?;
        let now = statement.created;
        self.transact(|index, journal, paths| {
            journal.require_intact()?;
            let current = index
                .keys
                .iter()
                .find(|e| e.id == old.id)
                .ok_or_else(|| KeyStoreError::NotFound(old.name.clone()))?;
            // Re-checked under the lock: a concurrent rotate or revoke wins.
            current.check_usable(now)?;
            if current.status != KeyStatus::Active || current.replaced_by.is_some() {
                return Err(KeyStoreError::Retired(old.name.clone()).into());
            }
            before(index, paths)?;
            ensure_dir(&paths.rotations_dir())?;
            write_atomic(&paths.rotation_file(&old.id)?, &json)?;
            if let Some(entry) = index.entry_mut(&old.id) {
                entry.status = KeyStatus::Retired;
                entry.status_changed = Some(now);
                entry.retire_at = Some(statement.overlap_until);
                entry.replaced_by = Some(new.id.clone());
            }
            index.keys.push(new.clone());
            let mut detail = format!(
                "replaces {} overlap_until={}",
                old.id, statement.overlap_until
            );
            if let Some(uri) = &new.pkcs11 {
                detail.push_str(&format!(" pkcs11={uri}"));
            }
            let event = AuditEvent::new("rotate", Some(&new.id), Some(&new.name), Some(detail));
            Ok(((new.clone(), statement.clone()), event))
        })
    }
}

/// The unsigned statement `old` -> `new` made at `now`.
pub(crate) fn new_statement(
    old: &KeyEntry,
    new: &KeyEntry,
    now: u64,
    overlap: u64,
) -> RotationStatement {
    RotationStatement {
        version: 1,
        name: old.name.clone(),
        key_type: old.key_type,
        old_id: old.id.clone(),
        old_public: old.public.clone(),
        old_signing_public: old.signing_public.clone(),
        new_id: new.id.clone(),
        new_public: new.public.clone(),
        new_signing_public: new.signing_public.clone(),
        created: now,
        overlap_until: now.saturating_add(overlap),
        old_signature: String::new(),
        new_signature: String::new(),
    }
}

fn bad(message: &str) -> Error {
    KeyStoreError::InvalidStatement(message.into()).into()
}

impl TrustStore {
    /// Accepts a rotation: the old key must be pinned with its signing key,
    /// valid and not revoked, and the statement must verify. The new key is
    /// pinned under the same name with the old pin's terms (its expiry, its
    /// TOFU mark); the old pin stays valid until the overlap ends. A second
    /// statement from an already rotated key is refused with
    /// [`KeyStoreError::Equivocation`] and logged.
    pub fn accept_rotation(
        &mut self,
        statement: &RotationStatement,
        now: u64,
    ) -> Result<Pin, Error> {
        self.accept_rotation_for(statement, None, now)
    }

    /// [`accept_rotation`](Self::accept_rotation) moving only the pin named
    /// `name` (when given).
    pub fn accept_rotation_for(
        &mut self,
        statement: &RotationStatement,
        name: Option<&str>,
        now: u64,
    ) -> Result<Pin, Error> {
        statement.verify()?;
        let public = decode_field("new_public", &statement.new_public)?;
        self.modify(|data, journal| {
            if let Some(r) = data.revocation(&statement.old_id) {
                return Err(bad(&format!("the old key is revoked ({})", r.reason)));
            }
            if data.revocation(&statement.new_id).is_some() {
                return Err(bad("the new key is revoked"));
            }
            let old = data
                .pins
                .iter()
                .find(|p| {
                    p.id == statement.old_id
                        && p.public == statement.old_public
                        && name.is_none_or(|n| p.name == n)
                })
                .cloned()
                .ok_or_else(|| bad("the old key is not pinned here under that name"))?;
            if old.signing_public.as_deref() != Some(statement.old_signing_public.as_str()) {
                return Err(bad("the old key's pin has no (or a different) signing key"));
            }
            if let Some(accepted) = old
                .rotated_to
                .as_ref()
                .filter(|id| **id != statement.new_id)
            {
                let err = KeyStoreError::Equivocation {
                    old_id: old.id.clone(),
                    accepted: accepted.clone(),
                    offered: statement.new_id.clone(),
                };
                if let Some(journal) = journal {
                    let detail = format!("refused a second rotation to {}", statement.new_id);
                    let event = AuditEvent::new(
                        "equivocation",
                        Some(&old.id),
                        Some(&old.name),
                        Some(detail),
                    );
                    // Best effort: the refusal stands even if the log is full.
                    let _ = journal.log_event(event);
                }
                return Err(err.into());
            }
            if let Some(existing) = data
                .pins
                .iter()
                .find(|p| p.id == statement.new_id && p.name == old.name)
            {
                return Ok((existing.clone(), None));
            }
            if !old.is_valid(now) {
                return Err(bad("the old key's pin has expired"));
            }
            // A new pin adds trust: refused while the log is damaged.
            if let Some(journal) = &journal {
                journal.require_intact()?;
            }
            let mut new = Pin::new(&old.name, statement.key_type, &public, now);
            new.signing_public = Some(statement.new_signing_public.clone());
            new.expires = match (old.expires, old.valid_until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            new.tofu = old.tofu;
            new.rotated_from = Some(old.id.clone());
            let until = statement.overlap_until.max(now);
            for pin in data
                .pins
                .iter_mut()
                .filter(|p| p.id == statement.old_id && p.name == old.name)
            {
                pin.valid_until = Some(pin.valid_until.map_or(until, |t| t.min(until)));
                pin.rotated_to = Some(statement.new_id.clone());
            }
            data.pins.push(new.clone());
            let event = AuditEvent::new(
                "trust",
                Some(&new.id),
                Some(&new.name),
                Some(format!("rotation from {} accepted", old.id)),
            );
            Ok((new, Some(event)))
        })
    }

    /// Accepts a chain of rotation statements presented by a peer whose
    /// handshake key `remote_static` is not pinned: the statements must be
    /// linked (each one's new key is the next one's old key), the last must
    /// name `remote_static`, and each statement accepted must still be in
    /// its overlap window at `now` (a retired key can no longer name a
    /// successor automatically). Starts from the newest statement whose old
    /// key is pinned (under `name`, when given) and valid here, and accepts
    /// every later one with [`accept_rotation_for`](Self::accept_rotation_for).
    /// Returns the new pin.
    pub fn accept_rotation_chain(
        &mut self,
        chain: &[RotationStatement],
        remote_static: &[u8],
        name: Option<&str>,
        now: u64,
    ) -> Result<Pin, Error> {
        self.refresh()?;
        let last = chain.last().ok_or_else(|| bad("no statement"))?;
        if chain.len() > MAX_ROTATION_CHAIN {
            return Err(bad("too many statements"));
        }
        if chain.windows(2).any(|w| w[0].new_id != w[1].old_id) {
            return Err(bad("the statements do not form a chain"));
        }
        if decode_field("new_public", &last.new_public)? != remote_static {
            return Err(bad("the last statement does not name the key presented"));
        }
        for statement in chain {
            statement.verify()?;
        }
        let start = chain
            .iter()
            .rposition(|s| {
                self.pins().iter().any(|p| {
                    p.id == s.old_id
                        && p.public == s.old_public
                        && p.is_valid(now)
                        && name.is_none_or(|n| p.name == n)
                })
            })
            .ok_or_else(|| bad("the old key is not pinned here under that name"))?;
        if let Some(late) = chain[start..].iter().find(|s| now >= s.overlap_until) {
            return Err(bad(&format!(
                "the overlap window of the rotation from {} has ended",
                late.old_id
            )));
        }
        let mut pin = None;
        let mut name = name.map(str::to_owned);
        for statement in &chain[start..] {
            let accepted = self.accept_rotation_for(statement, name.as_deref(), now)?;
            name = Some(accepted.name.clone());
            pin = Some(accepted);
        }
        pin.ok_or_else(|| bad("no statement"))
    }
}
