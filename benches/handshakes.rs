//! Handshake latency and record throughput: akex next to snow used directly.
//!
//! Groups:
//! - `primitives`: X25519 keygen and DH, AEAD seal per size, all via akex's
//!   aws-lc-rs wrappers; Ed25519 sign/verify (ed25519-dalek); SHA-256 and
//!   HKDF-SHA-256 (aws-lc-rs).
//! - `handshake`: a full in-memory handshake (both sides in this process)
//!   for NN, NK, XX, IK and KK, through akex and through snow's default
//!   resolver, so the gain from the aws-lc-rs resolver shows.
//! - `session`: seal + open of one record per size, through `Session`, raw
//!   `AeadKey`, and snow's `TransportState`.
//!
//! `cargo bench --bench handshakes -- --test` runs each benchmark once.

use std::hint::black_box;
use std::time::{Duration, Instant};

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::hazmat::aead::{AeadKey, TAG_LEN};
use akex::hazmat::x25519::X25519Private;
use akex::keys::StaticSecret;
use akex::session::MAX_PLAINTEXT_LEN;
use akex::{Handshake, NoiseConfig, NoiseHandshake, Session};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};

#[path = "support/floor.rs"]
mod floor;

const AEADS: [AeadAlgorithm; 2] = [AeadAlgorithm::ChaChaPoly, AeadAlgorithm::AesGcm];

/// One pattern and which static keys each side holds or knows beforehand.
struct Pattern {
    name: &'static str,
    initiator_static: bool,
    responder_static: bool,
    initiator_knows_responder: bool,
    responder_knows_initiator: bool,
}

const PATTERNS: [Pattern; 5] = [
    Pattern {
        name: "NN",
        initiator_static: false,
        responder_static: false,
        initiator_knows_responder: false,
        responder_knows_initiator: false,
    },
    Pattern {
        name: "NK",
        initiator_static: false,
        responder_static: true,
        initiator_knows_responder: true,
        responder_knows_initiator: false,
    },
    Pattern {
        name: "XX",
        initiator_static: true,
        responder_static: true,
        initiator_knows_responder: false,
        responder_knows_initiator: false,
    },
    Pattern {
        name: "IK",
        initiator_static: true,
        responder_static: true,
        initiator_knows_responder: true,
        responder_knows_initiator: false,
    },
    Pattern {
        name: "KK",
        initiator_static: true,
        responder_static: true,
        initiator_knows_responder: true,
        responder_knows_initiator: true,
    },
];

fn protocol_name(pattern: &str) -> String {
    named(pattern, "BLAKE2s")
}

/// The pattern's name with ChaChaPoly and `hash`.
fn named(pattern: &str, hash: &str) -> String {
    format!("Noise_{pattern}_25519_ChaChaPoly_{hash}")
}

/// Long-term keys made once, outside every timed loop.
struct Keys {
    initiator: StaticSecret,
    responder: StaticSecret,
}

impl Keys {
    fn new() -> Self {
        Keys {
            initiator: StaticSecret::generate(&mut OsRng),
            responder: StaticSecret::generate(&mut OsRng),
        }
    }
}

/// Moves messages between the two sides until both are done.
fn pump(alice: &mut NoiseHandshake, bob: &mut NoiseHandshake, buf: &mut Vec<u8>) {
    let mut payload = Vec::new();
    while !(alice.is_finished() && bob.is_finished()) {
        let (from, to) = if alice.wants_write() {
            (&mut *alice, &mut *bob)
        } else {
            (&mut *bob, &mut *alice)
        };
        buf.clear();
        from.write_message(b"", buf).expect("handshake write");
        to.read_message(buf, &mut payload).expect("handshake read");
    }
}

fn akex_configs(pattern: &Pattern, keys: &Keys) -> (NoiseConfig, NoiseConfig) {
    akex_configs_named(pattern, keys, &protocol_name(pattern.name))
}

fn akex_configs_named(pattern: &Pattern, keys: &Keys, name: &str) -> (NoiseConfig, NoiseConfig) {
    let mut initiator = NoiseConfig::new(name).unwrap();
    let mut responder = NoiseConfig::new(name).unwrap();
    if pattern.initiator_static {
        initiator = initiator.local_static(keys.initiator.clone());
    }
    if pattern.responder_static {
        responder = responder.local_static(keys.responder.clone());
    }
    if pattern.initiator_knows_responder {
        initiator = initiator.remote_static(akex::PublicKey::x25519(*keys.responder.public()));
    }
    if pattern.responder_knows_initiator {
        responder = responder.remote_static(akex::PublicKey::x25519(*keys.initiator.public()));
    }
    (initiator, responder)
}

/// A full akex handshake ending in two usable sessions.
fn akex_handshake(pattern: &Pattern, keys: &Keys, buf: &mut Vec<u8>) -> (Session, Session) {
    let configs = akex_configs(pattern, keys);
    handshake_from(&configs, buf)
}

/// A full akex handshake from prepared configurations (as a server keeps
/// them), ending in two usable sessions.
fn handshake_from(configs: &(NoiseConfig, NoiseConfig), buf: &mut Vec<u8>) -> (Session, Session) {
    let (ic, rc) = (configs.0.clone(), configs.1.clone());
    let mut alice = Box::new(NoiseHandshake::initiator(ic).expect("initiator config"));
    let mut bob = Box::new(NoiseHandshake::responder(rc).expect("responder config"));
    pump(alice.as_mut(), bob.as_mut(), buf);
    (
        Session::new(alice.finish().expect("finish")),
        Session::new(bob.finish().expect("finish")),
    )
}

/// A full snow handshake with its default (RustCrypto) resolver, ending in
/// two transport states: the same work as `akex_handshake`.
fn snow_handshake(
    pattern: &Pattern,
    keys: &Keys,
    buf: &mut [u8],
) -> (snow::TransportState, snow::TransportState) {
    let params: snow::params::NoiseParams = protocol_name(pattern.name).parse().expect("params");
    let mut ib = snow::Builder::new(params.clone());
    let mut rb = snow::Builder::new(params);
    let (ipriv, rpriv) = (keys.initiator.private(), keys.responder.private());
    if pattern.initiator_static {
        ib = ib.local_private_key(ipriv.expose()).expect("key");
    }
    if pattern.responder_static {
        rb = rb.local_private_key(rpriv.expose()).expect("key");
    }
    if pattern.initiator_knows_responder {
        ib = ib.remote_public_key(keys.responder.public()).expect("key");
    }
    if pattern.responder_knows_initiator {
        rb = rb.remote_public_key(keys.initiator.public()).expect("key");
    }
    let mut alice = ib.build_initiator().expect("initiator");
    let mut bob = rb.build_responder().expect("responder");
    let mut payload = [0u8; 64];
    while !(alice.is_handshake_finished() && bob.is_handshake_finished()) {
        let (from, to) = if alice.is_my_turn() {
            (&mut alice, &mut bob)
        } else {
            (&mut bob, &mut alice)
        };
        let n = from.write_message(&[], buf).expect("snow write");
        to.read_message(&buf[..n], &mut payload).expect("snow read");
    }
    (
        alice.into_transport_mode().expect("transport"),
        bob.into_transport_mode().expect("transport"),
    )
}

fn primitives(c: &mut Criterion) {
    let mut group = c.benchmark_group("primitives");
    group.bench_function("x25519_keygen", |b| {
        // The random draw is setup; the timed part parses the scalar and
        // derives the public key.
        b.iter_batched(
            || Secret::<32>::random(&mut OsRng),
            |secret| X25519Private::new(&secret),
            BatchSize::SmallInput,
        )
    });
    let ours = X25519Private::new(&Secret::random(&mut OsRng));
    let theirs = *X25519Private::new(&Secret::random(&mut OsRng)).public();
    group.bench_function("x25519_agree", |b| {
        b.iter(|| ours.agree(black_box(&theirs)).expect("agree"))
    });

    let signing = akex::keys::SigningKey::from_seed(akex::crypto::Secret::new([11u8; 32]));
    let verifying = *signing.public();
    let message = [0x42u8; 64];
    let signature = signing.sign(&message);
    group.bench_function("ed25519_sign", |b| {
        b.iter(|| signing.sign(black_box(&message)))
    });
    group.bench_function("ed25519_verify", |b| {
        b.iter(|| {
            akex::hazmat::ed25519::verify(&verifying, black_box(&message), &signature)
                .expect("verify")
        })
    });
    let transcript = [0x17u8; 128];
    group.bench_function("sha256_128B", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(&transcript)))
    });
    group.bench_function("hkdf_sha256_extract_expand_64B", |b| {
        b.iter(|| hkdf_sha256(black_box(&[1u8; 32]), black_box(&[2u8; 32])))
    });

    for aead in AEADS {
        let key = AeadKey::new(aead, &[7u8; 32]);
        for size in [64usize, 1024, 16 * 1024, 64 * 1024] {
            let plain = vec![0x5au8; size];
            let mut out = vec![0u8; size + TAG_LEN];
            let mut n = 0u64;
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("seal_{}", aead.noise_name()), size),
                &plain,
                |b, plain| {
                    b.iter(|| {
                        n += 1;
                        key.seal_to(n, &[], plain, &mut out)
                    })
                },
            );
        }
    }
    group.finish();
}

/// HKDF-SHA-256: extract from `salt` and `ikm`, expand 64 bytes (two keys).
fn hkdf_sha256(salt: &[u8], ikm: &[u8]) -> [u8; 64] {
    use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
    struct Len64;
    impl aws_lc_rs::hkdf::KeyType for Len64 {
        fn len(&self) -> usize {
            64
        }
    }
    let mut out = [0u8; 64];
    Salt::new(HKDF_SHA256, salt)
        .extract(ikm)
        .expand(&[b"akex bench"], Len64)
        .expect("expand")
        .fill(&mut out)
        .expect("fill");
    out
}

fn handshake(c: &mut Criterion) {
    let keys = Keys::new();
    let mut group = c.benchmark_group("handshake");
    for pattern in &PATTERNS {
        let mut buf = Vec::with_capacity(1024);
        group.bench_function(BenchmarkId::new("akex", pattern.name), |b| {
            b.iter(|| akex_handshake(pattern, &keys, &mut buf))
        });
        let mut buf = vec![0u8; 1024];
        group.bench_function(BenchmarkId::new("snow", pattern.name), |b| {
            b.iter(|| snow_handshake(pattern, &keys, &mut buf))
        });
    }
    group.finish();
}

fn session(c: &mut Criterion) {
    let keys = Keys::new();
    let nn = &PATTERNS[0];
    let mut scratch = Vec::new();
    let (mut alice, mut bob) = akex_handshake(nn, &keys, &mut scratch);
    let mut raw_buf = vec![0u8; 1024];
    let (mut snow_alice, mut snow_bob) = snow_handshake(nn, &keys, &mut raw_buf);
    let raw_key = AeadKey::new(AeadAlgorithm::ChaChaPoly, &[9u8; 32]);
    let mut raw_n = 0u64;

    let mut group = c.benchmark_group("session");
    // 64 KiB - 16 is one byte over a Noise message, so the largest record
    // is the largest plaintext that fits: 65535 - 16.
    for size in [64usize, 1024, 16 * 1024, MAX_PLAINTEXT_LEN] {
        let plain = vec![0xa5u8; size];
        let mut buf = Vec::with_capacity(size + TAG_LEN);
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_with_input(
            BenchmarkId::new("akex_session", size),
            &plain,
            |b, plain| {
                b.iter(|| {
                    buf.clear();
                    buf.extend_from_slice(plain);
                    alice.seal_in_place(&mut buf).expect("seal");
                    bob.open_in_place(&mut buf).expect("open")
                })
            },
        );

        group.bench_with_input(BenchmarkId::new("aead_key", size), &plain, |b, plain| {
            b.iter(|| {
                raw_n += 1;
                buf.clear();
                buf.extend_from_slice(plain);
                raw_key.seal_in_place(raw_n, &[], &mut buf);
                raw_key.open_in_place(raw_n, &[], &mut buf).expect("open")
            })
        });

        let mut wire = vec![0u8; size + TAG_LEN];
        let mut out = vec![0u8; size];
        group.bench_with_input(BenchmarkId::new("snow", size), &plain, |b, plain| {
            b.iter(|| {
                let n = snow_alice.write_message(plain, &mut wire).expect("write");
                snow_bob.read_message(&wire[..n], &mut out).expect("read")
            })
        });
    }
    group.finish();
}

/// Median of `runs` timings of `f`, for the lower-bound line below.
fn median_of(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// Prints each handshake's lower bound as docs/benchmarks.md defines it
/// (every primitive operation, counted, × its median; hashes included)
/// and the X25519-only bound, next to the handshake's median, measured in
/// interleaved rounds so that load from other processes hits both alike.
/// Then the same for each hash of the XX and IK patterns.
fn print_lower_bounds() {
    let keys = Keys::new();
    let (i_priv, r_priv) = (
        *keys.initiator.private().expose(),
        *keys.responder.private().expose(),
    );
    let mut rows: Vec<(String, &Pattern)> = PATTERNS
        .iter()
        .map(|p| (protocol_name(p.name), p))
        .collect();
    for hash in ["SHA256", "BLAKE2b", "SHA512"] {
        for p in PATTERNS.iter().filter(|p| p.name == "XX" || p.name == "IK") {
            rows.push((named(p.name, hash), p));
        }
    }
    println!(
        "\nLower bound per handshake (both sides; every primitive operation counted x its median, \
         hashes included), median of 5 interleaved rounds, same run:"
    );
    println!(
        "  {:<40} {:>4} {:>4} {:>5} {:>11} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "protocol",
        "DH",
        "HMAC",
        "hash",
        "AEAD s/o/k",
        "X25519",
        "bound",
        "measured",
        "/bound",
        "/X25519"
    );
    let mut buf = Vec::with_capacity(1024);
    for (name, pattern) in rows {
        let counts = floor::count(&name, &i_priv, &r_priv);
        let params: snow::params::NoiseParams = name.parse().expect("name");
        let configs = akex_configs_named(pattern, &keys, &name);
        let (mut bounds, mut xs, mut measured) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            let t = floor::time_ops(&params.hash, &params.cipher, 101);
            bounds.push(counts.bound(&t));
            xs.push(counts.x25519_bound(&t));
            measured.push(median_of(101, || {
                black_box(handshake_from(&configs, &mut buf));
            }));
        }
        let med = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (bound, x, m) = (med(&mut bounds), med(&mut xs), med(&mut measured));
        println!(
            "  {:<40} {:>4} {:>4} {:>5} {:>11} {:>10.1?} {:>10.1?} {:>10.1?} {:>8.2} {:>8.2}",
            name,
            counts.dh + counts.keygen,
            counts.hmac,
            counts.hash_blocks.iter().sum::<u64>(),
            format!("{}/{}/{}", counts.seal, counts.open, counts.cipher_set),
            x,
            bound,
            m,
            m.as_secs_f64() / bound.as_secs_f64(),
            m.as_secs_f64() / x.as_secs_f64()
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    primitives(&mut c);
    handshake(&mut c);
    session(&mut c);
    c.final_summary();
    // Test and list modes should stay quick and quiet.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--test" || a == "--list") {
        print_lower_bounds();
    }
}
