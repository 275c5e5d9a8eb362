//! [`Signer`]: what a signature-authenticated handshake (SIGMA) and a
//! rotation statement ask of an identity key. The key itself may be in
//! memory ([`SigningKey`], [`P256SigningKey`]) or in a hardware module
//! (`akex::pkcs11::Pkcs11Signer`, feature `pkcs11`): the handshake only
//! calls [`Signer::sign`], so a key that never leaves its token works the
//! same way as one in memory.

use std::fmt;

use super::public::KeyKind;
use crate::crypto::ed25519::{self, SigningKey};
use crate::crypto::p256::{self, P256SigningKey};
use crate::error::{ConfigError, Error};

/// The signature schemes akex identities sign with.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// Ed25519 (RFC 8032): 32-byte public keys, 64-byte signatures.
    Ed25519,
    /// ECDSA over P-256 with SHA-256 (FIPS 186-5): 65-byte uncompressed
    /// SEC1 public keys, 64-byte `r || s` signatures.
    EcdsaP256Sha256,
}

impl SignatureScheme {
    /// The kind of public key of this scheme.
    pub fn key_kind(self) -> KeyKind {
        match self {
            SignatureScheme::Ed25519 => KeyKind::Ed25519,
            SignatureScheme::EcdsaP256Sha256 => KeyKind::P256,
        }
    }

    /// Length of a public key.
    pub fn public_key_len(self) -> usize {
        match self {
            SignatureScheme::Ed25519 => ed25519::KEY_LEN,
            SignatureScheme::EcdsaP256Sha256 => p256::PUBLIC_KEY_LEN,
        }
    }

    /// Length of a signature (64 bytes for both schemes).
    pub fn signature_len(self) -> usize {
        match self {
            SignatureScheme::Ed25519 => ed25519::SIGNATURE_LEN,
            SignatureScheme::EcdsaP256Sha256 => p256::SIGNATURE_LEN,
        }
    }

    /// True if `public` is a key of this scheme that someone can hold the
    /// private key of: for Ed25519 not a small-order or non-canonical
    /// point, for P-256 an uncompressed point on the curve.
    pub fn is_valid_public_key(self, public: &[u8]) -> bool {
        match self {
            SignatureScheme::Ed25519 => {
                <[u8; 32]>::try_from(public).is_ok_and(|k| !ed25519::is_weak_public_key(&k))
            }
            SignatureScheme::EcdsaP256Sha256 => p256::is_valid_public_key(public),
        }
    }

    /// Checks `signature` over `message` under `public`: a typed
    /// [`PeerMisbehaved`](crate::error::PeerMisbehaved) error if it does
    /// not verify or the key is not valid.
    pub fn verify(self, public: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Error> {
        match self {
            SignatureScheme::Ed25519 => {
                if !self.is_valid_public_key(public) {
                    return Err(crate::error::PeerMisbehaved::InvalidPublicKey.into());
                }
                ed25519::verify(public, message, signature)
            }
            // Parses (and so validates) the point once.
            SignatureScheme::EcdsaP256Sha256 => p256::verify(public, message, signature),
        }
    }
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureScheme::Ed25519 => "Ed25519",
            SignatureScheme::EcdsaP256Sha256 => "ECDSA P-256 SHA-256",
        })
    }
}

/// An identity that signs: the handshake asks it for one signature over
/// its transcript per handshake, and never for the private key.
///
/// Implementations must be cheap to share between connections (`Arc`) and
/// safe to call from several threads. `Debug` must not print secrets.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The signature scheme.
    fn scheme(&self) -> SignatureScheme;

    /// The public key, in the scheme's encoding
    /// ([`SignatureScheme::public_key_len`] bytes).
    fn public_key(&self) -> &[u8];

    /// Signs `message` (the whole message: the scheme hashes it if it
    /// needs to). The signature has [`SignatureScheme::signature_len`]
    /// bytes. A failure (a hardware module that went away, a PIN that
    /// expired) fails the handshake that asked.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;
}

/// Signs with `signer` and checks the signature has its scheme's length
/// (a token or custom signer that returns something else fails here, not
/// at the peer).
pub(crate) fn sign_checked(signer: &dyn Signer, message: &[u8]) -> Result<Vec<u8>, Error> {
    let signature = signer.sign(message)?;
    let want = signer.scheme().signature_len();
    if signature.len() != want {
        return Err(ConfigError::Invalid(format!(
            "the signer returned a {}-byte signature, {want} expected",
            signature.len()
        ))
        .into());
    }
    Ok(signature)
}

impl Signer for SigningKey {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::Ed25519
    }

    fn public_key(&self) -> &[u8] {
        self.public()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(SigningKey::sign(self, message).to_vec())
    }
}

impl Signer for P256SigningKey {
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::EcdsaP256Sha256
    }

    fn public_key(&self) -> &[u8] {
        self.public()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        P256SigningKey::sign(self, message).map(|s| s.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Secret;

    #[test]
    fn both_in_memory_signers_sign_and_verify() {
        let ed = SigningKey::from_seed(Secret::new([1; 32]));
        let p = P256SigningKey::from_scalar(&Secret::new([2; 32])).unwrap();
        let signers: [&dyn Signer; 2] = [&ed, &p];
        for s in signers {
            let scheme = s.scheme();
            assert_eq!(s.public_key().len(), scheme.public_key_len());
            let sig = s.sign(b"transcript").unwrap();
            assert_eq!(sig.len(), scheme.signature_len());
            scheme.verify(s.public_key(), b"transcript", &sig).unwrap();
            assert!(scheme.verify(s.public_key(), b"other", &sig).is_err());
            assert!(!format!("{s:?}").contains(&hex::encode([1u8; 32])));
        }
        // A key of one scheme is not a key of the other.
        assert!(!SignatureScheme::Ed25519.is_valid_public_key(p.public_key()));
        assert!(!SignatureScheme::EcdsaP256Sha256.is_valid_public_key(ed.public_key()));
        assert_eq!(SignatureScheme::EcdsaP256Sha256.key_kind(), KeyKind::P256);
    }
}
