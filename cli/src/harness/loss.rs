//! Handshake completion time under packet loss (`akex bench --udp
//! --loss-sweep`): akex's datagram transport (`connect_udp` /
//! `accept_udp`, which retransmit lost handshake messages on a timer)
//! through the in-process lossy UDP link of [`super::linkemu`], at several
//! loss rates and one added RTT. TLS has no datagram mode here, so only
//! akex rows take part; TCP loss would need kernel emulation (netem),
//! which this machine lacks.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use akex::transport::datagram::{accept_udp, connect_udp, DatagramOptions};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::linkemu::{LossyLink, UdpProxy};
use super::{BenchError, Endpoint};

/// What the sweep runs.
#[derive(Debug, Clone)]
pub struct LossOptions {
    /// Loss rates in percent (per IP packet).
    pub loss_percent: Vec<f64>,
    /// Added round-trip time.
    pub rtt: Duration,
    /// Handshakes per protocol and loss rate.
    pub handshakes: u32,
    /// Handshakes in flight at once.
    pub concurrency: u32,
    /// Path MTU (bigger datagrams travel as several IP fragments).
    pub mtu: usize,
    /// Probability of duplicating a datagram.
    pub duplicate: f64,
    /// Probability of holding a datagram back half an RTT (reordering).
    pub reorder: f64,
}

impl Default for LossOptions {
    fn default() -> Self {
        LossOptions {
            loss_percent: vec![0.0, 1.0, 3.0, 5.0, 10.0],
            rtt: Duration::from_millis(30),
            handshakes: 200,
            concurrency: 16,
            mtu: 1500,
            duplicate: 0.0,
            reorder: 0.0,
        }
    }
}

/// The default rows of the sweep: classical, hybrid and PQ-authenticated
/// XX.
pub fn default_rows() -> Vec<String> {
    [
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        akex::handshake::hybrid::HYBRID_XX,
        akex::handshake::pq::PQ_XX,
    ]
    .map(String::from)
    .to_vec()
}

/// One protocol at one loss rate.
#[derive(Debug, Clone, Serialize)]
pub struct LossPoint {
    /// The protocol.
    pub protocol: String,
    /// Loss per IP packet, in percent.
    pub loss_percent: f64,
    /// Added RTT in ms.
    pub rtt_ms: f64,
    /// Handshakes that completed.
    pub completed: u64,
    /// Handshakes that timed out or failed.
    pub failed: u64,
    /// Completion time percentiles of the initiator (ms).
    pub p50_ms: f64,
    /// 90th percentile (ms).
    pub p90_ms: f64,
    /// 99th percentile (ms).
    pub p99_ms: f64,
    /// Bytes of each handshake message with empty payloads (registry), so
    /// the fragments per flight can be read off.
    pub message_sizes: Vec<usize>,
    /// Why handshakes failed (distinct messages, at most three).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// Runs the sweep over every akex row of `endpoints` (others are skipped).
pub async fn sweep(
    endpoints: &[Endpoint],
    options: &LossOptions,
) -> Result<Vec<LossPoint>, BenchError> {
    let mut points = Vec::new();
    for (row, endpoint) in endpoints.iter().enumerate() {
        if endpoint.is_baseline() {
            continue;
        }
        let name = endpoint.name();
        let sizes = akex::handshake::registry::info(&name)
            .map(|i| i.message_sizes.to_vec())
            .unwrap_or_default();
        for (i, loss) in options.loss_percent.iter().enumerate() {
            let link = LossyLink {
                rtt: options.rtt,
                loss: loss / 100.0,
                duplicate: options.duplicate,
                reorder: options.reorder,
                mtu: options.mtu,
                seed: 0x5eed_0000 + (row as u64) * 1000 + i as u64 * 100,
            };
            let (hist, failed, failures) = point(endpoint, link, options).await?;
            let q = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
            points.push(LossPoint {
                protocol: name.clone(),
                loss_percent: *loss,
                rtt_ms: options.rtt.as_secs_f64() * 1000.0,
                completed: hist.len(),
                failed,
                p50_ms: q(0.5),
                p90_ms: q(0.9),
                p99_ms: q(0.99),
                message_sizes: sizes.clone(),
                failures,
            });
        }
    }
    Ok(points)
}

/// `options.handshakes` handshakes of `endpoint` through `link`, each on
/// new sockets behind its own proxy (its own loss seed); the initiator's
/// completion times in µs, the number that failed and why.
async fn point(
    endpoint: &Endpoint,
    link: LossyLink,
    options: &LossOptions,
) -> Result<(Histogram<u64>, u64, Vec<String>), BenchError> {
    let concurrency = options.concurrency.clamp(1, options.handshakes.max(1));
    let mut tasks = JoinSet::new();
    for task in 0..concurrency {
        let share =
            options.handshakes / concurrency + u32::from(task < options.handshakes % concurrency);
        let endpoint = endpoint.clone();
        tasks.spawn(async move {
            let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
            let mut failed = 0u64;
            let mut why: Vec<String> = Vec::new();
            for n in 0..share {
                let link = LossyLink {
                    seed: link.seed ^ (u64::from(task) << 32) ^ u64::from(n),
                    ..link
                };
                match one(&endpoint, link).await {
                    Ok(t) => {
                        hist.record(t.as_micros().max(1) as u64).ok();
                    }
                    Err(e) => {
                        failed += 1;
                        let e = e.to_string();
                        if why.len() < 3 && !why.contains(&e) {
                            why.push(e);
                        }
                    }
                }
            }
            Ok::<_, BenchError>((hist, failed, why))
        });
    }
    let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut failed = 0;
    let mut failures: Vec<String> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (h, f, why) = joined??;
        hist.add(h).ok();
        failed += f;
        for e in why {
            if failures.len() < 3 && !failures.contains(&e) {
                failures.push(e);
            }
        }
    }
    Ok((hist, failed, failures))
}

/// One handshake: the responder on its own socket, the proxy in front of
/// it, the initiator timed from its first send to its keys.
async fn one(endpoint: &Endpoint, link: LossyLink) -> Result<Duration, BenchError> {
    let options = DatagramOptions::default();
    let server_socket = UdpSocket::bind("127.0.0.1:0").await?;
    let server_addr = server_socket.local_addr()?;
    let responder = endpoint
        .responder()?
        .ok_or("this row has no datagram responder")?;
    let server_options = options.clone();
    let server = tokio::spawn(async move {
        // The session stays up after the responder's keys are ready: if its
        // last flight is lost (PQ XX ends with a responder message), the
        // initiator's retransmission must be answered (`recv` does that).
        if let Ok(mut session) = accept_udp(server_socket, responder, &server_options).await {
            let _ = session.recv().await;
        }
    });
    let proxy = UdpProxy::start(server_addr, link).await?;
    let client_socket = UdpSocket::bind("127.0.0.1:0").await?;
    let initiator = endpoint
        .initiator()?
        .ok_or("this row has no datagram initiator")?;
    let start = Instant::now();
    let result = connect_udp(client_socket, proxy.local_addr(), initiator, &options).await;
    let elapsed = start.elapsed();
    // The responder may still wait for a lost last flight: it is not timed.
    server.abort();
    result?;
    Ok(elapsed)
}

/// The sweep as a markdown table.
pub fn markdown(points: &[LossPoint]) -> String {
    let mut out = String::from(
        "\n| protocol | loss | RTT | completed | failed | p50 | p90 | p99 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in points {
        let _ = writeln!(
            out,
            "| {} | {} % | {} ms | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            p.protocol,
            p.loss_percent,
            p.rtt_ms,
            p.completed,
            p.failed,
            p.p50_ms,
            p.p90_ms,
            p.p99_ms
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tiny_sweep_completes_and_loss_costs_time() {
        let endpoints = vec![Endpoint::local("Noise_NN_25519_ChaChaPoly_BLAKE2s").unwrap()];
        let options = LossOptions {
            loss_percent: vec![0.0, 50.0],
            rtt: Duration::from_millis(2),
            handshakes: 6,
            concurrency: 3,
            ..LossOptions::default()
        };
        let points = sweep(&endpoints, &options).await.unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].completed + points[0].failed, 6);
        assert_eq!(points[0].failed, 0);
        // At 50 % loss some message is almost surely retransmitted (200 ms
        // first timeout), so the slowest handshake takes longer than any
        // lossless one.
        assert!(points[1].completed > 0);
        assert!(points[1].p99_ms > points[0].p99_ms, "{points:?}");
        assert!(markdown(&points).contains("| 50 % |"));
    }
}
