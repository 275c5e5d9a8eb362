//! Runs a handshake over a framed stream, with a deadline.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use super::codec::FrameCodec;
use super::stream::SecureStream;
use crate::error::{ConfigError, Error, PeerMisbehaved};
use crate::handshake::{Established, Handshake, Role, MAX_MESSAGE_LEN};

/// Limits for one connection's handshake.
#[derive(Debug, Clone)]
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

/// Runs `handshake` as the initiator over `io`.
pub async fn connect<IO>(
    io: IO,
    handshake: Box<dyn Handshake>,
    options: &TransportOptions,
) -> Result<SecureStream<IO>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    expect_role(&*handshake, Role::Initiator)?;
    establish(io, handshake, options).await
}

/// Runs `handshake` as the responder over `io`.
pub async fn accept<IO>(
    io: IO,
    handshake: Box<dyn Handshake>,
    options: &TransportOptions,
) -> Result<SecureStream<IO>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    expect_role(&*handshake, Role::Responder)?;
    establish(io, handshake, options).await
}

fn expect_role(handshake: &dyn Handshake, role: Role) -> Result<(), Error> {
    if handshake.role() == role {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!("this call needs a handshake in the {role} role")).into())
    }
}

/// Runs `handshake` in whichever role it has, then returns the secure stream.
pub async fn establish<IO>(
    io: IO,
    handshake: Box<dyn Handshake>,
    options: &TransportOptions,
) -> Result<SecureStream<IO>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut framed = Framed::new(io, FrameCodec::new(options.max_frame_len));
    let (established, payloads) =
        tokio::time::timeout(options.handshake_timeout, pump(&mut framed, handshake))
            .await
            .map_err(|_| Error::Timeout(options.handshake_timeout))??;
    SecureStream::new(framed, established, payloads)
}

async fn pump<IO>(
    framed: &mut Framed<IO, FrameCodec>,
    mut handshake: Box<dyn Handshake>,
) -> Result<(Established, Vec<Vec<u8>>), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut message = Vec::new();
    let mut payloads = Vec::new();
    while !handshake.is_finished() {
        if handshake.wants_write() {
            message.clear();
            handshake.write_message(&[], &mut message)?;
            framed.send(Bytes::copy_from_slice(&message)).await?;
        } else {
            match framed.next().await {
                Some(frame) => {
                    let mut payload = Vec::new();
                    handshake.read_message(&frame?, &mut payload)?;
                    payloads.push(payload);
                }
                None => return Err(PeerMisbehaved::ClosedDuringHandshake.into()),
            }
        }
    }
    Ok((handshake.finish()?, payloads))
}
