//! `akex demo`: one real handshake per protocol over loopback TCP (both
//! ends checked to agree), then a short run of the `akex bench` harness
//! with rustls beside akex, all in one process, keys generated on the spot.

use std::sync::{Arc, Mutex};

use crate::harness::{BenchError, BenchOptions, Endpoint, Report};
use akex::transport::{accept, connect, TransportOptions};
use akex::Error;
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Comma-separated rows, as for `akex bench --protocols`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Noise_NK_25519_ChaChaPoly_BLAKE2s,Noise_XX_25519_ChaChaPoly_BLAKE2s,akex-sigma-x25519-ed25519-chachapoly-sha256,akex-hybrid-nk-x25519-mlkem768-chachapoly-sha256,TLS13_X25519,TLS13_X25519MLKEM768,TLS13_X25519_mTLS"
    )]
    protocols: Vec<String>,
    /// Handshakes per protocol in each latency phase (concurrency 1 and
    /// 4; at least 1).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    handshakes: u32,
    /// Bytes to echo through one session per protocol, in MiB (1 to
    /// 1048576).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    bulk_mib: u64,
    /// Sessions held open at once for the memory figure.
    #[arg(long, default_value_t = 500)]
    sessions: u32,
}

pub async fn run(args: DemoArgs) -> Result<(), BenchError> {
    crate::harness::measure::set_heap_probe(crate::bench::live_bytes);
    let endpoints = args
        .protocols
        .iter()
        .map(|n| Endpoint::local(n.trim()))
        .collect::<Result<Vec<_>, _>>()?;

    println!("akex demo: one handshake per akex protocol over 127.0.0.1, both ends compared");
    for endpoint in &endpoints {
        if !endpoint.is_baseline() {
            show_one_handshake(endpoint).await?;
        }
    }

    let options = BenchOptions {
        handshakes: args.handshakes,
        concurrency: 4,
        size: args.bulk_mib << 20,
        messages: 1000,
        sessions: args.sessions,
        progress: false,
        ..BenchOptions::default()
    };
    println!(
        "\nakex demo: benchmark ({} handshakes per phase at concurrency 1 and {}, {} MiB echoed, \
         {} sessions held; akex bench for the full run):",
        options.handshakes, options.concurrency, args.bulk_mib, options.sessions
    );
    let report = Arc::new(Mutex::new(Report::new(serde_json::json!({ "demo": true }))));
    crate::harness::run(endpoints, options, report.clone()).await?;
    let mut report = report.lock().unwrap_or_else(|e| e.into_inner()).clone();
    report.compute_ratios();
    println!("{}", report.table());
    println!(
        "latency = TCP connect + client handshake (us), both ends in this process; hs/cpu-s = \
         handshakes per CPU-second; see docs/benchmarks.md"
    );
    Ok(())
}

/// One handshake over a fresh TCP connection, one message each way; prints
/// what both ends agreed on.
async fn show_one_handshake(endpoint: &Endpoint) -> Result<(), BenchError> {
    let (Some(initiator), Some(responder)) = (endpoint.initiator()?, endpoint.responder()?) else {
        return Ok(());
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let options = TransportOptions::default();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut stream = accept(tcp, responder, &TransportOptions::default()).await?;
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await?;
        stream.write_all(&buf).await?;
        stream.shutdown().await?;
        Ok::<_, Error>(stream.session_info().clone())
    });
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let mut stream = connect(tcp, initiator, &options).await?;
    stream.write_all(b"hello").await?;
    stream.flush().await?;
    let mut echo = [0u8; 5];
    stream.read_exact(&mut echo).await?;
    stream.shutdown().await?;
    let client = stream.session_info().clone();
    let server = server.await??;
    if client.handshake_hash != server.handshake_hash || &echo != b"hello" {
        return Err(format!("{}: the two ends disagree", endpoint.name()).into());
    }
    println!(
        "  {}: ok, handshake hash {}…, server key {}",
        client.protocol,
        hex::encode(&client.handshake_hash[..8]),
        client
            .remote_static
            .as_deref()
            .map(|k| format!("{}… (authenticated)", hex::encode(&k[..k.len().min(8)])))
            .unwrap_or_else(|| "none".into()),
    );
    Ok(())
}
