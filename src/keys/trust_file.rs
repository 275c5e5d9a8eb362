//! The trust file on disk: reading it, identifying a version of it without
//! reading it, and checking it against the audit log.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::audit::{AuditLog, AuditRecord, Commit};
use super::fsutil::{corrupt, read_file, MAX_STATE_FILE};
use super::trust::TrustData;
use crate::error::Error;

/// The file as stored: the trust data and the audit line of its last change.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct TrustFile {
    #[serde(flatten)]
    pub(super) data: TrustData,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) audit: Option<Commit>,
}

/// What identifies one version of the file without reading it: a rename
/// gives a new inode, a write a new size or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    ino: (u64, u64, i64, i64),
}

pub(super) fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        ino: {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
        },
    })
}

pub(super) fn read_trust_file(path: &Path) -> Result<Option<TrustFile>, Error> {
    let Some(bytes) = read_file(path, MAX_STATE_FILE)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        corrupt(
            path,
            format!(
                "invalid trust store at line {} column {}",
                e.line(),
                e.column()
            ),
        )
    })
}

/// How the audit log names a trust file: `trust.json` for the store's own
/// (beside the log), the absolute path for any other, so two files of one
/// name in different directories, or a copy moved elsewhere, are never
/// taken for one another.
pub(super) fn file_identity(path: &Path, audit: &AuditLog) -> String {
    let canonical_dir = |p: &Path| std::fs::canonicalize(super::fsutil::parent_dir(p)).ok();
    let name = file_name(path);
    let dir = canonical_dir(path);
    if name == super::paths::TRUST && dir.is_some() && dir == canonical_dir(audit.path()) {
        return name;
    }
    match dir {
        Some(dir) => dir.join(&name).to_string_lossy().into_owned(),
        None => path.to_string_lossy().into_owned(),
    }
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Checks a trust file against the audit log: its own commit line must be
/// in the log (or be the one line an interrupted write has not appended
/// yet), must carry the hash of its contents, and no later change to the
/// same file may be logged (a rolled-back copy).
pub(super) fn check_integrity(
    path: &Path,
    file: Option<&TrustFile>,
    audit: &AuditLog,
) -> Result<(), Error> {
    let text = audit.read_text()?;
    let name = file_identity(path, audit);
    let logs_this = |line: &str| {
        serde_json::from_str::<AuditRecord>(line).is_ok_and(|r| {
            r.event.trust_sha256.is_some()
                && r.event.trust_file.as_deref().unwrap_or(super::paths::TRUST) == name
        })
    };
    let Some(file) = file else {
        if text.lines.iter().any(|l| logs_this(l)) {
            return Err(corrupt(
                path,
                "the audit log records a trust store but the file is missing",
            ));
        }
        return Ok(());
    };
    let Some(commit) = &file.audit else {
        if text.lines.iter().any(|l| logs_this(l)) {
            return Err(corrupt(
                path,
                "it differs from the version recorded in the audit log",
            ));
        }
        // akex writes an audited trust file only together with its audit
        // line, so pins or revocations without one were written by
        // something else, even on a store that never logged a trust change.
        if !file.data.is_empty() {
            return Err(corrupt(
                path,
                "it holds pins or revocations that the audit log never recorded \
                 (written outside akex; remove it or restore it from a backup)",
            ));
        }
        return Ok(());
    };
    let record: AuditRecord = serde_json::from_str(&commit.line)
        .map_err(|_| corrupt(path, "its audit line does not parse"))?;
    // A copy of an audited file under another name is not that file: its
    // later changes (a rollback) would be logged under the original name.
    if record
        .event
        .trust_file
        .as_deref()
        .unwrap_or(super::paths::TRUST)
        != name
    {
        return Err(corrupt(path, "its audit line records another trust file"));
    }
    if record.event.trust_sha256.as_deref() != Some(file.data.sha256().as_str()) {
        return Err(corrupt(
            path,
            "it differs from the version recorded in the audit log",
        ));
    }
    let n = text.lines.len() as u64;
    if commit.seq >= 1 && commit.seq <= n {
        if text.lines[commit.seq as usize - 1] != commit.line {
            return Err(corrupt(path, "its audit line differs from the audit log's"));
        }
        if text.lines[commit.seq as usize..]
            .iter()
            .any(|l| logs_this(l))
        {
            return Err(corrupt(
                path,
                "it is an older version than the audit log records",
            ));
        }
        return Ok(());
    }
    if commit.seq == n + 1 && record.prev == text.last_hash() {
        return Ok(()); // committed, not appended yet: the next writer appends it
    }
    Err(corrupt(
        path,
        format!(
            "the audit log lacks its line {} (the log was cut or deleted)",
            commit.seq
        ),
    ))
}

/// Puts back into `data` every revocation the audit log records for the
/// trust file `path` names, when that file was changed outside akex: a
/// revocation is never undone by deleting it from the file (or rolling the
/// file back) and then letting the next change rewrite it. Returns how
/// many were missing.
pub(super) fn restore_logged_revocations(
    path: &Path,
    data: &mut TrustData,
    audit: &AuditLog,
) -> Result<usize, Error> {
    let text = audit.read_text()?;
    let name = file_identity(path, audit);
    let mut restored = 0;
    for line in &text.lines {
        let Ok(record) = serde_json::from_str::<AuditRecord>(line) else {
            continue;
        };
        let e = &record.event;
        let this_file = e.trust_file.as_deref().unwrap_or(super::paths::TRUST) == name;
        if e.event != "revoke" || e.trust_sha256.is_none() || !this_file {
            continue;
        }
        for id in revoked_ids(e.key_id.as_deref(), e.detail.as_deref()) {
            if data.revocation(&id).is_none() {
                let reason = format!("restored from audit log line {}", record.seq);
                data.add_revocation(&id, &reason, record.time);
                restored += 1;
            }
        }
    }
    Ok(restored)
}

/// The key ids of one `revoke` line: its key id, and the `(keys: a,b)`
/// list a revocation of several keys adds to its detail.
pub(super) fn revoked_ids(key_id: Option<&str>, detail: Option<&str>) -> Vec<String> {
    let is_id = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut ids: Vec<String> = key_id
        .filter(|k| is_id(k))
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Some(list) = detail
        .and_then(|d| d.rsplit_once("(keys: "))
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(list, _)| list)
    {
        for id in list.split(',').filter(|id| is_id(id)) {
            if !ids.iter().any(|k| k == id) {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}
