//! Shared by the adversarial tests (tests/peer_verifier.rs,
//! tests/threat_model.rs): long-term keys for every family by a one-byte
//! seed, and a pump that records who sent what.

#![allow(dead_code)]

pub mod forge;

use std::sync::Arc;

use akex::crypto::Secret;
use akex::handshake::hybrid::{self, HYBRID_IK, HYBRID_NK, HYBRID_XX};
use akex::handshake::noise::NoiseProtocol;
use akex::handshake::pq::{PQ_IK, PQ_XX};
use akex::handshake::registry::{self, HandshakeKeys};
use akex::handshake::sigma::{SIGMA_CHACHAPOLY, SIGMA_P256_AESGCM};
use akex::keys::{MlKem768KeyPair, P256SigningKey, SigningKey, StaticSecret};
use akex::{Error, Handshake, KeyKind, PublicKey, Role};

pub const NOISE_XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
pub const NOISE_IK: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";

/// One protocol of each family whose initiator sends its identity after
/// the responder's (the XX shape and SIGMA-I).
pub const IDENTITY_LAST: [&str; 5] = [
    NOISE_XX,
    SIGMA_CHACHAPOLY,
    SIGMA_P256_AESGCM,
    HYBRID_XX,
    PQ_XX,
];

/// Every protocol of the default build that authenticates a static key.
pub const AUTHENTICATED: [&str; 11] = [
    "Noise_NK_25519_ChaChaPoly_BLAKE2s",
    NOISE_XX,
    NOISE_IK,
    "Noise_KK_25519_ChaChaPoly_BLAKE2s",
    SIGMA_CHACHAPOLY,
    SIGMA_P256_AESGCM,
    HYBRID_XX,
    HYBRID_IK,
    HYBRID_NK,
    PQ_XX,
    PQ_IK,
];

/// The protocols these helpers build keys for: every one but the legacy
/// baselines (RSA key transport and FFDH, features `rsa-kt` and `ffdh`),
/// which have their own tests (tests/rsa_kt.rs, tests/ffdh_vectors.rs).
pub fn covered() -> Vec<&'static registry::ProtocolInfo> {
    registry::protocols()
        .iter()
        .filter(|p| {
            !matches!(
                registry::remote_key_kind(p.name),
                Some(KeyKind::Rsa | KeyKind::Ffdhe3072)
            )
        })
        .collect()
}

fn x25519(seed: u8) -> StaticSecret {
    StaticSecret::from_private(Secret::new([seed; 32]))
}

fn mlkem(seed: u8) -> MlKem768KeyPair {
    MlKem768KeyPair::from_seed(&Secret::new([seed; 64]))
}

/// The public identity of party `seed` in `name` (what
/// `Established::remote_static` reports for it).
pub fn public(name: &str, seed: u8) -> PublicKey {
    let kind = registry::remote_key_kind(name).expect("a protocol with a peer key");
    let bytes = match kind {
        KeyKind::Ed25519 => SigningKey::from_seed(Secret::new([seed; 32]))
            .public()
            .to_vec(),
        KeyKind::P256 => p256(seed).public().to_vec(),
        KeyKind::X25519MlKem768 => {
            let mut b = x25519(seed).public().to_vec();
            b.extend_from_slice(mlkem(seed).encapsulation_key());
            b
        }
        _ => x25519(seed).public().to_vec(),
    };
    PublicKey::from_bytes(kind, &bytes).unwrap()
}

fn p256(seed: u8) -> P256SigningKey {
    P256SigningKey::from_scalar(&Secret::new([seed; 32])).expect("a valid scalar")
}

/// The long-term keys of party `seed` for `name` (and nothing else).
pub fn own_keys(name: &str, seed: u8) -> HandshakeKeys {
    let keys = HandshakeKeys::new();
    match registry::remote_key_kind(name) {
        Some(KeyKind::Ed25519) => keys.signing_key(SigningKey::from_seed(Secret::new([seed; 32]))),
        Some(KeyKind::P256) => keys.signer(Arc::new(p256(seed))),
        Some(KeyKind::X25519MlKem768) => keys.static_key(x25519(seed)).kem_key(mlkem(seed)),
        _ => keys.static_key(x25519(seed)),
    }
}

/// Does `role` of `name` need the peer's key before the handshake?
pub fn needs_peer_in_advance(name: &str, role: Role) -> bool {
    if name.starts_with("Noise_") {
        return NoiseProtocol::parse(name)
            .unwrap()
            .needs_remote_static(role);
    }
    match hybrid::protocol_info(name) {
        Some(info) => role == Role::Initiator && info.initiator_needs_responder_key,
        None => false,
    }
}

/// Does `role` of `name` have a long-term key of its own?
pub fn has_own_key(name: &str, role: Role) -> bool {
    if name.starts_with("Noise_") {
        return NoiseProtocol::parse(name).unwrap().needs_local_static(role);
    }
    match hybrid::protocol_info(name) {
        Some(info) => role == Role::Responder || info.authenticates_initiator,
        None => true,
    }
}

/// Party `me` in `role`, with the peer's key `peer` given in advance where
/// the pattern needs it, and pinned when `pin` is set.
pub fn keys(name: &str, role: Role, me: u8, peer: u8, pin: bool) -> HandshakeKeys {
    let mut keys = if has_own_key(name, role) {
        own_keys(name, me)
    } else {
        HandshakeKeys::new()
    };
    let authenticates_peer = has_own_key(name, role.peer());
    if needs_peer_in_advance(name, role) || (pin && authenticates_peer) {
        keys = keys.remote(public(name, peer));
    }
    keys
}

/// A handshake of `role` from `keys`.
pub fn build(name: &str, role: Role, keys: &HandshakeKeys) -> Box<dyn Handshake> {
    match role {
        Role::Initiator => registry::initiator(name, keys).unwrap(),
        Role::Responder => registry::responder(&[name], keys).unwrap(),
    }
}

/// What one run of a handshake produced.
pub struct Run {
    /// Every message, with its sender.
    pub messages: Vec<(Role, Vec<u8>)>,
    /// The first error: the message index, the side that reported it, the error.
    pub error: Option<(usize, Role, Error)>,
    /// Each payload read, with its reader.
    pub payloads: Vec<(Role, Vec<u8>)>,
    /// What the failed read left in its payload buffer.
    pub failed_payload: Vec<u8>,
}

impl Run {
    /// Every byte `role` sent.
    pub fn sent_by(&self, role: Role) -> Vec<u8> {
        self.messages
            .iter()
            .filter(|(r, _)| *r == role)
            .flat_map(|(_, m)| m.clone())
            .collect()
    }
}

/// Moves messages between the two sides until both finish or one fails.
/// Payload of message k: `"payload k"`.
pub fn pump(i: &mut Box<dyn Handshake>, r: &mut Box<dyn Handshake>) -> Run {
    let mut run = Run {
        messages: Vec::new(),
        error: None,
        payloads: Vec::new(),
        failed_payload: Vec::new(),
    };
    let mut k = 0;
    while !(i.is_finished() && r.is_finished()) {
        let (w, rd) = if i.wants_write() {
            (&mut *i, &mut *r)
        } else if r.wants_write() {
            (&mut *r, &mut *i)
        } else {
            break;
        };
        let mut m = Vec::new();
        if let Err(e) = w.write_message(format!("payload {k}").as_bytes(), &mut m) {
            run.error = Some((k, w.role(), e));
            break;
        }
        run.messages.push((w.role(), m.clone()));
        let mut payload = Vec::new();
        if let Err(e) = rd.read_message(&m, &mut payload) {
            run.error = Some((k, rd.role(), e));
            run.failed_payload = payload;
            break;
        }
        run.payloads.push((rd.role(), payload));
        k += 1;
    }
    run
}

/// True if `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
