//! Finite-field Diffie-Hellman over RFC 7919's `ffdhe3072` group — a
//! **legacy baseline, for comparison only**, behind the cargo feature
//! `ffdh` (off by default). It is the "DH" of the key-exchange primers,
//! measured next to ECDH (X25519), RSA key transport and ML-KEM so the
//! move DH → ECDH → hybrid can be shown with numbers. Use X25519 or a
//! hybrid for anything real: 3072-bit FFDH is ~100× the CPU of X25519 for
//! similar (~128-bit) classical security and 24× the bytes, and is not
//! post-quantum.
//!
//! Shape: Noise NK with FFDH in place of X25519 (the responder's static
//! key known in advance, ephemeral keys on both sides), on the akex-mode
//! symmetric state and hello (`protocols/ffdh.md`):
//!
//! ```text
//! pre:  h = SHA-256(name); mix_hash(prologue); mix_hash(S)
//! -> hello, e      mix_hash(hello); mix_hash(e); mix_key("akex ffdh es", DH(e, S)); payload
//! <- e             mix_hash(e); mix_key("akex ffdh ee", DH(e, e)); payload
//! ```
//!
//! The arithmetic is OpenSSL's (`openssl` crate): `BN_mod_exp` with the
//! exponent flagged `BN_FLG_CONSTTIME`, which selects
//! `BN_mod_exp_mont_consttime`, the routine OpenSSL's own DH uses for
//! private exponents. Nothing here does modular arithmetic by hand; peer
//! values get RFC 7919 §5.1's range check (1 < y < p − 1) with BN
//! comparisons. Private exponents are 280 random bits (RFC 7919 §5.2
//! asks for at least 275 for ffdhe3072) drawn from the caller's
//! [`RandomSource`], so the handshake replays from vectors.

use std::fmt;
use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext, BigNumRef};

use super::akex::{self as akex_mode, AkexResponder, SymmetricState};
use super::two_message::{self, Turns, TwoMessage};
use super::{Established, Handshake, Role};
use crate::crypto::{AeadAlgorithm, RandomSource, Secret, SharedRng, TAG_LEN};
use crate::error::{ApiMisuse, ConfigError, Error, PeerIncompatible, PeerMisbehaved};
use crate::keys::{KeyKind, PublicKey};

/// The protocol name. It says it is a legacy baseline.
pub const FFDH_NK: &str = "akex-ffdh-nk-ffdhe3072-legacy-chachapoly-sha256";

/// A public value's length: the 3072-bit modulus, big-endian.
pub const FFDH_BYTES: usize = 384;

/// A private exponent's length: 35 bytes = 280 bits (≥ 275, RFC 7919 §5.2).
pub const EXPONENT_BYTES: usize = 35;

const LABEL_ES: &[u8] = b"akex ffdh es";
const LABEL_EE: &[u8] = b"akex ffdh ee";

/// RFC 7919 appendix A.2 `ffdhe3072`, generator 2. It equals
/// 2^3072 − 2^3008 + (⌊2^2942·e⌋ + 2625351)·2^64 − 1 and is the group
/// OpenSSL names `ffdhe3072` (`openssl genpkey -genparam -algorithm DH
/// -pkeyopt group:ffdhe3072 | openssl asn1parse`).
const FFDHE3072_P: &str = concat!(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695",
    "A9E13641146433FBCC939DCE249B3EF97D2FE363630C75D8F681B202AEC4617A",
    "D3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935",
    "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797A",
    "BC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4",
    "AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61",
    "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005",
    "C58EF1837D1683B2C6F34A26C1B2EFFA886B4238611FCFDCDE355B3B6519035B",
    "BC34F4DEF99C023861B46FC9D6E6C9077AD91D2691F7F7EE598CB0FAC186D91C",
    "AEFE130985139270B4130C93BC437944F4FD4452E2D74DD364F2E21E71F54BFF",
    "5CAE82AB9C9DF69EE86D2BC522363A0DABC521979B0DEADA1DBF9A42D5C4484E",
    "0ABCD06BFA53DDEF3C1B20EE3FD59D7C25E41D2B66C62E37FFFFFFFFFFFFFFFF",
);

fn ssl_error(_: openssl::error::ErrorStack) -> Error {
    ConfigError::Invalid("OpenSSL could not compute a finite-field DH value".into()).into()
}

/// The group: p, p − 1 and the generator, parsed once per process.
struct Group {
    p: BigNum,
    p_minus_1: BigNum,
    g: BigNum,
}

fn group() -> Result<&'static Group, Error> {
    static GROUP: OnceLock<Group> = OnceLock::new();
    if let Some(g) = GROUP.get() {
        return Ok(g);
    }
    let p = BigNum::from_hex_str(FFDHE3072_P).map_err(ssl_error)?;
    let one = BigNum::from_u32(1).map_err(ssl_error)?;
    let mut p_minus_1 = BigNum::new().map_err(ssl_error)?;
    p_minus_1.checked_sub(&p, &one).map_err(ssl_error)?;
    let g = BigNum::from_u32(2).map_err(ssl_error)?;
    Ok(GROUP.get_or_init(|| Group { p, p_minus_1, g }))
}

/// `base^exponent mod p` in constant time (see the module docs), as 384
/// big-endian bytes.
fn mod_exp(
    base: &BigNumRef,
    exponent: &Secret<EXPONENT_BYTES>,
) -> Result<Secret<FFDH_BYTES>, Error> {
    let group = group()?;
    let mut x = BigNum::from_slice(exponent.expose()).map_err(ssl_error)?;
    x.set_const_time();
    let mut ctx = BigNumContext::new_secure().map_err(ssl_error)?;
    let mut out = BigNum::new_secure().map_err(ssl_error)?;
    out.mod_exp(base, &x, &group.p, &mut ctx)
        .map_err(ssl_error)?;
    let bytes = zeroize::Zeroizing::new(out.to_vec_padded(FFDH_BYTES as i32).map_err(ssl_error)?);
    Secret::from_slice(&bytes).ok_or_else(|| ssl_error(openssl::error::ErrorStack::get()))
}

/// Parses a peer's public value and checks 1 < y < p − 1 (RFC 7919 §5.1).
fn peer_value(bytes: &[u8]) -> Result<BigNum, Error> {
    let group = group()?;
    if bytes.len() != FFDH_BYTES {
        return Err(PeerMisbehaved::InvalidPublicKey.into());
    }
    let y = BigNum::from_slice(bytes).map_err(|_| PeerMisbehaved::InvalidPublicKey)?;
    let one = BigNum::from_u32(1).map_err(ssl_error)?;
    if y <= one || y >= group.p_minus_1 {
        return Err(PeerMisbehaved::InvalidPublicKey.into());
    }
    Ok(y)
}

/// An FFDH key pair: a 280-bit private exponent and its public value.
#[derive(Clone)]
pub struct FfdhKeyPair {
    private: Secret<EXPONENT_BYTES>,
    public: Box<[u8; FFDH_BYTES]>,
}

impl fmt::Debug for FfdhKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FfdhKeyPair")
            .field("public", &hex::encode(&self.public[..8]))
            .field("private", &"<redacted>")
            .finish()
    }
}

impl FfdhKeyPair {
    /// A fresh key pair from `rng`.
    pub fn generate(rng: &mut dyn RandomSource) -> Result<Self, Error> {
        Self::from_private(Secret::random(rng))
    }

    /// The key pair of a private exponent (35 bytes, big-endian; not 0).
    pub fn from_private(private: Secret<EXPONENT_BYTES>) -> Result<Self, Error> {
        if private.expose().iter().all(|b| *b == 0) {
            return Err(ConfigError::InvalidKey("an FFDH private exponent cannot be 0").into());
        }
        let public = mod_exp(&group()?.g, &private)?;
        Ok(FfdhKeyPair {
            private,
            public: Box::new(*public.expose()),
        })
    }

    /// The public value, 384 bytes big-endian.
    pub fn public(&self) -> &[u8; FFDH_BYTES] {
        &self.public
    }

    /// The private exponent (for key files and vectors).
    pub fn private(&self) -> &Secret<EXPONENT_BYTES> {
        &self.private
    }

    /// The shared secret with a peer's public value (384 bytes).
    fn agree(&self, peer: &[u8]) -> Result<Secret<FFDH_BYTES>, Error> {
        let y = peer_value(peer)?;
        mod_exp(&y, &self.private)
    }
}

/// Everything needed to start one side.
#[derive(Debug, Clone)]
pub struct FfdhConfig {
    local: Option<FfdhKeyPair>,
    remote: Option<PublicKey>,
    prologue: Vec<u8>,
    rng: SharedRng,
}

impl Default for FfdhConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl FfdhConfig {
    /// An empty configuration drawing randomness from the OS.
    pub fn new() -> Self {
        FfdhConfig {
            local: None,
            remote: None,
            prologue: Vec::new(),
            rng: SharedRng::os(),
        }
    }
    /// The responder's static key pair.
    pub fn local_key(mut self, key: FfdhKeyPair) -> Self {
        self.local = Some(key);
        self
    }
    /// The responder's public value, which the initiator must know.
    pub fn remote_key(mut self, key: PublicKey) -> Self {
        self.remote = Some(key);
        self
    }
    /// Data both sides agree on, hashed into the transcript.
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

/// One side of the FFDH-3072 NK handshake (legacy baseline).
pub struct FfdhHandshake {
    static_key: Option<FfdhKeyPair>,
    remote_static: [u8; FFDH_BYTES],
    ephemeral: Option<FfdhKeyPair>,
    peer_ephemeral: Option<Box<[u8; FFDH_BYTES]>>,
    ss: SymmetricState,
    rng: SharedRng,
    turns: Turns,
    hello_done: bool,
}

impl fmt::Debug for FfdhHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FfdhHandshake")
            .field("turns", &self.turns)
            .finish()
    }
}

impl FfdhHandshake {
    /// The initiator: needs the responder's public value.
    pub fn initiator(config: FfdhConfig) -> Result<Self, Error> {
        let remote = config.remote.ok_or(ConfigError::MissingRemoteKey)?;
        let bytes = remote.expect_kind(KeyKind::Ffdhe3072)?.as_bytes();
        peer_value(bytes).map_err(|_| ConfigError::InvalidKey("not an ffdhe3072 public value"))?;
        let mut remote_static = [0u8; FFDH_BYTES];
        remote_static.copy_from_slice(bytes);
        Ok(Self::start(
            Role::Initiator,
            None,
            remote_static,
            &config.prologue,
            config.rng,
        ))
    }

    /// The responder: needs its static key pair.
    pub fn responder(config: FfdhConfig) -> Result<Self, Error> {
        if config.remote.is_some() {
            return Err(ConfigError::Invalid(format!(
                "{FFDH_NK} never authenticates the initiator, so a remote key cannot be checked"
            ))
            .into());
        }
        let local = config.local.ok_or(ConfigError::MissingLocalKey)?;
        let public = *local.public();
        Ok(Self::start(
            Role::Responder,
            Some(local),
            public,
            &config.prologue,
            config.rng,
        ))
    }

    fn start(
        role: Role,
        static_key: Option<FfdhKeyPair>,
        responder_static: [u8; FFDH_BYTES],
        prologue: &[u8],
        rng: SharedRng,
    ) -> Self {
        let mut ss = SymmetricState::new(FFDH_NK, AeadAlgorithm::ChaChaPoly, prologue);
        ss.mix_hash(&responder_static);
        FfdhHandshake {
            static_key,
            remote_static: responder_static,
            ephemeral: None,
            peer_ephemeral: None,
            ss,
            rng,
            turns: Turns::new(role),
            hello_done: false,
        }
    }
}

impl TwoMessage for FfdhHandshake {
    const OVERHEAD: usize = 6 + FFDH_NK.len() + FFDH_BYTES + TAG_LEN;

    fn turns(&mut self) -> &mut Turns {
        &mut self.turns
    }

    fn write_inner(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let e = FfdhKeyPair::generate(&mut self.rng)?;
        match (self.turns.role(), self.turns.next()) {
            (Role::Initiator, 0) => {
                let start = out.len();
                akex_mode::encode_hello(FFDH_NK, out)?;
                self.ss.mix_hash(&out[start..]);
                self.hello_done = true;
                out.extend_from_slice(e.public());
                self.ss.mix_hash(e.public());
                let es = e.agree(&self.remote_static)?;
                self.ss.mix_key(LABEL_ES, es.expose());
            }
            (Role::Responder, 1) => {
                out.extend_from_slice(e.public());
                self.ss.mix_hash(e.public());
                let peer = self.peer_ephemeral.take().ok_or(ApiMisuse::WrongTurn)?;
                let ee = e.agree(&peer[..])?;
                self.ss.mix_key(LABEL_EE, ee.expose());
            }
            _ => return Err(ApiMisuse::WrongTurn.into()),
        }
        self.ephemeral = Some(e);
        self.ss.encrypt_and_hash(payload, out)
    }

    fn read_inner(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        let mut message = message;
        match (self.turns.role(), self.turns.next()) {
            (Role::Responder, 0) => {
                if !self.hello_done {
                    let hello = akex_mode::parse_hello(message)?;
                    if hello.protocol != FFDH_NK {
                        return Err(PeerIncompatible::ProtocolNotAllowed(
                            hello.protocol.to_string(),
                        )
                        .into());
                    }
                    self.ss.mix_hash(hello.bytes);
                    self.hello_done = true;
                    message = hello.rest;
                }
                if message.len() < FFDH_BYTES + TAG_LEN {
                    return Err(PeerMisbehaved::BadMessageLength.into());
                }
                let (e, rest) = message.split_at(FFDH_BYTES);
                let local = self
                    .static_key
                    .as_ref()
                    .ok_or(ConfigError::MissingLocalKey)?;
                let es = local.agree(e)?;
                self.ss.mix_hash(e);
                self.ss.mix_key(LABEL_ES, es.expose());
                let mut peer = Box::new([0u8; FFDH_BYTES]);
                peer.copy_from_slice(e);
                self.peer_ephemeral = Some(peer);
                message = rest;
            }
            (Role::Initiator, 1) => {
                if message.len() < FFDH_BYTES + TAG_LEN {
                    return Err(PeerMisbehaved::BadMessageLength.into());
                }
                let (e, rest) = message.split_at(FFDH_BYTES);
                let ours = self.ephemeral.take().ok_or(ApiMisuse::WrongTurn)?;
                let ee = ours.agree(e)?;
                self.ss.mix_hash(e);
                self.ss.mix_key(LABEL_EE, ee.expose());
                message = rest;
            }
            _ => return Err(PeerMisbehaved::UnexpectedMessage.into()),
        }
        self.ss.decrypt_and_hash(message, payload)
    }

    fn finished(&mut self) {
        self.ephemeral = None;
        self.peer_ephemeral = None;
    }
}

impl Handshake for FfdhHandshake {
    fn protocol(&self) -> &str {
        FFDH_NK
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
        let role = self.turns.role();
        // The initiator authenticated the responder's static value.
        let remote = match role {
            Role::Initiator => Some(PublicKey::from_bytes(
                KeyKind::Ffdhe3072,
                &self.remote_static,
            )?),
            Role::Responder => None,
        };
        let ss = &mut self.ss;
        let hash = ss.handshake_hash().to_vec();
        let root = ss.root_secret();
        let (i2r, r2i) = ss.split();
        Ok(Established::assemble(
            FFDH_NK.to_string(),
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
        match self.turns.role() {
            Role::Initiator => PublicKey::from_bytes(KeyKind::Ffdhe3072, &self.remote_static).ok(),
            Role::Responder => None,
        }
    }
}

impl AkexResponder for FfdhHandshake {
    fn mix_hello(&mut self, hello: &[u8]) {
        self.ss.mix_hash(hello);
        self.hello_done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::OsRng;

    #[test]
    fn the_group_is_a_safe_prime_of_the_rfc_7919_shape() {
        let g = group().unwrap();
        assert_eq!(g.p.num_bits(), 3072);
        let bytes = g.p.to_vec();
        // RFC 7919 primes have their top and bottom 64 bits set.
        assert!(bytes[..8]
            .iter()
            .chain(&bytes[bytes.len() - 8..])
            .all(|b| *b == 0xff));
        let mut ctx = BigNumContext::new().unwrap();
        assert!(g.p.is_prime(64, &mut ctx).unwrap());
        let mut q = BigNum::new().unwrap();
        q.rshift1(&g.p).unwrap();
        assert!(
            q.is_prime(64, &mut ctx).unwrap(),
            "(p - 1) / 2 must be prime"
        );
    }

    #[test]
    fn both_sides_agree_and_bad_values_are_refused() {
        let a = FfdhKeyPair::generate(&mut OsRng).unwrap();
        let b = FfdhKeyPair::generate(&mut OsRng).unwrap();
        let ab = a.agree(b.public()).unwrap();
        assert_eq!(ab.expose(), b.agree(a.public()).unwrap().expose());
        let p = group().unwrap().p.to_vec();
        let mut p_minus_1 = p.clone();
        p_minus_1[FFDH_BYTES - 1] -= 1;
        let mut one = [0u8; FFDH_BYTES];
        one[FFDH_BYTES - 1] = 1;
        for bad in [
            vec![0u8; FFDH_BYTES],
            one.to_vec(),
            p_minus_1,
            p,
            vec![0xff; FFDH_BYTES],
            vec![2; 383],
        ] {
            assert!(matches!(
                a.agree(&bad),
                Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey))
            ));
        }
        assert!(FfdhKeyPair::from_private(Secret::new([0; EXPONENT_BYTES])).is_err());
        assert!(!format!("{a:?}").contains(&hex::encode(a.private().expose())));
    }
}
