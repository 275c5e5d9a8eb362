//! A UDP relay for datagram tests: it stands between one client and a
//! server, records and counts what passes, and lets a test inject
//! datagrams, hold the client's, or move to a new address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

/// A UDP relay between one client (who talks to `front`) and the server,
/// that records what the client sends, counts what the server sends, can
/// hold the client's datagrams after its first, can inject datagrams from
/// its server-side address (which the server takes for the client's) or
/// toward the client, and can move to a new server-side address (a NAT
/// rebinding).
pub struct Relay {
    pub front: SocketAddr,
    pub from_client: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    pub count_from_server: Arc<AtomicU64>,
    pub handshakes_from_server: Arc<AtomicU64>,
    pub inject_tx: tokio::sync::mpsc::Sender<(bool, Vec<u8>)>,
    pub rebind: Arc<AtomicBool>,
    pub hold: Arc<AtomicBool>,
}

impl Relay {
    pub async fn start(server: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = front.local_addr().unwrap();
        let from_client = Arc::new(std::sync::Mutex::new(Vec::new()));
        let count = Arc::new(AtomicU64::new(0));
        let handshakes = Arc::new(AtomicU64::new(0));
        let rebind = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let (inject_tx, mut inject_rx) = tokio::sync::mpsc::channel::<(bool, Vec<u8>)>(1024);
        let (c1, c2, c3) = (from_client.clone(), count.clone(), handshakes.clone());
        let (c4, c5) = (rebind.clone(), hold.clone());
        tokio::spawn(async move {
            let mut back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut client: Option<SocketAddr> = None;
            let mut held: Vec<Vec<u8>> = Vec::new();
            let (mut b1, mut b2) = (vec![0u8; 65536], vec![0u8; 65536]);
            loop {
                if c4.swap(false, Ordering::Relaxed) {
                    back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                }
                if !c5.load(Ordering::Relaxed) {
                    for p in held.drain(..) {
                        let _ = back.send_to(&p, server).await;
                    }
                }
                tokio::select! {
                    r = front.recv_from(&mut b1) => {
                        let Ok((n, from)) = r else { return };
                        client = Some(from);
                        let first = {
                            let mut seen = c1.lock().unwrap();
                            seen.push(b1[..n].to_vec());
                            seen.len() == 1
                        };
                        if c5.load(Ordering::Relaxed) && !first {
                            held.push(b1[..n].to_vec());
                        } else {
                            let _ = back.send_to(&b1[..n], server).await;
                        }
                    }
                    r = back.recv_from(&mut b2) => {
                        let Ok((n, _)) = r else { return };
                        c2.fetch_add(1, Ordering::Relaxed);
                        if b2[0] == 0x02 || b2[0] == 0x01 {
                            c3.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(c) = client {
                            let _ = front.send_to(&b2[..n], c).await;
                        }
                    }
                    Some((to_client, p)) = inject_rx.recv() => {
                        if to_client {
                            if let Some(c) = client {
                                let _ = front.send_to(&p, c).await;
                            }
                        } else {
                            let _ = back.send_to(&p, server).await;
                        }
                    }
                    // Wake up now and then to release held datagrams.
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        });
        Relay {
            front: addr,
            from_client,
            count_from_server: count,
            handshakes_from_server: handshakes,
            inject_tx,
            rebind,
            hold,
        }
    }

    pub fn first_from_client(&self) -> Option<Vec<u8>> {
        self.from_client.lock().unwrap().first().cloned()
    }

    pub fn captured(&self) -> Vec<Vec<u8>> {
        self.from_client.lock().unwrap().clone()
    }

    /// Sends `packet` to the server from the relay's (the client's) address.
    pub async fn inject(&self, packet: &[u8]) {
        self.inject_tx.send((false, packet.to_vec())).await.unwrap();
    }

    /// Sends `packet` to the client from the relay (the server's address).
    pub async fn inject_to_client(&self, packet: &[u8]) {
        self.inject_tx.send((true, packet.to_vec())).await.unwrap();
    }
}
