//! Ephemeral Diffie-Hellman over a choice of group, for handshakes whose
//! suite names the group (SIGMA: X25519 or P-256).

use super::p256::{self, P256Ephemeral};
use super::rng::RandomSource;
use super::secret::Secret;
use super::x25519::{self, X25519Private};
use crate::error::Error;

/// An ephemeral key-agreement group.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// X25519 (RFC 7748): 32-byte public keys.
    X25519,
    /// NIST P-256 ECDH (SP 800-56A): 65-byte uncompressed public keys,
    /// the x-coordinate as the shared secret.
    P256,
}

impl DhGroup {
    /// Length of a public key on the wire.
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::X25519 => x25519::KEY_LEN,
            DhGroup::P256 => p256::PUBLIC_KEY_LEN,
        }
    }
}

/// One ephemeral key of a [`DhGroup`], used for one handshake.
pub(crate) enum Ephemeral {
    X25519(X25519Private),
    P256(P256Ephemeral),
}

impl Ephemeral {
    /// A fresh key from `rng` (X25519: 32 bytes; P-256: 32 bytes per try,
    /// see [`P256Ephemeral::generate`]).
    pub(crate) fn generate(group: DhGroup, rng: &mut dyn RandomSource) -> Self {
        match group {
            DhGroup::X25519 => {
                let secret = Secret::<{ x25519::KEY_LEN }>::random(rng);
                Ephemeral::X25519(X25519Private::new(&secret))
            }
            DhGroup::P256 => Ephemeral::P256(P256Ephemeral::generate(rng)),
        }
    }

    /// The public key.
    pub(crate) fn public(&self) -> &[u8] {
        match self {
            Ephemeral::X25519(k) => k.public(),
            Ephemeral::P256(k) => k.public(),
        }
    }

    /// The 32-byte shared secret with `peer`; a bad point is
    /// [`PeerMisbehaved::InvalidPublicKey`](crate::error::PeerMisbehaved).
    pub(crate) fn agree(&self, peer: &[u8]) -> Result<Secret<32>, Error> {
        match self {
            Ephemeral::X25519(k) => k.agree(peer),
            Ephemeral::P256(k) => k.agree(peer),
        }
    }
}
