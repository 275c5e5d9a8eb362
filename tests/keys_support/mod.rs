//! Shared by the library-level key store tests (tests/keys.rs,
//! tests/keys_audit_rotation.rs): passphrase protection with a tiny scrypt
//! work factor, and the typed key store and trust errors taken out of an
//! `akex::Error`.

#![allow(dead_code)]

use akex::error::{KeyStoreError, TrustFailure};
use akex::keys::{Passphrase, Protection};
use akex::Error;

pub fn prot(p: &str) -> Protection {
    // A tiny scrypt work factor keeps the tests fast; the default is 18.
    Protection::Passphrase {
        passphrase: Passphrase::new(p.into()),
        log_n: 2,
    }
}

pub fn store_err(e: Error) -> KeyStoreError {
    match e {
        Error::KeyStore(k) => k,
        other => panic!("expected a key store error, got {other:?}"),
    }
}

pub fn trust_err(e: Error) -> TrustFailure {
    match e {
        Error::PeerNotTrusted(t) => t,
        other => panic!("expected a trust failure, got {other:?}"),
    }
}
