//! Promises of protocols/session.md about stream sessions, each tested so
//! that it fails if the promise breaks (rows SESS-n of docs/claims.md):
//! what Noise mode lacks, record bounds, which records end a session, the
//! control reserve, half-close, ratchet records out of place, the
//! downgrade guard, and the documented limits and defaults.

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::error::{ApiMisuse, LimitReached, PeerMisbehaved};
use akex::handshake::TrafficSecret;
use akex::hazmat::aead::AeadKey;
use akex::hazmat::schedule::{next_traffic_secret, record_key};
use akex::session::{
    AeadLimits, ControlType, Record, RecordMode, RecordType, RekeyPolicy, Session, SessionConfig,
    MAX_CONTROL_PAYLOAD, MAX_RECORD_PAYLOAD,
};
use akex::{Error, Established, Role};

const I2R: [u8; 32] = [7; 32];
const R2I: [u8; 32] = [8; 32];

fn established(name: &str, role: Role, aead: AeadAlgorithm) -> Established {
    let e = Established::new(
        name.into(),
        role,
        vec![1; 32],
        None,
        aead,
        TrafficSecret::new(Secret::new(I2R)),
        TrafficSecret::new(Secret::new(R2I)),
    );
    if name.starts_with("Noise_") {
        e
    } else {
        e.with_root_secret(TrafficSecret::new(Secret::new([9; 32])))
    }
}

fn pair_with(a: SessionConfig, b: SessionConfig) -> (Session, Session) {
    let aead = AeadAlgorithm::ChaChaPoly;
    (
        Session::with_config(established("akex-claims", Role::Initiator, aead), a).unwrap(),
        Session::with_config(established("akex-claims", Role::Responder, aead), b).unwrap(),
    )
}

fn never() -> SessionConfig {
    SessionConfig::new().rekey_policy(RekeyPolicy::never())
}

fn pair() -> (Session, Session) {
    pair_with(never(), never())
}

/// A record the initiator could have sealed: `plaintext` (type byte and
/// body) under the epoch-(0, 0) record key of `secret`, nonce `counter`.
fn sealed(secret: [u8; 32], counter: u64, plaintext: &[u8]) -> Vec<u8> {
    let key = AeadKey::new(
        AeadAlgorithm::ChaChaPoly,
        record_key(&Secret::new(secret)).expose(),
    );
    let mut body = plaintext.to_vec();
    key.seal_in_place(counter, &[], &mut body);
    body
}

fn x25519_public(seed: u8) -> [u8; 32] {
    akex::hazmat::x25519::public_key(&Secret::new([seed; 32]))
}

/// A ratchet record plaintext: type, generation, step, fields.
fn ratchet(generation: u32, step: u8, fields: &[u8]) -> Vec<u8> {
    let mut p = vec![RecordType::Ratchet as u8];
    p.extend_from_slice(&generation.to_be_bytes());
    p.push(step);
    p.extend_from_slice(fields);
    p
}

/// Init fields: `x_pub ‖ len ‖ ek`.
fn init_fields(x_pub: [u8; 32], ek: &[u8]) -> Vec<u8> {
    let mut f = x_pub.to_vec();
    f.extend_from_slice(&(ek.len() as u16).to_be_bytes());
    f.extend_from_slice(ek);
    f
}

fn is_peer(result: Result<Record, Error>, expected: PeerMisbehaved) -> bool {
    matches!(result, Err(Error::PeerMisbehaved(e)) if e == expected)
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

/// A data record carries 0 to 65518 bytes; one more is refused before
/// anything is sealed. A control record's payload is two bytes shorter.
#[test]
fn data_records_carry_0_to_65518_bytes() {
    assert_eq!(MAX_RECORD_PAYLOAD, 65518);
    assert_eq!(MAX_CONTROL_PAYLOAD, 65516);
    let (mut a, mut b) = pair();
    for len in [0, 1, MAX_RECORD_PAYLOAD] {
        let mut w = Vec::new();
        a.seal_record(RecordType::Data, &vec![0x42; len], &mut w)
            .unwrap();
        assert_eq!(w.len(), 1 + len + 16);
        let mut got = Vec::new();
        assert_eq!(b.open_record(&w, &mut got).unwrap(), Record::Data(len));
        assert_eq!(got.len(), len);
    }
    let mut w = Vec::new();
    assert!(matches!(
        a.seal_record(RecordType::Data, &vec![0; MAX_RECORD_PAYLOAD + 1], &mut w),
        Err(Error::ApiMisuse(ApiMisuse::MessageTooLarge))
    ));
    assert!(w.is_empty());
    assert!(matches!(
        a.seal_control(
            ControlType::RotationAnnouncement,
            &vec![0; MAX_CONTROL_PAYLOAD + 1],
            &mut w
        ),
        Err(Error::ApiMisuse(ApiMisuse::MessageTooLarge))
    ));
    a.seal_control(
        ControlType::RotationAnnouncement,
        &vec![0; MAX_CONTROL_PAYLOAD],
        &mut w,
    )
    .unwrap();
    assert!(matches!(
        b.open_record(&w, &mut Vec::new()).unwrap(),
        Record::Control(ControlType::RotationAnnouncement, MAX_CONTROL_PAYLOAD)
    ));
}

/// A body that does not fit its type is `MalformedRecord`, and it ends the
/// session: the peer gets no second try, not even with a good record.
#[test]
fn malformed_bodies_end_the_session() {
    let mut ek_len_only = init_fields(x25519_public(3), &[]);
    ek_len_only[33] = 5; // announces 5 bytes of KEM key, carries none
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("close with a body", vec![RecordType::Close as u8, 1]),
        (
            "key update with a body",
            vec![RecordType::KeyUpdate as u8, 0],
        ),
        (
            "control without its type",
            vec![RecordType::Control as u8, 0],
        ),
        ("ratchet step 4", ratchet(1, 4, &[0; 32])),
        ("ratchet init, KEM length 5", ratchet(1, 1, &ek_len_only)),
        (
            "ratchet init, one byte short",
            ratchet(1, 1, &init_fields(x25519_public(3), &[])[..33]),
        ),
        ("ratchet finish, 31 bytes", ratchet(1, 3, &[0; 31])),
    ];
    for (what, plaintext) in cases {
        let (mut a, mut b) = pair();
        assert!(
            is_peer(
                b.open_record(&sealed(I2R, 0, &plaintext), &mut Vec::new()),
                PeerMisbehaved::MalformedRecord
            ),
            "{what}"
        );
        assert!(b.has_failed(), "{what}");
        let mut w = Vec::new();
        a.seal_record(RecordType::Data, b"good", &mut w).unwrap();
        assert!(matches!(
            b.open_record(&w, &mut Vec::new()),
            Err(Error::ApiMisuse(ApiMisuse::SessionClosed))
        ));
    }
}

/// A record that fails authentication is `DecryptFailed` and ends a
/// stream session: the genuine record that follows is refused.
#[test]
fn a_failed_decryption_ends_a_stream_session() {
    let (mut a, mut b) = pair();
    let mut w = Vec::new();
    a.seal_record(RecordType::Data, b"genuine", &mut w).unwrap();
    let mut tampered = w.clone();
    tampered[3] ^= 1;
    assert!(is_peer(
        b.open_record(&tampered, &mut Vec::new()),
        PeerMisbehaved::DecryptFailed
    ));
    assert!(b.has_failed() && b.is_closed());
    assert!(matches!(
        b.open_record(&w, &mut Vec::new()),
        Err(Error::ApiMisuse(ApiMisuse::SessionClosed))
    ));
}

/// An akex-mode peer that sends more records under one key than the
/// limit allows ends the session with `PeerExceededLimit`.
#[test]
fn a_peer_past_the_usage_limit_ends_the_session() {
    let small = never().limits(AeadLimits {
        max_records: 20,
        ..AeadLimits::for_aead(AeadAlgorithm::ChaChaPoly)
    });
    let (mut a, mut b) = pair_with(never(), small);
    for i in 0..21 {
        let mut w = Vec::new();
        a.seal_record(RecordType::Data, b"m", &mut w).unwrap();
        let r = b.open_record(&w, &mut Vec::new());
        if i < 20 {
            r.unwrap();
        } else {
            assert!(matches!(
                r,
                Err(Error::Limit(LimitReached::PeerExceededLimit))
            ));
        }
    }
    assert!(b.has_failed());
}

/// Data stops exactly 8 records before the hard limit; those 8 stay for
/// control records (key update, ratchet, close), so a sender at its data
/// limit can still move to a fresh key.
#[test]
fn data_stops_8_records_before_the_limit() {
    let limits = AeadLimits {
        max_records: 20,
        ..AeadLimits::for_aead(AeadAlgorithm::ChaChaPoly)
    };
    let (mut a, mut b) = pair_with(never().limits(limits), never());
    let mut wires = Vec::new();
    loop {
        let mut w = Vec::new();
        match a.seal_record(RecordType::Data, b"d", &mut w) {
            Ok(()) => wires.push(w),
            Err(Error::Limit(LimitReached::AeadUsageLimit)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(wires.len(), 12, "20 records, 8 reserved");
    // The reserve: a ratchet init, six control records, a key update.
    let mut w = Vec::new();
    assert!(a.start_ratchet(&mut OsRng, &mut w).unwrap());
    wires.push(w);
    for _ in 0..6 {
        let mut w = Vec::new();
        a.seal_control(ControlType::RotationAnnouncement, b"[]", &mut w)
            .unwrap();
        wires.push(w);
    }
    let mut w = Vec::new();
    a.send_key_update(&mut w).unwrap();
    wires.push(w);
    for w in &wires {
        b.open_record(w, &mut Vec::new()).unwrap();
    }
    // Under the new key, data flows again.
    let mut w = Vec::new();
    a.seal_record(RecordType::Data, b"fresh", &mut w).unwrap();
    assert_eq!(b.open_record(&w, &mut Vec::new()).unwrap(), Record::Data(5));
}

/// Close ends the sender's direction only: the closer seals nothing more
/// (data, control, key update, ratchet), the other side refuses any
/// further record in that direction (`UnexpectedMessage`, even one that
/// authenticates) but may still send until its own close.
#[test]
fn close_is_a_half_close() {
    let (mut a, mut b) = pair();
    let mut w = Vec::new();
    a.seal_record(RecordType::Data, b"last", &mut w).unwrap();
    b.open_record(&w, &mut Vec::new()).unwrap();
    let mut close = Vec::new();
    a.seal_close(&mut close).unwrap();
    let closed =
        |r: Result<(), Error>| matches!(r, Err(Error::ApiMisuse(ApiMisuse::SessionClosed)));
    assert!(closed(a.seal_record(
        RecordType::Data,
        b"x",
        &mut Vec::new()
    )));
    assert!(closed(a.send_key_update(&mut Vec::new())));
    assert!(closed(a.seal_control(
        ControlType::RotationAnnouncement,
        b"",
        &mut Vec::new()
    )));
    assert!(matches!(
        a.start_ratchet(&mut OsRng, &mut Vec::new()),
        Err(Error::ApiMisuse(ApiMisuse::SessionClosed))
    ));
    assert_eq!(
        b.open_record(&close, &mut Vec::new()).unwrap(),
        Record::Close
    );
    assert!(b.peer_closed() && !b.close_sent());
    // b still sends; a still reads.
    let mut w = Vec::new();
    b.seal_record(RecordType::Data, b"after your close", &mut w)
        .unwrap();
    let mut got = Vec::new();
    a.open_record(&w, &mut got).unwrap();
    assert_eq!(got, b"after your close");
    // A record in the closed direction that authenticates (counter 2,
    // after the data and the close) is refused.
    let late = sealed(I2R, 2, &[RecordType::Data as u8, b'!']);
    assert!(is_peer(
        b.open_record(&late, &mut Vec::new()),
        PeerMisbehaved::UnexpectedMessage
    ));
    // b's own close ends the session on both sides.
    let (mut a, mut b) = pair();
    let mut w = Vec::new();
    a.seal_close(&mut w).unwrap();
    b.open_record(&w, &mut Vec::new()).unwrap();
    let mut w = Vec::new();
    b.seal_close(&mut w).unwrap();
    assert_eq!(a.open_record(&w, &mut Vec::new()).unwrap(), Record::Close);
    assert!(a.is_closed() && b.is_closed());
}

/// Ratchet records that do not fit the step in progress, or carry another
/// generation than g+1, are `UnexpectedMessage` on a stream and end it.
#[test]
fn stream_ratchet_records_out_of_place_are_unexpected() {
    let init = |generation| ratchet(generation, 1, &init_fields(x25519_public(3), &[]));
    let mut response = x25519_public(4).to_vec();
    response.extend_from_slice(&[0, 0]);
    response.extend_from_slice(&[0x11; 32]);
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("init for generation 5", vec![init(5)]),
        ("init for generation 0", vec![init(0)]),
        ("finish without a step", vec![ratchet(1, 3, &[0; 32])]),
        ("response without an init", vec![ratchet(1, 2, &response)]),
        ("a second init before the answer", vec![init(1), init(1)]),
    ];
    for (what, records) in cases {
        let (_, mut b) = pair();
        let last = records.len() - 1;
        for (n, plaintext) in records.iter().enumerate() {
            let r = b.open_record(&sealed(I2R, n as u64, plaintext), &mut Vec::new());
            if n < last {
                assert_eq!(r.unwrap(), Record::Ratchet, "{what}");
            } else {
                assert!(is_peer(r, PeerMisbehaved::UnexpectedMessage), "{what}");
            }
        }
        assert!(b.has_failed(), "{what}");
    }
}

/// The init's ML-KEM key must pass the FIPS 203 modulus check
/// (`InvalidPublicKey`), and a hybrid session refuses an init without one
/// (`MalformedRecord`: no downgrade to a classical step).
#[test]
fn hybrid_ratchet_inits_are_checked_and_never_downgraded() {
    // Coefficients of 0xfff are above q = 3329.
    let bad_ek = vec![0xff; akex::hazmat::kem::ENCAPSULATION_KEY_LEN];
    let (_, mut b) = pair();
    let forged = sealed(
        I2R,
        0,
        &ratchet(1, 1, &init_fields(x25519_public(3), &bad_ek)),
    );
    assert!(is_peer(
        b.open_record(&forged, &mut Vec::new()),
        PeerMisbehaved::InvalidPublicKey
    ));
    assert!(b.has_failed());

    // A classical starter against a hybrid responder: refused.
    let (mut a, mut b) = pair_with(never(), never().hybrid_ratchet(true));
    let mut init = Vec::new();
    assert!(a.start_ratchet(&mut OsRng, &mut init).unwrap());
    assert!(is_peer(
        b.open_record(&init, &mut Vec::new()),
        PeerMisbehaved::MalformedRecord
    ));
    assert!(b.has_failed());
    // Both hybrid: the step runs and data flows under the new keys.
    let (mut a, mut b) = pair_with(never().hybrid_ratchet(true), never().hybrid_ratchet(true));
    let mut init = Vec::new();
    assert!(a.start_ratchet(&mut OsRng, &mut init).unwrap());
    assert_eq!(init.len(), 1 + 5 + 34 + 1184 + 16);
    b.open_record(&init, &mut Vec::new()).unwrap();
    let mut response = Vec::new();
    assert!(b
        .poll_control(Duration::ZERO, &mut OsRng, &mut response)
        .unwrap());
    a.open_record(&response, &mut Vec::new()).unwrap();
    let mut finish = Vec::new();
    assert!(a
        .poll_control(Duration::ZERO, &mut OsRng, &mut finish)
        .unwrap());
    b.open_record(&finish, &mut Vec::new()).unwrap();
    assert_eq!((a.ratchet_count(), b.ratchet_count()), (1, 1));
}

/// The step's responder checks the finish's confirmation: a finish that
/// authenticates under the starter's old key but carries the wrong value
/// (what an attacker holding only session secrets can send) is
/// `BadKeyConfirmation` and ends the session.
#[test]
fn a_wrong_finish_confirmation_ends_the_session() {
    let (mut a, mut b) = pair();
    let mut init = Vec::new();
    assert!(a.start_ratchet(&mut OsRng, &mut init).unwrap());
    b.open_record(&init, &mut Vec::new()).unwrap();
    let mut response = Vec::new();
    assert!(b
        .poll_control(Duration::ZERO, &mut OsRng, &mut response)
        .unwrap());
    // The finish goes under the starter's old key, after the init (nonce 1).
    let forged = sealed(I2R, 1, &ratchet(1, 3, &[0x5a; 32]));
    assert!(is_peer(
        b.open_record(&forged, &mut Vec::new()),
        PeerMisbehaved::BadKeyConfirmation
    ));
    assert!(b.has_failed());
    assert_eq!(b.ratchet_count(), 0);
}

/// After a key update and after a ratchet step, a record under the old
/// epoch's key (the next nonce, so only the key is wrong) no longer opens:
/// the receiver moved on and does not fall back to the old key.
#[test]
fn old_keys_are_not_used_after_a_key_update_or_a_ratchet() {
    let (mut a, mut b) = pair();
    let mut w = Vec::new();
    a.send_key_update(&mut w).unwrap();
    b.open_record(&w, &mut Vec::new()).unwrap();
    let stale = sealed(I2R, 1, &[RecordType::Data as u8, b'x']);
    assert!(is_peer(
        b.open_record(&stale, &mut Vec::new()),
        PeerMisbehaved::DecryptFailed
    ));
    // The new key is the one the schedule derives: HKDF-Expand of the old
    // secret under "akex key update", nonce restarting at 0.
    let (mut a, mut b) = pair();
    let mut w = Vec::new();
    a.send_key_update(&mut w).unwrap();
    b.open_record(&w, &mut Vec::new()).unwrap();
    let next = *next_traffic_secret(&Secret::new(I2R)).expose();
    let fresh = sealed(next, 0, &[RecordType::Data as u8, b'y']);
    assert_eq!(
        b.open_record(&fresh, &mut Vec::new()).unwrap(),
        Record::Data(1)
    );
    drop(a);

    let (mut a, mut b) = pair();
    let mut w = Vec::new();
    assert!(a.start_ratchet(&mut OsRng, &mut w).unwrap());
    b.open_record(&w, &mut Vec::new()).unwrap();
    let mut w = Vec::new();
    assert!(b.poll_control(Duration::ZERO, &mut OsRng, &mut w).unwrap());
    a.open_record(&w, &mut Vec::new()).unwrap();
    let mut w = Vec::new();
    assert!(a.poll_control(Duration::ZERO, &mut OsRng, &mut w).unwrap());
    b.open_record(&w, &mut Vec::new()).unwrap();
    assert_eq!(b.ratchet_count(), 1);
    // Generation 0's key with the next nonce after init and finish.
    let stale = sealed(I2R, 2, &[RecordType::Data as u8, b'z']);
    assert!(is_peer(
        b.open_record(&stale, &mut Vec::new()),
        PeerMisbehaved::DecryptFailed
    ));
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
