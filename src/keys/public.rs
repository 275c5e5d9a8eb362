//! [`PublicKey`]: one type for every kind of public key, in configurations,
//! in [`SessionInfo`](crate::session::SessionInfo) and in errors.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::crypto::kem::ENCAPSULATION_KEY_LEN;
use crate::error::{ConfigError, Error};

/// Length of an X25519 or Ed25519 public key.
pub const KEY_LEN: usize = 32;
/// Length of an X25519 key followed by an ML-KEM-768 encapsulation key.
pub const X25519_MLKEM768_LEN: usize = KEY_LEN + ENCAPSULATION_KEY_LEN;

/// What kind of key a [`PublicKey`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// An X25519 key: Noise statics, hybrid statics.
    X25519,
    /// An Ed25519 key: SIGMA identities.
    Ed25519,
    /// An X25519 key followed by an ML-KEM-768 encapsulation key: the
    /// static identity of the PQ-authenticated protocols.
    X25519MlKem768,
    /// An RSA public key (DER SubjectPublicKeyInfo): RSA key transport.
    Rsa,
    /// An RFC 7919 ffdhe3072 public value (384 bytes, big-endian): the
    /// legacy finite-field DH baseline.
    Ffdhe3072,
    /// A NIST P-256 key, uncompressed SEC1 (`0x04 || x || y`, 65 bytes):
    /// identities of the FIPS-algorithm SIGMA suite (ECDSA).
    P256,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::X25519 => "X25519",
            KeyKind::Ed25519 => "Ed25519",
            KeyKind::X25519MlKem768 => "X25519 + ML-KEM-768",
            KeyKind::Rsa => "RSA",
            KeyKind::Ffdhe3072 => "ffdhe3072",
            KeyKind::P256 => "P-256",
        })
    }
}

/// A public key of some [`KeyKind`]. Two keys are equal when they have the
/// same kind and bytes. `Display` and `Debug` show the kind and base64.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    kind: KeyKind,
    bytes: Box<[u8]>,
}

impl PublicKey {
    /// An X25519 key.
    pub fn x25519(bytes: [u8; KEY_LEN]) -> Self {
        PublicKey {
            kind: KeyKind::X25519,
            bytes: Box::new(bytes),
        }
    }

    /// An Ed25519 key.
    pub fn ed25519(bytes: [u8; KEY_LEN]) -> Self {
        PublicKey {
            kind: KeyKind::Ed25519,
            bytes: Box::new(bytes),
        }
    }

    /// A key of `kind` from its bytes, checking the length (for P-256 also
    /// that it is a point on the curve; for RSA only that it is not empty,
    /// the protocol parses it).
    pub fn from_bytes(kind: KeyKind, bytes: &[u8]) -> Result<Self, Error> {
        let ok = match kind {
            KeyKind::X25519 | KeyKind::Ed25519 => bytes.len() == KEY_LEN,
            KeyKind::X25519MlKem768 => bytes.len() == X25519_MLKEM768_LEN,
            KeyKind::Rsa => !bytes.is_empty() && bytes.len() <= 4096,
            KeyKind::Ffdhe3072 => bytes.len() == 384,
            KeyKind::P256 => crate::crypto::p256::is_valid_public_key(bytes),
        };
        if !ok {
            return Err(ConfigError::InvalidKey(match kind {
                KeyKind::X25519 => "an X25519 public key is 32 bytes",
                KeyKind::Ed25519 => "an Ed25519 public key is 32 bytes",
                KeyKind::X25519MlKem768 => {
                    "an X25519 + ML-KEM-768 public key is 32 + 1184 = 1216 bytes"
                }
                KeyKind::Rsa => "an RSA public key is 1 to 4096 bytes of DER",
                KeyKind::Ffdhe3072 => "an ffdhe3072 public value is 384 bytes",
                KeyKind::P256 => {
                    "a P-256 public key is an uncompressed point on the curve: 65 bytes, 0x04 || x || y"
                }
            })
            .into());
        }
        Ok(PublicKey {
            kind,
            bytes: bytes.into(),
        })
    }

    /// A key of `kind` from base64 (standard alphabet, padded; surrounding
    /// whitespace is ignored).
    pub fn from_base64(kind: KeyKind, text: &str) -> Result<Self, Error> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| ConfigError::InvalidKey("a public key must be base64"))?;
        Self::from_bytes(kind, &bytes)
    }

    /// A key whose bytes the caller has already checked for `kind` (a
    /// handshake that verified a signature under it).
    pub(crate) fn checked(kind: KeyKind, bytes: &[u8]) -> Self {
        PublicKey {
            kind,
            bytes: bytes.into(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key's bytes, as they appear on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The key as base64 (standard alphabet, padded).
    pub fn to_base64(&self) -> String {
        B64.encode(&self.bytes)
    }

    /// The 32 bytes of an X25519 or Ed25519 key.
    pub(crate) fn as_array32(&self) -> Option<&[u8; KEY_LEN]> {
        (*self.bytes).try_into().ok()
    }

    /// Checks that the key is of `kind`.
    pub(crate) fn expect_kind(&self, kind: KeyKind) -> Result<&Self, Error> {
        if self.kind == kind {
            Ok(self)
        } else {
            Err(ConfigError::WrongKeyKind {
                expected: kind,
                given: self.kind,
            }
            .into())
        }
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.kind, self.to_base64())
    }
}

impl PartialEq<[u8]> for PublicKey {
    fn eq(&self, other: &[u8]) -> bool {
        *self.bytes == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for PublicKey {
    fn eq(&self, other: &[u8; N]) -> bool {
        *self.bytes == other[..]
    }
}

impl std::ops::Deref for PublicKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for PublicKey {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_and_kinds_kept() {
        let k = PublicKey::from_bytes(KeyKind::X25519, &[1; 32]).unwrap();
        assert_eq!(k.kind(), KeyKind::X25519);
        assert_eq!(k, PublicKey::x25519([1; 32]));
        assert_ne!(k, PublicKey::ed25519([1; 32]));
        assert!(PublicKey::from_bytes(KeyKind::X25519, &[1; 31]).is_err());
        assert!(PublicKey::from_bytes(KeyKind::X25519MlKem768, &[1; 32]).is_err());
        assert!(PublicKey::from_bytes(KeyKind::X25519MlKem768, &[1; 1216]).is_ok());
        let b64 = k.to_base64();
        assert_eq!(PublicKey::from_base64(KeyKind::X25519, &b64).unwrap(), k);
        assert!(PublicKey::from_base64(KeyKind::X25519, "!!").is_err());
        assert!(matches!(
            k.expect_kind(KeyKind::Ed25519),
            Err(Error::Config(ConfigError::WrongKeyKind { .. }))
        ));
        assert!(format!("{k:?}").contains("X25519"));
    }
}
