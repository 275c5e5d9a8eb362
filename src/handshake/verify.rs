//! The peer's static key checked during the handshake, before we send
//! anything more.
//!
//! Pinning one key ([`HandshakeKeys::remote`](crate::config::HandshakeKeys::remote))
//! is checked inside each protocol. A [`PeerVerifier`] generalizes it to any
//! policy (a trust store, a revocation list, a callback): the handshake asks
//! it about the peer's key as soon as a message has shown that key, before
//! that message's payload is handed out and before our next message is
//! written. In the patterns where the initiator sends its identity after
//! the responder's (Noise XX, SIGMA-I, hybrid and PQ XX), a refused
//! responder therefore never receives the initiator's identity.

use std::sync::Arc;

use super::{Established, Handshake, Role};
use crate::error::{ApiMisuse, Error, TrustFailure};
use crate::keys::PublicKey;

/// Decides whether the peer's static key is trusted, during the handshake.
///
/// Called at most once per handshake, with the key
/// [`Handshake::remote_static`] reports, right after the message that
/// showed it was read (for a key given in advance: after the peer's first
/// message, which proves it), with that message's payload (decrypted, not
/// yet handed out). An error ends the handshake with that error; nothing
/// more is written. If the handshake ends without a peer key (NN, or the
/// responder of NK), [`Handshake::finish`] fails with
/// [`TrustFailure::NoRemoteKey`].
///
/// Any `Fn(&PublicKey, &[u8]) -> Result<(), Error> + Send + Sync` is a
/// verifier.
pub trait PeerVerifier: Send + Sync {
    /// `Ok` to go on; an error (typically [`Error::PeerNotTrusted`]) to
    /// stop the handshake.
    fn verify_peer(&self, key: &PublicKey, payload: &[u8]) -> Result<(), Error>;
}

impl<F> PeerVerifier for F
where
    F: Fn(&PublicKey, &[u8]) -> Result<(), Error> + Send + Sync,
{
    fn verify_peer(&self, key: &PublicKey, payload: &[u8]) -> Result<(), Error> {
        self(key, payload)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Pending,
    Passed,
    Dead,
}

/// A handshake whose peer key goes through a [`PeerVerifier`].
pub(crate) struct Verified {
    inner: Box<dyn Handshake>,
    verifier: Arc<dyn PeerVerifier>,
    check: Check,
}

impl Verified {
    pub(crate) fn new(inner: Box<dyn Handshake>, verifier: Arc<dyn PeerVerifier>) -> Self {
        Verified {
            inner,
            verifier,
            check: Check::Pending,
        }
    }

    fn alive(&self) -> Result<(), Error> {
        match self.check {
            Check::Dead => Err(ApiMisuse::HandshakeDead.into()),
            _ => Ok(()),
        }
    }
}

impl Handshake for Verified {
    fn protocol(&self) -> &str {
        self.inner.protocol()
    }

    fn role(&self) -> Role {
        self.inner.role()
    }

    fn wants_write(&self) -> bool {
        self.check != Check::Dead && self.inner.wants_write()
    }

    fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.alive()?;
        self.inner.write_message(payload, out)
    }

    fn read_message(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        self.alive()?;
        let start = payload.len();
        self.inner.read_message(message, payload)?;
        if self.check == Check::Pending {
            if let Some(key) = self.inner.remote_static() {
                if let Err(e) = self.verifier.verify_peer(&key, &payload[start..]) {
                    // Never hand out a refused peer's payload.
                    payload.truncate(start);
                    self.check = Check::Dead;
                    return Err(e);
                }
                self.check = Check::Passed;
            }
        }
        Ok(())
    }

    fn is_finished(&self) -> bool {
        self.check != Check::Dead && self.inner.is_finished()
    }

    fn finish(&mut self) -> Result<Established, Error> {
        self.alive()?;
        if self.check == Check::Pending && self.inner.is_finished() {
            self.check = Check::Dead;
            return Err(TrustFailure::NoRemoteKey.into());
        }
        self.inner.finish()
    }

    fn remote_static(&self) -> Option<PublicKey> {
        self.inner.remote_static()
    }
}
