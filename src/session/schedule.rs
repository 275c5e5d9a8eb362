//! The akex-mode key schedule (wire version 2): one job per secret.
//!
//! ```text
//! handshake ck ──"akex split"──▶ T(i→r, 0, 0) ‖ T(r→i, 0, 0)   traffic secrets
//!              └─"akex root"───▶ root(0)                        ratchet root
//!
//! traffic secret T(dir, g, u)                 (never a cipher key itself)
//!   ├─ HKDF-Expand(T, "akex record key", 32)  = the AEAD key of epoch (g, u)
//!   └─ HKDF-Expand(T, "akex key update", 32)  = T(dir, g, u + 1)
//!
//! root(g), ratchet step g + 1 (see `ratchet`):
//!   HKDF(salt = root(g), IKM = dh_ee ‖ [kem] ‖ [dh_es] ‖ [dh_se],
//!        info = "akex ratchet" ‖ th, L = 160)
//!   = root(g + 1) ‖ T(i→r, g + 1, 0) ‖ T(r→i, g + 1, 0) ‖ confirm_response ‖ confirm_finish
//! ```
//!
//! Each traffic secret derives exactly two things under two labels: the
//! AEAD key of its epoch and the next epoch's secret (TLS 1.3's
//! `traffic_secret_N` → key / `traffic_secret_N+1` split). A traffic
//! secret is already a uniformly random 32-byte key, so it is the HKDF
//! pseudorandom key directly (no Extract). The nonce is the record counter
//! (Noise layout); there is no nonce base: every epoch has a fresh 256-bit
//! key and its counter restarts at 0. Directions are the handshake's
//! (initiator → responder, responder → initiator) in every epoch, whoever
//! starts a ratchet step. The full specification, with vectors, is
//! `protocols/session.md`.

use zeroize::Zeroize;

use crate::crypto::hash::{hkdf_expand_sha256, hkdf_sha256};
use crate::crypto::Secret;

/// HKDF info for a key update: the next epoch's traffic secret.
pub const LABEL_KEY_UPDATE: &[u8] = b"akex key update";
/// HKDF info for the AEAD key of one epoch's records.
pub const LABEL_RECORD_KEY: &[u8] = b"akex record key";
/// HKDF info prefix of a DH ratchet step (followed by the step's
/// transcript hash).
pub const LABEL_RATCHET: &[u8] = b"akex ratchet";
/// Ed25519 context of a ratchet init's signature (SIGMA sessions).
pub const LABEL_RATCHET_SIG_INIT: &[u8] = b"akex ratchet sig init";
/// Ed25519 context of a ratchet response's signature (SIGMA sessions).
pub const LABEL_RATCHET_SIG_RESPONSE: &[u8] = b"akex ratchet sig response";

/// The AEAD key for the records of one epoch. The traffic secret itself is
/// never a cipher key: it only derives this key and the next secret, under
/// two different labels.
pub fn record_key(traffic: &Secret<32>) -> Secret<32> {
    hkdf_expand_sha256(traffic.expose(), LABEL_RECORD_KEY)
}

/// The traffic secret of the next epoch (a key update).
pub fn next_traffic_secret(current: &Secret<32>) -> Secret<32> {
    hkdf_expand_sha256(current.expose(), LABEL_KEY_UPDATE)
}

/// The outputs of one ratchet step.
pub struct RatchetKeys {
    /// The next root secret.
    pub root: Secret<32>,
    /// The new initiator-to-responder traffic secret (handshake roles).
    pub initiator_to_responder: Secret<32>,
    /// The new responder-to-initiator traffic secret (handshake roles).
    pub responder_to_initiator: Secret<32>,
    /// Key confirmation the step's responder sends in its response.
    pub confirm_response: Secret<32>,
    /// Key confirmation the step's initiator sends in its finish.
    pub confirm_finish: Secret<32>,
}

/// One ratchet step's key derivation:
/// `HKDF-SHA256(salt = root, IKM = secrets[0] ‖ secrets[1] ‖ …, info =
/// "akex ratchet" ‖ transcript, L = 160)`, split into five 32-byte values.
///
/// `secrets` are the step's shared secrets in the order of
/// `protocols/session.md` (`dh_ee`, then the ML-KEM secret, `dh_es`,
/// `dh_se`, each only when the session uses it); `transcript` is the
/// step's transcript hash `th`, which binds both ratchet public keys, the
/// KEM encapsulation key and ciphertext, the session, the generation and
/// who started the step.
pub fn ratchet(root: &Secret<32>, secrets: &[&Secret<32>], transcript: &[u8; 32]) -> RatchetKeys {
    let mut ikm = Vec::with_capacity(32 * secrets.len());
    for s in secrets {
        ikm.extend_from_slice(s.expose());
    }
    let mut info = Vec::with_capacity(LABEL_RATCHET.len() + 32);
    info.extend_from_slice(LABEL_RATCHET);
    info.extend_from_slice(transcript);
    let okm: Secret<160> = hkdf_sha256(root.expose(), &ikm, &info);
    ikm.zeroize();
    let part =
        |i: usize| Secret::from_slice(&okm.expose()[32 * i..32 * (i + 1)]).expect("32 bytes");
    RatchetKeys {
        root: part(0),
        initiator_to_responder: part(1),
        responder_to_initiator: part(2),
        confirm_response: part(3),
        confirm_finish: part(4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_secret_has_one_job() {
        let a = Secret::new([1u8; 32]);
        let b = next_traffic_secret(&a);
        assert_eq!(b, next_traffic_secret(&a));
        assert_ne!(a, b);
        assert_ne!(record_key(&a), a);
        assert_ne!(record_key(&a), b);
        let th = [5u8; 32];
        let r = ratchet(&a, &[&b], &th);
        let r2 = ratchet(&a, &[&b, &a], &th);
        let r3 = ratchet(&a, &[&b], &[6u8; 32]);
        assert_ne!(r.root, r2.root);
        assert_ne!(r.root, r3.root);
        assert_ne!(r.initiator_to_responder, r.responder_to_initiator);
        assert_ne!(r.confirm_response, r.confirm_finish);
    }
}
