//! Epochs: one direction's traffic secret, the epoch it belongs to, and
//! how much its key has been used. Shared by stream and datagram sessions.

use std::time::Duration;

use super::policy::RekeyPolicy;
use super::schedule;
use crate::crypto::{AeadAlgorithm, AeadKey, Secret};

/// A direction's epoch: (ratchet generation, key updates since).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch {
    /// DH ratchet steps.
    pub generation: u32,
    /// Key updates since the last ratchet step.
    pub update: u32,
}

impl Epoch {
    /// The header bytes: generation and update, each u32 big-endian.
    pub(crate) fn to_bytes(self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&self.generation.to_be_bytes());
        out[4..].copy_from_slice(&self.update.to_be_bytes());
        out
    }
}

/// How much one key has been used, and since when.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    pub records: u64,
    pub bytes: u64,
    pub since: Duration,
}

impl Usage {
    pub(crate) fn starting(now: Duration) -> Self {
        Usage {
            since: now,
            ..Usage::default()
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, len: usize) {
        self.records += 1;
        self.bytes = self.bytes.saturating_add(len as u64);
    }

    /// True when `policy` asks to move the key on at `now`. A key that has
    /// protected no record is never updated for its age: there is nothing
    /// under it to protect, and an idle session then never moves further
    /// ahead than its peer can follow.
    #[inline]
    pub(crate) fn update_due(&self, policy: &RekeyPolicy, now: Duration) -> bool {
        self.records > 0 && policy.due(self.records, self.bytes, self.since, now)
    }
}

/// One direction's traffic secret (never a cipher key itself) and its epoch.
pub(crate) struct TrafficKey {
    secret: Secret<32>,
    epoch: Epoch,
}

impl TrafficKey {
    pub(crate) fn new(secret: Secret<32>, epoch: Epoch) -> Self {
        TrafficKey { secret, epoch }
    }

    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The AEAD key of this epoch (`HKDF-Expand(secret, "akex record key")`).
    pub(crate) fn aead_key(&self, aead: AeadAlgorithm) -> AeadKey {
        AeadKey::new(aead, schedule::record_key(&self.secret).expose())
    }

    /// The raw record key (for the Noise-shaped `CipherState`).
    pub(crate) fn record_key(&self) -> Secret<32> {
        schedule::record_key(&self.secret)
    }

    /// The next key update's secret: epoch (g, u + 1).
    pub(crate) fn next_update(&self) -> TrafficKey {
        self.forward(1)
    }

    /// `steps` key updates ahead (same generation).
    pub(crate) fn forward(&self, steps: u32) -> TrafficKey {
        let mut secret = self.secret.clone();
        for _ in 0..steps {
            secret = schedule::next_traffic_secret(&secret);
        }
        TrafficKey {
            secret,
            epoch: Epoch {
                generation: self.epoch.generation,
                update: self.epoch.update.saturating_add(steps),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroize;

    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}

    /// A traffic secret the session replaces is a `Secret`, whose drop
    /// zeroizes its bytes (checked by type here, so a change of field type
    /// fails to compile), and zeroizing leaves nothing of it.
    #[test]
    fn replaced_traffic_secrets_are_zeroized_on_drop() {
        let key = TrafficKey::new(Secret::new([7; 32]), Epoch::default());
        zeroized_on_drop(&key.secret);
        let next = key.next_update();
        assert_ne!(next.secret, key.secret);
        let mut old = key.secret.clone();
        old.zeroize();
        assert_eq!(old.expose(), &[0; 32]);
    }
}
