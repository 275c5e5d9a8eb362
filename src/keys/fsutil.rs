//! Atomic, private file writes and overwrite-then-remove.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use rand_core::RngCore;

use crate::error::{Error, KeyStoreError};

pub(crate) fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    KeyStoreError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
    .into()
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

fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(dir, e))?;
    }
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory (mode 0600), fsync, rename over `path`, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{base}.tmp-{:016x}", rand_core::OsRng.next_u64()));
    let result = (|| {
        let mut file = private_options().open(&tmp).map_err(|e| io_err(&tmp, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err(&tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Appends one line to `path` (created with mode 0600) and fsyncs it.
pub(crate) fn append_line(path: &Path, line: &str) -> Result<(), Error> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io_err(path, e))?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(path, e))
}

/// Overwrites the file with random bytes (same length), fsyncs, removes it
/// and fsyncs the directory. On SSDs and copy-on-write file systems the
/// overwrite is best effort; the encryption at rest is the real protection.
pub(crate) fn overwrite_and_remove(path: &Path) -> Result<(), Error> {
    let len = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    let mut buf = vec![0u8; 4096];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rand_core::OsRng.fill_bytes(&mut buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| io_err(path, e))?;
        left -= n as u64;
    }
    file.sync_all().map_err(|e| io_err(path, e))?;
    drop(file);
    std::fs::remove_file(path).map_err(|e| io_err(path, e))?;
    sync_dir(path.parent().unwrap_or_else(|| Path::new(".")))
}
