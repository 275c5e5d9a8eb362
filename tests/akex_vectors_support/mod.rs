//! Shared by tests/akex_vectors.rs (the known-answer vectors) and
//! tests/akex_registry.rs (rules checked for every registry protocol): the
//! recipe of each akex-mode protocol's vectors in [`CASES`], its keys built
//! from deterministic bytes, and the RFC 6979 P-256 signer that makes the
//! P-256 vectors replay byte for byte.
//!
//! Adding a protocol is one line in [`CASES`]: its name, the private keys it
//! needs (each a deterministic byte string, by name and length), how many
//! random bytes each side draws, and a function that turns the keys into
//! the two sides' [`HandshakeKeys`]. Then regenerate the vectors:
//!
//! ```text
//! cargo test --test akex_vectors -- --ignored write_vectors
//! ```

#![allow(dead_code)]

use std::collections::BTreeMap;

use akex::crypto::Secret;
use akex::handshake::hybrid::{HYBRID_IK, HYBRID_NK, HYBRID_XX};
use akex::handshake::pq::{PQ_IK, PQ_XX};
use akex::handshake::registry::HandshakeKeys;
use akex::handshake::sigma::{SIGMA_AESGCM, SIGMA_CHACHAPOLY, SIGMA_P256_AESGCM};
use akex::keys::MlKem768KeyPair;
use akex::keys::SigningKey;
use akex::keys::StaticSecret;
use akex::{KeyKind, PublicKey};
use sha2::{Digest, Sha256};

pub type Keys = BTreeMap<String, Vec<u8>>;

/// One protocol's vector recipe.
pub struct Case {
    /// The protocol name (also the file name).
    pub name: &'static str,
    /// Private key material by name and length (bytes derived from the
    /// protocol name and the key name).
    pub keys: &'static [(&'static str, usize)],
    /// Random bytes the (initiator, responder) draw during the handshake.
    pub random: (usize, usize),
    /// The two sides' keys, built from `keys`.
    pub setup: fn(&Keys) -> (HandshakeKeys, HandshakeKeys),
}

const SIGMA_KEYS: &[(&str, usize)] = &[
    ("initiator_ed25519_seed", 32),
    ("responder_ed25519_seed", 32),
];
const SIGMA_P256_KEYS: &[(&str, usize)] =
    &[("initiator_p256_scalar", 32), ("responder_p256_scalar", 32)];

/// Every akex-mode protocol with vectors. One line per protocol.
pub const CASES: &[Case] = &[
    Case {
        name: SIGMA_CHACHAPOLY,
        keys: SIGMA_KEYS,
        random: (32, 32),
        setup: sigma_keys,
    },
    Case {
        name: SIGMA_AESGCM,
        keys: SIGMA_KEYS,
        random: (32, 32),
        setup: sigma_keys,
    },
    // P-256: each ephemeral is 32 bytes (a scalar below the group order).
    Case {
        name: SIGMA_P256_AESGCM,
        keys: SIGMA_P256_KEYS,
        random: (32, 32),
        setup: sigma_p256_keys,
    },
    // Hybrid and PQ-authenticated (src/handshake/hybrid.rs, pq.rs). Random
    // bytes: e (32) + e1 seed (64) [+ skem m (32)] / e (32) + ekem m (32) [+ skem m (32)].
    Case {
        name: HYBRID_XX,
        keys: HYBRID_KEYS,
        random: (96, 64),
        setup: hybrid_mutual_keys,
    },
    Case {
        name: HYBRID_IK,
        keys: HYBRID_KEYS,
        random: (96, 64),
        setup: hybrid_mutual_keys,
    },
    Case {
        name: HYBRID_NK,
        keys: HYBRID_KEYS,
        random: (96, 64),
        setup: hybrid_nk_keys,
    },
    Case {
        name: PQ_XX,
        keys: PQ_KEYS,
        random: (128, 96),
        setup: pq_keys,
    },
    Case {
        name: PQ_IK,
        keys: PQ_KEYS,
        random: (128, 96),
        setup: pq_keys,
    },
    // snow's Noise HFS names (Noise mode: no hello, Noise transport
    // messages); the KEM is ML-KEM-1024 from libcrux on the injected RNG.
    // Random bytes: e (32) + e1 keygen seed (64) / e (32) + ekem m (32).
    Case {
        name: XX_HFS,
        keys: HYBRID_KEYS,
        random: (96, 64),
        setup: hybrid_mutual_keys,
    },
    Case {
        name: IK_HFS,
        keys: HYBRID_KEYS,
        random: (96, 64),
        setup: hybrid_mutual_keys,
    },
];

const XX_HFS: &str = "Noise_XXhfs_25519+Kyber1024_ChaChaPoly_BLAKE2s";
const IK_HFS: &str = "Noise_IKhfs_25519+Kyber1024_ChaChaPoly_BLAKE2s";

const HYBRID_KEYS: &[(&str, usize)] = &[("initiator_x25519", 32), ("responder_x25519", 32)];
const PQ_KEYS: &[(&str, usize)] = &[
    ("initiator_x25519", 32),
    ("responder_x25519", 32),
    ("initiator_mlkem768_seed", 64),
    ("responder_mlkem768_seed", 64),
];

fn x25519(keys: &Keys, name: &str) -> StaticSecret {
    StaticSecret::from_private(akex::crypto::Secret::new(seed32(keys, name)))
}

fn mlkem(keys: &Keys, name: &str) -> MlKem768KeyPair {
    let seed = akex::crypto::Secret::<64>::from_slice(&keys[name]).expect("64-byte seed");
    MlKem768KeyPair::from_seed(&seed)
}

/// Hybrid XX/IK: both sides have an X25519 identity and pin the other's.
fn hybrid_mutual_keys(keys: &Keys) -> (HandshakeKeys, HandshakeKeys) {
    let (i, r) = (
        x25519(keys, "initiator_x25519"),
        x25519(keys, "responder_x25519"),
    );
    (
        HandshakeKeys::new()
            .remote(PublicKey::x25519(*r.public()))
            .static_key(i.clone()),
        HandshakeKeys::new()
            .remote(PublicKey::x25519(*i.public()))
            .static_key(r),
    )
}

/// Hybrid NK: only the responder has (and the initiator knows) a key.
fn hybrid_nk_keys(keys: &Keys) -> (HandshakeKeys, HandshakeKeys) {
    let r = x25519(keys, "responder_x25519");
    (
        HandshakeKeys::new().remote(PublicKey::x25519(*r.public())),
        HandshakeKeys::new().static_key(r),
    )
}

/// PQ XX/IK: X25519 + ML-KEM-768 identities; each side pins the other's
/// `x25519 public || ML-KEM-768 ek`.
fn pq_keys(keys: &Keys) -> (HandshakeKeys, HandshakeKeys) {
    let (i, r) = (
        x25519(keys, "initiator_x25519"),
        x25519(keys, "responder_x25519"),
    );
    let (ik, rk) = (
        mlkem(keys, "initiator_mlkem768_seed"),
        mlkem(keys, "responder_mlkem768_seed"),
    );
    let id = |x: &StaticSecret, k: &MlKem768KeyPair| {
        let mut v = x.public().to_vec();
        v.extend_from_slice(k.encapsulation_key());
        PublicKey::from_bytes(KeyKind::X25519MlKem768, &v).expect("1216 bytes")
    };
    (
        HandshakeKeys::new()
            .remote(id(&r, &rk))
            .static_key(i.clone())
            .kem_key(ik.clone()),
        HandshakeKeys::new()
            .remote(id(&i, &ik))
            .static_key(r)
            .kem_key(rk),
    )
}

fn seed32(keys: &Keys, name: &str) -> [u8; 32] {
    keys[name].as_slice().try_into().expect("a 32-byte key")
}

/// SIGMA: both sides have an Ed25519 identity and pin the other's.
fn sigma_keys(keys: &Keys) -> (HandshakeKeys, HandshakeKeys) {
    let i = SigningKey::from_seed(Secret::new(seed32(keys, "initiator_ed25519_seed")));
    let r = SigningKey::from_seed(Secret::new(seed32(keys, "responder_ed25519_seed")));
    (
        HandshakeKeys::new()
            .remote(PublicKey::ed25519(*r.public()))
            .signing_key(i.clone()),
        HandshakeKeys::new()
            .remote(PublicKey::ed25519(*i.public()))
            .signing_key(r),
    )
}

/// ECDSA P-256 SHA-256 with RFC 6979 deterministic nonces, so the vectors
/// replay byte for byte (akex's own P-256 signer draws random nonces, as
/// FIPS 186-5 allows; any valid signature is accepted by the peer).
struct Rfc6979Signer {
    key: p256::ecdsa::SigningKey,
    public: Vec<u8>,
}

impl Rfc6979Signer {
    fn new(scalar: &[u8]) -> Self {
        let key = p256::ecdsa::SigningKey::from_slice(scalar).expect("a scalar below n");
        let public = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        Rfc6979Signer { key, public }
    }
}

impl std::fmt::Debug for Rfc6979Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rfc6979Signer({})", hex::encode(&self.public))
    }
}

impl akex::keys::Signer for Rfc6979Signer {
    fn scheme(&self) -> akex::keys::SignatureScheme {
        akex::keys::SignatureScheme::EcdsaP256Sha256
    }
    fn public_key(&self) -> &[u8] {
        &self.public
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, akex::Error> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self.key.sign(message);
        Ok(sig.to_bytes().to_vec())
    }
}

/// SIGMA on P-256: both sides have an ECDSA P-256 identity and pin the
/// other's.
fn sigma_p256_keys(keys: &Keys) -> (HandshakeKeys, HandshakeKeys) {
    let i = Rfc6979Signer::new(&keys["initiator_p256_scalar"]);
    let r = Rfc6979Signer::new(&keys["responder_p256_scalar"]);
    let (ip, rp) = (
        PublicKey::from_bytes(KeyKind::P256, &i.public).expect("a P-256 point"),
        PublicKey::from_bytes(KeyKind::P256, &r.public).expect("a P-256 point"),
    );
    (
        HandshakeKeys::new()
            .remote(rp)
            .signer(std::sync::Arc::new(i)),
        HandshakeKeys::new()
            .remote(ip)
            .signer(std::sync::Arc::new(r)),
    )
}

/// `len` bytes from SHA-256 in counter mode over `protocol || 0 || label`.
pub fn derive(protocol: &str, label: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u32;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(protocol.as_bytes());
        h.update([0]);
        h.update(label.as_bytes());
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}
