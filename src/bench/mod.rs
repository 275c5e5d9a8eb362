//! The `akex bench` harness: real clients and servers over loopback TCP
//! (or against a separate `akex serve`), with rustls TLS 1.3 measured by
//! the same code in the same run. See docs/benchmarks.md.
//!
//! - [`harness`]: the measurements (latency percentiles, CPU time,
//!   throughput, bytes on the wire, memory per session, link emulation);
//! - [`report`]: table, JSON, markdown and SVG charts;
//! - [`rustls_baseline`]: the TLS configurations;
//! - [`linkemu`]: the in-process delay/bandwidth proxy;
//! - [`wire`]: byte and round-trip counting; [`sys`]: getrusage, RSS, limits.

pub mod harness;
pub mod linkemu;
pub mod report;
pub mod rustls_baseline;
pub mod sys;
pub mod wire;

use std::sync::OnceLock;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::crypto::{OsRng, Secret, StaticSecret};
use crate::handshake::noise::NoiseProtocol;
use crate::transport::{accept, connect, TransportOptions};
use crate::{NoiseConfig, NoiseHandshake, Role};
use rustls_baseline::{TlsPair, TlsVariant};

pub use harness::{run, BenchOptions};
pub use report::{Record, Report};

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

/// The default protocol list: [`DEFAULT_NOISE`] then the four rustls rows.
pub fn default_protocols() -> Vec<String> {
    DEFAULT_NOISE
        .iter()
        .map(|s| s.to_string())
        .chain(TlsVariant::all().iter().map(TlsVariant::name))
        .collect()
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
    /// rustls TLS 1.3.
    Tls {
        /// Which variant.
        variant: TlsVariant,
        /// Both configurations.
        pair: TlsPair,
    },
}

impl Endpoint {
    /// Builds both ends of `name` (a Noise name or a `TLS13_...` row) with
    /// keys generated on the spot.
    pub fn local(name: &str) -> Result<Endpoint, BenchError> {
        if let Some(variant) = TlsVariant::parse(name) {
            return Ok(Endpoint::Tls {
                variant,
                pair: TlsPair::new(variant)?,
            });
        }
        let server_key = StaticSecret::generate(&mut OsRng);
        let client_key = StaticSecret::generate(&mut OsRng);
        let params = NoiseProtocol::parse(name)?;
        let mut server = NoiseConfig::new(name);
        let mut client = NoiseConfig::new(name);
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
        let params = config.params()?;
        Ok(Endpoint::Noise {
            name: config.protocol().to_string(),
            server: None,
            client: Box::new(config),
            auth: noise_auth(&params),
            hybrid: false,
        })
    }

    /// The row name.
    pub fn name(&self) -> String {
        match self {
            Endpoint::Noise { name, .. } => name.clone(),
            Endpoint::Tls { variant, .. } => variant.name(),
        }
    }

    /// Which sides are authenticated.
    pub fn auth(&self) -> AuthClass {
        match self {
            Endpoint::Noise { auth, .. } => *auth,
            Endpoint::Tls { variant, .. } if variant.client_auth => AuthClass::Mutual,
            Endpoint::Tls { .. } => AuthClass::ServerAuth,
        }
    }

    /// True for the rustls rows.
    pub fn is_baseline(&self) -> bool {
        matches!(self, Endpoint::Tls { .. })
    }

    /// True if the key exchange includes ML-KEM.
    pub fn is_hybrid(&self) -> bool {
        match self {
            Endpoint::Noise { hybrid, .. } => *hybrid,
            Endpoint::Tls { variant, .. } => variant.kx == rustls_baseline::TlsKx::X25519MlKem768,
        }
    }

    /// True if this process can run the server end.
    pub fn has_server(&self) -> bool {
        !matches!(self, Endpoint::Noise { server: None, .. })
    }

    /// Runs the client handshake over `io`.
    pub async fn client<IO: Duplex + 'static>(&self, io: IO) -> Result<BoxStream, BenchError> {
        match self {
            Endpoint::Noise { client, .. } => {
                let hs = Box::new(NoiseHandshake::initiator((**client).clone())?);
                Ok(Box::new(connect(io, hs, options()).await?))
            }
            Endpoint::Tls { pair, .. } => Ok(Box::new(
                pair.connector.connect(pair.server_name.clone(), io).await?,
            )),
        }
    }

    /// Runs the server handshake over `io`.
    pub async fn server<IO: Duplex + 'static>(&self, io: IO) -> Result<BoxStream, BenchError> {
        match self {
            Endpoint::Noise {
                server: Some(server),
                ..
            } => {
                let hs = Box::new(NoiseHandshake::responder((**server).clone())?);
                Ok(Box::new(accept(io, hs, options()).await?))
            }
            Endpoint::Noise { server: None, .. } => {
                Err("this protocol's server runs elsewhere (--server)".into())
            }
            Endpoint::Tls { pair, .. } => Ok(Box::new(pair.acceptor.accept(io).await?)),
        }
    }
}

fn options() -> &'static TransportOptions {
    static OPTIONS: OnceLock<TransportOptions> = OnceLock::new();
    OPTIONS.get_or_init(TransportOptions::default)
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
