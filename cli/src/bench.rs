//! `akex bench`: the load harness (see `akex::bench` and docs/benchmarks.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::linkemu::Link;
use crate::harness::loss::LossOptions;
use crate::harness::{
    default_protocols, seed_protocols, BenchError, BenchOptions, Endpoint, Report,
};
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
    /// --features rsa-kt, FFDH with --features ffdh), rustls rows
    /// (TLS13_X25519, TLS13_X25519MLKEM768, add _mTLS for client
    /// certificates) and OpenSSL rows (OpenSSL_TLS13_X25519 and
    /// OpenSSL_TLS13_X25519_mTLS, with --features openssl). Default: Noise NN, NK, XX, IK, KK (25519,
    /// ChaChaPoly, BLAKE2s), SIGMA, hybrid NK and XX, the four rustls rows
    /// and the OpenSSL rows of the build.
    #[arg(long, value_delimiter = ',')]
    protocols: Vec<String>,
    /// Measure the key-exchange seeds side by side (FFDH-3072, RSA-3072
    /// key transport, ECDH X25519, hybrid, PQ-authenticated, as far as
    /// the build has them) instead of the default rows.
    #[arg(long, conflicts_with = "protocols")]
    seeds: bool,
    /// Use the datagram transport (UDP) instead of TCP: with --loss-sweep,
    /// handshake completion under packet loss.
    #[arg(long, requires = "loss_sweep")]
    udp: bool,
    /// Handshake completion time at several loss rates (--loss) and one
    /// added RTT (--rtt, default 30 ms) through the in-process lossy UDP
    /// link; default rows Noise XX, hybrid XX and PQ XX.
    #[arg(long, requires = "udp")]
    loss_sweep: bool,
    /// Loss rates of the sweep in percent per IP packet (0 to 100).
    #[arg(long, value_delimiter = ',', default_value = "0,1,3,5,10",
          value_parser = parse_percent, requires = "loss_sweep")]
    loss: Vec<f64>,
    /// Path MTU of the lossy link (68 to 65535): larger datagrams travel
    /// as several IP fragments, any one of which may be lost.
    #[arg(long, default_value_t = 1500, requires = "loss_sweep",
          value_parser = clap::value_parser!(u16).range(68..))]
    mtu: u16,
    /// Probability (0-1) that the lossy link duplicates a datagram.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability,
          requires = "loss_sweep")]
    duplicate: f64,
    /// Probability (0-1) that the lossy link holds a datagram back half an
    /// RTT, so later ones overtake it.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability,
          requires = "loss_sweep")]
    reorder: f64,
    /// Client tasks at once in the concurrent latency phase (1 to 10000;
    /// that phase runs at most one per handshake).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: Option<u32>,
    /// Handshakes per latency phase (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    handshakes: Option<u32>,
    /// Bytes echoed through one session: a number with an optional K, M, G,
    /// KiB, MiB or GiB suffix (default 64MiB).
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Small-message echo round trips (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    messages: Option<u32>,
    /// Size of each small message in bytes (1 to 65518, one record).
    #[arg(long, default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=akex::session::MAX_RECORD_PAYLOAD as u64))]
    message_size: u64,
    /// Sessions held open at once for the memory figure (0 skips it;
    /// default 10000, fewer if the open-file limit is lower).
    #[arg(long)]
    sessions: Option<u32>,
    /// Emulated added round-trip time in milliseconds (in-process proxy;
    /// 0 to 10000).
    #[arg(long, value_parser = parse_rtt)]
    rtt: Option<f64>,
    /// Emulated bandwidth each way in Mbit/s (more than 0, at most
    /// 1000000).
    #[arg(long, value_parser = parse_bandwidth)]
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
    /// Write one SVG chart per metric (and the seeds and loss charts when
    /// measured) into this directory.
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Write a self-contained HTML report (index.html, every table and
    /// chart inline, and results.json) into this directory.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Tiny sizes for tests and a first look (seconds, not minutes).
    #[arg(long)]
    quick: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// A finite number in `min..=max` (`min` excluded if `open`).
fn parse_bounded(s: &str, min: f64, open: bool, max: f64) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("not a number: {s}"))?;
    let above = if open { v > min } else { v >= min };
    // False for NaN too.
    if above && v <= max {
        Ok(v)
    } else {
        let low = if open { "more than" } else { "at least" };
        Err(format!("{s} is out of range ({low} {min}, at most {max})"))
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    parse_bounded(s, 0.0, false, 100.0)
}

fn parse_probability(s: &str) -> Result<f64, String> {
    parse_bounded(s, 0.0, false, 1.0)
}

fn parse_rtt(s: &str) -> Result<f64, String> {
    parse_bounded(s, 0.0, false, 10_000.0)
}

fn parse_bandwidth(s: &str) -> Result<f64, String> {
    parse_bounded(s, 0.0, true, 1_000_000.0)
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
            rtt: Duration::from_secs_f64(self.rtt.unwrap_or(0.0) / 1000.0),
            bandwidth_mbit: self.bandwidth,
        });
        BenchOptions {
            handshakes: self.handshakes.unwrap_or(base.handshakes),
            concurrency: self.concurrency.unwrap_or(base.concurrency),
            size: self.size.unwrap_or(base.size),
            messages: self.messages.unwrap_or(base.messages),
            message_size: usize::try_from(self.message_size).unwrap_or(1),
            sessions: self.sessions.unwrap_or(base.sessions),
            link,
            rtt_sweep: self.rtt_sweep,
            sweep_handshakes: base.sweep_handshakes,
            server: self.server,
            progress: !self.no_progress && !self.quick,
        }
    }

    // Every value was range-checked by its parser.
    fn loss_options(&self) -> LossOptions {
        let base = LossOptions::default();
        LossOptions {
            loss_percent: self.loss.clone(),
            rtt: self
                .rtt
                .map_or(base.rtt, |ms| Duration::from_secs_f64(ms / 1000.0)),
            handshakes: match (self.handshakes, self.quick) {
                (Some(n), _) => n,
                (None, true) => 12,
                (None, false) => base.handshakes,
            },
            concurrency: self.concurrency.unwrap_or(base.concurrency),
            mtu: usize::from(self.mtu),
            duplicate: self.duplicate,
            reorder: self.reorder,
        }
    }

    fn endpoints(&self) -> Result<Vec<Endpoint>, BenchError> {
        let names = if !self.protocols.is_empty() {
            self.protocols.clone()
        } else if self.seeds {
            seed_protocols()
        } else if self.udp {
            crate::harness::loss::default_rows()
        } else {
            default_protocols()
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

/// The command that reproduces this run, from the repository root.
fn command_line() -> String {
    let features: Vec<&str> = [
        (cfg!(feature = "rsa-kt"), "rsa-kt"),
        (cfg!(feature = "ffdh"), "ffdh"),
        (cfg!(feature = "openssl"), "openssl"),
    ]
    .iter()
    .filter_map(|(on, f)| on.then_some(*f))
    .collect();
    let mut line = String::from("cargo run --release");
    if !features.is_empty() {
        line.push_str(&format!(" --features {}", features.join(",")));
    }
    line.push_str(" --");
    for arg in std::env::args().skip(1) {
        line.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'') {
            line.push_str(&format!("'{}'", arg.replace('\'', "'\\''")));
        } else {
            line.push_str(&arg);
        }
    }
    line
}

/// `--udp --loss-sweep`: only the loss sweep, then the outputs.
async fn run_loss_sweep(args: &BenchArgs, endpoints: Vec<Endpoint>) -> Result<(), BenchError> {
    let options = args.loss_options();
    eprintln!(
        "akex bench: loss sweep over UDP, {} rows, loss {:?} %, +{:?} RTT, {} handshakes per point, \
         MTU {}",
        endpoints.len(),
        options.loss_percent,
        options.rtt,
        options.handshakes,
        options.mtu
    );
    let config = serde_json::json!({
        "udp": true,
        "loss_percent": options.loss_percent,
        "rtt_ms": options.rtt.as_secs_f64() * 1000.0,
        "handshakes": options.handshakes,
        "concurrency": options.concurrency,
        "mtu": options.mtu,
        "duplicate": options.duplicate,
        "reorder": options.reorder,
        "protocols": endpoints.iter().map(Endpoint::name).collect::<Vec<_>>(),
        "quick": args.quick,
    });
    let mut report = Report::new(config);
    report.commands.push(command_line());
    report.loss_sweep = crate::harness::loss::sweep(&endpoints, &options).await?;
    println!("{}", crate::harness::loss::markdown(&report.loss_sweep));
    write_outputs(args, &report)
}

/// What an output flag writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Json,
    Markdown,
    Charts,
    Report,
}

impl Output {
    fn flag(self) -> &'static str {
        match self {
            Output::Json => "--json",
            Output::Markdown => "--markdown",
            Output::Charts => "--charts",
            Output::Report => "--report",
        }
    }
}

/// The outputs asked for, in the order they are written.
fn outputs(args: &BenchArgs) -> impl Iterator<Item = (Output, &Path)> {
    [
        (Output::Json, &args.json),
        (Output::Markdown, &args.markdown),
        (Output::Charts, &args.charts),
        (Output::Report, &args.report),
    ]
    .into_iter()
    .filter_map(|(output, path)| Some((output, path.as_deref()?)))
}

/// Fails before anything is measured if an output cannot be written: a
/// run can take many minutes, and its numbers would be lost at the end.
/// Creates the --charts and --report directories.
fn check_outputs(args: &BenchArgs) -> Result<(), BenchError> {
    for (output, path) in outputs(args) {
        let checked = match output {
            Output::Charts | Output::Report => check_dir(path),
            Output::Json | Output::Markdown => check_file(path),
        };
        checked.map_err(|e| format!("{} {}: {e}", output.flag(), path.display()))?;
    }
    Ok(())
}

/// An output directory: created if missing; files can be made in it.
fn check_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => return Err(std::io::Error::other("not a directory")),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir)?,
        Err(e) => return Err(e),
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    probe_new(&dir.join(format!(".akex-bench-probe-{}-{nanos}", std::process::id())))
}

/// An output file: an existing regular file must open for writing
/// (nothing is truncated yet); a device, pipe or socket is not opened at
/// all (opening a FIFO now would end its reader's input); a new file must
/// be creatable where it will be written.
fn check_file(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(std::io::Error::other("is a directory")),
        Ok(meta) if meta.is_file() => std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Through a dangling symlink the write creates its target.
            let target = match std::fs::read_link(path) {
                Ok(target) => path.parent().unwrap_or(Path::new("")).join(target),
                Err(_) => path.to_path_buf(),
            };
            probe_new(&target)
        }
        Err(e) => Err(e),
    }
}

/// Creates `path` (which must not exist) and removes it again.
fn probe_new(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    std::fs::remove_file(path)
}

fn write_outputs(args: &BenchArgs, report: &Report) -> Result<(), BenchError> {
    for (output, path) in outputs(args) {
        let written = match output {
            Output::Json => report.write_json(path).map(|()| path.display().to_string()),
            Output::Markdown => report
                .write_markdown(path)
                .map(|()| path.display().to_string()),
            Output::Charts => crate::harness::charts::write(report, path)
                .map(|files| format!("{} charts into {}", files.len(), path.display())),
            Output::Report => {
                crate::harness::html::write(report, path).map(|page| page.display().to_string())
            }
        };
        match written {
            Ok(what) => eprintln!("akex bench: wrote {what}"),
            Err(e) => return Err(format!("{} {}: {e}", output.flag(), path.display()).into()),
        }
    }
    Ok(())
}

pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    crate::harness::measure::set_heap_probe(live_bytes);
    let options = args.options();
    let endpoints = args.endpoints()?;
    // After the rows are known to be valid, so a refused run leaves no
    // output directories behind.
    check_outputs(&args)?;
    if args.udp {
        return run_loss_sweep(&args, endpoints).await;
    }
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
    report.commands.push(command_line());
    println!("{}", report.table());
    println!(
        "latency = TCP connect + client handshake (us); hs/cpu-s = handshakes per CPU-second \
         (getrusage, both ends when in process); bulk = payload MB/s echoed through one session; \
         wire = handshake bytes both ways incl. framing; see docs/benchmarks.md"
    );
    write_outputs(&args, &report)?;
    outcome
}
