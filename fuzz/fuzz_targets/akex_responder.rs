//! Arbitrary bytes as messages to the akex-mode negotiating responder.
//! The logic lives in `src/akex_handshake.rs` so `cargo test` can replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    akex_fuzz::akex_responder(data);
});
