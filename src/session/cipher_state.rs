//! The Noise CipherState, exactly as the spec defines it.

use zeroize::Zeroize;

use crate::crypto::aead::KEY_LEN;
use crate::crypto::{AeadAlgorithm, AeadKey, TAG_LEN};
use crate::error::{Error, LimitReached};

/// A key and a 64-bit counter nonce (Noise spec, section 5.1).
///
/// The nonce 2^64-1 is reserved for `REKEY()` and never used for a message:
/// once the counter gets there, encryption and decryption fail with
/// [`LimitReached::NonceExhausted`]. A failed decryption does not advance the
/// counter.
#[derive(Debug)]
pub struct CipherState {
    key: AeadKey,
    n: u64,
}

impl CipherState {
    /// A CipherState with key `k` and `n = 0`.
    pub fn new(aead: AeadAlgorithm, k: &[u8; KEY_LEN]) -> Self {
        CipherState {
            key: AeadKey::new(aead, k),
            n: 0,
        }
    }

    /// The next nonce (= the number of messages processed).
    pub fn nonce(&self) -> u64 {
        self.n
    }

    /// Sets the nonce (Noise `SetNonce`), e.g. to resume a counter
    /// (hazardous: reusing a nonce under one key breaks the AEAD).
    #[cfg(any(test, feature = "hazmat"))]
    pub fn set_nonce(&mut self, n: u64) {
        self.n = n;
    }

    /// The AEAD.
    pub fn aead(&self) -> AeadAlgorithm {
        self.key.algorithm()
    }

    fn check_nonce(&self) -> Result<(), Error> {
        if self.n == u64::MAX {
            Err(LimitReached::NonceExhausted.into())
        } else {
            Ok(())
        }
    }

    /// `EncryptWithAd`: encrypts `buf` in place, appends the tag, advances the nonce.
    pub fn encrypt_in_place<B>(&mut self, ad: &[u8], buf: &mut B) -> Result<(), Error>
    where
        B: AsMut<[u8]> + for<'a> Extend<&'a u8>,
    {
        self.check_nonce()?;
        self.key.seal_in_place(self.n, ad, buf);
        self.n += 1;
        Ok(())
    }

    /// `DecryptWithAd`: decrypts `buf` in place and returns the plaintext
    /// length; the nonce advances only on success.
    pub fn decrypt_in_place(&mut self, ad: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
        self.check_nonce()?;
        let n = self.key.open_in_place(self.n, ad, buf)?;
        self.n += 1;
        Ok(n)
    }

    /// `EncryptWithAd` appending the ciphertext and tag to `out`.
    pub fn encrypt_append(
        &mut self,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.check_nonce()?;
        let start = out.len();
        out.resize(start + plaintext.len() + TAG_LEN, 0);
        self.key.seal_to(self.n, ad, plaintext, &mut out[start..]);
        self.n += 1;
        Ok(())
    }

    /// `DecryptWithAd` appending the plaintext to `out`; on failure `out`
    /// is left as it was.
    pub fn decrypt_append(
        &mut self,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.check_nonce()?;
        let start = out.len();
        out.resize(start + ciphertext.len().saturating_sub(TAG_LEN), 0);
        match self.key.open_to(self.n, ad, ciphertext, &mut out[start..]) {
            Ok(_) => {
                self.n += 1;
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// `REKEY()`: the new key is the first 32 bytes of encrypting 32 zero
    /// bytes under nonce 2^64-1. The nonce is left unchanged.
    pub fn rekey(&mut self) {
        let mut block = [0u8; KEY_LEN + TAG_LEN];
        self.key.seal_to(u64::MAX, &[], &[0u8; KEY_LEN], &mut block);
        let mut k = [0u8; KEY_LEN];
        k.copy_from_slice(&block[..KEY_LEN]);
        self.key = AeadKey::new(self.key.algorithm(), &k);
        k.zeroize();
        block.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_nonce_is_never_used() {
        let mut cs = CipherState::new(AeadAlgorithm::ChaChaPoly, &[1u8; 32]);
        cs.set_nonce(u64::MAX - 1);
        let mut buf = b"x".to_vec();
        cs.encrypt_in_place(&[], &mut buf).unwrap();
        let mut buf = b"y".to_vec();
        assert!(matches!(
            cs.encrypt_in_place(&[], &mut buf),
            Err(Error::Limit(LimitReached::NonceExhausted))
        ));
        let mut rx = CipherState::new(AeadAlgorithm::ChaChaPoly, &[1u8; 32]);
        rx.set_nonce(u64::MAX);
        assert!(matches!(
            rx.decrypt_in_place(&[], &mut [0u8; 17]),
            Err(Error::Limit(LimitReached::NonceExhausted))
        ));
    }

    #[test]
    fn failed_decrypt_keeps_nonce() {
        let mut tx = CipherState::new(AeadAlgorithm::AesGcm, &[2u8; 32]);
        let mut rx = CipherState::new(AeadAlgorithm::AesGcm, &[2u8; 32]);
        let mut m = b"hello".to_vec();
        tx.encrypt_in_place(&[], &mut m).unwrap();
        let mut bad = m.clone();
        bad[0] ^= 1;
        assert!(rx.decrypt_in_place(&[], &mut bad).is_err());
        assert_eq!(rx.nonce(), 0);
        let n = rx.decrypt_in_place(&[], &mut m).unwrap();
        assert_eq!(&m[..n], b"hello");
        assert_eq!(rx.nonce(), 1);
    }

    #[test]
    fn rekey_matches_on_both_sides_and_changes_key() {
        for aead in [AeadAlgorithm::ChaChaPoly, AeadAlgorithm::AesGcm] {
            let mut tx = CipherState::new(aead, &[3u8; 32]);
            let mut rx = CipherState::new(aead, &[3u8; 32]);
            tx.rekey();
            let mut m = b"after".to_vec();
            tx.encrypt_in_place(&[], &mut m).unwrap();
            let mut stale = m.clone();
            assert!(rx.decrypt_in_place(&[], &mut stale).is_err());
            rx.rekey();
            let n = rx.decrypt_in_place(&[], &mut m).unwrap();
            assert_eq!(&m[..n], b"after");
        }
    }
}
