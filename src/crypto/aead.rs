//! The two Noise AEADs on aws-lc-rs, with Noise's nonce layout.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};

use crate::error::{Error, PeerMisbehaved};

/// Length of the authentication tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;
/// Length of an AEAD key.
pub const KEY_LEN: usize = 32;

/// The AEADs Noise defines.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AeadAlgorithm {
    /// ChaCha20-Poly1305 (RFC 8439); Noise encodes the nonce little-endian.
    ChaChaPoly,
    /// AES-256-GCM; Noise encodes the nonce big-endian.
    AesGcm,
}

impl AeadAlgorithm {
    /// The name used in Noise protocol names.
    pub fn noise_name(self) -> &'static str {
        match self {
            AeadAlgorithm::ChaChaPoly => "ChaChaPoly",
            AeadAlgorithm::AesGcm => "AESGCM",
        }
    }

    /// The 96-bit nonce for counter `n`: 32 zero bits, then the 64-bit
    /// counter, little-endian for ChaChaPoly and big-endian for AESGCM
    /// (Noise spec, section 12).
    pub fn nonce(self, n: u64) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        match self {
            AeadAlgorithm::ChaChaPoly => nonce[4..].copy_from_slice(&n.to_le_bytes()),
            AeadAlgorithm::AesGcm => nonce[4..].copy_from_slice(&n.to_be_bytes()),
        }
        nonce
    }

    fn aws_algorithm(self) -> &'static aws_lc_rs::aead::Algorithm {
        match self {
            AeadAlgorithm::ChaChaPoly => &CHACHA20_POLY1305,
            AeadAlgorithm::AesGcm => &AES_256_GCM,
        }
    }
}

/// An AEAD key (the expanded key schedule lives inside aws-lc, which
/// erases it when dropped).
pub struct AeadKey {
    algorithm: AeadAlgorithm,
    key: LessSafeKey,
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AeadKey({:?}, <redacted>)", self.algorithm)
    }
}

impl AeadKey {
    /// Builds a key from 32 bytes.
    pub fn new(algorithm: AeadAlgorithm, key: &[u8; KEY_LEN]) -> Self {
        // Both algorithms take exactly 32-byte keys, the length we pass.
        let unbound = UnboundKey::new(algorithm.aws_algorithm(), key)
            .expect("32-byte keys are valid for ChaCha20-Poly1305 and AES-256-GCM");
        AeadKey {
            algorithm,
            key: LessSafeKey::new(unbound),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> AeadAlgorithm {
        self.algorithm
    }

    /// Encrypts `buf` in place under counter nonce `n` and appends the tag.
    pub fn seal_in_place<B>(&self, n: u64, ad: &[u8], buf: &mut B)
    where
        B: AsMut<[u8]> + for<'a> Extend<&'a u8>,
    {
        let nonce = Nonce::assume_unique_for_key(self.algorithm.nonce(n));
        // Sealing fails only for inputs beyond 2^38 bytes; callers cap
        // messages at 64 KiB.
        self.key
            .seal_in_place_append_tag(nonce, Aad::from(ad), buf)
            .expect("AEAD seal of a bounded message")
    }

    /// Encrypts `plaintext` into `out` (which must hold `plaintext.len() +
    /// TAG_LEN` bytes); returns the ciphertext length.
    pub fn seal_to(&self, n: u64, ad: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        let len = plaintext.len();
        out[..len].copy_from_slice(plaintext);
        let nonce = Nonce::assume_unique_for_key(self.algorithm.nonce(n));
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(ad), &mut out[..len])
            .expect("AEAD seal of a bounded message");
        out[len..len + TAG_LEN].copy_from_slice(tag.as_ref());
        len + TAG_LEN
    }

    /// Decrypts `buf` (ciphertext and tag) in place; returns the plaintext
    /// length. On failure the buffer's contents are unspecified.
    pub fn open_in_place(&self, n: u64, ad: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
        if buf.len() < TAG_LEN {
            return Err(PeerMisbehaved::BadMessageLength.into());
        }
        let nonce = Nonce::assume_unique_for_key(self.algorithm.nonce(n));
        self.key
            .open_in_place(nonce, Aad::from(ad), buf)
            .map(|plain| plain.len())
            .map_err(|_| PeerMisbehaved::DecryptFailed.into())
    }

    /// Decrypts `ciphertext` into `out` (which must hold `ciphertext.len() -
    /// TAG_LEN` bytes); returns the plaintext length.
    pub fn open_to(
        &self,
        n: u64,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let Some(len) = ciphertext.len().checked_sub(TAG_LEN) else {
            return Err(PeerMisbehaved::BadMessageLength.into());
        };
        if out.len() < len {
            return Err(PeerMisbehaved::BadMessageLength.into());
        }
        let (body, tag) = ciphertext.split_at(len);
        out[..len].copy_from_slice(body);
        let nonce = Nonce::assume_unique_for_key(self.algorithm.nonce(n));
        match self
            .key
            .open_in_place_separate_tag(nonce, Aad::from(ad), tag, &mut out[..len])
        {
            Ok(_) => Ok(len),
            Err(_) => {
                // Do not leave unauthenticated plaintext behind.
                out[..len].fill(0);
                Err(PeerMisbehaved::DecryptFailed.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_layouts() {
        assert_eq!(
            AeadAlgorithm::ChaChaPoly.nonce(1),
            [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            AeadAlgorithm::AesGcm.nonce(1),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn seal_open_both_apis() {
        for alg in [AeadAlgorithm::ChaChaPoly, AeadAlgorithm::AesGcm] {
            let key = AeadKey::new(alg, &[3u8; 32]);
            let mut buf = b"hello".to_vec();
            key.seal_in_place(5, b"ad", &mut buf);
            let mut out = [0u8; 21];
            assert_eq!(key.seal_to(5, b"ad", b"hello", &mut out), 21);
            assert_eq!(&out[..], &buf[..]);
            let mut plain = [0u8; 5];
            assert_eq!(key.open_to(5, b"ad", &buf, &mut plain).unwrap(), 5);
            assert_eq!(&plain, b"hello");
            assert!(key.open_to(6, b"ad", &buf, &mut plain).is_err());
            assert_eq!(plain, [0u8; 5]);
            let n = key.open_in_place(5, b"ad", &mut buf).unwrap();
            assert_eq!(&buf[..n], b"hello");
        }
    }
}
