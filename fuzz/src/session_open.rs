//! Fuzz target `session_open`: transport records for a responder `Session`
//! whose keys come from a real in-memory handshake, run once per protocol
//! and reused for every input.

use std::sync::OnceLock;

use akex::crypto::Secret;
use akex::handshake::TrafficSecret;
use akex::{Established, Handshake, Role, Session};

use super::checks::open_records;
use super::parties::{initiator, pump, responder};
use super::{push_frame, Frames, Progress, Seed};

/// The protocols of the in-memory sessions; the selector byte picks one.
pub const SESSION_PROTOCOLS: [&str; 2] = [
    "Noise_XX_25519_ChaChaPoly_BLAKE2s",
    "Noise_XX_25519_AESGCM_BLAKE2s",
];

/// The results of a real handshake, kept so each fuzz input gets a fresh
/// `Session` without paying for the handshake again.
struct SessionKeys {
    protocol: String,
    handshake_hash: Vec<u8>,
    initiator_static: akex::PublicKey,
    responder_static: akex::PublicKey,
    aead: akex::crypto::AeadAlgorithm,
    i2r: Secret<32>,
    r2i: Secret<32>,
}

impl SessionKeys {
    fn establish(protocol: &str) -> Self {
        let mut alice = initiator(protocol);
        let mut bob = responder(protocol);
        pump(&mut alice, &mut bob);
        let alice = alice.finish().expect("in-memory handshake");
        let bob = bob.finish().expect("in-memory handshake");
        SessionKeys {
            protocol: protocol.to_string(),
            handshake_hash: alice.handshake_hash().to_vec(),
            initiator_static: bob.remote_static().expect("XX sends s").clone(),
            responder_static: alice.remote_static().expect("XX sends s").clone(),
            aead: alice.aead(),
            i2r: Secret::new(*alice.sending_secret().expose()),
            r2i: Secret::new(*alice.receiving_secret().expose()),
        }
    }

    fn session(&self, role: Role) -> Session {
        let remote = match role {
            Role::Initiator => &self.responder_static,
            Role::Responder => &self.initiator_static,
        };
        Session::new(Established::new(
            self.protocol.clone(),
            role,
            self.handshake_hash.clone(),
            Some(remote.clone()),
            self.aead,
            TrafficSecret::new(self.i2r.clone()),
            TrafficSecret::new(self.r2i.clone()),
        ))
    }
}

fn session_keys() -> &'static [SessionKeys] {
    static KEYS: OnceLock<Vec<SessionKeys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        SESSION_PROTOCOLS
            .iter()
            .map(|p| SessionKeys::establish(p))
            .collect()
    })
}

/// A fresh pair of sessions (initiator, responder) from the fixed handshake
/// of `SESSION_PROTOCOLS[index]`.
pub fn session_pair(index: usize) -> (Session, Session) {
    let keys = &session_keys()[index];
    (keys.session(Role::Initiator), keys.session(Role::Responder))
}

/// Fuzz target `session_open`: every frame goes to `Session::open_in_place`
/// of a responder session established in memory.
pub fn session_open(data: &[u8]) -> Progress {
    let Some((&selector, rest)) = data.split_first() else {
        return Progress::default();
    };
    let (_, mut session) = session_pair(usize::from(selector) % SESSION_PROTOCOLS.len());
    Progress {
        answered: true,
        finished: true,
        records: open_records(&mut session, Frames::new(rest)),
    }
}

/// Records for `session_open`: valid ones in order, a replay and a forgery.
pub fn session_open_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (selector, protocol) in SESSION_PROTOCOLS.iter().enumerate() {
        let short = if protocol.contains("ChaChaPoly") {
            "chachapoly"
        } else {
            "aesgcm"
        };
        let (mut alice, _) = session_pair(selector);
        let records: Vec<Vec<u8>> = [&b""[..], b"first", &[0xa5; 300]]
            .iter()
            .map(|plain| {
                let mut record = Vec::new();
                alice.seal(plain, &mut record).expect("seal");
                record
            })
            .collect();

        let mut in_order = vec![selector as u8];
        for record in &records {
            push_frame(&mut in_order, record);
        }
        let mut replayed = vec![selector as u8];
        push_frame(&mut replayed, &records[0]);
        push_frame(&mut replayed, &records[0]);
        let mut forged = vec![selector as u8];
        let mut bad = records[1].clone();
        bad[0] ^= 1;
        push_frame(&mut forged, &bad);
        push_frame(&mut forged, &records[0]);

        let done = |records| Progress {
            answered: true,
            finished: true,
            records,
        };
        let name = |kind| match (short, kind) {
            ("chachapoly", 0) => "chachapoly-in-order",
            ("chachapoly", 1) => "chachapoly-replayed",
            ("chachapoly", _) => "chachapoly-forged",
            (_, 0) => "aesgcm-in-order",
            (_, 1) => "aesgcm-replayed",
            _ => "aesgcm-forged",
        };
        seeds.push(Seed {
            name: name(0),
            data: in_order,
            expect: done(3),
        });
        seeds.push(Seed {
            name: name(1),
            data: replayed,
            expect: done(1),
        });
        // The forgery fails and leaves the nonce at 0, so record 0 still opens.
        seeds.push(Seed {
            name: name(2),
            data: forged,
            expect: done(1),
        });
    }
    seeds
}
