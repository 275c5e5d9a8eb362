//! `SecureStream`: an encrypted byte stream (`AsyncRead + AsyncWrite`).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::io::Driver;
use super::messages::SecureFramed;
use crate::connection::Connection;
use crate::error::Error;
use crate::session::{Session, SessionInfo};

/// An established session as a byte stream, the shape of tokio-rustls'
/// `TlsStream`.
///
/// **Writes** are sealed into records of at most
/// [`Connection::max_record_payload`] bytes and handed to the socket right
/// away, as far as it takes them without waiting: data makes progress
/// without [`flush`](tokio::io::AsyncWriteExt::flush), like tokio-rustls.
/// Each `write` call becomes at least one record, so many tiny writes cost
/// a record (17 bytes of overhead) each: wrap the stream in a
/// `tokio::io::BufWriter` to batch them. `flush` waits until every sealed
/// byte is with the operating system; `shutdown` sends the authenticated
/// close (akex mode) and then shuts the socket's write side.
///
/// **Reads** return decrypted bytes in order; the end of the stream is
/// `Ok(0)` only after the peer's authenticated close (akex mode) or a
/// clean end between records (Noise mode, which cannot detect a
/// truncation).
///
/// Errors come out as `std::io::Error` wrapping an [`Error`];
/// [`Error::from_io`] gets it back. The first read error is final.
pub struct SecureStream<IO> {
    driver: Driver<IO>,
}

impl<IO> std::fmt::Debug for SecureStream<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureStream")
            .field("connection", &self.driver.conn)
            .finish_non_exhaustive()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> SecureStream<IO> {
    pub(super) fn from_driver(driver: Driver<IO>) -> Self {
        SecureStream { driver }
    }

    /// A stream over `io` for a connection that already finished its
    /// handshake (e.g. [`Connection::from_session`]). Fails if it has not.
    pub fn new(io: IO, conn: Connection) -> Result<Self, Error> {
        if conn.is_handshaking() {
            return Err(crate::error::ApiMisuse::HandshakeNotFinished.into());
        }
        Ok(SecureStream {
            driver: Driver::new(io, conn),
        })
    }

    /// A stream over `io` for a ready-made session.
    pub fn from_session(io: IO, session: Session) -> Self {
        SecureStream {
            driver: Driver::new(io, Connection::from_session(session)),
        }
    }

    /// The handshake's public facts: protocol, peer key, handshake hash.
    pub fn session_info(&self) -> &SessionInfo {
        self.driver
            .conn
            .session_info()
            .expect("a SecureStream is made after the handshake")
    }

    /// The payloads the peer put in its handshake messages, one entry per
    /// message received (empty for messages without one). How well each is
    /// protected depends on its position in the pattern (Noise spec,
    /// section 7.7; `protocols/*.md`).
    pub fn handshake_payloads(&self) -> &[Vec<u8>] {
        self.driver.conn.handshake_payloads()
    }

    /// The session's keys and counters.
    pub fn session(&self) -> &Session {
        self.driver
            .conn
            .session()
            .expect("a SecureStream is made after the handshake")
    }

    /// The sans-IO connection underneath.
    pub fn connection(&self) -> &Connection {
        &self.driver.conn
    }

    /// The underlying I/O object.
    pub fn get_ref(&self) -> &IO {
        &self.driver.io
    }

    /// The underlying I/O object, mutably (reading or writing it directly
    /// corrupts the stream).
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.driver.io
    }

    /// The I/O object and the connection (with any bytes it still holds).
    pub fn into_inner(self) -> (IO, Connection) {
        (self.driver.io, self.driver.conn)
    }

    /// Turns the stream into a `Sink`/`Stream` of whole messages. Bytes
    /// already decrypted but not yet read come out first.
    pub fn into_messages(self) -> SecureFramed<IO> {
        SecureFramed::from_driver(self.driver)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for SecureStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let driver = &mut self.get_mut().driver;
        if !ready!(driver.poll_readable(cx)).map_err(Error::into_io)? {
            return Poll::Ready(Ok(()));
        }
        let n = driver
            .conn
            .recv(buf.initialize_unfilled())
            .map_err(Error::into_io)?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for SecureStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let driver = &mut self.get_mut().driver;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(driver.poll_writable(cx)).map_err(Error::into_io)?;
        driver.tick();
        let n = buf.len().min(driver.conn.max_record_payload());
        driver
            .conn
            .send_message(&buf[..n])
            .map_err(Error::into_io)?;
        // Progress without flush: hand the record to the socket now, as
        // far as it takes it without waiting.
        driver.try_drain(cx).map_err(Error::into_io)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().driver.poll_flush(cx).map_err(Error::into_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .driver
            .poll_shutdown(cx)
            .map_err(Error::into_io)
    }
}
