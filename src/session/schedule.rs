//! The akex-mode key schedule: key updates and the DH ratchet.
//!
//! * Key update: `next = HKDF-Expand-SHA256(PRK = current, info = "akex key update", L = 32)`.
//!   The current traffic secret is already a uniformly random 32-byte key,
//!   so it is used directly as the HKDF pseudorandom key (as TLS 1.3's
//!   `HKDF-Expand-Label` does for `traffic_secret_N+1`).
//! * Ratchet: `root' || i2r || r2i = HKDF-SHA256(salt = root, IKM = dh || kem, info = "akex ratchet", L = 96)`
//!   where `dh` is the X25519 output of the two ratchet keys and `kem` the
//!   ML-KEM-768 shared secret (empty when the session is not hybrid).
//!
//! See `protocols/session.md` for the full specification and vectors.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroize;

use crate::crypto::Secret;

/// HKDF info for a key update.
pub const LABEL_KEY_UPDATE: &[u8] = b"akex key update";
/// HKDF info for a DH ratchet step.
pub const LABEL_RATCHET: &[u8] = b"akex ratchet";

/// The traffic secret of the next epoch.
pub fn next_traffic_secret(current: &Secret<32>) -> Secret<32> {
    // A 32-byte PRK is at least HashLen, so from_prk cannot fail.
    let hk = Hkdf::<Sha256>::from_prk(current.expose()).expect("32-byte PRK is valid");
    let mut out = [0u8; 32];
    hk.expand(LABEL_KEY_UPDATE, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let s = Secret::new(out);
    out.zeroize();
    s
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
    let hk = Hkdf::<Sha256>::new(Some(root.expose()), &ikm[..ikm_len]);
    let mut okm = [0u8; 96];
    hk.expand(LABEL_RATCHET, &mut okm)
        .expect("96 bytes is a valid HKDF-SHA256 output length");
    let keys = RatchetKeys {
        root: Secret::from_slice(&okm[..32]).expect("32 bytes"),
        initiator_to_responder: Secret::from_slice(&okm[32..64]).expect("32 bytes"),
        responder_to_initiator: Secret::from_slice(&okm[64..]).expect("32 bytes"),
    };
    ikm.zeroize();
    okm.zeroize();
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
