//! A byte-counting I/O wrapper: bytes each way and round trips (flights
//! received after sending) during a handshake.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Counters shared between a [`Counted`] stream and whoever watches it.
#[derive(Debug, Default)]
pub struct WireCounters {
    written: AtomicU64,
    read: AtomicU64,
    writes: AtomicU64,
    round_trips: AtomicU64,
    wrote_since_read: AtomicBool,
}

/// A snapshot of [`WireCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Bytes this end wrote.
    pub written: u64,
    /// Bytes this end read.
    pub read: u64,
    /// Successful write calls (an upper bound on the flights sent).
    pub writes: u64,
    /// Times this end received bytes after having sent some: the round
    /// trips it waited for.
    pub round_trips: u64,
}

impl WireCounters {
    /// The counts so far.
    pub fn snapshot(&self) -> WireStats {
        WireStats {
            written: self.written.load(Ordering::Relaxed),
            read: self.read.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            round_trips: self.round_trips.load(Ordering::Relaxed),
        }
    }
}

/// Wraps an I/O object and counts what goes through it.
#[derive(Debug)]
pub struct Counted<IO> {
    inner: IO,
    counters: Arc<WireCounters>,
}

impl<IO> Counted<IO> {
    /// Wraps `inner`; read the counts through the returned `Arc`.
    pub fn new(inner: IO) -> (Self, Arc<WireCounters>) {
        let counters = Arc::new(WireCounters::default());
        (
            Counted {
                inner,
                counters: counters.clone(),
            },
            counters,
        )
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counted<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            this.counters.read.fetch_add(n, Ordering::Relaxed);
            if this
                .counters
                .wrote_since_read
                .swap(false, Ordering::Relaxed)
            {
                this.counters.round_trips.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            if *n > 0 {
                this.counters
                    .written
                    .fetch_add(*n as u64, Ordering::Relaxed);
                this.counters.writes.fetch_add(1, Ordering::Relaxed);
                this.counters
                    .wrote_since_read
                    .store(true, Ordering::Relaxed);
            }
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_bytes_and_round_trips() {
        let (a, mut b) = tokio::io::duplex(1024);
        let (mut a, counters) = Counted::new(a);
        a.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut got = [0u8; 3];
        a.read_exact(&mut got).await.unwrap();
        let s = counters.snapshot();
        assert_eq!((s.written, s.read, s.round_trips), (5, 3, 1));
    }
}
