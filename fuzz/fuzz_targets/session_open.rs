//! Arbitrary bytes as transport records to an established `Session`.
//! The logic lives in `src/session_open.rs` so `cargo test` can replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    akex_fuzz::session_open(data);
});
