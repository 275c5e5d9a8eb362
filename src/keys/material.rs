//! Private key material: generating each key type, the payload sealed in a
//! key file, and [`LoadedKey`], a private key in memory.

use std::fmt;

use aws_lc_rs::kem::{DecapsulationKey, ML_KEM_768};
use ed25519_dalek::{Signer, SigningKey};
use zeroize::Zeroizing;

use super::store::{KeyEntry, KeyType};
use crate::crypto::{Secret, StaticSecret};
use crate::error::{Error, KeyStoreError};

/// A private key loaded from the store. Zeroized on drop; `Debug` shows only
/// the public record.
pub struct LoadedKey {
    entry: KeyEntry,
    private: Zeroizing<Vec<u8>>,
    signing: SigningKey,
}

impl LoadedKey {
    pub(crate) fn new(entry: KeyEntry, private: Zeroizing<Vec<u8>>, signing: SigningKey) -> Self {
        LoadedKey {
            entry,
            private,
            signing,
        }
    }

    /// The public record.
    pub fn entry(&self) -> &KeyEntry {
        &self.entry
    }

    /// The key as a Noise static key (X25519 identities only).
    pub fn static_secret(&self) -> Result<StaticSecret, Error> {
        if self.entry.key_type != KeyType::X25519 {
            return Err(KeyStoreError::Unsupported(format!(
                "key {:?} is {}, a Noise static key must be x25519",
                self.entry.name, self.entry.key_type
            ))
            .into());
        }
        let secret = Secret::<32>::from_slice(&self.private)
            .ok_or_else(|| KeyStoreError::Unsupported("bad x25519 key length".into()))?;
        Ok(StaticSecret::from_private(secret))
    }

    /// The key as an ML-KEM-768 key pair for the PQ-authenticated
    /// handshakes (mlkem768 identities only; the stored expanded key is
    /// checked on loading, see `MlKem768KeyPair::from_expanded`).
    pub fn mlkem768(&self) -> Result<crate::crypto::kem::MlKem768KeyPair, Error> {
        if self.entry.key_type != KeyType::Mlkem768 {
            return Err(KeyStoreError::Unsupported(format!(
                "key {:?} is {}, an ML-KEM static key must be mlkem768",
                self.entry.name, self.entry.key_type
            ))
            .into());
        }
        crate::crypto::kem::MlKem768KeyPair::from_expanded(&self.private)
    }

    /// The key as an Ed25519 signing key for SIGMA (ed25519 identities
    /// only).
    pub fn ed25519(&self) -> Result<crate::keys::SigningKey, Error> {
        if self.entry.key_type != KeyType::Ed25519 {
            return Err(KeyStoreError::Unsupported(format!(
                "key {:?} is {}, a SIGMA identity must be ed25519",
                self.entry.name, self.entry.key_type
            ))
            .into());
        }
        Ok(crate::keys::SigningKey::from_seed(Secret::new(
            self.signing.to_bytes(),
        )))
    }

    /// Signs `message` with this identity's signing key (its companion
    /// Ed25519 key, or the key itself for ed25519 identities).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("id", &self.entry.id)
            .field("name", &self.entry.name)
            .field("type", &self.entry.key_type)
            .field("private", &"<redacted>")
            .finish()
    }
}

const PAYLOAD_MAGIC: &[u8] = b"AKEXKEY1";

/// A new identity: (private bytes, public bytes, signing key).
pub(crate) type Material = (Zeroizing<Vec<u8>>, Vec<u8>, SigningKey);

pub(crate) fn generate_material(key_type: KeyType) -> Result<Material, Error> {
    let mut rng = rand_core::OsRng;
    let signing = SigningKey::generate(&mut rng);
    match key_type {
        KeyType::X25519 => {
            let key = StaticSecret::generate(&mut crate::crypto::OsRng);
            Ok((
                Zeroizing::new(key.private().expose().to_vec()),
                key.public().to_vec(),
                signing,
            ))
        }
        KeyType::Ed25519 => Ok((
            Zeroizing::new(signing.to_bytes().to_vec()),
            signing.verifying_key().to_bytes().to_vec(),
            signing,
        )),
        KeyType::Mlkem768 => {
            let unsupported =
                |_| KeyStoreError::Unsupported("ML-KEM-768 key generation failed".into());
            let dk = DecapsulationKey::generate(&ML_KEM_768).map_err(unsupported)?;
            let private = Zeroizing::new(dk.key_bytes().map_err(unsupported)?.as_ref().to_vec());
            let public = dk
                .encapsulation_key()
                .and_then(|ek| ek.key_bytes().map(|b| b.as_ref().to_vec()))
                .map_err(unsupported)?;
            Ok((private, public, signing))
        }
    }
}

/// The public key that `private` implies, or `None` if it is malformed.
pub(crate) fn derive_public(key_type: KeyType, private: &[u8]) -> Option<Vec<u8>> {
    match key_type {
        KeyType::X25519 => {
            let secret = Secret::<32>::from_slice(private)?;
            Some(crate::crypto::x25519::public_key(&secret).to_vec())
        }
        KeyType::Ed25519 => {
            let seed: Zeroizing<[u8; 32]> = Zeroizing::new(private.try_into().ok()?);
            Some(
                SigningKey::from_bytes(&seed)
                    .verifying_key()
                    .to_bytes()
                    .to_vec(),
            )
        }
        KeyType::Mlkem768 => {
            // FIPS 203 decapsulation key: dk_PKE (1152) || ek (1184) || H(ek) || z.
            // aws-lc-rs cannot derive ek from a restored key, so read it out.
            DecapsulationKey::new(&ML_KEM_768, private).ok()?;
            private.get(1152..1152 + 1184).map(<[u8]>::to_vec)
        }
    }
}

pub(crate) fn encode_payload(
    key_type: KeyType,
    private: &[u8],
    signing: &SigningKey,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(private.len() + 48));
    out.extend_from_slice(PAYLOAD_MAGIC);
    out.push(key_type.code());
    out.extend_from_slice(&(private.len() as u32).to_be_bytes());
    out.extend_from_slice(private);
    let seed = Zeroizing::new(signing.to_bytes());
    out.extend_from_slice(seed.as_ref());
    out
}

pub(crate) fn decode_payload(payload: &[u8]) -> Option<(KeyType, Zeroizing<Vec<u8>>, SigningKey)> {
    let rest = payload.strip_prefix(PAYLOAD_MAGIC)?;
    let (&code, rest) = rest.split_first()?;
    let key_type = KeyType::from_code(code)?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let private = Zeroizing::new(rest.get(4..4usize.checked_add(len)?)?.to_vec());
    let seed_bytes = rest.get(4 + len..)?;
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(seed_bytes.try_into().ok()?);
    Some((key_type, private, SigningKey::from_bytes(&seed)))
}
