//! Shared by the SIGMA tests (tests/sigma.rs, tests/sigma_attacks.rs,
//! tests/sigma_p256.rs): one handshake message written or read, a clean
//! run with payloads, an error checked by its name, and the Ed25519 parties
//! of tests/sigma.rs and tests/sigma_attacks.rs (keys 1 and 2, each pinning
//! the other).

#![allow(dead_code)]

use akex::error::Error;
use akex::handshake::registry::{self, HandshakeKeys};
use akex::handshake::{Established, Handshake};
use akex::keys::SigningKey;
use akex::PublicKey;

pub fn ed(seed: u8) -> SigningKey {
    SigningKey::from_seed(akex::crypto::Secret::new([seed; 32]))
}

pub fn keys(seed: u8, remote: Option<&SigningKey>) -> HandshakeKeys {
    let keys = HandshakeKeys::new().signing_key(ed(seed));
    match remote {
        Some(k) => keys.remote(PublicKey::ed25519(*k.public())),
        None => keys,
    }
}

pub fn client(name: &str) -> Box<dyn Handshake> {
    registry::initiator(name, &keys(1, Some(&ed(2)))).unwrap()
}

pub fn server(allowed: &[&str]) -> Box<dyn Handshake> {
    registry::responder(allowed, &keys(2, Some(&ed(1)))).unwrap()
}

pub fn write(hs: &mut Box<dyn Handshake>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    hs.write_message(payload, &mut out).unwrap();
    out
}

pub fn read(hs: &mut Box<dyn Handshake>, msg: &[u8]) -> Result<Vec<u8>, Error> {
    let mut payload = Vec::new();
    hs.read_message(msg, &mut payload).map(|()| payload)
}

/// The three messages of a clean run.
pub fn transcript(name: &str) -> [Vec<u8>; 3] {
    let (mut i, mut r) = (client(name), server(&[name]));
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    read(&mut i, &m2).unwrap();
    let m3 = write(&mut i, b"");
    read(&mut r, &m3).unwrap();
    [m1, m2, m3]
}

pub fn run(mut i: Box<dyn Handshake>, mut r: Box<dyn Handshake>) -> (Established, Established) {
    let m1 = write(&mut i, b"one");
    assert_eq!(read(&mut r, &m1).unwrap(), b"one");
    let m2 = write(&mut r, b"two");
    assert_eq!(read(&mut i, &m2).unwrap(), b"two");
    let m3 = write(&mut i, b"three");
    assert_eq!(read(&mut r, &m3).unwrap(), b"three");
    assert!(i.is_finished() && r.is_finished());
    (i.finish().unwrap(), r.finish().unwrap())
}

pub fn assert_err(result: Result<impl std::fmt::Debug, Error>, want: &str) {
    match result {
        Ok(v) => panic!("expected {want}, got Ok({v:?})"),
        Err(e) => assert!(
            format!("{e:?}").contains(want),
            "expected {want}, got {e:?}"
        ),
    }
}
