//! Replays the public Noise test vectors (cacophony, snow, noise-c) through
//! akex's own API: `NoiseConfig` + `NoiseHandshake` behind `Box<dyn Handshake>`
//! for the handshake, then `Session` for the transport messages.
//!
//! The vector files are verbatim copies in `tests/vectors/noise/` (see the
//! README there for their origin). Set `AKEX_VECTORS_DIR` to use another
//! copy: either a `vectors` directory (containing `noise/`) or the `noise`
//! directory itself. A missing directory or file fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use akex::crypto::RandomSource;
use akex::crypto::Secret;
use akex::error::{ConfigError, Error};
use akex::handshake::noise::NoiseProtocol;
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::keys::StaticSecret;
use akex::PublicKey;
use akex::{Handshake, NoiseConfig, NoiseHandshake, Role, Session};
use serde_json::Value;

const FILES: [&str; 3] = ["cacophony.txt", "snow.txt", "noise-c-basic.txt"];

/// The fewest vectors that must replay (README: 472 + 408 + 120 usable).
const MIN_RAN: usize = 800;

fn vectors_dir() -> PathBuf {
    let base = match std::env::var_os("AKEX_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors"),
    };
    let noise = base.join("noise");
    let dir = if noise.is_dir() { noise } else { base };
    assert!(
        dir.is_dir(),
        "Noise vector directory {} not found: restore tests/vectors/noise from git, \
         or set AKEX_VECTORS_DIR to a vectors (or vectors/noise) directory",
        dir.display()
    );
    for file in FILES {
        assert!(
            dir.join(file).is_file(),
            "Noise vector file {} is missing",
            dir.join(file).display()
        );
    }
    dir
}

/// An RNG that replays a vector's ephemeral key and counts what is drawn,
/// to check that snow asks for exactly 32 bytes per ephemeral and nothing else.
struct CountingRng {
    inner: ScriptedRng,
    drawn: Arc<AtomicUsize>,
}

impl RandomSource for CountingRng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.drawn.fetch_add(dest.len(), Ordering::SeqCst);
        self.inner.fill_bytes(dest)
    }
}

fn hex_field(v: &Value, key: &str) -> Result<Option<Vec<u8>>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => hex::decode(s)
            .map(Some)
            .map_err(|e| format!("field {key}: bad hex: {e}")),
        Some(other) => Err(format!("field {key}: expected a hex string, got {other}")),
    }
}

fn key32(v: &Value, key: &str) -> Result<Option<[u8; 32]>, String> {
    hex_field(v, key)?
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| format!("field {key}: expected 32 bytes, got {}", bytes.len()))
        })
        .transpose()
}

fn psks(v: &Value, key: &str) -> Result<Vec<[u8; 32]>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let s = item
                    .as_str()
                    .ok_or_else(|| format!("{key}: expected hex strings"))?;
                let bytes = hex::decode(s).map_err(|e| format!("{key}: bad hex: {e}"))?;
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| format!("{key}: a PSK must be 32 bytes"))
            })
            .collect(),
        Some(other) => Err(format!("{key}: expected an array, got {other}")),
    }
}

struct Message {
    payload: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn messages(v: &Value) -> Result<Vec<Message>, String> {
    let list = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("no messages array")?;
    list.iter()
        .map(|m| {
            Ok(Message {
                payload: hex_field(m, "payload")?.ok_or("message without payload")?,
                ciphertext: hex_field(m, "ciphertext")?.ok_or("message without ciphertext")?,
            })
        })
        .collect()
}

enum Outcome {
    Ran { transport_messages: usize },
    Skipped(String),
}

struct Side {
    handshake: Box<dyn Handshake>,
    drawn: Arc<AtomicUsize>,
    /// Our own static public key, if the vector gives us a static key.
    static_public: Option<[u8; 32]>,
}

fn build_side(v: &Value, name: &str, role: Role) -> Result<Result<Side, String>, String> {
    let prefix = match role {
        Role::Initiator => "init",
        Role::Responder => "resp",
    };
    let prologue = hex_field(v, &format!("{prefix}_prologue"))?.unwrap_or_default();
    let ephemeral = hex_field(v, &format!("{prefix}_ephemeral"))?.unwrap_or_default();
    let drawn = Arc::new(AtomicUsize::new(0));
    let rng = CountingRng {
        inner: ScriptedRng::new(ephemeral),
        drawn: drawn.clone(),
    };
    let mut config = NoiseConfig::new(name).unwrap().prologue(prologue).rng(rng);
    let mut static_public = None;
    if let Some(private) = key32(v, &format!("{prefix}_static"))? {
        let key = StaticSecret::from_private(Secret::new(private));
        static_public = Some(*key.public());
        config = config.local_static(key);
    }
    if let Some(remote) = key32(v, &format!("{prefix}_remote_static"))? {
        config = config.remote_static(PublicKey::x25519(remote));
    }
    for psk in psks(v, &format!("{prefix}_psks"))? {
        config = config.psk(Secret::new(psk));
    }
    match NoiseHandshake::new(config, role) {
        Ok(hs) => Ok(Ok(Side {
            handshake: Box::new(hs),
            drawn,
            static_public,
        })),
        Err(Error::Config(ConfigError::UnsupportedProtocol { reason, .. })) => {
            Ok(Err(format!("NoiseHandshake::new: {reason}")))
        }
        Err(e) => Err(format!("NoiseHandshake::new({role}) failed: {e}")),
    }
}

fn run_vector(v: &Value) -> Result<Outcome, String> {
    let name = v
        .get("protocol_name")
        .or_else(|| v.get("name"))
        .and_then(Value::as_str)
        .ok_or("vector without protocol_name/name")?
        .to_string();
    if name.starts_with("NoisePSK_") {
        return Ok(Outcome::Skipped(
            "NoisePSK_* (obsolete pre-rev-32 PSK scheme)".into(),
        ));
    }
    if name.split('_').nth(2) == Some("448") {
        return Ok(Outcome::Skipped("448 DH".into()));
    }
    let protocol = match NoiseProtocol::parse(&name) {
        Ok(p) => p,
        Err(Error::Config(ConfigError::UnsupportedProtocol { reason, .. })) => {
            return Ok(Outcome::Skipped(format!("NoiseProtocol::parse: {reason}")));
        }
        Err(e) => return Err(format!("NoiseProtocol::parse: unexpected error {e}")),
    };
    let one_way = protocol.is_one_way();
    let messages = messages(v)?;
    let expected_hash = hex_field(v, "handshake_hash")?;

    let mut init = match build_side(v, &name, Role::Initiator)? {
        Ok(side) => side,
        Err(reason) => return Ok(Outcome::Skipped(reason)),
    };
    let mut resp = match build_side(v, &name, Role::Responder)? {
        Ok(side) => side,
        Err(reason) => return Ok(Outcome::Skipped(reason)),
    };
    if init.handshake.protocol() != name || resp.handshake.protocol() != name {
        return Err("protocol() does not return the configured name".into());
    }

    // Handshake messages alternate, starting with the initiator.
    let mut iter = messages.iter().enumerate();
    let mut out = Vec::new();
    let mut payload = Vec::new();
    while !(init.handshake.is_finished() && resp.handshake.is_finished()) {
        let (i, msg) = iter
            .next()
            .ok_or("ran out of messages before the handshake finished")?;
        let (writer, reader) = if i % 2 == 0 {
            (&mut init, &mut resp)
        } else {
            (&mut resp, &mut init)
        };
        let who = writer.handshake.role();
        if !writer.handshake.wants_write() || reader.handshake.wants_write() {
            return Err(format!(
                "handshake message {i}: expected the {who} to write (wants_write disagrees)"
            ));
        }
        out.clear();
        writer
            .handshake
            .write_message(&msg.payload, &mut out)
            .map_err(|e| format!("handshake message {i}: {who} write_message: {e}"))?;
        if out != msg.ciphertext {
            return Err(format!(
                "handshake message {i} ({who}): ciphertext mismatch\n  expected {}\n  actual   {}",
                hex::encode(&msg.ciphertext),
                hex::encode(&out)
            ));
        }
        payload.clear();
        reader
            .handshake
            .read_message(&out, &mut payload)
            .map_err(|e| format!("handshake message {i}: {} read_message: {e}", who.peer()))?;
        if payload != msg.payload {
            return Err(format!(
                "handshake message {i}: payload mismatch\n  expected {}\n  actual   {}",
                hex::encode(&msg.payload),
                hex::encode(&payload)
            ));
        }
    }

    // snow must draw exactly one 32-byte ephemeral per side that sends `e`:
    // the initiator always, the responder in every two-way pattern.
    let init_drawn = init.drawn.load(Ordering::SeqCst);
    let resp_drawn = resp.drawn.load(Ordering::SeqCst);
    let resp_expected = if one_way { 0 } else { 32 };
    if init_drawn != 32 || resp_drawn != resp_expected {
        return Err(format!(
            "RNG draws: initiator {init_drawn} bytes (expected 32), responder {resp_drawn} \
             (expected {resp_expected})"
        ));
    }

    let init_static = init.static_public;
    let resp_static = resp.static_public;
    let init_est = init
        .handshake
        .finish()
        .map_err(|e| format!("initiator finish: {e}"))?;
    let resp_est = resp
        .handshake
        .finish()
        .map_err(|e| format!("responder finish: {e}"))?;
    if init_est.handshake_hash() != resp_est.handshake_hash() {
        return Err("the two sides disagree on the handshake hash".into());
    }
    if let Some(expected) = &expected_hash {
        if init_est.handshake_hash() != expected.as_slice() {
            return Err(format!(
                "handshake hash mismatch\n  expected {}\n  actual   {}",
                hex::encode(expected),
                hex::encode(init_est.handshake_hash())
            ));
        }
    }
    // A remote static key learned (or pinned) must be the peer's real key.
    for (est, peer_static, who) in [
        (&init_est, resp_static, "initiator"),
        (&resp_est, init_static, "responder"),
    ] {
        if let Some(remote) = est.remote_static() {
            if Some(remote.as_bytes()) != peer_static.as_ref().map(|k| &k[..]) {
                return Err(format!(
                    "{who}'s remote_static is not the peer's static key"
                ));
            }
        }
    }

    let mut init_session = Session::new(init_est);
    let mut resp_session = Session::new(resp_est);
    let mut transport_messages = 0;
    for (i, msg) in iter {
        let (sender, receiver) = if one_way || i % 2 == 0 {
            (&mut init_session, &mut resp_session)
        } else {
            (&mut resp_session, &mut init_session)
        };
        // Alternate between the copying and the in-place APIs.
        let (sealed, opened) = if transport_messages % 2 == 0 {
            let mut sealed = Vec::new();
            sender
                .seal(&msg.payload, &mut sealed)
                .map_err(|e| format!("transport message {i}: seal: {e}"))?;
            let mut opened = Vec::new();
            receiver
                .open(&msg.ciphertext, &mut opened)
                .map_err(|e| format!("transport message {i}: open: {e}"))?;
            (sealed, opened)
        } else {
            let mut sealed = msg.payload.clone();
            sender
                .seal_in_place(&mut sealed)
                .map_err(|e| format!("transport message {i}: seal_in_place: {e}"))?;
            let mut buf = msg.ciphertext.clone();
            let n = receiver
                .open_in_place(&mut buf)
                .map_err(|e| format!("transport message {i}: open_in_place: {e}"))?;
            buf.truncate(n);
            (sealed, buf)
        };
        if sealed != msg.ciphertext {
            return Err(format!(
                "transport message {i}: ciphertext mismatch\n  expected {}\n  actual   {}",
                hex::encode(&msg.ciphertext),
                hex::encode(&sealed)
            ));
        }
        if opened != msg.payload {
            return Err(format!("transport message {i}: payload mismatch"));
        }
        transport_messages += 1;
    }
    Ok(Outcome::Ran { transport_messages })
}

#[test]
fn noise_vectors_replay() {
    let dir = vectors_dir();
    let mut ran = 0usize;
    let mut transport = 0usize;
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut per_file = Vec::new();

    for file in FILES {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
        let vectors = json["vectors"]
            .as_array()
            .unwrap_or_else(|| panic!("{} has no \"vectors\" array", path.display()));
        let (mut file_ran, mut file_skipped) = (0, 0);
        for (index, v) in vectors.iter().enumerate() {
            match run_vector(v) {
                Ok(Outcome::Ran { transport_messages }) => {
                    file_ran += 1;
                    transport += transport_messages;
                }
                Ok(Outcome::Skipped(reason)) => {
                    file_skipped += 1;
                    *skipped.entry(reason).or_default() += 1;
                }
                Err(err) => {
                    let name = v
                        .get("protocol_name")
                        .or_else(|| v.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    failures.push(format!("{file} #{index} {name}: {err}"));
                }
            }
        }
        per_file.push(format!("{file}: ran {file_ran}, skipped {file_skipped}"));
        ran += file_ran;
    }

    let total_skipped: usize = skipped.values().sum();
    let reasons = skipped
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect::<Vec<_>>()
        .join("; ");
    println!("noise vectors: ran {ran}, skipped {total_skipped} ({reasons})");
    println!("noise vectors: {}", per_file.join(", "));
    println!("noise vectors: {transport} transport messages replayed");

    assert!(
        failures.is_empty(),
        "{} vector(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ran >= MIN_RAN,
        "only {ran} vectors ran, expected at least {MIN_RAN}"
    );
    assert!(transport > 0, "no transport messages were replayed");
}
