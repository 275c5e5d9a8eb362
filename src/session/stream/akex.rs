//! [`Session`] in akex mode: typed records, key updates, the DH ratchet,
//! control records and close.

use std::time::Duration;

use super::{AkexState, Session};
use crate::crypto::{RandomSource, TAG_LEN};
use crate::error::{ApiMisuse, Error, LimitReached, PeerMisbehaved};
use crate::handshake::MAX_MESSAGE_LEN;
use crate::session::epoch::{Epoch, TrafficKey, Usage};
use crate::session::ratchet::Switch;
use crate::session::record::{self, ControlType, Record, RecordType, CONTROL_HEADER_LEN};
use crate::session::{CipherState, Tail, CONTROL_RESERVE, MAX_PLAINTEXT_LEN, MAX_RECORD_PAYLOAD};

impl Session {
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
