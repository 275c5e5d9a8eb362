//! The session layer's cost: seal + open per record size against the raw
//! AEAD, and the cost of a key update and of a DH ratchet step.
//!
//! Groups:
//! - `session_record/<aead>/<size>`: `raw_aead` (AeadKey seal + open in
//!   place), `noise_mode` (Session::seal_in_place + open_in_place, with the
//!   usage-limit accounting), `akex_mode` (typed records:
//!   seal_record_in_place + open_record_in_place) and `datagram` (explicit
//!   header, replay window). The ratio to `raw_aead` is the layer's overhead.
//! - `session_rekey`: Noise `REKEY()` of one CipherState; an akex key update
//!   (seal the record, open it, both sides derive the next key with HKDF);
//!   a full DH ratchet step (init, response, finish on both sides: two
//!   X25519 key generations and two DHs, plus the transcript hash, HKDF
//!   and the key confirmations) and the hybrid variant with ML-KEM-768;
//!   each also authenticated with X25519 static keys (two more DHs per
//!   side) and with Ed25519 signatures (a signature and a verification per
//!   side), as sessions from real handshakes are.
//!
//! `cargo bench --bench session -- --test` runs each benchmark once.

use std::hint::black_box;
use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};

use akex::handshake::TrafficSecret;
use akex::hazmat::aead::AeadKey;
use akex::hazmat::CipherState;
use akex::session::{DatagramSession, RecordType, RekeyPolicy, Session, SessionConfig};
use akex::{Established, Role};
use criterion::{BenchmarkId, Criterion, Throughput};

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 64 * 1024 - 64];

fn established(role: Role, aead: AeadAlgorithm) -> Established {
    established_named("akex-bench", role, aead)
}

/// The protocol name decides the record mode: `Noise_*` names give Noise
/// mode, others akex mode.
fn established_named(name: &str, role: Role, aead: AeadAlgorithm) -> Established {
    Established::new(
        name.into(),
        role,
        vec![0; 32],
        None,
        aead,
        TrafficSecret::new(Secret::new([1; 32])),
        TrafficSecret::new(Secret::new([2; 32])),
    )
    .with_root_secret(TrafficSecret::new(Secret::new([3; 32])))
}

#[derive(Clone, Copy)]
enum Auth {
    None,
    StaticDh,
    Signature,
}

/// A session whose ratchet is authenticated like one from a real handshake.
fn authed(role: Role, aead: AeadAlgorithm, auth: Auth) -> Established {
    use akex::keys::{SigningKey, StaticSecret};
    let (mine, theirs) = match role {
        Role::Initiator => (4u8, 5u8),
        Role::Responder => (5, 4),
    };
    let e = established(role, aead);
    match auth {
        Auth::None => e,
        Auth::StaticDh => {
            let peer = *StaticSecret::from_private(Secret::new([theirs; 32])).public();
            e.with_ratchet_static_keys(
                Some(StaticSecret::from_private(Secret::new([mine; 32]))),
                Some(peer),
            )
        }
        Auth::Signature => {
            let peer = *SigningKey::from_seed(Secret::new([theirs; 32])).public();
            e.with_ratchet_signing_keys(SigningKey::from_seed(Secret::new([mine; 32])), peer)
        }
    }
}

fn akex_config(hybrid: bool) -> SessionConfig {
    SessionConfig::new()
        .rekey_policy(RekeyPolicy::never())
        .hybrid_ratchet(hybrid)
}

fn pair(aead: AeadAlgorithm, config: SessionConfig) -> (Session, Session) {
    (
        Session::with_config(established(Role::Initiator, aead), config.clone()).unwrap(),
        Session::with_config(established(Role::Responder, aead), config).unwrap(),
    )
}

fn records(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_record");
    group.measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_millis(500));
    for aead in [AeadAlgorithm::ChaChaPoly, AeadAlgorithm::AesGcm] {
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let id = |name: &str| BenchmarkId::new(format!("{name}/{aead:?}"), size);

            let key = AeadKey::new(aead, &[1; 32]);
            let mut n = 0u64;
            let mut buf = Vec::with_capacity(size + 64);
            group.bench_function(id("raw_aead"), |b| {
                b.iter(|| {
                    buf.clear();
                    buf.resize(size, 0x5a);
                    key.seal_in_place(n, &[], &mut buf);
                    let len = key.open_in_place(n, &[], &mut buf).unwrap();
                    n += 1;
                    black_box(len)
                })
            });

            let mut tx = Session::new(established_named("Noise_bench", Role::Initiator, aead));
            let mut rx = Session::new(established_named("Noise_bench", Role::Responder, aead));
            group.bench_function(id("noise_mode"), |b| {
                b.iter(|| {
                    buf.clear();
                    buf.resize(size, 0x5a);
                    tx.seal_in_place(&mut buf).unwrap();
                    black_box(rx.open_in_place(&mut buf).unwrap())
                })
            });

            let (mut tx, mut rx) = pair(aead, akex_config(false));
            group.bench_function(id("akex_mode"), |b| {
                b.iter(|| {
                    buf.clear();
                    buf.resize(size + 1, 0x5a);
                    tx.seal_record_in_place(RecordType::Data, &mut buf).unwrap();
                    black_box(rx.open_record_in_place(&mut buf).unwrap())
                })
            });

            let config = akex_config(false);
            let mut tx =
                DatagramSession::new(established(Role::Initiator, aead), config.clone()).unwrap();
            let mut rx = DatagramSession::new(established(Role::Responder, aead), config).unwrap();
            let payload = vec![0x5au8; size];
            group.bench_function(id("datagram"), |b| {
                b.iter(|| {
                    buf.clear();
                    tx.seal(&payload, &mut buf).unwrap();
                    black_box(rx.open_in_place(&mut buf).unwrap())
                })
            });
        }
    }
    group.finish();
}

fn rekeys(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_rekey");
    group.measurement_time(Duration::from_secs(2));
    group.warm_up_time(Duration::from_millis(500));
    let aead = AeadAlgorithm::ChaChaPoly;

    let mut cs = CipherState::new(aead, &[1; 32]);
    group.bench_function("noise_rekey_one_direction", |b| b.iter(|| cs.rekey()));

    let (mut a, mut b_side) = pair(aead, akex_config(false));
    let mut wire = Vec::new();
    group.bench_function("akex_key_update_both_sides", |b| {
        b.iter(|| {
            wire.clear();
            a.send_key_update(&mut wire).unwrap();
            black_box(b_side.open_record(&wire, &mut Vec::new()).unwrap())
        })
    });

    // Wire version 2: every step also binds its transcript and confirms
    // the keys; sessions from handshakes with long-term keys authenticate
    // it with them (X25519 static DH for hybrid/PQ, Ed25519 for SIGMA).
    for (name, hybrid, auth) in [
        ("dh_ratchet_step_x25519", false, Auth::None),
        ("dh_ratchet_step_hybrid_mlkem768", true, Auth::None),
        ("dh_ratchet_step_x25519_static_dh", false, Auth::StaticDh),
        (
            "dh_ratchet_step_hybrid_mlkem768_static_dh",
            true,
            Auth::StaticDh,
        ),
        ("dh_ratchet_step_x25519_ed25519", false, Auth::Signature),
    ] {
        let config = akex_config(hybrid);
        let mut a =
            Session::with_config(authed(Role::Initiator, aead, auth), config.clone()).unwrap();
        let mut b_side = Session::with_config(authed(Role::Responder, aead, auth), config).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut w = Vec::new();
                a.start_ratchet(&mut OsRng, &mut w).unwrap();
                b_side.open_record(&w, &mut Vec::new()).unwrap();
                let mut w = Vec::new();
                b_side
                    .poll_control(Duration::ZERO, &mut OsRng, &mut w)
                    .unwrap();
                a.open_record(&w, &mut Vec::new()).unwrap();
                let mut w = Vec::new();
                a.poll_control(Duration::ZERO, &mut OsRng, &mut w).unwrap();
                black_box(b_side.open_record(&w, &mut Vec::new()).unwrap())
            })
        });
    }
    group.finish();
}

/// Throughput relative to the raw AEAD, measured interleaved (raw, Noise
/// mode, akex mode, datagram in turn, many rounds, fastest round of each)
/// so that load on a shared machine hits every variant alike. Printed as
/// `ratio <variant>/<aead>/<size>: x.xx` (1.00 = as fast as the raw AEAD).
fn interleaved_ratios(quick: bool) {
    use std::time::Instant;
    let rounds = if quick { 1 } else { 40 };
    for aead in [AeadAlgorithm::ChaChaPoly, AeadAlgorithm::AesGcm] {
        for size in SIZES {
            let ops = if quick { 1 } else { (1 << 21) / size + 4 };
            let key = AeadKey::new(aead, &[1; 32]);
            let mut n = 0u64;
            let mut noise_tx =
                Session::new(established_named("Noise_bench", Role::Initiator, aead));
            let mut noise_rx =
                Session::new(established_named("Noise_bench", Role::Responder, aead));
            let (mut akex_tx, mut akex_rx) = pair(aead, akex_config(false));
            let config = akex_config(false);
            let mut dg_tx =
                DatagramSession::new(established(Role::Initiator, aead), config.clone()).unwrap();
            let mut dg_rx =
                DatagramSession::new(established(Role::Responder, aead), config).unwrap();
            let payload = vec![0x5au8; size];
            let mut buf = Vec::with_capacity(size + 64);
            let mut best = [f64::MAX; 4];
            for _ in 0..rounds {
                for (variant, slot) in best.iter_mut().enumerate() {
                    let t = Instant::now();
                    for _ in 0..ops {
                        buf.clear();
                        match variant {
                            0 => {
                                buf.extend_from_slice(&payload);
                                key.seal_in_place(n, &[], &mut buf);
                                black_box(key.open_in_place(n, &[], &mut buf).unwrap());
                                n += 1;
                            }
                            1 => {
                                buf.extend_from_slice(&payload);
                                noise_tx.seal_in_place(&mut buf).unwrap();
                                black_box(noise_rx.open_in_place(&mut buf).unwrap());
                            }
                            2 => {
                                buf.push(0);
                                buf.extend_from_slice(&payload);
                                akex_tx
                                    .seal_record_in_place(RecordType::Data, &mut buf)
                                    .unwrap();
                                black_box(akex_rx.open_record_in_place(&mut buf).unwrap());
                            }
                            _ => {
                                dg_tx.seal(&payload, &mut buf).unwrap();
                                black_box(dg_rx.open_in_place(&mut buf).unwrap());
                            }
                        }
                    }
                    *slot = slot.min(t.elapsed().as_secs_f64() / ops as f64);
                }
            }
            for (variant, name) in ["noise_mode", "akex_mode", "datagram"].iter().enumerate() {
                println!(
                    "ratio {name}/{aead:?}/{size}: {:.2} (raw {:.2} us, {name} {:.2} us per seal+open)",
                    best[0] / best[variant + 1],
                    best[0] * 1e6,
                    best[variant + 1] * 1e6,
                );
            }
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let mut c = Criterion::default().configure_from_args();
    records(&mut c);
    rekeys(&mut c);
    c.final_summary();
    interleaved_ratios(quick);
}
