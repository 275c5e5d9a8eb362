//! [`DatagramServer`]: many datagram peers on one UDP socket, told apart by
//! connection id, under the same limits and events as the TCP server.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::cookie::{unix_now, CookieJar};
use super::link::{Inbound, Link};
use super::packet::{self, ConnectionId, Packet};
use super::secure::{respond, SecureDatagram};
use super::stats::{Count, Counters, DatagramStats};
use super::{CookiePolicy, DatagramOptions};
use crate::error::Error;
use crate::handshake::Handshake;
use crate::transport::server::{
    bump, EventFn, RejectReason, ServerEvent, ServerLimits, ServerStats, Shared, Slot,
};

/// Datagrams waiting for one connection's task, at most.
const INBOX_LEN: usize = 256;
/// Bytes waiting for one connection's task, at most.
const INBOX_BYTES: usize = 128 * 1024;
/// How long the id of a closed connection is remembered, so a replayed
/// initiation costs no handshake work.
const CLOSED_MEMORY: Duration = Duration::from_secs(60);
const CLOSED_CAP: usize = 65_536;
/// How often waiting initiations look for a free slot.
const QUEUE_TICK: Duration = Duration::from_millis(20);

/// A UDP server: one socket, many peers, each connection in its own task,
/// routed by connection id (so a peer whose address changes keeps its
/// connection), under [`ServerLimits`] and [`DatagramOptions`].
///
/// What happens to a new initiation, in order:
///
/// 1. A cookie reply instead of any handshake work if it carries no valid
///    token and the server is under load ([`CookiePolicy`]) or its IP
///    address already has `max_half_open_per_ip` unproven handshakes.
/// 2. A busy reply, and [`ServerEvent::Rejected`], past
///    `max_connections`, `max_connections_per_ip` or `max_half_open`.
/// 3. With a valid token but `max_half_open_per_ip` proven handshakes from
///    its address in progress: it waits (up to `max_queued` over all
///    peers, each for up to ¾ of its handshake deadline, then busy).
/// 4. Otherwise a task runs the handshake and then the handler.
///
/// The handler's [`SecureDatagram`] fails with
/// [`Error::IdleTimeout`] after `idle_timeout` without a record either
/// way. Events and [`ServerStats`] are those of the TCP server;
/// [`DatagramStats`] counts packets.
pub struct DatagramServer {
    socket: Arc<UdpSocket>,
    limits: ServerLimits,
    options: DatagramOptions,
    stats: Arc<ServerStats>,
    datagram_stats: Arc<DatagramStats>,
    jar: Arc<CookieJar>,
    on_event: Option<EventFn>,
}

impl std::fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramServer")
            .field("socket", &self.socket)
            .field("limits", &self.limits)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl DatagramServer {
    /// Binds a UDP socket on `addr`. Fails on unusable limits or timers.
    pub async fn bind(
        addr: impl tokio::net::ToSocketAddrs,
        limits: ServerLimits,
        options: DatagramOptions,
    ) -> Result<DatagramServer, Error> {
        limits.validate()?;
        options.validate()?;
        Ok(Self::from_socket(
            UdpSocket::bind(addr).await?,
            limits,
            options,
        ))
    }

    /// Serves on an existing socket.
    pub fn from_socket(
        socket: UdpSocket,
        limits: ServerLimits,
        options: DatagramOptions,
    ) -> DatagramServer {
        DatagramServer {
            socket: Arc::new(socket),
            limits,
            options,
            stats: Arc::default(),
            datagram_stats: Arc::default(),
            jar: Arc::new(CookieJar::new()),
            on_event: None,
        }
    }

    /// Uses `jar` for cookies (responders behind one address share one).
    pub fn with_cookie_jar(mut self, jar: Arc<CookieJar>) -> DatagramServer {
        self.jar = jar;
        self
    }

    /// Calls `f` for every [`ServerEvent`]; it must not block.
    pub fn on_event(mut self, f: impl Fn(&ServerEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(f));
        self
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.socket.local_addr()?)
    }

    /// The connection counters (the same as the TCP server's).
    pub fn stats(&self) -> Arc<ServerStats> {
        Arc::clone(&self.stats)
    }

    /// The packet counters.
    pub fn datagram_stats(&self) -> Arc<DatagramStats> {
        Arc::clone(&self.datagram_stats)
    }

    /// Serves until `shutdown` completes: `make_handshake` builds the
    /// responder handshake for a peer, `handler` gets the established
    /// connection. On shutdown every connection task is aborted.
    pub async fn run<M, H, Fut, S>(self, make_handshake: M, handler: H, shutdown: S)
    where
        M: Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error> + Send + Sync + 'static,
        H: Fn(SocketAddr, SecureDatagram) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
        S: Future<Output = ()>,
    {
        let shared = Shared::new(self.limits, self.stats, self.on_event);
        let mut d = Dispatcher {
            socket: self.socket,
            shared,
            options: Arc::new(self.options),
            jar: self.jar,
            stats: self.datagram_stats,
            routes: HashMap::new(),
            queue: VecDeque::new(),
            queued_ids: HashSet::new(),
            closed: HashSet::new(),
            closed_order: VecDeque::new(),
            tasks: JoinSet::new(),
            task_ids: HashMap::new(),
            make_handshake: Arc::new(make_handshake),
            handler: Arc::new(handler),
        };
        let mut buf = vec![0u8; 65536];
        let mut tick = tokio::time::interval(QUEUE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(joined) = d.tasks.join_next_with_id(), if !d.tasks.is_empty() => d.reap(joined),
                received = d.socket.recv_from(&mut buf) => match received {
                    Ok((n, from)) => d.dispatch(&buf[..n], from),
                    Err(error) => {
                        // For example ICMP errors some systems report here;
                        // a pause keeps a lasting one from spinning.
                        bump(&d.shared.stats.accept_errors);
                        d.shared.emit(ServerEvent::AcceptFailed { error });
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = tick.tick(), if !d.queue.is_empty() => d.serve_queue(),
            }
        }
        d.routes.clear();
        d.queue.clear();
        d.tasks.shutdown().await;
    }
}

struct Route {
    tx: mpsc::Sender<Inbound>,
    waiting: Arc<AtomicUsize>,
}

/// An initiation with a valid cookie waiting for a per-address slot.
struct Waiting {
    cid: ConnectionId,
    first: Inbound,
    slot: Slot,
    expires: Instant,
}

struct Dispatcher<M, H> {
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    options: Arc<DatagramOptions>,
    jar: Arc<CookieJar>,
    stats: Arc<DatagramStats>,
    routes: HashMap<ConnectionId, Route>,
    queue: VecDeque<Waiting>,
    queued_ids: HashSet<ConnectionId>,
    closed: HashSet<ConnectionId>,
    closed_order: VecDeque<(Instant, ConnectionId)>,
    tasks: JoinSet<()>,
    task_ids: HashMap<tokio::task::Id, (ConnectionId, SocketAddr)>,
    make_handshake: Arc<M>,
    handler: Arc<H>,
}

impl<M, H, Fut> Dispatcher<M, H>
where
    M: Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error> + Send + Sync + 'static,
    H: Fn(SocketAddr, SecureDatagram) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    fn dispatch(&mut self, datagram: &[u8], from: SocketAddr) {
        DatagramStats::add(&self.stats.datagrams_in, 1);
        DatagramStats::add(&self.stats.bytes_in, datagram.len());
        let Some(p) = packet::parse(datagram) else {
            self.stats.bump(Count::Malformed);
            return;
        };
        let cid = p.cid();
        if let Some(route) = self.routes.get(&cid) {
            let n = datagram.len();
            if route.waiting.fetch_add(n, Ordering::Relaxed) + n > INBOX_BYTES {
                route.waiting.fetch_sub(n, Ordering::Relaxed);
                DatagramStats::add(&self.stats.inbox_full, 1);
                return;
            }
            let inbound = Inbound {
                from,
                bytes: datagram.to_vec(),
            };
            if let Err(e) = route.tx.try_send(inbound) {
                route.waiting.fetch_sub(n, Ordering::Relaxed);
                match e {
                    mpsc::error::TrySendError::Full(_) => {
                        DatagramStats::add(&self.stats.inbox_full, 1)
                    }
                    mpsc::error::TrySendError::Closed(_) => self.stats.bump(Count::WrongConnection),
                }
            }
            return;
        }
        let Packet::Initiation { token, .. } = p else {
            self.stats.bump(Count::WrongConnection);
            return;
        };
        self.forget_closed();
        if self.closed.contains(&cid) {
            DatagramStats::add(&self.stats.closed_connection, 1);
        } else if self.queued_ids.contains(&cid) {
            self.stats.bump(Count::Duplicate);
        } else {
            let token_ok = self.jar.check(unix_now(), from, &cid, token);
            if !token.is_empty() && !token_ok {
                DatagramStats::add(&self.stats.bad_tokens, 1);
            }
            self.admit(cid, from, datagram, token_ok);
        }
    }

    /// Sends a stateless reply (cookie, busy) if it is no larger than the
    /// request: nothing is kept to count against, so it never amplifies.
    fn reply(&self, packet: &[u8], request_len: usize, to: SocketAddr) -> bool {
        if packet.len() > request_len {
            return false;
        }
        let sent = self.socket.try_send_to(packet, to).is_ok();
        if sent {
            DatagramStats::add(&self.stats.datagrams_out, 1);
            DatagramStats::add(&self.stats.bytes_out, packet.len());
        }
        sent
    }

    fn admit(&mut self, cid: ConnectionId, from: SocketAddr, datagram: &[u8], validated: bool) {
        let ip = from.ip();
        let loaded = match self.options.cookies {
            CookiePolicy::Always => true,
            CookiePolicy::UnderLoad(n) => self.shared.half_open() >= n,
        };
        if !validated && (loaded || self.shared.unvalidated_full(ip)) {
            let cookie = packet::cookie(&cid, &self.jar.mint(unix_now(), from, &cid));
            if self.reply(&cookie, datagram.len(), from) {
                DatagramStats::add(&self.stats.cookies_sent, 1);
            }
            return;
        }
        bump(&self.shared.stats.accepted);
        let first = Inbound {
            from,
            bytes: datagram.to_vec(),
        };
        match self.shared.admit(ip, validated) {
            Err(reason) => self.reject(cid, from, datagram.len(), reason),
            Ok(slot) if slot.is_queued() => {
                self.queued_ids.insert(cid);
                // As over TCP: a quarter of the deadline is left for the handshake.
                let wait = self.options.handshake_timeout.mul_f64(0.75);
                let expires = crate::transport::server::deadline_after(wait);
                self.queue.push_back(Waiting {
                    cid,
                    first,
                    slot,
                    expires,
                });
            }
            Ok(slot) => self.spawn(cid, first, slot, validated),
        }
    }

    fn reject(
        &self,
        cid: ConnectionId,
        peer: SocketAddr,
        request_len: usize,
        reason: RejectReason,
    ) {
        bump(&self.shared.stats.rejected);
        if self.reply(&packet::busy(&cid), request_len, peer) {
            DatagramStats::add(&self.stats.busy_sent, 1);
        }
        self.shared.emit(ServerEvent::Rejected { peer, reason });
    }

    /// Starts waiting initiations whose address has a free slot; turns
    /// away those whose deadline passed.
    fn serve_queue(&mut self) {
        let now = Instant::now();
        let mut still = VecDeque::with_capacity(self.queue.len());
        while let Some(mut w) = self.queue.pop_front() {
            if w.slot.try_promote() {
                self.queued_ids.remove(&w.cid);
                self.spawn(w.cid, w.first, w.slot, true);
            } else if now >= w.expires {
                self.queued_ids.remove(&w.cid);
                let limit = self.shared.limits.max_half_open_per_ip;
                let (cid, from, len) = (w.cid, w.first.from, w.first.bytes.len());
                drop(w.slot);
                self.reject(cid, from, len, RejectReason::HalfOpenPerIpLimit(limit));
            } else {
                still.push_back(w);
            }
        }
        self.queue = still;
    }

    fn spawn(&mut self, cid: ConnectionId, first: Inbound, slot: Slot, validated: bool) {
        let (tx, rx) = mpsc::channel(INBOX_LEN);
        let waiting = Arc::new(AtomicUsize::new(0));
        self.routes.insert(
            cid,
            Route {
                tx,
                waiting: Arc::clone(&waiting),
            },
        );
        let link = Link::routed(
            Arc::clone(&self.socket),
            rx,
            waiting,
            Arc::clone(&self.stats),
        );
        let peer = first.from;
        let job = Job {
            options: Arc::clone(&self.options),
            jar: Arc::clone(&self.jar),
            stats: Arc::clone(&self.stats),
            make_handshake: Arc::clone(&self.make_handshake),
            handler: Arc::clone(&self.handler),
        };
        let task = self
            .tasks
            .spawn(async move { job.run(link, first, slot, validated).await });
        self.task_ids.insert(task.id(), (cid, peer));
    }

    /// Forgets a finished connection; remembers its id for a while.
    fn reap(&mut self, joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let (id, panicked) = match joined {
            Ok((id, ())) => (id, false),
            Err(e) => (e.id(), e.is_panic()),
        };
        let Some((cid, peer)) = self.task_ids.remove(&id) else {
            return;
        };
        self.routes.remove(&cid);
        if self.closed.len() >= CLOSED_CAP {
            if let Some((_, oldest)) = self.closed_order.pop_front() {
                self.closed.remove(&oldest);
            }
        }
        self.closed.insert(cid);
        self.closed_order
            .push_back((Instant::now() + CLOSED_MEMORY, cid));
        if panicked {
            bump(&self.shared.stats.connections_failed);
            self.shared.emit(ServerEvent::ConnectionFailed {
                peer,
                error: Error::Io(std::io::Error::other("connection handler panicked")),
            });
        }
    }

    fn forget_closed(&mut self) {
        let now = Instant::now();
        while self.closed_order.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, cid)) = self.closed_order.pop_front() {
                self.closed.remove(&cid);
            }
        }
    }
}

/// What a connection task needs.
struct Job<M, H> {
    options: Arc<DatagramOptions>,
    jar: Arc<CookieJar>,
    stats: Arc<DatagramStats>,
    make_handshake: Arc<M>,
    handler: Arc<H>,
}

impl<M, H, Fut> Job<M, H>
where
    M: Fn(SocketAddr) -> Result<Box<dyn Handshake>, Error>,
    H: Fn(SocketAddr, SecureDatagram) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    async fn run(self, link: Link, first: Inbound, mut slot: Slot, validated: bool) {
        let shared = Arc::clone(slot.shared());
        let stats = &shared.stats;
        let peer = first.from;
        let counters = Counters::with_server(Some(self.stats));
        let result = match (self.make_handshake)(peer) {
            Ok(handshake) => {
                respond(
                    link,
                    first,
                    validated,
                    handshake,
                    &self.options,
                    self.jar,
                    counters,
                )
                .await
            }
            Err(e) => Err(e),
        };
        slot.established();
        let mut conn = match result {
            Ok(conn) => conn,
            Err(error) => {
                bump(&stats.handshakes_failed);
                drop(slot);
                shared.emit(ServerEvent::HandshakeFailed { peer, error });
                return;
            }
        };
        bump(&stats.handshakes_ok);
        shared.emit(ServerEvent::Established {
            peer,
            info: conn.session_info().clone(),
        });
        conn.set_idle_timeout(Some(shared.limits.idle_timeout));
        let result = (self.handler)(peer, conn).await;
        drop(slot);
        match result {
            Ok(()) => {
                bump(&stats.closed_ok);
                shared.emit(ServerEvent::Closed { peer });
            }
            Err(error) => {
                bump(&stats.connections_failed);
                shared.emit(ServerEvent::ConnectionFailed { peer, error });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers protocols/datagram.md gives for the server.
    #[test]
    fn documented_server_constants() {
        assert_eq!((INBOX_LEN, INBOX_BYTES), (256, 128 * 1024));
        assert_eq!(CLOSED_MEMORY, Duration::from_secs(60));
        assert_eq!(CLOSED_CAP, 65_536);
    }
}
