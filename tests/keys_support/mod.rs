//! Shared by the library-level key store tests (tests/keys.rs,
//! tests/keys_audit_rotation.rs, tests/keys_safety.rs,
//! tests/keys_safety_trust.rs): passphrase protection with a tiny scrypt
//! work factor, the typed key store and trust errors taken out of an
//! `akex::Error`, base64, the audit events, and a snapshot of a store
//! directory.

#![allow(dead_code)]

use std::path::Path;

use akex::error::{KeyStoreError, TrustFailure};
use akex::keys::{KeyStore, Passphrase, Protection};
use akex::Error;

pub fn pass(p: &str) -> Passphrase {
    Passphrase::new(p.into())
}

pub fn prot(p: &str) -> Protection {
    // A tiny scrypt work factor keeps the tests fast; the default is 18.
    Protection::Passphrase {
        passphrase: pass(p),
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

pub fn b64d(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

pub fn events(store: &KeyStore) -> Vec<String> {
    store
        .audit()
        .verify()
        .unwrap()
        .into_iter()
        .map(|r| r.event.event)
        .collect()
}

/// Every file under `dir` with its contents, to prove nothing changed.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with("store.lock") {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
