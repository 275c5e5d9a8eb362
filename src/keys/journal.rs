//! The write protocol shared by the key index, the trust store and the
//! audit log.
//!
//! Every change: take the store lock, complete whatever a crashed writer
//! left (see [`Journal::open`]), re-read the file being changed, apply one
//! change, write the file atomically *with the change's audit line inside it*
//! (the commit point), append that line to the log, update `audit.head`,
//! release the lock. A crash before the commit leaves the old state (and
//! perhaps a temporary file, removed by the next writer); a crash after it
//! leaves a line that the next locked open appends. So the log records each
//! change exactly once, and a log that lacks a committed line has been cut.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::audit::{
    chain, check_head, continuations, join_seqs, line_hash, removal_evident, AuditEvent, AuditLog,
    AuditRecord, Commit, Head, LogText,
};
use super::fsutil::{
    append, parent_dir, read_file, remove_stale_temp_files, truncate, write_atomic,
};
use super::lock::{lock_path_for, StoreLock};
use super::now_unix;
use super::paths::{INDEX, KEYS, ROTATIONS, TRUST, TRUST_FILES};
use crate::error::{Error, KeyStoreError};

#[derive(Deserialize)]
struct CommitOnly {
    #[serde(default)]
    audit: Option<Commit>,
}

/// The commit line a state file carries, if it has one and parses.
pub(crate) fn commit_of(path: &Path) -> Option<Commit> {
    let bytes = read_file(path, super::fsutil::MAX_STATE_FILE).ok()??;
    serde_json::from_slice::<CommitOnly>(&bytes).ok()?.audit
}

/// The first disagreement between committed lines and the log.
pub(crate) fn commit_problem(
    lines: &[String],
    commits: &[(PathBuf, Commit)],
) -> Option<KeyStoreError> {
    let n = lines.len() as u64;
    for (file, commit) in commits {
        let ok = if commit.seq == 0 {
            false
        } else if commit.seq <= n {
            lines[commit.seq as usize - 1] == commit.line
        } else {
            false
        };
        if !ok {
            let reason = if commit.seq <= n {
                format!(
                    "{} committed a different line {}",
                    file.display(),
                    commit.seq
                )
            } else {
                format!(
                    "the log has {n} lines but {} committed line {} \
                     (lines were removed or the log was deleted)",
                    file.display(),
                    commit.seq
                )
            };
            return Some(KeyStoreError::AuditBroken {
                line: (commit.seq.min(n) as usize).max(1),
                reason,
            });
        }
    }
    None
}

/// The first write into a new store (often a pin, before any key exists)
/// creates its empty index, so that later a missing index always means a
/// lost one (see `KeyStore::open`).
fn create_index_of_new_store(dir: &Path, text: &LogText) -> Result<(), Error> {
    let index = dir.join(INDEX);
    let keys_present = std::fs::read_dir(dir.join(KEYS)).is_ok_and(|mut d| d.next().is_some());
    if index.exists() || keys_present || !text.lines.is_empty() || dir.join(ROTATIONS).exists() {
        return Ok(());
    }
    let json = serde_json::to_vec_pretty(&super::index::Index::empty())
        .map_err(|e| super::fsutil::corrupt(&index, e.to_string()))?;
    write_atomic(&index, &json)
}

/// A locked store: the lock, and the log's tail after recovery.
#[derive(Debug)]
pub(crate) struct Journal {
    _lock: StoreLock,
    log: AuditLog,
    text: LogText,
    /// The first sign of tampering found at open (reported, never blocking
    /// revocation).
    broken: Option<(usize, String)>,
    /// The highest line number a state file committed: after a cut log,
    /// new lines continue from it, so the gap stays visible.
    floor: u64,
    /// Events logged by recovery, for the caller to report.
    pub(crate) recovered: Vec<String>,
}

impl Journal {
    /// Takes the lock of the store whose log is `log`, then repairs what an
    /// interrupted writer left: stale temporary files, a torn last line
    /// (cut, and a `recovered` event logged), committed lines not yet
    /// appended, a head file behind the log. `extra` names state files
    /// outside the default ones (a `--trust-store` file).
    pub(crate) fn open(log: &AuditLog, extra: &[&Path]) -> Result<Self, Error> {
        let lock = StoreLock::acquire(&lock_path_for(log.path()))?;
        Self::recover(lock, log, extra)
    }

    /// As [`open`](Self::open), but gives up after `patience` if another
    /// process holds the lock (`Ok(None)`).
    pub(crate) fn open_within(log: &AuditLog, patience: Duration) -> Result<Option<Self>, Error> {
        match StoreLock::acquire_within(&lock_path_for(log.path()), patience)? {
            Some(lock) => Self::recover(lock, log, &[]).map(Some),
            None => Ok(None),
        }
    }

    fn recover(lock: StoreLock, log: &AuditLog, extra: &[&Path]) -> Result<Self, Error> {
        let dir = parent_dir(log.path()).to_path_buf();
        let mut files = vec![dir.join(INDEX), dir.join(TRUST)];
        files.extend(extra.iter().map(|p| p.to_path_buf()));
        // Other trust files this store audits: a line one committed before
        // a crash is appended by whichever writer comes next.
        for path in registered_trust_files(&dir) {
            if !files.contains(&path) {
                files.push(path);
            }
        }
        for d in [dir.clone(), dir.join(KEYS), dir.join(ROTATIONS)]
            .into_iter()
            .chain(extra.iter().map(|p| parent_dir(p).to_path_buf()))
        {
            remove_stale_temp_files(&d);
        }
        // Lines the head file already counted were appended once: if one
        // is missing and a commit still holds it, it was removed later,
        // not cut short by a crash (the head moves only after the append).
        let counted = log.read_head().ok().flatten().map(|h| h.lines);
        let mut text = log.read_text()?;
        create_index_of_new_store(&dir, &text)?;
        let torn = text.torn;
        if torn > 0 {
            truncate(log.path(), text.complete_len)?;
            text.torn = 0;
        }
        let mut commits: Vec<(PathBuf, Commit)> = files
            .iter()
            .filter_map(|f| commit_of(f).map(|c| (f.clone(), c)))
            .collect();
        commits.sort_by_key(|(_, c)| c.seq);
        commits.dedup_by(|a, b| a.1 == b.1);
        let borrowed: Vec<(&Path, &Commit)> =
            commits.iter().map(|(f, c)| (f.as_path(), c)).collect();
        let restored: Vec<(u64, String)> = continuations(&mut text.lines, &borrowed)
            .into_iter()
            .map(|(path, commit)| (commit.seq, path.display().to_string()))
            .collect();
        for (seq, _) in &restored {
            let line = &text.lines[*seq as usize - 1];
            append(log.path(), format!("{line}\n").as_bytes())?;
        }
        let (_, chain_error) = chain(&text.lines);
        let mut problem = chain_error.or_else(|| commit_problem(&text.lines, &commits));
        let head = log.read_head();
        let mut rewrite_head = false;
        match &head {
            Ok(Some(h)) => match check_head(h, &text.lines) {
                Err(e) => problem = problem.or(Some(e)),
                Ok(()) => rewrite_head = h.lines < text.lines.len() as u64,
            },
            Ok(None) => rewrite_head = !text.lines.is_empty(),
            Err(_) => {
                problem = problem.or(Some(KeyStoreError::AuditBroken {
                    line: text.lines.len().max(1),
                    reason: "the head file is unreadable".into(),
                }))
            }
        }
        let broken = match problem {
            Some(KeyStoreError::AuditBroken { line, reason }) => Some((line, reason)),
            Some(other) => Some((text.lines.len().max(1), other.to_string())),
            None => None,
        };
        let floor = commits.iter().map(|(_, c)| c.seq).max().unwrap_or(0);
        let mut journal = Journal {
            _lock: lock,
            log: log.clone(),
            text,
            broken,
            floor,
            recovered: Vec::new(),
        };
        if rewrite_head && journal.broken.is_none() {
            journal.write_head()?;
        }
        // Restored, but not silently: the log keeps a line saying so.
        let seqs: Vec<u64> = restored.iter().map(|(seq, _)| *seq).collect();
        let removed = (journal.broken.is_none() && removal_evident(&seqs, counted)).then(|| {
            let files: Vec<&str> = restored.iter().map(|(_, f)| f.as_str()).collect();
            format!(
                "audit line(s) {} had been removed after they were written; restored from the \
                 commits in {}",
                join_seqs(&seqs),
                files.join(", ")
            )
        });
        if let Some(detail) = removed {
            journal.log_event(AuditEvent::new(
                "recovered",
                None,
                None,
                Some(detail.clone()),
            ))?;
            journal.recovered.push(detail);
        }
        if torn > 0 {
            let detail =
                format!("removed a torn last line of {torn} bytes left by an interrupted write");
            journal.log_event(AuditEvent::new(
                "recovered",
                None,
                None,
                Some(detail.clone()),
            ))?;
            journal.recovered.push(detail);
        }
        Ok(journal)
    }

    /// The log's problem found at open, as an error.
    pub(crate) fn broken(&self) -> Option<KeyStoreError> {
        self.broken
            .as_ref()
            .map(|(line, reason)| KeyStoreError::AuditBroken {
                line: *line,
                reason: reason.clone(),
            })
    }

    /// Refuses changes that add trust (generate, rotate, pin) while the
    /// log is broken; revocations and destruction go on regardless.
    pub(crate) fn require_intact(&self) -> Result<(), Error> {
        match self.broken() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The audit line for `event` as the log's next line.
    pub(crate) fn next_line(&self, event: &AuditEvent, now: u64) -> Result<Commit, Error> {
        let record = AuditRecord {
            seq: (self.text.lines.len() as u64).max(self.floor) + 1,
            time: now,
            event: event.clone(),
            prev: self.text.last_hash(),
        };
        let line = serde_json::to_string(&record)
            .map_err(|e| super::fsutil::corrupt(self.log.path(), e.to_string()))?;
        Ok(Commit {
            seq: record.seq,
            line,
        })
    }

    /// Appends a line committed by the caller's state file. The change is
    /// already durable: a failure here is completed by the next locked
    /// open, so it is not reported as the change failing.
    pub(crate) fn append_committed(&mut self, commit: &Commit) {
        let _ = self.append_line(commit);
    }

    fn append_line(&mut self, commit: &Commit) -> Result<(), Error> {
        append(self.log.path(), format!("{}\n", commit.line).as_bytes())?;
        self.text.lines.push(commit.line.clone());
        self.floor = self.floor.max(commit.seq);
        if self.broken.is_none() {
            self.write_head()?;
        }
        Ok(())
    }

    /// Logs an event that changes no state file (use, load, equivocation,
    /// recovered).
    pub(crate) fn log_event(&mut self, event: AuditEvent) -> Result<(), Error> {
        let commit = self.next_line(&event, now_unix())?;
        self.append_line(&commit)
    }

    fn write_head(&self) -> Result<(), Error> {
        let head = Head {
            lines: self.text.lines.len() as u64,
            head: self
                .text
                .lines
                .last()
                .map(|l| line_hash(l))
                .unwrap_or_default(),
        };
        let json = serde_json::to_vec(&head)
            .map_err(|e| super::fsutil::corrupt(&self.log.head_path(), e.to_string()))?;
        write_atomic(&self.log.head_path(), &json)
    }
}

/// Handshake uses of one key not yet written to the log.
#[derive(Debug, Default, Serialize, Deserialize)]
struct UseCounter {
    /// Uses since the last `use` line.
    pending: u64,
    /// When the last `use` line was written.
    last_line: Option<u64>,
}

/// How long a handshake waits for the store lock to count a use; a use
/// that cannot get it in time is not counted.
pub const USE_LOCK_PATIENCE: Duration = Duration::from_millis(250);

/// The least time between two `use` lines of one key, in seconds, that
/// `serve` and `connect` pass to [`AuditLog::record_use`].
pub const USE_LINE_INTERVAL: u64 = 60;

impl AuditLog {
    /// Records one use of key `key_id` in a handshake, rate-limited: the
    /// first use is logged at once as a `use` line with `count=1`; later
    /// uses are counted in `audit.uses` (next to the log, not part of the
    /// chain) and logged as one `use` line carrying the count once at least
    /// `min_interval` seconds have passed since the last `use` line for that
    /// key. Returns true if a line was written.
    ///
    /// Best effort and safe under concurrency: it runs under the store lock
    /// but waits for it at most 250 ms (a use during a longer wait is not
    /// counted), and it never writes to a read-only store's state files.
    pub fn record_use(
        &self,
        key_id: &str,
        name: Option<&str>,
        now: u64,
        min_interval: u64,
    ) -> Result<bool, Error> {
        let Some(mut journal) = Journal::open_within(self, USE_LOCK_PATIENCE)? else {
            return Ok(false);
        };
        let path = self.path().with_extension("uses");
        let mut uses: BTreeMap<String, UseCounter> = read_file(&path, 1 << 20)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let counter = uses.entry(key_id.to_string()).or_default();
        counter.pending = counter.pending.saturating_add(1);
        let due = counter
            .last_line
            .is_none_or(|t| now.saturating_sub(t) >= min_interval);
        if due {
            journal.log_event(AuditEvent::new(
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
        let json =
            serde_json::to_vec(&uses).map_err(|e| super::fsutil::corrupt(&path, e.to_string()))?;
        write_atomic(&path, &json)?;
        Ok(due)
    }

    /// Appends `event` under the store lock (completing any interrupted
    /// write first). Appends to a broken log too, chained to its last line:
    /// the break stays visible to [`verify`](Self::verify).
    pub fn append(&self, event: &AuditEvent) -> Result<(), Error> {
        Journal::open(self, &[])?.log_event(event.clone())
    }
}

/// The trust files listed in the store's registry (absolute paths; other
/// lines are ignored).
pub(crate) fn registered_trust_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(Some(bytes)) = read_file(&dir.join(TRUST_FILES), super::fsutil::MAX_STATE_FILE) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .collect()
}

/// Adds `path` (absolute) to the registry of audited trust files, under
/// the lock the caller holds, before its first commit.
pub(crate) fn register_trust_file(dir: &Path, path: &Path) -> Result<(), Error> {
    let mut known = registered_trust_files(dir);
    if known.iter().any(|p| p == path) || !path.is_absolute() {
        return Ok(());
    }
    known.push(path.to_path_buf());
    let text: String = known
        .iter()
        .map(|p| format!("{}\n", p.to_string_lossy()))
        .collect();
    write_atomic(&dir.join(TRUST_FILES), text.as_bytes())
}
