//! `SecureStream`: an encrypted byte stream (`AsyncRead + AsyncWrite`).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::codec::Framed;

use super::codec::FrameCodec;
use super::messages::SecureFramed;
use crate::error::Error;
use crate::handshake::Established;
use crate::session::{Session, SessionConfig, SessionInfo};

/// An established session as a byte stream, the shape of tokio-rustls'
/// `TlsStream`: writes are cut into messages of at most
/// [`MAX_PLAINTEXT_LEN`](crate::session::MAX_PLAINTEXT_LEN) bytes (one
/// less in akex mode), reads return decrypted bytes in order.
///
/// Errors from the session layer come out as `std::io::Error` wrapping an
/// [`Error`]; [`Error::from_io`] gets it back.
pub struct SecureStream<IO> {
    inner: SecureFramed<IO>,
    /// Decrypted bytes not yet read.
    plaintext: BytesMut,
}

impl<IO> std::fmt::Debug for SecureStream<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureStream")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> SecureStream<IO> {
    pub(crate) fn new(
        framed: Framed<IO, FrameCodec>,
        established: Established,
        handshake_payloads: Vec<Vec<u8>>,
    ) -> Result<Self, Error> {
        // Noise names keep the Noise transport exactly (interop); akex-native
        // protocols get typed records, key updates and an authenticated close.
        let session = if established.protocol().starts_with("Noise_") {
            Session::new(established)
        } else {
            let config = SessionConfig::akex(established.aead());
            Session::with_config(established, config)?
        };
        Ok(SecureStream {
            inner: SecureFramed::new(framed, session, handshake_payloads),
            plaintext: BytesMut::new(),
        })
    }

    /// A stream over `framed` with a ready-made session, e.g. an akex-mode
    /// [`Session`] built with [`Session::with_config`] (typed records, key
    /// updates, DH ratchet, authenticated close). Bytes already buffered in
    /// `framed` are kept.
    pub fn from_session(framed: Framed<IO, FrameCodec>, session: Session) -> Self {
        SecureStream {
            inner: SecureFramed::new(framed, session, Vec::new()),
            plaintext: BytesMut::new(),
        }
    }

    /// The handshake's public facts: protocol, peer key, handshake hash.
    pub fn session_info(&self) -> &SessionInfo {
        self.inner.session_info()
    }

    /// The payloads the peer put in its handshake messages, one entry per
    /// message received (empty for messages without payload). How well each
    /// is protected depends on its position in the pattern (Noise spec,
    /// section 7.7); akex itself sends empty handshake payloads.
    pub fn handshake_payloads(&self) -> &[Vec<u8>] {
        self.inner.handshake_payloads()
    }

    /// The session's keys and counters.
    pub fn session(&self) -> &Session {
        self.inner.session()
    }

    /// The underlying I/O object.
    pub fn get_ref(&self) -> &IO {
        self.inner.get_ref()
    }

    /// Turns the stream into a `Sink`/`Stream` of whole messages. Bytes
    /// already decrypted but not yet read come out as the first message.
    pub fn into_messages(self) -> SecureFramed<IO> {
        self.inner.with_pending(self.plaintext)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for SecureStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.plaintext.is_empty() {
            match ready!(this.inner.poll_next_message(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(e.into_io())),
                Some(Ok(message)) => this.plaintext = message,
            }
        }
        let n = this.plaintext.len().min(buf.remaining());
        buf.put_slice(&this.plaintext[..n]);
        this.plaintext.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SecureStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(this.inner.poll_ready_to_write(cx)).map_err(Error::into_io)?;
        let n = buf.len().min(this.inner.max_payload());
        this.inner.queue_sealed(&buf[..n]).map_err(Error::into_io)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .inner
            .poll_flush_frames(cx)
            .map_err(Error::into_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .inner
            .poll_close_frames(cx)
            .map_err(Error::into_io)
    }
}
