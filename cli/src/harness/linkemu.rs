//! Link emulation in process (the kernel here has no netem): a TCP proxy
//! that delays every chunk by half the round-trip time each way and paces
//! bytes to a bandwidth, and a UDP proxy that also loses, duplicates and
//! reorders datagrams. Loss is for datagrams only: losing bytes of a TCP
//! stream needs the kernel's retransmission, which a user-space proxy
//! between two sockets cannot emulate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
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

/// A lossy datagram link: delay, loss, duplication and reordering, each
/// decided per datagram by a seeded generator (runs are repeatable).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossyLink {
    /// Added round-trip time (half of it each way).
    pub rtt: Duration,
    /// Probability that one IP packet is lost (0.0 to 1.0).
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability that a datagram is held back half an RTT more, so that
    /// later ones overtake it.
    pub reorder: f64,
    /// Path MTU in bytes: a datagram longer than `mtu - 28` (IPv4 + UDP
    /// headers) travels as IP fragments and is lost if any one is.
    pub mtu: usize,
    /// Seed of the loss decisions.
    pub seed: u64,
}

impl LossyLink {
    /// IP packets a datagram of `len` bytes needs on this link.
    pub fn packets(&self, len: usize) -> usize {
        let per_packet = self.mtu.saturating_sub(28).max(1);
        len.div_ceil(per_packet).max(1)
    }
}

/// splitmix64: a tiny, fast, seedable generator for loss decisions (not
/// for keys).
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Dice {
        Dice(seed)
    }
    /// A uniform number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }
}

/// A running UDP proxy for one client; dropping it stops it.
#[derive(Debug)]
pub struct UdpProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl UdpProxy {
    /// Listens on 127.0.0.1 and relays datagrams between the first client
    /// that writes to it and `upstream`, through `link`.
    pub async fn start(upstream: SocketAddr, link: LossyLink) -> std::io::Result<UdpProxy> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        back.connect(upstream).await?;
        let addr = front.local_addr()?;
        let task = tokio::spawn(async move {
            let mut dice = Dice::new(link.seed);
            let mut client: Option<SocketAddr> = None;
            let (mut up, mut down) = (vec![0u8; 65536], vec![0u8; 65536]);
            loop {
                tokio::select! {
                    r = front.recv_from(&mut up) => {
                        let Ok((n, from)) = r else { return };
                        client.get_or_insert(from);
                        if client == Some(from) {
                            relay(&back, None, &up[..n], &link, &mut dice);
                        }
                    }
                    r = back.recv(&mut down) => {
                        let Ok(n) = r else { return };
                        if let Some(to) = client {
                            relay(&front, Some(to), &down[..n], &link, &mut dice);
                        }
                    }
                }
            }
        });
        Ok(UdpProxy { addr, task })
    }

    /// Where the client sends.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Decides the fate of one datagram and schedules its copies.
fn relay(
    socket: &Arc<UdpSocket>,
    to: Option<SocketAddr>,
    bytes: &[u8],
    link: &LossyLink,
    dice: &mut Dice,
) {
    let lost = (0..link.packets(bytes.len())).any(|_| dice.chance(link.loss));
    if lost {
        return;
    }
    let copies = if dice.chance(link.duplicate) { 2 } else { 1 };
    let mut delay = link.rtt / 2;
    if dice.chance(link.reorder) {
        delay += link.rtt / 2;
    }
    let due = Instant::now() + delay;
    let (socket, bytes) = (socket.clone(), bytes.to_vec());
    tokio::spawn(async move {
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        for _ in 0..copies {
            let _ = match to {
                Some(to) => socket.send_to(&bytes, to).await,
                None => socket.send(&bytes).await,
            };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_are_uniform_enough_and_repeatable() {
        let mut a = Dice::new(7);
        let hits = (0..100_000).filter(|_| a.chance(0.05)).count();
        assert!((4_500..5_500).contains(&hits), "{hits}");
        let (mut b, mut c) = (Dice::new(9), Dice::new(9));
        assert!((0..100).all(|_| b.next_f64() == c.next_f64()));
        let link = LossyLink {
            rtt: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            mtu: 1500,
            seed: 0,
        };
        assert_eq!(
            (link.packets(1), link.packets(1472), link.packets(1473)),
            (1, 1, 2)
        );
    }

    #[tokio::test]
    async fn udp_proxy_delays_loses_and_duplicates() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap();
        let link = LossyLink {
            rtt: Duration::from_millis(20),
            loss: 0.0,
            duplicate: 1.0,
            reorder: 0.0,
            mtu: 1500,
            seed: 1,
        };
        let proxy = UdpProxy::start(server_addr, link).await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let start = std::time::Instant::now();
        client.send_to(b"ping", proxy.local_addr()).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert!(start.elapsed() >= Duration::from_millis(10));
        // Duplicated: a second copy follows.
        let (n, _) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
        server.send_to(b"pong", from).await.unwrap();
        let (n, _) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"pong");
        // Total loss: nothing arrives.
        let lossy = UdpProxy::start(
            server_addr,
            LossyLink {
                loss: 1.0,
                duplicate: 0.0,
                ..link
            },
        )
        .await
        .unwrap();
        client.send_to(b"lost", lossy.local_addr()).await.unwrap();
        let got =
            tokio::time::timeout(Duration::from_millis(100), server.recv_from(&mut buf)).await;
        assert!(got.is_err(), "a datagram crossed a link with 100 % loss");
    }

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
