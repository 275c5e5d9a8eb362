//! protocols/session.md, "Post-compromise security: exactly what holds":
//! with `hybrid_ratchet`, a passive attacker who holds every session
//! secret and even both ephemeral X25519 private keys of a step still
//! cannot compute the new keys without the ML-KEM secret, and one who
//! holds the ML-KEM secret cannot without X25519. The attacker's view is
//! recomputed here from the spec (row SESS-n of docs/claims.md).

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, Secret};
use akex::handshake::TrafficSecret;
use akex::hazmat::aead::AeadKey;
use akex::hazmat::hash::sha256;
use akex::hazmat::kem::{MlKem768KeyPair, CIPHERTEXT_LEN, ENCAPSULATION_KEY_LEN};
use akex::hazmat::schedule::{ratchet, record_key};
use akex::hazmat::x25519::X25519Private;
use akex::hazmat::ReplayRng;
use akex::session::{RecordType, RekeyPolicy, Session, SessionConfig};
use akex::{Established, Role};

const I2R: [u8; 32] = [7; 32];
const R2I: [u8; 32] = [8; 32];
const ROOT: [u8; 32] = [9; 32];
const HASH: [u8; 32] = [1; 32];

fn session(role: Role) -> Session {
    let e = Established::new(
        "akex-ratchet-claims".into(),
        role,
        HASH.to_vec(),
        None,
        AeadAlgorithm::ChaChaPoly,
        TrafficSecret::new(Secret::new(I2R)),
        TrafficSecret::new(Secret::new(R2I)),
    )
    .with_root_secret(TrafficSecret::new(Secret::new(ROOT)));
    let config = SessionConfig::new()
        .rekey_policy(RekeyPolicy::never())
        .hybrid_ratchet(true);
    Session::with_config(e, config).unwrap()
}

/// Opens a stream record (empty associated data, nonce `counter`).
fn open(secret: &[u8; 32], counter: u64, wire: &[u8]) -> Option<Vec<u8>> {
    let key = AeadKey::new(
        AeadAlgorithm::ChaChaPoly,
        record_key(&Secret::new(*secret)).expose(),
    );
    let mut buf = wire.to_vec();
    let n = key.open_in_place(counter, &[], &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn hybrid_ratchet_keys_need_both_the_x25519_and_the_ml_kem_secret() {
    let (x, seed, y, m) = ([0x51; 32], [0x52; 64], [0x53; 32], [0x54; 32]);
    let mut a = session(Role::Initiator);
    let mut b = session(Role::Responder);
    let mut init = Vec::new();
    let starter_rng = [&x[..], &seed[..]].concat();
    assert!(a
        .start_ratchet(&mut ReplayRng::new(starter_rng), &mut init)
        .unwrap());
    b.open_record(&init, &mut Vec::new()).unwrap();
    let mut response = Vec::new();
    let responder_rng = [&y[..], &m[..]].concat();
    assert!(b
        .poll_control(
            Duration::ZERO,
            &mut ReplayRng::new(responder_rng),
            &mut response
        )
        .unwrap());
    a.open_record(&response, &mut Vec::new()).unwrap();
    let mut finish = Vec::new();
    assert!(a
        .poll_control(Duration::ZERO, &mut ReplayRng::new(Vec::new()), &mut finish)
        .unwrap());
    b.open_record(&finish, &mut Vec::new()).unwrap();
    let mut secret = Vec::new();
    a.seal_record(RecordType::Data, b"after the step", &mut secret)
        .unwrap();

    // The attacker reads the step's records with the generation-0 keys.
    let init = open(&I2R, 0, &init).unwrap();
    let response = open(&R2I, 0, &response).unwrap();
    let init_fields = &init[6..6 + 34 + ENCAPSULATION_KEY_LEN];
    let response_fields = &response[6..6 + 34 + CIPHERTEXT_LEN];
    let (y_pub, ct) = (&response_fields[..32], &response_fields[34..]);
    let mut ctx = HASH.to_vec();
    ctx.extend_from_slice(&1u32.to_be_bytes());
    ctx.push(0x01);
    let th = sha256(&[&ctx, init_fields, response_fields]);
    let root = Secret::new(ROOT);
    let opens = |secrets: &[&Secret<32>]| {
        let keys = ratchet(&root, secrets, &th);
        open(keys.initiator_to_responder.expose(), 0, &secret).is_some()
    };
    // Every X25519 secret of the step is known to it.
    let dh_ee = X25519Private::new(&Secret::new(x)).agree(y_pub).unwrap();
    assert_eq!(
        dh_ee,
        X25519Private::new(&Secret::new(y))
            .agree(&init_fields[..32])
            .unwrap()
    );
    let kem = MlKem768KeyPair::from_seed(&Secret::new(seed))
        .decapsulate(ct)
        .unwrap();
    // Both secrets: the spec's derivation gives the session's keys.
    assert!(opens(&[&dh_ee, &kem]), "the recomputation is the spec's");
    // X25519 alone, as a classical step would use it, or with a guess for
    // the ML-KEM secret: nothing opens.
    assert!(!opens(&[&dh_ee]));
    assert!(!opens(&[&dh_ee, &Secret::new([0; 32])]));
    assert!(!opens(&[&dh_ee, &Secret::new(sha256(&[ct]))]));
    // The ML-KEM secret with a wrong X25519 secret: nothing opens either.
    let other = X25519Private::new(&Secret::new([0x55; 32]))
        .agree(y_pub)
        .unwrap();
    assert!(!opens(&[&other, &kem]));
    assert!(!opens(&[&kem]));
    let mut got = Vec::new();
    b.open_record(&secret, &mut got).unwrap();
    assert_eq!(got, b"after the step");
}
