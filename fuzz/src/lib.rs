//! The logic behind the fuzz targets, in one place.
//!
//! The targets in `fuzz_targets/` are one-line wrappers around the functions
//! here, and the main crate's `tests/fuzz_corpus.rs` compiles this same file
//! (through `#[path]`) to replay the committed corpus on the stable
//! toolchain. A crash libFuzzer finds therefore replays under `cargo test`
//! once its input is copied into `fuzz/corpus/<target>/`.
//!
//! Input layout, for most targets: one selector byte, then frames as on the
//! wire (2-byte big-endian length, then that many bytes). A frame whose
//! length runs past the end of the input takes whatever is left, so any
//! byte string is a valid input. (`frame_decoder` and `keystore_parsers`
//! take raw bytes after the selector, `session_ops` operations.)
//!
//! Every key and every "random" ephemeral is fixed, so the seeds written by
//! [`noise_responder_seeds`] and [`session_open_seeds`] stay valid messages
//! from one run to the next.
//!
//! This file holds what every target shares: the frames, [`Progress`] and
//! [`Seed`]. Each target (or pair of targets) has a module with its seeds;
//! `parties` holds the fixed Noise keys and handshakes, `checks` the rules
//! every handshake target enforces.

pub mod akex_handshake;
pub mod akex_record;
mod checks;
pub mod datagram;
pub mod frame_decoder;
pub mod keystore_parsers;
pub mod noise_handshake;
mod parties;
pub mod session_open;
pub mod session_ops;

pub use akex_handshake::{
    akex_initiator, akex_initiator_seeds, akex_responder, akex_responder_seeds,
};
pub use akex_record::{akex_record, akex_record_seeds};
pub use datagram::{datagram_responder, datagram_responder_seeds};
pub use frame_decoder::{frame_decoder, frame_decoder_seeds};
pub use keystore_parsers::{keystore_parsers, keystore_parsers_seeds};
pub use noise_handshake::{
    noise_initiator, noise_initiator_seeds, noise_responder, noise_responder_seeds,
};
pub use session_open::{session_open, session_open_seeds};
pub use session_ops::{session_ops, session_ops_seeds};

// The fixtures keep their old paths at the root too; the corpus test, which
// compiles this file, uses none of them (and `unused_imports` is not
// `dead_code`, which it allows).
#[allow(unused_imports)]
pub use {
    noise_handshake::{INITIATOR_PROTOCOLS, RESPONDER_PROTOCOLS},
    parties::{initiator_static, responder_static},
    session_open::{session_pair, SESSION_PROTOCOLS},
};

/// How far one input got; the replay test checks that seeds get as far as
/// they were built to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The responder accepted message 1 and wrote message 2.
    pub answered: bool,
    /// The handshake finished and a session was built.
    pub finished: bool,
    /// Transport records that decrypted.
    pub records: usize,
}

/// Splits an input into frames (see the module docs for the layout).
pub struct Frames<'a>(&'a [u8]);

impl<'a> Frames<'a> {
    /// The frames of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Frames(data)
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self.0 {
            [hi, lo, rest @ ..] => {
                let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
                let (frame, tail) = rest.split_at(len);
                self.0 = tail;
                Some(frame)
            }
            // A lone trailing byte cannot hold a length prefix.
            _ => None,
        }
    }
}

/// Appends `message` to `out` as one frame.
pub fn push_frame(out: &mut Vec<u8>, message: &[u8]) {
    let len = u16::try_from(message.len()).expect("a frame holds at most 65535 bytes");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
}

/// A named seed input and how far it must get.
pub struct Seed {
    /// File name in the corpus directory.
    pub name: &'static str,
    /// The input bytes.
    pub data: Vec<u8>,
    /// The progress the harness must report for it.
    pub expect: Progress,
}

/// Seed names are `&'static str`; the few built at run time are leaked.
pub(crate) fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}
