//! The hashes Noise names: SHA-256 and SHA-512 on aws-lc-rs (with its
//! one-shot HMAC, which snow's HKDF calls), BLAKE2s and BLAKE2b from the
//! RustCrypto `blake2` crate.

use aws_lc_rs::{digest, hmac};
use blake2::{Blake2b512, Blake2s256, Digest};
use snow::params::HashChoice;
use snow::types::Hash;

pub(super) fn resolve(choice: &HashChoice) -> Option<Box<dyn Hash>> {
    Some(match choice {
        HashChoice::SHA256 => Box::new(Sha2::new(Sha2Choice::Sha256)),
        HashChoice::SHA512 => Box::new(Sha2::new(Sha2Choice::Sha512)),
        HashChoice::Blake2s => Box::new(Blake2s(Blake2s256::new())),
        HashChoice::Blake2b => Box::new(Blake2b(Blake2b512::new())),
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Sha2Choice {
    Sha256,
    Sha512,
}

struct Sha2 {
    choice: Sha2Choice,
    ctx: digest::Context,
}

impl Sha2 {
    fn new(choice: Sha2Choice) -> Self {
        Sha2 {
            choice,
            ctx: digest::Context::new(Self::algorithm(choice)),
        }
    }

    fn algorithm(choice: Sha2Choice) -> &'static digest::Algorithm {
        match choice {
            Sha2Choice::Sha256 => &digest::SHA256,
            Sha2Choice::Sha512 => &digest::SHA512,
        }
    }

    fn hmac_algorithm(&self) -> hmac::Algorithm {
        match self.choice {
            Sha2Choice::Sha256 => hmac::HMAC_SHA256,
            Sha2Choice::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

impl Hash for Sha2 {
    fn name(&self) -> &'static str {
        match self.choice {
            Sha2Choice::Sha256 => "SHA256",
            Sha2Choice::Sha512 => "SHA512",
        }
    }
    fn block_len(&self) -> usize {
        match self.choice {
            Sha2Choice::Sha256 => 64,
            Sha2Choice::Sha512 => 128,
        }
    }
    fn hash_len(&self) -> usize {
        match self.choice {
            Sha2Choice::Sha256 => 32,
            Sha2Choice::Sha512 => 64,
        }
    }
    fn reset(&mut self) {
        self.ctx = digest::Context::new(Self::algorithm(self.choice));
    }
    fn input(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }
    fn result(&mut self, out: &mut [u8]) {
        let ctx = std::mem::replace(
            &mut self.ctx,
            digest::Context::new(Self::algorithm(self.choice)),
        );
        let digest = ctx.finish();
        let n = self.hash_len();
        out[..n].copy_from_slice(digest.as_ref());
    }
    fn hmac(&mut self, key: &[u8], data: &[u8], out: &mut [u8]) {
        // The same value as the Noise spec's HMAC (RFC 2104), computed by
        // aws-lc in one call instead of four hash passes through this trait.
        let tag = hmac::sign(&hmac::Key::new(self.hmac_algorithm(), key), data);
        let n = self.hash_len();
        out[..n].copy_from_slice(tag.as_ref());
    }
}

struct Blake2s(Blake2s256);

impl Hash for Blake2s {
    fn name(&self) -> &'static str {
        "BLAKE2s"
    }
    fn block_len(&self) -> usize {
        64
    }
    fn hash_len(&self) -> usize {
        32
    }
    fn reset(&mut self) {
        self.0 = Blake2s256::new();
    }
    fn input(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn result(&mut self, out: &mut [u8]) {
        out[..32].copy_from_slice(&self.0.finalize_reset());
    }
}

struct Blake2b(Blake2b512);

impl Hash for Blake2b {
    fn name(&self) -> &'static str {
        "BLAKE2b"
    }
    fn block_len(&self) -> usize {
        128
    }
    fn hash_len(&self) -> usize {
        64
    }
    fn reset(&mut self) {
        self.0 = Blake2b512::new();
    }
    fn input(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn result(&mut self, out: &mut [u8]) {
        out[..64].copy_from_slice(&self.0.finalize_reset());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(choice: HashChoice, data: &[u8]) -> String {
        let mut h = resolve(&choice).unwrap();
        h.reset();
        h.input(data);
        let mut out = [0u8; 64];
        h.result(&mut out);
        hex::encode(&out[..h.hash_len()])
    }

    #[test]
    fn known_digests_of_abc() {
        assert_eq!(
            digest_of(HashChoice::SHA256, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(digest_of(HashChoice::SHA512, b"abc").starts_with("ddaf35a193617aba"));
        // RFC 7693 appendix A (BLAKE2b-512) and B (BLAKE2s-256).
        assert!(digest_of(HashChoice::Blake2b, b"abc").starts_with("ba80a53f981c4d0d"));
        assert_eq!(
            digest_of(HashChoice::Blake2s, b"abc"),
            "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982"
        );
    }

    /// The aws-lc HMAC override equals the spec's HMAC built from the hash.
    #[test]
    fn hmac_override_matches_rfc_2104() {
        for choice in [HashChoice::SHA256, HashChoice::SHA512] {
            let mut h = resolve(&choice).unwrap();
            let (key, data) = ([0x0bu8; 20], b"Hi There");
            let mut fast = [0u8; 64];
            h.hmac(&key, data, &mut fast);
            // RFC 2104 with the trait's own primitives.
            let block = h.block_len();
            let n = h.hash_len();
            let mut ipad = vec![0x36u8; block];
            let mut opad = vec![0x5cu8; block];
            for (i, k) in key.iter().enumerate() {
                ipad[i] ^= k;
                opad[i] ^= k;
            }
            let mut inner = [0u8; 64];
            h.reset();
            h.input(&ipad);
            h.input(data);
            h.result(&mut inner);
            let mut slow = [0u8; 64];
            h.reset();
            h.input(&opad);
            h.input(&inner[..n]);
            h.result(&mut slow);
            assert_eq!(fast[..n], slow[..n]);
        }
    }
}
