//! The tokio transport: the only layer that knows sockets, tasks and time.
//!
//! Every message on the stream is a 2-byte big-endian length and that many
//! bytes ([`FrameCodec`]). [`connect`] and [`accept`] run a handshake over
//! the frames with a timeout and return a [`SecureStream`] on the same
//! framed stream, so no byte already read is lost when the handshake ends.

mod codec;
pub mod datagram;
mod driver;
mod messages;
mod server;
mod stream;

pub use codec::FrameCodec;
pub use datagram::{accept_udp, connect_udp, DatagramOptions, SecureDatagram};
pub use driver::{accept, connect, establish, TransportOptions};
pub use messages::SecureFramed;
pub use server::{
    IdleTimeout, RejectReason, Server, ServerEvent, ServerLimits, ServerStats, ServerStream,
    StatsSnapshot,
};
pub use stream::SecureStream;
