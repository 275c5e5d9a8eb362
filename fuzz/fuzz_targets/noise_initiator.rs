//! Arbitrary bytes as replies to Noise initiators (XX, IK, NK) after a valid message 1.
//! The logic lives in `src/` so `cargo test` can replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    akex_fuzz::noise_initiator(data);
});
