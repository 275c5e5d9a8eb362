//! The UDP packet layout of datagram mode (protocols/datagram.md):
//!
//! ```text
//! packet = kind u8 || connection id [8] || body
//! ```

use crate::session::datagram::OVERHEAD;

/// Kind byte: the initiator's first handshake message
/// (`token_len u8 || token || message`).
pub const KIND_INITIATION: u8 = 0x01;
/// Kind byte: any later handshake message (`index u8 || message`).
pub const KIND_HANDSHAKE: u8 = 0x02;
/// Kind byte: a session record ([`crate::session::DatagramSession`]).
pub const KIND_RECORD: u8 = 0x03;
/// Kind byte: the responder asks the initiator to prove its address
/// (`token`).
pub const KIND_COOKIE: u8 = 0x04;
/// Kind byte: the responder turns the initiator away at a limit (no body).
pub const KIND_BUSY: u8 = 0x05;
/// Kind byte: the side that read the last handshake message says so
/// (`tag`, 16 bytes, that only the holder of the session keys can make).
pub const KIND_CONFIRM: u8 = 0x06;
/// Length of a confirmation tag.
pub const CONFIRM_TAG_LEN: usize = 16;
/// Length of a connection id.
pub const CONNECTION_ID_LEN: usize = 8;
/// Bytes before every packet's body: kind and connection id.
pub const PACKET_HEADER_LEN: usize = 1 + CONNECTION_ID_LEN;
/// Longest cookie token a packet may carry.
pub const MAX_TOKEN_LEN: usize = 64;

/// A connection id: 8 random bytes the initiator picks; every packet of
/// the connection, both ways, carries it.
pub type ConnectionId = [u8; CONNECTION_ID_LEN];

/// One parsed packet, borrowing from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packet<'a> {
    Initiation {
        cid: ConnectionId,
        token: &'a [u8],
        message: &'a [u8],
    },
    Handshake {
        cid: ConnectionId,
        index: u8,
        message: &'a [u8],
    },
    Record {
        cid: ConnectionId,
        record: &'a [u8],
    },
    Cookie {
        cid: ConnectionId,
        token: &'a [u8],
    },
    Busy {
        cid: ConnectionId,
    },
    Confirm {
        cid: ConnectionId,
        tag: &'a [u8],
    },
}

impl Packet<'_> {
    pub(crate) fn cid(&self) -> ConnectionId {
        match *self {
            Packet::Initiation { cid, .. }
            | Packet::Handshake { cid, .. }
            | Packet::Record { cid, .. }
            | Packet::Cookie { cid, .. }
            | Packet::Busy { cid }
            | Packet::Confirm { cid, .. } => cid,
        }
    }
}

/// Parses a datagram; `None` if it is not a well-formed packet.
pub(crate) fn parse(datagram: &[u8]) -> Option<Packet<'_>> {
    let (&kind, rest) = datagram.split_first()?;
    if rest.len() < CONNECTION_ID_LEN {
        return None;
    }
    let (id, body) = rest.split_at(CONNECTION_ID_LEN);
    let cid: ConnectionId = id.try_into().ok()?;
    match kind {
        KIND_INITIATION => {
            let (&len, rest) = body.split_first()?;
            let len = usize::from(len);
            if len > MAX_TOKEN_LEN || rest.len() <= len {
                return None;
            }
            let (token, message) = rest.split_at(len);
            Some(Packet::Initiation {
                cid,
                token,
                message,
            })
        }
        KIND_HANDSHAKE => {
            let (&index, message) = body.split_first()?;
            (index > 0 && !message.is_empty()).then_some(Packet::Handshake {
                cid,
                index,
                message,
            })
        }
        KIND_RECORD => (body.len() >= OVERHEAD).then_some(Packet::Record { cid, record: body }),
        KIND_COOKIE => (!body.is_empty() && body.len() <= MAX_TOKEN_LEN)
            .then_some(Packet::Cookie { cid, token: body }),
        KIND_BUSY => body.is_empty().then_some(Packet::Busy { cid }),
        KIND_CONFIRM => {
            (body.len() == CONFIRM_TAG_LEN).then_some(Packet::Confirm { cid, tag: body })
        }
        _ => None,
    }
}

fn header(kind: u8, cid: &ConnectionId, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(PACKET_HEADER_LEN + capacity);
    out.push(kind);
    out.extend_from_slice(cid);
    out
}

/// An initiation packet. `token` is at most [`MAX_TOKEN_LEN`] bytes.
pub(crate) fn initiation(cid: &ConnectionId, token: &[u8], message: &[u8]) -> Vec<u8> {
    let token = &token[..token.len().min(MAX_TOKEN_LEN)];
    let mut out = header(KIND_INITIATION, cid, 1 + token.len() + message.len());
    out.push(token.len() as u8);
    out.extend_from_slice(token);
    out.extend_from_slice(message);
    out
}

/// A handshake packet for message `index` (at least 1).
pub(crate) fn handshake(cid: &ConnectionId, index: u8, message: &[u8]) -> Vec<u8> {
    let mut out = header(KIND_HANDSHAKE, cid, 1 + message.len());
    out.push(index);
    out.extend_from_slice(message);
    out
}

/// The start of a record packet; the record is appended to it.
pub(crate) fn record_header(cid: &ConnectionId, capacity: usize) -> Vec<u8> {
    header(KIND_RECORD, cid, capacity)
}

/// A cookie packet.
pub(crate) fn cookie(cid: &ConnectionId, token: &[u8]) -> Vec<u8> {
    let mut out = header(KIND_COOKIE, cid, token.len());
    out.extend_from_slice(token);
    out
}

/// A busy packet.
pub(crate) fn busy(cid: &ConnectionId) -> Vec<u8> {
    header(KIND_BUSY, cid, 0)
}

/// A confirmation packet.
pub(crate) fn confirm(cid: &ConnectionId, tag: &[u8; CONFIRM_TAG_LEN]) -> Vec<u8> {
    let mut out = header(KIND_CONFIRM, cid, CONFIRM_TAG_LEN);
    out.extend_from_slice(tag);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_malformed_ones_do_not_parse() {
        let cid = [7u8; 8];
        let p = initiation(&cid, b"tok", b"hello");
        assert_eq!(
            parse(&p),
            Some(Packet::Initiation {
                cid,
                token: b"tok",
                message: b"hello"
            })
        );
        assert_eq!(
            parse(&handshake(&cid, 2, b"m")),
            Some(Packet::Handshake {
                cid,
                index: 2,
                message: b"m"
            })
        );
        assert_eq!(parse(&busy(&cid)), Some(Packet::Busy { cid }));
        assert_eq!(
            parse(&confirm(&cid, &[5; 16])),
            Some(Packet::Confirm { cid, tag: &[5; 16] })
        );
        assert_eq!(
            parse(&cookie(&cid, &[1; 20])),
            Some(Packet::Cookie {
                cid,
                token: &[1; 20]
            })
        );
        let mut rec = record_header(&cid, OVERHEAD);
        rec.extend_from_slice(&[0u8; OVERHEAD]);
        assert!(matches!(parse(&rec), Some(Packet::Record { .. })));
        for bad in [
            &b""[..],
            &[1, 2][..],
            &[KIND_INITIATION, 0, 0, 0, 0, 0, 0, 0, 0][..], // no token length
            &initiation(&cid, b"", b"")[..],                // no message
            &[KIND_INITIATION, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1][..], // token longer than the rest
            &handshake(&cid, 0, b"m")[..],                  // index 0 is the initiation's
            &rec[..rec.len() - 1],                          // shorter than any record
            &[KIND_BUSY, 0, 0, 0, 0, 0, 0, 0, 0, 9][..],
            &confirm(&cid, &[5; 16])[..24],
            &[0x09, 0, 0, 0, 0, 0, 0, 0, 0][..],
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    /// The bounds of the packet table: a token of 0 to 64 bytes, handshake
    /// index 1 to 255, a record of at least 33 bytes, a cookie of 1 to 64
    /// bytes, a confirmation tag of exactly 16.
    #[test]
    fn field_bounds_are_the_documented_ones() {
        let cid = [2u8; 8];
        assert_eq!(OVERHEAD, 33);
        assert!(parse(&initiation(&cid, &[1; 64], b"m")).is_some());
        let mut long = vec![KIND_INITIATION];
        long.extend_from_slice(&cid);
        long.push(65);
        long.extend_from_slice(&[1; 70]);
        assert_eq!(parse(&long), None, "a 65-byte token");
        assert!(parse(&handshake(&cid, 255, b"m")).is_some());
        let mut rec = record_header(&cid, OVERHEAD);
        rec.extend_from_slice(&[0; OVERHEAD]);
        assert!(parse(&rec).is_some());
        assert_eq!(parse(&rec[..rec.len() - 1]), None);
        assert!(parse(&cookie(&cid, &[1; 64])).is_some());
        assert!(parse(&cookie(&cid, &[1; 1])).is_some());
        assert_eq!(parse(&cookie(&cid, &[1; 65])), None);
        assert_eq!(parse(&cookie(&cid, &[])), None);
        let mut tag = confirm(&cid, &[5; 16]);
        tag.push(0);
        assert_eq!(parse(&tag), None, "a 17-byte tag");
    }
}
