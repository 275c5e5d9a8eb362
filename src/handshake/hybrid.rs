//! Hybrid X25519 + ML-KEM-768 handshakes (XX-, IK- and NK-shaped), and the
//! token engine the PQ-authenticated handshakes (`pq.rs`) share.
//!
//! The handshakes are Noise patterns run on akex's
//! `SymmetricState` (SHA-256, HKDF-SHA256,
//! ChaCha20-Poly1305) with two extra tokens in the style of Noise HFS:
//!
//! - `e1`: the sender's fresh ML-KEM-768 encapsulation key;
//! - `ekem`: a ciphertext encapsulated to the peer's `e1`, whose shared
//!   secret is mixed into the chaining key under its own label.
//!
//! Every X25519 result and every KEM secret enters the chaining key through
//! its own `mix_key` label, so the traffic keys stay secret if either X25519
//! or ML-KEM-768 holds. The patterns (the hybrid family's and the
//! PQ-authenticated family's) are data in `pattern.rs`. Specs:
//! `protocols/hybrid.md`, `protocols/pq.md`.

use std::fmt;
use std::sync::Arc;

use super::akex::{self as akex_mode, AkexResponder, SymmetricState};
use super::{append_or_undo, Established, Handshake, Role, MAX_MESSAGE_LEN};
use crate::crypto::kem::{self, MlKem768KeyPair};
use crate::crypto::secret::ct_eq;
use crate::crypto::x25519::X25519Private;
use crate::crypto::{AeadAlgorithm, RandomSource, Secret, SharedRng, StaticSecret, TAG_LEN};
use crate::error::{ApiMisuse, ConfigError, Error, PeerIncompatible, PeerMisbehaved, TrustFailure};
use crate::keys::{KeyKind, PublicKey};
use crate::session::RatchetAuth;

use super::pattern::Token::{self, *};
use super::pattern::{find_spec, sender, Spec};
pub use super::pattern::{
    message_layout, protocol_info, protocol_names, ProtocolInfo, HYBRID_IK, HYBRID_NK, HYBRID_XX,
};

/// Everything needed to start one side of a hybrid or PQ-authenticated
/// handshake.
#[derive(Clone)]
pub struct HybridConfig {
    spec: &'static Spec,
    prologue: Vec<u8>,
    local_static: Option<StaticSecret>,
    local_kem: Option<MlKem768KeyPair>,
    remote: Option<PublicKey>,
    rng: SharedRng,
}

impl fmt::Debug for HybridConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridConfig")
            .field("protocol", &self.spec.name)
            .field("local_static", &self.local_static)
            .field("local_kem", &self.local_kem)
            .field("remote", &self.remote)
            .finish()
    }
}

impl HybridConfig {
    /// A configuration for `protocol` (one of [`protocol_names`]), drawing
    /// randomness from the OS.
    pub fn new(protocol: &str) -> Result<Self, Error> {
        let spec = find_spec(protocol).ok_or_else(|| {
            Error::Config(ConfigError::UnsupportedProtocol {
                name: protocol.to_string(),
                reason: "not a hybrid or PQ-authenticated akex protocol".into(),
            })
        })?;
        Ok(HybridConfig {
            spec,
            prologue: Vec::new(),
            local_static: None,
            local_kem: None,
            remote: None,
            rng: SharedRng::os(),
        })
    }

    /// Data both sides must agree on, hashed into the transcript right
    /// after the protocol name (always, empty included), before the
    /// pre-message key and the hello: a mismatch fails the handshake.
    pub fn prologue(mut self, prologue: impl Into<Vec<u8>>) -> Self {
        self.prologue = prologue.into();
        self
    }

    /// Our long-term X25519 key.
    pub fn local_static(mut self, key: StaticSecret) -> Self {
        self.local_static = Some(key);
        self
    }

    /// Our long-term ML-KEM-768 key (PQ-authenticated protocols).
    pub fn local_kem(mut self, key: MlKem768KeyPair) -> Self {
        self.local_kem = Some(key);
        self
    }

    /// The peer's static key: needed in advance for IK/NK, otherwise the
    /// key the peer must prove (pinning). An X25519 key for the hybrid
    /// protocols; for the PQ-authenticated ones the whole X25519 +
    /// ML-KEM-768 key ([`KeyKind::X25519MlKem768`]), so neither half can be
    /// left unchecked. The handshake refuses another kind.
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

    /// The protocol name.
    pub fn protocol(&self) -> &'static str {
        self.spec.name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Finished,
    Dead,
}

/// One side of a hybrid or PQ-authenticated handshake.
pub struct HybridHandshake {
    spec: &'static Spec,
    role: Role,
    ss: SymmetricState,
    keyed: bool,
    /// The akex-mode hello is in the transcript (initiator: written).
    hello_done: bool,
    next: usize,
    status: Status,
    rng: SharedRng,
    /// Our static key, parsed once per key (shared with its `StaticSecret`).
    s: Option<Arc<X25519Private>>,
    s_kem: Option<MlKem768KeyPair>,
    e: Option<Arc<X25519Private>>,
    e_kem: Option<MlKem768KeyPair>,
    rs: Option<[u8; 32]>,
    rs_kem: Option<Vec<u8>>,
    re: Option<[u8; 32]>,
    re_kem: Option<Vec<u8>>,
    expected_rs: Option<[u8; 32]>,
    expected_rs_kem: Option<Vec<u8>>,
}

impl fmt::Debug for HybridHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridHandshake")
            .field("protocol", &self.spec.name)
            .field("role", &self.role)
            .field("next_message", &self.next)
            .field("status", &self.status)
            .finish()
    }
}

impl HybridHandshake {
    /// Starts the initiator's side.
    pub fn initiator(config: HybridConfig) -> Result<Self, Error> {
        Self::new(config, Role::Initiator)
    }

    /// Starts the responder's side.
    pub fn responder(config: HybridConfig) -> Result<Self, Error> {
        Self::new(config, Role::Responder)
    }

    /// Starts the given side.
    pub fn new(config: HybridConfig, role: Role) -> Result<Self, Error> {
        let spec = config.spec;
        let (remote_static, remote_kem) = match &config.remote {
            None => (None, None),
            Some(key) => {
                let kind = if spec.kem_statics {
                    KeyKind::X25519MlKem768
                } else {
                    KeyKind::X25519
                };
                let bytes = key.expect_kind(kind)?.as_bytes();
                let mut x = [0u8; 32];
                x.copy_from_slice(&bytes[..32]);
                (Some(x), spec.kem_statics.then(|| bytes[32..].to_vec()))
            }
        };
        let needs_local = spec.needs_local_static(role);
        if needs_local
            && (config.local_static.is_none() || (spec.kem_statics && config.local_kem.is_none()))
        {
            return Err(ConfigError::MissingLocalKey.into());
        }
        if spec.needs_remote_static(role) && remote_static.is_none() {
            return Err(ConfigError::MissingRemoteKey.into());
        }
        if remote_static.is_some() && !spec.authenticates_peer_of(role) {
            return Err(ConfigError::Invalid(format!(
                "{} never authenticates the {}'s static key, so a remote key cannot be checked",
                spec.name,
                role.peer()
            ))
            .into());
        }
        if let Some(ek) = &remote_kem {
            kem::check_encapsulation_key(ek)
                .map_err(|_| ConfigError::InvalidKey("remote ML-KEM-768 key"))?;
        }

        // The prologue first, always (akex-mode.md), then the pre-message.
        let ss = SymmetricState::new(spec.name, AeadAlgorithm::ChaChaPoly, &config.prologue);
        let mut hs = HybridHandshake {
            spec,
            role,
            ss,
            keyed: false,
            hello_done: false,
            next: 0,
            status: Status::Running,
            rng: config.rng,
            s: if needs_local {
                config.local_static.as_ref().map(|k| Arc::clone(k.parsed()))
            } else {
                None
            },
            s_kem: if needs_local && spec.kem_statics {
                config.local_kem
            } else {
                None
            },
            e: None,
            e_kem: None,
            rs: None,
            rs_kem: None,
            re: None,
            re_kem: None,
            expected_rs: remote_static,
            expected_rs_kem: remote_kem,
        };
        if spec.pre_responder_static {
            let encoded = match role {
                Role::Initiator => {
                    hs.rs = hs.expected_rs;
                    hs.rs_kem = hs.expected_rs_kem.clone();
                    encode_static(hs.rs.as_ref(), hs.rs_kem.as_deref())
                }
                Role::Responder => hs.local_static_encoding(),
            };
            hs.ss.mix_hash(&encoded);
        }
        Ok(hs)
    }

    fn local_static_encoding(&self) -> Vec<u8> {
        encode_static(
            self.s.as_deref().map(X25519Private::public),
            self.s_kem
                .as_ref()
                .map(|k| &k.encapsulation_key()[..])
                .filter(|_| self.spec.kem_statics),
        )
    }

    fn check_alive(&self) -> Result<(), Error> {
        match self.status {
            Status::Dead => Err(ApiMisuse::HandshakeDead.into()),
            _ => Ok(()),
        }
    }

    fn fail<T>(&mut self, err: Error) -> Result<T, Error> {
        self.status = Status::Dead;
        // Drop every secret now: a dead handshake is never resumed.
        self.e = None;
        self.e_kem = None;
        Err(err)
    }

    fn tag(&self) -> usize {
        if self.keyed {
            TAG_LEN
        } else {
            0
        }
    }

    fn mix_key(&mut self, label: &[u8], secret: &Secret<32>) {
        self.ss.mix_key(label, secret.expose());
        self.keyed = true;
    }

    fn dh(&mut self, token: Token) -> Result<(), Error> {
        let labels = self.spec.labels;
        let initiator = self.role == Role::Initiator;
        let (local, remote, label) = match token {
            Ee => (&self.e, &self.re, labels.ee),
            Es if initiator => (&self.e, &self.rs, labels.es),
            Es => (&self.s, &self.re, labels.es),
            Se if initiator => (&self.s, &self.re, labels.se),
            Se => (&self.e, &self.rs, labels.se),
            _ => (&self.s, &self.rs, labels.ss),
        };
        let (Some(local), Some(remote)) = (local, remote) else {
            return Err(ApiMisuse::WrongTurn.into());
        };
        let shared = local.agree(remote)?;
        self.mix_key(label, &shared);
        Ok(())
    }

    fn draw<const N: usize>(&mut self) -> Secret<N> {
        Secret::random(&mut self.rng)
    }

    fn write_tokens(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.next == 0 && !self.hello_done {
            let start = out.len();
            akex_mode::encode_hello(self.spec.name, out)?;
            self.ss.mix_hash(&out[start..]);
            self.hello_done = true;
        }
        let tokens = self.spec.messages[self.next];
        for &token in tokens {
            match token {
                E => {
                    let e = X25519Private::new(&self.draw::<32>());
                    out.extend_from_slice(e.public());
                    self.ss.mix_hash(e.public());
                    self.e = Some(Arc::new(e));
                }
                E1 => {
                    let pair = MlKem768KeyPair::from_seed(&self.draw::<{ kem::SEED_LEN }>());
                    self.ss.encrypt_and_hash(pair.encapsulation_key(), out)?;
                    self.e_kem = Some(pair);
                }
                Ekem | Skem => {
                    let ek = if token == Ekem {
                        self.re_kem.take()
                    } else {
                        self.rs_kem.clone()
                    };
                    let ek = ek.ok_or(ApiMisuse::WrongTurn)?;
                    let m = self.draw::<{ kem::ENCAPS_RANDOMNESS_LEN }>();
                    let (ct, shared) = kem::encapsulate(&ek, &m)?;
                    self.ss.encrypt_and_hash(&ct, out)?;
                    let label = if token == Ekem {
                        self.spec.labels.ekem
                    } else {
                        self.spec.labels.skem
                    };
                    self.mix_key(label, &shared);
                }
                S => {
                    let encoded = self.local_static_encoding();
                    self.ss.encrypt_and_hash(&encoded, out)?;
                }
                Ee | Es | Se | Ss => self.dh(token)?,
            }
        }
        self.ss.encrypt_and_hash(payload, out)
    }

    fn read_tokens(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        let mut message = message;
        if self.next == 0 && !self.hello_done {
            // Used without a NegotiatingResponder: the hello must name us.
            let hello = akex_mode::parse_hello(message)?;
            if hello.protocol != self.spec.name {
                return Err(
                    PeerIncompatible::ProtocolNotAllowed(hello.protocol.to_string()).into(),
                );
            }
            self.ss.mix_hash(hello.bytes);
            self.hello_done = true;
            message = hello.rest;
        }
        let tokens = self.spec.messages[self.next];
        let mut rest = message;
        let mut take = |n: usize| -> Result<&[u8], Error> {
            if rest.len() < n {
                return Err(PeerMisbehaved::BadMessageLength.into());
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let mut scratch = Vec::new();
        for &token in tokens {
            match token {
                E => {
                    let re: [u8; 32] = take(32)?
                        .try_into()
                        .map_err(|_| PeerMisbehaved::BadMessageLength)?;
                    self.ss.mix_hash(&re);
                    self.re = Some(re);
                }
                E1 => {
                    scratch.clear();
                    self.ss.decrypt_and_hash(
                        take(kem::ENCAPSULATION_KEY_LEN + self.tag())?,
                        &mut scratch,
                    )?;
                    kem::check_encapsulation_key(&scratch)?;
                    self.re_kem = Some(scratch.clone());
                }
                Ekem | Skem => {
                    scratch.clear();
                    self.ss
                        .decrypt_and_hash(take(kem::CIPHERTEXT_LEN + self.tag())?, &mut scratch)?;
                    let (pair, label) = if token == Ekem {
                        (self.e_kem.take(), self.spec.labels.ekem)
                    } else {
                        (self.s_kem.clone(), self.spec.labels.skem)
                    };
                    let pair = pair.ok_or(PeerMisbehaved::UnexpectedMessage)?;
                    let shared = pair.decapsulate(&scratch)?;
                    self.mix_key(label, &shared);
                }
                S => {
                    scratch.clear();
                    self.ss.decrypt_and_hash(
                        take(self.spec.static_len() + self.tag())?,
                        &mut scratch,
                    )?;
                    let mut rs = [0u8; 32];
                    rs.copy_from_slice(&scratch[..32]);
                    if let Some(expected) = &self.expected_rs {
                        if !ct_eq(expected, &rs) {
                            return Err(TrustFailure::RemoteKeyMismatch.into());
                        }
                    }
                    if self.spec.kem_statics {
                        let ek = &scratch[32..];
                        kem::check_encapsulation_key(ek)?;
                        if let Some(expected) = &self.expected_rs_kem {
                            if !ct_eq(expected, ek) {
                                return Err(TrustFailure::RemoteKeyMismatch.into());
                            }
                        }
                        self.rs_kem = Some(ek.to_vec());
                    }
                    self.rs = Some(rs);
                }
                Ee | Es | Se | Ss => self.dh(token)?,
            }
        }
        if self.keyed && rest.len() < TAG_LEN {
            return Err(PeerMisbehaved::BadMessageLength.into());
        }
        self.ss.decrypt_and_hash(rest, payload)
    }
}

fn encode_static(x25519: Option<&[u8; 32]>, kem: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + kem.map_or(0, <[u8]>::len));
    if let Some(k) = x25519 {
        out.extend_from_slice(k);
    }
    if let Some(k) = kem {
        out.extend_from_slice(k);
    }
    out
}

impl Handshake for HybridHandshake {
    fn protocol(&self) -> &str {
        self.spec.name
    }

    fn role(&self) -> Role {
        self.role
    }

    fn wants_write(&self) -> bool {
        self.status == Status::Running && sender(self.next) == self.role
    }

    fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.check_alive()?;
        if !self.wants_write() {
            return self.fail(ApiMisuse::WrongTurn.into());
        }
        let size = self.spec.message_sizes()[self.next] + payload.len();
        if size > MAX_MESSAGE_LEN {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        out.reserve(size);
        if let Err(e) = append_or_undo(out, |out| self.write_tokens(payload, out)) {
            return self.fail(e);
        }
        self.advance();
        Ok(())
    }

    fn read_message(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        self.check_alive()?;
        if self.status != Status::Running || sender(self.next) == self.role {
            return self.fail(PeerMisbehaved::UnexpectedMessage.into());
        }
        if message.len() > MAX_MESSAGE_LEN {
            return self.fail(PeerMisbehaved::BadMessageLength.into());
        }
        if let Err(e) = append_or_undo(payload, |payload| self.read_tokens(message, payload)) {
            return self.fail(e);
        }
        self.advance();
        Ok(())
    }

    fn is_finished(&self) -> bool {
        self.status == Status::Finished
    }

    fn finish(&mut self) -> Result<Established, Error> {
        self.check_alive()?;
        if self.status != Status::Finished {
            return Err(ApiMisuse::HandshakeNotFinished.into());
        }
        // The secrets leave this handshake once.
        self.status = Status::Dead;
        let remote = if self.spec.authenticates_peer_of(self.role) {
            Some(self.peer_key().ok_or(TrustFailure::NoRemoteKey)??)
        } else {
            None
        };
        let (role, spec) = (self.role, self.spec);
        // The ratchet authenticates every step with the X25519 static keys
        // this handshake authenticated (ours, and the peer's if it has one).
        let auth = RatchetAuth::StaticDh {
            local: self.s.clone(),
            remote: self.rs.filter(|_| spec.authenticates_peer_of(role)),
        };
        let ss = &mut self.ss;
        let hash = ss.handshake_hash().to_vec();
        let root = ss.root_secret();
        let (i2r, r2i) = ss.split();
        Ok(Established::assemble(
            spec.name.to_string(),
            role,
            hash,
            remote,
            AeadAlgorithm::ChaChaPoly,
            i2r,
            r2i,
        )
        .with_root(root)
        .with_ratchet_auth(auth))
    }

    fn remote_static(&self) -> Option<PublicKey> {
        if !self.spec.authenticates_peer_of(self.role) {
            return None;
        }
        self.peer_key()?.ok()
    }
}

impl HybridHandshake {
    /// The peer's static key (X25519, and ML-KEM-768 in the PQ family),
    /// once given in advance or read.
    fn peer_key(&self) -> Option<Result<PublicKey, Error>> {
        let rs = self.rs?;
        let bytes = encode_static(Some(&rs), self.rs_kem.as_deref());
        let kind = if self.rs_kem.is_some() {
            KeyKind::X25519MlKem768
        } else {
            KeyKind::X25519
        };
        Some(PublicKey::from_bytes(kind, &bytes))
    }

    fn advance(&mut self) {
        self.next += 1;
        if self.next == self.spec.messages.len() {
            self.status = Status::Finished;
            // Ephemeral secrets are no longer needed.
            self.e = None;
            self.e_kem = None;
        }
    }
}

impl AkexResponder for HybridHandshake {
    fn mix_hello(&mut self, hello: &[u8]) {
        self.ss.mix_hash(hello);
        self.hello_done = true;
    }
}
