//! `akex demo`: real handshakes over loopback TCP and a short benchmark,
//! all in one process, with keys generated on the spot.

use std::time::{Duration, Instant};

use akex::crypto::{OsRng, Secret, StaticSecret};
use akex::handshake::noise::NoiseProtocol;
use akex::transport::{accept, connect, TransportOptions};
use akex::{Error, NoiseConfig, NoiseHandshake, Role};
use clap::Args;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Comma-separated Noise protocol names.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Noise_NN_25519_ChaChaPoly_BLAKE2s,Noise_XX_25519_ChaChaPoly_BLAKE2s,Noise_IK_25519_ChaChaPoly_BLAKE2s,Noise_KK_25519_AESGCM_SHA256"
    )]
    protocols: Vec<String>,
    /// Handshakes per protocol, one after another over fresh TCP connections.
    #[arg(long, default_value_t = 200)]
    handshakes: u32,
    /// Bytes to stream through one session per protocol, in MiB.
    #[arg(long, default_value_t = 64)]
    bulk_mib: u64,
}

struct Row {
    protocol: String,
    p50_us: f64,
    p99_us: f64,
    per_sec: f64,
    bulk_mb_s: f64,
}

pub async fn run(args: DemoArgs) -> Result<(), Error> {
    let server_key = StaticSecret::generate(&mut OsRng);
    let client_key = StaticSecret::generate(&mut OsRng);
    println!(
        "akex demo: {} handshakes per protocol over 127.0.0.1, then {} MiB through one session",
        args.handshakes, args.bulk_mib
    );
    let mut rows = Vec::new();
    for protocol in &args.protocols {
        let (server, client) = configs_for(protocol, &server_key, &client_key)?;
        rows.push(measure(protocol, server, client, &args).await?);
    }
    println!();
    println!(
        "{:<40} {:>10} {:>10} {:>12} {:>12}",
        "protocol", "p50 (us)", "p99 (us)", "handshakes/s", "bulk MB/s"
    );
    for r in &rows {
        println!(
            "{:<40} {:>10.0} {:>10.0} {:>12.0} {:>12.0}",
            r.protocol, r.p50_us, r.p99_us, r.per_sec, r.bulk_mb_s
        );
    }
    println!("\nlatency = TCP connect + full handshake, both ends in this process; see docs/benchmarks.md");
    Ok(())
}

async fn measure(
    protocol: &str,
    server: NoiseConfig,
    client: NoiseConfig,
    args: &DemoArgs,
) -> Result<Row, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let options = TransportOptions::default();
    let server_task = {
        let options = options.clone();
        let total = args.handshakes + 1;
        tokio::spawn(async move {
            for i in 0..total {
                let (tcp, _) = listener.accept().await?;
                let _ = tcp.set_nodelay(true);
                let hs = Box::new(NoiseHandshake::responder(server.clone())?);
                let mut stream = accept(tcp, hs, &options).await?;
                if i + 1 == total {
                    // Last connection: the bulk transfer; count the bytes, answer with the count.
                    let mut buf = vec![0u8; 1 << 16];
                    let mut received = 0u64;
                    loop {
                        let n = stream.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        received += n as u64;
                    }
                    stream.write_all(&received.to_be_bytes()).await?;
                    stream.shutdown().await?;
                }
            }
            Ok::<(), Error>(())
        })
    };

    let mut hist = Histogram::<u64>::new(3).expect("3 significant figures is valid");
    let start_all = Instant::now();
    for _ in 0..args.handshakes {
        let start = Instant::now();
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let hs = Box::new(NoiseHandshake::initiator(client.clone())?);
        let _stream = connect(tcp, hs, &options).await?;
        hist.record(start.elapsed().as_micros().max(1) as u64).ok();
    }
    let elapsed = start_all.elapsed();

    let tcp = TcpStream::connect(addr).await?;
    let hs = Box::new(NoiseHandshake::initiator(client.clone())?);
    let mut stream = connect(tcp, hs, &options).await?;
    let chunk = vec![0x5au8; 1 << 16];
    let total = args.bulk_mib << 20;
    let bulk_start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let n = chunk.len().min((total - sent) as usize);
        stream.write_all(&chunk[..n]).await?;
        sent += n as u64;
    }
    // Half-close so the server sees the end and answers with its count.
    stream.shutdown().await?;
    let mut count = [0u8; 8];
    stream.read_exact(&mut count).await?;
    let bulk = bulk_start.elapsed();
    if u64::from_be_bytes(count) != total {
        return Err(akex::error::ConfigError::Invalid("bulk transfer lost bytes".into()).into());
    }
    tokio::time::timeout(Duration::from_secs(10), server_task)
        .await
        .map_err(|_| Error::Timeout(Duration::from_secs(10)))?
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;

    let row = Row {
        protocol: protocol.to_string(),
        p50_us: hist.value_at_quantile(0.5) as f64,
        p99_us: hist.value_at_quantile(0.99) as f64,
        per_sec: f64::from(args.handshakes) / elapsed.as_secs_f64(),
        bulk_mb_s: total as f64 / 1e6 / bulk.as_secs_f64(),
    };
    println!(
        "  {protocol}: {} handshakes ok, p50 {} us; {} MiB streamed",
        args.handshakes, row.p50_us, args.bulk_mib
    );
    Ok(row)
}

/// Gives each side exactly the keys its pattern uses.
fn configs_for(
    protocol: &str,
    server_key: &StaticSecret,
    client_key: &StaticSecret,
) -> Result<(NoiseConfig, NoiseConfig), Error> {
    let params = NoiseProtocol::parse(protocol)?;
    let mut server = NoiseConfig::new(protocol);
    let mut client = NoiseConfig::new(protocol);
    if params.needs_local_static(Role::Responder) {
        server = server.local_static(server_key.clone());
    }
    if params.needs_local_static(Role::Initiator) {
        client = client.local_static(client_key.clone());
    }
    if params.authenticates_peer_of(Role::Initiator) {
        client = client.remote_static(*server_key.public());
    }
    if params.authenticates_peer_of(Role::Responder) {
        server = server.remote_static(*client_key.public());
    }
    for _ in params.psk_slots() {
        let psk = Secret::<32>::random(&mut OsRng);
        server = server.psk(psk.clone());
        client = client.psk(psk);
    }
    Ok((server, client))
}
