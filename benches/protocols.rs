//! Each hybrid, PQ-authenticated, Noise HFS (and, with `--features rsa-kt`,
//! RSA key transport; with `--features ffdh`, FFDH-3072) protocol's full in-memory handshake: both sides in this
//! process, built through the registry exactly as `akex connect`/`serve`
//! build them (akex mode: hello + negotiation), empty payloads, then
//! `finish()` on both sides.
//!
//! Group `protocols`, one function per protocol name. Before the timings,
//! it prints each protocol's handshake bytes on the wire (per message and
//! total), measured from a real run.
//!
//! `cargo bench --bench protocols`; `-- --test` runs each once.

use std::hint::black_box;
use std::time::Duration;

use akex::crypto::Secret;
use akex::handshake::hybrid;
use akex::handshake::registry::{self, HandshakeKeys};
use akex::keys::MlKem768KeyPair;
use akex::keys::StaticSecret;
use criterion::{BenchmarkId, Criterion};

struct Keys {
    server: HandshakeKeys,
    client: HandshakeKeys,
}

fn keys_for(name: &str) -> Keys {
    let ix = StaticSecret::from_private(Secret::new([1; 32]));
    let rx = StaticSecret::from_private(Secret::new([2; 32]));
    let ik = MlKem768KeyPair::from_seed(&Secret::new([1; 64]));
    let rk = MlKem768KeyPair::from_seed(&Secret::new([2; 64]));
    let info = hybrid::protocol_info(name);
    let pq = info.as_ref().is_some_and(|i| i.pq_authentication);
    let needs_remote = info
        .as_ref()
        .is_none_or(|i| i.initiator_needs_responder_key);
    let mut remote = rx.public().to_vec();
    let mut kind = akex::KeyKind::X25519;
    if pq {
        remote.extend_from_slice(rk.encapsulation_key());
        kind = akex::KeyKind::X25519MlKem768;
    }
    let mut client = HandshakeKeys::new().static_key(ix).kem_key(ik);
    if needs_remote {
        client = client.remote(akex::PublicKey::from_bytes(kind, &remote).expect("key length"));
    }
    #[allow(unused_mut)]
    let mut keys = Keys {
        server: HandshakeKeys::new().static_key(rx).kem_key(rk),
        client,
    };
    #[cfg(feature = "rsa-kt")]
    if name == akex::handshake::rsa::RSA_KT {
        let key = akex::handshake::rsa::RsaKeyPair::generate().expect("RSA-3072 key");
        keys.client = HandshakeKeys::new().remote(
            akex::PublicKey::from_bytes(akex::KeyKind::Rsa, key.public_key_der()).expect("DER"),
        );
        keys.server = HandshakeKeys::new().rsa_key(key);
    }
    #[cfg(feature = "ffdh")]
    if name == akex::handshake::ffdh::FFDH_NK {
        let key = akex::handshake::ffdh::FfdhKeyPair::from_private(Secret::new([3; 35]))
            .expect("ffdhe3072 key");
        keys.client = HandshakeKeys::new().remote(
            akex::PublicKey::from_bytes(akex::KeyKind::Ffdhe3072, key.public()).expect("value"),
        );
        keys.server = HandshakeKeys::new().ffdh_key(key);
    }
    keys
}

/// One full handshake; returns the message sizes.
fn handshake(name: &str, keys: &Keys) -> Vec<usize> {
    let mut i = registry::initiator(name, &keys.client).unwrap();
    let mut r = registry::responder(&[name], &keys.server).unwrap();
    let mut sizes = Vec::with_capacity(4);
    let mut msg = Vec::with_capacity(4096);
    let mut payload = Vec::new();
    while !(i.is_finished() && r.is_finished()) {
        msg.clear();
        if i.wants_write() {
            i.write_message(&[], &mut msg).unwrap();
            r.read_message(&msg, &mut payload).unwrap();
        } else {
            r.write_message(&[], &mut msg).unwrap();
            i.read_message(&msg, &mut payload).unwrap();
        }
        sizes.push(msg.len());
    }
    black_box(i.finish().unwrap());
    black_box(r.finish().unwrap());
    sizes
}

fn names() -> Vec<&'static str> {
    let mut names = hybrid::protocol_names();
    // snow's Noise HFS (Kyber1024), for comparison with the hybrids.
    names.push("Noise_XXhfs_25519+Kyber1024_ChaChaPoly_BLAKE2s");
    names.push("Noise_IKhfs_25519+Kyber1024_ChaChaPoly_BLAKE2s");
    #[cfg(feature = "rsa-kt")]
    names.push(akex::handshake::rsa::RSA_KT);
    #[cfg(feature = "ffdh")]
    names.push(akex::handshake::ffdh::FFDH_NK);
    names
}

fn bench(c: &mut Criterion) {
    println!("handshake bytes on the wire (empty payloads, hello included):");
    for name in names() {
        let sizes = handshake(name, &keys_for(name));
        println!(
            "  {name}: {:?} = {} bytes",
            sizes,
            sizes.iter().sum::<usize>()
        );
    }
    let mut g = c.benchmark_group("protocols");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for name in names() {
        let keys = keys_for(name);
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| handshake(name, &keys))
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
