//! Running a handshake over a byte stream, with a deadline: [`Connector`]
//! and [`Acceptor`] (built once from a shared configuration, the role fixed
//! by the type, like tokio-rustls), and the lower-level [`connect`] /
//! [`accept`] for a handshake built by hand.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::io::Driver;
use super::stream::SecureStream;
use crate::config::{ClientConfig, ServerConfig};
use crate::connection::Connection;
use crate::error::{ConfigError, Error};
use crate::handshake::{Handshake, Role, MAX_MESSAGE_LEN};

/// Limits for one connection's handshake.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportOptions {
    /// The whole handshake must finish within this time (default 10 s).
    pub handshake_timeout: Duration,
    /// Largest frame accepted (default and maximum 65535).
    pub max_frame_len: usize,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            handshake_timeout: Duration::from_secs(10),
            max_frame_len: MAX_MESSAGE_LEN,
        }
    }
}

impl TransportOptions {
    /// The defaults (10 s handshake deadline, 65535-byte frames).
    pub fn new() -> Self {
        Self::default()
    }

    /// The handshake deadline.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The largest frame accepted (at most 65535).
    pub fn max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max.min(MAX_MESSAGE_LEN);
        self
    }
}

/// Runs the initiator side for a [`ClientConfig`] over any byte stream.
///
/// ```no_run
/// # async fn demo(server_key: akex::PublicKey) -> Result<(), akex::Error> {
/// use std::sync::Arc;
/// use akex::transport::Connector;
/// use akex::{ClientConfig, HandshakeKeys};
/// use tokio::io::AsyncWriteExt;
///
/// let keys = HandshakeKeys::new().remote(server_key);
/// let config = Arc::new(ClientConfig::new("Noise_NK_25519_ChaChaPoly_BLAKE2s", keys)?);
/// let connector = Connector::new(config);
/// let tcp = tokio::net::TcpStream::connect("127.0.0.1:7000").await?;
/// let mut stream = connector.connect(tcp).await?;
/// stream.write_all(b"hello").await?; // on its way without a flush
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
    options: TransportOptions,
}

impl Connector {
    /// A connector with the default [`TransportOptions`].
    pub fn new(config: Arc<ClientConfig>) -> Self {
        Connector {
            config,
            options: TransportOptions::default(),
        }
    }

    /// Replaces the transport options.
    pub fn with_options(mut self, options: TransportOptions) -> Self {
        self.options = options;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Runs the handshake over `io` and returns the secure stream.
    pub async fn connect<IO>(&self, io: IO) -> Result<SecureStream<IO>, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let conn = Connection::client(&self.config)?;
        run(io, conn, &self.options).await
    }

    /// [`Connector::connect`] with these handshake payloads instead of the
    /// configuration's (e.g. a per-connection token; mind which messages
    /// are encrypted, see [`ClientConfig::handshake_payloads`]).
    pub async fn connect_with_payloads<IO>(
        &self,
        io: IO,
        payloads: Vec<Vec<u8>>,
    ) -> Result<SecureStream<IO>, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let config = ClientConfig::clone(&self.config).with_handshake_payloads(payloads)?;
        let conn = Connection::client(&config)?;
        run(io, conn, &self.options).await
    }
}

/// Runs the responder side for a [`ServerConfig`] over any byte stream.
#[derive(Debug, Clone)]
pub struct Acceptor {
    config: Arc<ServerConfig>,
    options: TransportOptions,
}

impl Acceptor {
    /// An acceptor with the default [`TransportOptions`].
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Acceptor {
            config,
            options: TransportOptions::default(),
        }
    }

    /// Replaces the transport options.
    pub fn with_options(mut self, options: TransportOptions) -> Self {
        self.options = options;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the handshake over `io` and returns the secure stream.
    pub async fn accept<IO>(&self, io: IO) -> Result<SecureStream<IO>, Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let conn = Connection::server(&self.config)?;
        run(io, conn, &self.options).await
    }
}

/// Runs `handshake` as the initiator over `io`. Fails with
/// [`ConfigError::WrongRole`] for a responder.
pub async fn connect<IO, H>(
    io: IO,
    handshake: H,
    options: &TransportOptions,
) -> Result<SecureStream<IO>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    H: Handshake + 'static,
{
    expect_role(&handshake, Role::Initiator)?;
    establish(io, handshake, options).await
}

/// Runs `handshake` as the responder over `io`. Fails with
/// [`ConfigError::WrongRole`] for an initiator.
pub async fn accept<IO, H>(
    io: IO,
    handshake: H,
    options: &TransportOptions,
) -> Result<SecureStream<IO>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    H: Handshake + 'static,
{
    expect_role(&handshake, Role::Responder)?;
    establish(io, handshake, options).await
}

fn expect_role(handshake: &dyn Handshake, role: Role) -> Result<(), Error> {
    if handshake.role() == role {
        Ok(())
    } else {
        Err(ConfigError::WrongRole {
            expected: role,
            given: handshake.role(),
        }
        .into())
    }
}

/// Runs `handshake` in whichever role it has, then returns the secure
/// stream.
pub async fn establish<IO, H>(
    io: IO,
    handshake: H,
    options: &TransportOptions,
) -> Result<SecureStream<IO>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    H: Handshake + 'static,
{
    let conn = Connection::with_handshake(Box::new(handshake))?;
    run(io, conn, options).await
}

async fn run<IO>(
    io: IO,
    mut conn: Connection,
    options: &TransportOptions,
) -> Result<SecureStream<IO>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    conn.set_max_frame_len(options.max_frame_len);
    let mut driver = Driver::new(io, conn);
    tokio::time::timeout(
        options.handshake_timeout,
        poll_fn(|cx| driver.poll_handshake(cx)),
    )
    .await
    .map_err(|_| Error::Timeout(options.handshake_timeout))??;
    Ok(SecureStream::from_driver(driver))
}
