//! Replays the fuzz corpus on the stable toolchain.
//!
//! The fuzz targets need nightly and cargo-fuzz; this test runs every file
//! in `fuzz/corpus/<target>/` through the very same harness (the fuzz
//! crate's `src/lib.rs`, compiled in here) so a committed crash input keeps
//! failing `cargo test` until it is fixed. It also checks that the seeds
//! still reach as deep as they were built to, and that the committed seeds
//! match what the generator produces today.
//!
//! Regenerate the seeds after changing the harness's keys or protocols:
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpus`

use std::fs;
use std::path::PathBuf;

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

use harness::{Progress, Seed};

type Target = fn(&[u8]) -> Progress;
type Seeds = fn() -> Vec<Seed>;

const TARGETS: [(&str, Target, Seeds); 10] = [
    (
        "noise_responder",
        harness::noise_responder,
        harness::noise_responder_seeds,
    ),
    (
        "session_open",
        harness::session_open,
        harness::session_open_seeds,
    ),
    (
        "frame_decoder",
        harness::frame_decoder,
        harness::frame_decoder_seeds,
    ),
    (
        "akex_responder",
        harness::akex_responder,
        harness::akex_responder_seeds,
    ),
    (
        "akex_initiator",
        harness::akex_initiator,
        harness::akex_initiator_seeds,
    ),
    (
        "keystore_parsers",
        harness::keystore_parsers,
        harness::keystore_parsers_seeds,
    ),
    (
        "session_ops",
        harness::session_ops,
        harness::session_ops_seeds,
    ),
    (
        "akex_record",
        harness::akex_record,
        harness::akex_record_seeds,
    ),
    (
        "noise_initiator",
        harness::noise_initiator,
        harness::noise_initiator_seeds,
    ),
    (
        "datagram_responder",
        harness::datagram_responder,
        harness::datagram_responder_seeds,
    ),
];

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_file_replays_without_panic() {
    for (target, run, _) in TARGETS {
        let files = corpus_files(target);
        assert!(!files.is_empty(), "no corpus for {target}");
        for file in files {
            let data = fs::read(&file).expect("readable corpus file");
            // A panic here names the input through the test's output.
            eprintln!("{target}: {}", file.display());
            run(&data);
        }
    }
}

#[test]
fn seeds_reach_their_depth_and_are_committed() {
    for (target, run, seeds) in TARGETS {
        for seed in seeds() {
            assert_eq!(run(&seed.data), seed.expect, "{target}/{}", seed.name);
            let path = corpus_dir(target).join(seed.name);
            let committed = fs::read(&path).unwrap_or_default();
            assert!(
                committed == seed.data,
                "{} is missing or stale; run `cargo test --test fuzz_corpus -- --ignored write_seed_corpus`",
                path.display()
            );
        }
    }
}

/// A little of what the fuzzer does, on stable: each seed with every byte
/// flipped in turn, and every prefix of it. Seeds over 256 bytes (the
/// post-quantum handshakes, slow in debug builds) get about 64 evenly
/// spaced positions instead.
#[test]
fn mutated_seeds_do_not_panic() {
    for (_, run, seeds) in TARGETS {
        for seed in seeds() {
            let len = seed.data.len();
            let step = if len > 256 { len / 64 } else { 1 };
            for i in (0..len).step_by(step) {
                let mut data = seed.data.clone();
                data[i] ^= 0x01;
                run(&data);
                run(&seed.data[..i]);
            }
        }
    }
}

#[test]
fn frames_split_like_the_wire_format() {
    let mut data = Vec::new();
    harness::push_frame(&mut data, b"abc");
    harness::push_frame(&mut data, b"");
    data.extend_from_slice(&[0x00, 0x09, b'x', b'y']);
    data.push(0xff);
    let frames: Vec<&[u8]> = harness::Frames::new(&data).collect();
    // The overlong last frame takes what is left, including the lone byte.
    assert_eq!(frames, [&b"abc"[..], b"", &[b'x', b'y', 0xff]]);
    assert_eq!(harness::Frames::new(&[0x01]).count(), 0);
}

/// Found by `frame_decoder`: after a length header and no body, the end of
/// the stream is a truncated frame.
#[test]
fn frame_decoder_rejects_a_stream_cut_after_the_header() {
    let mut decoder = akex::hazmat::FrameDecoder::new(65535);
    decoder.push(&[0x00, 0x05]);
    assert!(matches!(decoder.next_frame(), Ok(None)));
    assert!(decoder.finish().is_err(), "end inside a frame");
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing the harness"]
fn write_seed_corpus() {
    for (target, _, seeds) in TARGETS {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).expect("corpus directory");
        let seeds = seeds();
        for seed in &seeds {
            fs::write(dir.join(seed.name), &seed.data).expect("write seed");
        }
        // Seeds the generator no longer makes go; inputs the fuzzer found
        // (`found-*`, `regress-*`) stay.
        for file in corpus_files(target) {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let kept = name.starts_with("found-") || name.starts_with("regress-");
            if !kept && !seeds.iter().any(|s| s.name == name) {
                fs::remove_file(&file).expect("remove a stale seed");
            }
        }
    }
}
