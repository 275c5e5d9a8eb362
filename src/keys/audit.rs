//! The audit log: `audit.jsonl`, one JSON object per line, each carrying its
//! sequence number and the SHA-256 of the previous line, plus `audit.head`
//! with the line count and the hash of the last line (so truncation and
//! edits of the last line are detected too).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::fsutil::{append_line, io_err, write_atomic};
use super::now_unix;
use crate::error::{Error, KeyStoreError};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One key event to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// generate, load, rotate, revoke, destroy, trust, untrust, ...
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
    /// For trust-store changes: SHA-256 of `trust.json` as written, so an
    /// edit of the trust store outside akex is detected when it is opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_sha256: Option<String>,
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
        }
    }
}

/// One line of the log as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Handshake uses of one key not yet written to the log.
#[derive(Debug, Default, Serialize, Deserialize)]
struct UseCounter {
    /// Uses since the last `use` line.
    pending: u64,
    /// When the last `use` line was written.
    last_line: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Head {
    lines: u64,
    head: String,
}

/// The append-only, hash-chained log of key events.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

fn line_hash(line: &str) -> String {
    hex::encode(Sha256::digest(line.as_bytes()))
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

    fn head_path(&self) -> PathBuf {
        self.path.with_extension("head")
    }

    fn read_lines(&self) -> Result<Vec<String>, Error> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err(&self.path, e)),
        }
    }

    /// Appends `event`, chained to the last line. Refuses to extend a log
    /// whose chain is broken.
    pub fn append(&self, event: &AuditEvent) -> Result<(), Error> {
        let records = self.verify()?;
        let lines = self.read_lines()?;
        let prev = lines
            .last()
            .map(|l| line_hash(l))
            .unwrap_or_else(|| GENESIS.into());
        let record = AuditRecord {
            seq: records.len() as u64 + 1,
            time: now_unix(),
            event: event.clone(),
            prev,
        };
        let line = serde_json::to_string(&record).map_err(|e| io_err(&self.path, e))?;
        append_line(&self.path, &line)?;
        let head = Head {
            lines: record.seq,
            head: line_hash(&line),
        };
        let json = serde_json::to_vec(&head).map_err(|e| io_err(&self.path, e))?;
        write_atomic(&self.head_path(), &json)
    }

    fn uses_path(&self) -> PathBuf {
        self.path.with_extension("uses")
    }

    /// Records one use of key `key_id` in a handshake, rate-limited: the
    /// first use is logged at once as a `use` line with `count=1`; later
    /// uses are counted in `audit.uses` (next to the log, not part of the
    /// chain) and logged as one `use` line carrying the count once at least
    /// `min_interval` seconds have passed since the last `use` line for that
    /// key. Returns true if a line was written. Concurrent processes may
    /// lose a count (best effort); a broken chain is still an error.
    pub fn record_use(
        &self,
        key_id: &str,
        name: Option<&str>,
        now: u64,
        min_interval: u64,
    ) -> Result<bool, Error> {
        let path = self.uses_path();
        let mut uses: std::collections::BTreeMap<String, UseCounter> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
            Err(e) => return Err(io_err(&path, e)),
        };
        let counter = uses.entry(key_id.to_string()).or_default();
        counter.pending = counter.pending.saturating_add(1);
        let due = counter
            .last_line
            .is_none_or(|t| now.saturating_sub(t) >= min_interval);
        if due {
            self.append(&AuditEvent::new(
                "use",
                Some(key_id),
                name,
                Some(format!(
                    "count={} since={}",
                    counter.pending,
                    counter.last_line.unwrap_or(now)
                )),
            ))?;
            counter.pending = 0;
            counter.last_line = Some(now);
        }
        let json = serde_json::to_vec(&uses).map_err(|e| io_err(&path, e))?;
        write_atomic(&path, &json)?;
        Ok(due)
    }

    /// Checks the whole chain and returns the records, or the first bad line.
    pub fn verify(&self) -> Result<Vec<AuditRecord>, Error> {
        let broken = |line: usize, reason: String| -> Error {
            KeyStoreError::AuditBroken { line, reason }.into()
        };
        let lines = self.read_lines()?;
        let mut records = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let n = i + 1;
            let record: AuditRecord = serde_json::from_str(line)
                .map_err(|_| broken(n, "not a valid audit record".into()))?;
            if record.seq != n as u64 {
                return Err(broken(
                    n,
                    format!(
                        "sequence number {} where {n} was expected (a line was removed, inserted or reordered)",
                        record.seq
                    ),
                ));
            }
            let expected = if i == 0 {
                GENESIS.to_string()
            } else {
                line_hash(&lines[i - 1])
            };
            if record.prev != expected {
                return Err(broken(
                    n.saturating_sub(1).max(1),
                    format!("line {n} records a different hash for it (the line was edited)"),
                ));
            }
            records.push(record);
        }
        match std::fs::read(self.head_path()) {
            Ok(bytes) => {
                let head: Head = serde_json::from_slice(&bytes).map_err(|_| {
                    Error::from(KeyStoreError::Corrupt {
                        path: self.head_path().display().to_string(),
                        reason: "invalid audit head".into(),
                    })
                })?;
                if head.lines != lines.len() as u64 {
                    return Err(broken(
                        lines.len().min(head.lines as usize).max(1),
                        format!(
                            "the log has {} lines but {} were written (lines were removed or added at the end)",
                            lines.len(),
                            head.lines
                        ),
                    ));
                }
                if lines.last().map(|l| line_hash(l)) != Some(head.head) {
                    return Err(broken(lines.len(), "the last line was edited".into()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !lines.is_empty() {
                    return Err(broken(lines.len(), "the audit head file is missing".into()));
                }
            }
            Err(e) => return Err(io_err(&self.head_path(), e)),
        }
        Ok(records)
    }
}
