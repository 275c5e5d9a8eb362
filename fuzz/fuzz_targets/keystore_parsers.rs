//! Arbitrary bytes through the key-store, trust-store, audit and rotation parsers.
//! The logic lives in `src/keystore_parsers.rs` so `cargo test` can replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    akex_fuzz::keystore_parsers(data);
});
