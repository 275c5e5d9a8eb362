//! SIGMA-I (Krawczyk, CRYPTO 2003, section 5.2; the same shape as the
//! IKEv2 and TLS 1.3 handshakes), over a suite the name selects: X25519 with
//! Ed25519, or P-256 ECDH with ECDSA P-256 (the FIPS-algorithm suite).
//!
//! ```text
//!   initiator                                   responder
//!   hello, e_i, payload          ──────▶
//!                                ◀──────  e_r, {R, Sig_R(h), MAC_R(R)}, {payload}
//!   {I, Sig_I(h), MAC_I(I)}, {payload}  ──▶
//! ```
//!
//! `{...}` is encrypted under keys from the ephemeral-ephemeral DH
//! secret, with the transcript hash `h` as associated data. Each side signs
//! `h` (which covers the hello, both ephemerals and everything before the
//! signature) and MACs its own identity under a key derived from the DH
//! secret. The initiator reveals its identity only after it has verified
//! the responder's signature and MAC: its identity is hidden from active
//! attackers; the responder's only from passive ones. Spec:
//! `protocols/sigma.md` (the P-256 suite: `protocols/sigma-p256.md`).
//!
//! A suite ([`SigmaSuite`]) is the DH group, the signature scheme and the
//! AEAD; the hash is SHA-256 in every suite (the akex-mode symmetric
//! state). Messages, labels and checks are the same for all suites; only
//! the lengths of keys on the wire differ. Our signature comes from a
//! [`Signer`], so the private key may stay in a hardware module.

use std::fmt;
use std::sync::Arc;

use super::akex::symmetric::labels;
use super::akex::{encode_hello, AkexResponder, SymmetricState};
use super::{append_or_undo, Established, Handshake, Role, MAX_MESSAGE_LEN};
use crate::crypto::dh::{DhGroup, Ephemeral};
use crate::crypto::ed25519::SigningKey;
use crate::crypto::hash::hmac_sha256;
use crate::crypto::secret::ct_eq;
use crate::crypto::{AeadAlgorithm, RandomSource, Secret, SharedRng, TAG_LEN};
use crate::error::{ApiMisuse, ConfigError, Error, PeerMisbehaved, TrustFailure};
use crate::keys::signer::sign_checked;
use crate::keys::{PublicKey, SignatureScheme, Signer};
use crate::session::RatchetAuth;

/// SIGMA-I with ChaCha20-Poly1305.
pub const SIGMA_CHACHAPOLY: &str = "akex-sigma-x25519-ed25519-chachapoly-sha256";
/// SIGMA-I with AES-256-GCM.
pub const SIGMA_AESGCM: &str = "akex-sigma-x25519-ed25519-aesgcm-sha256";
/// SIGMA-I on FIPS algorithms: P-256 ECDH, ECDSA P-256 with SHA-256,
/// AES-256-GCM, SHA-256.
pub const SIGMA_P256_AESGCM: &str = "akex-sigma-p256-ecdsa-aesgcm-sha256";

/// Length of an Ed25519 public key (the identity on the wire of the
/// X25519/Ed25519 suites; see [`SignatureScheme::public_key_len`]).
pub const IDENTITY_LEN: usize = 32;
const MAC_LEN: usize = 32;

/// The algorithms of one SIGMA protocol name. The hash (and HKDF) is
/// SHA-256 in every suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SigmaSuite {
    /// The protocol name.
    pub name: &'static str,
    /// The ephemeral DH group.
    pub group: DhGroup,
    /// How identities sign.
    pub scheme: SignatureScheme,
    /// The handshake's and the session's AEAD.
    pub aead: AeadAlgorithm,
}

impl SigmaSuite {
    /// The encrypted identity block: identity, signature, MAC, tag.
    fn auth_block_len(&self) -> usize {
        self.scheme.public_key_len() + self.scheme.signature_len() + MAC_LEN + TAG_LEN
    }
}

const SUITES: [SigmaSuite; 3] = [
    SigmaSuite {
        name: SIGMA_CHACHAPOLY,
        group: DhGroup::X25519,
        scheme: SignatureScheme::Ed25519,
        aead: AeadAlgorithm::ChaChaPoly,
    },
    SigmaSuite {
        name: SIGMA_AESGCM,
        group: DhGroup::X25519,
        scheme: SignatureScheme::Ed25519,
        aead: AeadAlgorithm::AesGcm,
    },
    SigmaSuite {
        name: SIGMA_P256_AESGCM,
        group: DhGroup::P256,
        scheme: SignatureScheme::EcdsaP256Sha256,
        aead: AeadAlgorithm::AesGcm,
    },
];

/// The suite a SIGMA protocol name selects, or `None` if it is not one.
pub fn sigma_suite(name: &str) -> Option<SigmaSuite> {
    SUITES.iter().find(|s| s.name == name).copied()
}

/// The AEAD a SIGMA protocol name selects, or `None` if it is not one.
pub fn sigma_aead(name: &str) -> Option<AeadAlgorithm> {
    sigma_suite(name).map(|s| s.aead)
}

/// Everything needed to start one side of a SIGMA handshake.
#[derive(Clone)]
pub struct SigmaConfig {
    suite: SigmaSuite,
    identity: Arc<dyn Signer>,
    remote: Option<PublicKey>,
    prologue: Vec<u8>,
    rng: SharedRng,
}

impl fmt::Debug for SigmaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigmaConfig")
            .field("protocol", &self.suite.name)
            .field("identity", &hex::encode(self.identity.public_key()))
            .field("remote", &self.remote)
            .field("prologue", &hex::encode(&self.prologue))
            .finish_non_exhaustive()
    }
}

impl SigmaConfig {
    /// A configuration for `protocol` ([`SIGMA_CHACHAPOLY`] or
    /// [`SIGMA_AESGCM`]) with our Ed25519 identity; randomness from the OS.
    pub fn new(protocol: &str, identity: SigningKey) -> Result<Self, Error> {
        Self::with_signer(protocol, Arc::new(identity))
    }

    /// A configuration for any SIGMA `protocol` with our identity behind a
    /// [`Signer`] (in memory or in a hardware module), whose scheme must be
    /// the suite's ([`ConfigError::WrongKeyKind`] otherwise).
    pub fn with_signer(protocol: &str, identity: Arc<dyn Signer>) -> Result<Self, Error> {
        let suite = sigma_suite(protocol).ok_or_else(|| ConfigError::UnsupportedProtocol {
            name: protocol.to_string(),
            reason: "not a SIGMA protocol".into(),
        })?;
        if identity.scheme() != suite.scheme {
            return Err(ConfigError::WrongKeyKind {
                expected: suite.scheme.key_kind(),
                given: identity.scheme().key_kind(),
            }
            .into());
        }
        Ok(SigmaConfig {
            suite,
            identity,
            remote: None,
            prologue: Vec::new(),
            rng: SharedRng::os(),
        })
    }

    /// Data both sides must agree on, hashed into the transcript right
    /// after the protocol name (always, empty included), before the hello:
    /// a mismatch fails the handshake at message 2.
    pub fn prologue(mut self, prologue: impl Into<Vec<u8>>) -> Self {
        self.prologue = prologue.into();
        self
    }

    /// The public key the peer must prove (of the suite's kind); the handshake fails with
    /// [`TrustFailure::RemoteKeyMismatch`] if it shows another. Without it,
    /// any peer that signs correctly is accepted and its key is reported in
    /// [`Established::remote_static`] for the caller to check. A key of
    /// another kind is refused when the handshake is built.
    pub fn remote(mut self, key: PublicKey) -> Self {
        self.remote = Some(key);
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Message 1 (initiator writes, responder reads).
    M1,
    /// Message 2 (responder writes, initiator reads).
    M2,
    /// Message 3 (initiator writes, responder reads).
    M3,
    Done,
    Dead,
}

/// One side of a SIGMA-I handshake.
pub struct SigmaHandshake {
    config: SigmaConfig,
    role: Role,
    state: SymmetricState,
    step: Step,
    ephemeral: Option<Ephemeral>,
    /// The ephemeral-ephemeral secret, between reading message 1 and
    /// writing message 2 (responder only).
    pending_dh: Option<Secret<32>>,
    hello_mixed: bool,
    remote_identity: Option<Vec<u8>>,
}

impl fmt::Debug for SigmaHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigmaHandshake")
            .field("protocol", &self.config.suite.name)
            .field("role", &self.role)
            .field("step", &self.step)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl SigmaHandshake {
    /// The initiator (it writes the hello itself).
    pub fn initiator(config: SigmaConfig) -> Result<Self, Error> {
        Self::new(config, Role::Initiator)
    }

    /// The responder. It expects the hello to be mixed in first
    /// (`AkexResponder::mix_hello`); use it through a
    /// `NegotiatingResponder` (see
    /// [`crate::handshake::registry::responder`]).
    pub fn responder(config: SigmaConfig) -> Result<Self, Error> {
        Self::new(config, Role::Responder)
    }

    fn new(config: SigmaConfig, role: Role) -> Result<Self, Error> {
        if let Some(remote) = &config.remote {
            remote.expect_kind(config.suite.scheme.key_kind())?;
        }
        let state = SymmetricState::new(config.suite.name, config.suite.aead, &config.prologue);
        Ok(SigmaHandshake {
            config,
            role,
            state,
            step: Step::M1,
            ephemeral: None,
            pending_dh: None,
            hello_mixed: false,
            remote_identity: None,
        })
    }

    fn our_turn(&self) -> bool {
        matches!(
            (self.step, self.role),
            (Step::M1 | Step::M3, Role::Initiator) | (Step::M2, Role::Responder)
        )
    }

    fn check_alive(&self) -> Result<(), Error> {
        match self.step {
            Step::Dead => Err(ApiMisuse::HandshakeDead.into()),
            Step::Done => Err(PeerMisbehaved::UnexpectedMessage.into()),
            _ => Ok(()),
        }
    }

    fn fail<T>(&mut self, err: Error) -> Result<T, Error> {
        self.step = Step::Dead;
        self.ephemeral = None;
        self.pending_dh = None;
        Err(err)
    }

    fn generate_ephemeral(&mut self) -> Ephemeral {
        Ephemeral::generate(self.config.suite.group, &mut self.config.rng)
    }

    /// `{identity, Sig(label || h), MAC(km, identity)}` for our side.
    fn write_auth_block(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let (sig_label, mac_label) = match self.role {
            Role::Initiator => (labels::SIGMA_SIG_INITIATOR, labels::SIGMA_MAC_INITIATOR),
            Role::Responder => (labels::SIGMA_SIG_RESPONDER, labels::SIGMA_MAC_RESPONDER),
        };
        let signer = &self.config.identity;
        let identity = signer.public_key();
        let h = self.state.handshake_hash();
        let signature = sign_checked(signer.as_ref(), &signed_message(sig_label, &h))?;
        let mac = identity_mac(&self.state.derive_key(mac_label), identity);
        let mut block = zeroize::Zeroizing::new(Vec::with_capacity(
            identity.len() + signature.len() + MAC_LEN,
        ));
        block.extend_from_slice(identity);
        block.extend_from_slice(&signature);
        block.extend_from_slice(&mac);
        self.state.encrypt_and_hash(&block[..], out)
    }

    /// Opens and checks the peer's identity block; returns its identity.
    fn read_auth_block(&mut self, block: &[u8]) -> Result<Vec<u8>, Error> {
        let (sig_label, mac_label) = match self.role {
            Role::Initiator => (labels::SIGMA_SIG_RESPONDER, labels::SIGMA_MAC_RESPONDER),
            Role::Responder => (labels::SIGMA_SIG_INITIATOR, labels::SIGMA_MAC_INITIATOR),
        };
        let h = self.state.handshake_hash();
        let mac_key = self.state.derive_key(mac_label);
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(block.len()));
        self.state.decrypt_and_hash(block, &mut plain)?;
        let scheme = self.config.suite.scheme;
        let (id_len, sig_len) = (scheme.public_key_len(), scheme.signature_len());
        if plain.len() != id_len + sig_len + MAC_LEN {
            return Err(PeerMisbehaved::BadMessageLength.into());
        }
        let (identity, rest) = plain.split_at(id_len);
        let (sig, mac) = rest.split_at(sig_len);
        if !scheme.is_valid_public_key(identity) {
            return Err(PeerMisbehaved::InvalidPublicKey.into());
        }
        if !ct_eq(&identity_mac(&mac_key, identity), mac) {
            return Err(PeerMisbehaved::BadMac.into());
        }
        scheme.verify(identity, &signed_message(sig_label, &h), sig)?;
        if let Some(expected) = &self.config.remote {
            if !ct_eq(expected.as_bytes(), identity) {
                return Err(TrustFailure::RemoteKeyMismatch.into());
            }
        }
        Ok(identity.to_vec())
    }

    fn write_inner(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        match self.step {
            Step::M1 => {
                let mut hello = Vec::new();
                encode_hello(self.config.suite.name, &mut hello)?;
                self.state.mix_hash(&hello);
                out.extend_from_slice(&hello);
                let e = self.generate_ephemeral();
                out.extend_from_slice(e.public());
                self.state.mix_hash(e.public());
                self.ephemeral = Some(e);
                self.state.encrypt_and_hash(payload, out)?;
                self.step = Step::M2;
            }
            Step::M2 => {
                let (Some(e), Some(dh)) = (self.ephemeral.take(), self.pending_dh.take()) else {
                    return Err(ApiMisuse::WrongTurn.into());
                };
                out.extend_from_slice(e.public());
                self.state.mix_hash(e.public());
                self.state.mix_key(labels::SIGMA_DH_EE, dh.expose());
                self.write_auth_block(out)?;
                self.state.encrypt_and_hash(payload, out)?;
                self.step = Step::M3;
            }
            Step::M3 => {
                self.write_auth_block(out)?;
                self.state.encrypt_and_hash(payload, out)?;
                self.step = Step::Done;
            }
            Step::Done | Step::Dead => return Err(ApiMisuse::WrongTurn.into()),
        }
        if out.len() - start > MAX_MESSAGE_LEN {
            out.truncate(start);
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        Ok(())
    }

    fn read_inner(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        match self.step {
            Step::M1 => {
                if !self.hello_mixed {
                    return Err(ApiMisuse::WrongTurn.into());
                }
                let Some((re, rest)) =
                    message.split_at_checked(self.config.suite.group.public_len())
                else {
                    return Err(PeerMisbehaved::BadMessageLength.into());
                };
                self.state.mix_hash(re);
                // The responder's ephemeral is drawn now so a bad initiator
                // key is reported against the message that carried it.
                let e = self.generate_ephemeral();
                let dh = e.agree(re)?;
                self.ephemeral = Some(e);
                self.pending_dh = Some(dh);
                self.state.decrypt_and_hash(rest, payload)?;
                self.step = Step::M2;
            }
            Step::M2 => {
                let (dh_len, auth_len) = (
                    self.config.suite.group.public_len(),
                    self.config.suite.auth_block_len(),
                );
                if message.len() < dh_len + auth_len + TAG_LEN {
                    return Err(PeerMisbehaved::BadMessageLength.into());
                }
                let (re, rest) = message.split_at(dh_len);
                let (block, rest) = rest.split_at(auth_len);
                let Some(e) = self.ephemeral.take() else {
                    return Err(ApiMisuse::WrongTurn.into());
                };
                self.state.mix_hash(re);
                let dh = e.agree(re)?;
                drop(e);
                self.state.mix_key(labels::SIGMA_DH_EE, dh.expose());
                self.remote_identity = Some(self.read_auth_block(block)?);
                self.state.decrypt_and_hash(rest, payload)?;
                self.step = Step::M3;
            }
            Step::M3 => {
                let auth_len = self.config.suite.auth_block_len();
                if message.len() < auth_len + TAG_LEN {
                    return Err(PeerMisbehaved::BadMessageLength.into());
                }
                let (block, rest) = message.split_at(auth_len);
                self.remote_identity = Some(self.read_auth_block(block)?);
                self.state.decrypt_and_hash(rest, payload)?;
                self.step = Step::Done;
            }
            Step::Done | Step::Dead => return Err(PeerMisbehaved::UnexpectedMessage.into()),
        }
        Ok(())
    }
}

fn signed_message(label: &[u8], h: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(label.len() + h.len());
    m.extend_from_slice(label);
    m.extend_from_slice(h);
    m
}

fn identity_mac(key: &Secret<32>, identity: &[u8]) -> [u8; MAC_LEN] {
    *hmac_sha256(key.expose(), &[identity]).expose()
}

impl Handshake for SigmaHandshake {
    fn protocol(&self) -> &str {
        self.config.suite.name
    }

    fn role(&self) -> Role {
        self.role
    }

    fn wants_write(&self) -> bool {
        self.our_turn()
    }

    fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.step == Step::Dead {
            return Err(ApiMisuse::HandshakeDead.into());
        }
        if !self.our_turn() {
            return Err(ApiMisuse::WrongTurn.into());
        }
        match append_or_undo(out, |out| self.write_inner(payload, out)) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn read_message(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        self.check_alive()?;
        if self.our_turn() {
            return Err(ApiMisuse::WrongTurn.into());
        }
        if message.len() > MAX_MESSAGE_LEN {
            return self.fail(PeerMisbehaved::BadMessageLength.into());
        }
        match append_or_undo(payload, |payload| self.read_inner(message, payload)) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn is_finished(&self) -> bool {
        self.step == Step::Done
    }

    fn finish(&mut self) -> Result<Established, Error> {
        match self.step {
            Step::Done => {}
            Step::Dead => return Err(ApiMisuse::HandshakeDead.into()),
            _ => return Err(ApiMisuse::HandshakeNotFinished.into()),
        }
        // Whatever happens next, the secrets leave this handshake once.
        self.step = Step::Dead;
        let Some(remote) = self.remote_identity.take() else {
            return Err(TrustFailure::NoRemoteKey.into());
        };
        let state = &mut self.state;
        let hash = state.handshake_hash().to_vec();
        let aead = state.aead();
        let root = state.root_secret();
        // Checked in read_auth_block: a valid key that signed the transcript.
        let remote = PublicKey::checked(self.config.suite.scheme.key_kind(), &remote);
        let (i2r, r2i) = state.split();
        // The ratchet signs every step with the identities this handshake
        // authenticated.
        let auth = RatchetAuth::Signature {
            local: self.config.identity.clone(),
            remote: remote.clone(),
        };
        Ok(Established::assemble(
            self.config.suite.name.to_string(),
            self.role,
            hash,
            Some(remote),
            aead,
            i2r,
            r2i,
        )
        .with_root(root)
        .with_ratchet_auth(auth))
    }

    fn remote_static(&self) -> Option<PublicKey> {
        // Checked in read_auth_block: a valid key that signed the transcript.
        let key = self.remote_identity.as_deref()?;
        Some(PublicKey::checked(self.config.suite.scheme.key_kind(), key))
    }
}

impl AkexResponder for SigmaHandshake {
    fn mix_hello(&mut self, hello: &[u8]) {
        if self.role == Role::Responder && self.step == Step::M1 && !self.hello_mixed {
            self.state.mix_hash(hello);
            self.hello_mixed = true;
        }
    }
}
