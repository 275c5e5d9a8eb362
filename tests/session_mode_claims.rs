//! Promises of protocols/session.md about record modes, documented
//! numbers and how secrets are compared (rows SESS-n of docs/claims.md):
//! what Noise mode lacks, the root secret, the hard limits and default
//! policy, rotation announcements, and constant-time comparisons.

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::error::ApiMisuse;
use akex::handshake::TrafficSecret;
use akex::session::{
    AeadLimits, ControlType, Record, RecordMode, RecordType, RekeyPolicy, Session, SessionConfig,
};
use akex::{Error, Established, Role};

fn established(name: &str, role: Role, aead: AeadAlgorithm) -> Established {
    let e = Established::new(
        name.into(),
        role,
        vec![1; 32],
        None,
        aead,
        TrafficSecret::new(Secret::new([7; 32])),
        TrafficSecret::new(Secret::new([8; 32])),
    );
    if name.starts_with("Noise_") {
        e
    } else {
        e.with_root_secret(TrafficSecret::new(Secret::new([9; 32])))
    }
}

fn pair() -> (Session, Session) {
    let aead = AeadAlgorithm::ChaChaPoly;
    let never = SessionConfig::new().rekey_policy(RekeyPolicy::never());
    (
        Session::with_config(
            established("akex-claims", Role::Initiator, aead),
            never.clone(),
        )
        .unwrap(),
        Session::with_config(established("akex-claims", Role::Responder, aead), never).unwrap(),
    )
}

/// Noise mode has no record types: no ratchet, key update record, close
/// or control record; a ratchet setting is a configuration error; and a
/// real Noise handshake hands over no root secret.
#[test]
fn noise_mode_has_no_record_types_ratchet_or_root() {
    let aead = AeadAlgorithm::ChaChaPoly;
    let noise = || established("Noise_claims", Role::Initiator, aead);
    let mut s = Session::new(noise());
    assert_eq!(s.mode(), RecordMode::Noise);
    let wrong =
        |r: Result<bool, Error>| matches!(r, Err(Error::ApiMisuse(ApiMisuse::WrongRecordMode)));
    assert!(wrong(s.start_ratchet(&mut OsRng, &mut Vec::new())));
    assert!(wrong(s.poll_control(
        Duration::ZERO,
        &mut OsRng,
        &mut Vec::new()
    )));
    let unit =
        |r: Result<(), Error>| matches!(r, Err(Error::ApiMisuse(ApiMisuse::WrongRecordMode)));
    assert!(unit(s.seal_close(&mut Vec::new())));
    assert!(unit(s.send_key_update(&mut Vec::new())));
    assert!(unit(s.seal_control(
        ControlType::RotationAnnouncement,
        b"",
        &mut Vec::new()
    )));
    for config in [
        SessionConfig::new().ratchet_every(Duration::from_secs(60)),
        SessionConfig::new().hybrid_ratchet(true),
    ] {
        assert!(matches!(
            Session::with_config(noise(), config),
            Err(Error::Config(_))
        ));
    }
    for name in [
        "Noise_NN_25519_ChaChaPoly_BLAKE2s",
        "Noise_XX_25519_AESGCM_SHA256",
    ] {
        let keys = || {
            akex::HandshakeKeys::new().static_key(akex::keys::StaticSecret::generate(&mut OsRng))
        };
        let (i, r) = handshake(name, keys(), keys());
        assert!(
            i.root_secret().is_none() && r.root_secret().is_none(),
            "{name}"
        );
        // An akex-mode handshake does get one (the ratchet needs it).
    }
    let (i, _) = handshake(
        akex::handshake::hybrid::HYBRID_XX,
        akex::HandshakeKeys::new().static_key(akex::keys::StaticSecret::generate(&mut OsRng)),
        akex::HandshakeKeys::new().static_key(akex::keys::StaticSecret::generate(&mut OsRng)),
    );
    assert!(i.root_secret().is_some());
}

fn handshake(
    name: &str,
    ik: akex::HandshakeKeys,
    rk: akex::HandshakeKeys,
) -> (Established, Established) {
    use akex::handshake::registry;
    let mut i = registry::initiator(name, &ik).unwrap();
    let mut r = registry::responder(&[name], &rk).unwrap();
    while !(i.is_finished() && r.is_finished()) {
        let (from, to) = if i.wants_write() {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let mut m = Vec::new();
        from.write_message(b"", &mut m).unwrap();
        to.read_message(&m, &mut Vec::new()).unwrap();
    }
    (i.finish().unwrap(), r.finish().unwrap())
}

/// The hard limits and the default policy are the documented numbers, and
/// the default akex policy updates a key 120 s after it was installed once
/// it has protected a record (never an unused one).
#[test]
fn limits_and_default_policy_are_the_documented_ones() {
    let aes = AeadLimits::for_aead(AeadAlgorithm::AesGcm);
    assert_eq!(
        (aes.max_records, aes.max_bytes, aes.max_forgeries),
        (1 << 23, 1 << 38, 1 << 52)
    );
    let chacha = AeadLimits::for_aead(AeadAlgorithm::ChaChaPoly);
    assert_eq!(chacha.max_records, u64::MAX - (1 << 13)); // 2^64 - 2^13 - 1
    assert_eq!(chacha.max_bytes, u64::MAX);
    assert_eq!(chacha.max_forgeries, 1 << 36);
    let p = RekeyPolicy::recommended(AeadAlgorithm::ChaChaPoly);
    assert_eq!(
        (p.max_messages, p.max_bytes, p.max_age),
        (Some(1 << 60), None, Some(Duration::from_secs(120)))
    );
    let p = RekeyPolicy::recommended(AeadAlgorithm::AesGcm);
    assert_eq!(
        (p.max_messages, p.max_bytes, p.max_age),
        (Some(1 << 22), Some(1 << 37), Some(Duration::from_secs(120)))
    );
    // A session with the default configuration runs that policy.
    for aead in [AeadAlgorithm::ChaChaPoly, AeadAlgorithm::AesGcm] {
        let mut a = Session::with_config(
            established("akex-d", Role::Initiator, aead),
            SessionConfig::new(),
        )
        .unwrap();
        assert_eq!(a.limits(), AeadLimits::for_aead(aead));
        let poll = |s: &mut Session, secs| {
            s.poll_control(Duration::from_secs(secs), &mut OsRng, &mut Vec::new())
                .unwrap()
        };
        assert!(!poll(&mut a, 1000), "an unused key is not updated");
        a.seal_record(RecordType::Data, b"x", &mut Vec::new())
            .unwrap();
        // Installed at 0 s: due at 120 s of age.
        let mut a2 = Session::with_config(
            established("akex-d", Role::Initiator, aead),
            SessionConfig::new(),
        )
        .unwrap();
        a2.seal_record(RecordType::Data, b"x", &mut Vec::new())
            .unwrap();
        assert!(!poll(&mut a2, 119));
        assert!(poll(&mut a2, 120));
        assert_eq!(a2.send_epoch(), 1);
    }
    // Noise mode's default is never (as every Noise implementation).
    let mut n = Session::new(established(
        "Noise_d",
        Role::Initiator,
        AeadAlgorithm::ChaChaPoly,
    ));
    for _ in 0..1000 {
        n.seal(b"m", &mut Vec::new()).unwrap();
    }
    assert_eq!(n.send_epoch(), 0);
}

/// Key confirmations, UDP confirmation tags and cookie MACs are compared
/// with constant-time equality (`ct_eq`), never `==`: checked in the
/// source, where a regression would appear (timing itself is not measured).
#[test]
fn secret_comparisons_use_constant_time_equality() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (file, needle) in [
        ("src/session/ratchet/mod.rs", "ct_eq(keys.confirm_response"),
        (
            "src/session/ratchet/message.rs",
            "ct_eq(expected.expose(), got)",
        ),
        ("src/transport/datagram/pump.rs", "e.ct_eq(tag)"),
        ("src/transport/datagram/cookie.rs", ".ct_eq(&token[4..])"),
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(code.contains(needle), "{file}: no `{needle}`");
        for line in code.lines() {
            for op in [" == ", " != "] {
                let Some((left, right)) = line.split_once(op) else {
                    continue;
                };
                let operands = [
                    left.split_whitespace().last().unwrap_or(""),
                    right.split_whitespace().next().unwrap_or(""),
                ];
                assert!(
                    !operands.iter().any(|o| secret_named(o)),
                    "{file}: a secret compared with `{op}`: {line}"
                );
            }
        }
    }
}

/// Whether an operand names a confirmation value, tag or MAC (not a length).
fn secret_named(operand: &str) -> bool {
    let lower = operand.to_lowercase();
    !lower.ends_with("_len")
        && lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .flat_map(|word| word.split('_'))
            .any(|part| matches!(part, "confirm" | "tag" | "mac" | "expected"))
}

/// A rotation announcement's payload is the JSON array of the signed
/// rotation statements leading to the current key, oldest first.
#[test]
fn rotation_announcements_are_a_json_array_oldest_first() {
    use akex::keys::{
        decode_rotation_announcement, encode_rotation_announcement, KeyStore, KeyType, Passphrase,
        Protection,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path().join("store")).unwrap();
    let p = Protection::Passphrase {
        passphrase: Passphrase::new("pw".into()),
        log_n: 2,
    };
    let v1 = store.generate("k", KeyType::X25519, &p, None).unwrap();
    store.rotate("k", &p, 600).unwrap();
    let (v3, _) = store.rotate("k", &p, 600).unwrap();
    let chain = store.rotation_chain(&v3.id).unwrap();
    let payload = encode_rotation_announcement(&chain).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let array = json.as_array().expect("a JSON array");
    assert_eq!(array.len(), 2);
    assert_eq!(chain[0].old_id, v1.id, "oldest first");
    assert_eq!(chain[1].new_id, v3.id, "leading to the current key");
    assert_eq!(decode_rotation_announcement(&payload).unwrap(), chain);
    // Carried in a control record of type 0x0001.
    assert_eq!(ControlType::RotationAnnouncement.code(), 0x0001);
    let (mut a, mut b) = pair();
    let mut w = Vec::new();
    a.seal_control(ControlType::RotationAnnouncement, &payload, &mut w)
        .unwrap();
    let mut got = Vec::new();
    assert_eq!(
        b.open_record(&w, &mut got).unwrap(),
        Record::Control(ControlType::RotationAnnouncement, payload.len())
    );
    assert_eq!(got, payload);
}
