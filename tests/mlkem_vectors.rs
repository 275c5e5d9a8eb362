//! ML-KEM-768 known-answer and negative vectors (Wycheproof and CCTV, see
//! tests/vectors/mlkem/README.md) through `akex::crypto::kem`.
//!
//! Every case runs; none is skipped by design. Each test prints how many
//! cases it ran and skipped, and asserts the expected totals so a truncated
//! vector file fails loudly.

use std::io::Read;

use akex::crypto::Secret;
use akex::error::{ConfigError, Error, PeerMisbehaved};
use akex::hazmat::kem;
use akex::keys::MlKem768KeyPair;
use serde_json::Value;

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/mlkem")
}

fn load(name: &str) -> Value {
    let path = dir().join("wycheproof").join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("parse vector file")
}

fn hexv(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or("")).expect("hex field")
}

fn tests(json: &Value) -> Vec<&Value> {
    json["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| {
            assert_eq!(g["parameterSet"], "ML-KEM-768");
            g["tests"].as_array().unwrap().iter()
        })
        .collect()
}

#[test]
fn wycheproof_keygen_seed() {
    let json = load("mlkem_768_keygen_seed_test.json");
    let mut ran = 0;
    for t in tests(&json) {
        let id = &t["tcId"];
        assert_eq!(t["result"], "valid");
        let seed = Secret::<64>::from_slice(&hexv(&t["seed"])).expect("64-byte seed");
        let pair = MlKem768KeyPair::from_seed(&seed);
        assert_eq!(
            &pair.encapsulation_key()[..],
            &hexv(&t["ek"])[..],
            "tc {id} ek"
        );
        assert_eq!(
            &pair.expose_expanded()[..],
            &hexv(&t["dk"])[..],
            "tc {id} dk"
        );
        // The expanded key restores to the same pair.
        let restored = MlKem768KeyPair::from_expanded(&hexv(&t["dk"])).expect("valid dk");
        assert_eq!(restored.encapsulation_key(), pair.encapsulation_key());
        ran += 1;
    }
    println!("mlkem keygen_seed: ran {ran}, skipped 0");
    assert_eq!(ran, 100);
}

#[test]
fn wycheproof_encaps() {
    let json = load("mlkem_768_encaps_test.json");
    let (mut ran, mut valid, mut rejected, mut modulus) = (0, 0, 0, 0);
    for t in tests(&json) {
        let id = &t["tcId"];
        let ek = hexv(&t["ek"]);
        let m = Secret::<32>::from_slice(&hexv(&t["m"])).expect("32-byte m");
        let result = kem::encapsulate(&ek, &m);
        match t["result"].as_str().unwrap() {
            "valid" => {
                let (c, k) = result.unwrap_or_else(|e| panic!("tc {id}: {e}"));
                assert_eq!(&c[..], &hexv(&t["c"])[..], "tc {id} c");
                assert_eq!(&k.expose()[..], &hexv(&t["K"])[..], "tc {id} K");
                assert!(kem::check_encapsulation_key(&ek).is_ok());
                valid += 1;
            }
            "invalid" => {
                assert!(
                    matches!(
                        result,
                        Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey))
                    ),
                    "tc {id} must be rejected"
                );
                if t["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == "ModulusOverflow"))
                {
                    modulus += 1;
                }
                rejected += 1;
            }
            other => panic!("tc {id}: unexpected result {other}"),
        }
        ran += 1;
    }
    println!(
        "mlkem encaps: ran {ran} (valid {valid}, rejected {rejected}, of which ModulusOverflow {modulus}), skipped 0"
    );
    assert_eq!((ran, valid, rejected, modulus), (265, 133, 132, 12));
}

#[test]
fn wycheproof_decaps_from_seed() {
    let json = load("mlkem_768_test.json");
    let (mut ran, mut valid, mut bad_seed, mut bad_ct) = (0, 0, 0, 0);
    for t in tests(&json) {
        let id = &t["tcId"];
        let seed = hexv(&t["seed"]);
        let c = hexv(&t["c"]);
        let invalid = t["result"] == "invalid";
        ran += 1;
        // Our API takes exactly a 64-byte seed: any other length is refused
        // before key generation.
        let Some(seed) = Secret::<64>::from_slice(&seed) else {
            assert!(invalid, "tc {id}: valid case with a bad seed length");
            bad_seed += 1;
            continue;
        };
        let pair = MlKem768KeyPair::from_seed(&seed);
        if let Some(ek) = t["ek"].as_str() {
            assert_eq!(hex::encode(pair.encapsulation_key()), ek, "tc {id} ek");
        }
        match pair.decapsulate(&c) {
            Ok(k) => {
                assert!(!invalid, "tc {id} must be rejected");
                assert_eq!(hex::encode(k.expose()), t["K"].as_str().unwrap(), "tc {id}");
                valid += 1;
            }
            Err(Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength)) => {
                assert!(invalid, "tc {id} wrongly rejected");
                bad_ct += 1;
            }
            Err(e) => panic!("tc {id}: unexpected error {e}"),
        }
    }
    println!(
        "mlkem decaps (seed): ran {ran} (valid {valid}, bad seed length {bad_seed}, bad ciphertext length {bad_ct}), skipped 0"
    );
    assert_eq!((ran, valid, bad_seed + bad_ct), (193, 153, 40));
}

#[test]
fn wycheproof_semi_expanded_decaps() {
    let json = load("mlkem_768_semi_expanded_decaps_test.json");
    let (mut ran, mut valid, mut rejected) = (0, 0, 0);
    for t in tests(&json) {
        let id = &t["tcId"];
        let invalid = t["result"] == "invalid";
        ran += 1;
        let pair = match MlKem768KeyPair::from_expanded(&hexv(&t["dk"])) {
            Ok(p) => p,
            Err(Error::Config(ConfigError::InvalidKey(_))) => {
                assert!(invalid, "tc {id} wrongly rejected the key");
                rejected += 1;
                continue;
            }
            Err(e) => panic!("tc {id}: unexpected error {e}"),
        };
        assert_eq!(
            hex::encode(pair.encapsulation_key()),
            t["ek"].as_str().unwrap()
        );
        match pair.decapsulate(&hexv(&t["c"])) {
            Ok(k) => {
                assert!(!invalid, "tc {id} must be rejected");
                assert_eq!(hex::encode(k.expose()), t["K"].as_str().unwrap(), "tc {id}");
                valid += 1;
            }
            Err(Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength)) => {
                assert!(invalid, "tc {id} wrongly rejected the ciphertext");
                rejected += 1;
            }
            Err(e) => panic!("tc {id}: unexpected error {e}"),
        }
    }
    println!(
        "mlkem semi-expanded decaps: ran {ran} (valid {valid}, rejected {rejected}), skipped 0"
    );
    assert_eq!((ran, valid, rejected), (9, 3, 6));
}

#[test]
fn cctv_strcmp() {
    let text = std::fs::read_to_string(dir().join("cctv/strcmp/ML-KEM-768.txt")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .map(|h| hex::decode(h.trim()).unwrap())
            .unwrap_or_else(|| panic!("field {name}"))
    };
    let pair = MlKem768KeyPair::from_expanded(&field("dk")).expect("valid dk");
    let c = field("c");
    assert_eq!(c[0], 0, "the case's ciphertext starts with a zero byte");
    let k = pair.decapsulate(&c).unwrap();
    assert_eq!(&k.expose()[..], &field("K")[..]);
    println!("mlkem cctv strcmp: ran 1, skipped 0");
}

#[test]
fn cctv_modulus() {
    let file = std::fs::File::open(dir().join("cctv/modulus/ML-KEM-768.txt.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    let mut ran = 0;
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let ek = hex::decode(line.trim()).unwrap();
        assert_eq!(ek.len(), kem::ENCAPSULATION_KEY_LEN, "line {i}");
        assert!(
            matches!(
                kem::encapsulate(&ek, &Secret::new([0u8; 32])),
                Err(Error::PeerMisbehaved(PeerMisbehaved::InvalidPublicKey))
            ),
            "line {i}: a key with a coefficient >= q must be rejected"
        );
        ran += 1;
    }
    println!("mlkem cctv modulus: ran {ran}, skipped 0");
    assert_eq!(ran, 780);
}

/// Keys made by aws-lc-rs (what `src/keys/store.rs` generates and stores:
/// the 2400-byte expanded decapsulation key) load into the wrapper, and
/// the two implementations agree in both directions.
#[test]
fn aws_lc_keys_interoperate() {
    use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_768};
    for _ in 0..5 {
        let dk = DecapsulationKey::generate(&ML_KEM_768).unwrap();
        let ek = dk.encapsulation_key().unwrap();
        let dk_bytes = dk.key_bytes().unwrap();
        let ek_bytes = ek.key_bytes().unwrap();
        let pair = MlKem768KeyPair::from_expanded(dk_bytes.as_ref()).expect("aws-lc dk loads");
        assert_eq!(&pair.encapsulation_key()[..], ek_bytes.as_ref());
        // aws-lc encapsulates, we decapsulate.
        let (ct, ss) = ek.encapsulate().unwrap();
        assert_eq!(
            &pair.decapsulate(ct.as_ref()).unwrap().expose()[..],
            ss.as_ref()
        );
        // We encapsulate, aws-lc decapsulates.
        let (ct2, ss2) = kem::encapsulate(ek_bytes.as_ref(), &Secret::new([5u8; 32])).unwrap();
        let back = dk.decapsulate(Ciphertext::from(&ct2[..])).unwrap();
        assert_eq!(back.as_ref(), &ss2.expose()[..]);
        let _ = EncapsulationKey::new(&ML_KEM_768, &pair.encapsulation_key()[..]).unwrap();
    }
    println!("mlkem aws-lc interop: ran 5, skipped 0");
}
