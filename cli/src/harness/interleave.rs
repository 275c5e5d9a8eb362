//! The concurrency-1 handshake phase of every row, run in interleaved
//! rounds on a thread of its own: each round runs a share of every row's
//! handshakes, row after row, so a burst of load from another process
//! lands on all rows alike instead of on whichever row happened to be
//! running. The rows' ratios (akex against rustls and OpenSSL, handshakes
//! per CPU-second) come from this phase; on this shared machine sequential
//! phases moved single ratios by up to 0.2 between runs.
//!
//! The phase runs on a single-threaded runtime. One connection at a time
//! has no parallelism to use, and on the multi-threaded runtime every
//! message between the two in-process ends woke the other worker thread.
//! Those wake-ups and the idle worker's spinning were then counted as
//! handshake CPU: 80–115 µs per handshake here, for every row, which
//! diluted every ratio (NK against rustls: 1.64 with two workers, 1.75
//! with one, one run each).

use super::latency::{latency_phase, new_histogram, LatencyPhase};
use super::measure::{BenchOptions, Target};
use super::{BenchError, Endpoint};

/// Rounds of the interleaved phase; each row's rate is its median round.
pub const ROUNDS: u32 = 5;

/// [`c1_phases`] on a single-threaded runtime of its own, in a blocking
/// thread of the caller's runtime.
pub async fn c1_phases_on_one_thread(
    endpoints: &[Endpoint],
    options: &BenchOptions,
) -> Result<Vec<LatencyPhase>, BenchError> {
    let (endpoints, options) = (endpoints.to_vec(), options.clone());
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(c1_phases(&endpoints, &options))
    })
    .await?
}

/// Runs `options.handshakes` handshakes per row at concurrency 1, in
/// [`ROUNDS`] interleaved rounds, and returns one phase per row (in the
/// order of `endpoints`): the latencies of every round merged, the wall
/// time summed, and the handshakes per CPU-second of the median round.
pub async fn c1_phases(
    endpoints: &[Endpoint],
    options: &BenchOptions,
) -> Result<Vec<LatencyPhase>, BenchError> {
    let mut targets = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let target = Target::start(endpoint, options).await?;
        // One handshake first, so no row's first round pays for its
        // server's first accept or its lazily built state.
        target.handshake(endpoint).await?;
        targets.push(target);
    }
    let per_round = options.handshakes.div_ceil(ROUNDS).max(1);
    let mut rounds: Vec<Vec<LatencyPhase>> = endpoints.iter().map(|_| Vec::new()).collect();
    for round in 0..ROUNDS {
        // Alternate the order, so no row always runs right after another.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..endpoints.len()).collect()
        } else {
            (0..endpoints.len()).rev().collect()
        };
        for i in order {
            let phase = latency_phase(&endpoints[i], &targets[i], per_round, 1).await?;
            rounds[i].push(phase);
        }
    }
    for target in &mut targets {
        target.stop();
    }
    Ok(rounds.into_iter().map(merge).collect())
}

/// One phase from a row's rounds.
fn merge(rounds: Vec<LatencyPhase>) -> LatencyPhase {
    let mut rates: Vec<f64> = rounds.iter().map(LatencyPhase::per_cpu_second).collect();
    rates.sort_by(f64::total_cmp);
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    let mut merged = LatencyPhase::empty(new_histogram());
    for phase in &rounds {
        merged.absorb(phase);
    }
    merged.set_cpu_rate(median);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn phase(rate: f64, latency_us: u64) -> LatencyPhase {
        let mut hist = new_histogram();
        hist.record(latency_us * 1000).unwrap();
        let mut p = LatencyPhase::empty(hist);
        p.set_cpu_rate(rate);
        p
    }

    #[test]
    fn merged_rate_is_the_median_round_and_latencies_are_all_rounds() {
        let rounds = [900.0, 10.0, 1000.0, 1100.0, 5000.0]
            .iter()
            .zip(1..)
            .map(|(&r, us)| phase(r, us * 100))
            .collect();
        let merged = merge(rounds);
        assert_eq!(merged.per_cpu_second(), 1000.0);
        assert!((merged.quantile_us(0.0) - 100.0).abs() < 1.0);
        assert!((merged.max_us() - 500.0).abs() < 1.0);
    }

    #[tokio::test]
    async fn every_row_runs_its_share_in_each_round() {
        let names = ["Noise_NN_25519_ChaChaPoly_BLAKE2s", "TLS13_X25519"];
        let endpoints: Vec<Endpoint> = names.iter().map(|n| Endpoint::local(n).unwrap()).collect();
        let options = BenchOptions {
            handshakes: 12,
            ..BenchOptions::quick()
        };
        let phases = c1_phases(&endpoints, &options).await.unwrap();
        assert_eq!(phases.len(), 2);
        for p in &phases {
            // 12 over 5 rounds rounds up to 3 per round.
            assert_eq!(p.count(), 15);
            assert!(p.per_cpu_second() > 0.0);
            assert!(p.wall() > Duration::ZERO);
        }
    }
}
