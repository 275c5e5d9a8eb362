//! snow's Noise HFS patterns (`Noise_XXhfs_25519+Kyber1024_...`) through
//! `NoiseHandshake`: round trips and a tampered KEM ciphertext in memory,
//! and akex's Kyber1024 against snow's own default resolver in both roles.

mod hybrid_support;

use akex::error::{Error, PeerMisbehaved};
use akex::Handshake;
use hybrid_support::*;

/// snow's Noise HFS patterns (Kyber1024 via pqcrypto-kyber) through
/// `NoiseHandshake`: the KEM resolves through snow's default resolver
/// behind akex's own (X25519 and AEAD on aws-lc-rs).
#[test]
fn noise_hfs_kyber1024_in_memory() {
    use akex::{NoiseConfig, NoiseHandshake};
    for name in [
        "Noise_XXhfs_25519+Kyber1024_ChaChaPoly_BLAKE2s",
        "Noise_NNhfs_25519+Kyber1024_ChaChaPoly_BLAKE2s",
        "Noise_IKhfs_25519+Kyber1024_ChaChaPoly_SHA256",
    ] {
        let a = Party::new(1);
        let b = Party::new(2);
        let mut ic = NoiseConfig::new(name).unwrap();
        let mut rc = NoiseConfig::new(name).unwrap();
        if name.contains("XX") || name.contains("IK") {
            ic = ic.local_static(a.x.clone());
            rc = rc.local_static(b.x.clone());
        }
        if name.contains("IK") {
            ic = ic.remote_static(b.x_key());
        }
        let mut i: Box<dyn Handshake> = Box::new(NoiseHandshake::initiator(ic).unwrap());
        let mut r: Box<dyn Handshake> = Box::new(NoiseHandshake::responder(rc).unwrap());
        let mut sizes = Vec::new();
        while !(i.is_finished() && r.is_finished()) {
            let (w, rd) = if i.wants_write() {
                (&mut i, &mut r)
            } else {
                (&mut r, &mut i)
            };
            let mut msg = Vec::new();
            w.write_message(b"", &mut msg).unwrap();
            sizes.push(msg.len());
            rd.read_message(&msg, &mut Vec::new()).unwrap();
        }
        println!("{name}: message sizes {sizes:?}");
        check_established(i.finish().unwrap(), r.finish().unwrap());
    }
    // Tampering with the KEM ciphertext (message 2 of XXhfs) fails.
    let name = "Noise_XXhfs_25519+Kyber1024_ChaChaPoly_BLAKE2s";
    let a = Party::new(1);
    let b = Party::new(2);
    let mut i =
        NoiseHandshake::initiator(NoiseConfig::new(name).unwrap().local_static(a.x.clone()))
            .unwrap();
    let mut r =
        NoiseHandshake::responder(NoiseConfig::new(name).unwrap().local_static(b.x.clone()))
            .unwrap();
    let mut m = Vec::new();
    i.write_message(b"", &mut m).unwrap();
    r.read_message(&m, &mut Vec::new()).unwrap();
    let mut m = Vec::new();
    r.write_message(b"", &mut m).unwrap();
    m[100] ^= 1;
    assert!(matches!(
        i.read_message(&m, &mut Vec::new()),
        Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))
    ));
}

/// akex's Kyber1024 (libcrux-ml-kem, round 3) against snow's own default
/// resolver (pqcrypto-kyber, PQClean C) in both roles: the two KEMs are
/// byte-compatible, so the hfs names mean the same protocol as in snow.
#[test]
fn noise_hfs_kyber1024_interoperates_with_snow_default_resolver() {
    use akex::{NoiseConfig, NoiseHandshake};
    let mut ran = 0;
    for name in [
        "Noise_XXhfs_25519+Kyber1024_ChaChaPoly_BLAKE2s",
        "Noise_NNhfs_25519+Kyber1024_AESGCM_SHA256",
    ] {
        for akex_initiates in [true, false] {
            let akex_key = Party::new(3).x;
            let snow_builder = snow::Builder::new(name.parse().unwrap());
            let snow_key = snow_builder.generate_keypair().unwrap();
            let snow_builder = snow::Builder::new(name.parse().unwrap());
            let snow_builder = if name.contains("XX") {
                snow_builder.local_private_key(&snow_key.private).unwrap()
            } else {
                snow_builder
            };
            let mut snow_side = if akex_initiates {
                snow_builder.build_responder().unwrap()
            } else {
                snow_builder.build_initiator().unwrap()
            };
            let mut config = NoiseConfig::new(name).unwrap();
            if name.contains("XX") {
                config = config.local_static(akex_key);
            }
            let mut ours: Box<dyn Handshake> = Box::new(if akex_initiates {
                NoiseHandshake::initiator(config).unwrap()
            } else {
                NoiseHandshake::responder(config).unwrap()
            });
            let mut buf = vec![0u8; 65535];
            let mut payloads = 0;
            while !ours.is_finished() {
                if ours.wants_write() {
                    let mut msg = Vec::new();
                    ours.write_message(b"from akex", &mut msg).unwrap();
                    let n = snow_side.read_message(&msg, &mut buf).unwrap();
                    assert_eq!(&buf[..n], b"from akex", "{name}");
                } else {
                    let n = snow_side.write_message(b"from snow", &mut buf).unwrap();
                    let mut payload = Vec::new();
                    ours.read_message(&buf[..n], &mut payload)
                        .unwrap_or_else(|e| panic!("{name} akex_initiates={akex_initiates}: {e}"));
                    assert_eq!(payload, b"from snow", "{name}");
                }
                payloads += 1;
            }
            assert!(snow_side.is_handshake_finished(), "{name}");
            let est = ours.finish().unwrap();
            assert_eq!(
                est.handshake_hash(),
                snow_side.get_handshake_hash(),
                "{name}: transcripts differ"
            );
            assert!(payloads >= 2);
            ran += 1;
        }
    }
    println!("hfs interop with snow's default resolver: ran {ran}");
    assert_eq!(ran, 4);
}
