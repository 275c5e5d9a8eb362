//! Turn-keeping shared by the two-message legacy baselines (RSA key
//! transport, FFDH NK): the initiator writes message 0, the responder
//! message 1, and any error but a caller's oversized payload kills the
//! handshake. The protocols keep only what differs: how each message is
//! built and parsed.

use super::{append_or_undo, Role, MAX_MESSAGE_LEN};
use crate::error::{ApiMisuse, Error, PeerMisbehaved};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Finished,
    Dead,
}

/// Whose turn it is and whether the handshake is still alive.
#[derive(Debug)]
pub(crate) struct Turns {
    role: Role,
    next: usize,
    status: Status,
}

impl Turns {
    pub(crate) fn new(role: Role) -> Self {
        Turns {
            role,
            next: 0,
            status: Status::Running,
        }
    }

    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// The index of the next message (0 or 1; 2 once finished).
    pub(crate) fn next(&self) -> usize {
        self.next
    }

    pub(crate) fn wants_write(&self) -> bool {
        self.status == Status::Running
            && ((self.next == 0 && self.role == Role::Initiator)
                || (self.next == 1 && self.role == Role::Responder))
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.status == Status::Finished
    }

    fn fail<T>(&mut self, err: Error) -> Result<T, Error> {
        self.status = Status::Dead;
        Err(err)
    }

    fn advance(&mut self) {
        self.next += 1;
        if self.next == 2 {
            self.status = Status::Finished;
        }
    }

    /// The check `finish` makes: only a finished handshake gives its keys,
    /// once (it is dead afterwards).
    pub(crate) fn take_finished(&mut self) -> Result<(), Error> {
        match self.status {
            Status::Dead => Err(ApiMisuse::HandshakeDead.into()),
            Status::Running => Err(ApiMisuse::HandshakeNotFinished.into()),
            Status::Finished => {
                self.status = Status::Dead;
                Ok(())
            }
        }
    }
}

/// A two-message handshake: where its turns are kept and how it writes and
/// reads one message (`turns().next()` says which).
pub(crate) trait TwoMessage {
    /// Bytes a message adds to its payload, at most.
    const OVERHEAD: usize;

    fn turns(&mut self) -> &mut Turns;
    fn write_inner(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error>;
    fn read_inner(&mut self, message: &[u8], payload: &mut Vec<u8>) -> Result<(), Error>;

    /// Called once the second message is through: drop what only the
    /// handshake needed (ephemeral keys).
    fn finished(&mut self) {}
}

/// Moves to the next message, calling [`TwoMessage::finished`] after the
/// last.
fn advance<H: TwoMessage>(h: &mut H) {
    h.turns().advance();
    if h.turns().is_finished() {
        h.finished();
    }
}

/// `Handshake::write_message` for a [`TwoMessage`]: out is untouched on
/// error.
pub(crate) fn write_message<H: TwoMessage>(
    h: &mut H,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let turns = h.turns();
    if turns.status == Status::Dead {
        return Err(ApiMisuse::HandshakeDead.into());
    }
    if !turns.wants_write() {
        return turns.fail(ApiMisuse::WrongTurn.into());
    }
    if payload.len().saturating_add(H::OVERHEAD) > MAX_MESSAGE_LEN {
        return Err(ApiMisuse::MessageTooLarge.into());
    }
    if let Err(e) = append_or_undo(out, |out| h.write_inner(payload, out)) {
        return h.turns().fail(e);
    }
    advance(h);
    Ok(())
}

/// `Handshake::read_message` for a [`TwoMessage`]: payload is untouched on
/// error, and any error kills the handshake.
pub(crate) fn read_message<H: TwoMessage>(
    h: &mut H,
    message: &[u8],
    payload: &mut Vec<u8>,
) -> Result<(), Error> {
    let turns = h.turns();
    if turns.status == Status::Dead {
        return Err(ApiMisuse::HandshakeDead.into());
    }
    if turns.status != Status::Running || turns.wants_write() {
        return turns.fail(PeerMisbehaved::UnexpectedMessage.into());
    }
    if message.len() > MAX_MESSAGE_LEN {
        return turns.fail(PeerMisbehaved::BadMessageLength.into());
    }
    if let Err(e) = append_or_undo(payload, |payload| h.read_inner(message, payload)) {
        return h.turns().fail(e);
    }
    advance(h);
    Ok(())
}
