//! The session layer: traffic keys after the handshake, for every protocol.
//!
//! In Noise mode a [`Session`] is exactly the pair of Noise CipherStates
//! (section 5.1 of the Noise spec), so it interoperates with any Noise
//! implementation. Rekeying policies and ratchets build on [`CipherState`].

mod cipher_state;

pub use cipher_state::CipherState;

use crate::crypto::{AeadAlgorithm, TAG_LEN};
use crate::error::{ApiMisuse, Error, PeerMisbehaved};
use crate::handshake::{Established, Role, MAX_MESSAGE_LEN};

/// Largest plaintext in one transport message.
pub const MAX_PLAINTEXT_LEN: usize = MAX_MESSAGE_LEN - TAG_LEN;

/// What a session knows about the handshake that made it (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The full protocol name.
    pub protocol: String,
    /// Our role in the handshake.
    pub role: Role,
    /// The handshake hash (channel binding).
    pub handshake_hash: Vec<u8>,
    /// The peer's authenticated static public key, if any.
    pub remote_static: Option<Vec<u8>>,
    /// The AEAD in use.
    pub aead: AeadAlgorithm,
}

/// Encrypts outgoing and decrypts incoming transport messages.
#[derive(Debug)]
pub struct Session {
    info: SessionInfo,
    send: CipherState,
    recv: CipherState,
}

impl Session {
    /// Takes over the traffic secrets of a finished handshake.
    pub fn new(established: Established) -> Self {
        let aead = established.aead();
        let send = CipherState::new(aead, established.sending_secret().expose());
        let recv = CipherState::new(aead, established.receiving_secret().expose());
        let info = SessionInfo {
            protocol: established.protocol().to_string(),
            role: established.role(),
            handshake_hash: established.handshake_hash().to_vec(),
            remote_static: established.remote_static().map(<[u8]>::to_vec),
            aead,
        };
        // `established` drops here and zeroizes its copies of the secrets.
        Session { info, send, recv }
    }

    /// The handshake's public facts.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Encrypts the plaintext in `buf` in place and appends the tag.
    pub fn seal_in_place<B>(&mut self, buf: &mut B) -> Result<(), Error>
    where
        B: AsMut<[u8]> + for<'a> Extend<&'a u8>,
    {
        if buf.as_mut().len() > MAX_PLAINTEXT_LEN {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        self.send.encrypt_in_place(&[], buf)
    }

    /// Decrypts the message in `buf` in place; returns the plaintext length.
    pub fn open_in_place(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.len() > MAX_MESSAGE_LEN {
            return Err(PeerMisbehaved::BadMessageLength.into());
        }
        self.recv.decrypt_in_place(&[], buf)
    }

    /// Encrypts `plaintext`, appending the message to `out`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        self.send.encrypt_append(&[], plaintext, out)
    }

    /// Decrypts `message`, appending the plaintext to `out`.
    pub fn open(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if message.len() > MAX_MESSAGE_LEN {
            return Err(PeerMisbehaved::BadMessageLength.into());
        }
        self.recv.decrypt_append(&[], message, out)
    }

    /// The CipherState for messages we send (its nonce is the count sent).
    pub fn sending(&self) -> &CipherState {
        &self.send
    }

    /// The CipherState for messages we receive.
    pub fn receiving(&self) -> &CipherState {
        &self.recv
    }

    /// Noise `REKEY()` of the sending key; the peer must rekey its receiving key
    /// at the same point in the message stream.
    pub fn rekey_outgoing(&mut self) {
        self.send.rekey();
    }

    /// Noise `REKEY()` of the receiving key.
    pub fn rekey_incoming(&mut self) {
        self.recv.rekey();
    }
}
