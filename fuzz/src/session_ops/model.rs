//! What the `session_ops` model tracks: the records in flight each way,
//! what each must open to, and the state it expects of an akex-mode
//! session.

use super::MAX_OPS;

/// What a record in flight must open to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expect {
    Data(Vec<u8>),
    /// A control record with this payload.
    Message(Vec<u8>),
    /// A key update or ratchet record (from `poll_control`, which does not
    /// say which it sealed) or a key update from `send_key_update`.
    Control,
    Close,
    /// Not a record: Noise `REKEY()` of the receiving key at this point.
    RekeyMarker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// In flight.
    Pending,
    /// Delivered in order (stream) or taken off the queue (datagram).
    Consumed,
    /// Lost.
    Dropped,
}

pub(super) struct Item {
    pub(super) bytes: Vec<u8>,
    pub(super) expect: Expect,
    pub(super) state: State,
    /// Datagrams: opened once already.
    pub(super) accepted: bool,
}

/// The records sent in one direction.
#[derive(Default)]
pub(super) struct Flight {
    pub(super) items: Vec<Item>,
    /// A record was lost: a stream receiver can no longer open anything.
    pub(super) lost: bool,
}

impl Flight {
    pub(super) fn next_pending(&self) -> Option<usize> {
        self.items.iter().position(|i| i.state == State::Pending)
    }

    pub(super) fn push(&mut self, bytes: Vec<u8>, expect: Expect) {
        if self.items.len() < 2 * MAX_OPS {
            self.items.push(Item {
                bytes,
                expect,
                state: State::Pending,
                accepted: false,
            });
        } else {
            // Past the cap a record is not kept: for the model it is lost.
            self.lost = true;
        }
    }
}

/// The akex-mode state the model expects (stream sessions).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Model {
    pub(super) failed: bool,
    pub(super) sent_close: bool,
    pub(super) received_close: bool,
}
