//! [`SecureDatagram`]: one datagram connection, on its own socket
//! ([`connect_udp`], [`accept_udp`]) or on a [`DatagramServer`]'s.
//!
//! [`DatagramServer`]: super::DatagramServer

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::cookie::{unix_now, CookieJar};
use super::link::{Inbound, Link};
use super::packet::{self, ConnectionId, Packet};
use super::pump::Pump;
use super::stats::{Count, Counters, DatagramCounters};
use super::{CookiePolicy, DatagramOptions, DatagramSession, MAX_UDP_PAYLOAD};
use crate::crypto::{OsRng, RandomSource};
use crate::error::{ApiMisuse, ConfigError, Error};
use crate::handshake::{Handshake, Role};
use crate::session::datagram::HEADER_LEN;
use crate::session::{Record, SessionInfo};

/// How often the receive loop wakes up while a ratchet step waits for its
/// answer, and otherwise (for the ratchet interval and rekey policy).
const TICK_BUSY: Duration = Duration::from_millis(100);
const TICK_IDLE: Duration = Duration::from_secs(1);

/// `start + d`, saturating far in the future (no timer overflows).
fn after(start: Instant, d: Duration) -> Instant {
    crate::transport::server::deadline_after_from(start, d)
}

/// An established datagram session with one peer.
pub struct SecureDatagram {
    link: Link,
    peer: SocketAddr,
    pump: Pump,
    session: DatagramSession,
    early: VecDeque<Vec<u8>>,
    start: Instant,
    buf: Vec<u8>,
    /// Set on a server: `recv` fails after this long without a record.
    idle: Option<Duration>,
    last_activity: Instant,
    /// Header (epoch, counter) of the newest authenticated record.
    newest: Option<[u8; HEADER_LEN]>,
    /// Messages (or the close, `None`) opened while a responder waited
    /// for the handshake's confirmation.
    ready: VecDeque<Option<Vec<u8>>>,
}

impl std::fmt::Debug for SecureDatagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureDatagram")
            .field("peer", &self.peer)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Runs `handshake` as the initiator with `peer` over `socket`; datagrams
/// from anyone else, or for another connection, are dropped and counted.
/// Fails with [`Error::ServerBusy`] if the responder turns it away.
pub async fn connect_udp(
    socket: UdpSocket,
    peer: SocketAddr,
    handshake: Box<dyn Handshake>,
    options: &DatagramOptions,
) -> Result<SecureDatagram, Error> {
    if handshake.role() != Role::Initiator {
        return Err(ConfigError::Invalid("connect_udp needs an initiator handshake".into()).into());
    }
    options.validate()?;
    let mut cid: ConnectionId = [0; 8];
    OsRng.fill_bytes(&mut cid);
    let start = Instant::now();
    let link = Link::own(socket);
    let mut out = Vec::new();
    let pump = Pump::initiator(
        handshake,
        cid,
        peer,
        options.timers(),
        Duration::ZERO,
        &mut out,
    )?;
    link.send_all(&mut out, peer).await?;
    SecureDatagram::establish(link, pump, options, start).await
}

/// Waits for the first initiation on `socket` and runs `handshake` as the
/// responder with whoever sent it (after a cookie round trip if
/// `options.cookies` is [`CookiePolicy::Always`]). Anything else that
/// arrives meanwhile is ignored; the deadline starts with the initiation.
pub async fn accept_udp(
    socket: UdpSocket,
    handshake: Box<dyn Handshake>,
    options: &DatagramOptions,
) -> Result<SecureDatagram, Error> {
    if handshake.role() != Role::Responder {
        return Err(ConfigError::Invalid("accept_udp needs a responder handshake".into()).into());
    }
    options.validate()?;
    let mut link = Link::own(socket);
    let jar = Arc::new(CookieJar::new());
    let mut buf = Vec::new();
    let (from, validated) = loop {
        let from = link.recv(&mut buf).await?;
        let Some(Packet::Initiation { cid, token, .. }) = packet::parse(&buf) else {
            continue;
        };
        let validated = jar.check(unix_now(), from, &cid, token);
        if validated || options.cookies != CookiePolicy::Always {
            break (from, validated);
        }
        let cookie = packet::cookie(&cid, &jar.mint(unix_now(), from, &cid));
        // Stateless: never larger than what it answers.
        if cookie.len() <= buf.len() {
            link.send(&cookie, from).await?;
        }
    };
    let first = Inbound { from, bytes: buf };
    respond(
        link,
        first,
        validated,
        handshake,
        options,
        jar,
        Counters::default(),
    )
    .await
}

/// Runs the responder side on `first`, an initiation that a server (or
/// [`accept_udp`]) admitted.
pub(crate) async fn respond(
    link: Link,
    first: Inbound,
    validated: bool,
    handshake: Box<dyn Handshake>,
    options: &DatagramOptions,
    jar: Arc<CookieJar>,
    counters: Counters,
) -> Result<SecureDatagram, Error> {
    let Some(Packet::Initiation { cid, message, .. }) = packet::parse(&first.bytes) else {
        return Err(ConfigError::Invalid("a responder starts on an initiation".into()).into());
    };
    let start = Instant::now();
    let mut out = Vec::new();
    let pump = Pump::responder(
        handshake,
        cid,
        first.from,
        options.timers(),
        Duration::ZERO,
        (message, first.bytes.len(), validated),
        jar,
        counters,
        &mut out,
    )?;
    link.send_all(&mut out, first.from).await?;
    SecureDatagram::establish(link, pump, options, start).await
}

impl SecureDatagram {
    /// Pumps the handshake to its end and takes over its keys. A responder
    /// then waits (within the handshake deadline) until the initiator shows
    /// it finished too: only then is its address proven, so a spoofed
    /// initiation never becomes a connection.
    async fn establish(
        mut link: Link,
        mut pump: Pump,
        options: &DatagramOptions,
        start: Instant,
    ) -> Result<SecureDatagram, Error> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let deadline = after(start, options.handshake_timeout);
        while !pump.is_finished() {
            let wake = pump.next_timer().map_or(deadline, |t| after(start, t));
            tokio::select! {
                received = link.recv(&mut buf) => {
                    let from = received?;
                    let now = start.elapsed();
                    match packet::parse(&buf) {
                        None => pump.counters.bump(Count::Malformed),
                        Some(p) if p.cid() != pump.cid() => pump.counters.bump(Count::WrongConnection),
                        Some(_) if from != pump.peer() => pump.counters.bump(Count::WrongAddress),
                        Some(p) => pump.on_packet(now, p, buf.len(), &mut out)?,
                    }
                }
                () = tokio::time::sleep_until(wake) => pump.on_timer(start.elapsed(), &mut out)?,
            }
            link.send_all(&mut out, pump.peer()).await?;
        }
        let established = pump.take_established(start.elapsed(), &mut out)?;
        link.send_all(&mut out, pump.peer()).await?;
        let session = DatagramSession::new(established, options.session.clone())?;
        let early = pump.take_early().into();
        let mut conn = SecureDatagram {
            link,
            peer: pump.peer(),
            pump,
            session,
            early,
            ready: VecDeque::new(),
            start,
            buf,
            idle: None,
            last_activity: Instant::now(),
            newest: None,
        };
        if conn.pump.role() == Role::Responder {
            while !conn.pump.is_confirmed() {
                if Instant::now() >= deadline {
                    return Err(Error::Timeout(options.handshake_timeout));
                }
                if let Some(message) = conn.step(Some(deadline)).await? {
                    conn.ready.push_back(message);
                }
            }
        }
        Ok(conn)
    }

    /// The peer's address (it moves when the peer roams).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The connection id both sides put in every packet.
    pub fn connection_id(&self) -> ConnectionId {
        self.pump.cid()
    }

    /// The handshake's public facts.
    pub fn session_info(&self) -> &SessionInfo {
        self.session.info()
    }

    /// The session (epochs, ratchet state).
    pub fn session(&self) -> &DatagramSession {
        &self.session
    }

    /// Datagrams dropped so far, whatever the reason (see
    /// [`SecureDatagram::counters`]).
    pub fn dropped(&self) -> u64 {
        self.pump.counters.get().dropped()
    }

    /// What this connection dropped, resent and held back, by reason.
    pub fn counters(&self) -> DatagramCounters {
        self.pump.counters.get()
    }

    /// True once the peer's address is proven (a cookie, a handshake
    /// message or a record that needed ours); until then at most three
    /// times what it sent is sent to it. An initiator's peer is the
    /// address it chose, so always true there.
    pub fn address_validated(&self) -> bool {
        self.pump.budget().is_validated()
    }

    /// Makes [`SecureDatagram::recv`] fail with [`Error::IdleTimeout`]
    /// after `idle` without a record either way (servers set it from
    /// their limits).
    pub fn set_idle_timeout(&mut self, idle: Option<Duration>) {
        self.idle = idle;
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Seals with `seal` into a record packet and sends it, unless the
    /// peer's unvalidated address has used up its budget (then the
    /// datagram is dropped and counted, as a lost one would be).
    async fn send_sealed(
        &mut self,
        capacity: usize,
        seal: impl FnOnce(&mut DatagramSession, &mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut packet = packet::record_header(&self.pump.cid(), capacity);
        seal(&mut self.session, &mut packet)?;
        self.last_activity = Instant::now();
        if self.pump.may_send(packet.len()) {
            self.link.send(&packet, self.peer).await?;
        }
        Ok(())
    }

    async fn flush_control(&mut self) -> Result<(), Error> {
        loop {
            let mut packet = packet::record_header(&self.pump.cid(), 128);
            let now = self.now();
            if !self.session.poll_control(now, &mut OsRng, &mut packet)? {
                return Ok(());
            }
            if self.pump.may_send(packet.len()) {
                self.link.send(&packet, self.peer).await?;
            }
        }
    }

    /// Starts a DH ratchet step (retransmitted by [`SecureDatagram::recv`]
    /// until answered).
    pub async fn ratchet(&mut self) -> Result<bool, Error> {
        let mut started = false;
        self.send_sealed(128, |s, out| {
            started = s.start_ratchet(&mut OsRng, out)?;
            Ok(())
        })
        .await?;
        Ok(started)
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
        self.send_sealed(data.len() + super::OVERHEAD, |s, out| s.seal(data, out))
            .await
    }

    /// Sends an authenticated close.
    pub async fn close(&mut self) -> Result<(), Error> {
        self.send_sealed(super::OVERHEAD, |s, out| s.seal_close(out))
            .await
    }

    /// Opens one record from `from`; `Ok(Some(data))` for data, `Ok(None)`
    /// for anything else handled internally.
    async fn handle(
        &mut self,
        from: SocketAddr,
        record: &[u8],
    ) -> Result<Option<Option<Vec<u8>>>, Error> {
        let mut out = Vec::new();
        // The previous epoch's key expires by the clock.
        self.session.set_time(self.now());
        let record_type = match self.session.open(record, &mut out) {
            Ok(r) => r,
            Err(e) if self.session.has_failed() => return Err(e),
            Err(_) if from != self.peer => {
                self.pump.counters.bump(Count::WrongAddress);
                return Ok(None);
            }
            Err(_) => {
                self.pump.counters.bump(Count::Forged);
                return Ok(None);
            }
        };
        // Authenticated: the peer has finished its handshake.
        self.pump.confirm();
        self.last_activity = Instant::now();
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&record[..HEADER_LEN]);
        // Epoch and counter compare as big-endian bytes.
        let newest = self.newest.is_none_or(|n| header > n);
        if newest {
            self.newest = Some(header);
            if from != self.peer {
                // NAT rebinding or roaming: follow the newest record.
                self.peer = from;
                self.pump.set_peer(from);
                self.pump.counters.bump(Count::Roamed);
            }
        }
        self.flush_control().await?;
        Ok(match record_type {
            Record::Data(_) => Some(Some(out)),
            Record::Close => Some(None),
            _ => None,
        })
    }

    /// Receives the next message; `None` after the peer's authenticated
    /// close. Duplicated, replayed, forged and stale datagrams are dropped
    /// and counted; handshake repeats are answered while the rules allow;
    /// ratchet steps are answered and retransmitted while waiting.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, Error> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Ok(message);
            }
            if self.session.peer_closed() {
                return Ok(None);
            }
            if let Some(message) = self.step(None).await? {
                return Ok(message);
            }
        }
    }

    /// Handles one early record, datagram or timer (waking by `limit` at
    /// the latest); returns a message or the close if one came of it.
    async fn step(&mut self, limit: Option<Instant>) -> Result<Option<Option<Vec<u8>>>, Error> {
        if let Some(record) = self.early.pop_front() {
            let from = self.peer;
            return self.handle(from, &record).await;
        }
        let now = self.now();
        let tick = if self.session.ratchet_in_progress() {
            TICK_BUSY
        } else {
            TICK_IDLE
        };
        let mut wake = Instant::now() + tick;
        if let Some(t) = self.pump.next_timer() {
            wake = wake.min(after(self.start, t.max(now)));
        }
        if let Some(limit) = limit {
            wake = wake.min(limit);
        }
        if let Some(idle) = self.idle {
            let idle_at = after(self.last_activity, idle);
            if Instant::now() >= idle_at {
                return Err(Error::IdleTimeout(idle));
            }
            wake = wake.min(idle_at);
        }
        let mut out = Vec::new();
        let mut buf = std::mem::take(&mut self.buf);
        let received = tokio::select! {
            r = self.link.recv(&mut buf) => Some(r),
            () = tokio::time::sleep_until(wake) => None,
        };
        let result = match received {
            None => match self.pump.on_timer(self.now(), &mut out) {
                Ok(()) => self.flush_control().await.map(|()| None),
                Err(e) => Err(e),
            },
            Some(Err(e)) => Err(e),
            Some(Ok(from)) => self.dispatch(from, &buf, &mut out).await,
        };
        self.buf = buf;
        self.link.send_all(&mut out, self.peer).await?;
        result
    }

    /// Handles one datagram after the handshake.
    async fn dispatch(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Option<Option<Vec<u8>>>, Error> {
        let Some(p) = packet::parse(datagram) else {
            self.pump.counters.bump(Count::Malformed);
            return Ok(None);
        };
        if p.cid() != self.pump.cid() {
            self.pump.counters.bump(Count::WrongConnection);
            return Ok(None);
        }
        if from == self.peer {
            self.pump.received(datagram.len());
        }
        match p {
            Packet::Record { record, .. } => self.handle(from, record).await,
            _ if from != self.peer => {
                self.pump.counters.bump(Count::WrongAddress);
                Ok(None)
            }
            p => {
                // Its bytes were counted above.
                self.pump.on_packet(self.now(), p, 0, out)?;
                Ok(None)
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
            let deadline = after(Instant::now(), interval);
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
        Err(Error::Timeout(interval.saturating_mul(attempts.max(1))))
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
