//! Whole encrypted messages as a `Sink<Bytes>` and a `Stream` of plaintexts.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use super::codec::FrameCodec;
use crate::crypto::OsRng;
use crate::error::{ApiMisuse, Error, PeerMisbehaved};
use crate::session::{Record, RecordMode, RecordType, Session, SessionInfo, MAX_PLAINTEXT_LEN};

/// An established session over a framed stream, one plaintext message per
/// frame. Each item sent must be at most [`MAX_PLAINTEXT_LEN`] bytes
/// ([`crate::session::MAX_RECORD_PAYLOAD`] in akex mode).
///
/// In akex mode (a [`Session`] made with [`crate::session::RecordMode::Akex`])
/// each frame is a typed record: key updates and ratchet steps the policy
/// asks for are sent before data, the peer's are answered while reading,
/// closing sends an authenticated close record, and the end of the stream
/// without the peer's close is an error
/// ([`PeerMisbehaved::UnauthenticatedEof`]).
pub struct SecureFramed<IO> {
    framed: Framed<IO, FrameCodec>,
    session: Session,
    /// Plaintext already decrypted but not yet handed out (from a
    /// [`super::SecureStream`] that was converted mid-message).
    pending: Option<BytesMut>,
    handshake_payloads: Vec<Vec<u8>>,
    /// Set by the first read error; every later read fails too.
    read_failed: bool,
    /// akex mode: when the session started (the rekey policy's clock).
    start: Instant,
    /// akex mode: control records were queued from the read side and not
    /// yet flushed.
    control_unflushed: bool,
}

impl<IO> std::fmt::Debug for SecureFramed<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureFramed")
            .field("session", self.session.info())
            .finish_non_exhaustive()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> SecureFramed<IO> {
    pub(crate) fn new(
        framed: Framed<IO, FrameCodec>,
        session: Session,
        handshake_payloads: Vec<Vec<u8>>,
    ) -> Self {
        let mut framed = framed;
        release_empty_buffers(&mut framed);
        SecureFramed {
            framed,
            session,
            pending: None,
            handshake_payloads,
            read_failed: false,
            start: Instant::now(),
            control_unflushed: false,
        }
    }

    /// Largest plaintext of one message (one byte less in akex mode).
    pub fn max_payload(&self) -> usize {
        self.session.max_payload()
    }

    /// The payloads the peer put in its handshake messages (see
    /// [`super::SecureStream::handshake_payloads`]).
    pub fn handshake_payloads(&self) -> &[Vec<u8>] {
        &self.handshake_payloads
    }

    pub(crate) fn with_pending(mut self, pending: BytesMut) -> Self {
        if !pending.is_empty() {
            self.pending = Some(pending);
        }
        self
    }

    /// The handshake's public facts: protocol, peer key, handshake hash.
    pub fn session_info(&self) -> &SessionInfo {
        self.session.info()
    }

    /// The session's keys and counters.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The underlying I/O object (e.g. to read the peer address).
    pub fn get_ref(&self) -> &IO {
        self.framed.get_ref()
    }

    /// Waits until a message can be queued.
    pub(crate) fn poll_ready_to_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Sink::<Bytes>::poll_ready(Pin::new(&mut self.framed), cx)
    }

    /// Encrypts `plaintext` straight into the write buffer (one copy).
    /// Call after `poll_ready_to_write` returned ready.
    pub(crate) fn queue_sealed(&mut self, plaintext: &[u8]) -> Result<(), Error> {
        if self.session.mode() == RecordMode::Akex {
            return self.queue_record(plaintext);
        }
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        let sealed_len = plaintext.len() + crate::crypto::TAG_LEN;
        let buf = self.framed.write_buffer_mut();
        let start = buf.len();
        buf.reserve(2 + sealed_len);
        // sealed_len <= 65535 by the check above.
        buf.put_u16(sealed_len as u16);
        buf.extend_from_slice(plaintext);
        let mut body = buf.split_off(start + 2);
        let sealed = self.session.seal_in_place(&mut body);
        buf.unsplit(body);
        if sealed.is_err() {
            buf.truncate(start);
        }
        sealed
    }

    /// akex mode: queues every control record the session has due (key
    /// updates, ratchet steps and answers) as frames.
    fn queue_control(&mut self) -> Result<bool, Error> {
        let now = self.start.elapsed();
        let mut queued = false;
        loop {
            let mut out = Vec::new();
            if !self.session.poll_control(now, &mut OsRng, &mut out)? {
                return Ok(queued);
            }
            let buf = self.framed.write_buffer_mut();
            // Control records are far below 65535 bytes.
            buf.put_u16(out.len() as u16);
            buf.extend_from_slice(&out);
            queued = true;
        }
    }

    /// akex mode: control records due, then one data record, straight into
    /// the write buffer.
    fn queue_record(&mut self, plaintext: &[u8]) -> Result<(), Error> {
        if plaintext.len() > self.session.max_payload() {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        self.queue_control()?;
        let sealed_len = 1 + plaintext.len() + crate::crypto::TAG_LEN;
        let buf = self.framed.write_buffer_mut();
        let start = buf.len();
        buf.reserve(2 + sealed_len);
        // sealed_len <= 65535 by the check above.
        buf.put_u16(sealed_len as u16);
        buf.put_u8(0); // the record type, set by the session
        buf.extend_from_slice(plaintext);
        let mut body = buf.split_off(start + 2);
        let sealed = self
            .session
            .seal_record_in_place(RecordType::Data, &mut body);
        buf.unsplit(body);
        if sealed.is_err() {
            buf.truncate(start);
        }
        sealed
    }

    pub(crate) fn poll_flush_frames(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let flushed = ready!(Sink::<Bytes>::poll_flush(Pin::new(&mut self.framed), cx));
        if flushed.is_ok() {
            // Everything written: do not hold the write buffer while idle.
            release_empty_write_buffer(&mut self.framed);
        }
        Poll::Ready(flushed)
    }

    /// Polls the framed stream for the next frame; when no whole frame is
    /// there and no partial one either, drops the read buffer so an idle
    /// session does not hold it (the codec grows it again on demand).
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<BytesMut, Error>>> {
        let polled = Pin::new(&mut self.framed).poll_next(cx);
        if polled.is_pending() {
            release_empty_read_buffer(&mut self.framed);
        }
        polled
    }

    pub(crate) fn poll_close_frames(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.session.mode() == RecordMode::Akex
            && !self.session.close_sent()
            && !self.session.has_failed()
        {
            ready!(Sink::<Bytes>::poll_ready(Pin::new(&mut self.framed), cx))?;
            let mut out = Vec::new();
            self.session.seal_close(&mut out)?;
            let buf = self.framed.write_buffer_mut();
            buf.put_u16(out.len() as u16);
            buf.extend_from_slice(&out);
        }
        Sink::<Bytes>::poll_close(Pin::new(&mut self.framed), cx)
    }

    /// Reads and decrypts the next message; `None` at the end of the stream.
    pub(crate) fn poll_next_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BytesMut, Error>>> {
        if let Some(pending) = self.pending.take() {
            return Poll::Ready(Some(Ok(pending)));
        }
        if self.read_failed {
            return Poll::Ready(Some(Err(ApiMisuse::StreamFailed.into())));
        }
        if self.session.mode() == RecordMode::Akex {
            return self.poll_next_record(cx);
        }
        let frame = ready!(self.poll_frame(cx));
        let result = frame.map(|frame| {
            let mut frame = frame?;
            let n = self.session.open_in_place(&mut frame)?;
            frame.truncate(n);
            Ok(frame)
        });
        if matches!(result, Some(Err(_))) {
            self.read_failed = true;
        }
        Poll::Ready(result)
    }
}

/// Drops `framed`'s read and write buffers if they hold no bytes, so an
/// idle session holds no buffer: `Framed` allocates 8 KiB for each up
/// front and keeps whatever capacity the handshake (or the largest record
/// since) grew them to. They grow again on demand (the codec reserves a
/// whole frame once it has read its length). Buffers holding bytes (the
/// peer's first records, read together with its last handshake message, or
/// part of a frame) are kept. Called when the session starts, after every
/// completed flush (write side) and whenever a read would block (read
/// side).
fn release_empty_buffers<IO>(framed: &mut Framed<IO, FrameCodec>) {
    release_empty_read_buffer(framed);
    release_empty_write_buffer(framed);
}

fn release_empty_read_buffer<IO>(framed: &mut Framed<IO, FrameCodec>) {
    if framed.read_buffer().is_empty()
        && framed.read_buffer().capacity() > 0
        && !framed.codec().is_mid_frame()
    {
        *framed.read_buffer_mut() = BytesMut::new();
    }
}

fn release_empty_write_buffer<IO>(framed: &mut Framed<IO, FrameCodec>) {
    if framed.write_buffer().is_empty() && framed.write_buffer().capacity() > 0 {
        *framed.write_buffer_mut() = BytesMut::new();
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> SecureFramed<IO> {
    /// akex mode: reads records until data, the peer's close (`None`) or
    /// an error; answers key updates and ratchet steps on the way.
    fn poll_next_record(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<BytesMut, Error>>> {
        loop {
            if self.control_unflushed {
                // Answers to the peer's ratchet steps must leave even if
                // the application only reads.
                if let Poll::Ready(r) = Sink::<Bytes>::poll_flush(Pin::new(&mut self.framed), cx) {
                    self.control_unflushed = false;
                    if let Err(e) = r {
                        self.read_failed = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            if self.session.peer_closed() {
                return Poll::Ready(None);
            }
            let frame = ready!(self.poll_frame(cx));
            let result = match frame {
                None => Err(PeerMisbehaved::UnauthenticatedEof.into()),
                Some(Err(e)) => Err(e),
                Some(Ok(mut frame)) => match self.session.open_record_in_place(&mut frame) {
                    Ok(Record::Data(len)) => {
                        frame.advance(1);
                        frame.truncate(len);
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Ok(Record::Close) => return Poll::Ready(None),
                    Ok(_) => self.queue_control().map(|queued| {
                        self.control_unflushed |= queued;
                    }),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                self.read_failed = true;
                return Poll::Ready(Some(Err(e)));
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Stream for SecureFramed<IO> {
    type Item = Result<BytesMut, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_message(cx)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Sink<Bytes> for SecureFramed<IO> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_ready_to_write(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), Error> {
        self.get_mut().queue_sealed(&item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush_frames(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_close_frames(cx)
    }
}
