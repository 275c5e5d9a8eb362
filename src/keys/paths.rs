//! Every path the store touches, derived from its directory and from
//! validated key ids: nothing read from a file is ever used as a path.

use std::path::{Path, PathBuf};

use super::fsutil::corrupt;
use crate::error::Error;

/// The fixed names inside a store directory.
pub(crate) const INDEX: &str = "store.json";
pub(crate) const LOCK: &str = "store.lock";
pub(crate) const TRUST: &str = "trust.json";
pub(crate) const AUDIT: &str = "audit.jsonl";
pub(crate) const KEYS: &str = "keys";
pub(crate) const ROTATIONS: &str = "rotations";
/// The absolute paths of the `--trust-store` files the store audits, one
/// per line, so recovery finds their committed lines after a crash.
pub(crate) const TRUST_FILES: &str = "trust-files";

/// True if `id` is a key id: 32 lowercase hex digits.
pub(crate) fn is_key_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The paths of one store directory.
#[derive(Debug, Clone)]
pub(crate) struct StorePaths {
    dir: PathBuf,
}

impl StorePaths {
    pub(crate) fn new(dir: PathBuf) -> Self {
        StorePaths { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn index(&self) -> PathBuf {
        self.dir.join(INDEX)
    }

    pub(crate) fn trust(&self) -> PathBuf {
        self.dir.join(TRUST)
    }

    pub(crate) fn audit(&self) -> PathBuf {
        self.dir.join(AUDIT)
    }

    pub(crate) fn keys_dir(&self) -> PathBuf {
        self.dir.join(KEYS)
    }

    pub(crate) fn rotations_dir(&self) -> PathBuf {
        self.dir.join(ROTATIONS)
    }

    /// `keys/<id>.pem` for a validated id.
    pub(crate) fn key_file(&self, id: &str) -> Result<PathBuf, Error> {
        self.checked(id)
            .map(|id| self.keys_dir().join(format!("{id}.pem")))
    }

    /// `rotations/<old id>.json` for a validated id.
    pub(crate) fn rotation_file(&self, old_id: &str) -> Result<PathBuf, Error> {
        self.checked(old_id)
            .map(|id| self.rotations_dir().join(format!("{id}.json")))
    }

    fn checked<'a>(&self, id: &'a str) -> Result<&'a str, Error> {
        if is_key_id(id) {
            Ok(id)
        } else {
            Err(corrupt(
                &self.index(),
                "a key id is not 32 lowercase hex digits",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hex_ids_make_paths() {
        let paths = StorePaths::new(PathBuf::from("/s"));
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            paths.key_file(id).unwrap(),
            PathBuf::from(format!("/s/keys/{id}.pem"))
        );
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "",
            "0123456789ABCDEF0123456789abcdef",
        ] {
            assert!(paths.key_file(bad).is_err(), "{bad}");
            assert!(paths.rotation_file(bad).is_err(), "{bad}");
        }
    }
}
