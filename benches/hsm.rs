//! SIGMA with its signing keys in a PKCS#11 token (SoftHSM2) against the
//! same keys in memory, and the FIPS-algorithm suite (P-256 ECDH, ECDSA
//! P-256, AES-256-GCM) against the Ed25519 one and against rustls TLS 1.3
//! with mutual authentication on the same algorithms (secp256r1, ECDSA
//! P-256 certificates, AES-256-GCM). Full in-memory handshakes, both sides
//! in this process, as in `benches/protocols.rs` and `benches/vs_rustls.rs`.
//!
//! SoftHSM2 is software: its rows measure the PKCS#11 path (module calls,
//! sessions, object lookup, SoftHSM's own OpenSSL signature) but no
//! hardware; a real module adds its own signing latency (often
//! milliseconds) to every handshake, on each side that keeps its key there.
//!
//! Needs `--features pkcs11` and SoftHSM2 installed (a throwaway token is
//! made in a temporary directory). Group `hsm`, then a table of medians
//! measured with `Instant`, interleaved (201 runs, 5 rounds).
//!
//! `cargo bench --features pkcs11 --bench hsm`; `-- --test` runs each once.

use std::hint::black_box;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use akex::crypto::Secret;
use akex::handshake::registry::{self, HandshakeKeys};
use akex::handshake::sigma::{SIGMA_AESGCM, SIGMA_P256_AESGCM};
use akex::keys::{P256SigningKey, SignatureScheme, Signer, SigningKey};
use akex::pkcs11::{Pkcs11Signer, Pkcs11Uri, Token, TokenPin};
use akex::{KeyKind, PublicKey};
use criterion::Criterion;
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

const PIN: &str = "246810";

/// A SoftHSM2 token in a temporary directory, and its module.
fn softhsm() -> (tempfile::TempDir, PathBuf) {
    let module = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .expect("SoftHSM2 is not installed (apt-get install softhsm2)");
    let dir = tempfile::tempdir().expect("temporary directory");
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).expect("token directory");
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("configuration");
    let ok = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "bench"])
        .args(["--so-pin", "13579135", "--pin", PIN])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util")
        .status
        .success();
    assert!(ok, "softhsm2-util --init-token failed");
    // Read once, when the module is initialised (below, single-threaded).
    std::env::set_var("SOFTHSM2_CONF", &conf);
    (dir, module)
}

struct Signers {
    ed_memory: [Arc<dyn Signer>; 2],
    ed_token: [Arc<dyn Signer>; 2],
    p256_memory: [Arc<dyn Signer>; 2],
    p256_token: [Arc<dyn Signer>; 2],
}

fn token_signer(
    module: &std::path::Path,
    object: &str,
    scheme: SignatureScheme,
) -> Arc<dyn Signer> {
    let uri = Pkcs11Uri::parse(&format!(
        "pkcs11:token=bench;object={object}?module-path={}",
        module.display()
    ))
    .expect("URI");
    let pin = TokenPin::new(PIN.into());
    let token = Token::open(&uri, &pin).expect("open the token");
    let key = token
        .generate(&uri, scheme, true)
        .expect("generate in the token");
    Arc::new(Pkcs11Signer::from_token(token, key).expect("signer"))
}

fn signers(module: &std::path::Path) -> Signers {
    let ed = |s: u8| -> Arc<dyn Signer> { Arc::new(SigningKey::from_seed(Secret::new([s; 32]))) };
    let p = |s: u8| -> Arc<dyn Signer> {
        Arc::new(P256SigningKey::from_scalar(&Secret::new([s; 32])).expect("scalar"))
    };
    Signers {
        ed_memory: [ed(1), ed(2)],
        ed_token: [
            token_signer(module, "ed-i", SignatureScheme::Ed25519),
            token_signer(module, "ed-r", SignatureScheme::Ed25519),
        ],
        p256_memory: [p(1), p(2)],
        p256_token: [
            token_signer(module, "p256-i", SignatureScheme::EcdsaP256Sha256),
            token_signer(module, "p256-r", SignatureScheme::EcdsaP256Sha256),
        ],
    }
}

/// Both sides' keys: each signs with its signer and pins the other's key.
fn pair(s: &[Arc<dyn Signer>; 2]) -> (HandshakeKeys, HandshakeKeys) {
    let kind = s[0].scheme().key_kind();
    let pk = |x: &Arc<dyn Signer>| PublicKey::from_bytes(kind, x.public_key()).expect("key");
    (
        HandshakeKeys::new().signer(s[0].clone()).remote(pk(&s[1])),
        HandshakeKeys::new().signer(s[1].clone()).remote(pk(&s[0])),
    )
}

fn akex_handshake(name: &str, keys: &(HandshakeKeys, HandshakeKeys)) {
    let mut i = registry::initiator(name, &keys.0).expect("initiator");
    let mut r = registry::responder(&[name], &keys.1).expect("responder");
    let (mut msg, mut payload) = (Vec::new(), Vec::new());
    while !(i.is_finished() && r.is_finished()) {
        msg.clear();
        if i.wants_write() {
            i.write_message(&[], &mut msg).expect("write");
            r.read_message(&msg, &mut payload).expect("read");
        } else {
            r.write_message(&[], &mut msg).expect("write");
            i.read_message(&msg, &mut payload).expect("read");
        }
    }
    black_box((i.finish().expect("finish"), r.finish().expect("finish")));
}

/// rustls TLS 1.3 on the suite's algorithms: secp256r1, ECDSA P-256
/// certificates (rcgen), AES-256-GCM, a client certificate, no tickets.
fn tls_p256_mtls() -> (Arc<ClientConfig>, Arc<ServerConfig>) {
    let provider = Arc::new(CryptoProvider {
        kx_groups: vec![aws_lc_rs::kx_group::SECP256R1],
        cipher_suites: vec![aws_lc_rs::cipher_suite::TLS13_AES_256_GCM_SHA384],
        ..aws_lc_rs::default_provider()
    });
    let cert = |name: &str| {
        let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("certificate");
        (
            c.cert.der().clone(),
            PrivatePkcs8KeyDer::from(c.signing_key.serialize_der()),
        )
    };
    let (server_cert, server_key) = cert("localhost");
    let (client_cert, client_key) = cert("client.localhost");
    let mut client_roots = RootCertStore::empty();
    client_roots.add(client_cert.clone()).expect("root");
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider.clone())
            .build()
            .expect("verifier");
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_cert.clone()], PrivateKeyDer::Pkcs8(server_key))
        .expect("server");
    server.send_tls13_tickets = 0;
    let mut server_roots = RootCertStore::empty();
    server_roots.add(server_cert).expect("root");
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(server_roots)
        .with_client_auth_cert(vec![client_cert], PrivateKeyDer::Pkcs8(client_key))
        .expect("client");
    (Arc::new(client), Arc::new(server))
}

/// One full TLS handshake in memory, then one byte so the server has
/// processed the client's Finished (as `benches/vs_rustls.rs`).
fn tls_handshake(t: &(Arc<ClientConfig>, Arc<ServerConfig>)) {
    let name = ServerName::try_from("localhost").expect("name");
    let mut client = ClientConnection::new(t.0.clone(), name).expect("client");
    let mut server = ServerConnection::new(t.1.clone()).expect("server");
    let mut buf = Vec::new();
    while client.is_handshaking() || server.is_handshaking() {
        let mut moved = false;
        while client.wants_write() {
            buf.clear();
            client.write_tls(&mut buf).expect("write");
            server.read_tls(&mut buf.as_slice()).expect("read");
            server.process_new_packets().expect("process");
            moved = true;
        }
        while server.wants_write() {
            buf.clear();
            server.write_tls(&mut buf).expect("write");
            client.read_tls(&mut buf.as_slice()).expect("read");
            client.process_new_packets().expect("process");
            moved = true;
        }
        if !moved {
            break;
        }
    }
    client.writer().write_all(b"x").expect("write");
    buf.clear();
    client.write_tls(&mut buf).expect("write");
    server.read_tls(&mut buf.as_slice()).expect("read");
    server.process_new_packets().expect("process");
    let mut byte = [0u8; 1];
    server.reader().read_exact(&mut byte).expect("read");
    black_box((client, server));
}

type Row<'a> = (&'static str, Box<dyn Fn() + 'a>);

fn rows<'a>(
    s: &'a Signers,
    keys: &'a [(HandshakeKeys, HandshakeKeys); 4],
    tls: &'a (Arc<ClientConfig>, Arc<ServerConfig>),
) -> Vec<Row<'a>> {
    vec![
        (
            "sign/ed25519 memory",
            Box::new(|| drop(black_box(s.ed_memory[0].sign(b"h")))) as Box<dyn Fn()>,
        ),
        (
            "sign/ed25519 softhsm",
            Box::new(|| drop(black_box(s.ed_token[0].sign(b"h")))),
        ),
        (
            "sign/ecdsa-p256 memory",
            Box::new(|| drop(black_box(s.p256_memory[0].sign(b"h")))),
        ),
        (
            "sign/ecdsa-p256 softhsm",
            Box::new(|| drop(black_box(s.p256_token[0].sign(b"h")))),
        ),
        (
            "sigma x25519-ed25519 keys in memory",
            Box::new(|| akex_handshake(SIGMA_AESGCM, &keys[0])),
        ),
        (
            "sigma x25519-ed25519 keys in softhsm",
            Box::new(|| akex_handshake(SIGMA_AESGCM, &keys[1])),
        ),
        (
            "sigma p256-ecdsa keys in memory",
            Box::new(|| akex_handshake(SIGMA_P256_AESGCM, &keys[2])),
        ),
        (
            "sigma p256-ecdsa keys in softhsm",
            Box::new(|| akex_handshake(SIGMA_P256_AESGCM, &keys[3])),
        ),
        (
            "rustls TLS13 secp256r1 ECDSA-P256 mTLS AES-256-GCM",
            Box::new(|| tls_handshake(tls)),
        ),
    ]
}

fn median_table(rows: &[Row<'_>], quick: bool) {
    let (runs, rounds) = if quick { (3, 1) } else { (201, 5) };
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); rows.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in rows.iter().enumerate() {
            for _ in 0..runs {
                let t = Instant::now();
                f();
                samples[i].push(t.elapsed());
            }
        }
    }
    println!("\n| row (both sides, one process) | median |");
    println!("|---|---|");
    for ((name, _), mut s) in rows.iter().zip(samples) {
        s.sort();
        println!("| {name} | {:.1} µs |", s[s.len() / 2].as_secs_f64() * 1e6);
    }
}

fn main() {
    let (_dir, module) = softhsm();
    let s = signers(&module);
    let keys = [
        pair(&s.ed_memory),
        pair(&s.ed_token),
        pair(&s.p256_memory),
        pair(&s.p256_token),
    ];
    assert_eq!(
        keys[3].0.remote_key().map(|k| k.kind()),
        Some(KeyKind::P256)
    );
    let tls = tls_p256_mtls();
    let rows = rows(&s, &keys, &tls);
    let quick = std::env::args().any(|a| a == "--test");
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    {
        let mut group = c.benchmark_group("hsm");
        for (name, f) in &rows {
            group.bench_function(*name, |b| b.iter(f));
        }
        group.finish();
    }
    median_table(&rows, quick);
    c.final_summary();
}
