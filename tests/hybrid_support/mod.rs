//! Shared harness for tests/hybrid.rs, tests/pq.rs and
//! tests/hybrid_noise_hfs.rs: builds both sides of a hybrid or
//! PQ-authenticated handshake, runs it, and runs it with one message
//! altered.

#![allow(dead_code)]

use akex::crypto::Secret;
use akex::error::{Error, PeerMisbehaved};
use akex::handshake::hybrid::{self, HybridConfig, HybridHandshake};
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::hazmat::SharedRng;
use akex::keys::MlKem768KeyPair;
use akex::keys::StaticSecret;
use akex::{Established, Handshake, Role, Session};

/// Long-term keys of one party.
#[derive(Clone)]
pub struct Party {
    pub x: StaticSecret,
    pub kem: MlKem768KeyPair,
}

impl Party {
    pub fn new(tag: u8) -> Self {
        Party {
            x: StaticSecret::from_private(Secret::new([tag; 32])),
            kem: MlKem768KeyPair::from_seed(&Secret::new([tag; 64])),
        }
    }

    /// The X25519 static key (hybrid protocols).
    pub fn x_key(&self) -> akex::PublicKey {
        akex::PublicKey::x25519(*self.x.public())
    }

    /// X25519 ‖ ML-KEM-768 (PQ-authenticated protocols).
    pub fn pq_key(&self) -> akex::PublicKey {
        pq_key(self.x.public(), self.kem.encapsulation_key())
    }
}

/// An X25519 ‖ ML-KEM-768 public key from its halves.
pub fn pq_key(x: &[u8], ek: &[u8]) -> akex::PublicKey {
    let mut bytes = x.to_vec();
    bytes.extend_from_slice(ek);
    akex::PublicKey::from_bytes(akex::KeyKind::X25519MlKem768, &bytes).expect("32 + 1184 bytes")
}

fn rng(tag: u8) -> SharedRng {
    // Enough scripted bytes for any handshake (deterministic runs).
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(tag))
        .collect();
    SharedRng::new(Box::new(ScriptedRng::new(bytes)))
}

/// Builds both sides of `name` with these parties; `seed` varies the
/// ephemeral randomness (two seeds = two independent sessions).
pub fn pair(
    name: &str,
    initiator: &Party,
    responder: &Party,
    seed: u8,
) -> (HybridHandshake, HybridHandshake) {
    let info = hybrid::protocol_info(name).expect("known protocol");
    let mut ic = HybridConfig::new(name).unwrap().rng(rng(seed));
    let rc = HybridConfig::new(name)
        .unwrap()
        .rng(rng(seed.wrapping_add(100)))
        .local_static(responder.x.clone())
        .local_kem(responder.kem.clone());
    if info.initiator_needs_responder_key {
        ic = ic.remote(if info.pq_authentication {
            responder.pq_key()
        } else {
            responder.x_key()
        });
    }
    if info.authenticates_initiator {
        ic = ic
            .local_static(initiator.x.clone())
            .local_kem(initiator.kem.clone());
    }
    (
        HybridHandshake::initiator(ic).unwrap(),
        HybridHandshake::responder(rc).unwrap(),
    )
}

/// The messages of one run, in order.
pub type Transcript = Vec<Vec<u8>>;

/// Runs to completion; payloads are `"msg<i>"`.
pub fn run(
    mut i: HybridHandshake,
    mut r: HybridHandshake,
) -> Result<(Established, Established, Transcript), (usize, Role, Error)> {
    let mut transcript = Vec::new();
    let mut k = 0;
    while !(i.is_finished() && r.is_finished()) {
        let (w, rd): (&mut HybridHandshake, &mut HybridHandshake) = if i.wants_write() {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let mut msg = Vec::new();
        w.write_message(format!("msg{k}").as_bytes(), &mut msg)
            .map_err(|e| (k, w.role(), e))?;
        let mut payload = Vec::new();
        rd.read_message(&msg, &mut payload)
            .map_err(|e| (k, rd.role(), e))?;
        assert_eq!(payload, format!("msg{k}").as_bytes());
        transcript.push(msg);
        k += 1;
    }
    let ie = Box::new(i).finish().unwrap();
    let re = Box::new(r).finish().unwrap();
    Ok((ie, re, transcript))
}

/// Runs with message `index` passed through `alter`; returns the first
/// error and which side reported it.
pub fn run_altered(
    mut i: HybridHandshake,
    mut r: HybridHandshake,
    index: usize,
    alter: &mut dyn FnMut(&mut Vec<u8>),
) -> Result<(), (Role, Error)> {
    let mut k = 0;
    while !(i.is_finished() && r.is_finished()) {
        let (w, rd): (&mut HybridHandshake, &mut HybridHandshake) = if i.wants_write() {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let mut msg = Vec::new();
        w.write_message(b"payload", &mut msg)
            .map_err(|e| (w.role(), e))?;
        if k == index {
            alter(&mut msg);
        }
        let mut payload = Vec::new();
        rd.read_message(&msg, &mut payload)
            .map_err(|e| (rd.role(), e))?;
        k += 1;
    }
    Ok(())
}

/// Is this the error a tampered message may cause?
/// (A rewritten hello is refused by the responder before any crypto:
/// not akex mode, unsupported version, malformed, or another protocol.)
pub fn is_tamper_error(e: &Error) -> bool {
    matches!(
        e,
        Error::PeerMisbehaved(
            PeerMisbehaved::DecryptFailed
                | PeerMisbehaved::InvalidPublicKey
                | PeerMisbehaved::BadMessageLength
        ) | Error::PeerIncompatible(_)
    ) || format!("{e:?}").contains("MalformedHello")
}

/// Checks that both sides agree and a transport message goes through.
pub fn check_established(i: Established, r: Established) {
    assert_eq!(i.handshake_hash(), r.handshake_hash());
    assert_eq!(i.sending_secret(), r.receiving_secret());
    assert_eq!(i.receiving_secret(), r.sending_secret());
    assert_ne!(i.sending_secret(), i.receiving_secret());
    let mut si = Session::new(i);
    let mut sr = Session::new(r);
    let mut ct = Vec::new();
    si.seal(b"transport", &mut ct).unwrap();
    let mut pt = Vec::new();
    sr.open(&ct, &mut pt).unwrap();
    assert_eq!(pt, b"transport");
}

/// Tampers with first, middle and last byte of every field of every
/// message and asserts a typed failure, never a completed handshake.
pub fn tamper_every_field(name: &str) -> usize {
    let a = Party::new(1);
    let b = Party::new(2);
    let layout = hybrid::message_layout(name).unwrap();
    let mut cases = 0;
    for (index, fields) in layout.iter().enumerate() {
        let mut offset = 0;
        for (field, len) in fields {
            // The payload field is "payload" (7 bytes) plus its tag.
            let len = if *field == "payload" { len + 7 } else { *len };
            let positions = [offset, offset + len / 2, offset + len - 1];
            for pos in positions {
                let (i, r) = pair(name, &a, &b, 7);
                let result = run_altered(i, r, index, &mut |m| m[pos] ^= 0x01);
                let (side, err) = result
                    .err()
                    .unwrap_or_else(|| panic!("{name}: msg {index} {field} byte {pos} undetected"));
                assert!(
                    is_tamper_error(&err),
                    "{name}: msg {index} {field} byte {pos}: {side} got {err:?}"
                );
                cases += 1;
            }
            offset += len;
        }
        // Truncation and extension of the whole message.
        for alter in [
            &mut (|m: &mut Vec<u8>| {
                m.pop();
            }) as &mut dyn FnMut(&mut Vec<u8>),
            &mut |m: &mut Vec<u8>| m.push(0),
            &mut |m: &mut Vec<u8>| m.truncate(10),
            &mut |m: &mut Vec<u8>| m.clear(),
        ] {
            let (i, r) = pair(name, &a, &b, 7);
            let (_, err) = run_altered(i, r, index, alter).unwrap_err();
            assert!(is_tamper_error(&err), "{name}: msg {index}: {err:?}");
            cases += 1;
        }
    }
    cases
}
