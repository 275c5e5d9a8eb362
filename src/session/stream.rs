//! [`Session`]: the session over a reliable, ordered stream, in Noise mode
//! or akex mode.

use std::time::Duration;

use super::epoch::{Epoch, TrafficKey, Usage};
use super::ratchet::{Ratchet, RatchetSetup, Switch};
use super::record::{self, ControlType, Record, RecordType, CONTROL_HEADER_LEN};
use super::{
    check_limits, session_info, AeadLimits, CipherState, RecordMode, RekeyPolicy, SessionConfig,
    SessionInfo, Tail, CONTROL_RESERVE, MAX_PLAINTEXT_LEN, MAX_RECORD_PAYLOAD,
};
use crate::crypto::{RandomSource, TAG_LEN};
use crate::error::{ApiMisuse, ConfigError, Error, LimitReached, PeerMisbehaved};
use crate::handshake::{Established, MAX_MESSAGE_LEN};

/// akex-mode state: the secrets keys are derived from, the ratchet, close.
struct AkexState {
    send: TrafficKey,
    recv: TrafficKey,
    ratchet: Ratchet,
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
        let info = session_info(&established);
        let send_secret = established.sending_secret().secret().clone();
        let recv_secret = established.receiving_secret().secret().clone();
        let (send, recv, akex) = if noise {
            // Noise mode: the CipherState key is the Split() output itself,
            // exactly as the Noise spec (and every other implementation)
            // has it.
            (
                CipherState::new(aead, send_secret.expose()),
                CipherState::new(aead, recv_secret.expose()),
                None,
            )
        } else {
            let send = TrafficKey::new(send_secret, Epoch::default());
            let recv = TrafficKey::new(recv_secret, Epoch::default());
            let ratchet = Ratchet::new(RatchetSetup {
                root: established.root_secret().map(|r| r.secret().clone()),
                role: info.role,
                hybrid: config.hybrid_ratchet,
                auth: established.ratchet_auth.clone(),
                handshake_hash: info.handshake_hash.clone(),
                interval: config.ratchet_interval,
                datagram: false,
            });
            (
                CipherState::new(aead, send.record_key().expose()),
                CipherState::new(aead, recv.record_key().expose()),
                Some(Box::new(AkexState {
                    send,
                    recv,
                    ratchet,
                    now: Duration::ZERO,
                    sent_close: false,
                    received_close: false,
                    failed: false,
                })),
            )
        };
        // `established` drops here and zeroizes its copies of the secrets.
        Ok(Session {
            info,
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
        if self.send_use.update_due(&self.policy, Duration::ZERO) {
            self.rekey_outgoing();
        }
    }

    #[inline]
    fn noise_before_open(&self, message_len: usize) -> Result<(), Error> {
        if self.akex.is_some() {
            return Err(ApiMisuse::WrongRecordMode.into());
        }
        if !(TAG_LEN..=MAX_MESSAGE_LEN).contains(&message_len) {
            return Err(PeerMisbehaved::BadMessageLength.into());
        }
        if !self.limits.allows(
            self.recv_use.records,
            self.recv_use.bytes,
            message_len - TAG_LEN,
        ) {
            return Err(LimitReached::PeerExceededLimit.into());
        }
        Ok(())
    }

    #[inline]
    fn noise_after_open(&mut self, len: usize) {
        self.recv_use.add(len);
        if self.recv_use.update_due(&self.policy, Duration::ZERO) {
            self.rekey_incoming();
        }
    }

    /// Encrypts `plaintext` (at most [`MAX_PLAINTEXT_LEN`] bytes), appending
    /// ciphertext and tag to `out`. In akex mode this seals a data record.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.akex.is_some() {
            return self.seal_record(RecordType::Data, plaintext, out);
        }
        self.noise_before_seal(plaintext.len())?;
        self.send.encrypt_append(&[], plaintext, out)?;
        self.noise_after_seal(plaintext.len());
        Ok(())
    }

    /// Noise mode: encrypts `buf` in place and appends the tag.
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

    /// Noise mode: decrypts `buf` (ciphertext and tag) in place and returns
    /// the plaintext length.
    pub fn open_in_place(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.noise_before_open(buf.len())?;
        let n = self.recv.decrypt_in_place(&[], buf)?;
        self.noise_after_open(n);
        Ok(n)
    }

    /// Decrypts one message, appending its application data to `out`, and
    /// says what it was: [`Record::Data`] (always, in Noise mode), or in
    /// akex mode a key update, ratchet step, close or control record the
    /// session has handled (answer with [`Session::poll_control`]). Only
    /// data is ever appended here (a control payload too only with
    /// [`Session::open_record`]).
    pub fn open(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<Record, Error> {
        if self.akex.is_some() {
            let mut buf = message.to_vec();
            let record = self.open_record_in_place(&mut buf)?;
            if let Record::Data(len) = record {
                out.extend_from_slice(&buf[1..1 + len]);
            }
            return Ok(record);
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
        self.akex
            .as_deref()
            .map_or(0, |a| u64::from(a.ratchet.generation()))
    }

    /// True while a DH ratchet is in progress.
    pub fn ratchet_in_progress(&self) -> bool {
        self.akex
            .as_deref()
            .is_some_and(|a| a.ratchet.in_progress())
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
    /// [`Session::poll_control`], control records from
    /// [`Session::seal_control`].
    pub fn seal_record_in_place<B>(&mut self, ty: RecordType, buf: &mut B) -> Result<(), Error>
    where
        B: AsMut<[u8]> + for<'a> Extend<&'a u8>,
    {
        let slice = buf.as_mut();
        let Some(payload_len) = slice.len().checked_sub(1) else {
            return Err(ApiMisuse::RecordNotAllowed.into());
        };
        check_sealable(ty, payload_len)?;
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
        check_sealable(ty, payload.len())?;
        self.seal_raw(ty, &[payload], out)
    }

    /// Seals a control record: `type (u16 BE) ‖ payload`. The peer's
    /// session reports it as [`Record::Control`], never as data.
    pub fn seal_control(
        &mut self,
        ty: ControlType,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.seal_raw(
            RecordType::Control,
            &[&ty.code().to_be_bytes(), payload],
            out,
        )
    }

    fn seal_raw(
        &mut self,
        ty: RecordType,
        parts: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let len = parts.iter().map(|p| p.len()).sum();
        self.check_can_seal(ty, len)?;
        let start = out.len();
        out.reserve(1 + len + TAG_LEN);
        out.push(ty as u8);
        for part in parts {
            out.extend_from_slice(part);
        }
        let sealed = self.send.encrypt_in_place(&[], &mut Tail(out, start));
        if sealed.is_err() {
            out.truncate(start);
        }
        sealed?;
        self.after_seal(ty, len);
        Ok(())
    }

    fn after_seal(&mut self, ty: RecordType, len: usize) {
        self.send_use.add(len);
        let a = self.akex.as_deref_mut().expect("akex mode");
        match ty {
            RecordType::Close => a.sent_close = true,
            RecordType::KeyUpdate => {
                let next = a.send.next_update();
                self.install_send(next);
            }
            // Ratchet key switches happen in poll_control.
            _ => {}
        }
    }

    fn install_send(&mut self, key: TrafficKey) {
        let a = self.akex.as_deref_mut().expect("akex mode");
        self.send = CipherState::new(self.info.aead, key.record_key().expose());
        a.send = key; // the old secret drops and is zeroized
        self.send_use = Usage::starting(a.now);
        self.send_epoch += 1;
    }

    fn install_recv(&mut self, key: TrafficKey) {
        let a = self.akex.as_deref_mut().expect("akex mode");
        self.recv = CipherState::new(self.info.aead, key.record_key().expose());
        a.recv = key;
        self.recv_use = Usage::starting(a.now);
        self.recv_epoch += 1;
    }

    /// Sends a key update: this record is the last under the current
    /// sending key; the next uses the next epoch's.
    pub fn send_key_update(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.seal_raw(RecordType::KeyUpdate, &[], out)
    }

    /// Sends an authenticated close: the end of our direction. No record
    /// can be sealed after it; the peer may still send until its own close.
    pub fn seal_close(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.seal_raw(RecordType::Close, &[], out)
    }

    /// Starts a DH ratchet step (appends the init record to `out`).
    /// Returns `false` and writes nothing if a step is already in progress.
    pub fn start_ratchet(
        &mut self,
        rng: &mut dyn RandomSource,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        let a = self.akex_mut()?;
        if a.sent_close || a.failed {
            return Err(ApiMisuse::SessionClosed.into());
        }
        let now = a.now;
        match a.ratchet.start(rng, now)? {
            Some(body) => {
                self.seal_raw(RecordType::Ratchet, &[&body], out)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Seals the next control record due, if any, and returns whether one
    /// was appended to `out`: a ratchet response or finish, a key update
    /// the policy asks for at `now` (time since the session started), or a
    /// ratchet the interval asks for. Call it in a loop before sending data
    /// and after receiving records.
    pub fn poll_control(
        &mut self,
        now: Duration,
        rng: &mut dyn RandomSource,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        let a = self.akex_mut()?;
        if a.sent_close || a.failed {
            return Ok(false);
        }
        a.now = a.now.max(now);
        let now = a.now;
        // Steps in progress first; a step the interval asks for last.
        let due = if a.ratchet.in_progress() {
            a.ratchet.poll(rng, now)
        } else {
            Ok(Switch::default())
        };
        let switch = match due {
            Ok(s) => s,
            Err(e) => {
                a.failed = true;
                return Err(e);
            }
        };
        if self.apply(switch, out)? {
            return Ok(true);
        }
        if self.send_use.update_due(&self.policy, now) {
            self.send_key_update(out)?;
            return Ok(true);
        }
        let a = self.akex_mut()?;
        let switch = a.ratchet.poll(rng, now)?;
        self.apply(switch, out)
    }

    /// Seals what a ratchet event emits and installs the keys it switches
    /// to. Returns whether a record was sealed.
    fn apply(&mut self, switch: Switch, out: &mut Vec<u8>) -> Result<bool, Error> {
        let Switch { emit, send, recv } = switch;
        let generation = self.akex()?.ratchet.generation();
        if let Some(recv) = recv {
            self.install_recv(TrafficKey::new(
                recv,
                Epoch {
                    generation,
                    update: 0,
                },
            ));
        }
        let sealed = match emit {
            Some(body) => {
                self.seal_raw(RecordType::Ratchet, &[&body], out)?;
                true
            }
            None => false,
        };
        if let Some(send) = send {
            self.install_send(TrafficKey::new(
                send,
                Epoch {
                    generation,
                    update: 0,
                },
            ));
        }
        Ok(sealed)
    }

    /// Opens one akex-mode record in place. On success the plaintext is at
    /// `buf[..n]`: for [`Record::Data`]`(len)` the data is `buf[1..1 + len]`,
    /// for [`Record::Control`]`(_, len)` the payload is `buf[3..3 + len]`.
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

    /// Opens one akex-mode record; the payload of a data or control record
    /// is appended to `out` (tell them apart by the [`Record`]).
    pub fn open_record(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<Record, Error> {
        let mut buf = message.to_vec();
        let record = self.open_record_in_place(&mut buf)?;
        match record {
            Record::Data(len) => out.extend_from_slice(&buf[1..1 + len]),
            Record::Control(_, len) => {
                let start = 1 + CONTROL_HEADER_LEN;
                out.extend_from_slice(&buf[start..start + len]);
            }
            _ => {}
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
        match ty {
            RecordType::Data => Ok(Record::Data(body.len())),
            RecordType::Control => {
                let (ty, payload) = record::parse_control(body)?;
                Ok(Record::Control(ty, payload.len()))
            }
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
                let next = self.akex()?.recv.next_update();
                self.install_recv(next);
                Ok(Record::KeyUpdate)
            }
            RecordType::Ratchet => {
                let a = self.akex_mut()?;
                let now = a.now;
                let switch = a.ratchet.receive(body, now)?;
                self.apply(switch, &mut Vec::new())?;
                Ok(Record::Ratchet)
            }
        }
    }
}

/// Which record types the caller may seal directly, and with what body.
fn check_sealable(ty: RecordType, payload_len: usize) -> Result<(), Error> {
    match ty {
        RecordType::Data => Ok(()),
        RecordType::KeyUpdate | RecordType::Close if payload_len == 0 => Ok(()),
        _ => Err(ApiMisuse::RecordNotAllowed.into()),
    }
}
