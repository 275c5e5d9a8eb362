//! Validated, shareable configurations: everything a connection needs to
//! build its handshake, checked once when the configuration is built.
//!
//! - [`HandshakeKeys`]: our keys, the peer's key, PSKs, prologue, RNG.
//! - [`ClientConfig`]: one protocol, the initiator's side.
//! - [`ServerConfig`]: an allow-list of protocols, the responder's side.
//!
//! A typo in a protocol name, a missing key or a key of the wrong kind is a
//! typed [`ConfigError`] from `ClientConfig::new` / `ServerConfig::new`, not
//! a failure at the first connection. Both are cheap to share (`Arc`) and
//! make a fresh handshake per connection.

use std::fmt;
use std::sync::Arc;

use crate::crypto::kem::MlKem768KeyPair;
use crate::crypto::{RandomSource, Secret, SharedRng};
use crate::error::{ConfigError, Error};
use crate::handshake::registry;
use crate::handshake::{Handshake, PeerVerifier, MAX_MESSAGE_LEN};
use crate::keys::{PublicKey, SignatureScheme, Signer, SigningKey, StaticSecret};

/// The keys and settings a handshake may need. Each protocol takes what it
/// uses and refuses what it is missing (or a key of the wrong kind) with a
/// [`ConfigError`] when the configuration is built.
#[derive(Clone, Default)]
pub struct HandshakeKeys {
    pub(crate) x25519: Option<StaticSecret>,
    /// Our Ed25519 identity when given as a [`SigningKey`] (also in
    /// `signers`), for [`HandshakeKeys::local_signing_key`].
    pub(crate) ed25519: Option<SigningKey>,
    /// Our signing identities, at most one per scheme.
    pub(crate) signers: Vec<Arc<dyn Signer>>,
    pub(crate) mlkem768: Option<MlKem768KeyPair>,
    #[cfg(feature = "rsa-kt")]
    pub(crate) rsa: Option<crate::handshake::rsa::RsaKeyPair>,
    #[cfg(feature = "ffdh")]
    pub(crate) ffdh: Option<crate::handshake::ffdh::FfdhKeyPair>,
    pub(crate) remote: Option<PublicKey>,
    pub(crate) verifier: Option<Arc<dyn PeerVerifier>>,
    pub(crate) psks: Vec<Secret<32>>,
    pub(crate) prologue: Vec<u8>,
    pub(crate) rng: Option<SharedRng>,
}

impl HandshakeKeys {
    /// No keys, an empty prologue, the OS random source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Our X25519 static key (Noise patterns with `s`, hybrid and
    /// PQ-authenticated protocols).
    pub fn static_key(mut self, key: StaticSecret) -> Self {
        self.x25519 = Some(key);
        self
    }

    /// Our Ed25519 identity (SIGMA), in memory. Same as
    /// [`signer`](Self::signer) with the key.
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self = self.signer(Arc::new(key.clone()));
        self.ed25519 = Some(key);
        self
    }

    /// Our signing identity for the SIGMA suites of its scheme (Ed25519,
    /// or ECDSA P-256 for the FIPS-algorithm suite), in memory
    /// ([`SigningKey`], [`P256SigningKey`](crate::keys::P256SigningKey)) or
    /// in a hardware module (`akex::pkcs11::Pkcs11Signer`, feature
    /// `pkcs11`). One signer per scheme: a second one of the same scheme
    /// replaces the first, so a server can hold an Ed25519 and a P-256
    /// identity and accept both kinds of suite.
    pub fn signer(mut self, signer: Arc<dyn Signer>) -> Self {
        let scheme = signer.scheme();
        if scheme == SignatureScheme::Ed25519 {
            self.ed25519 = None;
        }
        self.signers.retain(|s| s.scheme() != scheme);
        self.signers.push(signer);
        self
    }

    /// Our ML-KEM-768 static key (PQ-authenticated protocols, next to the
    /// X25519 static key).
    pub fn kem_key(mut self, key: MlKem768KeyPair) -> Self {
        self.mlkem768 = Some(key);
        self
    }

    /// Our RSA-3072 key (RSA key transport, responder only; NOT forward
    /// secret).
    #[cfg(feature = "rsa-kt")]
    pub fn rsa_key(mut self, key: crate::handshake::rsa::RsaKeyPair) -> Self {
        self.rsa = Some(key);
        self
    }

    /// Our ffdhe3072 static key pair (the FFDH legacy baseline, responder
    /// only).
    #[cfg(feature = "ffdh")]
    pub fn ffdh_key(mut self, key: crate::handshake::ffdh::FfdhKeyPair) -> Self {
        self.ffdh = Some(key);
        self
    }

    /// The peer's public key: needed in advance by some patterns (Noise
    /// NK/IK/KK, hybrid IK/NK, PQ IK, RSA key transport), and otherwise the
    /// key the peer must prove (pinning). Its kind must be the one the
    /// protocol authenticates ([`registry::remote_key_kind`]).
    pub fn remote(mut self, key: PublicKey) -> Self {
        self.remote = Some(key);
        self
    }

    /// Checks the peer's static key during the handshake with `verifier`
    /// (a trust store, a revocation list, ...): as soon as a message has
    /// shown the key, before its payload is handed out and before we write
    /// again, so a refused responder never receives the initiator's
    /// identity in the patterns that send it last (Noise XX, SIGMA-I,
    /// hybrid and PQ XX). Works next to [`remote`](Self::remote) pinning.
    /// See [`PeerVerifier`].
    pub fn verify_peer(mut self, verifier: impl PeerVerifier + 'static) -> Self {
        self.verifier = Some(Arc::new(verifier));
        self
    }

    /// Adds a pre-shared key; PSKs fill a Noise pattern's `pskN` slots in
    /// order.
    pub fn psk(mut self, psk: Secret<32>) -> Self {
        self.psks.push(psk);
        self
    }

    /// Data both sides must agree on, bound into the handshake transcript.
    pub fn prologue(mut self, prologue: impl Into<Vec<u8>>) -> Self {
        self.prologue = prologue.into();
        self
    }

    /// The random source for ephemeral keys (the OS by default).
    pub fn rng(mut self, rng: impl RandomSource + 'static) -> Self {
        self.rng = Some(SharedRng::new(rng));
        self
    }

    /// The peer's public key, if one was given.
    pub fn remote_key(&self) -> Option<&PublicKey> {
        self.remote.as_ref()
    }

    /// Our X25519 static key, if one was given.
    pub fn local_static_key(&self) -> Option<&StaticSecret> {
        self.x25519.as_ref()
    }

    /// Our Ed25519 identity, if one was given as a [`SigningKey`] (see
    /// [`local_signer`](Self::local_signer) for any signer).
    pub fn local_signing_key(&self) -> Option<&SigningKey> {
        self.ed25519.as_ref()
    }

    /// Our signing identity for `scheme`, if one was given.
    pub fn local_signer(&self, scheme: SignatureScheme) -> Option<&Arc<dyn Signer>> {
        self.signers.iter().find(|s| s.scheme() == scheme)
    }

    /// Our ML-KEM-768 static key, if one was given.
    pub fn local_kem_key(&self) -> Option<&MlKem768KeyPair> {
        self.mlkem768.as_ref()
    }

    /// The random source handshakes draw from.
    pub(crate) fn shared_rng(&self) -> SharedRng {
        self.rng.clone().unwrap_or_else(SharedRng::os)
    }
}

impl fmt::Debug for HandshakeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeKeys")
            .field("x25519", &self.x25519)
            .field("signers", &self.signers)
            .field("mlkem768", &self.mlkem768)
            .field("remote", &self.remote)
            .field("verifier", &self.verifier.is_some())
            .field("psks", &self.psks.len())
            .field("prologue", &hex::encode(&self.prologue))
            .finish_non_exhaustive()
    }
}

/// Handshake payloads to send, one per handshake message we write, in
/// order (missing entries are empty). How well each is protected depends
/// on its position in the pattern (the Noise spec, section 7.7; the specs
/// in `protocols/`): the first message of most patterns is not encrypted,
/// so do not put secrets there.
fn check_payloads(payloads: &[Vec<u8>]) -> Result<(), Error> {
    // Room for the largest handshake message's keys and tags.
    const MAX_PAYLOAD: usize = MAX_MESSAGE_LEN - 8192;
    if payloads.iter().any(|p| p.len() > MAX_PAYLOAD) {
        return Err(ConfigError::Invalid(format!(
            "a handshake payload may be at most {MAX_PAYLOAD} bytes"
        ))
        .into());
    }
    Ok(())
}

/// The initiator's configuration: one protocol and its keys.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    protocol: String,
    keys: HandshakeKeys,
    payloads: Vec<Vec<u8>>,
}

impl ClientConfig {
    /// Checks that `protocol` is one akex runs and that `keys` hold what its
    /// initiator needs (by building one handshake).
    pub fn new(protocol: &str, keys: HandshakeKeys) -> Result<Self, Error> {
        registry::initiator(protocol, &keys)?;
        Ok(ClientConfig {
            protocol: protocol.to_string(),
            keys,
            payloads: Vec::new(),
        })
    }

    /// Payloads to carry in our handshake messages (see the protection
    /// notes on [`ClientConfig::handshake_payloads`]).
    pub fn with_handshake_payloads(mut self, payloads: Vec<Vec<u8>>) -> Result<Self, Error> {
        check_payloads(&payloads)?;
        self.payloads = payloads;
        Ok(self)
    }

    /// The payloads sent in our handshake messages, one per message we
    /// write. How well each is protected depends on its position in the
    /// pattern (Noise spec section 7.7; `protocols/*.md`): the first
    /// message of most patterns is sent in the clear.
    pub fn handshake_payloads(&self) -> &[Vec<u8>] {
        &self.payloads
    }

    /// The protocol.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// The keys.
    pub fn keys(&self) -> &HandshakeKeys {
        &self.keys
    }

    /// A fresh initiator for one connection.
    pub fn new_handshake(&self) -> Result<Box<dyn Handshake>, Error> {
        registry::initiator(&self.protocol, &self.keys)
    }
}

/// The responder's configuration: the protocols it accepts and its keys.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    protocols: Vec<String>,
    keys: HandshakeKeys,
    payloads: Vec<Vec<u8>>,
}

impl ServerConfig {
    /// Checks the allow-list (one Noise name alone, or any number of akex
    /// names, negotiated by the initiator's hello) and that `keys` hold what
    /// every responder in it needs.
    pub fn new(protocols: &[&str], keys: HandshakeKeys) -> Result<Self, Error> {
        registry::responder(protocols, &keys)?;
        Ok(ServerConfig {
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            keys,
            payloads: Vec::new(),
        })
    }

    /// Payloads to carry in our handshake messages (see
    /// [`ClientConfig::handshake_payloads`]).
    pub fn with_handshake_payloads(mut self, payloads: Vec<Vec<u8>>) -> Result<Self, Error> {
        check_payloads(&payloads)?;
        self.payloads = payloads;
        Ok(self)
    }

    /// The payloads sent in our handshake messages.
    pub fn handshake_payloads(&self) -> &[Vec<u8>] {
        &self.payloads
    }

    /// The allow-list.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The keys.
    pub fn keys(&self) -> &HandshakeKeys {
        &self.keys
    }

    /// A fresh responder for one connection.
    pub fn new_handshake(&self) -> Result<Box<dyn Handshake>, Error> {
        let names: Vec<&str> = self.protocols.iter().map(String::as_str).collect();
        registry::responder_checked(&names, &self.keys)
    }
}
