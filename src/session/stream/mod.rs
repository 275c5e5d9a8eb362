//! [`Session`]: the session over a reliable, ordered stream, in Noise mode
//! or akex mode (the akex-mode records are in `akex.rs`).

mod akex;

use std::time::Duration;

use super::epoch::{Epoch, TrafficKey, Usage};
use super::ratchet::{Ratchet, RatchetSetup};
use super::record::{Record, RecordType};
use super::{
    check_limits, session_info, AeadLimits, CipherState, RecordMode, RekeyPolicy, SessionConfig,
    SessionInfo, MAX_PLAINTEXT_LEN,
};
use crate::crypto::TAG_LEN;
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
}
