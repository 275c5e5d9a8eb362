//! Secret byte strings that erase themselves and never print.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::x25519::X25519Private;

/// `N` secret bytes: zeroized on drop, redacted in `Debug`, compared in
/// constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret<const N: usize>([u8; N]);

impl<const N: usize> Secret<N> {
    /// Wraps bytes; the caller should erase its own copy.
    pub fn new(bytes: [u8; N]) -> Self {
        Secret(bytes)
    }

    /// Copies from a slice of exactly `N` bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; N] = bytes.try_into().ok()?;
        Some(Secret(array))
    }

    /// Draws `N` fresh bytes from `rng`.
    pub fn random(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
        let mut s = Secret([0u8; N]);
        rng.fill_bytes(&mut s.0);
        s
    }

    /// The secret bytes. Keep the borrow short.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret<{N}>(<redacted>)")
    }
}

impl<const N: usize> PartialEq for Secret<N> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl<const N: usize> Eq for Secret<N> {}

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
    pub fn generate(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
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

/// Compares two byte strings in constant time (length may leak).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new([0x41u8; 32]);
        let text = format!("{s:?}");
        assert!(!text.contains("41"), "{text}");
        let k = StaticSecret::from_private(Secret::new([7u8; 32]));
        let text = format!("{k:?}");
        assert!(text.contains("redacted"));
        assert!(!text.contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn constant_time_eq() {
        assert_eq!(Secret::new([1u8; 4]), Secret::new([1u8; 4]));
        assert_ne!(Secret::new([1u8; 4]), Secret::new([2u8; 4]));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
