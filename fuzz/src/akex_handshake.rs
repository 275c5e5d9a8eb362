//! Fuzz targets `akex_responder` and `akex_initiator`: the akex-mode
//! handshakes (SIGMA on Ed25519 and on P-256, hybrid XX/IK/NK, PQ XX/IK)
//! with fixed keys and scripted randomness, so seeds replay byte for byte.
//! The P-256 identities sign with RFC 6979 nonces (the `p256` crate), as
//! the known-answer vectors do: aws-lc's ECDSA nonces are random, and a
//! responder's second message must come out the same every time for an
//! initiator's third message from a seed to verify.

use std::sync::{Arc, OnceLock};

use akex::crypto::Secret;
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::hazmat::SharedRng;
use akex::keys::StaticSecret;
use akex::{Handshake, Session};

use super::checks::drive;
use super::{leak, push_frame, Frames, Progress, Seed};

/// The akex-mode protocols the negotiating responder allows; the selector
/// byte of `akex_initiator` picks one.
pub const AKEX_PROTOCOLS: [&str; 7] = [
    akex::handshake::sigma::SIGMA_CHACHAPOLY,
    akex::handshake::hybrid::HYBRID_XX,
    akex::handshake::hybrid::HYBRID_IK,
    akex::handshake::hybrid::HYBRID_NK,
    akex::handshake::pq::PQ_XX,
    akex::handshake::pq::PQ_IK,
    akex::handshake::sigma::SIGMA_P256_AESGCM,
];

/// An ECDSA P-256 identity that signs with RFC 6979 nonces.
struct Rfc6979Signer {
    key: p256::ecdsa::SigningKey,
    public: Vec<u8>,
}

impl Rfc6979Signer {
    fn new(scalar: [u8; 32]) -> Self {
        let key = p256::ecdsa::SigningKey::from_slice(&scalar).expect("a scalar below n");
        let public = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        Rfc6979Signer { key, public }
    }
}

impl std::fmt::Debug for Rfc6979Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rfc6979Signer")
    }
}

impl akex::keys::Signer for Rfc6979Signer {
    fn scheme(&self) -> akex::keys::SignatureScheme {
        akex::keys::SignatureScheme::EcdsaP256Sha256
    }
    fn public_key(&self) -> &[u8] {
        &self.public
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, akex::Error> {
        use p256::ecdsa::signature::Signer as _;
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        Ok(signature.to_bytes().to_vec())
    }
}

/// Fixed long-term keys of one akex party.
struct AkexParty {
    x25519: StaticSecret,
    ed25519: akex::keys::SigningKey,
    kem: akex::keys::MlKem768KeyPair,
    p256: Arc<Rfc6979Signer>,
}

fn akex_party(tag: u8) -> &'static AkexParty {
    static PARTIES: OnceLock<[AkexParty; 2]> = OnceLock::new();
    let make = |tag: u8| AkexParty {
        x25519: StaticSecret::from_private(Secret::new([tag; 32])),
        ed25519: akex::keys::SigningKey::from_seed(Secret::new([tag; 32])),
        kem: akex::keys::MlKem768KeyPair::from_seed(&Secret::new([tag; 64])),
        p256: Arc::new(Rfc6979Signer::new([tag; 32])),
    };
    let parties = PARTIES.get_or_init(|| [make(0x49), make(0x52)]);
    if tag == 0x49 {
        &parties[0]
    } else {
        &parties[1]
    }
}

/// Scripted randomness, plenty for any handshake.
fn akex_rng(tag: u8) -> SharedRng {
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(tag))
        .collect();
    SharedRng::new(Box::new(ScriptedRng::new(bytes)))
}

fn akex_responder_handshake() -> Box<dyn Handshake> {
    let me = akex_party(0x52);
    let keys = akex::HandshakeKeys::new()
        .static_key(me.x25519.clone())
        .signing_key(me.ed25519.clone())
        .signer(me.p256.clone())
        .kem_key(me.kem.clone())
        .rng(akex_rng(0x72));
    akex::handshake::registry::responder(&AKEX_PROTOCOLS, &keys)
        .expect("the fixed responder configuration is valid")
}

fn akex_initiator_handshake(name: &str) -> Box<dyn Handshake> {
    let me = akex_party(0x49);
    let peer = akex_party(0x52);
    let remote = if name == akex::handshake::sigma::SIGMA_CHACHAPOLY {
        Some(akex::PublicKey::ed25519(*peer.ed25519.public()))
    } else if name == akex::handshake::sigma::SIGMA_P256_AESGCM {
        Some(akex::PublicKey::from_bytes(akex::KeyKind::P256, &peer.p256.public).expect("a point"))
    } else if name == akex::handshake::pq::PQ_IK {
        let mut r = peer.x25519.public().to_vec();
        r.extend_from_slice(peer.kem.encapsulation_key());
        Some(akex::PublicKey::from_bytes(akex::KeyKind::X25519MlKem768, &r).expect("1216 bytes"))
    } else if name.contains("-ik-") || name.contains("-nk-") {
        Some(akex::PublicKey::x25519(*peer.x25519.public()))
    } else {
        None
    };
    let mut keys = akex::HandshakeKeys::new()
        .static_key(me.x25519.clone())
        .signing_key(me.ed25519.clone())
        .signer(me.p256.clone())
        .kem_key(me.kem.clone())
        .rng(akex_rng(0x65));
    if let Some(remote) = remote {
        keys = keys.remote(remote);
    }
    akex::handshake::registry::initiator(name, &keys)
        .expect("the fixed initiator configuration is valid")
}

/// Fuzz target `akex_responder`: the negotiating responder allowing every
/// protocol in [`AKEX_PROTOCOLS`] reads frame 1 as message 1 (hello
/// included), answers, reads the next frames as later messages, and once
/// finished opens the rest as transport records. The selector byte is
/// unused (kept for the common layout).
pub fn akex_responder(data: &[u8]) -> Progress {
    let mut progress = Progress::default();
    let Some((_, rest)) = data.split_first() else {
        return progress;
    };
    drive(akex_responder_handshake(), Frames::new(rest), &mut progress);
    progress
}

/// Fuzz target `akex_initiator`: the initiator of
/// `AKEX_PROTOCOLS[selector % 7]` writes its (valid, fixed) message 1, then
/// reads the frames as the responder's replies.
pub fn akex_initiator(data: &[u8]) -> Progress {
    let mut progress = Progress::default();
    let Some((&selector, rest)) = data.split_first() else {
        return progress;
    };
    let name = AKEX_PROTOCOLS[usize::from(selector) % AKEX_PROTOCOLS.len()];
    let mut hs = akex_initiator_handshake(name);
    let mut first = Vec::new();
    hs.write_message(b"", &mut first)
        .expect("the fixed first message");
    drive(hs, Frames::new(rest), &mut progress);
    progress
}

/// Runs a full in-memory handshake of `name`; returns every message in
/// order and a record sealed by the initiator.
fn akex_transcript(name: &str) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut alice = akex_initiator_handshake(name);
    let mut bob = akex_responder_handshake();
    let mut messages = Vec::new();
    let mut payload = Vec::new();
    while !(alice.is_finished() && bob.is_finished()) {
        let (from, to) = if alice.wants_write() {
            (&mut alice, &mut bob)
        } else {
            (&mut bob, &mut alice)
        };
        let mut message = Vec::new();
        from.write_message(b"", &mut message)
            .expect("in-memory handshake");
        to.read_message(&message, &mut payload)
            .expect("in-memory handshake");
        messages.push(message);
    }
    let mut session = Session::new(alice.finish().expect("in-memory handshake"));
    let mut record = Vec::new();
    session.seal(b"hello", &mut record).expect("seal");
    (messages, record)
}

fn akex_short(name: &str) -> &'static str {
    match name {
        akex::handshake::sigma::SIGMA_CHACHAPOLY => "sigma",
        akex::handshake::hybrid::HYBRID_XX => "hybrid-xx",
        akex::handshake::hybrid::HYBRID_IK => "hybrid-ik",
        akex::handshake::hybrid::HYBRID_NK => "hybrid-nk",
        akex::handshake::pq::PQ_XX => "pq-xx",
        akex::handshake::sigma::SIGMA_P256_AESGCM => "sigma-p256",
        _ => "pq-ik",
    }
}

/// Seeds for `akex_responder`: each protocol's valid message 1, and each
/// protocol's whole initiator side with one record.
pub fn akex_responder_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for name in AKEX_PROTOCOLS {
        let (messages, record) = akex_transcript(name);
        let mut first = vec![0];
        push_frame(&mut first, &messages[0]);
        let two_messages = messages.len() == 2;
        seeds.push(Seed {
            name: leak(format!("{}-msg1", akex_short(name))),
            data: first,
            expect: Progress {
                answered: true,
                finished: two_messages,
                records: 0,
            },
        });
        let mut full = vec![0];
        for message in messages.iter().step_by(2) {
            push_frame(&mut full, message);
        }
        push_frame(&mut full, &record);
        seeds.push(Seed {
            name: leak(format!("{}-full", akex_short(name))),
            data: full,
            expect: Progress {
                answered: true,
                finished: true,
                records: 1,
            },
        });
    }
    seeds
}

/// Seeds for `akex_initiator`: each protocol's valid responder replies.
pub fn akex_initiator_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (selector, name) in AKEX_PROTOCOLS.iter().enumerate() {
        let (messages, _) = akex_transcript(name);
        let mut data = vec![selector as u8];
        for message in messages.iter().skip(1).step_by(2) {
            push_frame(&mut data, message);
        }
        seeds.push(Seed {
            name: leak(format!("{}-replies", akex_short(name))),
            data,
            expect: Progress {
                answered: messages.len() > 2,
                finished: true,
                records: 0,
            },
        });
    }
    seeds
}
