//! Length-prefixed framing: a 2-byte big-endian length, then the message.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::error::{ApiMisuse, Error, PeerMisbehaved};
use crate::handshake::MAX_MESSAGE_LEN;

/// The Noise spec's recommended framing, with a configurable size limit.
#[derive(Debug)]
pub struct FrameCodec {
    inner: LengthDelimitedCodec,
    max_frame_len: usize,
    /// The inner codec consumed a length header whose body has not arrived:
    /// an EOF now is a truncated frame even though the buffer is empty.
    mid_frame: bool,
}

impl FrameCodec {
    /// A codec accepting frames up to `max_frame_len` bytes (at most 65535).
    pub fn new(max_frame_len: usize) -> Self {
        let max_frame_len = max_frame_len.min(MAX_MESSAGE_LEN);
        let inner = LengthDelimitedCodec::builder()
            .length_field_length(2)
            .big_endian()
            .max_frame_length(max_frame_len)
            .new_codec();
        FrameCodec {
            inner,
            max_frame_len,
            mid_frame: false,
        }
    }

    /// The largest frame accepted or sent.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// True between a frame's length header and the end of its body: the
    /// read buffer has been sized for the body, so keep it.
    pub(crate) fn is_mid_frame(&self) -> bool {
        self.mid_frame
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(MAX_MESSAGE_LEN)
    }
}

fn map_decode_error(e: std::io::Error) -> Error {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<tokio_util::codec::LengthDelimitedCodecError>())
    {
        PeerMisbehaved::FrameTooLarge.into()
    } else {
        Error::Io(e)
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, Error> {
        let before = src.len();
        let frame = self.inner.decode(src).map_err(map_decode_error)?;
        if frame.is_some() {
            self.mid_frame = false;
        } else if src.len() < before {
            self.mid_frame = true;
        }
        Ok(frame)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, Error> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() && !self.mid_frame => Ok(None),
            None => Err(PeerMisbehaved::TruncatedFrame.into()),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = Error;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), Error> {
        if item.len() > self.max_frame_len {
            return Err(ApiMisuse::MessageTooLarge.into());
        }
        self.inner.encode(item, dst).map_err(Error::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_limits_hold() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        codec.encode(Bytes::from_static(b"abc"), &mut buf).unwrap();
        assert_eq!(&buf[..], b"\x00\x03abc");
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], b"abc");
        assert!(codec
            .encode(Bytes::from(vec![0u8; 65536]), &mut buf)
            .is_err());

        let mut small = FrameCodec::new(10);
        let mut over = BytesMut::from(&b"\x00\x0b"[..]);
        assert!(matches!(
            small.decode(&mut over),
            Err(Error::PeerMisbehaved(PeerMisbehaved::FrameTooLarge))
        ));

        let mut truncated = BytesMut::from(&b"\x00\x05ab"[..]);
        assert!(codec.decode(&mut truncated).unwrap().is_none());
        assert!(matches!(
            codec.decode_eof(&mut truncated),
            Err(Error::PeerMisbehaved(PeerMisbehaved::TruncatedFrame))
        ));
    }
}
