//! Wycheproof ChaCha20-Poly1305 and AES-GCM vectors (C2SP/wycheproof
//! testvectors_v1, see tests/vectors/wycheproof/README.md).
//!
//! Only groups with a 96-bit IV, a 256-bit key and a 128-bit tag apply: the
//! Noise AEADs are ChaChaPoly and AES-256-GCM with 12-byte nonces. Others
//! are counted as skipped.
//!
//! [`AeadKey`] only takes Noise's counter nonces (32 zero bits, then a
//! 64-bit counter, little-endian for ChaChaPoly and big-endian for AESGCM),
//! so a vector whose IV has that shape runs through `AeadKey` itself (seal
//! and open, with the nonce's counter); every other applicable vector runs
//! through the aws-lc-rs algorithm `AeadKey` is built on, with the IV as
//! given. Valid cases must seal to `ct || tag` and open to `msg`; invalid
//! cases must fail to open.

use akex::crypto::AeadAlgorithm;

use akex::hazmat::aead::AeadKey;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
use serde_json::Value;

fn path(name: &str) -> String {
    format!(
        "{}/tests/vectors/wycheproof/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn bytes(t: &Value, field: &str) -> Vec<u8> {
    hex::decode(t[field].as_str().unwrap()).unwrap()
}

/// The Noise counter for this IV, if it is a counter nonce.
fn counter(algorithm: AeadAlgorithm, iv: &[u8]) -> Option<u64> {
    if iv.len() != 12 || iv[..4] != [0, 0, 0, 0] {
        return None;
    }
    let rest: [u8; 8] = iv[4..].try_into().ok()?;
    let n = match algorithm {
        AeadAlgorithm::ChaChaPoly => u64::from_le_bytes(rest),
        _ => u64::from_be_bytes(rest),
    };
    (algorithm.nonce(n) == iv).then_some(n)
}

#[derive(Default, Debug)]
struct Counts {
    wrapper: usize,
    backend: usize,
    invalid_rejected: usize,
    skipped: usize,
    failures: Vec<String>,
}

fn run(file: &str, algorithm: AeadAlgorithm) -> Counts {
    let text = std::fs::read_to_string(path(file)).expect("read the vector file");
    let json: Value = serde_json::from_str(&text).expect("parse the vector file");
    let backend = match algorithm {
        AeadAlgorithm::ChaChaPoly => &CHACHA20_POLY1305,
        _ => &AES_256_GCM,
    };
    let mut c = Counts::default();
    for group in json["testGroups"].as_array().unwrap() {
        let tests = group["tests"].as_array().unwrap();
        if group["ivSize"] != 96 || group["keySize"] != 256 || group["tagSize"] != 128 {
            c.skipped += tests.len();
            continue;
        }
        for t in tests {
            let id = t["tcId"].as_u64().unwrap();
            let (key, iv, aad, msg) = (
                bytes(t, "key"),
                bytes(t, "iv"),
                bytes(t, "aad"),
                bytes(t, "msg"),
            );
            let (ct, tag) = (bytes(t, "ct"), bytes(t, "tag"));
            let valid = t["result"] == "valid";
            if iv.len() != 12 {
                // A group's declared size can differ from a test's IV
                // (InvalidNonceSize cases): no 12-byte-nonce API can take it.
                c.skipped += 1;
                continue;
            }
            let sealed_expected = [ct.clone(), tag.clone()].concat();
            let key32: [u8; 32] = key.clone().try_into().unwrap();
            let (sealed, opened) = if let Some(n) = counter(algorithm, &iv) {
                c.wrapper += 1;
                let k = AeadKey::new(algorithm, &key32);
                let mut buf = msg.clone();
                k.seal_in_place(n, &aad, &mut buf);
                let mut open = sealed_expected.clone();
                let opened = k
                    .open_in_place(n, &aad, &mut open)
                    .ok()
                    .map(|len| open[..len].to_vec());
                (buf, opened)
            } else {
                c.backend += 1;
                let k = LessSafeKey::new(UnboundKey::new(backend, &key).unwrap());
                let nonce = || Nonce::try_assume_unique_for_key(&iv).unwrap();
                let mut buf = msg.clone();
                k.seal_in_place_append_tag(nonce(), Aad::from(&aad), &mut buf)
                    .unwrap();
                let mut open = sealed_expected.clone();
                let opened = k
                    .open_in_place(nonce(), Aad::from(&aad), &mut open)
                    .ok()
                    .map(|p| p.to_vec());
                (buf, opened)
            };
            match (valid, opened) {
                (true, Some(plain)) if plain == msg && sealed == sealed_expected => {}
                (false, None) => c.invalid_rejected += 1,
                (_, opened) => c.failures.push(format!(
                    "{file} tcId {id} ({}): opened={:?} sealed_matches={}",
                    t["result"],
                    opened.map(hex::encode),
                    sealed == sealed_expected
                )),
            }
        }
    }
    println!(
        "wycheproof {file}: ran {} ({} through AeadKey, {} through its aws-lc-rs backend), \
         invalid rejected {}, skipped {}, failures {}",
        c.wrapper + c.backend,
        c.wrapper,
        c.backend,
        c.invalid_rejected,
        c.skipped,
        c.failures.len()
    );
    c
}

#[test]
fn wycheproof_chacha20_poly1305_vectors() {
    let c = run("chacha20_poly1305_test.json", AeadAlgorithm::ChaChaPoly);
    assert!(c.failures.is_empty(), "{:#?}", c.failures);
    // The counts docs/security.md states ("Primitive vectors").
    assert_eq!(
        (c.wrapper, c.backend, c.invalid_rejected, c.skipped),
        (10, 306, 60, 9),
        "{c:?}"
    );
}

#[test]
fn wycheproof_aes_256_gcm_vectors() {
    let c = run("aes_gcm_test.json", AeadAlgorithm::AesGcm);
    assert!(c.failures.is_empty(), "{:#?}", c.failures);
    // The counts docs/security.md states ("Primitive vectors").
    assert_eq!(
        (c.wrapper, c.backend, c.invalid_rejected, c.skipped),
        (1, 65, 27, 250),
        "{c:?}"
    );
}
