//! Wycheproof X25519 vectors (C2SP/wycheproof testvectors_v1, see
//! tests/vectors/wycheproof/README.md) through our X25519 wrapper.
//!
//! - `valid` cases must agree on exactly the expected shared secret;
//! - every case whose shared secret is all zero (the low-order public
//!   keys) must be rejected with `PeerMisbehaved::InvalidPublicKey`, as the
//!   Noise spec allows and akex promises;
//! - other `acceptable` cases (twist points, non-canonical encodings) may
//!   be accepted, but then must give the expected secret.

use akex::crypto::Secret;
use akex::error::{Error, PeerMisbehaved};
use akex::hazmat::x25519::X25519Private;
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/wycheproof/x25519_test.json"
);

fn hex32(v: &Value) -> Option<[u8; 32]> {
    hex::decode(v.as_str()?).ok()?.try_into().ok()
}

#[test]
fn wycheproof_x25519_vectors() {
    let text = std::fs::read_to_string(VECTORS).expect("read the vector file");
    let json: Value = serde_json::from_str(&text).expect("parse the vector file");
    assert_eq!(json["algorithm"], "XDH");
    let (mut ran, mut skipped, mut rejected_zero, mut acceptable_accepted) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for group in json["testGroups"].as_array().unwrap() {
        if group["curve"] != "curve25519" || group["type"] != "XdhComp" {
            skipped += group["tests"].as_array().map_or(0, Vec::len);
            continue;
        }
        for t in group["tests"].as_array().unwrap() {
            let id = t["tcId"].as_u64().unwrap();
            let (Some(private), Some(expected)) = (hex32(&t["private"]), hex32(&t["shared"]))
            else {
                skipped += 1;
                continue;
            };
            let public = hex::decode(t["public"].as_str().unwrap()).unwrap();
            let result = t["result"].as_str().unwrap();
            ran += 1;
            let got = X25519Private::new(&Secret::new(private)).agree(&public);
            let zero_shared = expected == [0u8; 32];
            match (&got, zero_shared, result) {
                (Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey)), true, _) => {
                    rejected_zero += 1
                }
                (Ok(secret), false, "valid" | "acceptable") if *secret.expose() == expected => {
                    if result == "acceptable" {
                        acceptable_accepted += 1;
                    }
                }
                (
                    Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey)),
                    false,
                    "acceptable",
                ) if public.len() != 32 => {
                    // A wrong-length key may be refused.
                }
                _ => failures.push(format!(
                    "tcId {id} ({result}, {:?}): got {}",
                    t["comment"],
                    match &got {
                        Ok(s) => hex::encode(s.expose()),
                        Err(e) => e.to_string(),
                    }
                )),
            }
        }
    }
    println!(
        "wycheproof x25519: ran {ran}, skipped {skipped}; all-zero shared secrets rejected: \
         {rejected_zero}; acceptable cases accepted with the right secret: {acceptable_accepted}; \
         failures: {}",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(ran, json["numberOfTests"].as_u64().unwrap() as usize);
    // The counts docs/security.md states ("Primitive vectors").
    assert_eq!((ran, rejected_zero, acceptable_accepted), (518, 31, 223));
}
