//! File primitives of the store: atomic private writes, capped reads of
//! regular files, overwrite-then-remove, and the clean-up of temporary
//! files left by a crash.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::crypto::{OsRng, RandomSource};
use zeroize::Zeroizing;

use crate::error::{Error, KeyStoreError};

/// Temporary files are named `.<final name>.tmp-<random>`.
const TMP_MARK: &str = ".tmp-";

/// Index and trust files: far larger than any real store.
pub(crate) const MAX_STATE_FILE: u64 = 16 << 20;
/// Key files, rotation statements, `keys show --json` output.
pub(crate) const MAX_KEY_FILE: u64 = 64 << 10;
/// The audit log (a line is ~300 bytes: millions of events).
pub(crate) const MAX_AUDIT_LOG: u64 = 1 << 30;

/// A [`KeyStoreError::Io`] naming `path` and keeping the OS error.
pub(crate) fn io_err(path: &Path, source: std::io::Error) -> Error {
    KeyStoreError::Io {
        path: path.display().to_string(),
        source,
    }
    .into()
}

/// A [`KeyStoreError::Corrupt`] for `path`.
pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> Error {
    KeyStoreError::Corrupt {
        path: path.display().to_string(),
        reason: reason.into(),
    }
    .into()
}

/// Reads a regular file of at most `max` bytes; `Ok(None)` if it does not
/// exist. FIFOs, devices and oversized files are errors naming the path.
pub(crate) fn read_file(path: &Path, max: u64) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    match super::file::read_regular_file(path, max) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates `dir` (mode 0700) if it does not exist.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| io_err(dir, e))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(dir, e))?;
    }
    let _ = dir;
    Ok(())
}

/// The directory holding `path`: `.` for a bare file name (whose
/// `parent()` is the empty path, which no system call accepts).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory (mode 0600), fsync, rename over `path`, fsync the directory.
/// On failure the temporary file is removed and `path` is unchanged.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = parent_dir(path);
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{base}{TMP_MARK}{:016x}", {
        let mut b = [0u8; 8];
        OsRng.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }));
    let result = (|| {
        let mut file = private_options().open(&tmp).map_err(|e| io_err(&tmp, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err(path, e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes the temporary files a killed writer left in `dir`. Only called
/// with the store lock held: every writer creates its temporary files under
/// that lock, so any found then belongs to a process that died.
pub(crate) fn remove_stale_temp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file
            && name.starts_with('.')
            && name.contains(TMP_MARK)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Overwrites the regular file `path` with random bytes (same length),
/// fsyncs, removes it and fsyncs the directory. A symbolic link or any other
/// non-regular file is refused, never followed. On SSDs and copy-on-write
/// file systems the overwrite is best effort; the encryption at rest is the
/// real protection.
pub(crate) fn overwrite_and_remove(path: &Path) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| io_err(path, e))?;
    if !meta.file_type().is_file() {
        return Err(corrupt(
            path,
            "not a regular file; refusing to overwrite it",
        ));
    }
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    let opened = file.metadata().map_err(|e| io_err(path, e))?;
    #[cfg(unix)]
    {
        // A link swapped in after the check was followed: touch nothing.
        use std::os::unix::fs::MetadataExt;
        if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
            return Err(corrupt(path, "the file changed while it was opened"));
        }
    }
    let len = opened.len();
    let mut buf = vec![0u8; 4096];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        OsRng.fill_bytes(&mut buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| io_err(path, e))?;
        left -= n as u64;
    }
    file.sync_all().map_err(|e| io_err(path, e))?;
    drop(file);
    std::fs::remove_file(path).map_err(|e| io_err(path, e))?;
    sync_dir(parent_dir(path))
}

/// Appends `bytes` to `path` (created with mode 0600) and fsyncs it.
pub(crate) fn append(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io_err(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(path, e))
}

/// Cuts `path` to its first `len` bytes and fsyncs it.
pub(crate) fn truncate(path: &Path, len: u64) -> Result<(), Error> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(path, e))
}
