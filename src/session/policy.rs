//! When to rekey, and how far one key may ever be used.
//!
//! Two kinds of numbers live here:
//!
//! * **Hard limits** ([`AeadLimits`]): how many records and bytes one AEAD
//!   key may protect before its security bound degrades. They are not
//!   configurable. Sealing past them fails with
//!   [`LimitReached::AeadUsageLimit`](crate::error::LimitReached::AeadUsageLimit);
//!   a peer that sends past them ends the session with
//!   [`LimitReached::PeerExceededLimit`](crate::error::LimitReached::PeerExceededLimit).
//! * **A rekey policy** ([`RekeyPolicy`]): when to move to the next key
//!   *before* a hard limit is near: after N records, B bytes or T time,
//!   whichever comes first.
//!
//! # Where the numbers come from
//!
//! * **AES-256-GCM.** RFC 8446 (TLS 1.3) §5.5: at most 2^24.5 full-size
//!   records (2^14 bytes) per key keeps the confidentiality advantage below
//!   2^-57 (the bound grows with the total number of AES blocks, so the
//!   real budget is about 2^24.5 × 2^14 = 2^38.5 bytes). RFC 9001 (QUIC)
//!   §6.6 and the CFRG "Usage Limits on AEAD Algorithms" draft
//!   (draft-irtf-cfrg-aead-limits) give 2^23 packets of up to 2^16 bytes
//!   (the same block budget for 4× larger packets) and an integrity limit
//!   of 2^52 forgery attempts. Our records are up to 2^16 bytes, so the
//!   hard limits are 2^23 records and 2^38 bytes, and 2^52 failed
//!   decryptions.
//! * **ChaCha20-Poly1305.** RFC 9001 §6.6 / the CFRG draft: the
//!   confidentiality limit exceeds the number of possible records (2^62);
//!   the integrity limit is 2^36 forgery attempts. The hard record limit is
//!   therefore WireGuard's `REJECT_AFTER_MESSAGES` = 2^64 − 2^13 − 1 (below
//!   the reserved nonce 2^64 − 1), with no byte limit.
//! * **Rekey defaults** ([`RekeyPolicy::recommended`]): WireGuard rekeys
//!   after `REKEY_AFTER_TIME` = 120 s or `REKEY_AFTER_MESSAGES` = 2^60
//!   messages. We take 120 s for akex mode, and for the counts half of each
//!   hard limit, so a rekey always happens long before a key is refused:
//!   ChaCha20-Poly1305 2^60 records (WireGuard's number); AES-256-GCM 2^22
//!   records or 2^37 bytes.
//!
//! In **Noise mode** time-based rekeying is not allowed: both sides must
//! apply `REKEY()` at the same point in the message stream, and only
//! message and byte counts are seen identically by both. The default Noise
//! policy is [`RekeyPolicy::never`], which is what every other Noise
//! implementation does unless configured otherwise.

use std::time::Duration;

use crate::crypto::AeadAlgorithm;
use crate::error::{ConfigError, Error};

/// How far one AEAD key may be used (see the module docs for the sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadLimits {
    /// Most records sealed (or accepted) under one key.
    pub max_records: u64,
    /// Most plaintext bytes sealed (or accepted) under one key.
    pub max_bytes: u64,
    /// Most failed decryptions (forgery attempts) tolerated over the whole
    /// session, under every key together, before it closes (datagram mode;
    /// a stream closes on the first).
    pub max_forgeries: u64,
}

impl AeadLimits {
    /// The limits for `aead`.
    pub const fn for_aead(aead: AeadAlgorithm) -> Self {
        match aead {
            AeadAlgorithm::AesGcm => AeadLimits {
                max_records: 1 << 23,
                max_bytes: 1 << 38,
                max_forgeries: 1 << 52,
            },
            AeadAlgorithm::ChaChaPoly => AeadLimits {
                max_records: u64::MAX - (1 << 13),
                max_bytes: u64::MAX,
                max_forgeries: 1 << 36,
            },
        }
    }

    /// Whether one more record of `len` bytes fits after `records` records
    /// and `bytes` bytes.
    #[inline]
    pub fn allows(&self, records: u64, bytes: u64, len: usize) -> bool {
        records < self.max_records && bytes.saturating_add(len as u64) <= self.max_bytes
    }
}

/// When to move to the next key: whichever limit is reached first.
/// `None` means "never for this reason".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyPolicy {
    /// Rekey after this many records under one key.
    pub max_messages: Option<u64>,
    /// Rekey after this many plaintext bytes under one key.
    pub max_bytes: Option<u64>,
    /// Rekey after one key has been in use this long (akex mode only).
    pub max_age: Option<Duration>,
}

impl Default for RekeyPolicy {
    /// [`RekeyPolicy::recommended`] for ChaCha20-Poly1305.
    fn default() -> Self {
        Self::recommended(AeadAlgorithm::ChaChaPoly)
    }
}

impl RekeyPolicy {
    /// Never rekey on our own (the hard limits still apply).
    pub const fn never() -> Self {
        RekeyPolicy {
            max_messages: None,
            max_bytes: None,
            max_age: None,
        }
    }

    /// The akex-mode default for `aead`: 120 s (WireGuard), and half of
    /// the hard limits (2^60 records for ChaCha20-Poly1305 as WireGuard;
    /// 2^22 records or 2^37 bytes for AES-256-GCM).
    pub const fn recommended(aead: AeadAlgorithm) -> Self {
        match aead {
            AeadAlgorithm::ChaChaPoly => RekeyPolicy {
                max_messages: Some(1 << 60),
                max_bytes: None,
                max_age: Some(Duration::from_secs(120)),
            },
            AeadAlgorithm::AesGcm => RekeyPolicy {
                max_messages: Some(1 << 22),
                max_bytes: Some(1 << 37),
                max_age: Some(Duration::from_secs(120)),
            },
        }
    }

    /// A Noise-mode schedule: `REKEY()` after every `messages` messages in
    /// each direction (both peers must use the same number).
    pub const fn every_messages(messages: u64) -> Self {
        RekeyPolicy {
            max_messages: Some(messages),
            max_bytes: None,
            max_age: None,
        }
    }

    /// Checks the policy can be used in Noise mode (no time limit) and has
    /// no zero limits.
    pub fn validate(&self, noise_mode: bool) -> Result<(), Error> {
        if noise_mode && self.max_age.is_some() {
            return Err(ConfigError::Invalid(
                "a Noise-mode rekey policy may only use message and byte counts \
                 (both peers must rekey at the same message)"
                    .into(),
            )
            .into());
        }
        if self.max_messages == Some(0)
            || self.max_bytes == Some(0)
            || self.max_age == Some(Duration::ZERO)
        {
            return Err(ConfigError::Invalid("rekey policy limits must be positive".into()).into());
        }
        Ok(())
    }

    /// True when a key that has protected `messages` records and `bytes`
    /// bytes, and was installed at `since`, is due for a rekey at `now`.
    #[inline]
    pub fn due(&self, messages: u64, bytes: u64, since: Duration, now: Duration) -> bool {
        self.max_messages.is_some_and(|m| messages >= m)
            || self.max_bytes.is_some_and(|b| bytes >= b)
            || self.max_age.is_some_and(|t| now.saturating_sub(since) >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_stay_below_hard_limits() {
        for aead in [AeadAlgorithm::ChaChaPoly, AeadAlgorithm::AesGcm] {
            let p = RekeyPolicy::recommended(aead);
            let l = AeadLimits::for_aead(aead);
            assert!(p.max_messages.unwrap() < l.max_records);
            assert!(p.max_bytes.unwrap_or(0) < l.max_bytes);
            p.validate(false).unwrap();
            assert!(p.validate(true).is_err());
        }
        RekeyPolicy::every_messages(10).validate(true).unwrap();
        assert!(RekeyPolicy::every_messages(0).validate(true).is_err());
    }

    #[test]
    fn due_whichever_first() {
        let p = RekeyPolicy {
            max_messages: Some(3),
            max_bytes: Some(100),
            max_age: Some(Duration::from_secs(5)),
        };
        let t0 = Duration::from_secs(1);
        assert!(!p.due(2, 99, t0, Duration::from_secs(5)));
        assert!(p.due(3, 0, t0, t0));
        assert!(p.due(0, 100, t0, t0));
        assert!(p.due(0, 0, t0, Duration::from_secs(6)));
        assert!(!RekeyPolicy::never().due(u64::MAX, u64::MAX, t0, Duration::MAX));
    }
}
