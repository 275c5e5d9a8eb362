//! X25519 on aws-lc-rs (2.2x faster than curve25519-dalek on our machines).

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};

use super::rng::RandomSource;
use super::secret::Secret;
use crate::error::{Error, PeerMisbehaved};

/// Length of an X25519 public key, private key and shared secret.
pub const KEY_LEN: usize = 32;

/// A parsed X25519 private key, ready for repeated agreements.
pub struct X25519Private {
    key: PrivateKey,
    public: [u8; KEY_LEN],
}

impl X25519Private {
    /// Parses 32 private bytes and derives the public key once.
    pub fn new(private: &Secret<KEY_LEN>) -> Self {
        // Any 32 bytes are a valid X25519 private key, so parsing only fails
        // if aws-lc itself fails to allocate.
        let key = PrivateKey::from_private_key(&X25519, private.expose())
            .expect("aws-lc accepts every 32-byte X25519 private key");
        let mut public = [0u8; KEY_LEN];
        public.copy_from_slice(
            key.compute_public_key()
                .expect("aws-lc derives an X25519 public key")
                .as_ref(),
        );
        X25519Private { key, public }
    }

    /// The public key.
    pub fn public(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    /// Computes the shared secret with `peer_public`.
    ///
    /// Fails with [`PeerMisbehaved::InvalidPublicKey`] for a key of the wrong
    /// length or a low-order point (an all-zero shared secret), as the Noise
    /// spec permits.
    pub fn agree(&self, peer_public: &[u8]) -> Result<Secret<KEY_LEN>, Error> {
        if peer_public.len() != KEY_LEN {
            return Err(PeerMisbehaved::InvalidPublicKey.into());
        }
        agreement::agree(
            &self.key,
            UnparsedPublicKey::new(&X25519, peer_public),
            Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey),
            |shared| Secret::from_slice(shared).ok_or(PeerMisbehaved::InvalidPublicKey.into()),
        )
    }
}

/// The public key for a private key.
pub fn public_key(private: &Secret<KEY_LEN>) -> [u8; KEY_LEN] {
    *X25519Private::new(private).public()
}

/// A long-term X25519 private key with its public key.
///
/// snow's own `Keypair` is a plain `Vec`; this one erases the private half.
/// It also keeps the key parsed for aws-lc (shared by its clones), so a
/// handshake that uses it does not derive the public key again: that is an
/// X25519 base-point multiplication per side per handshake saved.
#[derive(Clone)]
pub struct StaticSecret {
    private: Secret<32>,
    public: [u8; 32],
    parsed: Arc<X25519Private>,
}

impl StaticSecret {
    /// Generates a new key from `rng`.
    pub fn generate(rng: &mut dyn RandomSource) -> Self {
        Self::from_private(Secret::random(rng))
    }

    /// Builds the key pair from the 32 private bytes (any value is a valid
    /// X25519 scalar; clamping happens inside the DH).
    pub fn from_private(private: Secret<32>) -> Self {
        let parsed = X25519Private::new(&private);
        StaticSecret {
            public: *parsed.public(),
            private,
            parsed: Arc::new(parsed),
        }
    }

    /// The private scalar. Keep the borrow short.
    pub fn private(&self) -> &Secret<32> {
        &self.private
    }

    /// The public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The key parsed for agreements (shared, never re-derived).
    pub(crate) fn parsed(&self) -> &Arc<X25519Private> {
        &self.parsed
    }
}

impl fmt::Debug for StaticSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticSecret")
            .field("public", &hex::encode(self.public))
            .field("private", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7748_alice_bob() {
        let a = Secret::new(
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        let b = Secret::new(
            hex::decode("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        let a = X25519Private::new(&a);
        let b = X25519Private::new(&b);
        assert_eq!(
            hex::encode(a.public()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let s1 = a.agree(b.public()).unwrap();
        let s2 = b.agree(a.public()).unwrap();
        assert_eq!(s1, s2);
        assert_eq!(
            hex::encode(s1.expose()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        );
    }

    #[test]
    fn static_secret_debug_is_redacted() {
        let k = StaticSecret::from_private(Secret::new([7u8; 32]));
        let text = format!("{k:?}");
        assert!(text.contains("redacted"));
        assert!(!text.contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn low_order_point_rejected() {
        let a = X25519Private::new(&Secret::new([9u8; 32]));
        assert!(matches!(
            a.agree(&[0u8; 32]),
            Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey))
        ));
        assert!(a.agree(&[1u8; 31]).is_err());
    }
}
