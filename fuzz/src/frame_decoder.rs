//! Fuzz target `frame_decoder`: a raw byte stream, in chunks, through the
//! length-prefixed frame decoder (`akex::hazmat::FrameDecoder`).

use super::{push_frame, Progress, Seed};

/// Fuzz target `frame_decoder`: the selector byte picks the decoder's limit
/// (0..=63 bytes for even selectors, the default for odd ones) and the
/// chunk size (1..=16 bytes) in which the rest arrives. Frames are taken
/// after every chunk and the end is checked at the end; no frame may exceed
/// the limit, and an error ends the stream. `records` counts frames.
pub fn frame_decoder(data: &[u8]) -> Progress {
    let mut progress = Progress::default();
    let Some((&selector, rest)) = data.split_first() else {
        return progress;
    };
    let limit = if selector & 1 == 0 {
        usize::from(selector >> 2) % 64
    } else {
        65535
    };
    let mut decoder = akex::hazmat::FrameDecoder::new(limit);
    let chunk = usize::from((selector >> 1) & 0x0f) + 1;
    let mut consumed = 0;
    for piece in rest.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= limit, "frame over the limit");
                    consumed += 2 + frame.len();
                    progress.records += 1;
                }
                Ok(None) => break,
                Err(_) => return progress,
            }
        }
    }
    progress.answered = true;
    if decoder.finish().is_ok() {
        // A clean end means every byte belonged to a whole frame (a stream
        // cut after a length header is `TruncatedFrame`).
        assert_eq!(consumed, rest.len(), "clean end inside a frame");
        progress.finished = true;
    }
    progress
}

/// Seeds for `frame_decoder`: whole frames under both limits, an
/// oversized frame and a stream cut inside a frame.
pub fn frame_decoder_seeds() -> Vec<Seed> {
    let mut two = Vec::new();
    push_frame(&mut two, b"hello");
    push_frame(&mut two, b"");
    let mut big = Vec::new();
    push_frame(&mut big, &[0x5a; 100]);
    let seed = |name, selector: u8, body: &[u8], expect| {
        let mut data = vec![selector];
        data.extend_from_slice(body);
        Seed { name, data, expect }
    };
    let done = |records| Progress {
        answered: true,
        finished: true,
        records,
    };
    vec![
        // Default limit, chunks of 3.
        seed("two-frames", 0x05, &two, done(2)),
        // Limit 16, chunks of 1: both fit.
        seed("two-frames-small", 0x40, &two, done(2)),
        // Limit 16: the 100-byte frame is too large.
        seed("too-large", 0x40, &big, Progress::default()),
        // Default limit: fits.
        seed("large-default", 0x1f, &big, done(1)),
        // A stream cut inside a frame fails at EOF.
        seed(
            "truncated",
            0x01,
            &big[..50],
            Progress {
                answered: true,
                finished: false,
                records: 0,
            },
        ),
    ]
}
