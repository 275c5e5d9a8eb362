//! SHA-256, HMAC-SHA256 and HKDF-SHA256 (RFC 5869), on aws-lc-rs.

use aws_lc_rs::{digest, hkdf, hmac};
use zeroize::Zeroize;

use super::secret::Secret;

/// Length of a SHA-256 output.
pub const SHA256_LEN: usize = 32;

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; SHA256_LEN] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; SHA256_LEN];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Secret<SHA256_LEN> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; SHA256_LEN];
    out.copy_from_slice(ctx.sign().as_ref());
    let secret = Secret::new(out);
    out.zeroize();
    secret
}

/// An HKDF output length for aws-lc.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// `HKDF-Expand(PRK, info, N)` after `HKDF-Extract(salt, ikm)`.
pub fn hkdf_sha256<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> Secret<N> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    expand(&prk, info)
}

/// `HKDF-Expand(PRK, info, N)` with `prk` used directly as the
/// pseudorandom key (it must already be uniformly random, e.g. a traffic
/// secret).
pub fn hkdf_expand_sha256<const N: usize>(prk: &[u8], info: &[u8]) -> Secret<N> {
    expand(&hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk), info)
}

fn expand<const N: usize>(prk: &hkdf::Prk, info: &[u8]) -> Secret<N> {
    let mut out = Secret::new([0u8; N]);
    // Every output in akex is far below HKDF-SHA256's 255 * 32-byte limit.
    prk.expand(&[info], Len(N))
        .and_then(|okm| okm.fill(out.expose_mut()))
        .expect("HKDF-SHA256 output length within 255 * 32 bytes");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 test case 1, and the same PRK expanded directly.
    #[test]
    fn rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let okm: Secret<42> = hkdf_sha256(&salt, &ikm, &info);
        assert_eq!(
            hex::encode(okm.expose()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
        let prk = hmac_sha256(&salt, &[&ikm]);
        assert_eq!(
            hex::encode(prk.expose()),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
        );
        let again: Secret<42> = hkdf_expand_sha256(prk.expose(), &info);
        assert_eq!(again, okm);
    }

    #[test]
    fn sha256_of_parts() {
        assert_eq!(
            hex::encode(sha256(&[b"ab", b"c"])),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
