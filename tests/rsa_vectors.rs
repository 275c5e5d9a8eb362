//! Known-answer vectors for RSA key transport (feature `rsa-kt`; NOT
//! forward secret), from
//! `protocols/vectors/akex-rsa3072-oaep-kt-not-forward-secret-chachapoly-sha256.json`.
//!
//! RSA-OAEP encryption is randomized inside aws-lc (its seed never comes
//! from our RNG), so the initiator's first message cannot be reproduced
//! byte for byte. What is replayed:
//! - the **responder**, byte for byte: from the file's RSA key, randomness
//!   and recorded message 1, it must produce the recorded message 2,
//!   handshake hash, traffic secrets and transport messages;
//! - the **initiator**, by meaning: its message 1 must start with the
//!   recorded hello, have the recorded length, and its ciphertext must
//!   decrypt under the file's key to the secret its scripted RNG drew; it
//!   then completes against the responder.
//!
//! Generated once with
//! `cargo test --features rsa-kt --test rsa_vectors -- --ignored write_rsa_vector`.
#![cfg(feature = "rsa-kt")]

use std::path::PathBuf;

use akex::handshake::rsa::{RsaKeyPair, RsaKtConfig, RsaKtHandshake, RSA_KT};
use akex::handshake::{Handshake, Role};
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::hazmat::SharedRng;
use akex::session::{Record, RecordType, SessionConfig};
use akex::{Error, Session};
use serde::{Deserialize, Serialize};

/// Bytes of the RSA-3072 ciphertext.
const RSA_BYTES: usize = 384;

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct Message {
    sender: String,
    payload: String,
    message: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct RsaVector {
    protocol: String,
    description: String,
    /// The responder's RSA-3072 private key, PKCS#8 DER, hex.
    responder_rsa_pkcs8: String,
    /// The prologue both sides use, hex (mixed right after the name).
    prologue: String,
    /// The pre-master secret the initiator draws (32 bytes), hex.
    initiator_random: String,
    /// The responder's draws: the implicit-rejection fallback secret (32),
    /// then the server random (32), hex.
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
        .join(format!("{RSA_KT}.json"))
}

fn scripted(bytes: &[u8]) -> SharedRng {
    SharedRng::new(Box::new(ScriptedRng::new(bytes.to_vec())))
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

/// The vectors' prologue (not empty, so a checker that skips it fails).
const PROLOGUE: &[u8] = b"akex vectors prologue";

fn initiator(key: &RsaKeyPair, random: &[u8]) -> RsaKtHandshake {
    RsaKtHandshake::initiator(
        RsaKtConfig::new()
            .remote_key(key.public_key_der().to_vec())
            .prologue(PROLOGUE)
            .rng(scripted(random)),
    )
    .expect("initiator")
}

fn responder(key: RsaKeyPair, random: &[u8]) -> RsaKtHandshake {
    RsaKtHandshake::responder(
        RsaKtConfig::new()
            .local_key(key)
            .prologue(PROLOGUE)
            .rng(scripted(random)),
    )
    .expect("responder")
}

const PAYLOADS: [&[u8]; 2] = [b"", b"responder payload"];
const TRANSPORT: [(Role, &[u8]); 2] = [
    (
        Role::Initiator,
        b"first transport message, initiator to responder",
    ),
    (Role::Responder, b"and the answer"),
];

/// Seals `payload` as an akex data record and opens it on the other side.
fn transport_round(from: &mut Session, to: &mut Session, payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    from.seal_record(RecordType::Data, payload, &mut message)
        .expect("seal");
    let mut got = Vec::new();
    let record = to.open_record(&message, &mut got).expect("open");
    assert!(matches!(record, Record::Data(_)));
    assert_eq!(got, payload);
    message
}

#[test]
#[ignore = "writes the RSA vector file; run by hand"]
fn write_rsa_vector() {
    // Keep the checked-in key (a new one only if there is no file yet).
    let key = match std::fs::read_to_string(path()) {
        Ok(text) => {
            let old: serde_json::Value = serde_json::from_str(&text).expect("vector JSON");
            let der = unhex(old["responder_rsa_pkcs8"].as_str().expect("the key"));
            RsaKeyPair::from_pkcs8(&der).expect("RSA key")
        }
        Err(_) => RsaKeyPair::generate().expect("RSA key"),
    };
    let pkcs8 = key.to_pkcs8().expect("pkcs8").to_vec();
    let irand = [0x11u8; 32];
    let mut rrand = [0x22u8; 64];
    rrand[32..].fill(0x33);
    let mut i = initiator(&key, &irand);
    let mut r = responder(RsaKeyPair::from_pkcs8(&pkcs8).unwrap(), &rrand);
    let mut handshake = Vec::new();
    for (n, payload) in PAYLOADS.iter().enumerate() {
        let (s, rcv, sender): (&mut dyn Handshake, &mut dyn Handshake, _) = if n == 0 {
            (&mut i, &mut r, "initiator")
        } else {
            (&mut r, &mut i, "responder")
        };
        let mut message = Vec::new();
        s.write_message(payload, &mut message).unwrap();
        let mut got = Vec::new();
        rcv.read_message(&message, &mut got).unwrap();
        assert_eq!(&got, payload);
        handshake.push(Message {
            sender: sender.into(),
            payload: hex::encode(payload),
            message: hex::encode(message),
        });
    }
    let ie = Box::new(i).finish().unwrap();
    let re = Box::new(r).finish().unwrap();
    let handshake_hash = hex::encode(ie.handshake_hash());
    let i2r = hex::encode(ie.sending_secret().expose());
    let r2i = hex::encode(ie.receiving_secret().expose());
    let mut is = Session::with_config(ie, SessionConfig::new()).unwrap();
    let mut rs = Session::with_config(re, SessionConfig::new()).unwrap();
    let transport = TRANSPORT
        .iter()
        .map(|(role, payload)| {
            let message = match role {
                Role::Initiator => transport_round(&mut is, &mut rs, payload),
                Role::Responder => transport_round(&mut rs, &mut is, payload),
            };
            Message {
                sender: role.to_string(),
                payload: hex::encode(payload),
                message: hex::encode(message),
            }
        })
        .collect();
    let vector = RsaVector {
        protocol: RSA_KT.into(),
        description: "RSA key transport (NOT forward secret). The responder replays byte for \
                      byte; the initiator's OAEP ciphertext is randomized inside aws-lc, so \
                      its message 1 is checked by decryption, not bytes."
            .into(),
        responder_rsa_pkcs8: hex::encode(&pkcs8),
        prologue: hex::encode(PROLOGUE),
        initiator_random: hex::encode(irand),
        responder_random: hex::encode(rrand),
        handshake,
        handshake_hash,
        initiator_to_responder: i2r,
        responder_to_initiator: r2i,
        transport,
    };
    std::fs::write(
        path(),
        serde_json::to_string_pretty(&vector).unwrap() + "\n",
    )
    .unwrap();
}

fn load() -> RsaVector {
    let text = std::fs::read_to_string(path()).expect("the RSA vector file");
    serde_json::from_str(&text).expect("vector JSON")
}

/// The responder, byte for byte, from the recorded message 1.
#[test]
fn rsa_responder_replays_byte_for_byte() {
    let v = load();
    assert_eq!(v.protocol, RSA_KT);
    let key = RsaKeyPair::from_pkcs8(&unhex(&v.responder_rsa_pkcs8)).expect("file key");
    let mut r = responder(key, &unhex(&v.responder_random));
    let mut payload = Vec::new();
    r.read_message(&unhex(&v.handshake[0].message), &mut payload)
        .expect("recorded message 1");
    assert_eq!(hex::encode(&payload), v.handshake[0].payload);
    let mut message2 = Vec::new();
    r.write_message(&unhex(&v.handshake[1].payload), &mut message2)
        .unwrap();
    assert_eq!(hex::encode(&message2), v.handshake[1].message, "message 2");
    let re = Box::new(r).finish().unwrap();
    assert_eq!(hex::encode(re.handshake_hash()), v.handshake_hash);
    assert_eq!(
        hex::encode(re.receiving_secret().expose()),
        v.initiator_to_responder
    );
    assert_eq!(
        hex::encode(re.sending_secret().expose()),
        v.responder_to_initiator
    );
    let mut rs = Session::with_config(re, SessionConfig::new()).unwrap();
    let mut checked = 0;
    for m in &v.transport {
        if m.sender == "initiator" {
            let mut got = Vec::new();
            let record = rs.open_record(&unhex(&m.message), &mut got).unwrap();
            assert!(matches!(record, Record::Data(_)));
            assert_eq!(hex::encode(&got), m.payload);
        } else {
            let mut out = Vec::new();
            rs.seal_record(RecordType::Data, &unhex(&m.payload), &mut out)
                .unwrap();
            assert_eq!(hex::encode(&out), m.message, "responder transport");
        }
        checked += 1;
    }
    assert_eq!(checked, 2);
    println!("rsa-kt vectors: ran 1 (responder byte for byte, initiator by decryption), skipped 0");
}

/// The initiator: hello and length as recorded, the ciphertext decrypts to
/// the scripted secret, and the handshake completes against the responder.
#[test]
fn rsa_initiator_matches_by_decryption() {
    use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256};
    let v = load();
    let pkcs8 = unhex(&v.responder_rsa_pkcs8);
    let key = RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
    let irand = unhex(&v.initiator_random);
    let mut i = initiator(&key, &irand);
    let mut message1 = Vec::new();
    i.write_message(&unhex(&v.handshake[0].payload), &mut message1)
        .unwrap();
    let recorded = unhex(&v.handshake[0].message);
    assert_eq!(message1.len(), recorded.len());
    let hello_len = recorded.len() - RSA_BYTES - 16 - v.handshake[0].payload.len() / 2;
    assert_eq!(message1[..hello_len], recorded[..hello_len], "hello");
    let oaep =
        OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(&pkcs8).unwrap()).unwrap();
    let mut buf = [0u8; RSA_BYTES];
    let pms = oaep
        .decrypt(
            &OAEP_SHA256_MGF1SHA256,
            &message1[hello_len..hello_len + RSA_BYTES],
            &mut buf,
            None,
        )
        .expect("the initiator's ciphertext decrypts under the file's key");
    assert_eq!(pms, &irand[..], "the secret is the scripted randomness");
    // Fresh randomness inside OAEP: two runs never share a ciphertext.
    let mut again = Vec::new();
    initiator(&key, &irand)
        .write_message(b"", &mut again)
        .unwrap();
    assert_ne!(again, message1);

    let mut r = responder(key, &unhex(&v.responder_random));
    r.read_message(&message1, &mut Vec::new()).unwrap();
    let mut message2 = Vec::new();
    r.write_message(b"", &mut message2).unwrap();
    i.read_message(&message2, &mut Vec::new()).unwrap();
    let (ie, re) = (Box::new(i).finish().unwrap(), Box::new(r).finish().unwrap());
    assert_eq!(ie.handshake_hash(), re.handshake_hash());
    assert_eq!(ie.sending_secret().expose(), re.receiving_secret().expose());
}

/// A tampered recorded message 1 fails on the responder with a typed error
/// at every ciphertext region (implicit rejection shows only as the tag).
#[test]
fn rsa_recorded_message_tampering_fails() {
    let v = load();
    let recorded = unhex(&v.handshake[0].message);
    let mut tried = 0;
    for at in [
        recorded.len() - RSA_BYTES - 16,
        recorded.len() - 20,
        recorded.len() - 1,
    ] {
        let key = RsaKeyPair::from_pkcs8(&unhex(&v.responder_rsa_pkcs8)).unwrap();
        let mut r = responder(key, &unhex(&v.responder_random));
        let mut m = recorded.clone();
        m[at] ^= 0x01;
        let err = r.read_message(&m, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::PeerMisbehaved(_)), "{err:?}");
        tried += 1;
    }
    assert_eq!(tried, 3);
}
