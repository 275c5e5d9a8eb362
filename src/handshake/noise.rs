//! Noise handshakes on snow, with our primitives plugged in.
//!
//! Any protocol name snow parses works if its DH is 25519: every
//! fundamental, one-way and deferred pattern, `pskN` modifiers, ChaChaPoly
//! or AESGCM, BLAKE2s, BLAKE2b, SHA256 or SHA512.

use snow::params::{CipherChoice, DHChoice, NoiseParams};

use super::{Established, Handshake, Role, TrafficSecret, MAX_MESSAGE_LEN};
use crate::crypto::secret::ct_eq;
use crate::crypto::snow_resolver::AkexResolver;
use crate::crypto::{AeadAlgorithm, RandomSource, Secret, SharedRng, StaticSecret};
use crate::error::{ApiMisuse, ConfigError, Error, PeerMisbehaved, TrustFailure};
use crate::keys::{KeyKind, PublicKey};

/// Everything needed to start one side of a Noise handshake.
#[derive(Debug, Clone)]
pub struct NoiseConfig {
    protocol: NoiseProtocol,
    prologue: Vec<u8>,
    local_static: Option<StaticSecret>,
    remote_static: Option<PublicKey>,
    psks: Vec<Secret<32>>,
    rng: SharedRng,
}

impl NoiseConfig {
    /// A configuration for `protocol`, e.g. `Noise_XX_25519_ChaChaPoly_BLAKE2s`,
    /// drawing randomness from the OS. The name is parsed here, once: a
    /// name akex cannot run fails now with
    /// [`ConfigError::UnsupportedProtocol`].
    pub fn new(protocol: &str) -> Result<Self, Error> {
        Ok(NoiseConfig {
            protocol: NoiseProtocol::parse(protocol)?,
            prologue: Vec::new(),
            local_static: None,
            remote_static: None,
            psks: Vec::new(),
            rng: SharedRng::os(),
        })
    }

    /// Data both sides must agree on, hashed into the transcript.
    pub fn prologue(mut self, prologue: impl Into<Vec<u8>>) -> Self {
        self.prologue = prologue.into();
        self
    }

    /// Our long-term static key.
    pub fn local_static(mut self, key: StaticSecret) -> Self {
        self.local_static = Some(key);
        self
    }

    /// The peer's static public key (X25519): known in advance for patterns
    /// that need it (NK, IK, KK, ...), and otherwise the key the peer must
    /// prove (pinning, e.g. for XX); the handshake fails if the peer shows
    /// another. A key of another kind is refused when the handshake is
    /// built.
    pub fn remote_static(mut self, key: PublicKey) -> Self {
        self.remote_static = Some(key);
        self
    }

    /// Adds a pre-shared key; PSKs fill the pattern's `pskN` slots in order.
    pub fn psk(mut self, psk: Secret<32>) -> Self {
        self.psks.push(psk);
        self
    }

    /// The random source for ephemeral keys (the OS by default; tests
    /// inject a replayed one for known-answer vectors).
    pub fn rng(mut self, rng: impl RandomSource + 'static) -> Self {
        self.rng = SharedRng::new(rng);
        self
    }

    /// Shares an existing generator (configurations built per connection).
    pub(crate) fn shared_rng(mut self, rng: SharedRng) -> Self {
        self.rng = rng;
        self
    }

    /// The protocol name.
    pub fn protocol(&self) -> &str {
        &self.protocol.name
    }

    /// The parsed protocol.
    pub fn params(&self) -> &NoiseProtocol {
        &self.protocol
    }
}

/// A parsed, supported Noise protocol name.
#[derive(Debug, Clone)]
pub struct NoiseProtocol {
    name: String,
    params: NoiseParams,
    aead: AeadAlgorithm,
    psk_slots: Vec<u8>,
}

impl NoiseProtocol {
    /// Parses a full Noise protocol name and checks that akex supports it.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let unsupported = |reason: String| {
            Error::Config(ConfigError::UnsupportedProtocol {
                name: name.to_string(),
                reason,
            })
        };
        let params: NoiseParams = name.parse().map_err(|_: snow::Error| {
            unsupported(
                "not a Noise protocol name akex can run (expected \
                 Noise_<pattern>_25519_<ChaChaPoly|AESGCM>_<BLAKE2s|BLAKE2b|SHA256|SHA512>)"
                    .into(),
            )
        })?;
        #[cfg(not(feature = "hfs"))]
        if name
            .split('_')
            .nth(1)
            .is_some_and(|pattern| pattern.contains("hfs"))
        {
            return Err(unsupported(
                "HFS (Kyber1024) patterns need akex's `hfs` feature".into(),
            ));
        }
        if params.dh != DHChoice::Curve25519 {
            return Err(unsupported("only the 25519 DH is supported".into()));
        }
        let aead = match params.cipher {
            CipherChoice::ChaChaPoly => AeadAlgorithm::ChaChaPoly,
            CipherChoice::AESGCM => AeadAlgorithm::AesGcm,
            #[allow(unreachable_patterns)]
            _ => return Err(unsupported("unsupported cipher".into())),
        };
        let psk_slots = params
            .handshake
            .modifiers
            .list
            .iter()
            .filter_map(|m| match m {
                snow::params::HandshakeModifier::Psk(n) => Some(*n),
                _ => None,
            })
            .collect();
        Ok(NoiseProtocol {
            name: name.to_string(),
            params,
            aead,
            psk_slots,
        })
    }

    /// The full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The AEAD the protocol names.
    pub fn aead(&self) -> AeadAlgorithm {
        self.aead
    }

    /// The `pskN` slots, in the order PSKs are supplied.
    pub fn psk_slots(&self) -> &[u8] {
        &self.psk_slots
    }

    /// True for one-way patterns (N, K, X): only the initiator sends.
    pub fn is_one_way(&self) -> bool {
        self.params.handshake.pattern.is_oneway()
    }

    /// Does `role` need its own static key?
    pub fn needs_local_static(&self, role: Role) -> bool {
        self.params
            .handshake
            .pattern
            .needs_local_static_key(role == Role::Initiator)
    }

    /// Does `role` need the peer's static key before the handshake?
    pub fn needs_remote_static(&self, role: Role) -> bool {
        self.params
            .handshake
            .pattern
            .need_known_remote_pubkey(role == Role::Initiator)
    }

    /// Does the handshake authenticate the static key of `role`'s peer?
    pub fn authenticates_peer_of(&self, role: Role) -> bool {
        let peer = role.peer();
        self.needs_remote_static(role) || self.needs_local_static(peer)
    }
}

/// More than any 25519 pattern's per-message overhead (at most two keys and
/// three tags) and than a Kyber1024 key or ciphertext with its tag.
const MESSAGE_OVERHEAD_BOUND: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Dead,
}

/// One side of a Noise handshake behind the [`Handshake`] trait.
pub struct NoiseHandshake {
    state: snow::HandshakeState,
    protocol: String,
    role: Role,
    aead: AeadAlgorithm,
    expected_remote: Option<[u8; 32]>,
    status: Status,
}

impl std::fmt::Debug for NoiseHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseHandshake")
            .field("protocol", &self.protocol)
            .field("role", &self.role)
            .field("status", &self.status)
            .finish()
    }
}

impl NoiseHandshake {
    /// Starts the initiator's side.
    pub fn initiator(config: NoiseConfig) -> Result<Self, Error> {
        Self::new(config, Role::Initiator)
    }

    /// Starts the responder's side.
    pub fn responder(config: NoiseConfig) -> Result<Self, Error> {
        Self::new(config, Role::Responder)
    }

    /// Starts the given side.
    pub fn new(config: NoiseConfig, role: Role) -> Result<Self, Error> {
        let protocol = &config.protocol;
        let needs_local = protocol.needs_local_static(role);
        let needs_remote = protocol.needs_remote_static(role);
        if needs_local && config.local_static.is_none() {
            return Err(ConfigError::MissingLocalKey.into());
        }
        if needs_remote && config.remote_static.is_none() {
            return Err(ConfigError::MissingRemoteKey.into());
        }
        if config.remote_static.is_some() && !protocol.authenticates_peer_of(role) {
            return Err(ConfigError::Invalid(format!(
                "{} never authenticates the {}'s static key, so a remote key cannot be checked",
                protocol.name,
                role.peer()
            ))
            .into());
        }
        let expected_remote = match &config.remote_static {
            Some(key) => Some(
                *key.expect_kind(KeyKind::X25519)?
                    .as_array32()
                    .ok_or(ConfigError::InvalidKey("an X25519 public key is 32 bytes"))?,
            ),
            None => None,
        };
        if config.psks.len() != protocol.psk_slots.len() {
            return Err(ConfigError::PskCount {
                needed: protocol.psk_slots.len(),
                given: config.psks.len(),
            }
            .into());
        }

        let resolver = AkexResolver::with_shared_rng(config.rng.clone())
            .with_local_static(config.local_static.clone().filter(|_| needs_local))
            .boxed();
        let mut builder = snow::Builder::with_resolver(protocol.params.clone(), resolver);
        builder = builder.prologue(&config.prologue).map_err(config_error)?;
        if needs_local {
            if let Some(key) = &config.local_static {
                builder = builder
                    .local_private_key(key.private().expose())
                    .map_err(config_error)?;
            }
        }
        if needs_remote {
            if let Some(key) = &expected_remote {
                builder = builder.remote_public_key(key).map_err(config_error)?;
            }
        }
        for (slot, psk) in protocol.psk_slots.iter().zip(&config.psks) {
            builder = builder.psk(*slot, psk.expose()).map_err(config_error)?;
        }
        let state = match role {
            Role::Initiator => builder.build_initiator(),
            Role::Responder => builder.build_responder(),
        }
        .map_err(config_error)?;

        Ok(NoiseHandshake {
            state,
            protocol: protocol.name.clone(),
            role,
            aead: protocol.aead,
            expected_remote,
            status: Status::Running,
        })
    }

    fn check_alive(&self) -> Result<(), Error> {
        match self.status {
            Status::Running => Ok(()),
            Status::Dead => Err(ApiMisuse::HandshakeDead.into()),
        }
    }

    /// Records a failure: after any error the handshake is dead.
    fn fail<T>(&mut self, err: Error) -> Result<T, Error> {
        self.status = Status::Dead;
        Err(err)
    }

    fn check_remote_static(&self) -> Result<(), Error> {
        if let (Some(expected), Some(actual)) =
            (&self.expected_remote, self.state.get_remote_static())
        {
            if !ct_eq(expected, actual) {
                return Err(TrustFailure::RemoteKeyMismatch.into());
            }
        }
        Ok(())
    }
}

fn config_error(_: snow::Error) -> Error {
    // Every setting was checked above; snow refusing one anyway is a key or
    // PSK it cannot take.
    ConfigError::Invalid("the Noise handshake state could not be built from these keys".into())
        .into()
}

/// Maps snow's errors on peer input to ours.
fn read_error(e: snow::Error) -> Error {
    match e {
        snow::Error::Decrypt => PeerMisbehaved::DecryptFailed.into(),
        snow::Error::Dh => PeerMisbehaved::InvalidPublicKey.into(),
        snow::Error::Input => PeerMisbehaved::BadMessageLength.into(),
        snow::Error::State(_) => PeerMisbehaved::UnexpectedMessage.into(),
        _ => PeerMisbehaved::UnexpectedMessage.into(),
    }
}

fn write_error(e: snow::Error) -> Error {
    match e {
        snow::Error::Input => ApiMisuse::MessageTooLarge.into(),
        snow::Error::State(_) => ApiMisuse::WrongTurn.into(),
        snow::Error::Dh => PeerMisbehaved::InvalidPublicKey.into(),
        _ => ApiMisuse::HandshakeDead.into(),
    }
}

impl Handshake for NoiseHandshake {
    fn protocol(&self) -> &str {
        &self.protocol
    }

    fn role(&self) -> Role {
        self.role
    }

    fn wants_write(&self) -> bool {
        self.status == Status::Running
            && !self.state.is_handshake_finished()
            && self.state.is_my_turn()
    }

    fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.check_alive()?;
        if !self.wants_write() {
            return self.fail(ApiMisuse::WrongTurn.into());
        }
        let start = out.len();
        // Room for the payload plus every token's bytes (keys, tags), without
        // zeroing 64 KiB for each small message.
        let room = (payload.len() + MESSAGE_OVERHEAD_BOUND).min(MAX_MESSAGE_LEN);
        out.resize(start + room, 0);
        match self.state.write_message(payload, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                self.fail(write_error(e))
            }
        }
    }

    fn read_message(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        self.check_alive()?;
        if self.state.is_handshake_finished() || self.state.is_my_turn() {
            return self.fail(PeerMisbehaved::UnexpectedMessage.into());
        }
        if message.len() > MAX_MESSAGE_LEN {
            return self.fail(PeerMisbehaved::BadMessageLength.into());
        }
        let start = payload.len();
        payload.resize(start + message.len(), 0);
        let result = self.state.read_message(message, &mut payload[start..]);
        match result {
            Ok(n) => {
                payload.truncate(start + n);
                if let Err(e) = self.check_remote_static() {
                    payload.truncate(start); // never hand out an untrusted peer's payload
                    return self.fail(e);
                }
                Ok(())
            }
            Err(e) => {
                payload.truncate(start);
                self.fail(read_error(e))
            }
        }
    }

    fn is_finished(&self) -> bool {
        self.status == Status::Running && self.state.is_handshake_finished()
    }

    fn finish(&mut self) -> Result<Established, Error> {
        self.check_alive()?;
        if !self.state.is_handshake_finished() {
            return Err(ApiMisuse::HandshakeNotFinished.into());
        }
        // The secrets leave this handshake once.
        self.status = Status::Dead;
        self.check_remote_static()?;
        let (mut k1, mut k2) = self.state.dangerously_get_raw_split();
        let i2r = TrafficSecret::wrap(Secret::new(k1));
        let r2i = TrafficSecret::wrap(Secret::new(k2));
        zeroize::Zeroize::zeroize(&mut k1);
        zeroize::Zeroize::zeroize(&mut k2);
        Ok(Established::assemble(
            self.protocol.clone(),
            self.role,
            self.state.get_handshake_hash().to_vec(),
            self.state
                .get_remote_static()
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .map(PublicKey::x25519),
            self.aead,
            i2r,
            r2i,
        ))
    }

    fn remote_static(&self) -> Option<PublicKey> {
        self.state
            .get_remote_static()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .map(PublicKey::x25519)
    }
}
