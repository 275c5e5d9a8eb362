//! Every protocol akex speaks, by name, with its properties, and one place
//! that builds a handshake for a name.
//!
//! - [`protocols`]: the table `akex protocols` prints.
//! - [`initiator`]: a handshake for one name (Noise names go to
//!   [`NoiseHandshake`], in Noise mode, without a hello; akex names to the
//!   akex-native initiator, which writes the hello).
//! - [`responder`]: for one Noise name, a [`NoiseHandshake`]; for an
//!   allow-list of akex names, a negotiating responder. Noise mode has
//!   no hello, so a Noise name can only be used alone.
//!
//! # Adding a protocol
//!
//! 1. Add a [`ProtocolInfo`] row to `PROTOCOLS` (`registry_table.rs`).
//! 2. Add a match arm to `build_akex` that builds either role from
//!    [`HandshakeKeys`]. Responders must implement `AkexResponder`.
//! 3. If the protocol needs a new kind of key, add an `Option<...>` field to
//!    [`HandshakeKeys`] (and to its `Debug`, redacted).
//! 4. Add one line to `CASES` in `tests/akex_vectors_support/mod.rs` and run
//!    `cargo test --test akex_vectors -- --ignored write_vectors`: it writes
//!    `protocols/vectors/<name>.json`, which `replay_vectors` then replays,
//!    and `registry_message_sizes_are_true` (tests/akex_registry.rs) checks
//!    the row's sizes against a real run (rows without a case are skipped
//!    with a note).

use super::akex::{AkexResponder, NegotiatingResponder, AKEX_PREFIX};
use super::hybrid::{HybridConfig, HybridHandshake};
use super::pq::{PQ_IK, PQ_XX};
use super::registry_table::PROTOCOLS;
use super::sigma::{sigma_suite, SigmaConfig, SigmaHandshake};
use super::{Handshake, NoiseConfig, NoiseHandshake, Role};
pub use crate::config::HandshakeKeys;
use crate::error::{ConfigError, Error};
use crate::keys::KeyKind;

/// How a protocol is spoken on the wire.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Plain Noise messages, no hello: both sides configure the same name.
    Noise,
    /// The initiator's first message starts with a hello naming the
    /// protocol; the responder negotiates from an allow-list.
    Akex,
}

/// One protocol and its properties, as `akex protocols` shows them.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ProtocolInfo {
    /// The full name, as given to `--protocol`.
    pub name: &'static str,
    /// The family (DESIGN.md's protocol table).
    pub family: &'static str,
    /// Noise mode or akex mode.
    pub mode: Mode,
    /// How each side is authenticated.
    pub authentication: &'static str,
    /// Whether recorded transport data stays secret after the later theft
    /// of either side's long-term key: true when the keys come from
    /// ephemeral secrets on both sides (an ephemeral-ephemeral DH or KEM).
    /// False for RSA key transport and for the one-way Noise patterns
    /// (N, K, X; see [`one_way`](Self::one_way)). Where the first
    /// handshake payload is the exception (IK, NK, ...), `post_quantum` and
    /// the protocol's spec say so.
    pub forward_secrecy: bool,
    /// A one-way Noise pattern (N, K, X): one handshake message, no answer,
    /// and only the initiator sends. Everything it sends is encrypted to the
    /// responder's static key and the initiator's ephemeral alone, so it is
    /// not forward secret against the theft of the responder's key, and the
    /// responder cannot tell a replayed message from a fresh one.
    pub one_way: bool,
    /// What, if anything, survives a quantum attacker.
    pub post_quantum: &'static str,
    /// Whose identity is hidden from whom.
    pub identity_hiding: &'static str,
    /// Size in bytes of each handshake message with empty payloads.
    pub message_sizes: &'static [usize],
    /// Round trips of the handshake (1.5 for three messages).
    pub round_trips: f32,
    /// Keys each side needs (for help texts).
    pub keys: &'static str,
}

impl ProtocolInfo {
    /// Total bytes of all handshake messages with empty payloads.
    pub fn total_bytes(&self) -> usize {
        self.message_sizes.iter().sum()
    }
}

/// Every protocol in the registry. Noise mode accepts any other Noise name
/// snow parses (with the 25519 DH) too; the table lists the common ones.
pub fn protocols() -> &'static [ProtocolInfo] {
    PROTOCOLS
}

/// The registry row for `name`, if it has one.
pub fn info(name: &str) -> Option<&'static ProtocolInfo> {
    PROTOCOLS.iter().find(|p| p.name == name)
}

/// Whether `name` is forward secret ([`ProtocolInfo::forward_secrecy`]),
/// for every name akex runs, with a registry row or not: any Noise name is
/// judged by its pattern (the one-way patterns N, K, X, with or without
/// PSKs, are not; every interactive pattern mixes an ephemeral-ephemeral
/// DH). `None` for a name akex cannot run.
pub fn forward_secrecy(name: &str) -> Option<bool> {
    if let Some(row) = info(name) {
        return Some(row.forward_secrecy);
    }
    match mode_of(name).ok()? {
        Mode::Noise => Some(!super::noise::NoiseProtocol::parse(name).ok()?.is_one_way()),
        Mode::Akex => None,
    }
}

/// The mode a name is spoken in: `Noise_*` names in Noise mode, `akex-*`
/// names in akex mode.
pub fn mode_of(name: &str) -> Result<Mode, Error> {
    if name.starts_with("Noise_") {
        Ok(Mode::Noise)
    } else if name.starts_with(AKEX_PREFIX) {
        Ok(Mode::Akex)
    } else {
        Err(unknown(name))
    }
}

fn unknown(name: &str) -> Error {
    ConfigError::UnsupportedProtocol {
        name: name.to_string(),
        reason: "unknown protocol (see `akex protocols`)".into(),
    }
    .into()
}

/// The kind of peer key `name` authenticates (what
/// [`HandshakeKeys::remote`] must be for it), or `None` if the protocol
/// authenticates no peer key or is unknown.
pub fn remote_key_kind(name: &str) -> Option<KeyKind> {
    if name.starts_with("Noise_") {
        return Some(KeyKind::X25519);
    }
    if let Some(suite) = sigma_suite(name) {
        return Some(suite.scheme.key_kind());
    }
    #[cfg(feature = "rsa-kt")]
    if name == super::rsa::RSA_KT {
        return Some(KeyKind::Rsa);
    }
    #[cfg(feature = "ffdh")]
    if name == super::ffdh::FFDH_NK {
        return Some(KeyKind::Ffdhe3072);
    }
    if name == PQ_XX || name == PQ_IK {
        return Some(KeyKind::X25519MlKem768);
    }
    super::hybrid::protocol_info(name).map(|_| KeyKind::X25519)
}

fn noise(name: &str, keys: &HandshakeKeys, role: Role) -> Result<NoiseHandshake, Error> {
    let mut config = NoiseConfig::new(name)?
        .prologue(keys.prologue.clone())
        .shared_rng(keys.shared_rng());
    if let Some(k) = &keys.x25519 {
        config = config.local_static(k.clone());
    }
    if let Some(r) = &keys.remote {
        config = config.remote_static(r.clone());
    }
    for psk in &keys.psks {
        config = config.psk(psk.clone());
    }
    NoiseHandshake::new(config, role)
}

/// Builds one role of an akex-native protocol. Responders are returned as
/// [`AkexResponder`]s (the initiator as one too: every akex protocol
/// implements the trait, and `mix_hello` is a no-op for initiators).
fn build_akex(
    name: &str,
    keys: &HandshakeKeys,
    role: Role,
) -> Result<Box<dyn AkexResponder>, Error> {
    if let Some(suite) = sigma_suite(name) {
        let identity = keys
            .local_signer(suite.scheme)
            .cloned()
            .ok_or(ConfigError::MissingLocalKey)?;
        let mut config = SigmaConfig::with_signer(name, identity)?
            .prologue(keys.prologue.clone())
            .shared_rng(keys.shared_rng());
        if let Some(r) = &keys.remote {
            config = config.remote(r.clone());
        }
        return Ok(Box::new(match role {
            Role::Initiator => SigmaHandshake::initiator(config)?,
            Role::Responder => SigmaHandshake::responder(config)?,
        }));
    }
    #[cfg(feature = "rsa-kt")]
    if name == super::rsa::RSA_KT {
        use super::rsa::{RsaKtConfig, RsaKtHandshake};
        let mut config = RsaKtConfig::new()
            .prologue(keys.prologue.clone())
            .shared_rng(keys.shared_rng());
        return Ok(Box::new(match role {
            Role::Initiator => {
                let remote = keys.remote.as_ref().ok_or(ConfigError::MissingRemoteKey)?;
                let der = remote.expect_kind(KeyKind::Rsa)?.as_bytes().to_vec();
                RsaKtHandshake::initiator(config.remote_key(der))?
            }
            Role::Responder => {
                if let Some(k) = &keys.rsa {
                    config = config.local_key(k.clone());
                }
                RsaKtHandshake::responder(config)?
            }
        }));
    }
    #[cfg(feature = "ffdh")]
    if name == super::ffdh::FFDH_NK {
        use super::ffdh::{FfdhConfig, FfdhHandshake};
        let mut config = FfdhConfig::new()
            .prologue(keys.prologue.clone())
            .shared_rng(keys.shared_rng());
        return Ok(Box::new(match role {
            Role::Initiator => {
                let remote = keys.remote.clone().ok_or(ConfigError::MissingRemoteKey)?;
                FfdhHandshake::initiator(config.remote_key(remote))?
            }
            Role::Responder => {
                if let Some(k) = &keys.ffdh {
                    config = config.local_key(k.clone());
                }
                FfdhHandshake::responder(config)?
            }
        }));
    }
    if super::hybrid::protocol_info(name).is_some() {
        return Ok(Box::new(hybrid(name, keys, role)?));
    }
    Err(unknown(name))
}

/// Hybrid and PQ-authenticated protocols (src/handshake/hybrid.rs, pq.rs).
fn hybrid(name: &str, keys: &HandshakeKeys, role: Role) -> Result<HybridHandshake, Error> {
    let pq = name == PQ_XX || name == PQ_IK;
    let mut config = HybridConfig::new(name)?
        .prologue(keys.prologue.clone())
        .shared_rng(keys.shared_rng());
    if let Some(k) = &keys.x25519 {
        config = config.local_static(k.clone());
    }
    if let Some(k) = &keys.mlkem768 {
        if pq {
            config = config.local_kem(k.clone());
        }
    }
    if let Some(remote) = &keys.remote {
        config = config.remote(remote.clone());
    }
    HybridHandshake::new(config, role)
}

/// Puts the handshake behind the keys' [`PeerVerifier`](super::PeerVerifier), if any.
fn verified(hs: Box<dyn Handshake>, keys: &HandshakeKeys) -> Box<dyn Handshake> {
    match &keys.verifier {
        Some(v) => Box::new(super::Verified::new(hs, v.clone())),
        None => hs,
    }
}

/// The initiator for `name`.
pub fn initiator(name: &str, keys: &HandshakeKeys) -> Result<Box<dyn Handshake>, Error> {
    let hs: Box<dyn Handshake> = match mode_of(name)? {
        Mode::Noise => Box::new(noise(name, keys, Role::Initiator)?),
        Mode::Akex => Box::new(AkexInitiator(build_akex(name, keys, Role::Initiator)?)),
    };
    Ok(verified(hs, keys))
}

/// The responder for `allowed`: one Noise name (Noise mode), or any number
/// of akex names (akex mode, negotiated by the initiator's hello).
///
/// Fails with a [`ConfigError`] for an empty list, a mix of Noise and akex
/// names or several Noise names, and checks up front that every akex name
/// can be built from `keys`.
pub fn responder(allowed: &[&str], keys: &HandshakeKeys) -> Result<Box<dyn Handshake>, Error> {
    let modes = allowed
        .iter()
        .map(|n| mode_of(n))
        .collect::<Result<Vec<_>, _>>()?;
    match (allowed, modes.as_slice()) {
        ([], _) => Err(ConfigError::Invalid("the protocol allow-list is empty".into()).into()),
        ([name], [Mode::Noise]) => Ok(verified(
            Box::new(noise(name, keys, Role::Responder)?),
            keys,
        )),
        (_, m) if m.contains(&Mode::Noise) => Err(ConfigError::Invalid(
            "a Noise protocol can only be used alone: Noise mode has no hello to \
             negotiate with (list only akex-* protocols to accept several)"
                .into(),
        )
        .into()),
        _ => {
            // Fail on a missing key now, not when a client connects.
            for name in allowed {
                build_akex(name, keys, Role::Responder)?;
            }
            Ok(negotiating(allowed, keys))
        }
    }
}

/// A responder for an allow-list already checked by [`responder`]: only
/// the protocol the hello names gets built, once per connection.
pub(crate) fn responder_checked(
    allowed: &[&str],
    keys: &HandshakeKeys,
) -> Result<Box<dyn Handshake>, Error> {
    match allowed {
        [name] if mode_of(name)? == Mode::Noise => Ok(verified(
            Box::new(noise(name, keys, Role::Responder)?),
            keys,
        )),
        _ => Ok(negotiating(allowed, keys)),
    }
}

fn negotiating(allowed: &[&str], keys: &HandshakeKeys) -> Box<dyn Handshake> {
    let owned = keys.clone();
    let names = allowed.iter().map(|s| s.to_string()).collect();
    let hs = Box::new(NegotiatingResponder::new(
        names,
        Box::new(move |name: &str| build_akex(name, &owned, Role::Responder)),
    ));
    verified(hs, keys)
}

/// Checks an allow-list and the keys without building a handshake (for
/// command-line validation).
pub fn check_responder(allowed: &[&str], keys: &HandshakeKeys) -> Result<(), Error> {
    responder(allowed, keys).map(drop)
}

/// Wraps an akex initiator as a plain [`Handshake`] (Rust 1.85 has no
/// trait upcasting).
struct AkexInitiator(Box<dyn AkexResponder>);

impl Handshake for AkexInitiator {
    fn protocol(&self) -> &str {
        self.0.protocol()
    }
    fn role(&self) -> Role {
        self.0.role()
    }
    fn wants_write(&self) -> bool {
        self.0.wants_write()
    }
    fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.0.write_message(payload, out)
    }
    fn read_message(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        self.0.read_message(message, payload)
    }
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
    fn finish(&mut self) -> Result<super::Established, Error> {
        self.0.finish()
    }
    fn remote_static(&self) -> Option<crate::keys::PublicKey> {
        self.0.remote_static()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Secret;
    use crate::handshake::sigma::{SIGMA_AESGCM, SIGMA_CHACHAPOLY};
    use crate::keys::{SigningKey, StaticSecret};

    #[test]
    fn names_are_unique_and_modes_match() {
        for (i, p) in PROTOCOLS.iter().enumerate() {
            assert!(
                PROTOCOLS[..i].iter().all(|q| q.name != p.name),
                "{}",
                p.name
            );
            assert_eq!(mode_of(p.name).unwrap(), p.mode, "{}", p.name);
        }
    }

    #[test]
    fn mixing_noise_and_akex_is_refused() {
        let keys = HandshakeKeys::new().signing_key(SigningKey::from_seed(Secret::new([1; 32])));
        let err = responder(
            &["Noise_NN_25519_ChaChaPoly_BLAKE2s", SIGMA_CHACHAPOLY],
            &keys,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("only be used alone"), "{err}");
        assert!(responder(&[], &keys).is_err());
        assert!(responder(&["tls13"], &keys).is_err());
        assert!(responder(&[SIGMA_CHACHAPOLY, SIGMA_AESGCM], &keys).is_ok());
        assert!(matches!(
            responder(&[SIGMA_CHACHAPOLY], &HandshakeKeys::default()),
            Err(Error::Config(ConfigError::MissingLocalKey))
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let keys = HandshakeKeys::new()
            .signing_key(SigningKey::from_seed(Secret::new([0x42; 32])))
            .static_key(StaticSecret::from_private(Secret::new([0x43; 32])));
        let text = format!("{keys:?}");
        assert!(!text.contains(&hex::encode([0x42; 32])), "{text}");
        assert!(!text.contains(&hex::encode([0x43; 32])), "{text}");
    }
}
