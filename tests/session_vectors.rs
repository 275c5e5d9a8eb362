//! The session layer's known-answer vectors: protocols/vectors/session.json
//! (key schedule and scripted runs, every record's plaintext and wire
//! bytes) replayed byte for byte, and the ignored test that regenerates it.

mod session_support;

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, Secret};
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::session::{ControlType, RecordType, Session};
use akex::{Established, Role};
use session_support::*;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/protocols/vectors/session.json"
);

/// How a scripted run's ratchet is authenticated.
#[derive(Clone, Copy)]
enum Auth {
    /// No long-term keys (sessions from raw secrets, RSA key transport).
    None,
    /// X25519 static keys (hybrid, PQ-authenticated).
    StaticDh,
    /// Ed25519 signatures (SIGMA).
    Signature,
}

const INITIATOR_STATIC: [u8; 32] = [0x31; 32];
const RESPONDER_STATIC: [u8; 32] = [0x32; 32];
const INITIATOR_ED25519: [u8; 32] = [0x41; 32];
const RESPONDER_ED25519: [u8; 32] = [0x42; 32];

/// A session pair with i2r = 07…07, r2i = 08…08, root = 09…09, handshake
/// hash 07…07, and the ratchet authenticated as `auth` says.
fn vector_pair(aead: AeadAlgorithm, hybrid: bool, auth: Auth) -> (Session, Session) {
    use akex::keys::{SigningKey, StaticSecret};
    let with_auth = |e: Established, role: Role| -> Established {
        let (mine, theirs, my_ed, their_ed) = match role {
            Role::Initiator => (
                INITIATOR_STATIC,
                RESPONDER_STATIC,
                INITIATOR_ED25519,
                RESPONDER_ED25519,
            ),
            Role::Responder => (
                RESPONDER_STATIC,
                INITIATOR_STATIC,
                RESPONDER_ED25519,
                INITIATOR_ED25519,
            ),
        };
        match auth {
            Auth::None => e,
            Auth::StaticDh => {
                let peer = *StaticSecret::from_private(Secret::new(theirs)).public();
                e.with_ratchet_static_keys(
                    Some(StaticSecret::from_private(Secret::new(mine))),
                    Some(peer),
                )
            }
            Auth::Signature => {
                let peer = *SigningKey::from_seed(Secret::new(their_ed)).public();
                e.with_ratchet_signing_keys(SigningKey::from_seed(Secret::new(my_ed)), peer)
            }
        }
    };
    let config = never().hybrid_ratchet(hybrid);
    let a = with_auth(established(Role::Initiator, aead, 7, true), Role::Initiator);
    let b = with_auth(established(Role::Responder, aead, 7, true), Role::Responder);
    (
        Session::with_config(a, config.clone()).unwrap(),
        Session::with_config(b, config).unwrap(),
    )
}

/// The randomness one side draws for a ratchet step: its X25519 key (32
/// bytes), then (hybrid) the ML-KEM key-generation seed (64, the step's
/// initiator) or the encapsulation randomness (32, its responder).
fn step_rng(byte: u8, hybrid: bool, initiator: bool) -> Vec<u8> {
    let mut v = vec![byte; 32];
    if hybrid {
        v.extend(vec![byte.wrapping_add(1); if initiator { 64 } else { 32 }]);
    }
    v
}

/// A scripted run: every record both sides send, its plaintext (type byte
/// and body) and its wire bytes, in order.
fn scripted_run(aead: AeadAlgorithm, hybrid: bool, auth: Auth) -> serde_json::Value {
    use serde_json::json;
    let (mut a, mut b) = vector_pair(aead, hybrid, auth);
    let mut records = Vec::new();
    let mut rngs = Vec::new();
    // Opens `wire` at `to`, records the plaintext.
    fn record(
        records: &mut Vec<serde_json::Value>,
        who: &str,
        what: &str,
        wire: Vec<u8>,
        to: &mut Session,
    ) {
        let mut buf = wire.clone();
        to.open_record_in_place(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let plaintext = &buf[..wire.len() - 16];
        records.push(json!({
            "from": who,
            "record": what,
            "plaintext": hex::encode(plaintext),
            "wire": hex::encode(&wire),
        }));
    }
    let data = |s: &mut Session, text: &[u8]| {
        let mut w = Vec::new();
        s.seal_record(RecordType::Data, text, &mut w).unwrap();
        w
    };
    let w = data(&mut a, b"hello");
    record(&mut records, "initiator", "data", w, &mut b);
    let mut w = Vec::new();
    a.send_key_update(&mut w).unwrap();
    record(&mut records, "initiator", "key_update", w, &mut b);
    let w = data(&mut a, b"epoch 1");
    record(&mut records, "initiator", "data", w, &mut b);
    let mut w = Vec::new();
    b.seal_control(ControlType::RotationAnnouncement, b"[]", &mut w)
        .unwrap();
    record(&mut records, "responder", "control", w, &mut a);

    // Two ratchet steps: the handshake initiator starts the first, the
    // handshake responder the second (directions stay the handshake's).
    for (n, starter) in [(1u8, Role::Initiator), (2, Role::Responder)] {
        let (s, r, s_name, r_name) = match starter {
            Role::Initiator => (&mut a, &mut b, "initiator", "responder"),
            Role::Responder => (&mut b, &mut a, "responder", "initiator"),
        };
        let s_rng = step_rng(0x10 * n + 1, hybrid, true);
        let r_rng = step_rng(0x10 * n + 2, hybrid, false);
        rngs.push(json!({ "step": n, "started_by": s_name,
            "starter_rng": hex::encode(&s_rng), "responder_rng": hex::encode(&r_rng) }));
        let mut w = Vec::new();
        assert!(s
            .start_ratchet(&mut ScriptedRng::new(s_rng), &mut w)
            .unwrap());
        record(&mut records, s_name, "ratchet_init", w, r);
        let mut w = Vec::new();
        assert!(r
            .poll_control(Duration::ZERO, &mut ScriptedRng::new(r_rng), &mut w)
            .unwrap());
        record(&mut records, r_name, "ratchet_response", w, s);
        let mut w = Vec::new();
        assert!(s
            .poll_control(Duration::ZERO, &mut ScriptedRng::new(Vec::new()), &mut w)
            .unwrap());
        record(&mut records, s_name, "ratchet_finish", w, r);
        let w = data(s, format!("after ratchet {n}").as_bytes());
        record(&mut records, s_name, "data", w, r);
        let w = data(r, format!("reply {n}").as_bytes());
        record(&mut records, r_name, "data", w, s);
    }
    assert_eq!((a.ratchet_count(), b.ratchet_count()), (2, 2));
    // Close ends one direction: the responder may still send, then closes.
    let mut w = Vec::new();
    a.seal_close(&mut w).unwrap();
    record(&mut records, "initiator", "close", w, &mut b);
    let w = data(&mut b, b"after the initiator's close");
    record(&mut records, "responder", "data", w, &mut a);
    let mut w = Vec::new();
    b.seal_close(&mut w).unwrap();
    record(&mut records, "responder", "close", w, &mut a);
    json!({
        "aead": format!("{aead:?}"),
        "hybrid": hybrid,
        "auth": match auth { Auth::None => "none", Auth::StaticDh => "static_dh", Auth::Signature => "signature" },
        "handshake_hash": hex::encode([7u8; 32]),
        "initiator_to_responder": hex::encode([7u8; 32]),
        "responder_to_initiator": hex::encode([8u8; 32]),
        "root": hex::encode([9u8; 32]),
        "initiator_static": hex::encode(INITIATOR_STATIC),
        "responder_static": hex::encode(RESPONDER_STATIC),
        "initiator_ed25519_seed": hex::encode(INITIATOR_ED25519),
        "responder_ed25519_seed": hex::encode(RESPONDER_ED25519),
        "ratchet_randomness": rngs,
        "records": records,
    })
}

fn schedule_vectors() -> serde_json::Value {
    use akex::hazmat::schedule;
    use serde_json::json;
    let mut chain = Vec::new();
    let mut record_keys = Vec::new();
    let mut s = Secret::new([7u8; 32]);
    record_keys.push(hex::encode(schedule::record_key(&s).expose()));
    for _ in 0..3 {
        s = schedule::next_traffic_secret(&s);
        chain.push(hex::encode(s.expose()));
        record_keys.push(hex::encode(schedule::record_key(&s).expose()));
    }
    let root = Secret::new([9u8; 32]);
    let th = [0x7au8; 32];
    let ikm = [
        Secret::new([0xd4u8; 32]),
        Secret::new([0x4bu8; 32]),
        Secret::new([0xe5u8; 32]),
        Secret::new([0x5eu8; 32]),
    ];
    let out = |n: usize| {
        let k = schedule::ratchet(&root, &ikm[..n].iter().collect::<Vec<_>>(), &th);
        json!({
            "secrets": ikm[..n].iter().map(|s| hex::encode(s.expose())).collect::<Vec<_>>(),
            "root": hex::encode(k.root.expose()),
            "initiator_to_responder": hex::encode(k.initiator_to_responder.expose()),
            "responder_to_initiator": hex::encode(k.responder_to_initiator.expose()),
            "confirm_response": hex::encode(k.confirm_response.expose()),
            "confirm_finish": hex::encode(k.confirm_finish.expose()),
        })
    };
    json!({
        "key_update": { "start": hex::encode([7u8; 32]), "label": "akex key update", "chain": chain },
        "record_key": { "label": "akex record key", "keys": record_keys },
        "ratchet": {
            "label": "akex ratchet",
            "root": hex::encode(root.expose()),
            "transcript": hex::encode(th),
            "outputs": [out(1), out(2), out(4)],
        }
    })
}

fn all_vectors() -> serde_json::Value {
    serde_json::json!({
        "description": "akex session layer, wire version 2: key schedule and scripted runs (every record's plaintext and wire bytes); see protocols/session.md",
        "schedule": schedule_vectors(),
        "runs": [
            scripted_run(AeadAlgorithm::ChaChaPoly, false, Auth::None),
            scripted_run(AeadAlgorithm::AesGcm, false, Auth::StaticDh),
            scripted_run(AeadAlgorithm::ChaChaPoly, true, Auth::StaticDh),
            scripted_run(AeadAlgorithm::ChaChaPoly, false, Auth::Signature),
        ],
    })
}

#[test]
#[ignore = "writes protocols/vectors/session.json; run once when the format changes"]
fn generate_session_vectors() {
    let text = serde_json::to_string_pretty(&all_vectors()).unwrap();
    std::fs::write(VECTORS, text + "\n").unwrap();
}

#[test]
fn session_vectors_replay_byte_for_byte() {
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(VECTORS).expect("vector file")).unwrap();
    let now = all_vectors();
    assert_eq!(stored["schedule"], now["schedule"]);
    assert_eq!(stored["runs"], now["runs"]);
}
