//! Identity files: one line of base64 holding a 32-byte X25519 private key
//! (the WireGuard format), mode 0600, never overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use zeroize::Zeroizing;

use crate::crypto::{RandomSource, Secret, StaticSecret};
use crate::error::{ConfigError, Error};

fn key_file_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::KeyFile {
        path: path.display().to_string(),
        reason: reason.into(),
        source: None,
    }
}

fn key_file_io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::KeyFile {
        path: path.display().to_string(),
        reason: format!("{what}: {e}"),
        source: Some(e),
    }
}

/// Creates `path` with a new key from `rng` (mode 0600; fails if the file
/// exists) and returns the key.
pub fn write_new_identity(path: &Path, rng: &mut dyn RandomSource) -> Result<StaticSecret, Error> {
    let key = StaticSecret::generate(rng);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            key_file_error(path, "already exists; refusing to overwrite")
        }
        _ => key_file_io_error(path, "cannot create", e),
    })?;
    let line = Zeroizing::new(format!("{}\n", B64.encode(key.private().expose())));
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| key_file_io_error(path, "cannot write", e))?;
    Ok(key)
}

/// The largest identity file [`load_identity`] reads (a line of base64 is
/// 45 bytes; PEM armour and comments fit easily).
pub const MAX_IDENTITY_FILE_LEN: u64 = 64 * 1024;

/// Reads `path` whole if it is a regular file of at most `max_len` bytes.
///
/// Refuses directories, FIFOs, sockets and devices before opening them (a
/// FIFO would block, `/dev/zero` would never end) and stops reading past
/// `max_len`, so a hostile path cannot hang the caller or fill its memory.
/// The buffer is zeroized on drop: key files go through here.
pub fn read_regular_file(path: &Path, max_len: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::io::{Error as IoError, ErrorKind, Read};
    let not_regular = || IoError::new(ErrorKind::InvalidInput, "not a regular file");
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path)?;
    // Checked again on the open file: the path may have been swapped.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let too_big = || {
        IoError::new(
            ErrorKind::InvalidData,
            format!("larger than {max_len} bytes"),
        )
    };
    if meta.len() > max_len {
        return Err(too_big());
    }
    let mut out = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.take(max_len + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max_len {
        return Err(too_big());
    }
    Ok(out)
}

/// Reads an identity file written by [`write_new_identity`] (or WireGuard).
pub fn load_identity(path: &Path) -> Result<StaticSecret, Error> {
    let text = read_regular_file(path, MAX_IDENTITY_FILE_LEN)
        .map_err(|e| key_file_io_error(path, "cannot read", e))?;
    let trimmed = text.trim_ascii();
    let bytes = Zeroizing::new(
        B64.decode(trimmed)
            .map_err(|_| key_file_error(path, "not a base64 key"))?,
    );
    let secret = Secret::<32>::from_slice(&bytes).ok_or_else(|| {
        key_file_error(path, format!("key must be 32 bytes, found {}", bytes.len()))
    })?;
    Ok(StaticSecret::from_private(secret))
}

/// Base64 of a public key.
pub fn encode_public_key(key: &[u8; 32]) -> String {
    B64.encode(key)
}

/// Parses a base64 public key (or PSK) of exactly 32 bytes.
pub fn decode_public_key(text: &str) -> Result<[u8; 32], Error> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|_| ConfigError::InvalidKey("not valid base64"))?;
    bytes
        .try_into()
        .map_err(|_| ConfigError::InvalidKey("must decode to 32 bytes").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.key");
        let key = write_new_identity(&path, &mut crate::crypto::OsRng).unwrap();
        let loaded = load_identity(&path).unwrap();
        assert_eq!(key.public(), loaded.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = write_new_identity(&path, &mut crate::crypto::OsRng).unwrap_err();
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        assert_eq!(load_identity(&path).unwrap().public(), key.public());
    }

    #[test]
    fn bad_files_are_errors_without_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "c2VjcmV0LXNob3J0\n").unwrap();
        let err = load_identity(&path).unwrap_err().to_string();
        assert!(err.contains("32 bytes"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
        std::fs::write(&path, "!!!").unwrap();
        assert!(load_identity(&path).is_err());
        assert!(load_identity(&dir.path().join("missing")).is_err());
        assert!(decode_public_key("AAAA").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn devices_fifos_and_huge_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_identity(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = load_identity(&fifo).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        } else {
            println!("mkfifo unavailable: FIFO case skipped");
        }
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'A'; 70_000]).unwrap();
        let err = load_identity(&big).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
        assert!(load_identity(dir.path()).is_err());
    }
}
