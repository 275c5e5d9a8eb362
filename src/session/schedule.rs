//! The akex-mode key schedule: key updates and the DH ratchet.
//!
//! * Record key: `key = HKDF-Expand-SHA256(PRK = secret, info = "akex record key", L = 32)`:
//!   the AEAD key of an epoch; the traffic secret is never a cipher key.
//! * Key update: `next = HKDF-Expand-SHA256(PRK = current, info = "akex key update", L = 32)`.
//!   The current traffic secret is already a uniformly random 32-byte key,
//!   so it is used directly as the HKDF pseudorandom key (as TLS 1.3's
//!   `HKDF-Expand-Label` does for `traffic_secret_N+1`).
//! * Ratchet: `root' || i2r || r2i = HKDF-SHA256(salt = root, IKM = dh || kem, info = "akex ratchet", L = 96)`
//!   where `dh` is the X25519 output of the two ratchet keys and `kem` the
//!   ML-KEM-768 shared secret (empty when the session is not hybrid).
//!
//! See `protocols/session.md` for the full specification and vectors.

use zeroize::Zeroize;

use crate::crypto::hash::{hkdf_expand_sha256, hkdf_sha256};
use crate::crypto::Secret;

/// HKDF info for a key update.
pub const LABEL_KEY_UPDATE: &[u8] = b"akex key update";
/// HKDF info for the AEAD key of one epoch's records.
pub const LABEL_RECORD_KEY: &[u8] = b"akex record key";

/// The AEAD key for the records of one epoch: the traffic secret itself is
/// never a cipher key (it only derives this key and the next secret, under
/// two different labels).
pub fn record_key(traffic: &Secret<32>) -> Secret<32> {
    hkdf_expand_sha256(traffic.expose(), LABEL_RECORD_KEY)
}
/// HKDF info for a DH ratchet step.
pub const LABEL_RATCHET: &[u8] = b"akex ratchet";

/// The traffic secret of the next epoch.
pub fn next_traffic_secret(current: &Secret<32>) -> Secret<32> {
    hkdf_expand_sha256(current.expose(), LABEL_KEY_UPDATE)
}

/// The outputs of one ratchet step.
pub struct RatchetKeys {
    /// The next root secret.
    pub root: Secret<32>,
    /// The new initiator-to-responder traffic secret.
    pub initiator_to_responder: Secret<32>,
    /// The new responder-to-initiator traffic secret.
    pub responder_to_initiator: Secret<32>,
}

/// Mixes a ratchet step's shared secrets into the root secret.
pub fn ratchet(root: &Secret<32>, dh: &Secret<32>, kem: Option<&Secret<32>>) -> RatchetKeys {
    let mut ikm = [0u8; 64];
    ikm[..32].copy_from_slice(dh.expose());
    let ikm_len = match kem {
        Some(k) => {
            ikm[32..].copy_from_slice(k.expose());
            64
        }
        None => 32,
    };
    let okm: Secret<96> = hkdf_sha256(root.expose(), &ikm[..ikm_len], LABEL_RATCHET);
    let okm = okm.expose();
    let keys = RatchetKeys {
        root: Secret::from_slice(&okm[..32]).expect("32 bytes"),
        initiator_to_responder: Secret::from_slice(&okm[32..64]).expect("32 bytes"),
        responder_to_initiator: Secret::from_slice(&okm[64..]).expect("32 bytes"),
    };
    ikm.zeroize();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_update_is_deterministic_and_changes() {
        let a = Secret::new([1u8; 32]);
        let b = next_traffic_secret(&a);
        assert_eq!(b, next_traffic_secret(&a));
        assert_ne!(a, b);
        let r = ratchet(&a, &b, None);
        let r2 = ratchet(&a, &b, Some(&a));
        assert_ne!(r.root, r2.root);
        assert_ne!(r.initiator_to_responder, r.responder_to_initiator);
    }
}
