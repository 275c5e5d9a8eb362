//! The tokio transport (feature `tokio`): the only layer that knows sockets,
//! tasks and time, as a thin driver over the sans-IO
//! [`Connection`](crate::Connection).
//!
//! - [`Connector`] / [`Acceptor`]: built once from an `Arc` of a
//!   [`ClientConfig`](crate::ClientConfig) / [`ServerConfig`](crate::ServerConfig),
//!   they run the handshake over any `AsyncRead + AsyncWrite` with a
//!   deadline and return a [`SecureStream`] (bytes) that
//!   [`SecureStream::into_messages`] turns into a [`SecureFramed`]
//!   (messages).
//! - [`connect`] / [`accept`]: the same for a handshake built by hand.
//! - [`Server`]: a TCP accept loop with denial-of-service limits.
//! - [`datagram`]: datagram mode over UDP, one connection
//!   ([`connect_udp`], [`accept_udp`]) or many ([`DatagramServer`]).

pub mod datagram;
mod driver;
mod io;
mod messages;
mod server;
mod stream;

pub use datagram::{
    accept_udp, connect_udp, CookiePolicy, DatagramOptions, DatagramServer, SecureDatagram,
};
pub use driver::{accept, connect, establish, Acceptor, Connector, TransportOptions};
pub use messages::SecureFramed;
pub use server::{
    IdleTimeout, RejectReason, Server, ServerEvent, ServerLimits, ServerStats, ServerStream,
    StatsSnapshot, BUSY_FRAME,
};
pub use stream::SecureStream;

/// The message types of [`SecureFramed`], re-exported so users need no
/// direct dependency on `bytes` or `futures-util` to name them (add
/// `futures-util` for the `SinkExt`/`StreamExt` helpers).
pub use bytes::{Bytes, BytesMut};
pub use futures_util::{Sink, Stream};
