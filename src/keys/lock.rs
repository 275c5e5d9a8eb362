//! The store lock: one exclusive advisory lock (`flock` on Unix, through
//! `std::fs::File::lock`) on `store.lock` serialises every read-modify-write
//! of the index, the trust store and the audit log, across processes and
//! across threads (each acquisition opens its own descriptor). Readers never
//! take it. The lock goes away with the process, so a killed writer never
//! leaves the store locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::fsutil::io_err;
use crate::error::Error;

/// A held lock; released on drop.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

fn open_lock_file(path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| io_err(path, e))
}

impl StoreLock {
    /// Blocks until the lock on `path` is ours.
    pub(crate) fn acquire(path: &Path) -> Result<Self, Error> {
        let file = open_lock_file(path)?;
        file.lock().map_err(|e| io_err(path, e))?;
        Ok(StoreLock { _file: file })
    }

    /// Tries for up to `patience`; `Ok(None)` if another process kept it.
    /// For best-effort records that must not hold up a handshake.
    pub(crate) fn acquire_within(path: &Path, patience: Duration) -> Result<Option<Self>, Error> {
        let file = open_lock_file(path)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(StoreLock { _file: file })),
                Err(TryLockError::WouldBlock) if start.elapsed() < patience => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(io_err(path, e)),
            }
        }
    }
}

/// The lock file that guards the audit log at `audit` and the files
/// committed with it: `store.lock` in the same directory.
pub(crate) fn lock_path_for(audit: &Path) -> PathBuf {
    audit.with_file_name(super::paths::LOCK)
}
