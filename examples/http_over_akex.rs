//! HTTP/1.1 over an akex session: hyper runs unchanged on `SecureStream`
//! (it is `AsyncRead + AsyncWrite`), and the request handler authorizes each
//! request by the client's authenticated static key
//! (`stream.session_info().remote_static`), not by anything in the request.
//!
//! ```text
//! cargo run -- keygen --output server.key    # prints SERVER_PUB
//! cargo run -- keygen --output client.key    # prints CLIENT_PUB
//! cargo run --example http_over_akex -- serve --addr 127.0.0.1:8443 --identity server.key --allow CLIENT_PUB
//! cargo run --example http_over_akex -- get --addr 127.0.0.1:8443 --identity client.key --peer-key SERVER_PUB --path /hello
//! ```
//!
//! The handshake is `Noise_XX_25519_ChaChaPoly_BLAKE2s` (`--protocol` takes
//! any registry protocol keyed by X25519 statics, the same on both sides).
//! Clients whose key is in `--allow` get `200` and a greeting naming their
//! key; any other (authenticated) client gets `403 Forbidden`. `serve --addr
//! 127.0.0.1:0` picks a free port and prints `http_over_akex: listening on
//! ADDR` on stderr. `get` prints the status line and the body on stdout and
//! exits non-zero unless the status is 2xx.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use akex::handshake::registry::{self, HandshakeKeys};
use akex::keys::{decode_public_key, encode_public_key, load_identity};
use akex::transport::{accept, connect, TransportOptions};
use akex::PublicKey;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const PROLOGUE: &[u8] = b"akex http_over_akex v1";

/// HTTP/1.1 over an akex session (see the file header).
#[derive(Parser, Debug)]
#[command(name = "http_over_akex")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve HTTP/1.1 over akex until killed.
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long)]
        addr: SocketAddr,
        /// Our X25519 private key file (from `akex keygen`).
        #[arg(long)]
        identity: PathBuf,
        /// A client public key (base64) allowed to make requests (repeatable).
        #[arg(long)]
        allow: Vec<String>,
        /// Protocol name; both sides must agree.
        #[arg(long, default_value = "Noise_XX_25519_ChaChaPoly_BLAKE2s")]
        protocol: String,
    },
    /// Make one GET request and print the response.
    Get {
        /// The server's address.
        #[arg(long)]
        addr: String,
        /// Our X25519 private key file.
        #[arg(long)]
        identity: PathBuf,
        /// The server's public key (base64), pinned.
        #[arg(long)]
        peer_key: String,
        /// The request path.
        #[arg(long, default_value = "/")]
        path: String,
        /// Protocol name; both sides must agree.
        #[arg(long, default_value = "Noise_XX_25519_ChaChaPoly_BLAKE2s")]
        protocol: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve {
            addr,
            identity,
            allow,
            protocol,
        } => serve(addr, &identity, &allow, &protocol).await,
        Command::Get {
            addr,
            identity,
            peer_key,
            path,
            protocol,
        } => get(&addr, &identity, &peer_key, &path, &protocol).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http_over_akex: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn handshake_keys(identity: &Path, peer_key: Option<&str>) -> Res<HandshakeKeys> {
    let mut keys = HandshakeKeys::new()
        .static_key(load_identity(identity)?)
        .prologue(PROLOGUE.to_vec());
    if let Some(key) = peer_key {
        keys = keys.remote(PublicKey::x25519(decode_public_key(key)?));
    }
    Ok(keys)
}

async fn serve(addr: SocketAddr, identity: &Path, allow: &[String], protocol: &str) -> Res<()> {
    let keys = handshake_keys(identity, None)?;
    registry::check_responder(&[protocol], &keys)?;
    let allowed: HashSet<[u8; 32]> = allow
        .iter()
        .map(|k| decode_public_key(k))
        .collect::<Result<_, _>>()?;
    let allowed = Arc::new(allowed);
    let listener = TcpListener::bind(addr).await?;
    eprintln!(
        "http_over_akex: listening on {} ({protocol})",
        listener.local_addr()?
    );
    loop {
        let (tcp, from) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let handshake = registry::responder(&[protocol], &keys)?;
        let allowed = allowed.clone();
        tokio::spawn(async move {
            let stream = match accept(tcp, handshake, &TransportOptions::default()).await {
                Ok(stream) => stream,
                Err(e) => {
                    eprintln!("http_over_akex: {from}: handshake failed: {e}");
                    return;
                }
            };
            // The key the handshake authenticated: the identity every
            // request on this connection is authorized by.
            let client: Option<[u8; 32]> = stream
                .session_info()
                .remote_static
                .as_deref()
                .and_then(|k| k.try_into().ok());
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let allowed = allowed.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, client, &allowed)) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("http_over_akex: {from}: connection error: {e}");
            }
        });
    }
}

/// The request handler: the authorization decision uses only the peer key
/// the akex handshake proved.
fn handle(
    req: Request<Incoming>,
    client: Option<[u8; 32]>,
    allowed: &HashSet<[u8; 32]>,
) -> Response<Full<Bytes>> {
    let key = client.map(|k| encode_public_key(&k));
    let (status, body) = match client {
        Some(k) if allowed.contains(&k) => (
            StatusCode::OK,
            format!(
                "hello {}, you asked for {} {}\n",
                key.as_deref().unwrap_or("?"),
                req.method(),
                req.uri().path()
            ),
        ),
        _ => (
            StatusCode::FORBIDDEN,
            format!(
                "forbidden: client key {} is not allowed\n",
                key.as_deref().unwrap_or("(none)")
            ),
        ),
    };
    eprintln!(
        "http_over_akex: {} {} from {} -> {}",
        req.method(),
        req.uri().path(),
        key.as_deref().unwrap_or("(no key)"),
        status.as_u16()
    );
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

async fn get(addr: &str, identity: &Path, peer_key: &str, path: &str, protocol: &str) -> Res<()> {
    let keys = handshake_keys(identity, Some(peer_key))?;
    let handshake = registry::initiator(protocol, &keys)?;
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let stream = connect(tcp, handshake, &TransportOptions::default()).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let request = Request::builder()
        .uri(path)
        .header("host", addr)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!("{status}");
    print!("{}", String::from_utf8_lossy(&body));
    drop(sender);
    let _ = driver.await;
    if !status.is_success() {
        return Err(format!("the server answered {status}").into());
    }
    Ok(())
}
