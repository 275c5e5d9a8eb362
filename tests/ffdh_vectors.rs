//! FFDH-3072 NK (feature `ffdh`; a legacy baseline, for comparison only):
//! known-answer vectors replayed byte for byte on both sides, and the
//! negative cases (invalid public values, tampering, a wrong key, a wrong
//! protocol, truncation).
//!
//! Every random byte comes from the injected RNG, so the whole handshake
//! is deterministic. The file is written once and checked in:
//!
//! ```text
//! cargo test --features ffdh --test ffdh_vectors -- --ignored write_ffdh_vector
//! ```
#![cfg(feature = "ffdh")]

use std::path::PathBuf;

use akex::crypto::Secret;
use akex::error::PeerMisbehaved;
use akex::handshake::ffdh::{
    FfdhConfig, FfdhHandshake, FfdhKeyPair, EXPONENT_BYTES, FFDH_BYTES, FFDH_NK,
};
use akex::handshake::registry::{self, HandshakeKeys};
use akex::handshake::Handshake;
use akex::hazmat::ReplayRng;
use akex::session::{Record, RecordType, SessionConfig};
use akex::{Error, KeyKind, PublicKey, Session};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct Message {
    sender: String,
    payload: String,
    message: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct FfdhVector {
    protocol: String,
    description: String,
    /// The responder's static private exponent (35 bytes), hex.
    responder_static_private: String,
    /// The initiator's ephemeral exponent (35 bytes), hex.
    initiator_random: String,
    /// The responder's ephemeral exponent (35 bytes), hex.
    responder_random: String,
    handshake: Vec<Message>,
    handshake_hash: String,
    initiator_to_responder: String,
    responder_to_initiator: String,
    transport: Vec<Message>,
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("protocols/vectors")
        .join(format!("{FFDH_NK}.json"))
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

/// A fixed, nonzero byte string of `len` bytes for `label`.
fn fixed(label: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| label.wrapping_mul(31).wrapping_add(i as u8 * 7) | 1)
        .collect()
}

fn static_key(bytes: &[u8]) -> FfdhKeyPair {
    FfdhKeyPair::from_private(Secret::from_slice(bytes).expect("35 bytes")).expect("key")
}

fn initiator(responder_public: &[u8], random: &[u8]) -> FfdhHandshake {
    FfdhHandshake::initiator(
        FfdhConfig::new()
            .remote_key(PublicKey::from_bytes(KeyKind::Ffdhe3072, responder_public).unwrap())
            .rng(ReplayRng::new(random.to_vec())),
    )
    .expect("initiator")
}

fn responder(key: FfdhKeyPair, random: &[u8]) -> FfdhHandshake {
    FfdhHandshake::responder(
        FfdhConfig::new()
            .local_key(key)
            .rng(ReplayRng::new(random.to_vec())),
    )
    .expect("responder")
}

const PAYLOADS: [&[u8]; 2] = [b"", b"responder payload"];
const TRANSPORT: [&[u8]; 2] = [
    b"first transport message, initiator to responder",
    b"and the answer",
];

/// Runs the handshake and two transport records; the vector it makes.
fn generate() -> FfdhVector {
    let s = fixed(1, EXPONENT_BYTES);
    let (irand, rrand) = (fixed(2, EXPONENT_BYTES), fixed(3, EXPONENT_BYTES));
    let key = static_key(&s);
    let mut i = initiator(key.public(), &irand);
    let mut r = responder(key, &rrand);
    let mut handshake = Vec::new();
    for (k, payload) in PAYLOADS.iter().enumerate() {
        let (from, to, sender) = if k == 0 {
            (&mut i, &mut r, "initiator")
        } else {
            (&mut r, &mut i, "responder")
        };
        let mut msg = Vec::new();
        from.write_message(payload, &mut msg).unwrap();
        let mut got = Vec::new();
        to.read_message(&msg, &mut got).unwrap();
        assert_eq!(&got, payload);
        handshake.push(Message {
            sender: sender.into(),
            payload: hex::encode(payload),
            message: hex::encode(&msg),
        });
    }
    let (ie, re) = (i.finish().unwrap(), r.finish().unwrap());
    assert_eq!(ie.handshake_hash(), re.handshake_hash());
    let v = FfdhVector {
        protocol: FFDH_NK.into(),
        description: "FFDH-3072 NK (RFC 7919 ffdhe3072; legacy baseline, for comparison only): \
                      fixed exponents, empty then short payloads, two akex data records"
            .into(),
        responder_static_private: hex::encode(&s),
        initiator_random: hex::encode(&irand),
        responder_random: hex::encode(&rrand),
        handshake,
        handshake_hash: hex::encode(ie.handshake_hash()),
        initiator_to_responder: hex::encode(ie.sending_secret().expose()),
        responder_to_initiator: hex::encode(ie.receiving_secret().expose()),
        transport: Vec::new(),
    };
    let mut is = Session::with_config(ie, SessionConfig::new()).unwrap();
    let mut rs = Session::with_config(re, SessionConfig::new()).unwrap();
    let mut transport = Vec::new();
    for (k, payload) in TRANSPORT.iter().enumerate() {
        let (from, to, sender) = if k == 0 {
            (&mut is, &mut rs, "initiator")
        } else {
            (&mut rs, &mut is, "responder")
        };
        let mut msg = Vec::new();
        from.seal_record(RecordType::Data, payload, &mut msg)
            .unwrap();
        let mut got = Vec::new();
        assert!(matches!(
            to.open_record(&msg, &mut got).unwrap(),
            Record::Data(_)
        ));
        assert_eq!(&got, payload);
        transport.push(Message {
            sender: sender.into(),
            payload: hex::encode(payload),
            message: hex::encode(&msg),
        });
    }
    FfdhVector { transport, ..v }
}

#[test]
#[ignore = "writes the FFDH vector file; run by hand"]
fn write_ffdh_vector() {
    let json = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    std::fs::write(path(), json).unwrap();
}

fn load() -> FfdhVector {
    serde_json::from_str(&std::fs::read_to_string(path()).expect("vector file")).expect("JSON")
}

/// Both sides, byte for byte, each against the other's recorded messages.
#[test]
fn ffdh_vector_replays_byte_for_byte() {
    let v = load();
    assert_eq!(
        v,
        generate(),
        "the recipe no longer makes the checked-in file"
    );
    let key = static_key(&unhex(&v.responder_static_private));
    // Initiator alone: message 1 as recorded, then the recorded message 2.
    let mut i = initiator(key.public(), &unhex(&v.initiator_random));
    let mut m1 = Vec::new();
    i.write_message(&unhex(&v.handshake[0].payload), &mut m1)
        .unwrap();
    assert_eq!(hex::encode(&m1), v.handshake[0].message, "message 1");
    let mut got = Vec::new();
    i.read_message(&unhex(&v.handshake[1].message), &mut got)
        .unwrap();
    assert_eq!(hex::encode(&got), v.handshake[1].payload);
    // Responder alone: the recorded message 1, then message 2 as recorded.
    let mut r = responder(key, &unhex(&v.responder_random));
    r.read_message(&unhex(&v.handshake[0].message), &mut Vec::new())
        .unwrap();
    let mut m2 = Vec::new();
    r.write_message(&unhex(&v.handshake[1].payload), &mut m2)
        .unwrap();
    assert_eq!(hex::encode(&m2), v.handshake[1].message, "message 2");
    for e in [i.finish().unwrap(), r.finish().unwrap()] {
        assert_eq!(hex::encode(e.handshake_hash()), v.handshake_hash);
    }
    println!("ffdh vectors: ran 1 (both sides byte for byte), skipped 0");
}

/// Registry sizes are what the protocol sends, and the registry builds it.
#[test]
fn registry_row_is_true() {
    let info = registry::info(FFDH_NK).expect("registry row");
    assert!(info.forward_secrecy && info.post_quantum == "no");
    assert!(info.family.contains("legacy"));
    let key = static_key(&fixed(9, EXPONENT_BYTES));
    let client = HandshakeKeys::new()
        .remote(PublicKey::from_bytes(KeyKind::Ffdhe3072, key.public()).unwrap());
    let server = HandshakeKeys::new().ffdh_key(key);
    let mut i = registry::initiator(FFDH_NK, &client).unwrap();
    let mut r = registry::responder(&[FFDH_NK], &server).unwrap();
    let mut sizes = Vec::new();
    while !(i.is_finished() && r.is_finished()) {
        let mut m = Vec::new();
        if i.wants_write() {
            i.write_message(b"", &mut m).unwrap();
            r.read_message(&m, &mut Vec::new()).unwrap();
        } else {
            r.write_message(b"", &mut m).unwrap();
            i.read_message(&m, &mut Vec::new()).unwrap();
        }
        sizes.push(m.len());
    }
    assert_eq!(sizes, info.message_sizes);
    assert_eq!(
        i.finish().unwrap().handshake_hash(),
        r.finish().unwrap().handshake_hash()
    );
}

fn is_invalid_key(e: &Error) -> bool {
    matches!(e, Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey))
}

/// Public values outside 1 < y < p − 1 are refused on both sides.
#[test]
fn invalid_public_values_are_refused() {
    let v = load();
    let m1 = unhex(&v.handshake[0].message);
    let m2 = unhex(&v.handshake[1].message);
    let hello = m1.len() - FFDH_BYTES - 16;
    // Above p (p has zero bits in its middle): 0xff...fe and 0xff...ff.
    let mut above_p = vec![0xffu8; FFDH_BYTES];
    above_p[FFDH_BYTES - 1] = 0xfe;
    let mut one = vec![0u8; FFDH_BYTES];
    one[FFDH_BYTES - 1] = 1;
    for bad in [
        vec![0u8; FFDH_BYTES],
        one,
        vec![0xffu8; FFDH_BYTES],
        above_p,
    ] {
        let key = static_key(&unhex(&v.responder_static_private));
        let mut r = responder(key.clone(), &unhex(&v.responder_random));
        let mut msg = m1.clone();
        msg[hello..hello + FFDH_BYTES].copy_from_slice(&bad);
        let e = r.read_message(&msg, &mut Vec::new()).unwrap_err();
        assert!(is_invalid_key(&e), "responder took a bad value: {e}");
        let mut i = initiator(key.public(), &unhex(&v.initiator_random));
        i.write_message(b"", &mut Vec::new()).unwrap();
        let mut msg = m2.clone();
        msg[..FFDH_BYTES].copy_from_slice(&bad);
        let e = i.read_message(&msg, &mut Vec::new()).unwrap_err();
        assert!(is_invalid_key(&e), "initiator took a bad value: {e}");
    }
    // A bad value as the responder's static key is refused when building.
    assert!(FfdhHandshake::initiator(
        FfdhConfig::new()
            .remote_key(PublicKey::from_bytes(KeyKind::Ffdhe3072, &[0u8; FFDH_BYTES]).unwrap())
    )
    .is_err());
}

/// Any flipped bit of either message fails; so do truncation, a wrong
/// responder key and another protocol's hello; a failed side stays dead.
#[test]
fn tampering_wrong_keys_and_truncation_fail() {
    let v = load();
    let key = static_key(&unhex(&v.responder_static_private));
    let m1 = unhex(&v.handshake[0].message);
    let m2 = unhex(&v.handshake[1].message);
    let hello = m1.len() - FFDH_BYTES - 16;
    for pos in [hello, hello + 100, hello + FFDH_BYTES - 1, m1.len() - 1] {
        let mut msg = m1.clone();
        msg[pos] ^= 0x04;
        let mut r = responder(key.clone(), &unhex(&v.responder_random));
        assert!(
            r.read_message(&msg, &mut Vec::new()).is_err(),
            "m1 byte {pos}"
        );
        assert!(
            r.write_message(b"", &mut Vec::new()).is_err(),
            "dead after failure"
        );
    }
    for pos in [0, 200, FFDH_BYTES - 1, m2.len() - 1] {
        let mut msg = m2.clone();
        msg[pos] ^= 0x04;
        let mut i = initiator(key.public(), &unhex(&v.initiator_random));
        i.write_message(b"", &mut Vec::new()).unwrap();
        assert!(
            i.read_message(&msg, &mut Vec::new()).is_err(),
            "m2 byte {pos}"
        );
    }
    // Truncated messages.
    let mut r = responder(key.clone(), &unhex(&v.responder_random));
    let e = r
        .read_message(&m1[..hello + FFDH_BYTES], &mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(e, Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength)),
        "{e}"
    );
    // The initiator expected another responder key: message 1 does not
    // open under the real one.
    let other = static_key(&fixed(7, EXPONENT_BYTES));
    let mut i = initiator(other.public(), &unhex(&v.initiator_random));
    let mut msg = Vec::new();
    i.write_message(b"", &mut msg).unwrap();
    let mut r = responder(key.clone(), &unhex(&v.responder_random));
    assert!(r.read_message(&msg, &mut Vec::new()).is_err());
    // Another protocol's hello is not allowed.
    let mut msg = m1.clone();
    let name_at = msg
        .windows(FFDH_NK.len())
        .position(|w| w == FFDH_NK.as_bytes())
        .unwrap();
    msg[name_at + 5] ^= 0x01;
    let mut r = responder(key, &unhex(&v.responder_random));
    assert!(r.read_message(&msg, &mut Vec::new()).is_err());
}

/// Forward secrecy (ffdh.md, Properties): the recorded session of the
/// vector, then the responder's static exponent leaks. The thief replays
/// the responder with it and fresh randomness: it reads message 1's
/// payload (encrypted to the static value only, as documented) but not the
/// session's records, which depend on the ephemeral-ephemeral DH.
#[test]
fn recorded_session_stays_secret_after_the_static_key_leaks() {
    let v = load();
    let key = static_key(&unhex(&v.responder_static_private));
    let m1 = unhex(&v.handshake[0].message);
    let record = unhex(&v.transport[0].message);
    let mut thief = FfdhHandshake::responder(FfdhConfig::new().local_key(key.clone())).unwrap();
    let mut payload = Vec::new();
    thief.read_message(&m1, &mut payload).unwrap();
    assert_eq!(payload, PAYLOADS[0]);
    thief.write_message(b"", &mut Vec::new()).unwrap();
    let mut stolen = Session::new(thief.finish().unwrap());
    assert!(stolen.open(&record, &mut Vec::new()).is_err());
    // Control: with the recorded ephemeral too, the same replay opens it.
    let mut r = responder(key, &unhex(&v.responder_random));
    r.read_message(&m1, &mut Vec::new()).unwrap();
    r.write_message(PAYLOADS[1], &mut Vec::new()).unwrap();
    let mut full = Session::new(r.finish().unwrap());
    let mut plain = Vec::new();
    full.open(&record, &mut plain).unwrap();
    assert_eq!(plain, TRANSPORT[0]);
}
