//! The receive buffer: wire bytes in, frames parsed and decrypted in place,
//! plaintext handed out from where it was decrypted (no copy until the
//! application reads it).
//!
//! Layout of `buf`: `[consumed | decrypted records and headers | unparsed
//! bytes | spare]`, with `processed` the end of the parsed frames and
//! `filled` the end of the received bytes. The space before `processed` is
//! reclaimed once no plaintext in it waits to be read.

use std::collections::VecDeque;

use crate::error::{Error, PeerMisbehaved};

/// Where one frame's body sits in the buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame {
    start: usize,
    len: usize,
}

#[derive(Debug)]
pub(super) struct Inbound {
    buf: Vec<u8>,
    filled: usize,
    processed: usize,
    /// Plaintext ranges (absolute offsets), oldest first; the front one is
    /// read from `read_pos`.
    plaintext: VecDeque<(usize, usize)>,
    read_pos: usize,
    plaintext_len: usize,
    max_frame_len: usize,
}

impl Inbound {
    pub(super) fn new(max_frame_len: usize) -> Self {
        Inbound {
            buf: Vec::new(),
            filled: 0,
            processed: 0,
            plaintext: VecDeque::new(),
            read_pos: 0,
            plaintext_len: 0,
            max_frame_len,
        }
    }

    pub(super) fn set_max_frame_len(&mut self, max: usize) {
        self.max_frame_len = max;
    }

    /// Bytes the frame being received still needs (0 between frames).
    fn missing(&self) -> usize {
        let pending = &self.buf[self.processed..self.filled];
        match pending {
            [hi, lo, rest @ ..] => {
                let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                len.saturating_sub(rest.len())
            }
            _ => 2 - pending.len(),
        }
    }

    /// Moves unparsed bytes to the front once no plaintext waits before them.
    fn compact(&mut self) {
        if self.plaintext.is_empty() && self.processed > 0 {
            self.buf.copy_within(self.processed..self.filled, 0);
            self.filled -= self.processed;
            self.processed = 0;
            self.read_pos = 0;
        }
    }

    /// Room for at least `min` more bytes (more if the frame being received
    /// is larger), after reclaiming what was consumed.
    pub(super) fn spare(&mut self, min: usize) -> &mut [u8] {
        self.compact();
        let want = min.max(self.missing()).max(1);
        if self.buf.len() - self.filled < want {
            self.buf.resize(self.filled + want, 0);
        }
        &mut self.buf[self.filled..]
    }

    pub(super) fn commit(&mut self, n: usize) {
        self.filled = (self.filled + n).min(self.buf.len());
    }

    pub(super) fn extend(&mut self, bytes: &[u8]) {
        let spare = self.spare(bytes.len());
        spare[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// The next whole frame, if it has arrived; a length above the limit is
    /// an error as soon as its header is here.
    pub(super) fn next_frame(&mut self) -> Result<Option<Frame>, Error> {
        let pending = &self.buf[self.processed..self.filled];
        let [hi, lo, ..] = pending else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len > self.max_frame_len {
            return Err(PeerMisbehaved::FrameTooLarge.into());
        }
        if pending.len() < 2 + len {
            return Ok(None);
        }
        let frame = Frame {
            start: self.processed + 2,
            len,
        };
        self.processed += 2 + len;
        Ok(Some(frame))
    }

    pub(super) fn frame(&self, frame: &Frame) -> &[u8] {
        &self.buf[frame.start..frame.start + frame.len]
    }

    pub(super) fn frame_mut(&mut self, frame: &Frame) -> &mut [u8] {
        &mut self.buf[frame.start..frame.start + frame.len]
    }

    /// The frame was used up (a handshake message, a control record).
    pub(super) fn discard_frame(&mut self, _frame: Frame) {
        self.compact_if_cheap();
    }

    /// The frame's plaintext is `len` bytes from `offset` into its body.
    pub(super) fn keep_plaintext(&mut self, frame: Frame, offset: usize, len: usize) {
        let start = frame.start + offset;
        self.plaintext.push_back((start, start + len));
        if self.plaintext.len() == 1 {
            self.read_pos = start;
        }
        self.plaintext_len += len;
    }

    fn compact_if_cheap(&mut self) {
        if self.plaintext.is_empty() && self.processed == self.filled {
            self.processed = 0;
            self.filled = 0;
            self.read_pos = 0;
        }
    }

    /// True while received bytes wait to be parsed (a frame in progress, or
    /// frames held back while the application reads).
    pub(super) fn has_unprocessed(&self) -> bool {
        self.filled > self.processed
    }

    pub(super) fn has_partial_frame(&self) -> bool {
        self.has_unprocessed()
    }

    pub(super) fn plaintext_len(&self) -> usize {
        self.plaintext_len
    }

    pub(super) fn read_plaintext(&mut self, out: &mut [u8]) -> usize {
        let mut copied = 0;
        while copied < out.len() {
            let Some(&(_, end)) = self.plaintext.front() else {
                break;
            };
            let n = (end - self.read_pos).min(out.len() - copied);
            out[copied..copied + n].copy_from_slice(&self.buf[self.read_pos..self.read_pos + n]);
            copied += n;
            self.read_pos += n;
            self.plaintext_len -= n;
            if self.read_pos == end {
                self.advance_message();
            }
        }
        // Drop empty records at the front so they do not hold the buffer.
        while self
            .plaintext
            .front()
            .is_some_and(|&(_, end)| self.read_pos == end)
        {
            self.advance_message();
        }
        copied
    }

    pub(super) fn front_message(&self) -> Option<&[u8]> {
        self.plaintext
            .front()
            .map(|&(_, end)| &self.buf[self.read_pos..end])
    }

    pub(super) fn pop_message(&mut self) {
        if let Some(&(_, end)) = self.plaintext.front() {
            self.plaintext_len -= end - self.read_pos;
            self.advance_message();
        }
    }

    fn advance_message(&mut self) {
        self.plaintext.pop_front();
        match self.plaintext.front() {
            Some(&(start, _)) => self.read_pos = start,
            None => self.compact_if_cheap(),
        }
    }

    pub(super) fn release_if_empty(&mut self) {
        self.compact();
        if self.plaintext.is_empty() && self.filled == 0 && !self.buf.is_empty() {
            self.buf = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn frames_arrive_in_pieces_and_plaintext_reads_across_them() {
        let mut inb = Inbound::new(65535);
        let mut wire = framed(b"hello");
        wire.extend(framed(b""));
        wire.extend(framed(b"world"));
        for byte in &wire[..8] {
            inb.extend(&[*byte]);
        }
        let f = inb.next_frame().unwrap().unwrap();
        assert_eq!(inb.frame(&f), b"hello");
        inb.keep_plaintext(f, 1, 3);
        assert!(inb.next_frame().unwrap().is_none());
        inb.extend(&wire[8..]);
        let f = inb.next_frame().unwrap().unwrap();
        inb.keep_plaintext(f, 0, 0);
        let f = inb.next_frame().unwrap().unwrap();
        inb.keep_plaintext(f, 0, 5);
        assert_eq!(inb.plaintext_len(), 8);
        assert_eq!(inb.front_message(), Some(&b"ell"[..]));
        let mut out = [0u8; 16];
        assert_eq!(inb.read_plaintext(&mut out), 8);
        assert_eq!(&out[..8], b"ellworld");
        assert!(!inb.has_unprocessed());
        inb.release_if_empty();
        assert_eq!(inb.buf.capacity(), 0);
    }

    #[test]
    fn oversized_frames_are_refused_from_the_header() {
        let mut inb = Inbound::new(100);
        inb.extend(&[0x01, 0x00]);
        assert!(matches!(
            inb.next_frame(),
            Err(Error::PeerMisbehaved(PeerMisbehaved::FrameTooLarge))
        ));
    }

    #[test]
    fn spare_room_covers_the_frame_in_progress() {
        let mut inb = Inbound::new(65535);
        inb.extend(&[0x40, 0x00, 1, 2]);
        assert!(inb.spare(1).len() >= 0x4000 - 2);
    }
}

/// The frame parser on its own (hazmat: for fuzzing and interop work).
#[cfg(feature = "hazmat")]
#[derive(Debug)]
pub struct FrameDecoder(Inbound);

#[cfg(feature = "hazmat")]
impl FrameDecoder {
    /// A decoder refusing frames above `max_frame_len` (at most 65535).
    pub fn new(max_frame_len: usize) -> Self {
        FrameDecoder(Inbound::new(
            max_frame_len.min(crate::handshake::MAX_MESSAGE_LEN),
        ))
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.0.extend(bytes);
    }

    /// The next whole frame's body, if it has arrived; a length above the
    /// limit is [`PeerMisbehaved::FrameTooLarge`].
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let Some(frame) = self.0.next_frame()? else {
            return Ok(None);
        };
        let body = self.0.frame(&frame).to_vec();
        self.0.discard_frame(frame);
        Ok(Some(body))
    }

    /// The stream ended: fine between frames, [`PeerMisbehaved::TruncatedFrame`]
    /// inside one.
    pub fn finish(&self) -> Result<(), Error> {
        if self.0.has_partial_frame() {
            Err(PeerMisbehaved::TruncatedFrame.into())
        } else {
            Ok(())
        }
    }
}
