//! Datagram mode over UDP: handshake retransmission, then a
//! [`DatagramSession`] with explicit counters and a replay window.
//!
//! Every UDP payload starts with a kind byte:
//!
//! * `0x01` handshake: `index` (1 byte, the message's position in the
//!   handshake: 0, 1, 2, ...) then the handshake message. A side waiting for
//!   an answer retransmits its last message on a timer with exponential
//!   backoff ([`DatagramOptions::initial_rto`] doubling up to
//!   [`DatagramOptions::max_rto`]); a side that receives a duplicate of the
//!   message it already answered sends its answer again (also after the
//!   handshake finished, so a lost final message is repaired).
//! * `0x02` record: a [`DatagramSession`] record (see
//!   [`crate::session::datagram`]).
//!
//! Records that arrive before our side of the handshake has finished
//! (the peer finished first) are kept (up to 64) and opened afterwards.
//! One [`SecureDatagram`] talks to one peer; datagrams from other addresses
//! are ignored.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::crypto::OsRng;
use crate::error::{ApiMisuse, ConfigError, Error};
use crate::handshake::{Established, Handshake, Role};
use crate::session::datagram::{DatagramSession, MAX_DATAGRAM_PAYLOAD, OVERHEAD};
use crate::session::{Record, SessionConfig, SessionInfo};

/// Kind byte of a handshake datagram.
pub const KIND_HANDSHAKE: u8 = 0x01;
/// Kind byte of a session record datagram.
pub const KIND_RECORD: u8 = 0x02;
/// Largest payload [`SecureDatagram::send`] accepts: a record must fit in
/// one UDP datagram (65507 bytes over IPv4).
pub const MAX_UDP_PAYLOAD: usize = {
    let udp = 65507 - 1 - OVERHEAD;
    if udp < MAX_DATAGRAM_PAYLOAD {
        udp
    } else {
        MAX_DATAGRAM_PAYLOAD
    }
};
const MAX_EARLY_RECORDS: usize = 64;
/// How often the receive loop wakes up to retransmit ratchet steps and
/// apply the time-based rekey policy.
const TICK: Duration = Duration::from_millis(100);

/// Handshake timers and session settings for datagram mode.
#[derive(Debug, Clone)]
pub struct DatagramOptions {
    /// The whole handshake must finish within this time.
    pub handshake_timeout: Duration,
    /// First retransmission delay of an unanswered handshake message.
    pub initial_rto: Duration,
    /// Largest retransmission delay (the delay doubles up to it).
    pub max_rto: Duration,
    /// Rekey policy, ratchet interval and limits of the session.
    pub session: SessionConfig,
}

impl Default for DatagramOptions {
    fn default() -> Self {
        DatagramOptions {
            handshake_timeout: Duration::from_secs(10),
            initial_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(2),
            session: SessionConfig::default(),
        }
    }
}

/// An established datagram session with one peer.
pub struct SecureDatagram {
    socket: UdpSocket,
    peer: SocketAddr,
    session: DatagramSession,
    /// Our last handshake datagram and its index, to answer duplicates.
    last_handshake: Option<(u8, Vec<u8>)>,
    early: Vec<Vec<u8>>,
    start: Instant,
    buf: Vec<u8>,
    /// Datagrams dropped (forged, replayed, too old, unknown epoch).
    dropped: u64,
}

impl std::fmt::Debug for SecureDatagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureDatagram")
            .field("peer", &self.peer)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Runs `handshake` as the initiator with `peer` over `socket`.
pub async fn connect_udp(
    socket: UdpSocket,
    peer: SocketAddr,
    handshake: Box<dyn Handshake>,
    options: &DatagramOptions,
) -> Result<SecureDatagram, Error> {
    if handshake.role() != Role::Initiator {
        return Err(ConfigError::Invalid("connect_udp needs an initiator handshake".into()).into());
    }
    establish_udp(socket, Some(peer), handshake, options).await
}

/// Waits for the first handshake datagram on `socket` and runs `handshake`
/// as the responder with whoever sent it.
pub async fn accept_udp(
    socket: UdpSocket,
    handshake: Box<dyn Handshake>,
    options: &DatagramOptions,
) -> Result<SecureDatagram, Error> {
    if handshake.role() != Role::Responder {
        return Err(ConfigError::Invalid("accept_udp needs a responder handshake".into()).into());
    }
    establish_udp(socket, None, handshake, options).await
}

struct Pumped {
    established: Established,
    peer: SocketAddr,
    last: Option<(u8, Vec<u8>)>,
    early: Vec<Vec<u8>>,
}

async fn establish_udp(
    socket: UdpSocket,
    peer: Option<SocketAddr>,
    handshake: Box<dyn Handshake>,
    options: &DatagramOptions,
) -> Result<SecureDatagram, Error> {
    let start = Instant::now();
    let pumped = match peer {
        // The responder waits for a first datagram as long as it takes;
        // the deadline starts once a peer shows up.
        None => pump(&socket, None, handshake, options).await?,
        Some(_) => tokio::time::timeout(
            options.handshake_timeout,
            pump(&socket, peer, handshake, options),
        )
        .await
        .map_err(|_| Error::Timeout(options.handshake_timeout))??,
    };
    let session = DatagramSession::new(pumped.established, options.session.clone())?;
    Ok(SecureDatagram {
        socket,
        peer: pumped.peer,
        session,
        last_handshake: pumped.last,
        early: pumped.early,
        start,
        buf: vec![0u8; 65536],
        dropped: 0,
    })
}

async fn pump(
    socket: &UdpSocket,
    mut peer: Option<SocketAddr>,
    mut handshake: Box<dyn Handshake>,
    options: &DatagramOptions,
) -> Result<Pumped, Error> {
    let mut next_index: u8 = 0;
    let mut last: Option<(u8, Vec<u8>)> = None;
    let mut early = Vec::new();
    let mut rto = options.initial_rto;
    let mut buf = vec![0u8; 65536];
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut message = Vec::new();
    while !handshake.is_finished() {
        if handshake.wants_write() {
            message.clear();
            handshake.write_message(&[], &mut message)?;
            let mut packet = Vec::with_capacity(2 + message.len());
            packet.push(KIND_HANDSHAKE);
            packet.push(next_index);
            packet.extend_from_slice(&message);
            let to = peer.expect("the initiator knows its peer; a responder writes after reading");
            socket.send_to(&packet, to).await?;
            last = Some((next_index, packet));
            next_index = next_index.wrapping_add(1);
            rto = options.initial_rto;
            continue;
        }
        if let Some(d) = deadline {
            if tokio::time::Instant::now() >= d {
                return Err(Error::Timeout(options.handshake_timeout));
            }
        }
        let received = match &last {
            Some(_) => match tokio::time::timeout(rto, socket.recv_from(&mut buf)).await {
                Ok(r) => Some(r?),
                Err(_) => None,
            },
            None => Some(socket.recv_from(&mut buf).await?),
        };
        let Some((n, from)) = received else {
            // Unanswered: retransmit with backoff.
            if let (Some((_, packet)), Some(to)) = (&last, peer) {
                socket.send_to(packet, to).await?;
            }
            rto = (rto * 2).min(options.max_rto);
            continue;
        };
        match peer {
            None => {
                if n < 2 || buf[0] != KIND_HANDSHAKE || buf[1] != 0 {
                    continue; // not the start of a handshake
                }
                peer = Some(from);
                deadline = Some(tokio::time::Instant::now() + options.handshake_timeout);
            }
            Some(p) if p != from => continue,
            Some(_) => {}
        }
        if n < 2 {
            continue;
        }
        match buf[0] {
            KIND_HANDSHAKE => {
                let index = buf[1];
                if index == next_index {
                    let mut payload = Vec::new();
                    handshake.read_message(&buf[2..n], &mut payload)?;
                    next_index = next_index.wrapping_add(1);
                } else if let Some((mine, packet)) = &last {
                    // The peer repeats the message we answered: answer again.
                    if index.wrapping_add(1) == *mine {
                        socket.send_to(packet, from).await?;
                    }
                }
            }
            KIND_RECORD if early.len() < MAX_EARLY_RECORDS => early.push(buf[1..n].to_vec()),
            _ => {}
        }
    }
    Ok(Pumped {
        established: handshake.finish()?,
        peer: peer.expect("a finished handshake has a peer"),
        last,
        early,
    })
}

impl SecureDatagram {
    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The handshake's public facts.
    pub fn session_info(&self) -> &SessionInfo {
        self.session.info()
    }

    /// The session (epochs, ratchet state).
    pub fn session(&self) -> &DatagramSession {
        &self.session
    }

    /// Datagrams dropped so far (forged, replayed, too old, unknown epoch).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    async fn send_record(&self, record: &[u8]) -> Result<(), Error> {
        let mut packet = Vec::with_capacity(1 + record.len());
        packet.push(KIND_RECORD);
        packet.extend_from_slice(record);
        self.socket.send_to(&packet, self.peer).await?;
        Ok(())
    }

    async fn flush_control(&mut self) -> Result<(), Error> {
        loop {
            let mut out = Vec::new();
            let now = self.now();
            if !self.session.poll_control(now, &mut OsRng, &mut out)? {
                return Ok(());
            }
            self.send_record(&out).await?;
        }
    }

    /// Starts a DH ratchet step (retransmitted by [`SecureDatagram::recv`]
    /// until answered).
    pub async fn ratchet(&mut self) -> Result<bool, Error> {
        let mut out = Vec::new();
        if self.session.start_ratchet(&mut OsRng, &mut out)? {
            self.send_record(&out).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Moves our sending direction to the next epoch.
    pub fn key_update(&mut self) {
        self.session.key_update();
    }

    /// Sends one message as one record (lost datagrams are not resent).
    pub async fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        if data.len() > MAX_UDP_PAYLOAD {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        self.flush_control().await?;
        let mut out = Vec::with_capacity(data.len() + OVERHEAD);
        self.session.seal(data, &mut out)?;
        self.send_record(&out).await
    }

    /// Sends an authenticated close.
    pub async fn close(&mut self) -> Result<(), Error> {
        let mut out = Vec::new();
        self.session.seal_close(&mut out)?;
        self.send_record(&out).await
    }

    /// Opens one record; `Ok(Some(data))` for data, `Ok(None)` for
    /// anything else handled internally.
    async fn handle(&mut self, record: &[u8]) -> Result<Option<Option<Vec<u8>>>, Error> {
        let mut out = Vec::new();
        // The previous epoch's key expires by the clock.
        self.session.set_time(self.now());
        let result = self.session.open(record, &mut out);
        let record = match result {
            Ok(r) => r,
            Err(e) if self.session.has_failed() => return Err(e),
            Err(_) => {
                self.dropped += 1;
                return Ok(None);
            }
        };
        self.flush_control().await?;
        Ok(match record {
            Record::Data(_) => Some(Some(out)),
            Record::Close => Some(None),
            _ => None,
        })
    }

    /// Receives the next message; `None` after the peer's authenticated
    /// close. Duplicated, replayed, forged and stale datagrams are dropped
    /// silently; handshake repeats are answered; ratchet steps are
    /// answered and retransmitted while waiting.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, Error> {
        while let Some(record) = (!self.early.is_empty()).then(|| self.early.remove(0)) {
            if let Some(result) = self.handle(&record).await? {
                return Ok(result);
            }
        }
        if self.session.peer_closed() {
            return Ok(None);
        }
        loop {
            let received =
                match tokio::time::timeout(TICK, self.socket.recv_from(&mut self.buf)).await {
                    Ok(r) => Some(r?),
                    Err(_) => None,
                };
            let Some((n, from)) = received else {
                self.flush_control().await?;
                continue;
            };
            if from != self.peer || n < 2 {
                continue;
            }
            match self.buf[0] {
                KIND_RECORD => {
                    let record = self.buf[1..n].to_vec();
                    if let Some(result) = self.handle(&record).await? {
                        return Ok(result);
                    }
                }
                KIND_HANDSHAKE => {
                    if let Some((mine, packet)) = &self.last_handshake {
                        if self.buf[1].wrapping_add(1) == *mine {
                            self.socket.send_to(packet, self.peer).await?;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Stop-and-wait for echo protocols: sends `message`, waits up to
    /// `interval` for a reply equal to it, and resends it (as a new
    /// record) up to `attempts` times in all.
    pub async fn send_expect_echo(
        &mut self,
        message: &[u8],
        interval: Duration,
        attempts: u32,
    ) -> Result<(), Error> {
        for _ in 0..attempts.max(1) {
            self.send(message).await?;
            let deadline = tokio::time::Instant::now() + interval;
            while let Ok(reply) = tokio::time::timeout_at(deadline, self.recv()).await {
                match reply? {
                    Some(r) if r == message => return Ok(()),
                    Some(_) => {} // an echo of an earlier attempt
                    None => {
                        return Err(Error::Io(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "peer closed before echoing every message",
                        )))
                    }
                }
            }
        }
        Err(Error::Timeout(interval * attempts.max(1)))
    }

    /// Echoes every message until the peer's authenticated close; fails
    /// with [`Error::IdleTimeout`] after `idle` without a message. Returns
    /// the number of messages echoed.
    pub async fn echo_until_close(&mut self, idle: Duration) -> Result<u64, Error> {
        let mut count = 0u64;
        loop {
            match tokio::time::timeout(idle, self.recv()).await {
                Err(_) => return Err(Error::IdleTimeout(idle)),
                Ok(Ok(Some(message))) => {
                    self.send(&message).await?;
                    count += 1;
                }
                Ok(Ok(None)) => return Ok(count),
                Ok(Err(e)) => return Err(e),
            }
        }
    }
}
