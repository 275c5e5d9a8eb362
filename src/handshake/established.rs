//! What a finished handshake hands to the session layer.

use std::fmt;

use super::Role;
use crate::crypto::{AeadAlgorithm, Secret};
use crate::keys::PublicKey;
use crate::session::RatchetAuth;

/// A 32-byte traffic secret for one direction; zeroized on drop, never
/// printed, and not readable outside the crate without the `hazmat`
/// feature.
#[derive(Clone, PartialEq, Eq)]
pub struct TrafficSecret(Secret<32>);

impl TrafficSecret {
    /// Wraps key bytes (protocol backends).
    pub(crate) fn wrap(key: Secret<32>) -> Self {
        TrafficSecret(key)
    }

    /// The secret, for the session layer.
    pub(crate) fn secret(&self) -> &Secret<32> {
        &self.0
    }

    /// Wraps key bytes (hazardous: for known-answer tests and protocol
    /// work).
    #[cfg(feature = "hazmat")]
    pub fn new(key: Secret<32>) -> Self {
        TrafficSecret(key)
    }

    /// The key bytes (hazardous: a traffic secret decrypts the session).
    #[cfg(feature = "hazmat")]
    pub fn expose(&self) -> &[u8; 32] {
        self.0.expose()
    }
}

impl fmt::Debug for TrafficSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrafficSecret(<redacted>)")
    }
}

/// The result of a finished handshake: who we talked to, the transcript
/// hash, and the two directional traffic secrets.
pub struct Established {
    pub(crate) protocol: String,
    pub(crate) role: Role,
    pub(crate) handshake_hash: Vec<u8>,
    pub(crate) remote_static: Option<PublicKey>,
    pub(crate) aead: AeadAlgorithm,
    pub(crate) initiator_to_responder: TrafficSecret,
    pub(crate) responder_to_initiator: TrafficSecret,
    /// A secret both sides share besides the traffic secrets, from which
    /// the session layer's DH ratchet starts (akex-native handshakes only).
    pub(crate) root_secret: Option<TrafficSecret>,
    /// The long-term keys the handshake authenticated, which the session
    /// layer's DH ratchet mixes into every step (our private key, the
    /// peer's public key).
    pub(crate) ratchet_auth: RatchetAuth,
}

impl Established {
    /// Assembles a result. Protocol backends call this (and, with the
    /// `hazmat` feature, tests that need sessions from chosen secrets).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        protocol: String,
        role: Role,
        handshake_hash: Vec<u8>,
        remote_static: Option<PublicKey>,
        aead: AeadAlgorithm,
        initiator_to_responder: TrafficSecret,
        responder_to_initiator: TrafficSecret,
    ) -> Self {
        Established {
            protocol,
            role,
            handshake_hash,
            remote_static,
            aead,
            initiator_to_responder,
            responder_to_initiator,
            root_secret: None,
            ratchet_auth: RatchetAuth::None,
        }
    }

    /// Adds the root secret the session layer's DH ratchet starts from.
    ///
    /// Only akex-native handshakes set it (derived from their key schedule,
    /// independent of the traffic secrets). Noise handshakes do not: nothing
    /// secret may be derived from the public handshake hash, so sessions
    /// from Noise handshakes cannot use the akex DH ratchet.
    pub(crate) fn with_root(mut self, root: TrafficSecret) -> Self {
        self.root_secret = Some(root);
        self
    }

    /// Hands the session layer the long-term keys its DH ratchet
    /// authenticates every step with (the ones this handshake
    /// authenticated).
    pub(crate) fn with_ratchet_auth(mut self, auth: RatchetAuth) -> Self {
        self.ratchet_auth = auth;
        self
    }

    /// The root secret for the session layer's DH ratchet, if any.
    pub fn root_secret(&self) -> Option<&TrafficSecret> {
        self.root_secret.as_ref()
    }

    /// The full protocol name.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }
    /// Our role in the handshake.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The handshake hash: a channel binding both sides share.
    pub fn handshake_hash(&self) -> &[u8] {
        &self.handshake_hash
    }
    /// The peer's static public key, if the protocol authenticated one.
    pub fn remote_static(&self) -> Option<&PublicKey> {
        self.remote_static.as_ref()
    }
    /// The AEAD the session will use.
    pub fn aead(&self) -> AeadAlgorithm {
        self.aead
    }
    /// The secret for messages we send.
    pub fn sending_secret(&self) -> &TrafficSecret {
        match self.role {
            Role::Initiator => &self.initiator_to_responder,
            Role::Responder => &self.responder_to_initiator,
        }
    }
    /// The secret for messages we receive.
    pub fn receiving_secret(&self) -> &TrafficSecret {
        match self.role {
            Role::Initiator => &self.responder_to_initiator,
            Role::Responder => &self.initiator_to_responder,
        }
    }
}

impl fmt::Debug for Established {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Established")
            .field("protocol", &self.protocol)
            .field("role", &self.role)
            .field("handshake_hash", &hex::encode(&self.handshake_hash))
            .field("remote_static", &self.remote_static)
            .field("aead", &self.aead)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

/// Hazardous constructors for sessions from chosen secrets.
#[cfg(feature = "hazmat")]
impl Established {
    /// A result with the given secrets, as a protocol backend would make
    /// it. For known-answer tests and protocol work only.
    pub fn new(
        protocol: String,
        role: Role,
        handshake_hash: Vec<u8>,
        remote_static: Option<PublicKey>,
        aead: AeadAlgorithm,
        initiator_to_responder: TrafficSecret,
        responder_to_initiator: TrafficSecret,
    ) -> Self {
        Self::assemble(
            protocol,
            role,
            handshake_hash,
            remote_static,
            aead,
            initiator_to_responder,
            responder_to_initiator,
        )
    }

    /// Adds the root secret the session layer's DH ratchet starts from.
    pub fn with_root_secret(self, root: TrafficSecret) -> Self {
        self.with_root(root)
    }

    /// The DH ratchet authenticates every step with these X25519 static
    /// keys (`dh_es`/`dh_se`, `protocols/session.md`): ours, and the
    /// peer's public key. Either may be absent (hybrid NK's initiator has
    /// no static key).
    pub fn with_ratchet_static_keys(
        self,
        local: Option<crate::keys::StaticSecret>,
        remote: Option<[u8; 32]>,
    ) -> Self {
        self.with_ratchet_auth(RatchetAuth::StaticDh {
            local: local.map(|k| std::sync::Arc::clone(k.parsed())),
            remote,
        })
    }

    /// The DH ratchet signs every init and response with `local` and
    /// checks the peer's against `remote` (as SIGMA sessions do).
    pub fn with_ratchet_signing_keys(
        self,
        local: crate::keys::SigningKey,
        remote: [u8; 32],
    ) -> Self {
        self.with_ratchet_auth(RatchetAuth::Signature {
            local: std::sync::Arc::new(local),
            remote: crate::keys::PublicKey::ed25519(remote),
        })
    }
}
