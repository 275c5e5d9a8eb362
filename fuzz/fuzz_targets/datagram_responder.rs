//! Arbitrary datagrams and clock steps for a UDP server's handshake responder.
//! The logic lives in `src/datagram.rs` so `cargo test` can replay the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    akex_fuzz::datagram_responder(data);
});
