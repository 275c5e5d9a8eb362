//! Operation sequences (seal, deliver, reorder, replay, tamper, drop, rekey,
//! ratchet, poll, close) on two sessions, checked against a model.
//! The logic lives in `src/` so `cargo test` can replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    akex_fuzz::session_ops(data);
});
