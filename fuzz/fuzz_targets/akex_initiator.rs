//! Arbitrary bytes as replies to akex-mode initiators after a valid message 1.
//! The logic lives in `src/akex_handshake.rs` so `cargo test` can replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    akex_fuzz::akex_initiator(data);
});
