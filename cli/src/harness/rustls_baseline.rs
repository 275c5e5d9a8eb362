//! The rustls TLS 1.3 baseline: aws-lc-rs provider, ECDSA P-256
//! self-signed certificates made with rcgen at start, X25519 or
//! X25519MLKEM768, with or without a client certificate.
//!
//! The only cipher suite offered is `TLS13_CHACHA20_POLY1305_SHA256`: the
//! AEAD every default akex row uses, so bulk figures compare one cipher
//! (left to itself rustls negotiates AES-256-GCM; docs/benchmarks.md has
//! AES-GCM on both sides too).

use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Any error, with its message (this file is also compiled into
/// `benches/vs_rustls.rs`, so it names no other harness module).
type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// The TLS key exchange group offered and accepted (the only one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsKx {
    /// Classical X25519.
    X25519,
    /// The X25519 + ML-KEM-768 hybrid (draft-ietf-tls-ecdhe-mlkem).
    X25519MlKem768,
}

/// One TLS configuration of the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVariant {
    /// Key exchange group.
    pub kx: TlsKx,
    /// The client presents a certificate too (mutual authentication).
    pub client_auth: bool,
}

impl TlsVariant {
    /// The row name, e.g. `TLS13_X25519MLKEM768_mTLS`.
    pub fn name(&self) -> String {
        let kx = match self.kx {
            TlsKx::X25519 => "X25519",
            TlsKx::X25519MlKem768 => "X25519MLKEM768",
        };
        format!("TLS13_{kx}{}", if self.client_auth { "_mTLS" } else { "" })
    }

    /// Parses a row name (case-insensitive); `None` if it is not a TLS row.
    pub fn parse(name: &str) -> Option<TlsVariant> {
        let upper = name.to_ascii_uppercase();
        let rest = upper.strip_prefix("TLS13_")?;
        let (kx, client_auth) = match rest.strip_suffix("_MTLS") {
            Some(kx) => (kx, true),
            None => (rest, false),
        };
        let kx = match kx {
            "X25519" => TlsKx::X25519,
            "X25519MLKEM768" => TlsKx::X25519MlKem768,
            _ => return None,
        };
        Some(TlsVariant { kx, client_auth })
    }

    /// The four baseline rows.
    pub fn all() -> [TlsVariant; 4] {
        [
            TlsVariant {
                kx: TlsKx::X25519,
                client_auth: false,
            },
            TlsVariant {
                kx: TlsKx::X25519MlKem768,
                client_auth: false,
            },
            TlsVariant {
                kx: TlsKx::X25519,
                client_auth: true,
            },
            TlsVariant {
                kx: TlsKx::X25519MlKem768,
                client_auth: true,
            },
        ]
    }
}

fn provider(kx: TlsKx) -> Arc<CryptoProvider> {
    let group: &'static dyn SupportedKxGroup = match kx {
        TlsKx::X25519 => aws_lc_rs::kx_group::X25519,
        TlsKx::X25519MlKem768 => aws_lc_rs::kx_group::X25519MLKEM768,
    };
    Arc::new(CryptoProvider {
        kx_groups: vec![group],
        cipher_suites: vec![aws_lc_rs::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256],
        ..aws_lc_rs::default_provider()
    })
}

/// A self-signed ECDSA P-256 certificate and its key.
struct Identity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

fn identity(name: &str) -> Result<Identity, BenchError> {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_string()])?;
    Ok(Identity {
        cert: certified.cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()),
    })
}

/// Both ends of one TLS variant, ready to run handshakes.
#[derive(Clone)]
pub struct TlsPair {
    /// Server side.
    pub acceptor: TlsAcceptor,
    /// Client side.
    pub connector: TlsConnector,
    /// The name the client checks in the server certificate.
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPair").finish_non_exhaustive()
    }
}

impl TlsPair {
    /// Generates certificates and builds both configurations: TLS 1.3
    /// only, one key exchange group, no session tickets (every handshake is
    /// a full one, like the Noise rows).
    pub fn new(variant: TlsVariant) -> Result<TlsPair, BenchError> {
        let provider = provider(variant.kx);
        let server_id = identity("localhost")?;
        let client_id = identity("client.localhost")?;

        let mut server_roots = RootCertStore::empty();
        server_roots.add(server_id.cert.clone())?;
        let server_builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?;
        let server_builder = if variant.client_auth {
            let mut client_roots = RootCertStore::empty();
            client_roots.add(client_id.cert.clone())?;
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(client_roots),
                provider.clone(),
            )
            .build()?;
            server_builder.with_client_cert_verifier(verifier)
        } else {
            server_builder.with_no_client_auth()
        };
        let mut server = server_builder.with_single_cert(
            vec![server_id.cert.clone()],
            PrivateKeyDer::Pkcs8(server_id.key.clone_key()),
        )?;
        server.send_tls13_tickets = 0;

        let client_builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(server_roots);
        let client = if variant.client_auth {
            client_builder.with_client_auth_cert(
                vec![client_id.cert.clone()],
                PrivateKeyDer::Pkcs8(client_id.key.clone_key()),
            )?
        } else {
            client_builder.with_no_client_auth()
        };
        Ok(TlsPair {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name: ServerName::try_from("localhost")?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    // Also compiled (without its tests) into benches/vs_rustls.rs.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in TlsVariant::all() {
            assert_eq!(TlsVariant::parse(&v.name()), Some(v));
        }
        assert_eq!(TlsVariant::parse("Noise_XX_25519_ChaChaPoly_BLAKE2s"), None);
    }

    #[tokio::test]
    async fn handshakes_complete_in_every_variant() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for v in TlsVariant::all() {
            let pair = TlsPair::new(v).unwrap();
            let (a, b) = tokio::io::duplex(1 << 16);
            let acceptor = pair.acceptor.clone();
            let server = tokio::spawn(async move {
                let mut s = acceptor.accept(b).await.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
                s.flush().await.unwrap();
            });
            let mut c = pair
                .connector
                .connect(pair.server_name.clone(), a)
                .await
                .unwrap();
            c.write_all(b"ping").await.unwrap();
            c.flush().await.unwrap();
            let mut buf = [0u8; 4];
            c.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            server.await.unwrap();
        }
    }
}
