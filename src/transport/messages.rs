//! Whole encrypted messages as a `Sink<Bytes>` and a `Stream` of plaintexts.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use super::codec::FrameCodec;
use crate::error::{ApiMisuse, Error};
use crate::session::{Session, SessionInfo, MAX_PLAINTEXT_LEN};

/// An established session over a framed stream, one plaintext message per
/// frame. Each item sent must be at most [`MAX_PLAINTEXT_LEN`] bytes.
pub struct SecureFramed<IO> {
    framed: Framed<IO, FrameCodec>,
    session: Session,
    /// Plaintext already decrypted but not yet handed out (from a
    /// [`super::SecureStream`] that was converted mid-message).
    pending: Option<BytesMut>,
    handshake_payloads: Vec<Vec<u8>>,
    /// Set by the first read error; every later read fails too.
    read_failed: bool,
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
        SecureFramed {
            framed,
            session,
            pending: None,
            handshake_payloads,
            read_failed: false,
        }
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

    pub(crate) fn poll_flush_frames(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Sink::<Bytes>::poll_flush(Pin::new(&mut self.framed), cx)
    }

    pub(crate) fn poll_close_frames(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
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
        let frame = ready!(Pin::new(&mut self.framed).poll_next(cx));
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
