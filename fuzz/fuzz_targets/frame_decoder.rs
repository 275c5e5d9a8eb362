//! Arbitrary bytes, in chunks, through `akex::transport::FrameCodec`.
//! The logic lives in `src/frame_decoder.rs` so `cargo test` can replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    akex_fuzz::frame_decoder(data);
});
