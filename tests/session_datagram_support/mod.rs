//! Shared by the datagram-mode session tests (tests/session_datagram.rs,
//! tests/session_datagram_limits.rs): one side of a session made from fixed
//! secrets, with a root secret for the ratchet.

#![allow(dead_code)]

use akex::crypto::{AeadAlgorithm, Secret};
use akex::handshake::TrafficSecret;
use akex::{Established, Role};

pub fn established(role: Role) -> Established {
    Established::new(
        "akex-datagram-test".into(),
        role,
        vec![1; 32],
        None,
        AeadAlgorithm::ChaChaPoly,
        TrafficSecret::new(Secret::new([0x31; 32])),
        TrafficSecret::new(Secret::new([0x32; 32])),
    )
    .with_root_secret(TrafficSecret::new(Secret::new([0x33; 32])))
}
