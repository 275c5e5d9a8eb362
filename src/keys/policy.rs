//! [`TrustPolicy`]: how a peer's static key is judged, during the
//! handshake ([`PolicyVerifier`]) or after it.

use std::sync::Mutex;

use super::audit::AuditEvent;
use super::index::KeyType;
use super::trust::{fits_pin_type, Pin, TrustStore};
use super::{key_id, now_unix};
use crate::error::{Error, TrustFailure};
use crate::handshake::PeerVerifier;
use crate::keys::{KeyKind, PublicKey};

/// How a peer's static key is judged: during the handshake through
/// [`verifier`](Self::verifier), or after it with the `check` methods. The trust store
/// is refreshed from disk before every check (a `stat`, and a re-read only
/// when the file changed), so a revocation written by another process
/// counts from the next handshake on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TrustPolicy {
    /// Only pinned, unexpired, unrevoked keys.
    Pinned(TrustStore),
    /// As `Pinned`, but an unknown key is pinned on first use (and saved,
    /// under the store lock on a fresh read of the file). Revoked and
    /// expired keys still fail, and so does a new key for a peer name that
    /// is already pinned ([`TrustFailure::Changed`]): name the peer
    /// (`verifier(Some(name))`, `check_peer`) or every new key is a first
    /// use.
    Tofu(TrustStore),
    /// Anything (tests only).
    AllowAny,
}

impl TrustPolicy {
    /// The trust store, if the policy has one.
    pub fn store(&self) -> Option<&TrustStore> {
        match self {
            TrustPolicy::Pinned(s) | TrustPolicy::Tofu(s) => Some(s),
            TrustPolicy::AllowAny => None,
        }
    }

    /// The trust store, mutably, if the policy has one.
    pub fn store_mut(&mut self) -> Option<&mut TrustStore> {
        match self {
            TrustPolicy::Pinned(s) | TrustPolicy::Tofu(s) => Some(s),
            TrustPolicy::AllowAny => None,
        }
    }

    /// Checks the peer's static key at `now` (Unix seconds) against every
    /// pin, whatever its name (a server accepting any pinned client). Fails
    /// with [`TrustFailure::Revoked`], [`TrustFailure::Expired`] or
    /// [`TrustFailure::Unknown`].
    pub fn check(&mut self, remote_static: &[u8], now: u64) -> Result<(), Error> {
        self.check_peer(remote_static, None, now)
    }

    /// Checks the peer's static key at `now`, requiring (when `expected`
    /// is given) that it is pinned under that name: a key pinned for
    /// another peer fails with [`TrustFailure::WrongPeer`], so one pinned
    /// peer cannot pass for another. With `Tofu`, an unknown key is pinned
    /// as `expected` (or `tofu-<id>`), unless `expected` already names
    /// another key: that fails with [`TrustFailure::Changed`].
    ///
    /// A key pinned on first use is recorded as an X25519 key (a key of
    /// another length fails with [`TrustFailure::Unpinnable`]); use
    /// [`check_key`](Self::check_key) to record its real type.
    pub fn check_peer(
        &mut self,
        remote_static: &[u8],
        expected: Option<&str>,
        now: u64,
    ) -> Result<(), Error> {
        self.check_typed(remote_static, Some(KeyType::X25519), expected, now)
    }

    /// [`check_peer`](Self::check_peer) for a typed key: a key pinned on
    /// first use is recorded with its type (`ed25519` for a SIGMA identity,
    /// `p256` for the P-256 suite's). The legacy RSA and FFDH keys have no
    /// pin type, so `Tofu` does not pin them: an unknown one fails with
    /// [`TrustFailure::Unpinnable`].
    pub fn check_key(
        &mut self,
        key: &PublicKey,
        expected: Option<&str>,
        now: u64,
    ) -> Result<(), Error> {
        let key_type = match key.kind() {
            KeyKind::Ed25519 => Some(KeyType::Ed25519),
            KeyKind::P256 => Some(KeyType::P256),
            // The PQ identity (X25519 first) is pinned as an X25519 key, as
            // `keys trust` pins it.
            KeyKind::X25519 | KeyKind::X25519MlKem768 => Some(KeyType::X25519),
            // `keys trust` cannot pin these either (no type fits them).
            KeyKind::Rsa | KeyKind::Ffdhe3072 => None,
        };
        self.check_typed(key.as_bytes(), key_type, expected, now)
    }

    fn check_typed(
        &mut self,
        remote_static: &[u8],
        key_type: Option<KeyType>,
        expected: Option<&str>,
        now: u64,
    ) -> Result<(), Error> {
        let unknown = || -> Error {
            TrustFailure::Unknown {
                key_id: key_id(remote_static),
            }
            .into()
        };
        match self {
            TrustPolicy::AllowAny => Ok(()),
            TrustPolicy::Pinned(store) => {
                store.refresh()?;
                store
                    .judge(remote_static, expected, now)
                    .unwrap_or_else(|| Err(unknown()))
            }
            TrustPolicy::Tofu(store) => {
                store.refresh()?;
                match store.judge(remote_static, expected, now) {
                    Some(result) => result,
                    None => match key_type {
                        Some(key_type) if fits_pin_type(key_type, remote_static.len()) => {
                            pin_on_first_use(store, remote_static, key_type, expected, now)
                        }
                        _ => Err(TrustFailure::Unpinnable {
                            key_id: key_id(remote_static),
                        }
                        .into()),
                    },
                }
            }
        }
    }

    /// [`check`](Self::check) for an optional key: `None` fails with
    /// [`TrustFailure::NoRemoteKey`] unless the policy is `AllowAny`.
    pub fn check_optional(&mut self, remote_static: Option<&[u8]>, now: u64) -> Result<(), Error> {
        match (remote_static, &self) {
            (Some(key), _) => self.check(key, now),
            (None, TrustPolicy::AllowAny) => Ok(()),
            (None, _) => Err(TrustFailure::NoRemoteKey.into()),
        }
    }
}

impl TrustPolicy {
    /// This policy as a [`PeerVerifier`], for
    /// [`HandshakeKeys::verify_peer`](crate::config::HandshakeKeys::verify_peer):
    /// the peer's key is judged during the handshake, at the system clock's
    /// time, so a refused responder never receives the initiator's identity
    /// where the pattern sends it last. With `expected`, the key must be
    /// pinned under that name (see [`check_peer`](Self::check_peer)).
    pub fn verifier(self, expected: Option<&str>) -> PolicyVerifier {
        PolicyVerifier {
            policy: Mutex::new(self),
            expected: expected.map(str::to_owned),
        }
    }
}

/// A [`TrustPolicy`] checking peers during the handshake; made by
/// [`TrustPolicy::verifier`]. One verifier can serve every connection of a
/// server (checks are serialized; each is a `stat` of the trust file).
#[derive(Debug)]
pub struct PolicyVerifier {
    policy: Mutex<TrustPolicy>,
    expected: Option<String>,
}

impl PeerVerifier for PolicyVerifier {
    fn verify_peer(&self, key: &PublicKey, _payload: &[u8]) -> Result<(), Error> {
        // A panic elsewhere while holding the lock leaves the policy as it
        // was (every check re-reads the file), so the poison is ignored.
        let mut policy = self.policy.lock().unwrap_or_else(|e| e.into_inner());
        policy.check_key(key, self.expected.as_deref(), now_unix())
    }
}

/// TOFU: pins the key under the lock, on the file as it is now. If another
/// process revoked or pinned it meanwhile, that decision wins.
fn pin_on_first_use(
    store: &mut TrustStore,
    remote_static: &[u8],
    key_type: KeyType,
    expected: Option<&str>,
    now: u64,
) -> Result<(), Error> {
    let id = key_id(remote_static);
    let name = expected
        .map(str::to_owned)
        .unwrap_or_else(|| format!("tofu-{}", &id[..16]));
    let pinned = store.modify(|data, journal| {
        if data.revocation(&id).is_some() || data.pins.iter().any(|p| p.id == id) {
            return Ok((false, None));
        }
        // The name already stands for another key: that is a changed key,
        // not a first use (SSH's changed host key).
        if let Some(name) = expected {
            if data.pins.iter().any(|p| p.name == name) {
                return Err(TrustFailure::Changed {
                    key_id: id.clone(),
                    name: name.to_owned(),
                }
                .into());
            }
        }
        // A new pin adds trust: refused while the audit log is damaged.
        if let Some(journal) = journal {
            journal.require_intact()?;
        }
        let mut pin = Pin::new(&name, key_type, remote_static, now);
        pin.tofu = true;
        data.pins.push(pin);
        let event = AuditEvent::new(
            "trust",
            Some(&id),
            Some(&name),
            Some("trust on first use".into()),
        );
        Ok((true, Some(event)))
    })?;
    if pinned {
        return Ok(());
    }
    store
        .judge(remote_static, expected, now)
        .unwrap_or_else(|| Err(TrustFailure::Unknown { key_id: id }.into()))
}
