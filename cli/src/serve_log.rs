//! `akex serve`'s log: one line per event, but at most a few lines of each
//! kind per interval; the rest are counted and summed up in one line when
//! the interval ends, so a flood writes a bounded number of lines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akex::transport::datagram::{DatagramStats, DatagramStatsSnapshot};
use akex::transport::ServerEvent;

use crate::key_files::b64;

/// Lines of one kind shown per interval before the rest are only counted.
const SHOWN_SUCCESSES: usize = 100;
const SHOWN_FAILURES: usize = 5;
/// Kinds tracked per interval; beyond it, lines are counted as "other".
const MAX_KINDS: usize = 64;

struct State {
    started: Instant,
    /// Per kind: lines shown and lines held back in this interval.
    kinds: HashMap<String, (usize, u64)>,
    udp_seen: DatagramStatsSnapshot,
}

/// The aggregating log. Clone the `Arc` into event callbacks and handlers.
pub struct ServeLog {
    interval: Duration,
    state: Mutex<State>,
    udp: Option<Arc<DatagramStats>>,
}

impl ServeLog {
    pub fn new(interval: Duration, udp: Option<Arc<DatagramStats>>) -> Arc<ServeLog> {
        let log = Arc::new(ServeLog {
            interval,
            state: Mutex::new(State {
                started: Instant::now(),
                kinds: HashMap::new(),
                udp_seen: DatagramStatsSnapshot::default(),
            }),
            udp,
        });
        // The summary of the last interval must come even if nothing else
        // happens after it.
        let ticker = Arc::clone(&log);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                ticker.flush();
            }
        });
        log
    }

    /// Prints `line` unless `kind` already had its share in this interval.
    pub fn line(&self, kind: &str, shown: usize, line: String) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.started.elapsed() >= self.interval {
            self.flush_locked(&mut state);
        }
        let kind = if state.kinds.len() >= MAX_KINDS && !state.kinds.contains_key(kind) {
            "other events"
        } else {
            kind
        };
        let entry = state.kinds.entry(kind.to_string()).or_insert((0, 0));
        if entry.0 < shown {
            entry.0 += 1;
            eprintln!("{line}");
        } else {
            entry.1 += 1;
        }
    }

    /// Ends the interval: one line per kind that held lines back, and the
    /// UDP packet counters that moved.
    pub fn flush(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.started.elapsed() + Duration::from_millis(50) >= self.interval {
            self.flush_locked(&mut state);
        }
    }

    fn flush_locked(&self, state: &mut State) {
        let secs = self.interval.as_secs_f64();
        let mut held: Vec<_> = state
            .kinds
            .iter()
            .filter(|(_, (_, held))| *held > 0)
            .map(|(kind, (_, held))| (kind.clone(), *held))
            .collect();
        held.sort();
        for (kind, count) in held {
            eprintln!(
                "akex serve: {count} more \"{kind}\" in the last {secs}s, not shown one by one"
            );
        }
        state.kinds.clear();
        state.started = Instant::now();
        if let Some(udp) = &self.udp {
            let now = udp.snapshot();
            if let Some(line) = udp_summary(&state.udp_seen, &now) {
                eprintln!("akex serve: udp, last {secs}s: {line}");
            }
            state.udp_seen = now;
        }
    }

    /// Logs a server event.
    pub fn event(&self, event: &ServerEvent) {
        match event {
            ServerEvent::Established { peer, info } => self.line(
                "handshake ok",
                SHOWN_SUCCESSES,
                format!(
                    "akex serve: {peer}: handshake ok protocol={} remote_key={} handshake_hash={}",
                    info.protocol,
                    info.remote_static
                        .as_deref()
                        .map(b64)
                        .unwrap_or_else(|| "none".into()),
                    hex::encode(&info.handshake_hash),
                ),
            ),
            ServerEvent::Closed { .. } => {} // the handler logs the count
            other => {
                let Some(reason) = other.failure() else {
                    return;
                };
                let line = match other.peer() {
                    Some(peer) => format!("akex serve: {peer}: failed: {reason}"),
                    None => format!("akex serve: {reason}"),
                };
                self.line(&format!("failed: {reason}"), SHOWN_FAILURES, line);
            }
        }
    }

    /// Logs the end of an echo session.
    pub fn closed(&self, peer: std::net::SocketAddr, count: u64) {
        self.line(
            "closed",
            SHOWN_SUCCESSES,
            format!("akex serve: {peer}: closed after echoing {count} message(s)"),
        );
    }
}

/// What moved between two snapshots, or `None` if nothing did.
fn udp_summary(old: &DatagramStatsSnapshot, new: &DatagramStatsSnapshot) -> Option<String> {
    let (o, n) = (&old.connections, &new.connections);
    let fields = [
        ("datagrams in", new.datagrams_in - old.datagrams_in),
        ("datagrams out", new.datagrams_out - old.datagrams_out),
        ("malformed", n.malformed - o.malformed),
        (
            "unknown connection",
            n.wrong_connection - o.wrong_connection,
        ),
        ("wrong address", n.wrong_address - o.wrong_address),
        ("repeats not answered", n.duplicates - o.duplicates),
        ("out of turn", n.unexpected - o.unexpected),
        ("records not opened", n.forged - o.forged),
        (
            "handshake resends",
            n.handshake_resends - o.handshake_resends,
        ),
        ("held by the 3x limit", n.over_budget - o.over_budget),
        ("roamed", n.roamed - o.roamed),
        ("cookies sent", new.cookies_sent - old.cookies_sent),
        ("bad cookies", new.bad_tokens - old.bad_tokens),
        ("busy sent", new.busy_sent - old.busy_sent),
        ("queue full", new.inbox_full - old.inbox_full),
        (
            "replayed initiations",
            new.closed_connection - old.closed_connection,
        ),
    ];
    let moved: Vec<String> = fields
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    (!moved.is_empty()).then(|| moved.join(", "))
}
