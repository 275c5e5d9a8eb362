//! akex-mode records: a type byte inside the AEAD, then the body.
//!
//! | type | name        | body |
//! |------|-------------|------|
//! | 0x01 | data        | application bytes |
//! | 0x02 | key update  | empty: the sender's next record uses the next epoch's key |
//! | 0x03 | ratchet     | a DH ratchet step (see [`super::ratchet`]) |
//! | 0x04 | close       | empty: the sender sends nothing more |
//! | 0x05 | control     | control type (u16 BE) ‖ payload: messages between the layers above, never application data |

use crate::error::{Error, PeerMisbehaved};

/// The type byte at the start of every akex-mode record's plaintext.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordType {
    /// Application data.
    Data = 0x01,
    /// Move the sender's direction to the next epoch.
    KeyUpdate = 0x02,
    /// A DH ratchet step.
    Ratchet = 0x03,
    /// Authenticated end of the sender's direction.
    Close = 0x04,
    /// A typed control message ([`ControlType`]) for the layers above the
    /// session; never delivered as application data.
    Control = 0x05,
}

impl RecordType {
    /// Parses a type byte; an unknown type is a fatal peer error.
    pub fn from_byte(b: u8) -> Result<Self, Error> {
        Ok(match b {
            0x01 => RecordType::Data,
            0x02 => RecordType::KeyUpdate,
            0x03 => RecordType::Ratchet,
            0x04 => RecordType::Close,
            0x05 => RecordType::Control,
            other => return Err(PeerMisbehaved::UnknownRecordType(other).into()),
        })
    }
}

/// What a control record carries. Every type is registered here; a control
/// record of any other type is [`PeerMisbehaved::UnknownControlType`] and
/// ends the session, like an unknown record type.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ControlType {
    /// A key rotation announcement: the JSON array of signed rotation
    /// statements leading to the key the sender's handshake used
    /// (`akex::keys::encode_rotation_announcement`).
    RotationAnnouncement = 0x0001,
}

impl ControlType {
    /// The 2-byte code on the wire.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// Parses a control type code.
    pub fn from_code(code: u16) -> Result<Self, Error> {
        match code {
            0x0001 => Ok(ControlType::RotationAnnouncement),
            other => Err(PeerMisbehaved::UnknownControlType(other).into()),
        }
    }
}

/// Bytes a control record's body spends before its payload (the type).
pub const CONTROL_HEADER_LEN: usize = 2;

/// Parses a control record body: its type and payload.
pub(crate) fn parse_control(body: &[u8]) -> Result<(ControlType, &[u8]), Error> {
    let Some((code, payload)) = body.split_first_chunk::<CONTROL_HEADER_LEN>() else {
        return Err(PeerMisbehaved::MalformedRecord.into());
    };
    Ok((ControlType::from_code(u16::from_be_bytes(*code))?, payload))
}

/// What an opened akex-mode record was.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Application data of this many bytes (appended to the output, or at
    /// `1..1 + len` of the in-place buffer).
    Data(usize),
    /// The peer moved its sending direction to the next epoch.
    KeyUpdate,
    /// A DH ratchet step was processed (a reply may now be pending: call
    /// `poll_control`).
    Ratchet,
    /// The peer ended its direction cleanly.
    Close,
    /// A control message of this type and payload length (the payload is
    /// at `3..3 + len` of the in-place buffer; the appending calls that
    /// name it add it to their output).
    Control(ControlType, usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_and_unknown_fails() {
        for t in [
            RecordType::Data,
            RecordType::KeyUpdate,
            RecordType::Ratchet,
            RecordType::Close,
            RecordType::Control,
        ] {
            assert_eq!(RecordType::from_byte(t as u8).unwrap(), t);
        }
        assert!(matches!(
            RecordType::from_byte(0x7f),
            Err(Error::PeerMisbehaved(PeerMisbehaved::UnknownRecordType(
                0x7f
            )))
        ));
        let (ty, payload) = parse_control(&[0, 1, b'x']).unwrap();
        assert_eq!(
            (ty, payload),
            (ControlType::RotationAnnouncement, &b"x"[..])
        );
        assert!(matches!(
            parse_control(&[0x12, 0x34]),
            Err(Error::PeerMisbehaved(PeerMisbehaved::UnknownControlType(
                0x1234
            )))
        ));
        assert!(matches!(
            parse_control(&[1]),
            Err(Error::PeerMisbehaved(PeerMisbehaved::MalformedRecord))
        ));
    }
}
