//! The responder of akex mode: reads the hello, enforces the allow-list,
//! builds the chosen protocol and delegates to it.

use std::fmt;

use super::{parse_hello, AkexResponder};
use crate::error::{ApiMisuse, Error, PeerIncompatible};
use crate::handshake::{Established, Handshake, Role};

/// Builds the responder for a protocol name taken from the allow-list.
/// Called at most once, with a name that is in the allow-list.
pub type ResponderFactory = Box<dyn FnOnce(&str) -> Result<Box<dyn AkexResponder>, Error> + Send>;

enum State {
    /// Waiting for the first message (the hello).
    Waiting(ResponderFactory),
    /// The hello named an allowed protocol; everything goes to it.
    Chosen(Box<dyn AkexResponder>),
    /// An error happened; every later call fails.
    Dead,
}

/// An akex-mode responder that accepts any protocol of an allow-list.
///
/// On the first `read_message` it parses the hello (typed errors for
/// malformed input), refuses names outside the allow-list with
/// [`PeerIncompatible::ProtocolNotAllowed`], builds the chosen responder with
/// the factory, mixes the hello into its transcript
/// ([`AkexResponder::mix_hello`]) and hands it the rest of the message.
/// Every later call is delegated.
pub struct NegotiatingResponder {
    allowed: Vec<String>,
    state: State,
}

impl fmt::Debug for NegotiatingResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Waiting(_) => "waiting for hello",
            State::Chosen(_) => "chosen",
            State::Dead => "dead",
        };
        f.debug_struct("NegotiatingResponder")
            .field("allowed", &self.allowed)
            .field("protocol", &self.protocol())
            .field("state", &state)
            .finish()
    }
}

/// What [`Handshake::protocol`] returns before the hello arrived.
pub const NEGOTIATING: &str = "akex (negotiating)";

impl NegotiatingResponder {
    /// A responder accepting the protocols in `allowed`, built by `factory`.
    pub fn new(allowed: Vec<String>, factory: ResponderFactory) -> Self {
        NegotiatingResponder {
            allowed,
            state: State::Waiting(factory),
        }
    }

    /// The allow-list.
    pub fn allowed(&self) -> &[String] {
        &self.allowed
    }

    fn first_read(
        &mut self,
        factory: ResponderFactory,
        message: &[u8],
        payload: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let hello = parse_hello(message)?;
        if !self.allowed.iter().any(|a| a == hello.protocol) {
            return Err(PeerIncompatible::ProtocolNotAllowed(hello.protocol.to_string()).into());
        }
        let mut inner = factory(hello.protocol)?;
        inner.mix_hello(hello.bytes);
        let result = inner.read_message(hello.rest, payload);
        self.state = State::Chosen(inner);
        result
    }

    fn chosen(&mut self) -> Result<&mut Box<dyn AkexResponder>, Error> {
        match &mut self.state {
            State::Chosen(inner) => Ok(inner),
            State::Waiting(_) => Err(ApiMisuse::WrongTurn.into()),
            State::Dead => Err(ApiMisuse::HandshakeDead.into()),
        }
    }

    fn fail<T>(&mut self, err: Error) -> Result<T, Error> {
        self.state = State::Dead;
        Err(err)
    }
}

impl Handshake for NegotiatingResponder {
    fn protocol(&self) -> &str {
        match &self.state {
            State::Chosen(inner) => inner.protocol(),
            _ => NEGOTIATING,
        }
    }

    fn role(&self) -> Role {
        Role::Responder
    }

    fn wants_write(&self) -> bool {
        match &self.state {
            State::Chosen(inner) => inner.wants_write(),
            _ => false,
        }
    }

    fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let result = self.chosen()?.write_message(payload, out);
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn read_message(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error> {
        let result = match std::mem::replace(&mut self.state, State::Dead) {
            State::Waiting(factory) => self.first_read(factory, message, payload),
            State::Chosen(mut inner) => {
                let r = inner.read_message(message, payload);
                self.state = State::Chosen(inner);
                r
            }
            State::Dead => return Err(ApiMisuse::HandshakeDead.into()),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn is_finished(&self) -> bool {
        match &self.state {
            State::Chosen(inner) => inner.is_finished(),
            _ => false,
        }
    }

    fn finish(&mut self) -> Result<Established, Error> {
        match &mut self.state {
            State::Chosen(inner) => inner.finish(),
            State::Waiting(_) => Err(ApiMisuse::HandshakeNotFinished.into()),
            State::Dead => Err(ApiMisuse::HandshakeDead.into()),
        }
    }

    fn remote_static(&self) -> Option<crate::keys::PublicKey> {
        match &self.state {
            State::Chosen(inner) => inner.remote_static(),
            _ => None,
        }
    }
}
