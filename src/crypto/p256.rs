//! NIST P-256 on aws-lc-rs: ephemeral ECDH (SP 800-56A) and ECDSA with
//! SHA-256 (FIPS 186-5), the FIPS-algorithm SIGMA suite's primitives.
//!
//! Public keys are SEC1 uncompressed points (`0x04 || x || y`, 65 bytes);
//! signatures are fixed-length `r || s` (64 bytes, as PKCS#11's CKM_ECDSA
//! returns them); the ECDH shared secret is the x-coordinate (32 bytes).

use std::fmt;

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, ECDH_P256};
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, ParsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};

use super::rng::RandomSource;
use super::secret::Secret;
use crate::error::{Error, PeerMisbehaved};

/// Length of an uncompressed SEC1 public key.
pub const PUBLIC_KEY_LEN: usize = 65;
/// Length of a private scalar and of the ECDH shared secret.
pub const SCALAR_LEN: usize = 32;
/// Length of a fixed-length `r || s` signature.
pub const SIGNATURE_LEN: usize = 64;

/// True if `public` is 65 bytes starting with 0x04 and a point on the
/// curve (not the point at infinity, which has no such encoding).
pub fn is_valid_public_key(public: &[u8]) -> bool {
    public.len() == PUBLIC_KEY_LEN
        && public[0] == 0x04
        && ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public).is_ok()
}

/// An ephemeral P-256 ECDH key, used once.
pub struct P256Ephemeral {
    key: PrivateKey,
    public: [u8; PUBLIC_KEY_LEN],
}

impl P256Ephemeral {
    /// A key from `rng`: 32 bytes at a time until they form a scalar in
    /// `[1, n-1]` (a retry happens with probability about 2^-32), so the
    /// key is a function of the random stream (known-answer vectors).
    pub fn generate(rng: &mut dyn RandomSource) -> Self {
        loop {
            let scalar = Secret::<SCALAR_LEN>::random(rng);
            if let Some(key) = Self::from_scalar(&scalar) {
                return key;
            }
        }
    }

    /// The key for a big-endian scalar; `None` for 0 or a value >= n.
    pub fn from_scalar(scalar: &Secret<SCALAR_LEN>) -> Option<Self> {
        let key = PrivateKey::from_private_key(&ECDH_P256, scalar.expose()).ok()?;
        let computed = key.compute_public_key().ok()?;
        let public: [u8; PUBLIC_KEY_LEN] = computed.as_ref().try_into().ok()?;
        Some(P256Ephemeral { key, public })
    }

    /// The uncompressed public key.
    pub fn public(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public
    }

    /// The shared secret (the x-coordinate) with `peer_public`; an invalid
    /// or off-curve point is [`PeerMisbehaved::InvalidPublicKey`].
    pub fn agree(&self, peer_public: &[u8]) -> Result<Secret<SCALAR_LEN>, Error> {
        if peer_public.len() != PUBLIC_KEY_LEN || peer_public[0] != 0x04 {
            return Err(PeerMisbehaved::InvalidPublicKey.into());
        }
        agreement::agree(
            &self.key,
            UnparsedPublicKey::new(&ECDH_P256, peer_public),
            Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey),
            |shared| Secret::from_slice(shared).ok_or(PeerMisbehaved::InvalidPublicKey.into()),
        )
    }
}

/// An ECDSA P-256 private key in memory (aws-lc; the scalar never leaves
/// it except through [`P256SigningKey::to_pkcs8`]). Signatures are
/// randomized (aws-lc draws the nonce from its own DRBG). Clones share the
/// key; `Debug` shows only the public key.
#[derive(Clone)]
pub struct P256SigningKey {
    pair: std::sync::Arc<EcdsaKeyPair>,
    public: [u8; PUBLIC_KEY_LEN],
}

impl P256SigningKey {
    /// A new key from the operating system's generator (through aws-lc).
    pub fn generate() -> Result<Self, Error> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| invalid("aws-lc could not generate a P-256 key"))?;
        Self::wrap(pair)
    }

    /// The key for a big-endian private scalar in `[1, n-1]`.
    pub fn from_scalar(scalar: &Secret<SCALAR_LEN>) -> Result<Self, Error> {
        let public = P256Ephemeral::from_scalar(scalar)
            .ok_or_else(|| invalid("a P-256 private key is a scalar in [1, n-1]"))?
            .public;
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            scalar.expose(),
            &public,
        )
        .map_err(|_| invalid("a P-256 private key is a scalar in [1, n-1]"))?;
        Self::wrap(pair)
    }

    /// Parses a PKCS#8 `PrivateKeyInfo` (RFC 5915 inside, named curve
    /// P-256).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| invalid("not a P-256 PKCS#8 private key"))?;
        Self::wrap(pair)
    }

    /// The key as PKCS#8 DER (zeroized on drop). Keep it short-lived.
    pub fn to_pkcs8(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        let doc = self
            .pair
            .to_pkcs8v1()
            .map_err(|_| invalid("aws-lc could not encode the P-256 key"))?;
        Ok(zeroize::Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// The private scalar, big-endian (for tests and key files).
    pub fn scalar(&self) -> Result<Secret<SCALAR_LEN>, Error> {
        let bin = self
            .pair
            .private_key()
            .as_be_bytes()
            .map_err(|_| invalid("aws-lc could not export the P-256 scalar"))?;
        Secret::from_slice(bin.as_ref()).ok_or_else(|| invalid("P-256 scalar length"))
    }

    fn wrap(pair: EcdsaKeyPair) -> Result<Self, Error> {
        let public = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| invalid("P-256 public key length"))?;
        Ok(P256SigningKey {
            pair: std::sync::Arc::new(pair),
            public,
        })
    }

    /// The uncompressed public key.
    pub fn public(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public
    }

    /// ECDSA P-256 with SHA-256 over `message`: `r || s`.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; SIGNATURE_LEN], Error> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self
            .pair
            .sign(&rng, message)
            .map_err(|_| invalid("aws-lc could not sign with the P-256 key"))?;
        sig.as_ref()
            .try_into()
            .map_err(|_| invalid("P-256 signature length"))
    }
}

impl fmt::Debug for P256SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P256SigningKey")
            .field("public", &hex::encode(self.public))
            .field("private", &"<redacted>")
            .finish()
    }
}

fn invalid(reason: &'static str) -> Error {
    crate::error::ConfigError::InvalidKey(reason).into()
}

/// Checks an ECDSA P-256 SHA-256 signature (`r || s`) over `message`:
/// [`PeerMisbehaved::InvalidPublicKey`] for a key that is not a point,
/// [`PeerMisbehaved::BadSignature`] for the rest.
pub fn verify(public: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Error> {
    if public.len() != PUBLIC_KEY_LEN || public[0] != 0x04 {
        return Err(PeerMisbehaved::InvalidPublicKey.into());
    }
    let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
        .map_err(|_| PeerMisbehaved::InvalidPublicKey)?;
    if signature.len() != SIGNATURE_LEN {
        return Err(PeerMisbehaved::BadSignature.into());
    }
    key.verify_sig(message, signature)
        .map_err(|_| PeerMisbehaved::BadSignature.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5903 section 8.1 (ECDH on the 256-bit group).
    #[test]
    fn rfc5903_ecdh() {
        let scalar = |h: &str| Secret::<32>::from_slice(&hex::decode(h).unwrap()).unwrap();
        let i = P256Ephemeral::from_scalar(&scalar(
            "c88f01f510d9ac3f70a292daa2316de544e9aab8afe84049c62a9c57862d1433",
        ))
        .unwrap();
        let r = P256Ephemeral::from_scalar(&scalar(
            "c6ef9c5d78ae012a011164acb397ce2088685d8f06bf9be0b283ab46476bee53",
        ))
        .unwrap();
        assert_eq!(
            hex::encode(&i.public()[1..33]),
            "dad0b65394221cf9b051e1feca5787d098dfe637fc90b9ef945d0c3772581180"
        );
        let s1 = i.agree(r.public()).unwrap();
        assert_eq!(s1, r.agree(i.public()).unwrap());
        assert_eq!(
            hex::encode(s1.expose()),
            "d6840f6b42f6edafd13116e0e12565202fef8e9ece7dce03812464d04b9442de"
        );
    }

    #[test]
    fn bad_points_and_scalars_are_refused() {
        let e = P256Ephemeral::from_scalar(&Secret::new([7; 32])).unwrap();
        let mut off = *e.public();
        off[64] ^= 1;
        for bad in [&off[..], &[0u8; 65][..], &e.public()[..64], &[4u8; 1][..]] {
            assert!(matches!(
                e.agree(bad),
                Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey))
            ));
            assert!(!is_valid_public_key(bad));
        }
        assert!(is_valid_public_key(e.public()));
        assert!(P256Ephemeral::from_scalar(&Secret::new([0; 32])).is_none());
        assert!(P256Ephemeral::from_scalar(&Secret::new([0xff; 32])).is_none());
        assert!(P256SigningKey::from_scalar(&Secret::new([0xff; 32])).is_err());
    }

    #[test]
    fn sign_verify_and_round_trips() {
        let key = P256SigningKey::from_scalar(&Secret::new([9; 32])).unwrap();
        let again = P256SigningKey::from_pkcs8(&key.to_pkcs8().unwrap()).unwrap();
        assert_eq!(key.public(), again.public());
        assert_eq!(key.scalar().unwrap(), Secret::new([9; 32]));
        let sig = key.sign(b"msg").unwrap();
        verify(key.public(), b"msg", &sig).unwrap();
        let mut bad = sig;
        bad[5] ^= 1;
        assert!(matches!(
            verify(key.public(), b"msg", &bad),
            Err(Error::PeerMisbehaved(PeerMisbehaved::BadSignature))
        ));
        assert!(verify(key.public(), b"msh", &sig).is_err());
        assert!(verify(&[0u8; 65], b"msg", &sig).is_err());
        let text = format!("{key:?}");
        assert!(text.contains("redacted") && !text.contains(&hex::encode([9u8; 32])));
        // Two keys from the OS differ.
        let (a, b) = (
            P256SigningKey::generate().unwrap(),
            P256SigningKey::generate().unwrap(),
        );
        assert_ne!(a.public(), b.public());
    }
}
