//! ML-KEM-768 (FIPS 203) with the randomness passed in.
//!
//! Backed by `libcrux-ml-kem` (formally verified with hax/F*, runtime AVX2
//! dispatch), chosen by measurement and because it takes its randomness as
//! an argument: key generation from the 64-byte seed `d ‖ z`, encapsulation
//! from the 32-byte message `m`. That keeps the handshakes sans-IO and lets
//! known-answer vectors replay byte for byte. aws-lc-rs was faster on none of
//! the three operations that matter here and cannot take injected randomness
//! (see `docs/mlkem-choice.md`).
//!
//! Input checks (FIPS 203 §7.2, §7.3): an encapsulation key must have the
//! right length and every coefficient below q (the modulus check); a
//! decapsulation key must have the right length and carry `H(ek)` of its
//! embedded `ek`; a ciphertext must have the right length. Decapsulation of
//! a well-formed but wrong ciphertext does not fail: it returns the
//! implicit-rejection key, which then fails the handshake's next AEAD tag.
//!
//! Secret inputs are wiped after use: libcrux takes the key-generation seed
//! and the encapsulation randomness by value and leaves its intermediate
//! values (the seed's expansion, the secret vectors) in its own stack
//! frames, so every call here passes a copy it wipes afterwards and then
//! overwrites the stack area those frames used ([`scrub_stack`]).

use std::fmt;

use libcrux_ml_kem::mlkem768::{self, MlKem768Ciphertext, MlKem768PrivateKey, MlKem768PublicKey};
use zeroize::Zeroize;

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
/// Both halves are boxed (3.5 KiB together), so moving a key pair or a
/// handshake that holds one copies a pointer, not the key.
pub struct MlKem768KeyPair {
    dk: Box<MlKem768PrivateKey>,
    ek: Box<MlKem768PublicKey>,
}

impl Drop for MlKem768KeyPair {
    fn drop(&mut self) {
        self.dk[0..].zeroize();
    }
}

impl Clone for MlKem768KeyPair {
    fn clone(&self) -> Self {
        MlKem768KeyPair {
            dk: self.dk.clone(),
            ek: self.ek.clone(),
        }
    }
}

impl fmt::Debug for MlKem768KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&self.ek.as_slice()[..8]);
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
        let mut copy = *seed.expose();
        let pair = mlkem768::generate_key_pair(copy);
        copy.zeroize();
        scrub_stack();
        let (dk, ek) = pair.into_parts();
        MlKem768KeyPair {
            dk: Box::new(dk),
            ek: Box::new(ek),
        }
    }

    /// A fresh key pair from 64 bytes of `rng`.
    pub fn generate(rng: &mut dyn RandomSource) -> Self {
        Self::from_seed(&Secret::random(rng))
    }

    /// Restores a key pair from an expanded decapsulation key (the format
    /// aws-lc-rs and the key store use), checking its length and the
    /// embedded `H(ek)` (FIPS 203 §7.3 decapsulation key check).
    pub fn from_expanded(dk: &[u8]) -> Result<Self, Error> {
        let invalid = || Error::Config(ConfigError::InvalidKey("malformed ML-KEM-768 private key"));
        let dk: MlKem768PrivateKey = dk.try_into().map_err(|_| invalid())?;
        let ek_range = DK_PKE_LEN..DK_PKE_LEN + ENCAPSULATION_KEY_LEN;
        let mut ek_bytes = [0u8; ENCAPSULATION_KEY_LEN];
        ek_bytes.copy_from_slice(&dk.as_slice()[ek_range.clone()]);
        let pair = MlKem768KeyPair {
            dk: Box::new(dk),
            ek: Box::new(MlKem768PublicKey::from(ek_bytes)),
        };
        let hash = &pair.dk.as_slice()[ek_range.end..ek_range.end + 32];
        let computed = libcrux_sha3::sha256(pair.ek.as_slice());
        if !ct_eq(&computed, hash) || !mlkem768::validate_public_key(&pair.ek) {
            return Err(invalid());
        }
        Ok(pair)
    }

    /// The encapsulation key (public).
    pub fn encapsulation_key(&self) -> &[u8; ENCAPSULATION_KEY_LEN] {
        self.ek.as_slice()
    }

    /// The expanded decapsulation key, for storage. Keep the borrow short.
    pub fn expose_expanded(&self) -> &[u8; DECAPSULATION_KEY_LEN] {
        self.dk.as_slice()
    }

    /// ML-KEM.Decaps. A ciphertext of the wrong length is
    /// [`PeerMisbehaved::BadMessageLength`]; any well-formed ciphertext
    /// yields a key (the implicit-rejection key if it was not made for us).
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Secret<SHARED_SECRET_LEN>, Error> {
        let ct: MlKem768Ciphertext = ciphertext
            .try_into()
            .map_err(|_| PeerMisbehaved::BadMessageLength)?;
        let mut shared = mlkem768::decapsulate(&self.dk, &ct);
        let out = Secret::new(shared);
        shared.zeroize();
        scrub_stack();
        Ok(out)
    }
}

/// Checks an encapsulation key: its length and the modulus check (every
/// encoded coefficient below q). Fails with
/// [`PeerMisbehaved::InvalidPublicKey`].
pub fn check_encapsulation_key(ek: &[u8]) -> Result<(), Error> {
    parse_ek(ek).map(|_| ())
}

fn parse_ek(ek: &[u8]) -> Result<MlKem768PublicKey, Error> {
    let ek: MlKem768PublicKey = ek
        .try_into()
        .map_err(|_| PeerMisbehaved::InvalidPublicKey)?;
    if !mlkem768::validate_public_key(&ek) {
        return Err(PeerMisbehaved::InvalidPublicKey.into());
    }
    Ok(ek)
}

/// ML-KEM.Encaps_internal(ek, m): the ciphertext and the shared secret.
/// The key is checked first (length and modulus check).
pub fn encapsulate(
    ek: &[u8],
    m: &Secret<ENCAPS_RANDOMNESS_LEN>,
) -> Result<([u8; CIPHERTEXT_LEN], Secret<SHARED_SECRET_LEN>), Error> {
    let ek = parse_ek(ek)?;
    let mut copy = *m.expose();
    let (ct, mut shared) = mlkem768::encapsulate(&ek, copy);
    copy.zeroize();
    let secret = Secret::new(shared);
    shared.zeroize();
    scrub_stack();
    Ok((*ct.as_slice(), secret))
}

/// Overwrites the stack below the caller's frame, where the ML-KEM call
/// it just returned from kept its secret intermediates (libcrux does not
/// wipe them). 32 KiB covers ML-KEM-768's deepest call (key generation,
/// about 20 KiB of frames); it costs about a microsecond.
#[inline(never)]
fn scrub_stack() {
    // A zero-filled array the optimizer must assume is read: one memset
    // over the area.
    let area = [0u8; 32 * 1024];
    std::hint::black_box(&area);
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
    }
}
