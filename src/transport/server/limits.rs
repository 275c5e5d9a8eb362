//! The limits a server applies to unauthenticated and established peers,
//! and the bookkeeping behind them, shared by the TCP [`Server`] and the
//! UDP [`DatagramServer`].
//!
//! [`Server`]: super::Server
//! [`DatagramServer`]: crate::transport::datagram::DatagramServer

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::events::{EventFn, ServerEvent, ServerStats};
use crate::error::{ConfigError, Error};

/// Limits a server applies on top of its transport options.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Handshakes in progress at once, over all peers (default 1024).
    /// Past it, new connections are turned away as busy.
    pub max_half_open: usize,
    /// Handshakes in progress at once from one IP address (default 16).
    /// Past it, a new connection waits for a slot, for up to three
    /// quarters of its handshake deadline (the rest is left for the
    /// handshake), instead of being turned away; over UDP it first proves
    /// its address with a cookie.
    pub max_half_open_per_ip: usize,
    /// Open connections (waiting, half-open or established), over all
    /// peers (default 10000).
    pub max_connections: usize,
    /// Open connections from one IP address (default 1024).
    pub max_connections_per_ip: usize,
    /// Connections waiting for a per-address handshake slot, over all peers
    /// (default 1024).
    pub max_queued: usize,
    /// A connection on which no complete message moved in either
    /// direction for this long is closed (default 60 s). A trickle of
    /// bytes that never completes a message does not count.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_half_open: 1024,
            max_half_open_per_ip: 16,
            max_connections: 10_000,
            max_connections_per_ip: 1024,
            max_queued: 1024,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl ServerLimits {
    /// Checks that every limit lets at least one connection through and
    /// that the idle timeout is not zero.
    pub fn validate(&self) -> Result<(), Error> {
        let counts = [
            ("max_half_open", self.max_half_open),
            ("max_half_open_per_ip", self.max_half_open_per_ip),
            ("max_connections", self.max_connections),
            ("max_connections_per_ip", self.max_connections_per_ip),
        ];
        for (name, value) in counts {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be at least 1")).into());
            }
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::Invalid("idle_timeout must not be zero".into()).into());
        }
        Ok(())
    }
}

/// Why a connection was turned away before its handshake. The peer is told
/// the server is busy ([`Error::ServerBusy`] on its side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// [`ServerLimits::max_half_open`] handshakes were already in progress.
    HalfOpenLimit(usize),
    /// [`ServerLimits::max_half_open_per_ip`] handshakes from this IP were
    /// in progress for as long as the connection could wait (three
    /// quarters of its handshake deadline).
    HalfOpenPerIpLimit(usize),
    /// [`ServerLimits::max_connections`] connections were already open.
    ConnectionLimit(usize),
    /// [`ServerLimits::max_connections_per_ip`] connections from this IP
    /// were already open.
    ConnectionPerIpLimit(usize),
    /// [`ServerLimits::max_queued`] connections were already waiting for a
    /// handshake slot.
    QueueFull(usize),
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::HalfOpenLimit(n) => {
                write!(f, "rejected: {n} half-open handshakes already in progress")
            }
            RejectReason::HalfOpenPerIpLimit(n) => write!(
                f,
                "rejected: {n} half-open handshakes from this address already in progress \
                 for as long as it could wait"
            ),
            RejectReason::ConnectionLimit(n) => {
                write!(f, "rejected: {n} connections already open")
            }
            RejectReason::ConnectionPerIpLimit(n) => {
                write!(
                    f,
                    "rejected: {n} connections from this address already open"
                )
            }
            RejectReason::QueueFull(n) => write!(
                f,
                "rejected: {n} connections already waiting for a handshake slot"
            ),
        }
    }
}

/// How often a waiting connection looks again without being woken (a
/// global slot may free up without a wake-up for its address).
const RECHECK: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct PerIp {
    open: usize,
    /// Half-open from an address known to be real (TCP, or a UDP cookie).
    half_open: usize,
    /// Half-open from an address not proven yet (UDP without a cookie).
    unvalidated: usize,
    queued: usize,
    wake: Option<Arc<Notify>>,
}

impl PerIp {
    fn is_empty(&self) -> bool {
        self.open == 0 && self.half_open == 0 && self.unvalidated == 0 && self.queued == 0
    }
}

/// Who holds which slot, shared by all connection tasks.
#[derive(Debug, Default)]
struct Occupancy {
    open: usize,
    half_open: usize,
    queued: usize,
    per_ip: HashMap<IpAddr, PerIp>,
}

/// What every connection task of one server shares.
pub(crate) struct Shared {
    pub(crate) limits: ServerLimits,
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) on_event: Option<EventFn>,
    occupancy: Mutex<Occupancy>,
}

impl Shared {
    pub(crate) fn new(
        limits: ServerLimits,
        stats: Arc<ServerStats>,
        on_event: Option<EventFn>,
    ) -> Arc<Self> {
        Arc::new(Shared {
            limits,
            stats,
            on_event,
            occupancy: Mutex::new(Occupancy::default()),
        })
    }

    pub(crate) fn emit(&self, event: ServerEvent) {
        if let Some(f) = &self.on_event {
            f(&event);
        }
    }

    fn occupancy(&self) -> MutexGuard<'_, Occupancy> {
        // Every update is a few statements that cannot panic halfway, so
        // a poisoned lock still holds consistent counts.
        self.occupancy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handshakes in progress now, over all peers.
    pub(crate) fn half_open(&self) -> usize {
        self.occupancy().half_open
    }

    /// True if `ip` already has its share of unproven handshakes.
    pub(crate) fn unvalidated_full(&self, ip: IpAddr) -> bool {
        self.occupancy()
            .per_ip
            .get(&ip)
            .is_some_and(|p| p.unvalidated >= self.limits.max_half_open_per_ip)
    }

    /// Takes an open slot for a new connection from `ip` and either a
    /// half-open slot or a place in the queue, or says which limit stops
    /// it. `validated`: the address is known to be real.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        validated: bool,
    ) -> Result<Slot, RejectReason> {
        let l = &self.limits;
        let mut occ = self.occupancy();
        if occ.open >= l.max_connections {
            return Err(RejectReason::ConnectionLimit(l.max_connections));
        }
        if occ.half_open >= l.max_half_open {
            return Err(RejectReason::HalfOpenLimit(l.max_half_open));
        }
        let queued_total = occ.queued;
        let per = occ.per_ip.get(&ip);
        let (open, half_open, unvalidated, queued) = per.map_or((0, 0, 0, 0), |p| {
            (p.open, p.half_open, p.unvalidated, p.queued)
        });
        if open >= l.max_connections_per_ip {
            return Err(RejectReason::ConnectionPerIpLimit(l.max_connections_per_ip));
        }
        let state = if !validated {
            if unvalidated >= l.max_half_open_per_ip {
                return Err(RejectReason::HalfOpenPerIpLimit(l.max_half_open_per_ip));
            }
            SlotState::HalfOpen { validated: false }
        } else if half_open < l.max_half_open_per_ip && queued == 0 {
            SlotState::HalfOpen { validated: true }
        } else if queued_total >= l.max_queued {
            return Err(RejectReason::QueueFull(l.max_queued));
        } else {
            SlotState::Queued
        };
        occ.open += 1;
        let per = occ.per_ip.entry(ip).or_default();
        per.open += 1;
        match state {
            SlotState::HalfOpen { validated: true } => per.half_open += 1,
            SlotState::HalfOpen { validated: false } => per.unvalidated += 1,
            _ => per.queued += 1,
        }
        if state == SlotState::Queued {
            occ.queued += 1;
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
        } else {
            occ.half_open += 1;
            self.stats.half_open.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            shared: Arc::clone(self),
            ip,
            state,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Queued,
    HalfOpen { validated: bool },
    Established,
}

/// One connection's share of the limits; released on drop, so a task that
/// ends any way (error, panic, abort) gives its slots back.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
    state: SlotState,
}

impl Slot {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn is_queued(&self) -> bool {
        self.state == SlotState::Queued
    }

    /// Moves from the queue to a half-open slot if one is free for this
    /// address and overall.
    pub(crate) fn try_promote(&mut self) -> bool {
        if self.state != SlotState::Queued {
            return true;
        }
        let limits = &self.shared.limits;
        let mut occ = self.shared.occupancy();
        if occ.half_open >= limits.max_half_open {
            return false;
        }
        let Some(per) = occ.per_ip.get_mut(&self.ip) else {
            return false;
        };
        if per.half_open >= limits.max_half_open_per_ip {
            return false;
        }
        per.queued -= 1;
        per.half_open += 1;
        occ.queued -= 1;
        occ.half_open += 1;
        let stats = &self.shared.stats;
        stats.queued.fetch_sub(1, Ordering::Relaxed);
        stats.half_open.fetch_add(1, Ordering::Relaxed);
        self.state = SlotState::HalfOpen { validated: true };
        true
    }

    /// Waits in the queue until a half-open slot is ours, or fails with
    /// the per-address limit at `deadline`.
    pub(crate) async fn wait_for_half_open(
        &mut self,
        deadline: Instant,
    ) -> Result<(), RejectReason> {
        let wake = {
            let mut occ = self.shared.occupancy();
            let per = occ.per_ip.entry(self.ip).or_default();
            Arc::clone(per.wake.get_or_insert_with(Default::default))
        };
        loop {
            let notified = wake.notified();
            tokio::pin!(notified);
            // Registered before the check, so a slot freed right after it
            // still wakes us.
            notified.as_mut().enable();
            if self.try_promote() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(RejectReason::HalfOpenPerIpLimit(
                    self.shared.limits.max_half_open_per_ip,
                ));
            }
            let nap = (deadline - now).min(RECHECK);
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// The handshake is over: give back the half-open (or queue) slot and
    /// keep the open one.
    pub(crate) fn established(&mut self) {
        self.release_pending();
        self.state = SlotState::Established;
    }

    fn release_pending(&mut self) {
        if self.state == SlotState::Established {
            return;
        }
        let mut occ = self.shared.occupancy();
        let stats = &self.shared.stats;
        if self.state == SlotState::Queued {
            occ.queued = occ.queued.saturating_sub(1);
            stats.queued.fetch_sub(1, Ordering::Relaxed);
        } else {
            occ.half_open = occ.half_open.saturating_sub(1);
            stats.half_open.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(per) = occ.per_ip.get_mut(&self.ip) {
            match self.state {
                SlotState::Queued => per.queued = per.queued.saturating_sub(1),
                SlotState::HalfOpen { validated: true } => {
                    per.half_open = per.half_open.saturating_sub(1);
                    if per.queued > 0 {
                        if let Some(wake) = &per.wake {
                            wake.notify_one();
                        }
                    }
                }
                SlotState::HalfOpen { validated: false } => {
                    per.unvalidated = per.unvalidated.saturating_sub(1)
                }
                SlotState::Established => {}
            }
        }
        self.state = SlotState::Established;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release_pending();
        let mut occ = self.shared.occupancy();
        occ.open = occ.open.saturating_sub(1);
        if let Some(per) = occ.per_ip.get_mut(&self.ip) {
            per.open = per.open.saturating_sub(1);
            if per.is_empty() {
                occ.per_ip.remove(&self.ip);
            }
        }
        self.shared.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(per_ip: usize, queue: usize) -> Arc<Shared> {
        let limits = ServerLimits {
            max_half_open_per_ip: per_ip,
            max_queued: queue,
            max_connections_per_ip: 8,
            ..ServerLimits::default()
        };
        Shared::new(limits, Arc::default(), None)
    }

    #[test]
    fn limits_that_refuse_everything_are_invalid() {
        assert!(ServerLimits::default().validate().is_ok());
        let zeroed = [
            ServerLimits {
                max_half_open: 0,
                ..Default::default()
            },
            ServerLimits {
                max_half_open_per_ip: 0,
                ..Default::default()
            },
            ServerLimits {
                max_connections: 0,
                ..Default::default()
            },
            ServerLimits {
                max_connections_per_ip: 0,
                ..Default::default()
            },
            ServerLimits {
                idle_timeout: Duration::ZERO,
                ..Default::default()
            },
        ];
        for limits in zeroed {
            assert!(limits.validate().is_err(), "{limits:?}");
        }
        // No queue is a valid choice: bursts are then busy at once.
        assert!(ServerLimits {
            max_queued: 0,
            ..Default::default()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn over_the_per_address_cap_connections_queue_then_get_busy() {
        let s = shared(2, 2);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let a = s.admit(ip, true).unwrap();
        let _b = s.admit(ip, true).unwrap();
        let mut c = s.admit(ip, true).unwrap();
        assert!(c.is_queued());
        let _d = s.admit(ip, true).unwrap();
        assert_eq!(s.admit(ip, true).err(), Some(RejectReason::QueueFull(2)));
        assert!(!c.try_promote());
        drop(a);
        assert!(c.try_promote());
        let snap = s.stats.snapshot();
        assert_eq!((snap.open, snap.half_open, snap.queued), (3, 2, 1));
    }

    #[test]
    fn newcomers_do_not_jump_the_queue() {
        let s = shared(1, 4);
        let ip: IpAddr = [10, 0, 0, 2].into();
        let mut a = s.admit(ip, true).unwrap();
        let mut b = s.admit(ip, true).unwrap();
        assert!(b.is_queued());
        a.established();
        // A slot is free, but b was first.
        assert!(s.admit(ip, true).unwrap().is_queued());
        assert!(b.try_promote());
    }

    #[test]
    fn unproven_addresses_have_their_own_share() {
        let s = shared(1, 4);
        let ip: IpAddr = [10, 0, 0, 3].into();
        let _spoofed = s.admit(ip, false).unwrap();
        assert!(s.unvalidated_full(ip));
        assert!(s.admit(ip, false).is_err());
        // A proven address still gets its slot.
        assert!(!s.admit(ip, true).unwrap().is_queued());
    }

    #[test]
    fn per_address_connection_cap_and_release_on_drop() {
        let s = shared(16, 16);
        let ip: IpAddr = [10, 0, 0, 4].into();
        let mut held = Vec::new();
        for _ in 0..8 {
            let mut slot = s.admit(ip, true).unwrap();
            slot.established();
            held.push(slot);
        }
        assert_eq!(
            s.admit(ip, true).err(),
            Some(RejectReason::ConnectionPerIpLimit(8))
        );
        held.clear();
        assert_eq!(s.stats.snapshot(), Default::default());
        assert!(s.occupancy().per_ip.is_empty());
    }

    #[tokio::test]
    async fn a_waiter_is_woken_when_a_slot_frees_and_gives_up_at_its_deadline() {
        let s = shared(1, 4);
        let ip: IpAddr = [10, 0, 0, 5].into();
        let mut first = s.admit(ip, true).unwrap();
        let mut waiter = s.admit(ip, true).unwrap();
        let started = Instant::now();
        let freer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            first.established();
            first
        });
        waiter
            .wait_for_half_open(started + Duration::from_secs(5))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        let _first = freer.await.unwrap();
        let mut late = s.admit(ip, true).unwrap();
        let deadline = Instant::now() + Duration::from_millis(50);
        assert_eq!(
            late.wait_for_half_open(deadline).await,
            Err(RejectReason::HalfOpenPerIpLimit(1))
        );
    }

    /// The documented defaults, and the global limits: past
    /// `max_connections` or `max_half_open` a newcomer is refused at once
    /// with its reason, from any address.
    #[test]
    fn defaults_and_global_limits() {
        let d = ServerLimits::default();
        assert_eq!(
            (d.max_half_open, d.max_half_open_per_ip, d.max_queued),
            (1024, 16, 1024)
        );
        assert_eq!(
            (d.max_connections, d.max_connections_per_ip),
            (10_000, 1024)
        );
        assert_eq!(d.idle_timeout, Duration::from_secs(60));
        let s = Shared::new(
            ServerLimits {
                max_connections: 3,
                max_half_open: 2,
                ..ServerLimits::default()
            },
            Arc::default(),
            None,
        );
        let ip = |n: u8| IpAddr::from([10, 0, 1, n]);
        let mut a = s.admit(ip(1), true).unwrap();
        let mut b = s.admit(ip(2), true).unwrap();
        assert_eq!(
            s.admit(ip(3), true).err(),
            Some(RejectReason::HalfOpenLimit(2))
        );
        a.established();
        b.established();
        let _c = s.admit(ip(3), false).unwrap();
        assert_eq!(
            s.admit(ip(4), true).err(),
            Some(RejectReason::ConnectionLimit(3))
        );
        drop(a);
        assert!(s.admit(ip(4), true).is_ok());
    }
}
