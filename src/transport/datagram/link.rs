//! Where one datagram connection's packets come from and go to: its own
//! socket, or a [`DatagramServer`]'s socket and the datagrams the server
//! routes to it.
//!
//! [`DatagramServer`]: super::DatagramServer

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::stats::DatagramStats;
use crate::error::Error;

/// One datagram a server routed to a connection.
pub(crate) struct Inbound {
    pub(crate) from: SocketAddr,
    pub(crate) bytes: Vec<u8>,
}

/// Where a connection's packets come from and go to.
pub(crate) struct Link {
    socket: Arc<UdpSocket>,
    /// On a server: the datagrams routed to this connection, and how many
    /// bytes of them wait.
    inbox: Option<(mpsc::Receiver<Inbound>, Arc<AtomicUsize>)>,
    stats: Option<Arc<DatagramStats>>,
}

impl Link {
    pub(crate) fn own(socket: UdpSocket) -> Self {
        Link {
            socket: Arc::new(socket),
            inbox: None,
            stats: None,
        }
    }

    pub(crate) fn routed(
        socket: Arc<UdpSocket>,
        inbox: mpsc::Receiver<Inbound>,
        waiting: Arc<AtomicUsize>,
        stats: Arc<DatagramStats>,
    ) -> Self {
        Link {
            socket,
            inbox: Some((inbox, waiting)),
            stats: Some(stats),
        }
    }

    /// The next datagram into `buf`, and its source.
    pub(crate) async fn recv(&mut self, buf: &mut Vec<u8>) -> Result<SocketAddr, Error> {
        match &mut self.inbox {
            None => {
                buf.resize(65536, 0);
                let (n, from) = self.socket.recv_from(buf).await?;
                buf.truncate(n);
                Ok(from)
            }
            Some((inbox, waiting)) => {
                let Some(inbound) = inbox.recv().await else {
                    return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the datagram server stopped",
                    )));
                };
                waiting.fetch_sub(inbound.bytes.len(), Ordering::Relaxed);
                *buf = inbound.bytes;
                Ok(inbound.from)
            }
        }
    }

    pub(crate) async fn send(&self, packet: &[u8], to: SocketAddr) -> Result<(), Error> {
        self.socket.send_to(packet, to).await?;
        if let Some(stats) = &self.stats {
            DatagramStats::add(&stats.datagrams_out, 1);
            DatagramStats::add(&stats.bytes_out, packet.len());
        }
        Ok(())
    }

    pub(crate) async fn send_all(
        &self,
        out: &mut Vec<Vec<u8>>,
        to: SocketAddr,
    ) -> Result<(), Error> {
        for packet in out.drain(..) {
            self.send(&packet, to).await?;
        }
        Ok(())
    }
}
