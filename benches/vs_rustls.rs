//! akex against rustls TLS 1.3 in memory, like with like, in one run: full
//! handshakes with both sides in this process and no sockets, so the
//! comparison is the protocols' own CPU cost (the loopback comparison,
//! where kernel TCP and the runtime add the same fixed cost to every row,
//! is `akex bench`).
//!
//! rustls uses the configurations of `akex bench` (aws-lc-rs provider,
//! ECDSA P-256 certificates from rcgen, one key exchange group, no session
//! tickets). Pairs: server-authenticated Noise NK vs TLS X25519 and hybrid
//! NK vs TLS X25519MLKEM768; mutually authenticated Noise XX/IK/KK and
//! SIGMA vs TLS X25519 with a client certificate, hybrid XX vs TLS
//! X25519MLKEM768 with a client certificate.
//!
//! Group `vs_rustls`, then a table of medians (measured here with
//! `Instant`, 301 runs each, interleaved) and the ratios rustls/akex
//! (handshakes per CPU-second, akex over rustls).
//!
//! With `--features openssl`, the same pairs against OpenSSL TLS 1.3
//! (the system's libssl, configured like the rustls rows by
//! `cli/src/harness/openssl_baseline.rs`) in the same run: an OpenSSL
//! column in the ratio table.
//!
//! `cargo bench --bench vs_rustls [--features openssl]`; `-- --test` runs
//! each once.

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "openssl")]
#[allow(dead_code)]
#[path = "../cli/src/harness/openssl_baseline.rs"]
mod openssl_baseline;
#[cfg(feature = "openssl")]
#[path = "support/ossl_memory.rs"]
mod ossl_memory;
#[allow(dead_code)]
#[path = "../cli/src/harness/rustls_baseline.rs"]
mod rustls_baseline;
use akex::crypto::Secret;
use akex::handshake::registry::{self, HandshakeKeys};
use akex::keys::StaticSecret;
use criterion::{BenchmarkId, Criterion};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use rustls_baseline::{TlsPair, TlsVariant};

const NK: &str = "Noise_NK_25519_ChaChaPoly_BLAKE2s";
const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
const IK: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
const KK: &str = "Noise_KK_25519_ChaChaPoly_BLAKE2s";
const SIGMA: &str = "akex-sigma-x25519-ed25519-chachapoly-sha256";
const HYBRID_NK: &str = "akex-hybrid-nk-x25519-mlkem768-chachapoly-sha256";
const HYBRID_XX: &str = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256";

/// (akex protocol, the rustls row it is compared with).
const PAIRS: [(&str, &str); 7] = [
    (NK, "TLS13_X25519"),
    (HYBRID_NK, "TLS13_X25519MLKEM768"),
    (XX, "TLS13_X25519_mTLS"),
    (IK, "TLS13_X25519_mTLS"),
    (KK, "TLS13_X25519_mTLS"),
    (SIGMA, "TLS13_X25519_mTLS"),
    (HYBRID_XX, "TLS13_X25519MLKEM768_mTLS"),
];

/// Both sides' keys for `name`: each side pins the other wherever the
/// protocol authenticates it.
fn akex_keys(name: &str) -> (HandshakeKeys, HandshakeKeys) {
    if name == SIGMA {
        let i = akex::keys::SigningKey::from_seed(akex::crypto::Secret::new([1; 32]));
        let r = akex::keys::SigningKey::from_seed(akex::crypto::Secret::new([2; 32]));
        return (
            HandshakeKeys::new()
                .remote(akex::PublicKey::ed25519(*r.public()))
                .signing_key(i.clone()),
            HandshakeKeys::new()
                .remote(akex::PublicKey::ed25519(*i.public()))
                .signing_key(r),
        );
    }
    let i = StaticSecret::from_private(Secret::new([1; 32]));
    let r = StaticSecret::from_private(Secret::new([2; 32]));
    let mutual = name != NK && name != HYBRID_NK;
    let client = HandshakeKeys::new().remote(akex::PublicKey::x25519(*r.public()));
    let server = HandshakeKeys::new().static_key(r);
    if mutual {
        (
            client.static_key(i.clone()),
            server.remote(akex::PublicKey::x25519(*i.public())),
        )
    } else {
        (client, server)
    }
}

/// One full akex handshake in memory (through the registry, as the
/// command line builds it), `finish()` on both sides.
fn akex_handshake(name: &str, keys: &(HandshakeKeys, HandshakeKeys), msg: &mut Vec<u8>) {
    let mut i = registry::initiator(name, &keys.0).expect("initiator");
    let mut r = registry::responder(&[name], &keys.1).expect("responder");
    let mut payload = Vec::new();
    while !(i.is_finished() && r.is_finished()) {
        msg.clear();
        if i.wants_write() {
            i.write_message(&[], msg).expect("write");
            r.read_message(msg, &mut payload).expect("read");
        } else {
            r.write_message(&[], msg).expect("write");
            i.read_message(msg, &mut payload).expect("read");
        }
    }
    black_box(i.finish().expect("finish"));
    black_box(r.finish().expect("finish"));
}

struct Tls {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

fn tls(row: &str) -> Tls {
    let variant = TlsVariant::parse(row).expect("a TLS row");
    let pair = TlsPair::new(variant).expect("TLS configuration");
    Tls {
        client: pair.connector.config().clone(),
        server: pair.acceptor.config().clone(),
        name: pair.server_name.clone(),
    }
}

/// One full TLS 1.3 handshake in memory: records shuttled between a
/// client and a server connection until neither is handshaking, then one
/// byte each way so both have processed the other's Finished.
fn tls_handshake(t: &Tls, buf: &mut Vec<u8>) {
    let mut client = ClientConnection::new(t.client.clone(), t.name.clone()).expect("client");
    let mut server = ServerConnection::new(t.server.clone()).expect("server");
    loop {
        let mut moved = false;
        while client.wants_write() {
            buf.clear();
            client.write_tls(buf).expect("client write_tls");
            server
                .read_tls(&mut buf.as_slice())
                .expect("server read_tls");
            server.process_new_packets().expect("server process");
            moved = true;
        }
        while server.wants_write() {
            buf.clear();
            server.write_tls(buf).expect("server write_tls");
            client
                .read_tls(&mut buf.as_slice())
                .expect("client read_tls");
            client.process_new_packets().expect("client process");
            moved = true;
        }
        if !moved || !(client.is_handshaking() || server.is_handshaking()) {
            break;
        }
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    // Application data both ways, as the akex rows' finish() implies keys.
    client.writer().write_all(b"x").expect("client write");
    buf.clear();
    client.write_tls(buf).expect("client write_tls");
    server
        .read_tls(&mut buf.as_slice())
        .expect("server read_tls");
    server.process_new_packets().expect("server process");
    let mut byte = [0u8; 1];
    server.reader().read_exact(&mut byte).expect("server read");
    black_box((client, server));
}

fn median_of(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// The OpenSSL row compared with a rustls row (`OpenSSL_` + its name).
#[cfg(feature = "openssl")]
fn openssl_row(tls_row: &str) -> Option<String> {
    let name = format!("{}{tls_row}", openssl_baseline::PREFIX);
    openssl_baseline::OsslVariant::parse(&name)
        .filter(|v| openssl_baseline::OsslVariant::available().contains(v))
        .map(|_| name)
}

/// Medians measured here, interleaved round by round so load from other
/// processes hits every row alike, then the like-with-like ratios.
fn print_ratios(quick: bool) {
    let runs = if quick { 3 } else { 301 };
    let rounds = if quick { 1 } else { 5 };
    let mut rows: Vec<(String, Vec<Duration>)> = Vec::new();
    let akex: Vec<_> = PAIRS
        .iter()
        .map(|(name, _)| (*name, akex_keys(name)))
        .collect();
    let mut tls_rows: Vec<(&str, Tls)> = Vec::new();
    for (_, row) in PAIRS {
        if !tls_rows.iter().any(|(r, _)| *r == row) {
            tls_rows.push((row, tls(row)));
        }
    }
    #[cfg(feature = "openssl")]
    let ossl_rows: Vec<(String, openssl_baseline::OsslPair)> = tls_rows
        .iter()
        .filter_map(|(row, _)| openssl_row(row))
        .map(|name| {
            let v = openssl_baseline::OsslVariant::parse(&name).expect("an OpenSSL row");
            (
                name,
                openssl_baseline::OsslPair::new(v).expect("OpenSSL contexts"),
            )
        })
        .collect();
    let mut buf = Vec::with_capacity(16 * 1024);
    for _ in 0..rounds {
        for (name, keys) in &akex {
            let m = median_of(runs / rounds.max(1), || {
                akex_handshake(name, keys, &mut buf)
            });
            push(&mut rows, name, m);
        }
        for (row, t) in &tls_rows {
            let m = median_of(runs / rounds.max(1), || tls_handshake(t, &mut buf));
            push(&mut rows, row, m);
        }
        #[cfg(feature = "openssl")]
        for (row, pair) in &ossl_rows {
            let m = median_of(runs / rounds.max(1), || ossl_memory::handshake(pair));
            push(&mut rows, row, m);
        }
    }
    let median = |name: &str| -> Option<Duration> {
        let (_, v) = rows.iter().find(|(n, _)| n == name)?;
        let mut v = v.clone();
        v.sort();
        Some(v[v.len() / 2])
    };
    println!(
        "\nakex vs rustls (and OpenSSL) in memory, same run (both sides, median of {rounds} rounds); \
         ratio = akex/baseline handshakes per CPU-s:"
    );
    for (name, row) in PAIRS {
        let (Some(a), Some(t)) = (median(name), median(row)) else {
            continue;
        };
        #[allow(unused_mut)]
        let mut line = format!(
            "  {name:<50} {a:>10.1?}   {row:<26} {t:>10.1?} ratio {:.2}",
            t.as_secs_f64() / a.as_secs_f64()
        );
        #[cfg(feature = "openssl")]
        if let Some(o) = openssl_row(row).and_then(|r| median(&r)) {
            line.push_str(&format!(
                "   OpenSSL {o:>10.1?} ratio {:.2}",
                o.as_secs_f64() / a.as_secs_f64()
            ));
        }
        println!("{line}");
    }
}

fn push(rows: &mut Vec<(String, Vec<Duration>)>, name: &str, m: Duration) {
    match rows.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => v.push(m),
        None => rows.push((name.to_string(), vec![m])),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("vs_rustls");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    let mut buf = Vec::with_capacity(16 * 1024);
    for (name, _) in PAIRS {
        let keys = akex_keys(name);
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| akex_handshake(name, &keys, &mut buf))
        });
    }
    let mut done: Vec<&str> = Vec::new();
    for (_, row) in PAIRS {
        if done.contains(&row) {
            continue;
        }
        done.push(row);
        let t = tls(row);
        g.bench_function(BenchmarkId::from_parameter(row), |b| {
            b.iter(|| tls_handshake(&t, &mut buf))
        });
        #[cfg(feature = "openssl")]
        if let Some(name) = openssl_row(row) {
            let v = openssl_baseline::OsslVariant::parse(&name).expect("an OpenSSL row");
            let pair = openssl_baseline::OsslPair::new(v).expect("OpenSSL contexts");
            g.bench_function(BenchmarkId::from_parameter(&name), |b| {
                b.iter(|| ossl_memory::handshake(&pair))
            });
        }
    }
    g.finish();
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
    print_ratios(quick);
}
