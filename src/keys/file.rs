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
        _ => key_file_error(path, format!("cannot create: {e}")),
    })?;
    let line = Zeroizing::new(format!("{}\n", B64.encode(key.private().expose())));
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| key_file_error(path, format!("cannot write: {e}")))?;
    Ok(key)
}

/// Reads an identity file written by [`write_new_identity`] (or WireGuard).
pub fn load_identity(path: &Path) -> Result<StaticSecret, Error> {
    let text = Zeroizing::new(
        std::fs::read(path).map_err(|e| key_file_error(path, format!("cannot read: {e}")))?,
    );
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
}
