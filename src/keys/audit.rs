//! The audit log: `audit.jsonl`, one JSON object per line, each carrying its
//! sequence number and the SHA-256 of the previous line, plus `audit.head`
//! with the line count and the hash of the last line (so truncation and
//! edits of the last line are detected too).
//!
//! Crash safety (see `journal.rs` for the write protocol): the file that a
//! change commits (`store.json` or `trust.json`) carries that change's audit
//! line, so a crash between the commit and the append is completed on the
//! next locked open, and the log's deletion or truncation is detected.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fsutil::{corrupt, read_file, MAX_AUDIT_LOG};
use crate::error::{Error, KeyStoreError};

pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One key event to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// generate, load, use, rotate, revoke, destroy, trust, untrust,
    /// equivocation, recovered, ...
    pub event: String,
    /// The key's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The key's (or pin's) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form detail (never key material).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For trust-store changes: SHA-256 of the trust store's pins and
    /// revocations as written, so an edit outside akex is detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_sha256: Option<String>,
    /// For trust-store changes: the trust file's name (a store may audit
    /// `trust.json` and a `--trust-store` file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_file: Option<String>,
    /// For changes of the key index (`store.json`): SHA-256 of its key
    /// entries as written, so an edited or rolled-back index is detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_sha256: Option<String>,
}

impl AuditEvent {
    /// An event about one key.
    pub fn new(
        event: &str,
        key_id: Option<&str>,
        name: Option<&str>,
        detail: Option<String>,
    ) -> Self {
        AuditEvent {
            event: event.into(),
            key_id: key_id.map(Into::into),
            name: name.map(Into::into),
            detail,
            trust_sha256: None,
            trust_file: None,
            index_sha256: None,
        }
    }
}

/// One line of the log as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditRecord {
    /// 1-based position in the log.
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Hex SHA-256 of the previous line (all zeros for the first).
    pub prev: String,
}

/// The audit line of the last change a file committed (`store.json`,
/// `trust.json`): written with the change, appended to the log right after,
/// and appended by the next locked open if a crash came in between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Commit {
    pub(crate) seq: u64,
    pub(crate) line: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Head {
    pub(crate) lines: u64,
    pub(crate) head: String,
}

pub(crate) fn line_hash(line: &str) -> String {
    hex::encode(crate::crypto::hash::sha256(&[line.as_bytes()]))
}

/// The log as read: its complete lines and the bytes of a torn last line
/// (an append cut short by a crash or a full disk).
#[derive(Debug, Default)]
pub(crate) struct LogText {
    pub(crate) lines: Vec<String>,
    pub(crate) complete_len: u64,
    pub(crate) torn: u64,
}

impl LogText {
    pub(crate) fn last_hash(&self) -> String {
        last_hash(&self.lines)
    }
}

/// The hash a line appended after `lines` names as its `prev`.
fn last_hash(lines: &[String]) -> String {
    lines
        .last()
        .map(|l| line_hash(l))
        .unwrap_or_else(|| GENESIS.into())
}

/// What a read-only check of the log found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct AuditReport {
    /// The records of the complete lines.
    pub records: Vec<AuditRecord>,
    /// Interrupted writes that the next locked open completes (a torn last
    /// line, a head file behind the log, a committed line not yet
    /// appended). Not an error.
    pub interrupted: Vec<String>,
    /// The first sign of tampering or loss, if any.
    pub broken: Option<KeyStoreError>,
    /// The break is a last line removed after it was written that a
    /// state file's commit still holds: the next locked open puts it back
    /// and logs a `recovered` line saying it had been removed.
    pub restorable: bool,
}

/// The append-only, hash-chained log of key events.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

fn broken(line: usize, reason: impl Into<String>) -> KeyStoreError {
    KeyStoreError::AuditBroken {
        line,
        reason: reason.into(),
    }
}

impl AuditLog {
    /// The log at `path` (the head file is `path` with extension `.head`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLog { path: path.into() }
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn head_path(&self) -> PathBuf {
        self.path.with_extension("head")
    }

    pub(crate) fn read_text(&self) -> Result<LogText, Error> {
        let Some(bytes) = read_file(&self.path, MAX_AUDIT_LOG)? else {
            return Ok(LogText::default());
        };
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // Lossy: a line that is not UTF-8 then fails the chain check,
        // which reports it without blocking revocations.
        let text = String::from_utf8_lossy(&bytes[..complete]);
        Ok(LogText {
            lines: text.lines().map(str::to_owned).collect(),
            complete_len: complete as u64,
            torn: (bytes.len() - complete) as u64,
        })
    }

    pub(crate) fn read_head(&self) -> Result<Option<Head>, Error> {
        let path = self.head_path();
        match read_file(&path, 4096)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| corrupt(&path, "invalid audit head")),
        }
    }

    /// Checks the whole chain and returns the records, or the first bad
    /// line. An interrupted write (see [`AuditReport::interrupted`]) is not
    /// an error; the next locked open completes it.
    pub fn verify(&self) -> Result<Vec<AuditRecord>, Error> {
        let report = self.check(&[])?;
        match report.broken {
            Some(e) => Err(e.into()),
            None => Ok(report.records),
        }
    }

    /// Reads and checks the log without writing anything. `commits` are
    /// the lines the store's files say they committed: a committed line
    /// the log lacks means lines were removed or the log was deleted.
    pub(crate) fn check(&self, commits: &[(&Path, &Commit)]) -> Result<AuditReport, Error> {
        // The head first: writers append to the log before they replace the
        // head, so a head read before the log never leads it.
        let head = self.read_head()?;
        let text = self.read_text()?;
        let mut report = AuditReport::default();
        if text.torn > 0 {
            report.interrupted.push(format!(
                "a torn last line of {} bytes (an interrupted append)",
                text.torn
            ));
        }
        let (records, chain_error) = chain(&text.lines);
        report.records = records;
        report.broken = chain_error;
        let n = text.lines.len() as u64;
        // What the next locked open would append, and the log after it.
        let mut lines = text.lines.clone();
        let restored = continuations(&mut lines, commits);
        let m = lines.len() as u64;
        for (file, commit) in commits {
            let name = file.display();
            if (1..=m).contains(&commit.seq) {
                if lines[commit.seq as usize - 1] != commit.line && report.broken.is_none() {
                    report.broken = Some(broken(
                        commit.seq as usize,
                        format!("{name} committed a different line {}", commit.seq),
                    ));
                }
            } else if report.broken.is_none() {
                report.broken = Some(broken(
                    (n as usize).max(1),
                    format!(
                        "the log has {n} lines but {name} committed line {} \
                         (lines were removed or the log was deleted)",
                        commit.seq
                    ),
                ));
            }
        }
        let seqs: Vec<u64> = restored.iter().map(|(_, c)| c.seq).collect();
        if report.broken.is_none() && removal_evident(&seqs, head.as_ref().map(|h| h.lines)) {
            report.broken = Some(broken(
                (n as usize).max(1),
                format!(
                    "line(s) {} were removed after they were written (commits still hold them)",
                    join_seqs(&seqs)
                ),
            ));
            report.restorable = true;
        } else {
            for (file, commit) in &restored {
                report.interrupted.push(format!(
                    "line {} committed in {} is not appended yet",
                    commit.seq,
                    file.display()
                ));
            }
        }
        match (head, report.broken.is_some()) {
            (_, true) => {}
            (None, false) if n > 0 => report
                .interrupted
                .push("the head file is missing (rewritten by the next locked open)".into()),
            (None, false) => {}
            (Some(head), false) => {
                if let Err(e) = check_head(&head, &lines) {
                    report.broken = Some(e);
                } else if head.lines < n {
                    report
                        .interrupted
                        .push(format!("the head file records {} of {n} lines", head.lines));
                }
            }
        }
        Ok(report)
    }
}

/// The committed lines `lines` lacks that continue it, in order: what the
/// next locked open appends. They are appended to `lines`.
pub(crate) fn continuations<'a>(
    lines: &mut Vec<String>,
    commits: &[(&'a Path, &'a Commit)],
) -> Vec<(&'a Path, &'a Commit)> {
    let mut sorted = commits.to_vec();
    sorted.sort_by_key(|(_, c)| c.seq);
    let mut restored = Vec::new();
    for (file, commit) in sorted {
        if commit.seq == lines.len() as u64 + 1 && prev_of(&commit.line) == Some(last_hash(lines)) {
            lines.push(commit.line.clone());
            restored.push((file, commit));
        }
    }
    restored
}

/// True if committed lines missing from the log (`restored`, by number)
/// were removed after they were written rather than cut short by a crash.
/// A crash leaves at most one committed line unappended, and one the head
/// has not counted (the head moves only after the append); the head file
/// is missing only until the first locked open after line 1, which
/// rewrites it before anything else is committed. The head is not keyed:
/// one rewritten along with the log still passes as a crash.
pub(crate) fn removal_evident(restored: &[u64], head_lines: Option<u64>) -> bool {
    restored.len() > 1
        || restored.iter().any(|&seq| match head_lines {
            Some(counted) => seq <= counted,
            None => seq >= 2,
        })
}

/// `3` or `3, 4` for messages.
pub(crate) fn join_seqs(seqs: &[u64]) -> String {
    seqs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `prev` field of a serialized record.
pub(crate) fn prev_of(line: &str) -> Option<String> {
    serde_json::from_str::<AuditRecord>(line)
        .ok()
        .map(|r| r.prev)
}

/// Parses and chains `lines`: the records up to the first bad line, and the
/// error naming it.
pub(crate) fn chain(lines: &[String]) -> (Vec<AuditRecord>, Option<KeyStoreError>) {
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let Ok(record) = serde_json::from_str::<AuditRecord>(line) else {
            return (records, Some(broken(n, "not a valid audit record")));
        };
        if record.seq != n as u64 {
            return (
                records,
                Some(broken(
                    n,
                    format!(
                        "sequence number {} where {n} was expected (a line was removed, inserted or reordered)",
                        record.seq
                    ),
                )),
            );
        }
        let expected = if i == 0 {
            GENESIS.to_string()
        } else {
            line_hash(&lines[i - 1])
        };
        if record.prev != expected {
            return (
                records,
                Some(broken(
                    n.saturating_sub(1).max(1),
                    format!("line {n} records a different hash for it (the line was edited)"),
                )),
            );
        }
        records.push(record);
    }
    (records, None)
}

/// The head may lag behind the log (an interrupted write), never lead it,
/// and must name the hash of the line it counts.
pub(crate) fn check_head(head: &Head, lines: &[String]) -> Result<(), KeyStoreError> {
    let n = lines.len() as u64;
    if head.lines > n {
        return Err(broken(
            (n as usize).max(1),
            format!(
                "the log has {n} lines but {} were written (lines were removed at the end)",
                head.lines
            ),
        ));
    }
    if head.lines > 0 && line_hash(&lines[head.lines as usize - 1]) != head.head {
        return Err(broken(head.lines as usize, "the line was edited"));
    }
    Ok(())
}
