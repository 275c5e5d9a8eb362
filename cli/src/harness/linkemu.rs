//! Link emulation in process (the kernel here has no netem): a TCP proxy
//! that delays every chunk by half the round-trip time each way and paces
//! bytes to a bandwidth.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The emulated link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Added round-trip time (half of it each way).
    pub rtt: Duration,
    /// Bandwidth each way in Mbit/s; `None` for unlimited.
    pub bandwidth_mbit: Option<f64>,
}

impl Link {
    /// The time `bytes` take to go through the link at its bandwidth.
    pub fn serialization(&self, bytes: usize) -> Duration {
        match self.bandwidth_mbit {
            Some(mbit) if mbit > 0.0 => Duration::from_secs_f64(bytes as f64 * 8.0 / (mbit * 1e6)),
            _ => Duration::ZERO,
        }
    }
}

/// A running proxy; dropping it stops accepting (open connections finish).
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1 and forwards every connection to `upstream`
    /// through `link`.
    pub async fn start(upstream: SocketAddr, link: Link) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pipe(cr, sw, link), pipe(sr, cw, link));
                });
            }
        });
        Ok(Proxy { addr, task })
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One direction: chunks leave at `max(arrival, previous departure) +
/// serialization` and are delivered half an RTT later.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, link: Link) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let one_way = link.rtt / 2;
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut free_at = Instant::now();
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let now = Instant::now();
            let start = if free_at > now { free_at } else { now };
            free_at = start + link.serialization(n);
            if tx.send((free_at + one_way, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((deliver_at, bytes)) = rx.recv().await {
            // The timer has 1 ms ticks: skip it when the chunk is due.
            if deliver_at > Instant::now() {
                tokio::time::sleep_until(deliver_at).await;
            }
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delays_by_the_rtt_and_paces_bytes() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = upstream.accept().await.unwrap();
            let mut buf = vec![0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let link = Link {
            rtt: Duration::from_millis(40),
            bandwidth_mbit: Some(100.0),
        };
        assert_eq!(link.serialization(12_500), Duration::from_millis(1));
        let proxy = Proxy::start(up_addr, link).await.unwrap();
        let mut c = TcpStream::connect(proxy.local_addr()).await.unwrap();
        let start = std::time::Instant::now();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        assert!(start.elapsed() >= Duration::from_millis(40));
    }
}
