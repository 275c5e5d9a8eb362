//! The symmetric state of akex-native handshakes.
//!
//! Shaped like the Noise spec's `SymmetricState` (section 5.2), with three
//! differences, all written down in `protocols/akex-mode.md`:
//!
//! - the hash is SHA-256 and the KDF is HKDF-SHA256 (RFC 5869), not Noise's
//!   HMAC-based `HKDF()`;
//! - every [`SymmetricState::mix_key`] names what it mixes with a *label*
//!   (the HKDF `info`), so no two derivations in any akex protocol share an
//!   input domain (the label tree is in [`labels`]);
//! - `h` always starts as `SHA-256(protocol_name)`, whatever its length.
//!
//! Everything secret (`ck`, `k`, HKDF outputs) is zeroized on drop and
//! redacted in `Debug`.

use std::fmt;

use zeroize::Zeroize;

use crate::crypto::hash::{hkdf_sha256, sha256};
use crate::crypto::{AeadAlgorithm, AeadKey, Secret, TAG_LEN};
use crate::error::{Error, LimitReached, PeerMisbehaved};
use crate::handshake::TrafficSecret;

/// Length of the hash output, the chaining key and every derived key.
pub const HASH_LEN: usize = 32;

/// The domain-separation labels (HKDF `info` strings) of akex mode.
///
/// Every label starts with `"akex "`; each protocol's own labels sit under
/// its short family name, like rosenpass's label tree. Labels are never
/// reused for a different input. `protocols/akex-mode.md` lists them all;
/// a new protocol adds its subtree there and here.
pub mod labels {
    /// `split()`: the two traffic secrets, from the final chaining key.
    pub const SPLIT: &[u8] = b"akex split";
    /// The session's DH-ratchet root secret, from the final chaining key.
    pub const ROOT: &[u8] = b"akex root";
    /// SIGMA: mixes the ephemeral-ephemeral X25519 shared secret.
    pub const SIGMA_DH_EE: &[u8] = b"akex sigma dh ee";
    /// SIGMA: the responder's MAC key (binds its identity to the DH secret).
    pub const SIGMA_MAC_RESPONDER: &[u8] = b"akex sigma mac responder";
    /// SIGMA: the initiator's MAC key.
    pub const SIGMA_MAC_INITIATOR: &[u8] = b"akex sigma mac initiator";
    /// SIGMA: context string the responder signs, followed by `h`.
    pub const SIGMA_SIG_RESPONDER: &[u8] = b"akex sigma sig responder";
    /// SIGMA: context string the initiator signs, followed by `h`.
    pub const SIGMA_SIG_INITIATOR: &[u8] = b"akex sigma sig initiator";
}

/// The chaining key, handshake hash and current handshake cipher of an
/// akex-native handshake.
pub struct SymmetricState {
    ck: Secret<HASH_LEN>,
    h: [u8; HASH_LEN],
    k: Option<AeadKey>,
    n: u64,
    aead: AeadAlgorithm,
}

impl fmt::Debug for SymmetricState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SymmetricState")
            .field("h", &hex::encode(self.h))
            .field("ck", &"<redacted>")
            .field("has_key", &self.k.is_some())
            .field("n", &self.n)
            .field("aead", &self.aead)
            .finish()
    }
}

impl Drop for SymmetricState {
    fn drop(&mut self) {
        // `ck` zeroizes itself; `h` is public but erase it anyway, and the
        // AEAD key schedule is erased by aws-lc when `k` drops.
        self.h.zeroize();
    }
}

impl SymmetricState {
    /// `InitializeSymmetric(name)` then `MixHash(prologue)`: `h =
    /// SHA-256(name)`, `ck = h`, no key, then `h = SHA-256(h ‖ prologue)`.
    ///
    /// Every akex-mode protocol starts here, so every one binds the
    /// configured prologue at the same point, always (an empty prologue
    /// is mixed too), before any pre-message key and before the hello.
    /// Nonces are encoded as in Noise (ChaChaPoly little-endian, AESGCM
    /// big-endian).
    pub fn new(protocol_name: &str, aead: AeadAlgorithm, prologue: &[u8]) -> Self {
        let h = sha256(&[protocol_name.as_bytes()]);
        let mut state = SymmetricState {
            ck: Secret::new(h),
            h,
            k: None,
            n: 0,
            aead,
        };
        state.mix_hash(prologue);
        state
    }

    /// The AEAD of the handshake (and of the session after it).
    pub fn aead(&self) -> AeadAlgorithm {
        self.aead
    }

    /// `h = SHA-256(h || data)`.
    pub fn mix_hash(&mut self, data: &[u8]) {
        self.h = sha256(&[&self.h, data]);
    }

    /// `(ck, k) = HKDF-SHA256(salt = ck, ikm, info = label)` (64 bytes),
    /// and the nonce counter restarts at 0.
    pub fn mix_key(&mut self, label: &[u8], ikm: &[u8]) {
        let okm = hkdf64(self.ck.expose(), ikm, label);
        let (ck, k) = split64(&okm);
        self.ck = ck;
        self.k = Some(AeadKey::new(self.aead, k.expose()));
        self.n = 0;
    }

    /// A 32-byte key for `label` from the current chaining key, without
    /// changing the state: `HKDF-SHA256(salt = ck, ikm = "", info = label)`.
    /// Protocols use it for MAC keys; the label must not be used by
    /// [`SymmetricState::mix_key`].
    pub fn derive_key(&self, label: &[u8]) -> Secret<HASH_LEN> {
        let okm = hkdf64(self.ck.expose(), &[], label);
        split64(&okm).0
    }

    /// Encrypts `plaintext` under the current key with `h` as associated
    /// data and appends the ciphertext to `out`; without a key yet, appends
    /// the plaintext. Either way, what was appended is mixed into `h`.
    pub fn encrypt_and_hash(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        match &self.k {
            None => out.extend_from_slice(plaintext),
            Some(k) => {
                let n = self.peek_nonce()?;
                out.resize(start + plaintext.len() + TAG_LEN, 0);
                k.seal_to(n, &self.h, plaintext, &mut out[start..]);
                self.n += 1;
            }
        }
        self.h = sha256(&[&self.h, &out[start..]]);
        Ok(())
    }

    /// Decrypts `ciphertext` (with `h` as associated data) and appends the
    /// plaintext to `out`; without a key yet, appends the bytes as they are.
    /// Then mixes `ciphertext` into `h`. On failure `out` is unchanged.
    pub fn decrypt_and_hash(&mut self, ciphertext: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        match &self.k {
            None => out.extend_from_slice(ciphertext),
            Some(k) => {
                let Some(len) = ciphertext.len().checked_sub(TAG_LEN) else {
                    return Err(PeerMisbehaved::BadMessageLength.into());
                };
                let n = self.peek_nonce()?;
                out.resize(start + len, 0);
                if let Err(e) = k.open_to(n, &self.h, ciphertext, &mut out[start..]) {
                    out.truncate(start);
                    return Err(e);
                }
                self.n += 1;
            }
        }
        self.mix_hash(ciphertext);
        Ok(())
    }

    /// The current handshake hash `h`.
    pub fn handshake_hash(&self) -> [u8; HASH_LEN] {
        self.h
    }

    /// The root secret the session layer's DH ratchet starts from:
    /// `HKDF-SHA256(salt = ck, ikm = "", info = "akex root")[0..32]`. Call
    /// it on the final state, just before [`SymmetricState::split`]; it is
    /// independent of the traffic secrets (another label).
    pub fn root_secret(&self) -> TrafficSecret {
        TrafficSecret::wrap(self.derive_key(labels::ROOT))
    }

    /// The two traffic secrets, `(initiator->responder,
    /// responder->initiator)` = `HKDF-SHA256(salt = ck, ikm = "",
    /// info = "akex split")`. The chaining key and handshake key are erased
    /// afterwards: the state cannot derive anything more.
    pub fn split(&mut self) -> (TrafficSecret, TrafficSecret) {
        let okm = hkdf64(self.ck.expose(), &[], labels::SPLIT);
        let (a, b) = split64(&okm);
        self.ck = Secret::new([0u8; HASH_LEN]);
        self.k = None;
        (TrafficSecret::wrap(a), TrafficSecret::wrap(b))
    }

    fn peek_nonce(&self) -> Result<u64, Error> {
        // 2^64-1 is reserved (Noise spec, section 5.1).
        if self.n == u64::MAX {
            return Err(LimitReached::NonceExhausted.into());
        }
        Ok(self.n)
    }
}

fn hkdf64(salt: &[u8; HASH_LEN], ikm: &[u8], info: &[u8]) -> Secret<64> {
    hkdf_sha256(salt, ikm, info)
}

fn split64(okm: &Secret<64>) -> (Secret<HASH_LEN>, Secret<HASH_LEN>) {
    let bytes = okm.expose();
    let mut a = [0u8; HASH_LEN];
    let mut b = [0u8; HASH_LEN];
    a.copy_from_slice(&bytes[..HASH_LEN]);
    b.copy_from_slice(&bytes[HASH_LEN..]);
    let out = (Secret::new(a), Secret::new(b));
    a.zeroize();
    b.zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "akex-test";

    fn fresh() -> SymmetricState {
        SymmetricState::new(NAME, AeadAlgorithm::ChaChaPoly, b"")
    }

    fn pair() -> (SymmetricState, SymmetricState) {
        let mut a = SymmetricState::new(NAME, AeadAlgorithm::ChaChaPoly, b"prologue");
        let mut b = SymmetricState::new(NAME, AeadAlgorithm::ChaChaPoly, b"prologue");
        for s in [&mut a, &mut b] {
            s.mix_key(b"akex test ikm", &[7u8; 32]);
        }
        (a, b)
    }

    #[test]
    fn initial_state() {
        let s = fresh();
        let h = sha256(&[NAME.as_bytes()]);
        // The prologue (here empty) is always mixed into h, never into ck.
        assert_eq!(s.handshake_hash(), sha256(&[&h, b""]));
        assert_eq!(s.ck.expose(), &h);
        let p = SymmetricState::new(NAME, AeadAlgorithm::ChaChaPoly, b"p");
        assert_ne!(p.handshake_hash(), s.handshake_hash());
    }

    #[test]
    fn passthrough_before_key() {
        let mut a = fresh();
        let mut b = fresh();
        let mut out = b"x".to_vec();
        a.encrypt_and_hash(b"hello", &mut out).unwrap();
        assert_eq!(out, b"xhello");
        let mut plain = Vec::new();
        b.decrypt_and_hash(&out[1..], &mut plain).unwrap();
        assert_eq!(plain, b"hello");
        assert_eq!(a.handshake_hash(), b.handshake_hash());
    }

    #[test]
    fn round_trip_and_transcript_agree() {
        let (mut a, mut b) = pair();
        for msg in [&b""[..], b"one", &[0xaa; 1000]] {
            let mut ct = Vec::new();
            a.encrypt_and_hash(msg, &mut ct).unwrap();
            assert_eq!(ct.len(), msg.len() + TAG_LEN);
            let mut pt = vec![1, 2];
            b.decrypt_and_hash(&ct, &mut pt).unwrap();
            assert_eq!(&pt[2..], msg);
            assert_eq!(a.handshake_hash(), b.handshake_hash());
        }
        let (a1, a2) = a.split();
        let (b1, b2) = b.split();
        assert_eq!(a1, b1);
        assert_eq!(a2, b2);
        assert_ne!(a1, a2);
    }

    #[test]
    fn tamper_fails_and_leaves_out_unchanged() {
        let (mut a, mut b) = pair();
        let mut ct = Vec::new();
        a.encrypt_and_hash(b"secret", &mut ct).unwrap();
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 1;
            let mut out = vec![9];
            let err = b.decrypt_and_hash(&bad, &mut out).unwrap_err();
            assert!(matches!(
                err,
                Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)
            ));
            assert_eq!(out, vec![9]);
        }
        let mut out = Vec::new();
        assert!(matches!(
            b.decrypt_and_hash(&ct[..TAG_LEN - 1], &mut out),
            Err(Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength))
        ));
        // The state did not move: the genuine ciphertext still opens.
        b.decrypt_and_hash(&ct, &mut out).unwrap();
        assert_eq!(out, b"secret");
    }

    #[test]
    fn different_labels_give_different_keys() {
        let mut a = fresh();
        let mut b = fresh();
        a.mix_key(b"akex label a", &[1; 32]);
        b.mix_key(b"akex label b", &[1; 32]);
        assert_ne!(a.ck, b.ck);
        assert_ne!(a.derive_key(b"x"), a.derive_key(b"y"));
    }

    #[test]
    fn debug_is_redacted() {
        let (a, _) = pair();
        let text = format!("{a:?}");
        assert!(text.contains("<redacted>"));
        assert!(!text.contains(&hex::encode(a.ck.expose())));
    }

    /// Known answer, pinned
    /// (inputs: name "akex-test", mix_hash("prologue"), mix_key("akex test
    /// ikm", 0x07 * 32), encrypt "kat", split).
    #[test]
    fn known_answer() {
        let (mut a, _) = pair();
        let mut ct = Vec::new();
        a.encrypt_and_hash(b"kat", &mut ct).unwrap();
        let h = a.handshake_hash();
        let (i2r, r2i) = a.split();
        let got = format!(
            "{}\n{}\n{}\n{}",
            hex::encode(&ct),
            hex::encode(h),
            hex::encode(i2r.expose()),
            hex::encode(r2i.expose())
        );
        assert_eq!(got, KAT, "{got}");
    }

    // Cross-checked once against an independent Python computation
    // (hashlib, hmac, cryptography's ChaCha20Poly1305).
    const KAT: &str = "8b6b65a8071646dac5e5bdc0ff91d09b29636d
3693d0bc9bd7d6dc95921aec8c99e6edb6669f313c36f0ccd8ec1deceeb7a4b4
7dc137da26cf4d121f7196b05fcc6c16e7eaf2071311c0c8764cea5ed95222c7
d4a13838cef84532708d2d85d64ec8a015ad8c203b0be7df46dfd585fbcce55c";
}
