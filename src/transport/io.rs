//! The tokio driver: moves bytes between an `AsyncRead + AsyncWrite` and a
//! sans-IO [`Connection`]. [`SecureStream`](super::SecureStream) and
//! [`SecureFramed`](super::SecureFramed) are thin faces over it.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::connection::Connection;
use crate::error::Error;

/// Writes stop being accepted while this much sealed data waits for the
/// socket (back-pressure to the application).
pub(super) const WRITE_HIGH_WATER: usize = 256 * 1024;

/// How much to read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;

pub(super) struct Driver<IO> {
    pub(super) io: IO,
    pub(super) conn: Connection,
    /// The session's clock starts here (akex mode's time-based rekeying).
    start: Instant,
    /// The byte stream ended (read side).
    eof: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    pub(super) fn new(io: IO, conn: Connection) -> Self {
        Driver {
            io,
            conn,
            start: Instant::now(),
            eof: false,
        }
    }

    /// Tells the connection the time since the session started.
    pub(super) fn tick(&mut self) {
        self.conn.set_time(self.start.elapsed());
    }

    /// Writes pending wire bytes until no more than `keep` are left.
    fn poll_write_down_to(&mut self, cx: &mut Context<'_>, keep: usize) -> Poll<Result<(), Error>> {
        while self.conn.wire_output().len() > keep {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, self.conn.wire_output()))
                .map_err(Error::from_io)?;
            if n == 0 {
                return Poll::Ready(Err(Error::Io(std::io::ErrorKind::WriteZero.into())));
            }
            self.conn.consume_wire_output(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes pending wire bytes until none are left.
    pub(super) fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_write_down_to(cx, 0)
    }

    /// Writes as much as the socket takes now, without waiting.
    pub(super) fn try_drain(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        match self.poll_drain(cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Ok(()),
        }
    }

    /// Reads once from the socket into the connection and processes it.
    /// `Ready(Ok(false))` means the stream ended (and the end was checked).
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Error>> {
        if self.eof {
            return Poll::Ready(Ok(false));
        }
        let spare = self.conn.read_buffer(READ_CHUNK);
        let mut buf = ReadBuf::new(spare);
        match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Pending => {
                // Idle: hold no empty buffers while waiting.
                self.conn.release_idle_buffers();
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::from_io(e))),
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                if n == 0 {
                    self.eof = true;
                    self.conn.read_eof()?;
                    return Poll::Ready(Ok(false));
                }
                self.tick();
                self.conn.commit_read(n)?;
                Poll::Ready(Ok(true))
            }
        }
    }

    /// Runs the handshake to its end: writes our messages, reads the
    /// peer's.
    pub(super) fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            ready!(self.poll_drain(cx))?;
            if !self.conn.is_handshaking() {
                // The session starts idle: the handshake's read buffer
                // (READ_CHUNK) must not stay with a session nobody reads.
                self.conn.release_idle_buffers();
                return Poll::Ready(Ok(()));
            }
            if !ready!(self.poll_fill(cx))? {
                // poll_fill reported the end through read_eof's error.
                return Poll::Ready(Err(
                    crate::error::PeerMisbehaved::ClosedDuringHandshake.into()
                ));
            }
        }
    }

    /// Waits for decrypted data (or the end of the stream). While waiting,
    /// answers the peer's key updates and ratchet steps.
    pub(super) fn poll_readable(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Error>> {
        loop {
            if self.conn.wants_write() {
                // Answers to the peer's control records must leave even if
                // the application only reads.
                self.try_drain(cx)?;
            }
            if self.conn.plaintext_len() > 0 || self.conn.next_message().is_some() {
                return Poll::Ready(Ok(true));
            }
            if self.conn.is_peer_closed() {
                return Poll::Ready(Ok(false));
            }
            // A failure held back behind data that is now read.
            self.conn.check_usable()?;
            if !ready!(self.poll_fill(cx))? {
                return Poll::Ready(Ok(self.conn.next_message().is_some()));
            }
        }
    }

    /// Waits for the peer's next control message. `Ready(Ok(None))` when
    /// the peer closed or the stream ended first; data that arrives
    /// meanwhile stays readable.
    pub(super) fn poll_next_control(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<crate::connection::ControlMessage>, Error>> {
        loop {
            if self.conn.wants_write() {
                self.try_drain(cx)?;
            }
            if let Some(control) = self.conn.take_control() {
                return Poll::Ready(Ok(Some(control)));
            }
            if self.conn.is_peer_closed() {
                return Poll::Ready(Ok(None));
            }
            self.conn.check_usable()?;
            if !ready!(self.poll_fill(cx))? {
                return Poll::Ready(Ok(self.conn.take_control()));
            }
        }
    }

    /// Waits until the backlog of sealed bytes is small enough to take
    /// more.
    pub(super) fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_write_down_to(cx, WRITE_HIGH_WATER - 1)
    }

    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.poll_drain(cx))?;
        ready!(Pin::new(&mut self.io).poll_flush(cx)).map_err(Error::from_io)?;
        self.conn.release_idle_buffers();
        Poll::Ready(Ok(()))
    }

    /// Sends the authenticated close (akex mode), flushes, and shuts the
    /// write side down.
    pub(super) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if !self.conn.is_handshaking() && !self.conn.has_failed() {
            self.conn.close()?;
        }
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io)
            .poll_shutdown(cx)
            .map_err(Error::from_io)
    }
}
