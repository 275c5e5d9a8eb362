//! The configurations and fixed secrets `session_ops` builds its two
//! sessions from; `akex_record` reuses the secrets to seal as the peer.

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, Secret};
use akex::handshake::TrafficSecret;
use akex::session::{AeadLimits, RecordMode, SessionConfig};
use akex::{Established, Role};

/// The session configurations; the selector byte picks one (modulo 6).
///
/// | # | layer | AEAD | extras |
/// |---|---|---|---|
/// | 0 | Noise mode | ChaChaPoly | no rekey |
/// | 1 | Noise mode | AESGCM | `REKEY()` every 3 messages |
/// | 2 | akex mode | ChaChaPoly | root secret, ratchet every 60 s |
/// | 3 | akex mode | AESGCM | hybrid ratchet, limits lowered to 12 records |
/// | 4 | datagram | ChaChaPoly | root secret, ratchet every 60 s |
/// | 5 | datagram | AESGCM | hybrid ratchet, 12 records, 4 forgeries |
pub const OPS_CONFIGS: usize = 6;

fn lowered_limits() -> AeadLimits {
    AeadLimits {
        max_records: 12,
        max_bytes: 1 << 20,
        max_forgeries: 4,
    }
}

pub(super) fn config(index: usize) -> (AeadAlgorithm, SessionConfig, RecordMode) {
    let chacha = AeadAlgorithm::ChaChaPoly;
    let aes = AeadAlgorithm::AesGcm;
    match index {
        0 => (chacha, SessionConfig::new(), RecordMode::Noise),
        1 => (aes, SessionConfig::noise_rekey_every(3), RecordMode::Noise),
        2 | 4 => (
            chacha,
            SessionConfig::new().ratchet_every(Duration::from_secs(60)),
            RecordMode::Akex,
        ),
        _ => (
            aes,
            SessionConfig::new()
                .hybrid_ratchet(true)
                .limits(lowered_limits()),
            RecordMode::Akex,
        ),
    }
}

/// An `Established` with fixed secrets (no handshake needed: the session
/// layer only sees the secrets).
pub(crate) fn fixed_established(
    role: Role,
    aead: AeadAlgorithm,
    root: bool,
    mode: RecordMode,
) -> Established {
    let remote = match role {
        Role::Initiator => akex::PublicKey::x25519([0x52; 32]),
        Role::Responder => akex::PublicKey::x25519([0x49; 32]),
    };
    // The protocol name decides the record mode.
    let name = match mode {
        RecordMode::Noise => "Noise_fuzz_fixed",
        _ => "akex-fuzz-fixed",
    };
    let established = Established::new(
        name.to_string(),
        role,
        HANDSHAKE_HASH.to_vec(),
        Some(remote),
        aead,
        TrafficSecret::new(Secret::new(I2R)),
        TrafficSecret::new(Secret::new(R2I)),
    );
    if root {
        established.with_root_secret(TrafficSecret::new(Secret::new(ROOT)))
    } else {
        established
    }
}

/// The fixed initiator-to-responder traffic secret.
pub(crate) const I2R: [u8; 32] = [0x11; 32];
/// The fixed responder-to-initiator traffic secret.
pub(crate) const R2I: [u8; 32] = [0x22; 32];
/// The fixed root secret of the akex-mode sessions.
pub(crate) const ROOT: [u8; 32] = [0x33; 32];
/// The fixed handshake hash (the ratchet's transcript starts with it).
pub(crate) const HANDSHAKE_HASH: [u8; 32] = [0x48; 32];

/// Deterministic randomness for one call: 256 bytes that depend on `n`.
pub(crate) fn rng_bytes(n: u32) -> Vec<u8> {
    (0..256u32)
        .map(|i| (i.wrapping_mul(29) ^ n.wrapping_mul(0x9e37_79b9).rotate_left(i % 32)) as u8)
        .collect()
}
