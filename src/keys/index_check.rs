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

/// Why `index` does not match the audit log, judged only once the log
/// records index changes (`index_sha256`; older stores are not judged):
/// - its own audit line must be an index change whose hash is that of its
///   entries (else it was edited, or its `audit` field was);
/// - no index change may be logged after that line's number (else it is a
///   rolled-back copy);
/// - no key the log records as revoked or destroyed may be active in it
///   (this holds even when the lines above were tampered with).
pub(super) fn index_damage(index: &Index, audit: &AuditLog) -> Option<String> {
    let text = match audit.read_text() {
        Ok(text) => text,
        Err(e) => return Some(format!("the audit log cannot be read to check it: {e}")),
    };
    let records: Vec<(usize, AuditRecord)> = text
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| serde_json::from_str::<AuditRecord>(l).ok().map(|r| (i, r)))
        .collect();
    if let Some(why) = revoked_but_active(index, &records) {
        return Some(why);
    }
    if !records.iter().any(|(_, r)| r.event.index_sha256.is_some()) {
        return None;
    }
    let Some(commit) = index.audit.as_ref() else {
        return Some("it has no audit line, but the log records index changes".into());
    };
    let record: Option<AuditRecord> = serde_json::from_str(&commit.line).ok();
    let Some(recorded) = record.and_then(|r| r.event.index_sha256) else {
        return Some("its audit line is not an index change".into());
    };
    if recorded != index.keys_sha256() {
        return Some("its key entries differ from the version its audit line records".into());
    }
    // Whether that line is the log's own is the journal's check (a damaged
    // log is reported there and must not stop keys from loading).
    let later = records
        .iter()
        .any(|(i, r)| *i as u64 >= commit.seq && r.event.index_sha256.is_some());
    if later {
        return Some("the audit log records a later version of it (a rolled-back copy)".into());
    }
    None
}

/// One revocation or destruction of our own keys the log records: a
/// `revoke` or `destroy` line without a trust-file hash (also one whose
/// index hash was stripped), one per key it names.
struct Removal {
    seq: u64,
    time: u64,
    status: KeyStatus,
    id: String,
}

fn logged_removals<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> Vec<Removal> {
    let mut out = Vec::new();
    for r in records {
        let e = &r.event;
        let status = match e.event.as_str() {
            "revoke" => KeyStatus::Revoked,
            "destroy" => KeyStatus::Destroyed,
            _ => continue,
        };
        if e.trust_sha256.is_some() {
            continue;
        }
        for id in super::trust_file::revoked_ids(e.key_id.as_deref(), e.detail.as_deref()) {
            out.push(Removal {
                seq: r.seq,
                time: r.time,
                status,
                id,
            });
        }
    }
    out
}

/// True if an entry in `current` has less taken from it than `logged`
/// (active or retired where revoked was logged; anything but destroyed
/// where destroyed was).
fn weaker(current: KeyStatus, logged: KeyStatus) -> bool {
    match logged {
        KeyStatus::Destroyed => current != KeyStatus::Destroyed,
        _ => matches!(current, KeyStatus::Active | KeyStatus::Retired),
    }
}

/// A key the log records as revoked or destroyed that the index has with
/// less taken from it.
fn revoked_but_active(index: &Index, records: &[(usize, AuditRecord)]) -> Option<String> {
    logged_removals(records.iter().map(|(_, r)| r))
        .into_iter()
        .find_map(|removal| {
            let entry = index.keys.iter().find(|k| k.id == removal.id)?;
            weaker(entry.status, removal.status).then(|| {
                format!(
                    "key {} is {} in it, but audit log line {} records it {}",
                    removal.id,
                    entry.status,
                    removal.seq,
                    if removal.status == KeyStatus::Destroyed {
                        "destroy"
                    } else {
                        "revoke"
                    }
                )
            })
        })
}

/// Re-applies to `index` every revocation and destruction the audit log
/// records; returns how many entries it changed.
pub(super) fn restore_logged_statuses(index: &mut Index, audit: &AuditLog) -> Result<usize, Error> {
    let text = audit.read_text()?;
    let records: Vec<AuditRecord> = text
        .lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut changed = 0;
    for removal in logged_removals(&records) {
        if let Some(entry) = index.entry_mut(&removal.id) {
            if weaker(entry.status, removal.status) {
                entry.status = removal.status;
                entry.status_changed = Some(removal.time);
                changed += 1;
            }
        }
    }
    Ok(changed)
}
