//! The OpenSSL TLS 1.3 baseline (the system's libssl through the `openssl`
//! crate): the same shape as the rustls rows — ECDSA P-256 self-signed
//! certificates made with rcgen at start, exactly one key exchange group,
//! only `TLS_CHACHA20_POLY1305_SHA256`, no session tickets, with or without
//! a client certificate.
//!
//! This file builds the two `SslContext`s only; it names no other harness
//! module and no async runtime, so `benches/vs_rustls.rs` compiles it in
//! too (`#[path]`). The harness drives the contexts with tokio-openssl.

use openssl::pkey::PKey;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;

/// Any error, with its message.
type BaselineError = Box<dyn std::error::Error + Send + Sync>;

/// The key exchange group offered and accepted (the only one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsslKx {
    /// Classical X25519.
    X25519,
    /// X25519 + ML-KEM-768 (OpenSSL 3.5 and later only).
    X25519MlKem768,
}

/// One OpenSSL configuration of the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsslVariant {
    /// Key exchange group.
    pub kx: OsslKx,
    /// The client presents a certificate too (mutual authentication).
    pub client_auth: bool,
}

/// The row-name prefix: `OpenSSL_TLS13_X25519`, `OpenSSL_TLS13_X25519_mTLS`.
pub const PREFIX: &str = "OpenSSL_";

impl OsslVariant {
    /// The row name, e.g. `OpenSSL_TLS13_X25519_mTLS`.
    pub fn name(&self) -> String {
        let kx = match self.kx {
            OsslKx::X25519 => "X25519",
            OsslKx::X25519MlKem768 => "X25519MLKEM768",
        };
        format!(
            "{PREFIX}TLS13_{kx}{}",
            if self.client_auth { "_mTLS" } else { "" }
        )
    }

    /// Parses a row name (case-insensitive); `None` if it is not an
    /// OpenSSL row.
    pub fn parse(name: &str) -> Option<OsslVariant> {
        let upper = name.to_ascii_uppercase();
        let rest = upper
            .strip_prefix(&PREFIX.to_ascii_uppercase())?
            .strip_prefix("TLS13_")?;
        let (kx, client_auth) = match rest.strip_suffix("_MTLS") {
            Some(kx) => (kx, true),
            None => (rest, false),
        };
        let kx = match kx {
            "X25519" => OsslKx::X25519,
            "X25519MLKEM768" => OsslKx::X25519MlKem768,
            _ => return None,
        };
        Some(OsslVariant { kx, client_auth })
    }

    /// The rows this OpenSSL can run: the X25519 pair always, the ML-KEM
    /// pair only where the library has the group (3.5 and later).
    pub fn available() -> Vec<OsslVariant> {
        let mut rows = Vec::new();
        for kx in [OsslKx::X25519, OsslKx::X25519MlKem768] {
            if kx == OsslKx::X25519MlKem768 && !has_mlkem() {
                continue;
            }
            for client_auth in [false, true] {
                rows.push(OsslVariant { kx, client_auth });
            }
        }
        rows
    }

    fn group(&self) -> &'static str {
        match self.kx {
            OsslKx::X25519 => "X25519",
            OsslKx::X25519MlKem768 => "X25519MLKEM768",
        }
    }
}

/// True if the linked OpenSSL accepts the X25519MLKEM768 group.
fn has_mlkem() -> bool {
    SslContextBuilder::new(SslMethod::tls())
        .and_then(|mut b| b.set_groups_list("X25519MLKEM768"))
        .is_ok()
}

/// The linked library's version string, e.g. `OpenSSL 3.0.19 27 Jan 2026`.
pub fn version() -> &'static str {
    openssl::version::version()
}

/// Both ends of one OpenSSL variant.
#[derive(Clone)]
pub struct OsslPair {
    /// Server context.
    pub server: SslContext,
    /// Client context.
    pub client: SslContext,
}

impl std::fmt::Debug for OsslPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsslPair").finish_non_exhaustive()
    }
}

/// A self-signed ECDSA P-256 certificate and its key, as OpenSSL objects.
fn identity(name: &str) -> Result<(X509, PKey<openssl::pkey::Private>), BaselineError> {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_string()])?;
    let cert = X509::from_der(certified.cert.der())?;
    let key = PKey::private_key_from_pkcs8(&certified.signing_key.serialize_der())?;
    Ok((cert, key))
}

/// TLS 1.3 only, one group, ChaCha20-Poly1305 only, no tickets, no cache.
fn context(variant: OsslVariant) -> Result<SslContextBuilder, BaselineError> {
    let mut b = SslContextBuilder::new(SslMethod::tls())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
    b.set_max_proto_version(Some(SslVersion::TLS1_3))?;
    b.set_ciphersuites("TLS_CHACHA20_POLY1305_SHA256")?;
    b.set_groups_list(variant.group()).map_err(|e| {
        format!(
            "{}: {} has no {} group ({e})",
            variant.name(),
            version(),
            variant.group()
        )
    })?;
    b.set_options(SslOptions::NO_TICKET);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_num_tickets(0)?;
    Ok(b)
}

impl OsslPair {
    /// Generates certificates and builds both contexts; each side's only
    /// trust anchor is the other's certificate.
    pub fn new(variant: OsslVariant) -> Result<OsslPair, BaselineError> {
        let (server_cert, server_key) = identity("localhost")?;
        let (client_cert, client_key) = identity("client.localhost")?;

        let mut server = context(variant)?;
        server.set_certificate(&server_cert)?;
        server.set_private_key(&server_key)?;
        server.check_private_key()?;
        if variant.client_auth {
            let mut store = X509StoreBuilder::new()?;
            store.add_cert(client_cert.clone())?;
            server.set_verify_cert_store(store.build())?;
            server.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        } else {
            server.set_verify(SslVerifyMode::NONE);
        }

        let mut client = context(variant)?;
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(server_cert)?;
        client.set_verify_cert_store(store.build())?;
        client.set_verify(SslVerifyMode::PEER);
        if variant.client_auth {
            client.set_certificate(&client_cert)?;
            client.set_private_key(&client_key)?;
        }
        Ok(OsslPair {
            server: server.build(),
            client: client.build(),
        })
    }

    /// A client `Ssl` that checks the server's name (`localhost`).
    pub fn client_ssl(&self) -> Result<Ssl, BaselineError> {
        let mut ssl = Ssl::new(&self.client)?;
        ssl.set_hostname("localhost")?;
        ssl.param_mut().set_host("localhost")?;
        ssl.set_connect_state();
        Ok(ssl)
    }

    /// A server `Ssl`.
    pub fn server_ssl(&self) -> Result<Ssl, BaselineError> {
        let mut ssl = Ssl::new(&self.server)?;
        ssl.set_accept_state();
        Ok(ssl)
    }
}

#[cfg(test)]
mod tests {
    // Also compiled (without its tests) into benches/vs_rustls.rs.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in OsslVariant::available() {
            assert_eq!(OsslVariant::parse(&v.name()), Some(v));
        }
        assert_eq!(
            OsslVariant::parse("openssl_tls13_x25519_mtls"),
            Some(OsslVariant {
                kx: OsslKx::X25519,
                client_auth: true
            })
        );
        assert_eq!(OsslVariant::parse("TLS13_X25519"), None);
        assert!(version().starts_with("OpenSSL"));
    }
}
