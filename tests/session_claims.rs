//! Promises of protocols/session.md about stream sessions, each tested so
//! that it fails if the promise breaks (rows SESS-n of docs/claims.md):
//! record bounds, which records end a session, the control reserve,
//! half-close, ratchet records out of place, the downgrade guard, and old
//! keys that are not used again.

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, OsRng, Secret};
use akex::error::{ApiMisuse, LimitReached, PeerMisbehaved};
use akex::handshake::TrafficSecret;
use akex::hazmat::aead::AeadKey;
use akex::hazmat::schedule::{next_traffic_secret, record_key};
use akex::session::{
    AeadLimits, ControlType, Record, RecordType, RekeyPolicy, Session, SessionConfig,
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
