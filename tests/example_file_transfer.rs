//! Runs `examples/file_transfer.rs` as two processes (a receiver on port 0
//! and a sender): a 3 MiB random file arrives intact with matching SHA-256
//! on both sides, and a sender that drops the connection mid-transfer
//! (`--truncate-after`) makes the receiver fail instead of reporting success.

mod support;

use support::{describe, finish, listening_addr};

use std::path::PathBuf;
use std::process::Output;

use akex::keys::{encode_public_key, write_new_identity};
use sha2::{Digest, Sha256};

fn spawn(args: &[&str]) -> std::process::Child {
    support::spawn_example("file_transfer", args)
}

struct Setup {
    dir: tempfile::TempDir,
    recv_key: PathBuf,
    recv_pub: String,
    send_key: PathBuf,
    send_pub: String,
    file: PathBuf,
    digest: String,
}

fn setup(size: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = akex::crypto::OsRng;
    let recv_key = dir.path().join("recv.key");
    let send_key = dir.path().join("send.key");
    let recv_pub = encode_public_key(write_new_identity(&recv_key, &mut rng).unwrap().public());
    let send_pub = encode_public_key(write_new_identity(&send_key, &mut rng).unwrap().public());
    let mut data = vec![0u8; size];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut data);
    let file = dir.path().join("input.bin");
    std::fs::write(&file, &data).unwrap();
    let digest = hex::encode(Sha256::digest(&data));
    Setup {
        dir,
        recv_key,
        recv_pub,
        send_key,
        send_pub,
        file,
        digest,
    }
}

/// Starts a receiver and a sender; returns (receiver, sender) outputs.
fn transfer(s: &Setup, protocol: &str, extra_send: &[&str]) -> (Output, Output, PathBuf) {
    let output = s.dir.path().join("output.bin");
    let mut receiver = spawn(&[
        "recv",
        "--addr",
        "127.0.0.1:0",
        "--identity",
        s.recv_key.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--peer-key",
        &s.send_pub,
        "--protocol",
        protocol,
        "--quiet",
    ]);
    let (addr, receiver_err) = listening_addr(&mut receiver);
    let mut args = vec![
        "send",
        "--addr",
        &addr,
        "--identity",
        s.send_key.to_str().unwrap(),
        "--peer-key",
        &s.recv_pub,
        "--file",
        s.file.to_str().unwrap(),
        "--protocol",
        protocol,
        "--quiet",
    ];
    args.extend_from_slice(extra_send);
    let sender = spawn(&args);
    let (sender_out, sender_hung) = finish(sender, None);
    let (receiver_out, receiver_hung) = finish(receiver, Some(receiver_err));
    let report = format!(
        "{}\n{}",
        describe("receiver", &receiver_out),
        describe("sender", &sender_out)
    );
    assert!(!sender_hung && !receiver_hung, "a side hung\n{report}");
    (receiver_out, sender_out, output)
}

fn transfers_intact(protocol: &str) {
    let s = setup(3 * 1024 * 1024);
    let (receiver, sender, output) = transfer(&s, protocol, &[]);
    let report = format!(
        "{}\n{}",
        describe("receiver", &receiver),
        describe("sender", &sender)
    );
    assert!(
        receiver.status.success() && sender.status.success(),
        "{report}"
    );
    let line = format!("sha256 {}\n", s.digest);
    assert_eq!(String::from_utf8_lossy(&receiver.stdout), line, "{report}");
    assert_eq!(String::from_utf8_lossy(&sender.stdout), line, "{report}");
    assert_eq!(
        std::fs::read(&output).unwrap(),
        std::fs::read(&s.file).unwrap()
    );
}

#[test]
fn three_mib_noise_xx() {
    transfers_intact("Noise_XX_25519_ChaChaPoly_BLAKE2s");
}

#[test]
fn three_mib_noise_ik() {
    transfers_intact("Noise_IK_25519_ChaChaPoly_BLAKE2s");
}

#[test]
fn three_mib_hybrid_xx() {
    transfers_intact("akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256");
}

/// A sender that drops the connection mid-transfer: the receiver must exit
/// non-zero with an error, print no hash and leave no output file behind.
#[test]
fn truncated_transfer_is_an_error() {
    for protocol in [
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256",
    ] {
        let s = setup(3 * 1024 * 1024);
        let (receiver, sender, output) = transfer(&s, protocol, &["--truncate-after", "1000000"]);
        let report = format!(
            "{protocol}\n{}\n{}",
            describe("receiver", &receiver),
            describe("sender", &sender)
        );
        assert!(!receiver.status.success(), "{report}");
        assert!(!sender.status.success(), "{report}");
        assert!(receiver.stdout.is_empty(), "{report}");
        let stderr = String::from_utf8_lossy(&receiver.stderr);
        assert!(stderr.contains("file_transfer: error:"), "{report}");
        assert!(stderr.contains("of 3145728 bytes"), "{report}");
        assert!(!output.exists(), "{report}");
    }
}
