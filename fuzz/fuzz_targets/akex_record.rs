//! Chosen record plaintexts sealed under the akex-mode session's current key,
//! and raw records.
//! The logic lives in `src/` so `cargo test` can replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    akex_fuzz::akex_record(data);
});
