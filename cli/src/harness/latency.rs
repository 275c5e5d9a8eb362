//! Handshake latency phases: `total` new connections, each a TCP connect
//! plus a full handshake, with their latencies and rates.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use std::net::SocketAddr;

use super::measure::Target;
use super::sys;
use super::{BenchError, Endpoint};

/// Handshake latencies and rates of one phase.
pub struct LatencyPhase {
    hist: Histogram<u64>,
    count: u64,
    wall: Duration,
    /// Handshakes per CPU-second (a median over rounds when merged).
    cpu_rate: f64,
}

impl LatencyPhase {
    pub(super) fn empty(hist: Histogram<u64>) -> LatencyPhase {
        LatencyPhase {
            hist,
            count: 0,
            wall: Duration::ZERO,
            cpu_rate: 0.0,
        }
    }
    /// Adds another phase's latencies, count and wall time.
    pub(super) fn absorb(&mut self, other: &LatencyPhase) {
        self.hist.add(&other.hist).ok();
        self.count += other.count;
        self.wall += other.wall;
    }
    pub(super) fn set_cpu_rate(&mut self, rate: f64) {
        self.cpu_rate = rate;
    }
    pub(super) fn quantile_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }
    pub(super) fn max_us(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }
    pub(super) fn per_wall_second(&self) -> f64 {
        self.count as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    #[cfg(test)]
    pub(super) fn count(&self) -> u64 {
        self.count
    }
    #[cfg(test)]
    pub(super) fn wall(&self) -> Duration {
        self.wall
    }
    pub(super) fn per_cpu_second(&self) -> f64 {
        self.cpu_rate
    }
}

pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new(3).expect("3 significant figures is valid")
}

/// `total` handshakes (TCP connect + handshake, each on a new connection)
/// spread over `concurrency` client tasks.
pub(super) async fn latency_phase(
    endpoint: &Endpoint,
    target: &Target,
    total: u32,
    concurrency: u32,
) -> Result<LatencyPhase, BenchError> {
    let concurrency = concurrency.clamp(1, total.max(1));
    let total = total.max(concurrency);
    let addr = target.addr();
    let cpu_start = sys::cpu_time();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..concurrency {
        let share = total / concurrency + u32::from(task < total % concurrency);
        let endpoint = endpoint.clone();
        tasks.spawn(async move {
            let mut hist = new_histogram();
            for _ in 0..share {
                let t = Instant::now();
                let tcp = connect(addr).await?;
                let stream = endpoint.client(tcp).await?;
                hist.record(t.elapsed().as_nanos().max(1) as u64).ok();
                drop(stream);
            }
            Ok::<_, BenchError>(hist)
        });
    }
    let mut hist = new_histogram();
    while let Some(joined) = tasks.join_next().await {
        hist.add(joined??).ok();
    }
    target.settle().await;
    let cpu = sys::cpu_time().saturating_sub(cpu_start);
    Ok(LatencyPhase {
        count: hist.len(),
        cpu_rate: hist.len() as f64 / cpu.as_secs_f64().max(1e-6),
        hist,
        wall: start.elapsed(),
    })
}

/// A client connection for a measurement, without Nagle's delay.
pub(super) async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}
