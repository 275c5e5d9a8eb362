//! [`IdleTimeout`]: closes a connection on which no complete message moved.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::error::Error;

/// Follows one direction of the 2-byte length framing every akex stream
/// uses, and says when a frame completes.
#[derive(Debug, Default)]
struct FrameMeter {
    header: [u8; 2],
    header_len: usize,
    body_left: usize,
}

impl FrameMeter {
    /// Feeds bytes that moved; true if they completed a non-empty frame.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        let mut completed = false;
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                completed |= self.body_left == 0;
                continue;
            }
            self.header[self.header_len] = bytes[0];
            self.header_len += 1;
            bytes = &bytes[1..];
            if self.header_len == 2 {
                self.header_len = 0;
                // An empty frame is never a valid message: no progress.
                self.body_left = usize::from(u16::from_be_bytes(self.header));
            }
        }
        completed
    }
}

/// An I/O object that fails with [`Error::IdleTimeout`] (wrapped in an
/// `io::Error`, see [`Error::from_io`]) when a read or write has waited on
/// the peer for longer than the idle timeout since the last complete frame
/// moved in either direction.
///
/// It follows the 2-byte length framing of akex streams, so a peer that
/// trickles bytes without ever completing a message cannot keep a
/// connection alive.
#[derive(Debug)]
pub struct IdleTimeout<IO> {
    inner: IO,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    reads: FrameMeter,
    writes: FrameMeter,
}

impl<IO> IdleTimeout<IO> {
    /// Wraps `inner`; the clock starts now. Any `idle` is accepted: one
    /// too long to represent never expires.
    pub fn new(inner: IO, idle: Duration) -> Self {
        IdleTimeout {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep_until(deadline_after(idle))),
            reads: FrameMeter::default(),
            writes: FrameMeter::default(),
        }
    }

    /// The wrapped I/O object.
    pub fn get_ref(&self) -> &IO {
        &self.inner
    }

    fn progress(&mut self) {
        self.timer.as_mut().reset(deadline_after(self.idle));
    }

    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Err(Error::IdleTimeout(self.idle).into_io()),
            Poll::Pending => Ok(()),
        }
    }
}

/// `now + d`, or about thirty years from now if that does not fit.
pub(crate) fn deadline_after(d: Duration) -> Instant {
    deadline_after_from(Instant::now(), d)
}

/// `start + d`, or about thirty years after `start` if that does not fit.
pub(crate) fn deadline_after_from(start: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    start
        .checked_add(d)
        .or_else(|| start.checked_add(FAR))
        .unwrap_or(start)
}

impl<IO: AsyncRead + Unpin> AsyncRead for IdleTimeout<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.reads.feed(&buf.filled()[before..]) {
                    this.progress();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if this.writes.feed(&buf[..n.min(buf.len())]) {
                    this.progress();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => match this.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn frames_complete_across_pieces_and_empty_ones_do_not_count() {
        let mut m = FrameMeter::default();
        assert!(!m.feed(&[0]));
        assert!(!m.feed(&[3, b'a']));
        assert!(!m.feed(b"b"));
        assert!(m.feed(b"c\x00"));
        assert!(!m.feed(&[0]), "an empty frame is no progress");
        assert!(m.feed(&[0, 1, b'x', 0, 2, b'y']));
        assert_eq!(m.body_left, 1);
    }

    #[tokio::test]
    async fn a_trickle_without_a_complete_frame_times_out() {
        let (client, server) = tokio::io::duplex(1024);
        let idle = Duration::from_millis(300);
        let mut server = IdleTimeout::new(server, idle);
        let trickle = tokio::spawn(async move {
            let mut client = client;
            // A frame announcing 1000 bytes, one byte every 50 ms.
            client.write_all(&[0x03, 0xe8]).await.unwrap();
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if client.write_all(&[0x5a]).await.is_err() {
                    break;
                }
            }
            client
        });
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let err = loop {
            match server.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert!(matches!(Error::from_io(err), Error::IdleTimeout(_)));
        let waited = started.elapsed();
        assert!(
            waited >= idle && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        drop(server);
        let _ = trickle.await;
    }

    #[tokio::test]
    async fn complete_frames_keep_it_alive_and_any_timeout_is_accepted() {
        let (mut client, server) = tokio::io::duplex(1024);
        let idle = Duration::from_millis(300);
        let mut server = IdleTimeout::new(server, idle);
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            client.write_all(&[0, 2, 7, 7]).await.unwrap();
            let mut buf = [0u8; 4];
            server.read_exact(&mut buf).await.unwrap();
        }
        // Durations too long for the clock never expire and never panic.
        let (_c, s) = tokio::io::duplex(64);
        let mut forever = IdleTimeout::new(s, Duration::MAX);
        forever.progress();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(200), forever.read(&mut buf)).await;
        assert!(read.is_err(), "still waiting");
    }
}
