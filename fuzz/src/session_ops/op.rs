//! The operations of `session_ops` and their byte format: decoded through
//! `arbitrary` (a tag byte and a byte per argument) and written back by
//! [`Op::encode`] for the seeds.

use arbitrary::{Arbitrary, Unstructured};

/// One side of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The handshake initiator.
    A,
    /// The handshake responder.
    B,
}

impl Side {
    fn from_bit(b: u8) -> Self {
        if b & 1 == 0 {
            Side::A
        } else {
            Side::B
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    pub(super) fn peer(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// One operation. Each is a tag byte (modulo 11) followed by its arguments;
/// `side`/`to`/`from` is the low bit of the first argument byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `from` seals a data record of `len` bytes (arg: `len` byte `b`;
    /// below 0x80 it is the length, else `(b & 0x7f) * 521`, up to past the
    /// largest record).
    Seal { from: Side, len: usize },
    /// The next record in flight to `to` is delivered in order.
    Deliver { to: Side },
    /// A copy of record `index` (modulo the records sent to `to` so far)
    /// is delivered: reordered, replayed or duplicated.
    Inject { to: Side, index: u8 },
    /// A copy of the next record in flight to `to`, byte `pos` (modulo its
    /// length) xored with `xor | 1`, is delivered; the original stays.
    Tamper { to: Side, pos: u8, xor: u8 },
    /// The next record in flight to `to` is lost.
    Drop { to: Side },
    /// `from` rekeys its sending direction: Noise `REKEY()` (the peer
    /// applies it at the same point of the stream), an akex key update
    /// record, or a datagram key update.
    Rekey { from: Side },
    /// `from` starts a DH ratchet step (akex mode and datagrams).
    Ratchet { from: Side },
    /// `side`'s clock moves `secs` seconds on, then it seals the control
    /// records due (ratchet replies, key updates, retransmissions).
    Poll { side: Side, secs: u8 },
    /// `from` seals an authenticated close.
    Close { from: Side },
    /// `len` raw bytes from the input are delivered to `to` as a record.
    Garbage { to: Side, len: u8 },
    /// `from` seals a control record (a rotation announcement) with a
    /// payload of `len` bytes: akex mode and datagrams; Noise mode refuses.
    Message { from: Side, len: u8 },
}

/// Operations come from the fuzzer's bytes through the `arbitrary` crate:
/// a tag byte and one byte per argument (missing bytes read as zero, as
/// `u8::arbitrary` does), so inputs stay short and [`Op::encode`] can write
/// seeds by hand.
impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let tag = u8::arbitrary(u)?;
        let side = Side::from_bit(u8::arbitrary(u)?);
        Ok(match tag % 11 {
            0 => {
                let b = u8::arbitrary(u)?;
                let len = if b < 0x80 {
                    usize::from(b)
                } else {
                    usize::from(b & 0x7f) * 521
                };
                Op::Seal { from: side, len }
            }
            1 => Op::Deliver { to: side },
            2 => Op::Inject {
                to: side,
                index: u8::arbitrary(u)?,
            },
            3 => Op::Tamper {
                to: side,
                pos: u8::arbitrary(u)?,
                xor: u8::arbitrary(u)?,
            },
            4 => Op::Drop { to: side },
            5 => Op::Rekey { from: side },
            6 => Op::Ratchet { from: side },
            7 => Op::Poll {
                side,
                secs: u8::arbitrary(u)?,
            },
            8 => Op::Close { from: side },
            10 => Op::Message {
                from: side,
                len: u8::arbitrary(u)?,
            },
            _ => Op::Garbage {
                to: side,
                len: u8::arbitrary(u)?,
            },
        })
    }
}

impl Op {
    /// Appends the encoding of this operation to `out`.
    pub fn encode(self, out: &mut Vec<u8>) {
        let bit = |s: Side| s.index() as u8;
        match self {
            Op::Seal { from, len } => {
                let b = if len < 0x80 {
                    len as u8
                } else {
                    0x80 | (len / 521) as u8
                };
                out.extend_from_slice(&[0, bit(from), b]);
            }
            Op::Deliver { to } => out.extend_from_slice(&[1, bit(to)]),
            Op::Inject { to, index } => out.extend_from_slice(&[2, bit(to), index]),
            Op::Tamper { to, pos, xor } => out.extend_from_slice(&[3, bit(to), pos, xor]),
            Op::Drop { to } => out.extend_from_slice(&[4, bit(to)]),
            Op::Rekey { from } => out.extend_from_slice(&[5, bit(from)]),
            Op::Ratchet { from } => out.extend_from_slice(&[6, bit(from)]),
            Op::Poll { side, secs } => out.extend_from_slice(&[7, bit(side), secs]),
            Op::Close { from } => out.extend_from_slice(&[8, bit(from)]),
            Op::Garbage { to, len } => out.extend_from_slice(&[9, bit(to), len]),
            Op::Message { from, len } => out.extend_from_slice(&[10, bit(from), len]),
        }
    }
}
