//! Whole encrypted messages as a `Sink<Bytes>` and a `Stream` of plaintexts.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};

use super::io::Driver;
use crate::connection::{Connection, ControlMessage};
use crate::error::Error;
use crate::session::{ControlType, Session, SessionInfo};

/// An established session over a byte stream, one plaintext message per
/// record. Each item sent must be at most
/// [`Connection::max_record_payload`] bytes.
///
/// In akex mode key updates and ratchet steps the policy asks for are sent
/// before data, the peer's are answered while reading, `close` sends an
/// authenticated close record, and the end of the stream without the
/// peer's close is an error
/// ([`PeerMisbehaved::UnauthenticatedEof`](crate::error::PeerMisbehaved::UnauthenticatedEof)).
/// Items are handed to the socket as they are sent, without waiting for
/// `flush`.
pub struct SecureFramed<IO> {
    driver: Driver<IO>,
}

impl<IO> std::fmt::Debug for SecureFramed<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureFramed")
            .field("connection", &self.driver.conn)
            .finish_non_exhaustive()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> SecureFramed<IO> {
    pub(super) fn from_driver(driver: Driver<IO>) -> Self {
        SecureFramed { driver }
    }

    /// Largest plaintext of one message.
    pub fn max_payload(&self) -> usize {
        self.driver.conn.max_record_payload()
    }

    /// The payloads the peer put in its handshake messages.
    pub fn handshake_payloads(&self) -> &[Vec<u8>] {
        self.driver.conn.handshake_payloads()
    }

    /// The handshake's public facts: protocol, peer key, handshake hash.
    pub fn session_info(&self) -> &SessionInfo {
        self.driver
            .conn
            .session_info()
            .expect("a SecureFramed is made after the handshake")
    }

    /// The session's keys and counters.
    pub fn session(&self) -> &Session {
        self.driver
            .conn
            .session()
            .expect("a SecureFramed is made after the handshake")
    }

    /// The sans-IO connection underneath.
    pub fn connection(&self) -> &Connection {
        &self.driver.conn
    }

    /// The underlying I/O object (e.g. to read the peer address).
    pub fn get_ref(&self) -> &IO {
        &self.driver.io
    }

    /// The underlying I/O object, mutably.
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.driver.io
    }

    /// The I/O object and the connection.
    pub fn into_inner(self) -> (IO, Connection) {
        (self.driver.io, self.driver.conn)
    }

    /// Sends a control message (akex mode: a record of its own type, which
    /// the peer's application gets from [`SecureFramed::next_control`] and
    /// never as a message of the stream) and flushes it.
    pub async fn send_control(&mut self, ty: ControlType, payload: &[u8]) -> Result<(), Error> {
        self.driver.tick();
        self.driver.conn.send_control(ty, payload)?;
        std::future::poll_fn(|cx| self.driver.poll_flush(cx)).await
    }

    /// The next control message from the peer, waiting for it if none has
    /// arrived; `None` if the peer closed first. Messages of the stream
    /// that arrive meanwhile stay readable, in order.
    pub async fn next_control(&mut self) -> Result<Option<ControlMessage>, Error> {
        std::future::poll_fn(|cx| self.driver.poll_next_control(cx)).await
    }

    /// A control message that has already arrived, without waiting.
    pub fn take_control(&mut self) -> Option<ControlMessage> {
        self.driver.conn.take_control()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Stream for SecureFramed<IO> {
    type Item = Result<BytesMut, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let driver = &mut self.get_mut().driver;
        match ready!(driver.poll_readable(cx)) {
            Err(e) => Poll::Ready(Some(Err(e))),
            Ok(false) => Poll::Ready(None),
            Ok(true) => {
                let message = driver
                    .conn
                    .next_message()
                    .map(BytesMut::from)
                    .unwrap_or_default();
                Poll::Ready(Some(driver.conn.consume_message().map(|()| message)))
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Sink<Bytes> for SecureFramed<IO> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let driver = &mut self.get_mut().driver;
        // Items already sent go to the socket without waiting for flush.
        driver.try_drain(cx)?;
        driver.poll_writable(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), Error> {
        let driver = &mut self.get_mut().driver;
        driver.tick();
        driver.conn.send_message(&item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().driver.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().driver.poll_shutdown(cx)
    }
}
