//! The fixed Noise parties the handshake targets share: long-term keys,
//! scripted ephemerals (so every message replays byte for byte), and a
//! pump that runs a handshake in memory.

use akex::crypto::Secret;
use akex::hazmat::ReplayRng as ScriptedRng;
use akex::hazmat::SharedRng;
use akex::keys::StaticSecret;
use akex::{Handshake, NoiseConfig, NoiseHandshake, Role};

/// The responder's long-term key.
pub fn responder_static() -> StaticSecret {
    StaticSecret::from_private(Secret::new([0x52; 32]))
}

/// The initiator's long-term key.
pub fn initiator_static() -> StaticSecret {
    StaticSecret::from_private(Secret::new([0x49; 32]))
}

/// A fixed ephemeral for `role`. Twice the bytes one ephemeral needs: if a
/// later snow ever drew more, it gets an error from the RNG, not a panic.
fn scripted_rng(role: Role) -> SharedRng {
    let byte = match role {
        Role::Initiator => 0x65,
        Role::Responder => 0x72,
    };
    SharedRng::new(Box::new(ScriptedRng::new(vec![byte; 64])))
}

pub(crate) fn responder(protocol: &str) -> NoiseHandshake {
    let config = NoiseConfig::new(protocol)
        .unwrap()
        .local_static(responder_static())
        .rng(scripted_rng(Role::Responder));
    NoiseHandshake::responder(config).expect("the fixed responder configuration is valid")
}

pub(crate) fn initiator(protocol: &str) -> NoiseHandshake {
    let config = NoiseConfig::new(protocol)
        .unwrap()
        .local_static(initiator_static())
        .remote_static(akex::PublicKey::x25519(*responder_static().public()))
        .rng(scripted_rng(Role::Initiator));
    NoiseHandshake::initiator(config).expect("the fixed initiator configuration is valid")
}

/// Moves handshake messages between two sides until both finish.
pub(crate) fn pump(alice: &mut NoiseHandshake, bob: &mut NoiseHandshake) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut payload = Vec::new();
    while !(alice.is_finished() && bob.is_finished()) {
        let (from, to) = if alice.wants_write() {
            (&mut *alice, &mut *bob)
        } else {
            (&mut *bob, &mut *alice)
        };
        let mut message = Vec::new();
        from.write_message(b"", &mut message)
            .expect("in-memory handshake");
        to.read_message(&message, &mut payload)
            .expect("in-memory handshake");
        messages.push(message);
    }
    messages
}
