//! RSA key transport — **NOT FORWARD SECRET**. A legacy baseline, behind
//! the cargo feature `rsa-kt` (off by default), kept to be measured next to
//! the Diffie-Hellman and KEM handshakes.
//!
//! The initiator encrypts a fresh 32-byte secret to the responder's
//! RSA-3072 key with RSA-OAEP (SHA-256, MGF1-SHA-256; aws-lc-rs, constant
//! time). Whoever later obtains the responder's RSA private key can decrypt
//! every recorded session: there is no ephemeral key exchange. The name
//! says so, and so do the spec (`protocols/akex-rsa-kt.md`), the registry
//! properties and the command-line help.
//!
//! Messages (akex mode, on the [`SymmetricState`] of akex-native protocols):
//!
//! ```text
//! pre:  h = SHA-256(name); mix_hash(prologue); mix_hash(responder RSA public key, DER)
//! -> hello, c = RSA-OAEP(pk, pms)          mix_hash(hello); mix_hash(c); mix_key("akex rsa-kt pms", pms); payload
//! <- server_random (32)                     mix_hash(sr); mix_key("akex rsa-kt server random", sr); payload
//! ```
//!
//! A ciphertext that does not decrypt is not reported as such: the
//! responder continues with a random secret, so the failure shows only as
//! the AEAD tag of the same message (no padding oracle, as in TLS 1.2's
//! countermeasure to Bleichenbacher's attack).

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey, OAEP_SHA256_MGF1SHA256,
};
use zeroize::Zeroizing;

use super::akex::{self as akex_mode, AkexResponder, SymmetricState};
use super::two_message::{self, Turns, TwoMessage};
use super::{Established, Handshake, Role};
use crate::crypto::{AeadAlgorithm, RandomSource, Secret, SharedRng, TAG_LEN};
use crate::error::{ApiMisuse, ConfigError, Error, PeerIncompatible, PeerMisbehaved};
use crate::keys::{KeyKind, PublicKey};

/// The protocol name. It says what the protocol lacks.
pub const RSA_KT: &str = "akex-rsa3072-oaep-kt-not-forward-secret-chachapoly-sha256";

/// RSA modulus size in bytes (3072 bits), also the ciphertext length.
pub const RSA_BYTES: usize = 384;

const LABEL_PMS: &[u8] = b"akex rsa-kt pms";
const LABEL_SERVER_RANDOM: &[u8] = b"akex rsa-kt server random";

/// The responder's RSA-3072 key. The private key lives inside aws-lc, which
/// erases it when dropped; `Debug` shows only the public key's hash.
#[derive(Clone)]
pub struct RsaKeyPair {
    key: PrivateDecryptingKey,
    public_der: Vec<u8>,
}

impl fmt::Debug for RsaKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = crate::crypto::hash::sha256(&[&self.public_der]);
        f.debug_struct("RsaKeyPair")
            .field("public_sha256", &hex::encode(&digest[..8]))
            .field("private", &"<redacted>")
            .finish()
    }
}

fn bad_key(what: &'static str) -> Error {
    ConfigError::InvalidKey(what).into()
}

impl RsaKeyPair {
    /// A new RSA-3072 key (slow: tens to hundreds of milliseconds).
    pub fn generate() -> Result<Self, Error> {
        let key = PrivateDecryptingKey::generate(KeySize::Rsa3072)
            .map_err(|_| bad_key("RSA-3072 key generation failed"))?;
        Self::from_key(key)
    }

    /// Loads a PKCS#8 (v1) RSA private key; it must be 3072 bits.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        let key = PrivateDecryptingKey::from_pkcs8(der)
            .map_err(|_| bad_key("not a PKCS#8 RSA private key"))?;
        Self::from_key(key)
    }

    fn from_key(key: PrivateDecryptingKey) -> Result<Self, Error> {
        if key.key_size_bits() != 3072 {
            return Err(bad_key("the RSA key must be 3072 bits"));
        }
        let public_der = key
            .public_key()
            .as_der()
            .map_err(|_| bad_key("RSA public key encoding failed"))?
            .as_ref()
            .to_vec();
        Ok(RsaKeyPair { key, public_der })
    }

    /// The private key as PKCS#8 DER, for storage.
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let der = self
            .key
            .as_der()
            .map_err(|_| bad_key("RSA private key encoding failed"))?;
        Ok(Zeroizing::new(der.as_ref().to_vec()))
    }

    /// The public key (X.509 SubjectPublicKeyInfo DER): what the initiator
    /// must know in advance.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }
}

/// Everything needed to start one side.
#[derive(Debug, Clone)]
pub struct RsaKtConfig {
    local: Option<RsaKeyPair>,
    remote: Option<Vec<u8>>,
    prologue: Vec<u8>,
    rng: SharedRng,
}

impl Default for RsaKtConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl RsaKtConfig {
    /// An empty configuration drawing randomness from the OS.
    pub fn new() -> Self {
        RsaKtConfig {
            local: None,
            remote: None,
            prologue: Vec::new(),
            rng: SharedRng::os(),
        }
    }
    /// The responder's RSA key.
    pub fn local_key(mut self, key: RsaKeyPair) -> Self {
        self.local = Some(key);
        self
    }
    /// The responder's public key (DER), which the initiator must know.
    pub fn remote_key(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.remote = Some(der.into());
        self
    }
    /// Data both sides must agree on, hashed into the transcript right
    /// after the protocol name (always, empty included): a mismatch fails
    /// the handshake.
    pub fn prologue(mut self, prologue: impl Into<Vec<u8>>) -> Self {
        self.prologue = prologue.into();
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

enum Side {
    Initiator(OaepPublicEncryptingKey, Vec<u8>),
    Responder(OaepPrivateDecryptingKey),
}

/// One side of the RSA key-transport handshake (not forward secret).
pub struct RsaKtHandshake {
    side: Side,
    ss: SymmetricState,
    rng: SharedRng,
    turns: Turns,
    hello_done: bool,
}

impl fmt::Debug for RsaKtHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaKtHandshake")
            .field("turns", &self.turns)
            .finish()
    }
}

impl RsaKtHandshake {
    /// The initiator: needs the responder's public key.
    pub fn initiator(config: RsaKtConfig) -> Result<Self, Error> {
        let der = config.remote.ok_or(ConfigError::MissingRemoteKey)?;
        let public =
            PublicEncryptingKey::from_der(&der).map_err(|_| bad_key("not an RSA public key"))?;
        if public.key_size_bits() != 3072 {
            return Err(bad_key("the RSA key must be 3072 bits"));
        }
        let key = OaepPublicEncryptingKey::new(public).map_err(|_| bad_key("RSA public key"))?;
        let side = Side::Initiator(key, der.clone());
        Ok(Self::start(side, &der, &config.prologue, config.rng))
    }

    /// The responder: needs its RSA key.
    pub fn responder(config: RsaKtConfig) -> Result<Self, Error> {
        if config.remote.is_some() {
            return Err(ConfigError::Invalid(format!(
                "{RSA_KT} never authenticates the initiator, so a remote key cannot be checked"
            ))
            .into());
        }
        let local = config.local.ok_or(ConfigError::MissingLocalKey)?;
        let der = local.public_der.clone();
        let key =
            OaepPrivateDecryptingKey::new(local.key).map_err(|_| bad_key("RSA private key"))?;
        Ok(Self::start(
            Side::Responder(key),
            &der,
            &config.prologue,
            config.rng,
        ))
    }

    fn start(side: Side, public_der: &[u8], prologue: &[u8], rng: SharedRng) -> Self {
        // The prologue first, always (akex-mode.md), then the pre-message.
        let mut ss = SymmetricState::new(RSA_KT, AeadAlgorithm::ChaChaPoly, prologue);
        ss.mix_hash(public_der);
        let role = match side {
            Side::Initiator(..) => Role::Initiator,
            Side::Responder(..) => Role::Responder,
        };
        RsaKtHandshake {
            side,
            ss,
            rng,
            turns: Turns::new(role),
            hello_done: false,
        }
    }
}

impl TwoMessage for RsaKtHandshake {
    const OVERHEAD: usize = 6 + RSA_KT.len() + RSA_BYTES + TAG_LEN;

    fn turns(&mut self) -> &mut Turns {
        &mut self.turns
    }

    fn write_inner(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        match (&self.side, self.turns.next()) {
            (Side::Initiator(key, _), 0) => {
                let start = out.len();
                akex_mode::encode_hello(RSA_KT, out)?;
                self.ss.mix_hash(&out[start..]);
                self.hello_done = true;
                let pms: Secret<32> = Secret::random(&mut self.rng);
                let mut ct = [0u8; RSA_BYTES];
                let written = key
                    .encrypt(&OAEP_SHA256_MGF1SHA256, pms.expose(), &mut ct, None)
                    .map_err(|_| bad_key("RSA-OAEP encryption failed"))?
                    .len();
                if written != RSA_BYTES {
                    return Err(bad_key("RSA-OAEP ciphertext has the wrong length"));
                }
                out.extend_from_slice(&ct);
                self.ss.mix_hash(&ct);
                self.ss.mix_key(LABEL_PMS, pms.expose());
            }
            (Side::Responder(..), 1) => {
                let sr: Secret<32> = Secret::random(&mut self.rng);
                out.extend_from_slice(sr.expose());
                self.ss.mix_hash(sr.expose());
                self.ss.mix_key(LABEL_SERVER_RANDOM, sr.expose());
            }
            _ => return Err(ApiMisuse::WrongTurn.into()),
        }
        self.ss.encrypt_and_hash(payload, out)
    }

    fn read_inner(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        let mut message = message;
        match (&self.side, self.turns.next()) {
            (Side::Responder(key), 0) => {
                if !self.hello_done {
                    let hello = akex_mode::parse_hello(message)?;
                    if hello.protocol != RSA_KT {
                        return Err(PeerIncompatible::ProtocolNotAllowed(
                            hello.protocol.to_string(),
                        )
                        .into());
                    }
                    self.ss.mix_hash(hello.bytes);
                    self.hello_done = true;
                    message = hello.rest;
                }
                if message.len() < RSA_BYTES + TAG_LEN {
                    return Err(PeerMisbehaved::BadMessageLength.into());
                }
                let (ct, rest) = message.split_at(RSA_BYTES);
                // Implicit rejection: a ciphertext that does not decrypt to
                // 32 bytes continues with a random secret.
                let fallback: Secret<32> = Secret::random(&mut self.rng);
                let mut buf = Zeroizing::new([0u8; RSA_BYTES]);
                let decrypted = key
                    .decrypt(&OAEP_SHA256_MGF1SHA256, ct, &mut buf[..], None)
                    .ok()
                    .and_then(|p| Secret::<32>::from_slice(p));
                let pms = decrypted.unwrap_or(fallback);
                self.ss.mix_hash(ct);
                self.ss.mix_key(LABEL_PMS, pms.expose());
                message = rest;
            }
            (Side::Initiator(..), 1) => {
                if message.len() < 32 + TAG_LEN {
                    return Err(PeerMisbehaved::BadMessageLength.into());
                }
                let (sr, rest) = message.split_at(32);
                self.ss.mix_hash(sr);
                self.ss.mix_key(LABEL_SERVER_RANDOM, sr);
                message = rest;
            }
            _ => return Err(PeerMisbehaved::UnexpectedMessage.into()),
        }
        self.ss.decrypt_and_hash(message, payload)
    }
}

impl Handshake for RsaKtHandshake {
    fn protocol(&self) -> &str {
        RSA_KT
    }

    fn role(&self) -> Role {
        self.turns.role()
    }

    fn wants_write(&self) -> bool {
        self.turns.wants_write()
    }

    fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        two_message::write_message(self, payload, out)
    }

    fn read_message(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        two_message::read_message(self, message, payload)
    }

    fn is_finished(&self) -> bool {
        self.turns.is_finished()
    }

    fn finish(&mut self) -> Result<Established, Error> {
        self.turns.take_finished()?;
        let role = self.role();
        // The initiator authenticated the responder's RSA public key (DER);
        // the responder learns nothing about the initiator.
        let remote = match &self.side {
            Side::Initiator(_, der) => Some(PublicKey::from_bytes(KeyKind::Rsa, der)?),
            Side::Responder(..) => None,
        };
        let ss = &mut self.ss;
        let hash = ss.handshake_hash().to_vec();
        let root = ss.root_secret();
        let (i2r, r2i) = ss.split();
        Ok(Established::assemble(
            RSA_KT.to_string(),
            role,
            hash,
            remote,
            AeadAlgorithm::ChaChaPoly,
            i2r,
            r2i,
        )
        .with_root(root))
    }

    fn remote_static(&self) -> Option<PublicKey> {
        match &self.side {
            Side::Initiator(_, der) => PublicKey::from_bytes(KeyKind::Rsa, der).ok(),
            Side::Responder(..) => None,
        }
    }
}

impl AkexResponder for RsaKtHandshake {
    fn mix_hello(&mut self, hello: &[u8]) {
        self.ss.mix_hash(hello);
        self.hello_done = true;
    }
}
