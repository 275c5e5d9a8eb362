//! ML-KEM-768 (FIPS 203) with the randomness passed in.
//!
//! Key generation, encapsulation and decapsulation run on aws-lc
//! (mlkem-native, the code rustls' hybrid key exchange also runs), through
//! its deterministic entry points: key generation from the 64-byte
//! seed `d ‖ z`, encapsulation from the 32-byte message `m` (`mlkem_ffi`).
//! That keeps the handshakes sans-IO and lets known-answer vectors replay
//! byte for byte. It replaced libcrux-ml-kem, which takes its randomness
//! as an argument in safe Rust but measured 1.4–1.8× slower per operation
//! here (`docs/mlkem-choice.md`); libcrux still checks encapsulation keys
//! as they arrive.
//!
//! Input checks (FIPS 203 §7.2, §7.3): an encapsulation key must have the
//! right length and every coefficient below q (the modulus check, here as
//! a key arrives and again inside aws-lc's encapsulation); a decapsulation
//! key must have the right length and carry `H(ek)` of its embedded `ek`;
//! a ciphertext must have the right length. Decapsulation of a well-formed
//! but wrong ciphertext does not fail: it returns the implicit-rejection
//! key, which then fails the handshake's next AEAD tag.
//!
//! Secrets are erased: aws-lc wipes its intermediate values and the keys
//! it frees; the copies held here are zeroized on drop.

use std::fmt;
use std::sync::Arc;

use libcrux_ml_kem::mlkem768::{self, MlKem768PublicKey};
use zeroize::Zeroize;

use super::mlkem_ffi::{self as ffi, Pkey};
use super::rng::RandomSource;
use super::secret::{ct_eq, Secret};
use crate::error::{ConfigError, Error, PeerMisbehaved};

/// Length of an encapsulation (public) key.
pub const ENCAPSULATION_KEY_LEN: usize = 1184;
/// Length of an expanded decapsulation key (`dk_PKE ‖ ek ‖ H(ek) ‖ z`).
pub const DECAPSULATION_KEY_LEN: usize = 2400;
/// Length of a ciphertext.
pub const CIPHERTEXT_LEN: usize = 1088;
/// Length of the shared secret.
pub const SHARED_SECRET_LEN: usize = 32;
/// Length of the key-generation seed `d ‖ z`.
pub const SEED_LEN: usize = 64;
/// Length of the encapsulation randomness `m`.
pub const ENCAPS_RANDOMNESS_LEN: usize = 32;

const DK_PKE_LEN: usize = 1152;

/// An ML-KEM-768 key pair. The decapsulation key is zeroized on drop and
/// never printed.
/// The raw halves are boxed (3.5 KiB together) and the aws-lc key is
/// shared, so moving or cloning a key pair or a handshake that holds one
/// copies pointers, not the key.
pub struct MlKem768KeyPair {
    dk: Box<[u8; DECAPSULATION_KEY_LEN]>,
    ek: Box<[u8; ENCAPSULATION_KEY_LEN]>,
    pkey: Arc<Pkey>,
}

impl Drop for MlKem768KeyPair {
    fn drop(&mut self) {
        self.dk.zeroize();
    }
}

impl Clone for MlKem768KeyPair {
    fn clone(&self) -> Self {
        MlKem768KeyPair {
            dk: self.dk.clone(),
            ek: self.ek.clone(),
            pkey: Arc::clone(&self.pkey),
        }
    }
}

impl fmt::Debug for MlKem768KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&self.ek[..8]);
        f.debug_struct("MlKem768KeyPair")
            .field("ek_prefix", &hex::encode(digest))
            .field("dk", &"<redacted>")
            .finish()
    }
}

impl MlKem768KeyPair {
    /// Length of the key-generation seed `d ‖ z`.
    pub const SEED_LEN: usize = SEED_LEN;
    /// Length of the encapsulation (public) key.
    pub const PUBLIC_LEN: usize = ENCAPSULATION_KEY_LEN;

    /// ML-KEM.KeyGen_internal(d, z) from the 64-byte seed `d ‖ z`.
    pub fn from_seed(seed: &Secret<SEED_LEN>) -> Self {
        let mut dk = Box::new([0u8; DECAPSULATION_KEY_LEN]);
        let mut ek = Box::new([0u8; ENCAPSULATION_KEY_LEN]);
        // Key generation from a seed of the right length fails only if
        // aws-lc cannot allocate; the key may be half written by then.
        let Some(pkey) = ffi::keygen(seed.expose(), &mut ek, &mut dk) else {
            dk.zeroize();
            panic!("aws-lc could not allocate an ML-KEM-768 key");
        };
        MlKem768KeyPair {
            dk,
            ek,
            pkey: Arc::new(pkey),
        }
    }

    /// A fresh key pair from 64 bytes of `rng`.
    pub fn generate(rng: &mut dyn RandomSource) -> Self {
        Self::from_seed(&Secret::random(rng))
    }

    /// Restores a key pair from an expanded decapsulation key (the format
    /// aws-lc-rs uses), checking its length, the embedded `H(ek)` (FIPS 203
    /// §7.3 decapsulation key check), the modulus check of the embedded
    /// `ek`, and that the two halves agree (aws-lc's pairwise check).
    pub fn from_expanded(dk: &[u8]) -> Result<Self, Error> {
        let invalid = || Error::Config(ConfigError::InvalidKey("malformed ML-KEM-768 private key"));
        if dk.len() != DECAPSULATION_KEY_LEN {
            return Err(invalid());
        }
        let mut raw = Box::new([0u8; DECAPSULATION_KEY_LEN]);
        raw.copy_from_slice(dk);
        let ek_range = DK_PKE_LEN..DK_PKE_LEN + ENCAPSULATION_KEY_LEN;
        let mut ek = Box::new([0u8; ENCAPSULATION_KEY_LEN]);
        ek.copy_from_slice(&raw[ek_range.clone()]);
        let hash = &raw[ek_range.end..ek_range.end + 32];
        let computed = libcrux_sha3::sha256(&ek[..]);
        if !ct_eq(&computed, hash) || !mlkem768::validate_public_key(&MlKem768PublicKey::from(*ek))
        {
            raw.zeroize();
            return Err(invalid());
        }
        let Some(pkey) = ffi::from_raw(&ek, &raw) else {
            raw.zeroize();
            return Err(invalid());
        };
        Ok(MlKem768KeyPair {
            dk: raw,
            ek,
            pkey: Arc::new(pkey),
        })
    }

    /// The encapsulation key (public).
    pub fn encapsulation_key(&self) -> &[u8; ENCAPSULATION_KEY_LEN] {
        &self.ek
    }

    /// The expanded decapsulation key, for storage. Keep the borrow short.
    pub fn expose_expanded(&self) -> &[u8; DECAPSULATION_KEY_LEN] {
        &self.dk
    }

    /// ML-KEM.Decaps. A ciphertext of the wrong length is
    /// [`PeerMisbehaved::BadMessageLength`]; any well-formed ciphertext
    /// yields a key (the implicit-rejection key if it was not made for us).
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Secret<SHARED_SECRET_LEN>, Error> {
        let ct: &[u8; CIPHERTEXT_LEN] = ciphertext
            .try_into()
            .map_err(|_| PeerMisbehaved::BadMessageLength)?;
        let mut shared = [0u8; SHARED_SECRET_LEN];
        // aws-lc fails only on a decapsulation key whose hash check fails,
        // which neither constructor lets through, or on allocation.
        let done = ffi::decapsulate(&self.pkey, ct, &mut shared);
        let out = Secret::new(shared);
        shared.zeroize();
        done.ok_or(ConfigError::InvalidKey(
            "ML-KEM-768 private key refused by aws-lc",
        ))?;
        Ok(out)
    }
}

/// Checks an encapsulation key: its length and the modulus check (every
/// encoded coefficient below q). Fails with
/// [`PeerMisbehaved::InvalidPublicKey`].
pub fn check_encapsulation_key(ek: &[u8]) -> Result<(), Error> {
    let ek: MlKem768PublicKey = ek
        .try_into()
        .map_err(|_| PeerMisbehaved::InvalidPublicKey)?;
    if !mlkem768::validate_public_key(&ek) {
        return Err(PeerMisbehaved::InvalidPublicKey.into());
    }
    Ok(())
}

/// ML-KEM.Encaps_internal(ek, m): the ciphertext and the shared secret.
/// A key of the wrong length, or one that fails aws-lc's modulus check,
/// is [`PeerMisbehaved::InvalidPublicKey`].
pub fn encapsulate(
    ek: &[u8],
    m: &Secret<ENCAPS_RANDOMNESS_LEN>,
) -> Result<([u8; CIPHERTEXT_LEN], Secret<SHARED_SECRET_LEN>), Error> {
    let ek: &[u8; ENCAPSULATION_KEY_LEN] = ek
        .try_into()
        .map_err(|_| PeerMisbehaved::InvalidPublicKey)?;
    let mut ct = [0u8; CIPHERTEXT_LEN];
    let mut shared = [0u8; SHARED_SECRET_LEN];
    let done = ffi::encapsulate(ek, m.expose(), &mut ct, &mut shared);
    let secret = Secret::new(shared);
    shared.zeroize();
    done.ok_or(PeerMisbehaved::InvalidPublicKey)?;
    Ok((ct, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_implicit_rejection() {
        let pair = MlKem768KeyPair::from_seed(&Secret::new([7u8; 64]));
        let (ct, k1) = encapsulate(pair.encapsulation_key(), &Secret::new([9u8; 32])).unwrap();
        let k2 = pair.decapsulate(&ct).unwrap();
        assert_eq!(k1, k2);
        let mut bad = ct;
        bad[0] ^= 1;
        let k3 = pair.decapsulate(&bad).unwrap();
        assert_ne!(k1, k3);
        assert!(matches!(
            pair.decapsulate(&ct[..1087]),
            Err(Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength))
        ));
        let restored = MlKem768KeyPair::from_expanded(pair.expose_expanded()).unwrap();
        assert_eq!(restored.encapsulation_key(), pair.encapsulation_key());
        let mut corrupt = *pair.expose_expanded();
        corrupt[DK_PKE_LEN + 3] ^= 1;
        assert!(MlKem768KeyPair::from_expanded(&corrupt).is_err());
        // A damaged secret half passes the FIPS 203 checks (hash and
        // modulus cover `ek` only); the pairwise check refuses it.
        let mut corrupt = *pair.expose_expanded();
        corrupt[0] ^= 1;
        assert!(MlKem768KeyPair::from_expanded(&corrupt).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let pair = MlKem768KeyPair::from_seed(&Secret::new([1u8; 64]));
        let text = format!("{pair:?}");
        assert!(text.contains("redacted"));
        assert!(text.len() < 120);
    }

    #[test]
    fn bad_keys_rejected() {
        assert!(check_encapsulation_key(&[0u8; 1183]).is_err());
        assert!(check_encapsulation_key(&[0xffu8; ENCAPSULATION_KEY_LEN]).is_err());
        // aws-lc's own modulus check, reached without the check above.
        let m = Secret::new([3u8; 32]);
        for bad in [
            &[0xffu8; ENCAPSULATION_KEY_LEN][..],
            &[0u8; 1183][..],
            &[][..],
        ] {
            assert!(matches!(
                encapsulate(bad, &m),
                Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey))
            ));
        }
        assert!(MlKem768KeyPair::from_expanded(&[0u8; 2399]).is_err());
        assert!(MlKem768KeyPair::from_expanded(&[0u8; DECAPSULATION_KEY_LEN]).is_err());
    }

    /// One key pair (one aws-lc key) shared by threads that decapsulate at
    /// once, and clones dropped in any order: every result is the sender's.
    #[test]
    fn shared_key_pair_across_threads() {
        let pair = MlKem768KeyPair::from_seed(&Secret::new([5u8; 64]));
        let handles: Vec<_> = (0u8..8)
            .map(|t| {
                let pair = pair.clone();
                std::thread::spawn(move || {
                    for i in 0u8..50 {
                        let m = Secret::new([t ^ i; 32]);
                        let (ct, k1) = encapsulate(pair.encapsulation_key(), &m).unwrap();
                        assert_eq!(pair.decapsulate(&ct).unwrap(), k1);
                    }
                })
            })
            .collect();
        drop(pair);
        for h in handles {
            h.join().unwrap();
        }
    }
}
