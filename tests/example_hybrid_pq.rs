//! Runs `examples/hybrid_pq.rs` (server and client in one process) and
//! checks that it prints the hybrid handshake's properties from the
//! registry, the handshake bytes on the wire, and each echoed message.

mod support;

use std::process::{Command, Stdio};

use akex::handshake::registry;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(support::example_binary("hybrid_pq"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hybrid_pq");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(protocol: &str) {
    let info = registry::info(protocol).unwrap();
    let (ok, stdout, stderr) = run(&[
        "--protocol",
        protocol,
        "--message",
        "hello",
        "--message",
        "post-quantum world",
    ]);
    let report = format!("--- stdout\n{stdout}--- stderr\n{stderr}");
    assert!(ok, "{report}");
    assert!(
        stdout.contains(&format!("protocol:          {protocol}\n")),
        "{report}"
    );
    assert!(
        stdout.contains(&format!("post-quantum:      {}\n", info.post_quantum)),
        "{report}"
    );
    assert!(
        stdout.contains(&format!("identity hiding:   {}\n", info.identity_hiding)),
        "{report}"
    );
    assert!(stdout.contains("forward secrecy:   yes\n"), "{report}");
    let sizes = info
        .message_sizes
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" / ");
    assert!(
        stdout.contains(&format!(
            "handshake sizes:   {sizes} = {} bytes",
            info.total_bytes()
        )),
        "{report}"
    );
    // Measured on the socket: the registry's sizes plus a 2-byte frame
    // header per handshake message.
    let wire = info.total_bytes() + 2 * info.message_sizes.len();
    assert!(
        stdout.contains(&format!("received, {wire} total")),
        "{report}"
    );
    assert!(
        stdout.contains("server:            authenticated client key "),
        "{report}"
    );
    // Each echo: 2-byte frame + the plaintext + a 16-byte tag (at least).
    for text in ["hello", "post-quantum world"] {
        let line = stdout
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "echo:              \"{text}\": {} bytes plaintext, ",
                    text.len()
                ))
            })
            .unwrap_or_else(|| panic!("no echo line for {text:?}\n{report}"));
        let out: usize = line
            .split("plaintext, ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad echo line {line:?}"));
        assert!(out >= text.len() + 2 + 16, "{line}");
    }
    assert!(
        stdout.contains("done:              2 messages echoed\n"),
        "{report}"
    );
}

#[test]
fn hybrid_xx() {
    check("akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256");
}

#[test]
fn hybrid_ik() {
    check("akex-hybrid-ik-x25519-mlkem768-chachapoly-sha256");
}

#[test]
fn unknown_protocol_fails() {
    let (ok, stdout, stderr) = run(&["--protocol", "akex-nonsense"]);
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stderr.contains("hybrid_pq: error: unknown protocol"),
        "{stderr}"
    );
}
