//! Arbitrary bytes as messages 1 and 3 to Noise XX and IK responders.
//! The logic lives in `src/noise_handshake.rs` so `cargo test` can replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    akex_fuzz::noise_responder(data);
});
