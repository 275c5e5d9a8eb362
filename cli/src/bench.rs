//! `akex bench`: the load harness (see `akex::bench` and docs/benchmarks.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::linkemu::Link;
use crate::harness::{default_protocols, BenchError, BenchOptions, Endpoint, Report};
use akex::handshake::registry::{self, HandshakeKeys, Mode};
use akex::handshake::sigma::sigma_aead;
use akex::keys::SigningKey;
use akex::keys::{decode_public_key, load_identity};
use akex::NoiseConfig;
use akex::{KeyKind, PublicKey};
use clap::Args;

/// Counts live heap bytes so the harness can report heap per session.
pub struct CountingAlloc;

static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        }
        p
    }
}

pub fn live_bytes() -> u64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Comma-separated rows: Noise protocol names, akex-mode names from
    /// `akex protocols` (SIGMA, hybrid, PQ; RSA key transport with
    /// --features rsa-kt) and rustls rows (TLS13_X25519,
    /// TLS13_X25519MLKEM768, add _mTLS for client certificates). Default:
    /// Noise NN, NK, XX, IK, KK (25519, ChaChaPoly, BLAKE2s), SIGMA,
    /// hybrid NK and XX, and the four TLS rows.
    #[arg(long, value_delimiter = ',')]
    protocols: Vec<String>,
    /// Client tasks at once in the concurrent latency phase.
    #[arg(long)]
    concurrency: Option<u32>,
    /// Handshakes per latency phase.
    #[arg(long)]
    handshakes: Option<u32>,
    /// Bytes echoed through one session: a number with an optional K, M, G,
    /// KiB, MiB or GiB suffix (default 64MiB).
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Small-message echo round trips.
    #[arg(long)]
    messages: Option<u32>,
    /// Size of each small message in bytes.
    #[arg(long, default_value_t = 64)]
    message_size: usize,
    /// Sessions held open at once for the memory figure (0 skips it;
    /// default 10000, fewer if the open-file limit is lower).
    #[arg(long)]
    sessions: Option<u32>,
    /// Emulated added round-trip time in milliseconds (in-process proxy).
    #[arg(long)]
    rtt: Option<f64>,
    /// Emulated bandwidth each way in Mbit/s.
    #[arg(long)]
    bandwidth: Option<f64>,
    /// Also measure handshake completion time at RTT 0, 30 and 100 ms.
    #[arg(long)]
    rtt_sweep: bool,
    /// Benchmark a separate `akex serve` at this address (one Noise,
    /// SIGMA or hybrid protocol; give the keys it needs with
    /// --identity/--remote-key).
    #[arg(long)]
    server: Option<SocketAddr>,
    /// Our private key file, with --server: X25519 (`akex keygen`), or
    /// Ed25519 (`akex keygen --type ed25519`) for SIGMA.
    #[arg(long, requires = "server")]
    identity: Option<PathBuf>,
    /// The server's public key (base64), with --server.
    #[arg(long = "remote-key", requires = "server")]
    remote_key: Option<String>,
    /// Write every number as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the table as markdown here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write one SVG chart per metric into this directory.
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Tiny sizes for tests and a first look (seconds, not minutes).
    #[arg(long)]
    quick: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s}"))?;
    let mult: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(format!("unknown size suffix in {s}")),
    };
    n.checked_mul(mult)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("size out of range: {s}"))
}

impl BenchArgs {
    fn options(&self) -> BenchOptions {
        let base = if self.quick {
            BenchOptions::quick()
        } else {
            BenchOptions::default()
        };
        let link = (self.rtt.is_some() || self.bandwidth.is_some()).then(|| Link {
            rtt: Duration::from_secs_f64(self.rtt.unwrap_or(0.0).max(0.0) / 1000.0),
            bandwidth_mbit: self.bandwidth,
        });
        BenchOptions {
            handshakes: self.handshakes.unwrap_or(base.handshakes).max(1),
            concurrency: self.concurrency.unwrap_or(base.concurrency).max(1),
            size: self.size.unwrap_or(base.size),
            messages: self.messages.unwrap_or(base.messages).max(1),
            message_size: self.message_size.max(1),
            sessions: self.sessions.unwrap_or(base.sessions),
            link,
            rtt_sweep: self.rtt_sweep,
            sweep_handshakes: base.sweep_handshakes,
            server: self.server,
            progress: !self.no_progress && !self.quick,
        }
    }

    fn endpoints(&self) -> Result<Vec<Endpoint>, BenchError> {
        let names = if self.protocols.is_empty() {
            default_protocols()
        } else {
            self.protocols.clone()
        };
        if self.server.is_some() {
            let [name] = names.as_slice() else {
                return Err("--server takes exactly one protocol in --protocols".into());
            };
            if registry::mode_of(name)? == Mode::Akex {
                return Ok(vec![Endpoint::remote_akex(name, self.remote_keys(name)?)?]);
            }
            let mut config = NoiseConfig::new(name)?;
            if let Some(path) = &self.identity {
                config = config.local_static(load_identity(path)?);
            }
            if let Some(key) = &self.remote_key {
                config = config.remote_static(PublicKey::x25519(decode_public_key(key)?));
            }
            return Ok(vec![Endpoint::remote(config)?]);
        }
        names.iter().map(|n| Endpoint::local(n.trim())).collect()
    }

    /// The client's keys for an akex-mode protocol against `--server`.
    fn remote_keys(&self, name: &str) -> Result<HandshakeKeys, BenchError> {
        let mut keys = HandshakeKeys::new();
        if let Some(path) = &self.identity {
            let key = load_identity(path)?;
            if name == akex::handshake::sigma::SIGMA_P256_AESGCM {
                let key = akex::keys::P256SigningKey::from_scalar(key.private())?;
                keys = keys.signer(std::sync::Arc::new(key));
            } else if sigma_aead(name).is_some() {
                keys = keys.signing_key(SigningKey::from_seed(key.private().clone()));
            } else {
                keys = keys.static_key(key);
            }
        }
        if let Some(key) = &self.remote_key {
            let kind = registry::remote_key_kind(name).unwrap_or(KeyKind::X25519);
            keys = keys.remote(PublicKey::from_base64(kind, key)?);
        }
        Ok(keys)
    }
}

pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    crate::harness::measure::set_heap_probe(live_bytes);
    let options = args.options();
    let endpoints = args.endpoints()?;
    let config = serde_json::json!({
        "handshakes": options.handshakes,
        "concurrency": options.concurrency,
        "size_bytes": options.size,
        "messages": options.messages,
        "message_size": options.message_size,
        "sessions": options.sessions.max(1),
        "protocols": endpoints.iter().map(Endpoint::name).collect::<Vec<_>>(),
        "in_process_server": options.server.is_none(),
        "link": options.link.map(|l| format!("rtt {:?}, bandwidth {:?} Mbit/s", l.rtt, l.bandwidth_mbit)),
        "rtt_sweep": options.rtt_sweep,
        "quick": args.quick,
    });
    let report = Arc::new(Mutex::new(Report::new(config)));
    eprintln!(
        "akex bench: {} rows, {} handshakes per phase, concurrency 1 and {}, {} bytes echoed, {} sessions held{}",
        endpoints.len(),
        options.handshakes,
        options.concurrency,
        options.size,
        options.sessions,
        if options.server.is_some() { "" } else { "; client and server in this process" },
    );
    let measured = crate::harness::run(endpoints, options, report.clone());
    let outcome = tokio::select! {
        r = measured => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\nakex bench: interrupted; what was measured so far:");
            report.lock().unwrap_or_else(|e| e.into_inner()).interrupted = true;
            Ok(())
        }
    };
    let mut report = report.lock().unwrap_or_else(|e| e.into_inner()).clone();
    report.compute_ratios();
    println!("{}", report.table());
    println!(
        "latency = TCP connect + client handshake (us); hs/cpu-s = handshakes per CPU-second \
         (getrusage, both ends when in process); bulk = payload MB/s echoed through one session; \
         wire = handshake bytes both ways incl. framing; see docs/benchmarks.md"
    );
    if let Some(path) = &args.json {
        report.write_json(path)?;
        eprintln!("akex bench: wrote {}", path.display());
    }
    if let Some(path) = &args.markdown {
        report.write_markdown(path)?;
        eprintln!("akex bench: wrote {}", path.display());
    }
    if let Some(dir) = &args.charts {
        let files = report.write_charts(dir)?;
        eprintln!(
            "akex bench: wrote {} charts into {}",
            files.len(),
            dir.display()
        );
    }
    outcome
}
