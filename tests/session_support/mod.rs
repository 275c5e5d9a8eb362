//! Shared by the session-layer tests (tests/session_noise_mode.rs,
//! tests/session_akex_records.rs, tests/session_vectors.rs,
//! tests/session_post_compromise.rs): sessions made from fixed secrets in
//! either record mode, and moving records between two sessions.

#![allow(dead_code)]

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::handshake::TrafficSecret;
use akex::session::{Record, RecordType, RekeyPolicy, Session, SessionConfig};
use akex::{Established, Role};

pub fn established(role: Role, aead: AeadAlgorithm, seed: u8, root: bool) -> Established {
    established_named("akex-session-test", role, aead, seed, root)
}

pub fn established_named(
    name: &str,
    role: Role,
    aead: AeadAlgorithm,
    seed: u8,
    root: bool,
) -> Established {
    let e = Established::new(
        name.into(),
        role,
        vec![seed; 32],
        None,
        aead,
        TrafficSecret::new(Secret::new([seed; 32])),
        TrafficSecret::new(Secret::new([seed.wrapping_add(1); 32])),
    );
    if root {
        e.with_root_secret(TrafficSecret::new(Secret::new([seed.wrapping_add(2); 32])))
    } else {
        e
    }
}

pub fn akex_pair(aead: AeadAlgorithm, config: SessionConfig) -> (Session, Session) {
    (
        Session::with_config(established(Role::Initiator, aead, 7, true), config.clone()).unwrap(),
        Session::with_config(established(Role::Responder, aead, 7, true), config).unwrap(),
    )
}

pub fn never() -> SessionConfig {
    SessionConfig::new().rekey_policy(RekeyPolicy::never())
}

/// Moves every control record `from` has due to `to`, in both directions,
/// until neither has anything to send.
pub fn settle(a: &mut Session, b: &mut Session) {
    for _ in 0..16 {
        let mut moved = false;
        for flip in [false, true] {
            let (from, to) = if flip {
                (&mut *b, &mut *a)
            } else {
                (&mut *a, &mut *b)
            };
            loop {
                let mut out = Vec::new();
                if !from
                    .poll_control(Duration::ZERO, &mut OsRng, &mut out)
                    .unwrap()
                {
                    break;
                }
                to.open_record(&out, &mut Vec::new()).unwrap();
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
    panic!("control records did not settle");
}

pub fn send_data(from: &mut Session, to: &mut Session, data: &[u8]) {
    let mut wire = Vec::new();
    from.seal_record(RecordType::Data, data, &mut wire).unwrap();
    let mut got = Vec::new();
    assert_eq!(
        to.open_record(&wire, &mut got).unwrap(),
        Record::Data(data.len())
    );
    assert_eq!(got, data);
}

/// A Noise-mode session's `Established` (the protocol name decides the
/// mode).
pub fn noise_established(role: Role, aead: AeadAlgorithm, seed: u8) -> Established {
    established_named("Noise_session_test", role, aead, seed, false)
}
