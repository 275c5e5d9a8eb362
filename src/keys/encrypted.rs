//! Encryption of private key files at rest: the age format with its scrypt
//! (passphrase) recipient, or plaintext behind an explicit opt-in.

use std::fmt;
use std::path::Path;

use age::secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, KeyStoreError};

/// The default scrypt work factor (log2 N) for new key files: age's own
/// default, about one second on a current machine.
pub const DEFAULT_SCRYPT_LOG_N: u8 = 18;

/// The largest work factor accepted when decrypting, so a hostile file cannot
/// make us spin for minutes.
pub const MAX_SCRYPT_LOG_N: u8 = 22;

/// Magic first line of an unencrypted key file.
pub(crate) const PLAINTEXT_MAGIC: &[u8] = b"AKEX-INSECURE-PLAINTEXT-KEY-V1\n";

/// A passphrase: zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct Passphrase(SecretString);

impl Passphrase {
    /// Wraps a passphrase (the `String` is moved, not copied).
    pub fn new(text: String) -> Self {
        Passphrase(SecretString::from(text))
    }

    fn secret(&self) -> SecretString {
        SecretString::from(self.0.expose_secret().to_owned())
    }

    /// True if the passphrase is empty.
    pub fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// How a private key file is protected at rest.
#[derive(Clone, Debug)]
pub enum Protection {
    /// age with the scrypt recipient; `log_n` is the work factor for writes.
    Passphrase {
        /// The passphrase.
        passphrase: Passphrase,
        /// scrypt's log2 N for new files.
        log_n: u8,
    },
    /// No encryption (`--insecure-plaintext`): only the file mode protects it.
    InsecurePlaintext,
}

impl Protection {
    /// Passphrase protection with the default work factor.
    pub fn passphrase(passphrase: Passphrase) -> Self {
        Protection::Passphrase {
            passphrase,
            log_n: DEFAULT_SCRYPT_LOG_N,
        }
    }

    /// True for the encrypted form.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Protection::Passphrase { .. })
    }
}

/// Seals a key payload for storage.
pub(crate) fn seal(payload: &[u8], protection: &Protection) -> Result<Vec<u8>, Error> {
    match protection {
        Protection::Passphrase { passphrase, log_n } => {
            if passphrase.is_empty() {
                return Err(KeyStoreError::NoPassphrase("the passphrase is empty".into()).into());
            }
            let mut recipient = age::scrypt::Recipient::new(passphrase.secret());
            recipient.set_work_factor((*log_n).clamp(1, MAX_SCRYPT_LOG_N));
            age::encrypt(&recipient, payload).map_err(|e| {
                KeyStoreError::Io {
                    path: "<encryption>".into(),
                    reason: e.to_string(),
                }
                .into()
            })
        }
        Protection::InsecurePlaintext => {
            let mut out = PLAINTEXT_MAGIC.to_vec();
            out.extend_from_slice(payload);
            Ok(out)
        }
    }
}

/// Opens a stored key file. `encrypted` is what the store index recorded; a
/// file whose form differs is reported as corrupt.
pub(crate) fn open(
    bytes: &[u8],
    encrypted: bool,
    protection: Option<&Protection>,
    name: &str,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let corrupt = |reason: &str| -> Error {
        KeyStoreError::Corrupt {
            path: path.display().to_string(),
            reason: reason.into(),
        }
        .into()
    };
    if !encrypted {
        return bytes
            .strip_prefix(PLAINTEXT_MAGIC)
            .map(|p| Zeroizing::new(p.to_vec()))
            .ok_or_else(|| corrupt("not an akex plaintext key file"));
    }
    let passphrase = match protection {
        Some(Protection::Passphrase { passphrase, .. }) => passphrase,
        _ => {
            return Err(KeyStoreError::NoPassphrase(format!(
                "key {name:?} is encrypted and needs a passphrase"
            ))
            .into())
        }
    };
    let mut identity = age::scrypt::Identity::new(passphrase.secret());
    identity.set_max_work_factor(MAX_SCRYPT_LOG_N);
    match age::decrypt(&identity, bytes) {
        Ok(plain) => Ok(Zeroizing::new(plain)),
        Err(age::DecryptError::DecryptionFailed) | Err(age::DecryptError::NoMatchingKeys) => {
            Err(KeyStoreError::WrongPassphrase(name.into()).into())
        }
        Err(age::DecryptError::ExcessiveWork { .. }) => {
            Err(corrupt("scrypt work factor is above the accepted maximum"))
        }
        Err(_) => Err(corrupt("not a valid age file")),
    }
}
