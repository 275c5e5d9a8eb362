//! The `Handshake` trait and its protocols.
//!
//! A handshake is a sans-IO message pump: the caller moves bytes between
//! [`Handshake::write_message`] / [`Handshake::read_message`] and the wire
//! until [`Handshake::is_finished`], then calls [`Handshake::finish`] to get
//! the [`Established`] keys. Time and randomness come from the caller.

#[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
pub(crate) mod akex;
mod established;
#[cfg(feature = "ffdh")]
pub mod ffdh;
pub mod hybrid;
pub mod noise;
mod pattern;
pub mod pq;
pub mod registry;
mod registry_table;
#[cfg(feature = "rsa-kt")]
pub mod rsa;
pub mod sigma;
#[cfg(any(feature = "rsa-kt", feature = "ffdh"))]
mod two_message;
mod verify;

pub use established::{Established, TrafficSecret};
pub use noise::{NoiseConfig, NoiseHandshake};
pub use verify::PeerVerifier;
pub(crate) use verify::Verified;

use crate::error::Error;

/// Which side of the handshake we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends the first message (the client).
    Initiator,
    /// Answers the first message (the server).
    Responder,
}

impl Role {
    /// The other side.
    pub fn peer(self) -> Role {
        match self {
            Role::Initiator => Role::Responder,
            Role::Responder => Role::Initiator,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Initiator => "initiator",
            Role::Responder => "responder",
        })
    }
}

/// Largest handshake or transport message on the wire (the Noise limit,
/// and the most a 2-byte length prefix can carry).
pub const MAX_MESSAGE_LEN: usize = 65535;

/// Runs one step that appends to `buf`; if it fails, removes what it
/// appended, so a failed `write_message`/`read_message` leaves the caller's
/// buffer as it was.
pub(crate) fn append_or_undo(
    buf: &mut Vec<u8>,
    step: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let start = buf.len();
    let result = step(buf);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

impl<H: Handshake + ?Sized> Handshake for Box<H> {
    fn protocol(&self) -> &str {
        (**self).protocol()
    }
    fn role(&self) -> Role {
        (**self).role()
    }
    fn wants_write(&self) -> bool {
        (**self).wants_write()
    }
    fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        (**self).write_message(payload, out)
    }
    fn read_message(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        (**self).read_message(message, payload)
    }
    fn is_finished(&self) -> bool {
        (**self).is_finished()
    }
    fn finish(&mut self) -> Result<Established, Error> {
        (**self).finish()
    }
    fn remote_static(&self) -> Option<crate::keys::PublicKey> {
        (**self).remote_static()
    }
}

/// One authenticated key exchange, driven message by message.
///
/// After any error the handshake is dead: every later call fails with
/// [`crate::error::ApiMisuse::HandshakeDead`].
pub trait Handshake: Send {
    /// The full protocol name, bound into the transcript.
    fn protocol(&self) -> &str;
    /// Our role.
    fn role(&self) -> Role;
    /// True when the next step is ours to send.
    fn wants_write(&self) -> bool;
    /// Writes the next handshake message carrying `payload`, appending it to `out`.
    fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error>;
    /// Reads the peer's next handshake message, appending its payload to `payload`.
    fn read_message(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error>;
    /// True when both sides have sent every handshake message.
    fn is_finished(&self) -> bool;
    /// Hands over the traffic secrets of the finished handshake, once: the
    /// handshake erases its own copies and every later call fails with
    /// [`ApiMisuse::HandshakeDead`](crate::error::ApiMisuse::HandshakeDead).
    fn finish(&mut self) -> Result<Established, Error>;
    /// The peer's static key as soon as the handshake knows it: given in
    /// advance (NK, IK, ...), or received in a message this handshake has
    /// read, decrypted and checked as far as that message allows. `None`
    /// while unknown and for protocols that authenticate no peer key.
    /// A [`PeerVerifier`] is asked about this key before the next message
    /// is written.
    fn remote_static(&self) -> Option<crate::keys::PublicKey> {
        None
    }
}
