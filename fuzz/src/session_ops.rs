//! Fuzz target `session_ops`: a stateful run of two sessions (A, the
//! handshake initiator, and B, the responder) driven by a sequence of
//! operations decoded from the input, checked against a model.
//!
//! The operations are decoded by a hand-written `Arbitrary` impl (in
//! `op.rs`) rather than a derived one, so each takes a few bytes;
//! `tests/fuzz_corpus.rs` compiles this code into the main crate's test
//! (which has `arbitrary` as a dev-dependency), so the replay decodes the
//! corpus exactly as libFuzzer did.
//!
//! Input: one selector byte picks the configuration ([`OPS_CONFIGS`]); the
//! rest is a sequence of operations, each a tag byte and its argument bytes
//! (missing bytes read as zero). The model checks:
//!
//! * every record delivered in order, untampered, to a live receiver opens
//!   to exactly what was sealed (data bytes, or the control record's type);
//! * a tampered, replayed, reordered or injected record never opens (and a
//!   datagram never opens twice);
//! * after a failure a Noise-mode receiver keeps its nonce and stays usable;
//!   an akex-mode session is closed for good (every error is final); a
//!   datagram session stays usable after an unauthenticated failure;
//! * `is_closed`, `peer_closed` and `has_failed` agree with the model, and
//!   a closed or failed akex session refuses to seal.
//!
//! This file runs the input; the pieces live beside it in `session_ops/`:
//! `config.rs` (configurations and fixed secrets), `op.rs` (the
//! operations), `model.rs` (records in flight and the expected state),
//! `run.rs` (applying operations), `open.rs` (the checks on every open)
//! and `seeds.rs` (the committed scripts).

mod config;
mod model;
mod op;
mod open;
mod run;
mod seeds;

pub use config::OPS_CONFIGS;
pub(crate) use config::{fixed_established, rng_bytes, HANDSHAKE_HASH, I2R, ROOT};
pub use op::Op;
// Named by `Op`, so public with it; the corpus test never names it.
#[allow(unused_imports)]
pub use op::Side;
pub use seeds::session_ops_seeds;

use arbitrary::{Arbitrary, Unstructured};

use super::{leak, Progress, Seed};
use run::Run;

/// Most operations run per input (keeps every datagram counter inside the
/// replay window and each run short).
pub const MAX_OPS: usize = 512;

/// Runs the fuzz target `session_ops` (see the module docs).
pub fn session_ops(data: &[u8]) -> Progress {
    let Some((&selector, rest)) = data.split_first() else {
        return Progress::default();
    };
    let mut run = Run::new(usize::from(selector) % OPS_CONFIGS);
    let mut input = Unstructured::new(rest);
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let Ok(op) = Op::arbitrary(&mut input) else {
            break;
        };
        if let Op::Garbage { to, len } = op {
            let available = usize::from(len).min(input.len());
            let bytes = input.bytes(available).unwrap_or_default().to_vec();
            run.open(
                to,
                None,
                &bytes,
                if run.datagram { None } else { Some(false) },
            );
            continue;
        }
        run.apply(op);
    }
    run.progress
}
