//! The measurements, protocol by protocol, pushed into a shared
//! [`Report`] as they finish (so an interrupted run keeps what it has).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::latency::{connect, latency_phase, LatencyPhase};
use super::linkemu::{Link, Proxy};
use super::report::{Record, Report};
use super::sys;
use super::wire::Counted;
use super::{BenchError, BoxStream, Endpoint};
use akex::Handshake;

/// What to measure and how much.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Handshakes per latency phase.
    pub handshakes: u32,
    /// Client tasks in the concurrent phase.
    pub concurrency: u32,
    /// Bytes echoed through one session for the bulk figure.
    pub size: u64,
    /// Small-message round trips.
    pub messages: u32,
    /// Size of each small message.
    pub message_size: usize,
    /// Sessions held open at once for the memory figure (0 skips it).
    pub sessions: u32,
    /// Emulated link for every connection, if any.
    pub link: Option<Link>,
    /// Also measure completion time at RTT 0, 30 and 100 ms.
    pub rtt_sweep: bool,
    /// Handshakes per RTT in the sweep.
    pub sweep_handshakes: u32,
    /// Connect to this server instead of starting one in process.
    pub server: Option<SocketAddr>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            handshakes: 1000,
            concurrency: 16,
            size: 64 << 20,
            messages: 5000,
            message_size: 64,
            sessions: 10_000,
            link: None,
            rtt_sweep: false,
            sweep_handshakes: 20,
            server: None,
            progress: true,
        }
    }
}

impl BenchOptions {
    /// The `--quick` sizes: seconds for the whole default protocol set.
    pub fn quick() -> BenchOptions {
        BenchOptions {
            handshakes: 20,
            concurrency: 4,
            size: 1 << 20,
            messages: 50,
            sessions: 50,
            sweep_handshakes: 3,
            progress: false,
            ..BenchOptions::default()
        }
    }
}

static HEAP_PROBE: OnceLock<fn() -> u64> = OnceLock::new();

/// Installs a function returning the bytes currently allocated on the heap
/// (a counting global allocator in the binary); with it the harness also
/// reports heap bytes per session.
pub fn set_heap_probe(probe: fn() -> u64) {
    let _ = HEAP_PROBE.set(probe);
}

const PHASES: u64 = 6;

/// Measures every endpoint, appending to `report` as it goes.
pub async fn run(
    endpoints: Vec<Endpoint>,
    options: BenchOptions,
    report: Arc<Mutex<Report>>,
) -> Result<(), BenchError> {
    let fd_limit = sys::raise_fd_limit();
    let per_session_fds = if options.server.is_some() { 1 } else { 2 };
    let max_sessions = (fd_limit.saturating_sub(256) / per_session_fds) as u32;
    let mut options = options;
    if options.sessions > max_sessions {
        eprintln!(
            "akex bench: the open-file limit is {fd_limit} (hard limit); holding {} sessions needs \
             about {} descriptors, so the memory phase holds {max_sessions} sessions instead",
            options.sessions,
            u64::from(options.sessions) * per_session_fds + 256
        );
        options.sessions = max_sessions;
    }
    let bar = if options.progress {
        let bar = ProgressBar::new(endpoints.len() as u64 * PHASES);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    // Concurrency 1 first, every row in interleaved rounds (the ratios).
    bar.set_message("concurrency 1, interleaved rounds");
    let c1 = super::interleave::c1_phases_on_one_thread(&endpoints, &options).await?;
    for (endpoint, c1) in endpoints.into_iter().zip(c1) {
        let name = endpoint.name();
        bar.set_message(name.clone());
        let mut target = Target::start(&endpoint, &options).await?;
        let push = |metric: &str, value: f64, unit: &str| {
            let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
            r.push(Record::new(&endpoint, metric, value, unit));
        };

        // Bytes and round trips of one handshake.
        let (_, wire) = target.handshake(&endpoint).await?;
        push("handshake_bytes", (wire.written + wire.read) as f64, "B");
        push("client_bytes_sent", wire.written as f64, "B");
        push("server_bytes_sent", wire.read as f64, "B");
        push(
            "round_trips_to_first_data",
            wire.round_trips.max(1) as f64,
            "RTT",
        );

        // The protocol's own CPU cost: both ends in memory, no sockets.
        if let Some(us) = inmem_median_us(&endpoint, options.handshakes.min(500))? {
            push("inmem_handshake_us", us, "us");
        }

        // Latency at concurrency 1 (measured above) and C, with CPU time.
        let mut c1 = Some(c1);
        for (concurrency, label) in [
            (1, "c1".to_string()),
            (options.concurrency, format!("c{}", options.concurrency)),
        ] {
            let phase = match c1.take().filter(|_| concurrency == 1) {
                Some(phase) => phase,
                None => latency_phase(&endpoint, &target, options.handshakes, concurrency).await?,
            };
            for (q, qname) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9")] {
                push(
                    &format!("latency_{label}_{qname}"),
                    phase.quantile_us(q),
                    "us",
                );
            }
            push(&format!("latency_{label}_max"), phase.max_us(), "us");
            push(
                &format!("handshakes_per_s_{label}"),
                phase.per_wall_second(),
                "1/s",
            );
            push(
                &format!("handshakes_per_cpu_s_{label}"),
                phase.per_cpu_second(),
                "1/s",
            );
            bar.inc(1);
        }

        // Bulk and small messages over one session.
        let (mb_s, mb_cpu_s) = bulk_phase(&endpoint, &target, options.size).await?;
        push("bulk_echo_mb_s", mb_s, "MB/s");
        push("bulk_echo_mb_per_cpu_s", mb_cpu_s, "MB/cpu-s");
        bar.inc(1);
        let (msgs, msgs_cpu) =
            messages_phase(&endpoint, &target, options.messages, options.message_size).await?;
        push("small_messages_per_s", msgs, "1/s");
        push("small_messages_per_cpu_s", msgs_cpu, "1/cpu-s");
        bar.inc(1);

        // Memory per established session.
        if options.sessions > 0 {
            let held = memory_phase(&endpoint, &target, &options).await?;
            push("sessions_held", held.sessions as f64, "sessions");
            if held.rss > 0.0 {
                push("rss_per_session", held.rss, "B");
            }
            // OpenSSL allocates with its own malloc calls, which the
            // counting allocator does not see: no heap figure for it.
            let counted = endpoint.implementation() != super::Implementation::Openssl;
            if let Some(heap) = held.heap.filter(|h| *h > 0.0 && counted) {
                push("heap_per_session", heap, "B");
            }
            // Handshake latency while every session above is still open.
            for (q, qname) in [(0.5, "p50"), (0.99, "p99")] {
                push(
                    &format!("latency_held_{qname}"),
                    held.latency.quantile_us(q),
                    "us",
                );
            }
        }
        bar.inc(1);

        // Completion time over emulated links.
        if options.rtt_sweep {
            for rtt_ms in [0u64, 30, 100] {
                let link = Link {
                    rtt: Duration::from_millis(rtt_ms),
                    bandwidth_mbit: options.link.and_then(|l| l.bandwidth_mbit),
                };
                let swept = target.with_link(link).await?;
                let phase = latency_phase(&endpoint, &swept, options.sweep_handshakes, 1).await?;
                push(
                    &format!("completion_rtt{rtt_ms}ms_p50"),
                    phase.quantile_us(0.5),
                    "us",
                );
                push(
                    &format!("completion_rtt{rtt_ms}ms_p99"),
                    phase.quantile_us(0.99),
                    "us",
                );
            }
        }
        bar.inc(1);
        target.stop();
        report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finish_protocol(&name);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Where clients connect: an in-process server (maybe behind a link
/// emulator) or a remote one.
pub(super) struct Target {
    addr: SocketAddr,
    server: Option<tokio::task::JoinHandle<()>>,
    upstream: SocketAddr,
    _proxy: Option<Proxy>,
    /// In-process server: handshakes accepted and not yet done.
    in_flight: Arc<AtomicUsize>,
}

impl Target {
    pub(super) async fn start(
        endpoint: &Endpoint,
        options: &BenchOptions,
    ) -> Result<Target, BenchError> {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (upstream, server) = match options.server {
            Some(addr) => (addr, None),
            None => {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                let endpoint = endpoint.clone();
                let in_flight = Arc::clone(&in_flight);
                let task = tokio::spawn(async move {
                    while let Ok((tcp, _)) = listener.accept().await {
                        let _ = tcp.set_nodelay(true);
                        let endpoint = endpoint.clone();
                        let in_flight = Arc::clone(&in_flight);
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        // The echo runs in a task of its own: a task's
                        // allocation is as big as its largest state, and the
                        // handshake's must not stay allocated for as long
                        // as the session is idle.
                        tokio::spawn(async move {
                            let done = endpoint.server(tcp).await;
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            if let Ok(stream) = done {
                                tokio::spawn(echo(stream));
                            }
                        });
                    }
                });
                (addr, Some(task))
            }
        };
        let mut target = Target {
            addr: upstream,
            server,
            upstream,
            _proxy: None,
            in_flight,
        };
        if let Some(link) = options.link {
            let proxy = Proxy::start(upstream, link).await?;
            target.addr = proxy.local_addr();
            target._proxy = Some(proxy);
        }
        Ok(target)
    }

    /// The same server behind another emulated link.
    async fn with_link(&self, link: Link) -> Result<Target, BenchError> {
        let proxy = Proxy::start(self.upstream, link).await?;
        Ok(Target {
            addr: proxy.local_addr(),
            server: None,
            upstream: self.upstream,
            _proxy: Some(proxy),
            in_flight: Arc::clone(&self.in_flight),
        })
    }

    /// TCP connect plus the client handshake, with the wire counts.
    pub(super) async fn handshake(
        &self,
        endpoint: &Endpoint,
    ) -> Result<(BoxStream, super::wire::WireStats), BenchError> {
        let tcp = connect(self.addr).await?;
        let (io, counters) = Counted::new(tcp);
        let stream = endpoint.client(io).await?;
        Ok((stream, counters.snapshot()))
    }

    /// Where clients connect.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits (up to a second) until the in-process server has finished
    /// every handshake it accepted: a client is done after its last flight,
    /// and the server's work on that flight belongs to the same phase.
    pub(super) async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    pub(super) fn stop(&mut self) {
        if let Some(task) = self.server.take() {
            task.abort();
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server's application: echo everything until the peer closes.
///
/// An idle connection holds a 32-byte buffer: the 64 KiB one is allocated
/// at the first message, so the memory figure is not the echo's buffer.
async fn echo(mut stream: BoxStream) -> std::io::Result<()> {
    let mut first = [0u8; 32];
    let n = stream.read(&mut first).await?;
    if n == 0 {
        return stream.shutdown().await;
    }
    stream.write_all(&first[..n]).await?;
    stream.flush().await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n]).await?;
        stream.flush().await?;
    }
    stream.shutdown().await
}

/// Median time of `runs` full handshakes with both ends in this thread
/// and the messages passed in memory (akex rows only; `None` for the TLS
/// rows and when the server runs elsewhere).
fn inmem_median_us(endpoint: &Endpoint, runs: u32) -> Result<Option<f64>, BenchError> {
    if endpoint.is_baseline() || endpoint.responder().is_err() {
        return Ok(None);
    }
    let mut times = Vec::with_capacity(runs as usize);
    let (mut msg, mut payload) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let (Some(mut i), Some(mut r)) = (endpoint.initiator()?, endpoint.responder()?) else {
            return Ok(None);
        };
        while !(i.is_finished() && r.is_finished()) {
            msg.clear();
            payload.clear();
            if i.wants_write() {
                i.write_message(&[], &mut msg)?;
                r.read_message(&msg, &mut payload)?;
            } else if r.wants_write() {
                r.write_message(&[], &mut msg)?;
                i.read_message(&msg, &mut payload)?;
            } else {
                return Err("in-memory handshake stalled".into());
            }
        }
        std::hint::black_box((i.finish()?, r.finish()?));
        times.push(start.elapsed());
    }
    times.sort();
    Ok(Some(times[times.len() / 2].as_secs_f64() * 1e6))
}

/// Echoes `size` bytes through one session, writing and reading at once;
/// returns payload MB/s (10^6 bytes) one way, per wall-clock second and
/// per CPU-second of this process (both ends when in process).
async fn bulk_phase(
    endpoint: &Endpoint,
    target: &Target,
    size: u64,
) -> Result<(f64, f64), BenchError> {
    let (stream, _) = target.handshake(endpoint).await?;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let cpu_start = sys::cpu_time();
    let start = Instant::now();
    let write = async move {
        let chunk = vec![0x5au8; 64 * 1024];
        let mut sent = 0u64;
        while sent < size {
            let n = chunk.len().min((size - sent) as usize);
            writer.write_all(&chunk[..n]).await?;
            sent += n as u64;
        }
        writer.flush().await?;
        Ok::<_, std::io::Error>(writer)
    };
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        while got < size {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::other(
                    "the server closed during the bulk echo",
                ));
            }
            got += n as u64;
        }
        Ok(reader)
    };
    let (writer, reader) = tokio::try_join!(write, read)?;
    let elapsed = start.elapsed();
    let cpu = sys::cpu_time().saturating_sub(cpu_start);
    drop(reader.unsplit(writer));
    let mb = size as f64 / 1e6;
    Ok((
        mb / elapsed.as_secs_f64().max(1e-9),
        mb / cpu.as_secs_f64().max(1e-6),
    ))
}

/// `count` echo round trips of `size`-byte messages over one session, per
/// wall-clock second and per CPU-second of this process.
async fn messages_phase(
    endpoint: &Endpoint,
    target: &Target,
    count: u32,
    size: usize,
) -> Result<(f64, f64), BenchError> {
    let (mut stream, _) = target.handshake(endpoint).await?;
    let message = vec![0xa5u8; size.max(1)];
    let mut buf = vec![0u8; message.len()];
    let cpu_start = sys::cpu_time();
    let start = Instant::now();
    for _ in 0..count.max(1) {
        stream.write_all(&message).await?;
        stream.flush().await?;
        stream.read_exact(&mut buf).await?;
    }
    let elapsed = start.elapsed();
    let cpu = sys::cpu_time().saturating_sub(cpu_start);
    let n = f64::from(count.max(1));
    Ok((
        n / elapsed.as_secs_f64().max(1e-9),
        n / cpu.as_secs_f64().max(1e-6),
    ))
}

/// What the memory phase measured.
struct HeldSessions {
    /// Sessions held open at once.
    sessions: usize,
    /// Resident set growth per session (bytes).
    rss: f64,
    /// Heap growth per session (bytes), with a heap probe.
    heap: Option<f64>,
    /// Handshakes made while all of them were held.
    latency: LatencyPhase,
}

/// Opens `options.sessions` sessions and holds them: measures resident
/// memory and (with a heap probe) heap bytes per session, then the
/// handshake latency of new clients while they are all still open. In
/// process both ends (and the server's echo task) count.
async fn memory_phase(
    endpoint: &Endpoint,
    target: &Target,
    options: &BenchOptions,
) -> Result<HeldSessions, BenchError> {
    let (sessions, concurrency) = (options.sessions, options.concurrency);
    let heap = HEAP_PROBE.get().copied();
    // Settle: one session first, so lazily built state is not counted.
    let warm = target.handshake(endpoint).await?;
    let held: Arc<Mutex<Vec<BoxStream>>> =
        Arc::new(Mutex::new(Vec::with_capacity(sessions as usize)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let rss_before = sys::rss_bytes();
    let heap_before = heap.map(|h| h());
    let concurrency = concurrency.clamp(1, sessions.max(1));
    let mut tasks = JoinSet::new();
    for task in 0..concurrency {
        let share = sessions / concurrency + u32::from(task < sessions % concurrency);
        let endpoint = endpoint.clone();
        let addr = target.addr;
        let held = held.clone();
        tasks.spawn(async move {
            for _ in 0..share {
                let tcp = connect(addr).await?;
                let stream = endpoint.client(tcp).await?;
                held.lock().unwrap_or_else(|e| e.into_inner()).push(stream);
            }
            Ok::<_, BenchError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    // Let the server ends finish their side and park in their reads.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let count = held.lock().unwrap_or_else(|e| e.into_inner()).len();
    let n = count.max(1) as f64;
    let rss = sys::rss_bytes().saturating_sub(rss_before) as f64 / n;
    let heap = heap
        .zip(heap_before)
        .map(|(h, before)| h().saturating_sub(before) as f64 / n);
    // Closed again before the next handshake each: they add no descriptors.
    let latency = latency_phase(endpoint, target, options.handshakes.min(500), concurrency).await?;
    drop(held);
    drop(warm);
    Ok(HeldSessions {
        sessions: count,
        rss,
        heap,
        latency,
    })
}
