//! Ed25519 signatures (RFC 8032) on aws-lc-rs.
//!
//! Signatures are deterministic, so they are byte-identical to any other
//! conforming implementation. Verification accepts what aws-lc accepts:
//! canonical `S` (below the group order) and a decodable public key.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use super::rng::RandomSource;
use super::secret::Secret;
use crate::error::{Error, PeerMisbehaved};

/// Length of a public key and of a private seed.
pub const KEY_LEN: usize = 32;
/// Length of a signature.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 private key (its 32-byte seed) with its public key. The seed
/// is zeroized on drop and never printed; clones share the parsed key.
#[derive(Clone)]
pub struct SigningKey {
    seed: Secret<KEY_LEN>,
    public: [u8; KEY_LEN],
    pair: Arc<Ed25519KeyPair>,
}

impl SigningKey {
    /// A new key from 32 bytes of `rng`.
    pub fn generate(rng: &mut dyn RandomSource) -> Self {
        let mut seed = Secret::new([0u8; KEY_LEN]);
        rng.fill_bytes(seed.expose_mut());
        Self::from_seed(seed)
    }

    /// The key for a 32-byte seed (RFC 8032's private key).
    pub fn from_seed(seed: Secret<KEY_LEN>) -> Self {
        // Every 32-byte string is a valid seed; aws-lc fails only when it
        // cannot allocate.
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.expose())
            .expect("aws-lc accepts every 32-byte Ed25519 seed");
        let mut public = [0u8; KEY_LEN];
        public.copy_from_slice(pair.public_key().as_ref());
        SigningKey {
            seed,
            public,
            pair: Arc::new(pair),
        }
    }

    /// The seed. Keep the borrow short.
    pub fn seed(&self) -> &Secret<KEY_LEN> {
        &self.seed
    }

    /// The public key.
    pub fn public(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &hex::encode(self.public))
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// The `y` coordinates (sign bit cleared, little-endian) of the eight
/// points of small order: 1 (the identity), p - 1 (order 2), 0 (order 4)
/// and the two of order 8. They were computed by compressing
/// curve25519-dalek's `EIGHT_TORSION`, and a test checks the list against
/// its `is_weak`.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    hex_literal(b"0100000000000000000000000000000000000000000000000000000000000000"),
    hex_literal(b"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    [0u8; 32],
    hex_literal(b"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex_literal(b"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
];

const fn hex_literal(text: &[u8; 64]) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(text[2 * i]) << 4) | nibble(text[2 * i + 1]);
        i += 1;
    }
    out
}

/// True for a public key no one can hold the private key of, or that has
/// several encodings: a point of small order (a signature under it can
/// verify for many messages), or a non-canonical `y` (at least p).
pub fn is_weak_public_key(public: &[u8; KEY_LEN]) -> bool {
    let mut y = *public;
    y[31] &= 0x7f;
    // y >= p = 2^255 - 19: the top 250 bits all set and the low byte >= 0xed.
    let non_canonical = y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff) && y[0] >= 0xed;
    non_canonical || SMALL_ORDER_Y.contains(&y)
}

/// Checks `signature` over `message` under `public`; fails with
/// [`PeerMisbehaved::BadSignature`].
pub fn verify(public: &[u8], message: &[u8], signature: &[u8]) -> Result<(), Error> {
    if public.len() != KEY_LEN || signature.len() != SIGNATURE_LEN {
        return Err(PeerMisbehaved::BadSignature.into());
    }
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, signature)
        .map_err(|_| PeerMisbehaved::BadSignature.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 8032 section 7.1, test 2.
    #[test]
    fn rfc8032_test_2() {
        let seed = unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        let key = SigningKey::from_seed(Secret::from_slice(&seed).unwrap());
        assert_eq!(
            hex::encode(key.public()),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
        );
        let sig = key.sign(&[0x72]);
        assert_eq!(
            hex::encode(sig),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
        verify(key.public(), &[0x72], &sig).unwrap();
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(verify(key.public(), &[0x72], &bad).is_err());
        assert!(verify(key.public(), &[0x73], &sig).is_err());
        assert!(verify(&key.public()[..31], &[0x72], &sig).is_err());
        assert!(verify(key.public(), &[0x72], &sig[..63]).is_err());
    }

    /// The weak-key list agrees with curve25519-dalek on every small-order
    /// encoding (both sign bits), the non-canonical ones, and random keys.
    #[test]
    fn weak_keys_match_dalek() {
        use ed25519_dalek::VerifyingKey;
        let mut candidates: Vec<[u8; 32]> = Vec::new();
        for y in SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut k = y;
                k[31] |= sign;
                candidates.push(k);
            }
        }
        for low in 0xedu8..=0xff {
            let mut k = [0xffu8; 32];
            k[0] = low;
            k[31] = 0x7f;
            candidates.push(k);
        }
        for k in &candidates {
            assert!(is_weak_public_key(k), "{}", hex::encode(k));
            // dalek either refuses to decode it or calls it weak, except
            // for non-canonical encodings of ordinary points, which it
            // accepts and we refuse (one point, one encoding).
            if let Ok(v) = VerifyingKey::from_bytes(k) {
                let y_small = SMALL_ORDER_Y.contains(&{
                    let mut y = *k;
                    y[31] &= 0x7f;
                    y
                });
                if y_small {
                    assert!(v.is_weak(), "{}", hex::encode(k));
                }
            }
        }
        for seed in 0u8..64 {
            let key = SigningKey::from_seed(Secret::new([seed; 32]));
            assert!(!is_weak_public_key(key.public()));
            assert!(!VerifyingKey::from_bytes(key.public()).unwrap().is_weak());
        }
    }

    #[test]
    fn debug_is_redacted() {
        let key = SigningKey::from_seed(Secret::new([0x42; 32]));
        let text = format!("{key:?}");
        assert!(text.contains("redacted"));
        assert!(!text.contains(&hex::encode([0x42; 32])));
    }
}
