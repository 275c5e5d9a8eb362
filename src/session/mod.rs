//! The session layer: traffic keys after the handshake, for every protocol.
//!
//! A [`Session`] runs in one of two [`RecordMode`]s:
//!
//! * **Noise mode** ([`Session::new`]): exactly the pair of Noise
//!   CipherStates (section 5.1 of the Noise spec), so it interoperates with
//!   any Noise implementation. An optional [`RekeyPolicy`] applies Noise
//!   `REKEY()` after every N messages (or B bytes) in each direction; the
//!   peer must be configured with the same schedule.
//! * **akex mode** ([`Session::with_config`]): each record's plaintext
//!   starts with a [`RecordType`] byte inside the AEAD: data, key update,
//!   DH ratchet, close. Key updates move one direction to the next epoch
//!   (`HKDF-SHA256(current, "akex key update")`); the DH ratchet mixes a
//!   fresh X25519 (and optionally ML-KEM-768) secret into the root key from
//!   the handshake, for post-compromise security. See
//!   `protocols/session.md` and `docs/session-keys.md`.
//!
//! In both modes no key is used past its AEAD's usage limit
//! ([`AeadLimits`]) and the nonce 2^64-1 is never used. The session is
//! sans-IO: time comes in as a `Duration` since the session started and
//! randomness as an RNG argument. [`DatagramSession`] is the variant with
//! explicit counters and a replay window for unreliable transports.

#[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
pub(crate) mod cipher_state;
pub mod datagram;
pub mod policy;
pub(crate) mod record;
#[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
pub(crate) mod replay;
pub(crate) mod schedule;

pub(crate) use cipher_state::CipherState;
pub use datagram::DatagramSession;
pub use policy::{AeadLimits, RekeyPolicy};
pub use record::{Record, RecordType};

use std::time::Duration;

use crate::crypto::x25519::X25519Private;
use crate::crypto::{kem, AeadAlgorithm, Secret, TAG_LEN};
use crate::error::{ApiMisuse, ConfigError, Error, LimitReached, PeerMisbehaved};
use crate::handshake::{Established, Role, MAX_MESSAGE_LEN};
use crate::keys::PublicKey;
use record::RatchetState;

/// Largest plaintext in one transport message.
pub const MAX_PLAINTEXT_LEN: usize = MAX_MESSAGE_LEN - TAG_LEN;

/// Largest application payload in one akex-mode record (one byte of the
/// plaintext is the record type).
pub const MAX_RECORD_PAYLOAD: usize = MAX_PLAINTEXT_LEN - 1;

/// Records kept in reserve below the hard limit for key updates, ratchet
/// steps and close, so a sender at its data limit can still rekey.
const CONTROL_RESERVE: u64 = 8;

/// What a session knows about the handshake that made it (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The full protocol name.
    pub protocol: String,
    /// Our role in the handshake.
    pub role: Role,
    /// The handshake hash (channel binding).
    pub handshake_hash: Vec<u8>,
    /// The peer's authenticated static public key, if any.
    pub remote_static: Option<PublicKey>,
    /// The AEAD in use.
    pub aead: AeadAlgorithm,
    /// How records are laid out (decided by the protocol).
    pub mode: RecordMode,
}

/// How records are laid out. The protocol decides it
/// ([`RecordMode::for_protocol`]); nothing else can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordMode {
    /// Plain Noise transport messages (interoperable with any Noise
    /// implementation). Noise has no authenticated close: a peer cannot
    /// tell a truncated stream from a finished one. Use an akex-mode
    /// protocol where that matters.
    Noise,
    /// Typed akex records (data, key update, ratchet, close), under record
    /// keys derived from the traffic secrets.
    Akex,
}

impl RecordMode {
    /// The one rule: `Noise_*` names use Noise records, every other
    /// protocol (the `akex-*` names) akex records.
    ///
    /// Both sides of a handshake agree on the protocol name (it is bound
    /// into the transcript), so they agree on the mode. Even sessions made
    /// to disagree cannot exchange a byte: akex-mode record keys are
    /// derived from the traffic secrets under a label, while Noise mode
    /// uses the secrets directly, so every record fails to authenticate in
    /// both directions.
    pub fn for_protocol(protocol: &str) -> RecordMode {
        if protocol.starts_with("Noise_") {
            RecordMode::Noise
        } else {
            RecordMode::Akex
        }
    }
}

/// How a session rekeys and ratchets. The record mode is not here: the
/// protocol decides it ([`RecordMode::for_protocol`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SessionConfig {
    /// When to rekey our sending direction; `None` for the mode's default
    /// (Noise: never, like every Noise implementation; akex:
    /// [`RekeyPolicy::recommended`]). Noise mode rekeys both directions on
    /// a schedule both peers must share, and counts only.
    pub policy: Option<RekeyPolicy>,
    /// akex mode: start a DH ratchet this long after the last one (needs a
    /// root secret from the handshake).
    pub ratchet_interval: Option<Duration>,
    /// akex mode: add an ML-KEM-768 encapsulation to every ratchet step
    /// (and refuse a peer's ratchet without one).
    pub hybrid_ratchet: bool,
    /// The hard usage limits; may only be lowered from
    /// [`AeadLimits::for_aead`] (useful in tests).
    pub limits: Option<AeadLimits>,
}

impl SessionConfig {
    /// The mode's defaults (see the fields).
    pub fn new() -> Self {
        Self::default()
    }

    /// Rekeys on `policy`.
    pub fn rekey_policy(mut self, policy: RekeyPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Noise mode: `REKEY()` after every `messages` messages per direction.
    pub fn noise_rekey_every(messages: u64) -> Self {
        Self::new().rekey_policy(RekeyPolicy::every_messages(messages))
    }

    /// akex mode: a DH ratchet every `interval`.
    pub fn ratchet_every(mut self, interval: Duration) -> Self {
        self.ratchet_interval = Some(interval);
        self
    }

    /// akex mode: every ratchet step also encapsulates to ML-KEM-768.
    pub fn hybrid_ratchet(mut self, hybrid: bool) -> Self {
        self.hybrid_ratchet = hybrid;
        self
    }

    /// Lowers the hard usage limits.
    pub fn limits(mut self, limits: AeadLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// The policy in force for `mode` and `aead`.
    pub(crate) fn policy_for(&self, mode: RecordMode, aead: AeadAlgorithm) -> RekeyPolicy {
        self.policy.unwrap_or(match mode {
            RecordMode::Noise => RekeyPolicy::never(),
            RecordMode::Akex => RekeyPolicy::recommended(aead),
        })
    }
}

/// How much one key has been used.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    records: u64,
    bytes: u64,
    since: Duration,
}

impl Usage {
    #[inline]
    fn add(&mut self, len: usize) {
        self.records += 1;
        self.bytes = self.bytes.saturating_add(len as u64);
    }
}

/// akex-mode state: the secrets keys are derived from, epochs, the ratchet.
struct AkexState {
    send_secret: Secret<32>,
    recv_secret: Secret<32>,
    root: Option<Secret<32>>,
    ratchet: RatchetState,
    ratchet_interval: Option<Duration>,
    last_ratchet: Duration,
    ratchets: u64,
    hybrid: bool,
    now: Duration,
    sent_close: bool,
    received_close: bool,
    failed: bool,
}

/// Encrypts outgoing and decrypts incoming transport messages.
pub struct Session {
    info: SessionInfo,
    send: CipherState,
    recv: CipherState,
    policy: RekeyPolicy,
    limits: AeadLimits,
    send_use: Usage,
    recv_use: Usage,
    send_epoch: u64,
    recv_epoch: u64,
    akex: Option<Box<AkexState>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("info", &self.info)
            .field("mode", &self.mode())
            .field("send", &self.send)
            .field("recv", &self.recv)
            .field("send_epoch", &self.send_epoch)
            .field("recv_epoch", &self.recv_epoch)
            .finish_non_exhaustive()
    }
}

pub(crate) fn session_info(established: &Established) -> SessionInfo {
    SessionInfo {
        protocol: established.protocol().to_string(),
        role: established.role(),
        handshake_hash: established.handshake_hash().to_vec(),
        remote_static: established.remote_static().cloned(),
        aead: established.aead(),
        mode: RecordMode::for_protocol(established.protocol()),
    }
}

pub(crate) fn check_limits(
    aead: AeadAlgorithm,
    limits: Option<AeadLimits>,
) -> Result<AeadLimits, Error> {
    let max = AeadLimits::for_aead(aead);
    match limits {
        None => Ok(max),
        Some(l)
            if l.max_records <= max.max_records
                && l.max_bytes <= max.max_bytes
                && l.max_forgeries <= max.max_forgeries
                && l.max_records > CONTROL_RESERVE =>
        {
            Ok(l)
        }
        Some(_) => Err(ConfigError::Invalid(
            "AEAD limits may only be lowered (and must leave room for control records)".into(),
        )
        .into()),
    }
}

impl Session {
    /// Takes over the traffic secrets of a finished handshake, in the
    /// record mode its protocol decides ([`RecordMode::for_protocol`]),
    /// with that mode's default policy.
    pub fn new(established: Established) -> Self {
        Self::with_config(established, SessionConfig::default())
            .expect("the default configuration is valid in both modes")
    }

    /// Takes over the traffic secrets with a rekey policy (the record mode
    /// is still the protocol's).
    ///
    /// Fails for a Noise-mode policy with a time limit, a zero limit,
    /// raised AEAD limits, or a ratchet setting in Noise mode.
    pub fn with_config(established: Established, config: SessionConfig) -> Result<Self, Error> {
        let aead = established.aead();
        let mode = RecordMode::for_protocol(established.protocol());
        let noise = mode == RecordMode::Noise;
        let policy = config.policy_for(mode, aead);
        policy.validate(noise)?;
        let limits = check_limits(aead, config.limits)?;
        if noise && (config.ratchet_interval.is_some() || config.hybrid_ratchet) {
            return Err(ConfigError::Invalid("the DH ratchet needs akex mode".into()).into());
        }
        let (send, recv) = if noise {
            (
                CipherState::new(aead, established.sending_secret().secret().expose()),
                CipherState::new(aead, established.receiving_secret().secret().expose()),
            )
        } else {
            (
                CipherState::new(
                    aead,
                    schedule::record_key(established.sending_secret().secret()).expose(),
                ),
                CipherState::new(
                    aead,
                    schedule::record_key(established.receiving_secret().secret()).expose(),
                ),
            )
        };
        let akex = (!noise).then(|| {
            Box::new(AkexState {
                send_secret: established.sending_secret().secret().clone(),
                recv_secret: established.receiving_secret().secret().clone(),
                root: established.root_secret().map(|r| r.secret().clone()),
                ratchet: RatchetState::Idle,
                ratchet_interval: config.ratchet_interval,
                last_ratchet: Duration::ZERO,
                ratchets: 0,
                hybrid: config.hybrid_ratchet,
                now: Duration::ZERO,
                sent_close: false,
                received_close: false,
                failed: false,
            })
        });
        // `established` drops here and zeroizes its copies of the secrets.
        Ok(Session {
            info: session_info(&established),
            send,
            recv,
            policy,
            limits,
            send_use: Usage::default(),
            recv_use: Usage::default(),
            send_epoch: 0,
            recv_epoch: 0,
            akex,
        })
    }

    /// The handshake's public facts.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The record mode.
    pub fn mode(&self) -> RecordMode {
        if self.akex.is_some() {
            RecordMode::Akex
        } else {
            RecordMode::Noise
        }
    }

    /// How many times our sending key changed (rekeys, key updates, ratchets).
    pub fn send_epoch(&self) -> u64 {
        self.send_epoch
    }

    /// How many times our receiving key changed.
    pub fn recv_epoch(&self) -> u64 {
        self.recv_epoch
    }

    /// The hard AEAD limits in force.
    pub fn limits(&self) -> AeadLimits {
        self.limits
    }

    // ---- Noise mode ------------------------------------------------------

    #[inline]
    fn noise_before_seal(&self, len: usize) -> Result<(), Error> {
        if self.akex.is_some() {
            return Err(ApiMisuse::WrongRecordMode.into());
        }
        if len > MAX_PLAINTEXT_LEN {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        if !self
            .limits
            .allows(self.send_use.records, self.send_use.bytes, len)
        {
            return Err(LimitReached::AeadUsageLimit.into());
        }
        Ok(())
    }

    #[inline]
    fn noise_after_seal(&mut self, len: usize) {
        self.send_use.add(len);
        if self.policy.due(
            self.send_use.records,
            self.send_use.bytes,
            Duration::ZERO,
            Duration::ZERO,
        ) {
            self.rekey_outgoing();
        }
    }

    #[inline]
    fn noise_before_open(&self, message_len: usize) -> Result<(), Error> {
        if self.akex.is_some() {
            return Err(ApiMisuse::WrongRecordMode.into());
        }
        if message_len > MAX_MESSAGE_LEN {
            return Err(PeerMisbehaved::BadMessageLength.into());
        }
        if !self.limits.allows(
            self.recv_use.records,
            self.recv_use.bytes,
            message_len.saturating_sub(TAG_LEN),
        ) {
            return Err(LimitReached::PeerExceededLimit.into());
        }
        Ok(())
    }

    #[inline]
    fn noise_after_open(&mut self, len: usize) {
        self.recv_use.add(len);
        if self.policy.due(
            self.recv_use.records,
            self.recv_use.bytes,
            Duration::ZERO,
            Duration::ZERO,
        ) {
            self.rekey_incoming();
        }
    }

    /// Noise mode: encrypts the plaintext in `buf` in place and appends the tag.
    pub fn seal_in_place<B>(&mut self, buf: &mut B) -> Result<(), Error>
    where
        B: AsMut<[u8]> + for<'a> Extend<&'a u8>,
    {
        let len = buf.as_mut().len();
        self.noise_before_seal(len)?;
        self.send.encrypt_in_place(&[], buf)?;
        self.noise_after_seal(len);
        Ok(())
    }

    /// Noise mode: decrypts the message in `buf` in place; returns the
    /// plaintext length.
    pub fn open_in_place(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.noise_before_open(buf.len())?;
        let n = self.recv.decrypt_in_place(&[], buf)?;
        self.noise_after_open(n);
        Ok(n)
    }

    /// Encrypts `plaintext` as one message, appending it to `out`: a Noise
    /// transport message in Noise mode, a data record in akex mode. At most
    /// [`Session::max_payload`] bytes.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.akex.is_some() {
            return self.seal_record(RecordType::Data, plaintext, out);
        }
        self.noise_before_seal(plaintext.len())?;
        self.send.encrypt_append(&[], plaintext, out)?;
        self.noise_after_seal(plaintext.len());
        Ok(())
    }

    /// Decrypts one message, appending its application data to `out`, and
    /// says what it was: [`Record::Data`] (always, in Noise mode), or in
    /// akex mode a key update, ratchet step or close the session has
    /// handled (answer with [`Session::poll_control`]).
    pub fn open(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<Record, Error> {
        if self.akex.is_some() {
            return self.open_record(message, out);
        }
        self.noise_before_open(message.len())?;
        let start = out.len();
        self.recv.decrypt_append(&[], message, out)?;
        self.noise_after_open(message.len() - TAG_LEN);
        Ok(Record::Data(out.len() - start))
    }

    /// The CipherState for messages we send (its nonce is the count sent).
    #[cfg(feature = "hazmat")]
    pub fn sending(&self) -> &CipherState {
        &self.send
    }

    /// The CipherState for messages we receive.
    #[cfg(feature = "hazmat")]
    pub fn receiving(&self) -> &CipherState {
        &self.recv
    }

    /// Noise `REKEY()` of the sending key; the peer must rekey its receiving key
    /// at the same point in the message stream. Does nothing in akex mode
    /// (use [`Session::send_key_update`]).
    pub fn rekey_outgoing(&mut self) {
        if self.akex.is_none() {
            self.send.rekey();
            self.send_use = Usage::default();
            self.send_epoch += 1;
        }
    }

    /// Noise `REKEY()` of the receiving key. Does nothing in akex mode.
    pub fn rekey_incoming(&mut self) {
        if self.akex.is_none() {
            self.recv.rekey();
            self.recv_use = Usage::default();
            self.recv_epoch += 1;
        }
    }

    // ---- akex mode -------------------------------------------------------

    fn akex(&self) -> Result<&AkexState, Error> {
        self.akex
            .as_deref()
            .ok_or(Error::ApiMisuse(ApiMisuse::WrongRecordMode))
    }

    fn akex_mut(&mut self) -> Result<&mut AkexState, Error> {
        self.akex
            .as_deref_mut()
            .ok_or(Error::ApiMisuse(ApiMisuse::WrongRecordMode))
    }

    /// True once we sent a close record, received one, or the session failed.
    pub fn is_closed(&self) -> bool {
        self.akex
            .as_deref()
            .is_some_and(|a| a.sent_close || a.received_close || a.failed)
    }

    /// True once a fatal error closed the session (akex mode).
    pub fn has_failed(&self) -> bool {
        self.akex.as_deref().is_some_and(|a| a.failed)
    }

    /// True once we sealed a close record.
    pub fn close_sent(&self) -> bool {
        self.akex.as_deref().is_some_and(|a| a.sent_close)
    }

    /// Largest application payload of one message in this mode.
    pub fn max_payload(&self) -> usize {
        if self.akex.is_some() {
            MAX_RECORD_PAYLOAD
        } else {
            MAX_PLAINTEXT_LEN
        }
    }

    /// True once the peer's authenticated close record arrived.
    pub fn peer_closed(&self) -> bool {
        self.akex.as_deref().is_some_and(|a| a.received_close)
    }

    /// Completed DH ratchet steps.
    pub fn ratchet_count(&self) -> u64 {
        self.akex.as_deref().map_or(0, |a| a.ratchets)
    }

    /// True while a DH ratchet is in progress.
    pub fn ratchet_in_progress(&self) -> bool {
        self.akex
            .as_deref()
            .is_some_and(|a| !matches!(a.ratchet, RatchetState::Idle))
    }

    fn check_can_seal(&self, ty: RecordType, len: usize) -> Result<(), Error> {
        let a = self.akex()?;
        if a.sent_close || a.failed {
            return Err(ApiMisuse::SessionClosed.into());
        }
        if len > MAX_RECORD_PAYLOAD {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        let reserve = if ty == RecordType::Data {
            CONTROL_RESERVE
        } else {
            0
        };
        if !self.limits.allows(
            self.send_use.records.saturating_add(reserve),
            self.send_use.bytes,
            len,
        ) {
            return Err(LimitReached::AeadUsageLimit.into());
        }
        Ok(())
    }

    /// Seals one record of type `ty` (data, key update or close) whose
    /// payload is `buf[1..]`; `buf[0]` is overwritten with the type byte.
    /// Key update and close records must have an empty payload; ratchet
    /// records come from [`Session::start_ratchet`] and
    /// [`Session::poll_control`].
    pub fn seal_record_in_place<B>(&mut self, ty: RecordType, buf: &mut B) -> Result<(), Error>
    where
        B: AsMut<[u8]> + for<'a> Extend<&'a u8>,
    {
        let slice = buf.as_mut();
        let Some(payload_len) = slice.len().checked_sub(1) else {
            return Err(ApiMisuse::RecordNotAllowed.into());
        };
        if ty == RecordType::Ratchet || (ty != RecordType::Data && payload_len != 0) {
            return Err(ApiMisuse::RecordNotAllowed.into());
        }
        self.check_can_seal(ty, payload_len)?;
        slice[0] = ty as u8;
        self.send.encrypt_in_place(&[], buf)?;
        self.after_seal(ty, payload_len);
        Ok(())
    }

    /// Seals one record of type `ty` with `payload`, appending it to `out`
    /// (see [`Session::seal_record_in_place`]).
    pub fn seal_record(
        &mut self,
        ty: RecordType,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if ty == RecordType::Ratchet || (ty != RecordType::Data && !payload.is_empty()) {
            return Err(ApiMisuse::RecordNotAllowed.into());
        }
        self.seal_raw(ty, payload, out)
    }

    fn seal_raw(&mut self, ty: RecordType, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.check_can_seal(ty, payload.len())?;
        let start = out.len();
        out.reserve(1 + payload.len() + TAG_LEN);
        out.push(ty as u8);
        out.extend_from_slice(payload);
        let sealed = self.send.encrypt_in_place(&[], &mut Tail(out, start));
        if sealed.is_err() {
            out.truncate(start);
        }
        sealed?;
        self.after_seal(ty, payload.len());
        Ok(())
    }

    fn after_seal(&mut self, ty: RecordType, len: usize) {
        self.send_use.add(len);
        match ty {
            RecordType::Data => {}
            RecordType::Close => {
                if let Some(a) = self.akex.as_deref_mut() {
                    a.sent_close = true;
                }
            }
            RecordType::KeyUpdate => {
                let a = self.akex.as_deref_mut().expect("akex mode");
                let next = schedule::next_traffic_secret(&a.send_secret);
                self.install_send(next);
            }
            // Ratchet key switches happen in poll_control.
            RecordType::Ratchet => {}
        }
    }

    fn install_send(&mut self, secret: Secret<32>) {
        let a = self.akex.as_deref_mut().expect("akex mode");
        self.send = CipherState::new(self.info.aead, schedule::record_key(&secret).expose());
        let now = a.now;
        a.send_secret = secret; // the old secret drops and is zeroized
        self.send_use = Usage {
            since: now,
            ..Usage::default()
        };
        self.send_epoch += 1;
    }

    fn install_recv(&mut self, secret: Secret<32>) {
        let a = self.akex.as_deref_mut().expect("akex mode");
        self.recv = CipherState::new(self.info.aead, schedule::record_key(&secret).expose());
        let now = a.now;
        a.recv_secret = secret;
        self.recv_use = Usage {
            since: now,
            ..Usage::default()
        };
        self.recv_epoch += 1;
    }

    /// Sends a key update: this record is the last under the current
    /// sending key; the next uses the next epoch's.
    pub fn send_key_update(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.seal_raw(RecordType::KeyUpdate, &[], out)
    }

    /// Sends an authenticated close; no record can be sealed after it.
    pub fn seal_close(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.seal_raw(RecordType::Close, &[], out)
    }

    /// Starts a DH ratchet step (appends the init record to `out`).
    /// Returns `false` and writes nothing if a step is already in progress.
    pub fn start_ratchet(
        &mut self,
        rng: &mut dyn crate::crypto::RandomSource,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        let a = self.akex()?;
        if a.root.is_none() {
            return Err(ApiMisuse::NoRootSecret.into());
        }
        if !matches!(a.ratchet, RatchetState::Idle) {
            return Ok(false);
        }
        let (body, state) = record::start(rng, a.hybrid);
        self.seal_raw(RecordType::Ratchet, &body, out)?;
        self.akex_mut()?.ratchet = state;
        Ok(true)
    }

    /// Seals the next control record due, if any, and returns whether one
    /// was appended to `out`: a ratchet response or finish, a key update
    /// the policy asks for at `now` (time since the session started), or a
    /// ratchet the interval asks for. Call it in a loop before sending data
    /// and after receiving records.
    pub fn poll_control(
        &mut self,
        now: Duration,
        rng: &mut dyn crate::crypto::RandomSource,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        let role = self.info.role;
        let a = self.akex_mut()?;
        if a.sent_close || a.failed {
            return Ok(false);
        }
        a.now = a.now.max(now);
        match std::mem::replace(&mut a.ratchet, RatchetState::Idle) {
            RatchetState::Received { public, kem } => {
                let root = a.root.as_ref().expect("checked when the init arrived");
                let init = record::RatchetMessage {
                    step: record::STEP_INIT,
                    public: &public,
                    kem: &kem,
                };
                let (body, keys) = match record::respond(rng, root, &init, a.hybrid) {
                    Ok(r) => r,
                    Err(e) => {
                        a.failed = true;
                        return Err(e);
                    }
                };
                let (root, send, recv) = record::directional(role, keys);
                a.root = Some(root);
                a.ratchet = RatchetState::Responded { recv };
                self.seal_raw(RecordType::Ratchet, &body, out)?;
                self.install_send(send);
                return Ok(true);
            }
            RatchetState::Finishing { send } => {
                self.seal_raw(RecordType::Ratchet, &[record::STEP_FINISH], out)?;
                self.install_send(send);
                let a = self.akex_mut()?;
                a.ratchets += 1;
                a.last_ratchet = a.now;
                return Ok(true);
            }
            other => a.ratchet = other,
        }
        let now = a.now;
        if self.policy.due(
            self.send_use.records,
            self.send_use.bytes,
            self.send_use.since,
            now,
        ) {
            self.send_key_update(out)?;
            return Ok(true);
        }
        let a = self.akex()?;
        if let (Some(interval), Some(_), RatchetState::Idle) =
            (a.ratchet_interval, &a.root, &a.ratchet)
        {
            if now.saturating_sub(a.last_ratchet) >= interval {
                return self.start_ratchet(rng, out);
            }
        }
        Ok(false)
    }

    /// Opens one akex-mode record in place. On success the plaintext is at
    /// `buf[..n]`: for [`Record::Data`]`(len)` the data is `buf[1..1 + len]`.
    /// Every error is final: the session is closed (a peer must not get a
    /// second try).
    pub fn open_record_in_place(&mut self, buf: &mut [u8]) -> Result<Record, Error> {
        let result = self.open_inner(buf);
        if result.is_err() {
            if let Some(a) = self.akex.as_deref_mut() {
                a.failed = true;
            }
        }
        result
    }

    /// Opens one akex-mode record; data is appended to `out`.
    pub fn open_record(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<Record, Error> {
        let mut buf = message.to_vec();
        let record = self.open_record_in_place(&mut buf)?;
        if let Record::Data(len) = record {
            out.extend_from_slice(&buf[1..1 + len]);
        }
        Ok(record)
    }

    fn open_inner(&mut self, buf: &mut [u8]) -> Result<Record, Error> {
        let a = self.akex()?;
        if a.failed {
            return Err(ApiMisuse::SessionClosed.into());
        }
        if a.received_close {
            return Err(PeerMisbehaved::UnexpectedMessage.into());
        }
        if buf.len() > MAX_MESSAGE_LEN || buf.len() < TAG_LEN + 1 {
            return Err(PeerMisbehaved::BadMessageLength.into());
        }
        if !self.limits.allows(
            self.recv_use.records,
            self.recv_use.bytes,
            buf.len() - TAG_LEN - 1,
        ) {
            return Err(LimitReached::PeerExceededLimit.into());
        }
        let n = self.recv.decrypt_in_place(&[], buf)?;
        let ty = RecordType::from_byte(buf[0])?;
        let body = &buf[1..n];
        self.recv_use.add(body.len());
        self.handle_record(ty, body)
    }

    fn handle_record(&mut self, ty: RecordType, body: &[u8]) -> Result<Record, Error> {
        let role = self.info.role;
        match ty {
            RecordType::Data => Ok(Record::Data(body.len())),
            RecordType::Close => {
                if !body.is_empty() {
                    return Err(PeerMisbehaved::MalformedRecord.into());
                }
                self.akex_mut()?.received_close = true;
                Ok(Record::Close)
            }
            RecordType::KeyUpdate => {
                if !body.is_empty() {
                    return Err(PeerMisbehaved::MalformedRecord.into());
                }
                let next = schedule::next_traffic_secret(&self.akex()?.recv_secret);
                self.install_recv(next);
                Ok(Record::KeyUpdate)
            }
            RecordType::Ratchet => {
                let message = record::parse_ratchet(body)?;
                let a = self.akex_mut()?;
                match message.step {
                    record::STEP_INIT => {
                        if a.root.is_none() {
                            return Err(PeerMisbehaved::UnexpectedMessage.into());
                        }
                        match a.ratchet {
                            // Simultaneous ratchets: the handshake
                            // initiator's step wins; the responder drops its own.
                            RatchetState::Initiated { .. } if role == Role::Initiator => {
                                return Ok(Record::Ratchet)
                            }
                            RatchetState::Initiated { .. } | RatchetState::Idle => {}
                            _ => return Err(PeerMisbehaved::UnexpectedMessage.into()),
                        }
                        check_ratchet_public(message.public)?;
                        if !message.kem.is_empty() {
                            kem::check_encapsulation_key(message.kem)?;
                        } else if a.hybrid {
                            return Err(PeerMisbehaved::MalformedRecord.into());
                        }
                        let mut public = [0u8; 32];
                        public.copy_from_slice(message.public);
                        a.ratchet = RatchetState::Received {
                            public,
                            kem: message.kem.to_vec(),
                        };
                        Ok(Record::Ratchet)
                    }
                    record::STEP_RESPONSE => {
                        let RatchetState::Initiated { private, kem } =
                            std::mem::replace(&mut a.ratchet, RatchetState::Idle)
                        else {
                            return Err(PeerMisbehaved::UnexpectedMessage.into());
                        };
                        let root = a.root.as_ref().expect("initiated only with a root");
                        let keys = record::complete(root, &private, kem.as_deref(), &message)?;
                        let (root, send, recv) = record::directional(role, keys);
                        a.root = Some(root);
                        a.ratchet = RatchetState::Finishing { send };
                        self.install_recv(recv);
                        Ok(Record::Ratchet)
                    }
                    _ => {
                        let RatchetState::Responded { recv } =
                            std::mem::replace(&mut a.ratchet, RatchetState::Idle)
                        else {
                            return Err(PeerMisbehaved::UnexpectedMessage.into());
                        };
                        a.ratchets += 1;
                        a.last_ratchet = a.now;
                        self.install_recv(recv);
                        Ok(Record::Ratchet)
                    }
                }
            }
        }
    }
}

/// The tail of a `Vec` from `.1` on, for sealing in place after a header
/// without copying.
pub(crate) struct Tail<'a>(pub(crate) &'a mut Vec<u8>, pub(crate) usize);

impl AsMut<[u8]> for Tail<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0[self.1..]
    }
}

impl<'b> Extend<&'b u8> for Tail<'_> {
    fn extend<I: IntoIterator<Item = &'b u8>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

/// Rejects a ratchet public key that is a low-order point, without any
/// secret: the X25519 output of a low-order point is all zeros for every
/// (clamped) scalar, so a fixed public scalar detects it.
pub(crate) fn check_ratchet_public(public: &[u8]) -> Result<(), Error> {
    use std::sync::OnceLock;
    static PROBE: OnceLock<X25519Private> = OnceLock::new();
    PROBE
        .get_or_init(|| X25519Private::new(&Secret::new([0x5a; 32])))
        .agree(public)
        .map(|_| ())
}
