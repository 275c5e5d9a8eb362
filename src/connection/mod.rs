//! A sans-IO connection: bytes from any byte stream in, bytes to write out,
//! plaintext to and from the application. Framing, handshake and records
//! in one state machine, shaped like rustls's `Connection`, so a blocking
//! `std::net::TcpStream`, smol, an embedded runtime or the tokio driver in
//! in `akex::transport` (feature `tokio`) need no framing code of their own.
//!
//! ```text
//!   wire bytes ──read_wire / read_from──▶ ┌────────────┐ ──recv / next_message──▶ application
//!                                         │ Connection │
//!   wire bytes ◀─wire_output / write_to── └────────────┘ ◀──────send──────────── application
//! ```
//!
//! Every message on the wire is a 2-byte big-endian length and that many
//! bytes (`docs/wire-format.md`). The record mode follows the protocol
//! ([`RecordMode::for_protocol`]): Noise transport messages for `Noise_*`
//! names, typed akex records (with key updates, ratchet steps and an
//! authenticated close handled here) otherwise.
//!
//! The first error is final: every later call fails with
//! [`ApiMisuse::StreamFailed`], so a peer never gets a second try.

mod engine;
mod inbound;
mod outbound;

#[cfg(feature = "hazmat")]
pub use inbound::FrameDecoder;

use std::io;
use std::time::Duration;

use crate::config::{ClientConfig, ServerConfig};
use crate::crypto::SharedRng;
use crate::error::{ApiMisuse, ConfigError, Error, PeerMisbehaved};
use crate::handshake::{Handshake, Role, MAX_MESSAGE_LEN};
use crate::session::{ControlType, RecordMode, Session, SessionInfo};
use inbound::Inbound;
use outbound::{frame_with, queue_control, seal_akex, seal_noise};

/// Processing stops while this much decrypted data waits for the
/// application (the peer is slowed down by TCP flow control instead).
const PLAINTEXT_BACKLOG: usize = 256 * 1024;

/// Control messages kept for the application at most; when more arrive
/// unread, the oldest is dropped (and counted).
pub const MAX_PENDING_CONTROLS: usize = 8;

/// A control message from the peer: a typed record for the layers above
/// the session (a key rotation announcement, ...), never application data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ControlMessage {
    /// What it is.
    pub ty: ControlType,
    /// Its payload.
    pub payload: Vec<u8>,
}

enum State {
    Handshaking(Box<dyn Handshake>),
    Open(Box<Session>),
    Failed,
}

/// One end of an akex connection, without I/O. See the module docs.
pub struct Connection {
    role: Role,
    state: State,
    inbound: Inbound,
    tx: Vec<u8>,
    tx_sent: usize,
    payloads_out: std::collections::VecDeque<Vec<u8>>,
    payloads_in: Vec<Vec<u8>>,
    controls_in: std::collections::VecDeque<ControlMessage>,
    dropped_controls: u64,
    info: Option<SessionInfo>,
    peer_closed: bool,
    /// A frame from the peer has been processed (an empty first frame to
    /// an initiator is the server's "busy" answer).
    heard_from_peer: bool,
    /// The error that ended the connection, held back while decrypted
    /// data that arrived before it waits to be read.
    pending_error: Option<Error>,
    now: Duration,
    rng: SharedRng,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("handshaking", &self.is_handshaking())
            .field("info", &self.info)
            .field("pending_out", &self.wire_output().len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The initiator for `config`; its first handshake message is ready in
    /// [`Connection::wire_output`] at once.
    pub fn client(config: &ClientConfig) -> Result<Self, Error> {
        let mut conn = Self::new(config.new_handshake()?)?;
        conn.payloads_out = config.handshake_payloads().iter().cloned().collect();
        conn.advance_handshake()?;
        Ok(conn)
    }

    /// The responder for `config`.
    pub fn server(config: &ServerConfig) -> Result<Self, Error> {
        let mut conn = Self::new(config.new_handshake()?)?;
        conn.payloads_out = config.handshake_payloads().iter().cloned().collect();
        Ok(conn)
    }

    /// A connection around any handshake (for protocols built outside the
    /// registry). Initiators write their first message at once.
    pub fn with_handshake(handshake: Box<dyn Handshake>) -> Result<Self, Error> {
        let mut conn = Self::new(handshake)?;
        conn.advance_handshake()?;
        Ok(conn)
    }

    fn new(handshake: Box<dyn Handshake>) -> Result<Self, Error> {
        if handshake.is_finished() {
            return Err(ConfigError::Invalid("the handshake has already run".into()).into());
        }
        Ok(Connection {
            role: handshake.role(),
            state: State::Handshaking(handshake),
            inbound: Inbound::new(MAX_MESSAGE_LEN),
            tx: Vec::new(),
            tx_sent: 0,
            payloads_out: Default::default(),
            payloads_in: Vec::new(),
            controls_in: Default::default(),
            dropped_controls: 0,
            info: None,
            peer_closed: false,
            heard_from_peer: false,
            pending_error: None,
            now: Duration::ZERO,
            rng: SharedRng::os(),
        })
    }

    /// A connection for a session that already exists (its handshake ran
    /// elsewhere).
    pub fn from_session(session: Session) -> Self {
        Connection {
            role: session.info().role,
            info: Some(session.info().clone()),
            state: State::Open(Box::new(session)),
            inbound: Inbound::new(MAX_MESSAGE_LEN),
            tx: Vec::new(),
            tx_sent: 0,
            payloads_out: Default::default(),
            payloads_in: Vec::new(),
            controls_in: Default::default(),
            dropped_controls: 0,
            peer_closed: false,
            heard_from_peer: true,
            pending_error: None,
            now: Duration::ZERO,
            rng: SharedRng::os(),
        }
    }

    /// Refuses frames longer than `max` bytes (at most 65535, the default)
    /// as soon as their length header arrives.
    pub fn set_max_frame_len(&mut self, max: usize) {
        self.inbound
            .set_max_frame_len(max.clamp(1, MAX_MESSAGE_LEN));
    }

    /// Tells the connection the time, as a duration since it started (akex
    /// mode's rekey policy counts time; nothing reads a clock here).
    pub fn set_time(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True until the handshake has finished.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshaking(_))
    }

    /// True once an error ended the connection.
    pub fn has_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// The handshake's public facts, once it has finished.
    pub fn session_info(&self) -> Option<&SessionInfo> {
        self.info.as_ref()
    }

    /// The session, once the handshake has finished.
    pub fn session(&self) -> Option<&Session> {
        match &self.state {
            State::Open(s) => Some(s),
            _ => None,
        }
    }

    /// The payloads the peer put in its handshake messages, one per message
    /// received (empty for messages without one).
    pub fn handshake_payloads(&self) -> &[Vec<u8>] {
        &self.payloads_in
    }

    /// True once the peer's authenticated close arrived (akex mode), or the
    /// stream ended cleanly in Noise mode ([`Connection::read_eof`]).
    pub fn is_peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The largest plaintext one record carries in this connection's mode
    /// (before the handshake: the smaller, akex-mode one).
    pub fn max_record_payload(&self) -> usize {
        match &self.state {
            State::Open(s) => s.max_payload(),
            _ => crate::session::MAX_RECORD_PAYLOAD,
        }
    }

    // ---- the wire side --------------------------------------------------

    /// Takes bytes received from the peer and processes every whole frame
    /// in them: handshake messages (answers are queued for
    /// [`Connection::wire_output`]) and records (their plaintext becomes
    /// readable with [`Connection::recv`]).
    pub fn read_wire(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.check_usable()?;
        self.inbound.extend(bytes);
        self.process()
    }

    /// Reads once from `source` into the connection and processes what
    /// arrived. Returns the number of bytes read; 0 means the stream ended,
    /// which is checked like [`Connection::read_eof`].
    pub fn read_from(&mut self, source: &mut dyn io::Read) -> Result<usize, Error> {
        self.check_usable()?;
        let n = loop {
            match source.read(self.inbound.spare(4096)) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            }
        };
        if n == 0 {
            self.read_eof()?;
            return Ok(0);
        }
        self.inbound.commit(n);
        self.process()?;
        Ok(n)
    }

    /// Room to read wire bytes into (at least `min` bytes, more when a
    /// large frame is expected); report what was filled with
    /// [`Connection::commit_read`]. For drivers that read into the
    /// connection's own buffer, without a copy.
    pub fn read_buffer(&mut self, min: usize) -> &mut [u8] {
        self.inbound.spare(min)
    }

    /// Processes `n` bytes written into [`Connection::read_buffer`].
    pub fn commit_read(&mut self, n: usize) -> Result<(), Error> {
        self.check_usable()?;
        self.inbound.commit(n);
        self.process()
    }

    /// The byte stream ended. Fine after the peer's authenticated close, or
    /// in Noise mode between frames (Noise has no authenticated close: a
    /// truncation there cannot be told from an end); otherwise an error:
    /// [`PeerMisbehaved::ClosedDuringHandshake`],
    /// [`PeerMisbehaved::TruncatedFrame`] or
    /// [`PeerMisbehaved::UnauthenticatedEof`].
    pub fn read_eof(&mut self) -> Result<(), Error> {
        if self.peer_closed {
            return Ok(());
        }
        self.check_usable()?;
        let err: Error = if self.inbound.has_partial_frame() {
            PeerMisbehaved::TruncatedFrame.into()
        } else if self.is_handshaking() {
            PeerMisbehaved::ClosedDuringHandshake.into()
        } else if self.info.as_ref().map(|i| i.mode) == Some(RecordMode::Noise) {
            self.peer_closed = true;
            return Ok(());
        } else {
            PeerMisbehaved::UnauthenticatedEof.into()
        };
        Err(self.fail(err))
    }

    /// True when bytes wait to be written to the peer.
    pub fn wants_write(&self) -> bool {
        self.tx_sent < self.tx.len()
    }

    /// The bytes waiting to be written to the peer; mark what was written
    /// with [`Connection::consume_wire_output`].
    pub fn wire_output(&self) -> &[u8] {
        &self.tx[self.tx_sent..]
    }

    /// `n` bytes of [`Connection::wire_output`] were written.
    pub fn consume_wire_output(&mut self, n: usize) {
        self.tx_sent = (self.tx_sent + n).min(self.tx.len());
        if self.tx_sent == self.tx.len() {
            self.tx.clear();
            self.tx_sent = 0;
        }
    }

    /// Writes pending wire bytes to `sink` once; returns how many were
    /// written.
    pub fn write_to(&mut self, sink: &mut dyn io::Write) -> io::Result<usize> {
        if !self.wants_write() {
            return Ok(0);
        }
        let n = sink.write(self.wire_output())?;
        self.consume_wire_output(n);
        Ok(n)
    }

    /// Frees the buffers that hold nothing, so an idle connection holds no
    /// buffer memory (they grow again on demand).
    pub fn release_idle_buffers(&mut self) {
        if !self.wants_write() {
            self.tx = Vec::new();
            self.tx_sent = 0;
        }
        self.inbound.release_if_empty();
    }

    // ---- the application side -------------------------------------------

    /// Encrypts `data` into records (at most [`Connection::max_record_payload`]
    /// bytes each) queued for the wire; in akex mode, key updates and
    /// ratchet steps the session has due go first. Fails before the
    /// handshake has finished, after our close, or after any error.
    pub fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        let max = self.max_record_payload();
        if data.is_empty() {
            return self.send_message(data);
        }
        for chunk in data.chunks(max) {
            self.send_message(chunk)?;
        }
        Ok(())
    }

    /// Encrypts `message` as exactly one record (the peer's
    /// [`Connection::next_message`] gets it whole). Fails with
    /// [`ApiMisuse::MessageTooLarge`] above
    /// [`Connection::max_record_payload`].
    pub fn send_message(&mut self, message: &[u8]) -> Result<(), Error> {
        self.check_usable()?;
        let State::Open(session) = &mut self.state else {
            return Err(ApiMisuse::HandshakeNotFinished.into());
        };
        if message.len() > session.max_payload() {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        let result = match session.info().mode {
            RecordMode::Noise => seal_noise(session, &mut self.tx, message),
            _ => queue_control(session, self.now, &mut self.rng, &mut self.tx)
                .and_then(|()| seal_akex(session, &mut self.tx, message)),
        };
        result.map_err(|e| self.fail_sealing(e))
    }

    /// Queues a control message for the peer's application (akex mode): a
    /// record of its own type, which the peer's [`Connection`] hands out
    /// through [`Connection::take_control`] and never as data. Fails with
    /// [`ApiMisuse::WrongRecordMode`] in Noise mode (Noise transport
    /// messages have no record types), and like [`Connection::send`]
    /// otherwise.
    pub fn send_control(&mut self, ty: ControlType, payload: &[u8]) -> Result<(), Error> {
        self.check_usable()?;
        let State::Open(session) = &mut self.state else {
            return Err(ApiMisuse::HandshakeNotFinished.into());
        };
        if session.info().mode == RecordMode::Noise {
            return Err(ApiMisuse::WrongRecordMode.into());
        }
        let result = queue_control(session, self.now, &mut self.rng, &mut self.tx)
            .and_then(|()| frame_with(&mut self.tx, |out| session.seal_control(ty, payload, out)));
        result.map_err(|e| self.fail_sealing(e))
    }

    /// The oldest control message the peer sent that the application has
    /// not taken yet. At most [`MAX_PENDING_CONTROLS`] wait; older ones are
    /// dropped ([`Connection::dropped_controls`]).
    pub fn take_control(&mut self) -> Option<ControlMessage> {
        self.controls_in.pop_front()
    }

    /// Control messages dropped because the application did not take them.
    pub fn dropped_controls(&self) -> u64 {
        self.dropped_controls
    }

    /// Queues the authenticated close (akex mode): the peer learns our
    /// direction ended here and was not cut. Nothing can be sent after it;
    /// the peer may still send until its own close. In Noise mode there is
    /// no close record and this does nothing.
    pub fn close(&mut self) -> Result<(), Error> {
        self.check_usable()?;
        let State::Open(session) = &mut self.state else {
            return Err(ApiMisuse::HandshakeNotFinished.into());
        };
        if session.info().mode == RecordMode::Noise || session.close_sent() {
            return Ok(());
        }
        let result = frame_with(&mut self.tx, |out| session.seal_close(out));
        result.map_err(|e| self.fail_sealing(e))
    }

    /// Decrypted bytes waiting to be read.
    pub fn plaintext_len(&self) -> usize {
        self.inbound.plaintext_len()
    }

    /// Copies decrypted bytes into `buf`; returns how many (0 when none
    /// wait: see [`Connection::is_peer_closed`] for the end of the stream).
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let n = self.inbound.read_plaintext(buf);
        self.resume()?;
        Ok(n)
    }

    /// The next whole message (one record's plaintext), without copying;
    /// drop it with [`Connection::consume_message`].
    pub fn next_message(&self) -> Option<&[u8]> {
        self.inbound.front_message()
    }

    /// Drops the message [`Connection::next_message`] returned.
    pub fn consume_message(&mut self) -> Result<(), Error> {
        self.inbound.pop_message();
        self.resume()
    }

    /// `Ok` while the connection is usable. After a failure: the error
    /// that ended it (once, after every byte decrypted before it was
    /// read), then [`ApiMisuse::StreamFailed`].
    pub fn check_usable(&mut self) -> Result<(), Error> {
        match self.state {
            State::Failed => Err(self
                .pending_error
                .take()
                .unwrap_or(ApiMisuse::StreamFailed.into())),
            _ => Ok(()),
        }
    }
}
