//! `store.json` against the audit log: each index change logs the hash of
//! the key entries it wrote, so an index edited outside akex, or a
//! rolled-back copy (which could make a revoked key active again), is
//! found; a revocation or destruction then puts back what the log records.

use super::audit::{AuditLog, AuditRecord};
use super::index::{Index, KeyStatus};
use super::paths::StorePaths;
use super::store::read_index;
use crate::error::Error;

/// The index, checked against the audit log. Readers take no lock, so a
/// writer may replace the index between the two reads: a mismatch counts
/// only if the index read again is the same version.
pub(super) fn read_checked_index(
    paths: &StorePaths,
    audit: &AuditLog,
) -> Result<(Index, Option<String>), Error> {
    let mut index = read_index(paths)?;
    for _ in 0..8 {
        let Some(reason) = index_damage(&index, audit) else {
            return Ok((index, None));
        };
        let again = read_index(paths)?;
        if again.audit == index.audit {
            return Ok((again, Some(reason)));
        }
        index = again;
    }
    let damage = index_damage(&index, audit);
    Ok((index, damage))
}

/// Why `index` does not match the audit log: its entries differ from the
/// hash its own audit line records (an edit), or the log records a later
/// index change (a rolled-back copy). Lines written before the hash was
/// recorded are not judged; a damaged log is reported by the journal.
pub(super) fn index_damage(index: &Index, audit: &AuditLog) -> Option<String> {
    let commit = index.audit.as_ref()?;
    let record: AuditRecord = serde_json::from_str(&commit.line).ok()?;
    if record
        .event
        .index_sha256
        .as_ref()
        .is_some_and(|h| *h != index.keys_sha256())
    {
        return Some("its key entries differ from the version its audit line records".into());
    }
    let text = audit.read_text().ok()?;
    let n = text.lines.len() as u64;
    if (1..=n).contains(&commit.seq) {
        let later = text.lines[commit.seq as usize..].iter().any(|l| {
            serde_json::from_str::<AuditRecord>(l).is_ok_and(|r| r.event.index_sha256.is_some())
        });
        if later {
            return Some("the audit log records a later version of it (a rolled-back copy)".into());
        }
    }
    None
}

/// Re-applies to `index` every revocation and destruction the audit log
/// records; returns how many entries it changed.
pub(super) fn restore_logged_statuses(index: &mut Index, audit: &AuditLog) -> Result<usize, Error> {
    let text = audit.read_text()?;
    let mut changed = 0;
    for line in &text.lines {
        let Ok(record) = serde_json::from_str::<AuditRecord>(line) else {
            continue;
        };
        let e = &record.event;
        let status = match e.event.as_str() {
            "revoke" => KeyStatus::Revoked,
            "destroy" => KeyStatus::Destroyed,
            _ => continue,
        };
        if e.index_sha256.is_none() {
            continue;
        }
        for id in super::trust_file::revoked_ids(e.key_id.as_deref(), e.detail.as_deref()) {
            if let Some(entry) = index.entry_mut(&id) {
                let worse = status == KeyStatus::Destroyed || entry.status != KeyStatus::Destroyed;
                if entry.status != status && worse {
                    entry.status = status;
                    entry.status_changed = Some(record.time);
                    changed += 1;
                }
            }
        }
    }
    Ok(changed)
}
