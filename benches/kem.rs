//! ML-KEM-768 implementations side by side, in one run (docs/mlkem-choice.md).
//!
//! Group `mlkem768`, functions `keygen`, `encaps`, `decaps`, each for:
//! - `akex` — `akex::crypto::kem`: aws-lc (mlkem-native) through its
//!   deterministic entry points, randomness passed in, with the wrapper's
//!   checks and zeroization;
//! - `libcrux` — libcrux-ml-kem (formally verified; runtime AVX2
//!   dispatch), randomness passed in: what akex wrapped before;
//! - `rustcrypto` — RustCrypto `ml-kem` 0.2 (pure Rust), deterministic APIs;
//! - `aws-lc-rs` — aws-lc-rs `kem` (draws its own randomness: it cannot
//!   replay vectors; keygen includes deriving the encapsulation key).
//!
//! `cargo bench --bench kem` for numbers; `-- --test` runs each once.

use std::hint::black_box;
use std::time::Duration;

use akex::crypto::Secret;
use akex::hazmat::kem as akem;
use akex::keys::MlKem768KeyPair;
use criterion::{BenchmarkId, Criterion};
use ml_kem::kem::Decapsulate;
use ml_kem::{EncapsulateDeterministic, KemCore, MlKem768, B32};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("mlkem768");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    let seed = [0x42u8; 64];
    let m = [0x17u8; 32];

    // libcrux raw.
    g.bench_function(BenchmarkId::new("keygen", "libcrux"), |b| {
        b.iter(|| libcrux_ml_kem::mlkem768::generate_key_pair(black_box(seed)))
    });
    let pair = libcrux_ml_kem::mlkem768::generate_key_pair(seed);
    g.bench_function(BenchmarkId::new("encaps", "libcrux"), |b| {
        b.iter(|| libcrux_ml_kem::mlkem768::encapsulate(black_box(pair.public_key()), m))
    });
    let (ct, _) = libcrux_ml_kem::mlkem768::encapsulate(pair.public_key(), m);
    g.bench_function(BenchmarkId::new("decaps", "libcrux"), |b| {
        b.iter(|| libcrux_ml_kem::mlkem768::decapsulate(black_box(pair.private_key()), &ct))
    });

    // akex's wrapper (aws-lc, randomness passed in).
    let s = Secret::new(seed);
    g.bench_function(BenchmarkId::new("keygen", "akex"), |b| {
        b.iter(|| MlKem768KeyPair::from_seed(black_box(&s)))
    });
    let kp = MlKem768KeyPair::from_seed(&s);
    let ms = Secret::new(m);
    g.bench_function(BenchmarkId::new("encaps", "akex"), |b| {
        b.iter(|| akem::encapsulate(black_box(kp.encapsulation_key()), &ms).unwrap())
    });
    let (act, _) = akem::encapsulate(kp.encapsulation_key(), &ms).unwrap();
    g.bench_function(BenchmarkId::new("decaps", "akex"), |b| {
        b.iter(|| kp.decapsulate(black_box(&act)).unwrap())
    });

    // RustCrypto ml-kem.
    let d = B32::try_from(&seed[..32]).unwrap();
    let z = B32::try_from(&seed[32..]).unwrap();
    g.bench_function(BenchmarkId::new("keygen", "rustcrypto"), |b| {
        b.iter(|| MlKem768::generate_deterministic(black_box(&d), &z))
    });
    let (dk, ek) = MlKem768::generate_deterministic(&d, &z);
    let mb = B32::from(m);
    g.bench_function(BenchmarkId::new("encaps", "rustcrypto"), |b| {
        b.iter(|| black_box(&ek).encapsulate_deterministic(&mb).unwrap())
    });
    let (rct, _) = ek.encapsulate_deterministic(&mb).unwrap();
    g.bench_function(BenchmarkId::new("decaps", "rustcrypto"), |b| {
        b.iter(|| black_box(&dk).decapsulate(&rct).unwrap())
    });

    // aws-lc-rs (own randomness).
    use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, ML_KEM_768};
    g.bench_function(BenchmarkId::new("keygen", "aws-lc-rs"), |b| {
        b.iter(|| {
            let dk = DecapsulationKey::generate(&ML_KEM_768).unwrap();
            dk.encapsulation_key().unwrap()
        })
    });
    let adk = DecapsulationKey::generate(&ML_KEM_768).unwrap();
    let aek = adk.encapsulation_key().unwrap();
    g.bench_function(BenchmarkId::new("encaps", "aws-lc-rs"), |b| {
        b.iter(|| black_box(&aek).encapsulate().unwrap())
    });
    let (awct, _) = aek.encapsulate().unwrap();
    g.bench_function(BenchmarkId::new("decaps", "aws-lc-rs"), |b| {
        b.iter(|| {
            black_box(&adk)
                .decapsulate(Ciphertext::from(awct.as_ref()))
                .unwrap()
        })
    });
    g.finish();
}

/// Interleaved medians: on a shared, loaded machine criterion's sequential
/// groups see different load; here every round times each implementation
/// back to back (10 operations each), and the median over the rounds is
/// printed. Skipped in `--test` mode.
fn interleaved() {
    use std::time::Instant;
    const ROUNDS: usize = 300;
    const OPS: u32 = 10;
    let seed = [0x42u8; 64];
    let m = [0x17u8; 32];
    let lc = libcrux_ml_kem::mlkem768::generate_key_pair(seed);
    let (lct, _) = libcrux_ml_kem::mlkem768::encapsulate(lc.public_key(), m);
    let s = Secret::new(seed);
    let ms = Secret::new(m);
    let kp = MlKem768KeyPair::from_seed(&s);
    let (act, _) = akem::encapsulate(kp.encapsulation_key(), &ms).unwrap();
    let d = B32::try_from(&seed[..32]).unwrap();
    let z = B32::try_from(&seed[32..]).unwrap();
    let (rdk, rek) = MlKem768::generate_deterministic(&d, &z);
    let mb = B32::from(m);
    let (rct, _) = rek.encapsulate_deterministic(&mb).unwrap();
    use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, ML_KEM_768};
    let adk = DecapsulationKey::generate(&ML_KEM_768).unwrap();
    let aek = adk.encapsulation_key().unwrap();
    let (awct, _) = aek.encapsulate().unwrap();

    type Op<'a> = (&'static str, &'static str, Box<dyn Fn() + 'a>);
    let ops: Vec<Op> = vec![
        (
            "keygen",
            "libcrux",
            Box::new(|| {
                sink(black_box(libcrux_ml_kem::mlkem768::generate_key_pair(
                    black_box(seed),
                )))
            }),
        ),
        (
            "keygen",
            "akex",
            Box::new(|| sink(black_box(MlKem768KeyPair::from_seed(black_box(&s))))),
        ),
        (
            "keygen",
            "rustcrypto",
            Box::new(|| {
                sink(black_box(MlKem768::generate_deterministic(
                    black_box(&d),
                    &z,
                )))
            }),
        ),
        (
            "keygen",
            "aws-lc-rs",
            Box::new(|| {
                let dk = DecapsulationKey::generate(&ML_KEM_768).unwrap();
                sink(black_box(dk.encapsulation_key().unwrap()));
            }),
        ),
        (
            "encaps",
            "libcrux",
            Box::new(|| {
                sink(black_box(libcrux_ml_kem::mlkem768::encapsulate(
                    black_box(lc.public_key()),
                    m,
                )))
            }),
        ),
        (
            "encaps",
            "akex",
            Box::new(|| {
                sink(black_box(
                    akem::encapsulate(black_box(kp.encapsulation_key()), &ms).unwrap(),
                ))
            }),
        ),
        (
            "encaps",
            "rustcrypto",
            Box::new(|| {
                sink(black_box(
                    black_box(&rek).encapsulate_deterministic(&mb).unwrap(),
                ))
            }),
        ),
        (
            "encaps",
            "aws-lc-rs",
            Box::new(|| sink(black_box(black_box(&aek).encapsulate().unwrap()))),
        ),
        (
            "decaps",
            "libcrux",
            Box::new(|| {
                sink(black_box(libcrux_ml_kem::mlkem768::decapsulate(
                    black_box(lc.private_key()),
                    &lct,
                )))
            }),
        ),
        (
            "decaps",
            "akex",
            Box::new(|| sink(black_box(kp.decapsulate(black_box(&act)).unwrap()))),
        ),
        (
            "decaps",
            "rustcrypto",
            Box::new(|| sink(black_box(black_box(&rdk).decapsulate(&rct).unwrap()))),
        ),
        (
            "decaps",
            "aws-lc-rs",
            Box::new(|| {
                sink(black_box(
                    black_box(&adk)
                        .decapsulate(Ciphertext::from(awct.as_ref()))
                        .unwrap(),
                ))
            }),
        ),
    ];
    let mut samples = vec![Vec::with_capacity(ROUNDS); ops.len()];
    for _ in 0..ROUNDS {
        for (k, (_, _, f)) in ops.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..OPS {
                f();
            }
            samples[k].push(t.elapsed().as_secs_f64() * 1e6 / f64::from(OPS));
        }
    }
    println!("interleaved medians ({ROUNDS} rounds x {OPS} ops):");
    for (k, (op, imp, _)) in ops.iter().enumerate() {
        let v = &mut samples[k];
        v.sort_by(f64::total_cmp);
        println!("  mlkem768 {op:6} {imp:10} {:8.1} us", v[v.len() / 2]);
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    if !std::env::args().any(|a| a == "--test") {
        interleaved();
    }
    bench(&mut c);
    c.final_summary();
}

fn sink<T>(value: T) {
    black_box(value);
}
