//! Private key material: generating each key type, the payload sealed in a
//! key file, and [`LoadedKey`], a private key in memory.

use std::fmt;

use pkcs8::der::asn1::OctetStringRef;
use pkcs8::der::{Decode, Encode};
use pkcs8::{AlgorithmIdentifierRef, ObjectIdentifier, PrivateKeyInfo};
use zeroize::Zeroizing;

use super::index::{KeyEntry, KeyType};
use crate::crypto::ed25519::{self, SigningKey};
use crate::crypto::kem::{MlKem768KeyPair, SEED_LEN};
use crate::crypto::{OsRng, Secret, StaticSecret};
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
    /// handshakes (mlkem768 identities only; made from the stored seed).
    pub fn mlkem768(&self) -> Result<MlKem768KeyPair, Error> {
        if self.entry.key_type != KeyType::Mlkem768 {
            return Err(KeyStoreError::Unsupported(format!(
                "key {:?} is {}, an ML-KEM static key must be mlkem768",
                self.entry.name, self.entry.key_type
            ))
            .into());
        }
        let seed = Secret::<SEED_LEN>::from_slice(&self.private)
            .ok_or_else(|| KeyStoreError::Unsupported("bad ML-KEM-768 seed length".into()))?;
        Ok(MlKem768KeyPair::from_seed(&seed))
    }

    /// The key as an Ed25519 signing key for SIGMA (ed25519 identities
    /// only).
    pub fn ed25519(&self) -> Result<SigningKey, Error> {
        if self.entry.key_type != KeyType::Ed25519 {
            return Err(KeyStoreError::Unsupported(format!(
                "key {:?} is {}, a SIGMA identity must be ed25519",
                self.entry.name, self.entry.key_type
            ))
            .into());
        }
        Ok(self.signing.clone())
    }

    /// Signs `message` with this identity's signing key (its companion
    /// Ed25519 key, or the key itself for ed25519 identities).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message)
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

/// RFC 8410 and the LAMPS ML-KEM-in-X.509 draft.
const OID_X25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.110");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_MLKEM768: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.4.2");

/// A new identity's private parts: the private key (X25519 scalar, Ed25519
/// seed or the ML-KEM-768 seed `d ‖ z`) and the Ed25519 signing key.
pub(crate) struct Material {
    pub(crate) key_type: KeyType,
    pub(crate) private: Zeroizing<Vec<u8>>,
    pub(crate) signing: SigningKey,
}

impl Material {
    /// Fresh keys of `key_type` from the OS RNG.
    pub(crate) fn generate(key_type: KeyType) -> Self {
        let mut rng = OsRng;
        let signing = SigningKey::generate(&mut rng);
        let private = match key_type {
            KeyType::X25519 => {
                Zeroizing::new(StaticSecret::generate(&mut rng).private().expose().to_vec())
            }
            KeyType::Ed25519 => Zeroizing::new(signing.seed().expose().to_vec()),
            KeyType::Mlkem768 => {
                Zeroizing::new(Secret::<SEED_LEN>::random(&mut rng).expose().to_vec())
            }
        };
        Material {
            key_type,
            private,
            signing,
        }
    }

    /// The identity's public key, or `None` if the private key is malformed.
    pub(crate) fn public(&self) -> Option<Vec<u8>> {
        match self.key_type {
            KeyType::X25519 => {
                let secret = Secret::<32>::from_slice(&self.private)?;
                Some(crate::crypto::x25519::public_key(&secret).to_vec())
            }
            KeyType::Ed25519 => Some(self.signing.public().to_vec()),
            KeyType::Mlkem768 => {
                let seed = Secret::<SEED_LEN>::from_slice(&self.private)?;
                Some(
                    MlKem768KeyPair::from_seed(&seed)
                        .encapsulation_key()
                        .to_vec(),
                )
            }
        }
    }

    /// The signing key's public half.
    pub(crate) fn signing_public(&self) -> [u8; 32] {
        *self.signing.public()
    }

    /// Signs with the signing key.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message)
    }

    /// PKCS#8 `PrivateKeyInfo` DER: the identity key, then (for x25519 and
    /// mlkem768) the companion Ed25519 signing key.
    pub(crate) fn to_pkcs8(&self) -> Result<Vec<Zeroizing<Vec<u8>>>, Error> {
        let bad = |_| Error::from(KeyStoreError::Unsupported("cannot encode PKCS#8".into()));
        let (oid, inner) = match self.key_type {
            KeyType::X25519 => (OID_X25519, curve_key(&self.private)?),
            KeyType::Ed25519 => (OID_ED25519, curve_key(&self.private)?),
            // ML-KEM-768-PrivateKey, the seed choice: [0] IMPLICIT OCTET STRING (SIZE (64)).
            KeyType::Mlkem768 => {
                let mut der = Zeroizing::new(vec![0x80, SEED_LEN as u8]);
                der.extend_from_slice(&self.private);
                (OID_MLKEM768, der)
            }
        };
        let mut out = vec![info_der(oid, &inner).map_err(bad)?];
        if self.key_type != KeyType::Ed25519 {
            let seed = Zeroizing::new(*self.signing.seed().expose());
            out.push(info_der(OID_ED25519, &curve_key(seed.as_ref())?).map_err(bad)?);
        }
        Ok(out)
    }

    /// Parses the blocks [`to_pkcs8`](Self::to_pkcs8) wrote; `None` if they
    /// are malformed or of another type.
    pub(crate) fn from_pkcs8(key_type: KeyType, blocks: &[Zeroizing<Vec<u8>>]) -> Option<Self> {
        let (first, rest) = blocks.split_first()?;
        let (oid, inner) = parse_info(first)?;
        let private = match key_type {
            KeyType::X25519 if oid == OID_X25519 => parse_curve_key(&inner)?,
            KeyType::Ed25519 if oid == OID_ED25519 => parse_curve_key(&inner)?,
            KeyType::Mlkem768 if oid == OID_MLKEM768 => {
                let seed = inner.strip_prefix(&[0x80, SEED_LEN as u8][..])?;
                (seed.len() == SEED_LEN).then(|| Zeroizing::new(seed.to_vec()))?
            }
            _ => return None,
        };
        let signing_seed = if key_type == KeyType::Ed25519 {
            if !rest.is_empty() {
                return None;
            }
            private.clone()
        } else {
            let [second] = rest else { return None };
            let (oid, inner) = parse_info(second)?;
            (oid == OID_ED25519).then_some(())?;
            parse_curve_key(&inner)?
        };
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(signing_seed.as_slice().try_into().ok()?);
        Some(Material {
            key_type,
            private,
            signing: SigningKey::from_seed(Secret::new(*seed)),
        })
    }

    pub(crate) fn into_loaded(self, entry: KeyEntry) -> LoadedKey {
        LoadedKey::new(entry, self.private, self.signing)
    }
}

/// RFC 8410 `CurvePrivateKey ::= OCTET STRING`, the content of PKCS#8's
/// `privateKey` for X25519 and Ed25519.
fn curve_key(key: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    OctetStringRef::new(key)
        .and_then(|o| o.to_der())
        .map(Zeroizing::new)
        .map_err(|_| KeyStoreError::Unsupported("cannot encode PKCS#8".into()).into())
}

fn parse_curve_key(der: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let key = OctetStringRef::from_der(der).ok()?;
    (key.as_bytes().len() == 32).then(|| Zeroizing::new(key.as_bytes().to_vec()))
}

fn info_der(oid: ObjectIdentifier, private: &[u8]) -> pkcs8::der::Result<Zeroizing<Vec<u8>>> {
    let info = PrivateKeyInfo::new(
        AlgorithmIdentifierRef {
            oid,
            parameters: None,
        },
        private,
    );
    info.to_der().map(Zeroizing::new)
}

fn parse_info(der: &[u8]) -> Option<(ObjectIdentifier, Zeroizing<Vec<u8>>)> {
    let info = PrivateKeyInfo::from_der(der).ok()?;
    if info.algorithm.parameters.is_some() {
        return None;
    }
    Some((
        info.algorithm.oid,
        Zeroizing::new(info.private_key.to_vec()),
    ))
}

/// Verifies an Ed25519 signature; false for a malformed or weak key or a
/// bad signature. The one place outside this file's key types that needs
/// the signature scheme (rotation statements).
pub(crate) fn ed25519_verify(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    ed25519_public_ok(public) && ed25519::verify(public, message, signature).is_ok()
}

/// True if `public` is 32 bytes and not a weak (small-order or
/// non-canonical) Ed25519 key.
pub(crate) fn ed25519_public_ok(public: &[u8]) -> bool {
    <[u8; 32]>::try_from(public).is_ok_and(|b| !ed25519::is_weak_public_key(&b))
}
