//! The `akex bench` harness: real clients and servers over loopback TCP
//! (or against a separate `akex serve`), with rustls (and, with the
//! `openssl` feature, OpenSSL) TLS 1.3 measured by the same code in the
//! same run. See docs/benchmarks.md.
//!
//! - [`measure`]: the measurements (latency percentiles, CPU time,
//!   throughput, bytes on the wire, memory per session, link emulation);
//! - [`loss`]: handshake completion under packet loss over UDP;
//! - [`report`] and [`html`]: table, JSON, markdown, SVG charts, HTML page;
//! - [`rustls_baseline`], [`openssl_baseline`]: the TLS configurations;
//! - [`linkemu`]: the in-process delay/bandwidth/loss links (TCP and UDP);
//! - [`wire`]: byte and round-trip counting; [`sys`]: getrusage, RSS, limits.

pub mod charts;
pub mod html;
pub mod interleave;
pub mod latency;
pub mod linkemu;
pub mod loss;
pub mod measure;
#[cfg(feature = "openssl")]
pub mod openssl_baseline;
pub mod report;
pub mod rustls_baseline;
pub mod seeds;
pub mod sys;
pub mod wire;

use std::sync::OnceLock;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

use akex::crypto::{OsRng, Secret};
use akex::handshake::noise::NoiseProtocol;
use akex::handshake::registry::{self, HandshakeKeys, Mode, ProtocolInfo};
use akex::keys::{MlKem768KeyPair, SigningKey, StaticSecret};
use akex::transport::{accept, connect, TransportOptions};
use akex::PublicKey;
use akex::{Handshake, NoiseConfig, NoiseHandshake, Role};
use rustls_baseline::{TlsPair, TlsVariant};

pub use measure::{run, BenchOptions};
pub use report::Report;

/// Errors inside the harness: any error, with its message.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// The default Noise rows: a representative set of patterns.
pub const DEFAULT_NOISE: [&str; 5] = [
    "Noise_NN_25519_ChaChaPoly_BLAKE2s",
    "Noise_NK_25519_ChaChaPoly_BLAKE2s",
    "Noise_XX_25519_ChaChaPoly_BLAKE2s",
    "Noise_IK_25519_ChaChaPoly_BLAKE2s",
    "Noise_KK_25519_ChaChaPoly_BLAKE2s",
];

/// The default akex-mode rows (protocol registry): SIGMA-I and the
/// NK- and XX-shaped X25519 + ML-KEM-768 hybrids, so every rustls row has
/// a like-with-like partner (hybrid NK vs TLS X25519MLKEM768; hybrid XX vs
/// TLS X25519MLKEM768 with client certificates; SIGMA vs TLS X25519 with
/// client certificates).
pub const DEFAULT_AKEX: [&str; 3] = [
    akex::handshake::sigma::SIGMA_CHACHAPOLY,
    akex::handshake::hybrid::HYBRID_NK,
    akex::handshake::hybrid::HYBRID_XX,
];

/// The default protocol list: [`DEFAULT_NOISE`], [`DEFAULT_AKEX`], the
/// four rustls rows, then (with the `openssl` feature) the OpenSSL rows
/// this library can run.
pub fn default_protocols() -> Vec<String> {
    #[allow(unused_mut)]
    let mut rows: Vec<String> = DEFAULT_NOISE
        .iter()
        .chain(DEFAULT_AKEX.iter())
        .map(|s| s.to_string())
        .chain(TlsVariant::all().iter().map(TlsVariant::name))
        .collect();
    #[cfg(feature = "openssl")]
    rows.extend(
        openssl_baseline::OsslVariant::available()
            .iter()
            .map(openssl_baseline::OsslVariant::name),
    );
    rows
}

/// The key-exchange seeds compared in one chart (`--seeds`): finite-field
/// DH, RSA key transport, ECDH X25519, hybrid and PQ-authenticated, each
/// where this build has it (FFDH needs `--features ffdh`, RSA `rsa-kt`).
pub fn seed_protocols() -> Vec<String> {
    #[allow(unused_mut)]
    let mut rows = Vec::new();
    #[cfg(feature = "ffdh")]
    rows.push(akex::handshake::ffdh::FFDH_NK.to_string());
    #[cfg(feature = "rsa-kt")]
    rows.push(akex::handshake::rsa::RSA_KT.to_string());
    rows.extend(
        [
            "Noise_NK_25519_ChaChaPoly_BLAKE2s",
            akex::handshake::hybrid::HYBRID_NK,
            akex::handshake::hybrid::HYBRID_XX,
            akex::handshake::pq::PQ_XX,
        ]
        .map(String::from),
    );
    rows
}

/// A stream the harness can drive: any encrypted duplex byte stream.
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// An established session of any protocol, boxed.
pub type BoxStream = Box<dyn Duplex>;

/// How authentication compares: rows compared like with like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthClass {
    /// Neither side authenticated (Noise NN).
    Anonymous,
    /// Only the server (responder) is authenticated.
    ServerAuth,
    /// Both sides are authenticated.
    Mutual,
}

/// One protocol's two ends.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// An akex Noise handshake over the akex transport.
    Noise {
        /// The full Noise name.
        name: String,
        /// The responder's configuration (none against a remote server).
        server: Option<Box<NoiseConfig>>,
        /// The initiator's configuration.
        client: Box<NoiseConfig>,
        /// Which sides it authenticates.
        auth: AuthClass,
        /// Uses a post-quantum KEM (for like-with-like ratios).
        hybrid: bool,
    },
    /// An akex-mode protocol from the registry (SIGMA, hybrid, PQ, RSA key
    /// transport): hello + negotiation, akex records on the transport.
    Akex {
        /// The full protocol name.
        name: String,
        /// The responder's keys (none against a remote server).
        server: Option<Box<HandshakeKeys>>,
        /// The initiator's keys.
        client: Box<HandshakeKeys>,
        /// Which sides it authenticates.
        auth: AuthClass,
        /// Uses ML-KEM (for like-with-like ratios).
        hybrid: bool,
        /// False for RSA key transport.
        forward_secret: bool,
    },
    /// rustls TLS 1.3.
    Tls {
        /// Which variant.
        variant: TlsVariant,
        /// Both configurations.
        pair: TlsPair,
    },
    /// OpenSSL TLS 1.3 (feature `openssl`).
    #[cfg(feature = "openssl")]
    Openssl {
        /// Which variant.
        variant: openssl_baseline::OsslVariant,
        /// Both contexts.
        pair: openssl_baseline::OsslPair,
    },
}

/// Which implementation a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Implementation {
    /// akex itself.
    Akex,
    /// rustls (baseline).
    Rustls,
    /// OpenSSL (baseline).
    Openssl,
}

impl Implementation {
    /// The lowercase name used in the JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Implementation::Akex => "akex",
            Implementation::Rustls => "rustls",
            Implementation::Openssl => "openssl",
        }
    }
}

impl Endpoint {
    /// Builds both ends of `name` (a Noise name, an akex-mode name from
    /// the protocol registry, or a `TLS13_...` row) with keys generated on
    /// the spot.
    pub fn local(name: &str) -> Result<Endpoint, BenchError> {
        if let Some(variant) = TlsVariant::parse(name) {
            return Ok(Endpoint::Tls {
                variant,
                pair: TlsPair::new(variant)?,
            });
        }
        if name.to_ascii_lowercase().starts_with("openssl_") {
            #[cfg(feature = "openssl")]
            if let Some(variant) = openssl_baseline::OsslVariant::parse(name) {
                return Ok(Endpoint::Openssl {
                    variant,
                    pair: openssl_baseline::OsslPair::new(variant)?,
                });
            }
            return Err(format!(
                "{name}: not an OpenSSL row of this build (OpenSSL_TLS13_X25519[_mTLS], \
                 with --features openssl)"
            )
            .into());
        }
        if registry::mode_of(name).ok() == Some(Mode::Akex) {
            return akex_local(name);
        }
        let server_key = StaticSecret::generate(&mut OsRng);
        let client_key = StaticSecret::generate(&mut OsRng);
        let params = NoiseProtocol::parse(name)?;
        let _ = &params;
        let mut server = NoiseConfig::new(name)?;
        let mut client = NoiseConfig::new(name)?;
        if params.needs_local_static(Role::Responder) {
            server = server.local_static(server_key.clone());
        }
        if params.needs_local_static(Role::Initiator) {
            client = client.local_static(client_key.clone());
        }
        if params.authenticates_peer_of(Role::Initiator) {
            client = client.remote_static(PublicKey::x25519(*server_key.public()));
        }
        if params.authenticates_peer_of(Role::Responder) {
            server = server.remote_static(PublicKey::x25519(*client_key.public()));
        }
        for _ in params.psk_slots() {
            let psk = Secret::<32>::random(&mut OsRng);
            server = server.psk(psk.clone());
            client = client.psk(psk);
        }
        Ok(Endpoint::Noise {
            name: name.to_string(),
            server: Some(Box::new(server)),
            client: Box::new(client),
            auth: noise_auth(&params),
            hybrid: false,
        })
    }

    /// The client end only, for a remote `akex serve`: `config` carries the
    /// keys (`--identity`, `--remote-key`).
    pub fn remote(config: NoiseConfig) -> Result<Endpoint, BenchError> {
        let params = config.params().clone();
        Ok(Endpoint::Noise {
            name: config.protocol().to_string(),
            server: None,
            client: Box::new(config),
            auth: noise_auth(&params),
            hybrid: false,
        })
    }

    /// The client end only of an akex-mode protocol, for a remote
    /// `akex serve`: `keys` carries our key and the server's (`--identity`,
    /// `--remote-key`).
    pub fn remote_akex(name: &str, keys: HandshakeKeys) -> Result<Endpoint, BenchError> {
        let info = akex_info(name)?;
        // Fail on a missing key now rather than at the first connection.
        registry::initiator(name, &keys)?;
        Ok(Endpoint::Akex {
            name: name.to_string(),
            server: None,
            client: Box::new(keys),
            auth: registry_auth(info),
            hybrid: registry_hybrid(info),
            forward_secret: info.forward_secrecy,
        })
    }

    /// The row name.
    pub fn name(&self) -> String {
        match self {
            Endpoint::Noise { name, .. } | Endpoint::Akex { name, .. } => name.clone(),
            Endpoint::Tls { variant, .. } => variant.name(),
            #[cfg(feature = "openssl")]
            Endpoint::Openssl { variant, .. } => variant.name(),
        }
    }

    /// Which sides are authenticated.
    pub fn auth(&self) -> AuthClass {
        match self {
            Endpoint::Noise { auth, .. } | Endpoint::Akex { auth, .. } => *auth,
            Endpoint::Tls { variant, .. } if variant.client_auth => AuthClass::Mutual,
            Endpoint::Tls { .. } => AuthClass::ServerAuth,
            #[cfg(feature = "openssl")]
            Endpoint::Openssl { variant, .. } if variant.client_auth => AuthClass::Mutual,
            #[cfg(feature = "openssl")]
            Endpoint::Openssl { .. } => AuthClass::ServerAuth,
        }
    }

    /// Which implementation this row measures.
    pub fn implementation(&self) -> Implementation {
        match self {
            Endpoint::Noise { .. } | Endpoint::Akex { .. } => Implementation::Akex,
            Endpoint::Tls { .. } => Implementation::Rustls,
            #[cfg(feature = "openssl")]
            Endpoint::Openssl { .. } => Implementation::Openssl,
        }
    }

    /// True for the TLS baseline rows (rustls, OpenSSL).
    pub fn is_baseline(&self) -> bool {
        self.implementation() != Implementation::Akex
    }

    /// True if the key exchange includes ML-KEM.
    pub fn is_hybrid(&self) -> bool {
        match self {
            Endpoint::Noise { hybrid, .. } | Endpoint::Akex { hybrid, .. } => *hybrid,
            Endpoint::Tls { variant, .. } => variant.kx == rustls_baseline::TlsKx::X25519MlKem768,
            #[cfg(feature = "openssl")]
            Endpoint::Openssl { variant, .. } => {
                variant.kx == openssl_baseline::OsslKx::X25519MlKem768
            }
        }
    }

    /// False only for RSA key transport (a legacy baseline, never
    /// forward secret).
    pub fn is_forward_secret(&self) -> bool {
        match self {
            Endpoint::Akex { forward_secret, .. } => *forward_secret,
            _ => true,
        }
    }

    /// True if this process can run the server end.
    #[cfg(test)]
    pub fn has_server(&self) -> bool {
        !matches!(
            self,
            Endpoint::Noise { server: None, .. } | Endpoint::Akex { server: None, .. }
        )
    }

    /// A fresh initiator handshake for this row (the keys generated at
    /// start); `None` for the rustls rows.
    pub fn initiator(&self) -> Result<Option<Box<dyn Handshake>>, BenchError> {
        Ok(match self {
            Endpoint::Noise { client, .. } => {
                Some(Box::new(NoiseHandshake::initiator((**client).clone())?))
            }
            // As `akex connect` does: the registry's initiator writes the
            // hello; the transport picks akex records for the name.
            Endpoint::Akex { name, client, .. } => Some(registry::initiator(name, client)?),
            _ => None,
        })
    }

    /// A fresh responder handshake for this row; `None` for the rustls
    /// rows. Fails if the server runs elsewhere (`--server`).
    pub fn responder(&self) -> Result<Option<Box<dyn Handshake>>, BenchError> {
        Ok(match self {
            Endpoint::Noise {
                server: Some(server),
                ..
            } => Some(Box::new(NoiseHandshake::responder((**server).clone())?)),
            // As `akex serve` does: a negotiating responder whose
            // allow-list is this one protocol.
            Endpoint::Akex {
                name,
                server: Some(server),
                ..
            } => Some(registry::responder(&[name.as_str()], server)?),
            Endpoint::Noise { server: None, .. } | Endpoint::Akex { server: None, .. } => {
                return Err("this protocol's server runs elsewhere (--server)".into())
            }
            _ => None,
        })
    }

    /// Runs the client handshake over `io`.
    pub async fn client<IO: Duplex + 'static>(&self, io: IO) -> Result<BoxStream, BenchError> {
        match (self, self.initiator()?) {
            (Endpoint::Tls { pair, .. }, _) => Ok(Box::new(
                pair.connector.connect(pair.server_name.clone(), io).await?,
            )),
            #[cfg(feature = "openssl")]
            (Endpoint::Openssl { pair, .. }, _) => {
                let mut stream = tokio_openssl::SslStream::new(pair.client_ssl()?, io)?;
                std::pin::Pin::new(&mut stream).connect().await?;
                Ok(Box::new(stream))
            }
            (_, Some(hs)) => Ok(Box::new(connect(io, hs, options()).await?)),
            (_, None) => Err("no initiator for this row".into()),
        }
    }

    /// Runs the server handshake over `io`.
    pub async fn server<IO: Duplex + 'static>(&self, io: IO) -> Result<BoxStream, BenchError> {
        match (self, self.responder()?) {
            (Endpoint::Tls { pair, .. }, _) => Ok(Box::new(pair.acceptor.accept(io).await?)),
            #[cfg(feature = "openssl")]
            (Endpoint::Openssl { pair, .. }, _) => {
                let mut stream = tokio_openssl::SslStream::new(pair.server_ssl()?, io)?;
                std::pin::Pin::new(&mut stream).accept().await?;
                Ok(Box::new(stream))
            }
            (_, Some(hs)) => Ok(Box::new(accept(io, hs, options()).await?)),
            (_, None) => Err("no responder for this row".into()),
        }
    }
}

fn options() -> &'static TransportOptions {
    static OPTIONS: OnceLock<TransportOptions> = OnceLock::new();
    OPTIONS.get_or_init(TransportOptions::default)
}

fn akex_info(name: &str) -> Result<&'static ProtocolInfo, BenchError> {
    match registry::info(name) {
        Some(info) if info.mode == Mode::Akex => Ok(info),
        _ => Err(format!(
            "{name}: not an akex-mode protocol of this build (see `akex protocols`; \
             RSA key transport needs --features rsa-kt, FFDH --features ffdh)"
        )
        .into()),
    }
}

/// Which sides a registry row authenticates, from its description.
fn registry_auth(info: &ProtocolInfo) -> AuthClass {
    if info.authentication.starts_with("mutual") {
        AuthClass::Mutual
    } else if info.authentication.starts_with("responder") {
        AuthClass::ServerAuth
    } else {
        AuthClass::Anonymous
    }
}

/// True if a registry row's key exchange includes a post-quantum KEM.
fn registry_hybrid(info: &ProtocolInfo) -> bool {
    !info.post_quantum.starts_with("no")
}

/// Both ends of an akex-mode protocol, keys generated on the spot: each
/// side gets exactly the long-term keys its role uses, and pins the
/// peer's key wherever the protocol authenticates the peer (as the TLS
/// rows trust exactly the peer's certificate).
fn akex_local(name: &str) -> Result<Endpoint, BenchError> {
    let info = akex_info(name)?;
    let mut server = HandshakeKeys::new();
    let mut client = HandshakeKeys::new();
    let p256 = akex::handshake::sigma::SIGMA_P256_AESGCM;
    if name == p256 {
        let (s, c) = (
            akex::keys::P256SigningKey::generate()?,
            akex::keys::P256SigningKey::generate()?,
        );
        client = client.remote(PublicKey::from_bytes(akex::KeyKind::P256, s.public())?);
        server = server.remote(PublicKey::from_bytes(akex::KeyKind::P256, c.public())?);
        server = server.signer(std::sync::Arc::new(s));
        client = client.signer(std::sync::Arc::new(c));
    } else if akex::handshake::sigma::sigma_aead(name).is_some() {
        let server_id = SigningKey::generate(&mut OsRng);
        let client_id = SigningKey::generate(&mut OsRng);
        client = client.remote(PublicKey::ed25519(*server_id.public()));
        server = server.remote(PublicKey::ed25519(*client_id.public()));
        server = server.signing_key(server_id);
        client = client.signing_key(client_id);
    } else if let Some(hybrid) = akex::handshake::hybrid::protocol_info(name) {
        let server_x = StaticSecret::generate(&mut OsRng);
        let client_x = StaticSecret::generate(&mut OsRng);
        let mut server_public = server_x.public().to_vec();
        let mut client_public = client_x.public().to_vec();
        let mut kind = akex::KeyKind::X25519;
        if hybrid.pq_authentication {
            let server_kem = MlKem768KeyPair::generate(&mut OsRng);
            let client_kem = MlKem768KeyPair::generate(&mut OsRng);
            server_public.extend_from_slice(server_kem.encapsulation_key());
            client_public.extend_from_slice(client_kem.encapsulation_key());
            server = server.kem_key(server_kem);
            client = client.kem_key(client_kem);
            kind = akex::KeyKind::X25519MlKem768;
        }
        server = server.static_key(server_x);
        client = client.remote(PublicKey::from_bytes(kind, &server_public)?);
        if hybrid.authenticates_initiator {
            client = client.static_key(client_x);
            server = server.remote(PublicKey::from_bytes(kind, &client_public)?);
        }
    } else {
        #[cfg(feature = "ffdh")]
        if name == akex::handshake::ffdh::FFDH_NK {
            let key = akex::handshake::ffdh::FfdhKeyPair::generate(&mut OsRng)?;
            client = client.remote(PublicKey::from_bytes(
                akex::KeyKind::Ffdhe3072,
                key.public(),
            )?);
            server = server.ffdh_key(key);
        }
        #[cfg(feature = "rsa-kt")]
        if name == akex::handshake::rsa::RSA_KT {
            let key = akex::handshake::rsa::RsaKeyPair::generate()?;
            client = client.remote(PublicKey::from_bytes(
                akex::KeyKind::Rsa,
                key.public_key_der(),
            )?);
            server = server.rsa_key(key);
        }
    }
    // Fail now, not at the first connection, if a key is missing.
    registry::initiator(name, &client)?;
    registry::responder(&[name], &server)?;
    Ok(Endpoint::Akex {
        name: name.to_string(),
        server: Some(Box::new(server)),
        client: Box::new(client),
        auth: registry_auth(info),
        hybrid: registry_hybrid(info),
        forward_secret: info.forward_secrecy,
    })
}

fn noise_auth(params: &NoiseProtocol) -> AuthClass {
    match (
        params.authenticates_peer_of(Role::Initiator),
        params.authenticates_peer_of(Role::Responder),
    ) {
        (true, true) => AuthClass::Mutual,
        (true, false) => AuthClass::ServerAuth,
        _ => AuthClass::Anonymous,
    }
}

#[cfg(test)]
mod tests;
