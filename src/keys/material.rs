//! Private key material: generating each key type, the payload sealed in a
//! key file, and [`LoadedKey`], a private key in memory.

use std::fmt;
use std::sync::Arc;

use pkcs8::der::asn1::OctetStringRef;
use pkcs8::der::{Decode, Encode};
use pkcs8::{AlgorithmIdentifierRef, ObjectIdentifier, PrivateKeyInfo};
use zeroize::Zeroizing;

use super::index::{KeyEntry, KeyType};
use super::signer::Signer;
use crate::crypto::ed25519::SigningKey;
use crate::crypto::kem::{MlKem768KeyPair, SEED_LEN};
use crate::crypto::p256::P256SigningKey;
use crate::crypto::{OsRng, Secret, StaticSecret};
use crate::error::{Error, KeyStoreError};

/// The key that signs an identity's rotation statements (and, for ed25519
/// and p256 identities, its handshakes): the identity itself, or the
/// companion Ed25519 key of an x25519 or mlkem768 identity.
#[derive(Clone)]
pub(crate) enum IdentitySigner {
    Ed25519(SigningKey),
    P256(P256SigningKey),
}

impl IdentitySigner {
    pub(crate) fn public(&self) -> Vec<u8> {
        match self {
            IdentitySigner::Ed25519(k) => k.public().to_vec(),
            IdentitySigner::P256(k) => k.public().to_vec(),
        }
    }

    /// 64 bytes for both schemes. aws-lc's ECDSA fails only when it cannot
    /// allocate, as its Ed25519 key parsing does above.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        match self {
            IdentitySigner::Ed25519(k) => k.sign(message),
            IdentitySigner::P256(k) => k
                .sign(message)
                .expect("aws-lc signs with a valid P-256 key"),
        }
    }

    pub(crate) fn to_arc(&self) -> Arc<dyn Signer> {
        match self {
            IdentitySigner::Ed25519(k) => Arc::new(k.clone()),
            IdentitySigner::P256(k) => Arc::new(k.clone()),
        }
    }
}

/// A private key loaded from the store. Zeroized on drop; `Debug` shows only
/// the public record.
pub struct LoadedKey {
    entry: KeyEntry,
    private: Zeroizing<Vec<u8>>,
    signing: IdentitySigner,
}

impl LoadedKey {
    pub(crate) fn new(
        entry: KeyEntry,
        private: Zeroizing<Vec<u8>>,
        signing: IdentitySigner,
    ) -> Self {
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
        match (&self.signing, self.entry.key_type) {
            (IdentitySigner::Ed25519(k), KeyType::Ed25519) => Ok(k.clone()),
            _ => Err(KeyStoreError::Unsupported(format!(
                "key {:?} is {}, an Ed25519 SIGMA identity must be ed25519",
                self.entry.name, self.entry.key_type
            ))
            .into()),
        }
    }

    /// The key as an ECDSA P-256 signing key for the FIPS-algorithm SIGMA
    /// suite (p256 identities only).
    pub fn p256(&self) -> Result<P256SigningKey, Error> {
        match &self.signing {
            IdentitySigner::P256(k) => Ok(k.clone()),
            IdentitySigner::Ed25519(_) => Err(KeyStoreError::Unsupported(format!(
                "key {:?} is {}, a P-256 SIGMA identity must be p256",
                self.entry.name, self.entry.key_type
            ))
            .into()),
        }
    }

    /// The key as a handshake [`Signer`] (ed25519 and p256 identities).
    pub fn signer(&self) -> Result<Arc<dyn Signer>, Error> {
        match self.entry.key_type {
            KeyType::Ed25519 | KeyType::P256 => Ok(self.signing.to_arc()),
            other => Err(KeyStoreError::Unsupported(format!(
                "key {:?} is {other}, a signing identity must be ed25519 or p256",
                self.entry.name
            ))
            .into()),
        }
    }

    /// Signs `message` with this identity's signing key (its companion
    /// Ed25519 key, or the key itself for ed25519 and p256 identities):
    /// Ed25519 or ECDSA P-256 `r || s`, 64 bytes either way.
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
/// seed, the ML-KEM-768 seed `d ‖ z`; empty for p256, whose key is the
/// signing key) and the signing key.
pub(crate) struct Material {
    pub(crate) key_type: KeyType,
    pub(crate) private: Zeroizing<Vec<u8>>,
    pub(crate) signing: IdentitySigner,
}

impl Material {
    /// Fresh keys of `key_type` from the OS RNG.
    pub(crate) fn generate(key_type: KeyType) -> Result<Self, Error> {
        let mut rng = OsRng;
        if key_type == KeyType::P256 {
            return Ok(Material {
                key_type,
                private: Zeroizing::new(Vec::new()),
                signing: IdentitySigner::P256(P256SigningKey::generate()?),
            });
        }
        let signing = SigningKey::generate(&mut rng);
        let private = match key_type {
            KeyType::X25519 => {
                Zeroizing::new(StaticSecret::generate(&mut rng).private().expose().to_vec())
            }
            KeyType::Ed25519 => Zeroizing::new(signing.seed().expose().to_vec()),
            _ => Zeroizing::new(Secret::<SEED_LEN>::random(&mut rng).expose().to_vec()),
        };
        Ok(Material {
            key_type,
            private,
            signing: IdentitySigner::Ed25519(signing),
        })
    }

    /// The identity's public key, or `None` if the private key is malformed.
    pub(crate) fn public(&self) -> Option<Vec<u8>> {
        match self.key_type {
            KeyType::X25519 => {
                let secret = Secret::<32>::from_slice(&self.private)?;
                Some(crate::crypto::x25519::public_key(&secret).to_vec())
            }
            KeyType::Ed25519 | KeyType::P256 => Some(self.signing.public()),
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
    pub(crate) fn signing_public(&self) -> Vec<u8> {
        self.signing.public()
    }

    /// Signs with the signing key.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message)
    }

    /// PKCS#8 `PrivateKeyInfo` DER: the identity key, then (for x25519 and
    /// mlkem768) the companion Ed25519 signing key. A p256 key is aws-lc's
    /// encoding (id-ecPublicKey, named curve P-256, RFC 5915 inside).
    pub(crate) fn to_pkcs8(&self) -> Result<Vec<Zeroizing<Vec<u8>>>, Error> {
        let bad = |_| Error::from(KeyStoreError::Unsupported("cannot encode PKCS#8".into()));
        let companion = match &self.signing {
            IdentitySigner::P256(k) => return Ok(vec![k.to_pkcs8()?]),
            IdentitySigner::Ed25519(k) => k,
        };
        let (oid, inner) = match self.key_type {
            KeyType::X25519 => (OID_X25519, curve_key(&self.private)?),
            KeyType::Ed25519 => (OID_ED25519, curve_key(&self.private)?),
            // ML-KEM-768-PrivateKey, the seed choice: [0] IMPLICIT OCTET STRING (SIZE (64)).
            _ => {
                let mut der = Zeroizing::new(vec![0x80, SEED_LEN as u8]);
                der.extend_from_slice(&self.private);
                (OID_MLKEM768, der)
            }
        };
        let mut out = vec![info_der(oid, &inner).map_err(bad)?];
        if self.key_type != KeyType::Ed25519 {
            let seed = Zeroizing::new(*companion.seed().expose());
            out.push(info_der(OID_ED25519, &curve_key(seed.as_ref())?).map_err(bad)?);
        }
        Ok(out)
    }

    /// Parses the blocks [`to_pkcs8`](Self::to_pkcs8) wrote; `None` if they
    /// are malformed or of another type.
    pub(crate) fn from_pkcs8(key_type: KeyType, blocks: &[Zeroizing<Vec<u8>>]) -> Option<Self> {
        let (first, rest) = blocks.split_first()?;
        if key_type == KeyType::P256 {
            let key = P256SigningKey::from_pkcs8(first).ok()?;
            return rest.is_empty().then(|| Material {
                key_type,
                private: Zeroizing::new(Vec::new()),
                signing: IdentitySigner::P256(key),
            });
        }
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
            signing: IdentitySigner::Ed25519(SigningKey::from_seed(Secret::new(*seed))),
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

impl fmt::Debug for IdentitySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentitySigner({})", hex::encode(self.public()))
    }
}
