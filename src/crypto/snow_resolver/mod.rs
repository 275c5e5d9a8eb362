//! Every primitive snow asks for, from us: X25519, the AEADs and SHA-2 from
//! aws-lc-rs, BLAKE2s/BLAKE2b from the RustCrypto `blake2` crate, Kyber1024
//! (for the `hfs` patterns, feature `hfs`) from libcrux-ml-kem, the RNG
//! passed in by the caller. snow is built without its own default resolver,
//! so none of its crypto dependencies are compiled.
//!
//! Output is byte-identical to snow's default resolver (the Noise vectors
//! replay through this resolver, and `tests/hybrid_noise_hfs.rs` runs the hfs patterns
//! against snow's pqcrypto-kyber), only faster. Because the KEM draws from
//! the caller's RNG too, the hfs handshakes are deterministic under an
//! injected RNG, so they have known-answer vectors.

use std::sync::Arc;

use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::CryptoResolver;
use snow::types::{Cipher, Dh, Hash, Random};

use super::aead::{AeadAlgorithm, AeadKey, TAG_LEN};
use super::rng::{RandomSource, SharedRng};
use super::secret::Secret;
use super::x25519::{StaticSecret, X25519Private};

#[cfg(feature = "hfs")]
mod kyber;
mod sha;

/// Resolves every primitive snow needs (see the module docs).
pub struct AkexResolver {
    rng: SharedRng,
    local_static: Option<StaticSecret>,
}

impl AkexResolver {
    /// A resolver drawing randomness from `rng`.
    pub fn new(rng: impl RandomSource + 'static) -> Self {
        Self::with_shared_rng(SharedRng::new(rng))
    }

    /// A resolver drawing from a generator shared with its caller.
    pub(crate) fn with_shared_rng(rng: SharedRng) -> Self {
        AkexResolver {
            rng,
            local_static: None,
        }
    }

    /// Lets snow's `set()` of this static key reuse its parsed form instead
    /// of deriving the public key again (snow hands over only the bytes).
    pub fn with_local_static(mut self, key: Option<StaticSecret>) -> Self {
        self.local_static = key;
        self
    }

    /// This resolver boxed, as snow's builder wants it.
    pub fn boxed(self) -> snow::resolvers::BoxedCryptoResolver {
        Box::new(self)
    }
}

impl CryptoResolver for AkexResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(RngAdapter(self.rng.clone())))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(AwsX25519 {
                known: self.local_static.clone(),
                ..AwsX25519::default()
            })),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        sha::resolve(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        let algorithm = match choice {
            CipherChoice::ChaChaPoly => AeadAlgorithm::ChaChaPoly,
            CipherChoice::AESGCM => AeadAlgorithm::AesGcm,
            #[allow(unreachable_patterns)]
            _ => return None,
        };
        Some(Box::new(AwsCipher {
            algorithm,
            key: None,
        }))
    }

    #[cfg(feature = "hfs")]
    fn resolve_kem(&self, choice: &snow::params::KemChoice) -> Option<Box<dyn snow::types::Kem>> {
        kyber::resolve(choice, &self.rng)
    }
}

struct RngAdapter(SharedRng);

impl Random for RngAdapter {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

#[derive(Default)]
struct AwsX25519 {
    raw: Option<Secret<32>>,
    parsed: Option<Arc<X25519Private>>,
    public: [u8; 32],
    /// The handshake's static key, already parsed (see `set`).
    known: Option<StaticSecret>,
}

impl AwsX25519 {
    fn install(&mut self, raw: Secret<32>) {
        // Parse once: aws-lc derives the public key while parsing, so doing
        // it per DH would double the cost of every agreement.
        let parsed = X25519Private::new(&raw);
        self.public = *parsed.public();
        self.parsed = Some(Arc::new(parsed));
        self.raw = Some(raw);
    }
}

impl Dh for AwsX25519 {
    fn name(&self) -> &'static str {
        "25519"
    }
    fn pub_len(&self) -> usize {
        32
    }
    fn priv_len(&self) -> usize {
        32
    }
    fn set(&mut self, privkey: &[u8]) {
        // snow checks the length against priv_len() before calling set().
        let Some(raw) = Secret::from_slice(privkey) else {
            return;
        };
        match &self.known {
            // Our static key: reuse its parsed form and public key.
            Some(known) if known.private() == &raw => {
                self.public = *known.public();
                self.parsed = Some(Arc::clone(known.parsed()));
                self.raw = Some(raw);
            }
            _ => self.install(raw),
        }
    }
    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut bytes = [0u8; 32];
        let filled = rng.try_fill_bytes(&mut bytes);
        let raw = Secret::new(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        filled?;
        self.install(raw);
        Ok(())
    }
    fn pubkey(&self) -> &[u8] {
        &self.public
    }
    fn privkey(&self) -> &[u8] {
        self.raw.as_ref().map(|r| &r.expose()[..]).unwrap_or(&[])
    }
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let parsed = self.parsed.as_ref().ok_or(snow::Error::Dh)?;
        // snow passes its whole MAXDHLEN-byte (56) key buffer: the key is the first 32 bytes.
        let shared = parsed
            .agree(pubkey.get(..32).ok_or(snow::Error::Dh)?)
            .map_err(|_| snow::Error::Dh)?;
        out.get_mut(..32)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(shared.expose());
        Ok(())
    }
}

struct AwsCipher {
    algorithm: AeadAlgorithm,
    key: Option<AeadKey>,
}

impl Cipher for AwsCipher {
    fn name(&self) -> &'static str {
        self.algorithm.noise_name()
    }
    fn set(&mut self, key: &[u8; 32]) {
        self.key = Some(AeadKey::new(self.algorithm, key));
    }
    fn encrypt(&self, nonce: u64, authtext: &[u8], plaintext: &[u8], out: &mut [u8]) -> usize {
        // snow only encrypts after set() (CipherState::has_key is checked first).
        let key = self
            .key
            .as_ref()
            .expect("snow sets the key before encrypting");
        key.seal_to(nonce, authtext, plaintext, out)
    }
    fn decrypt(
        &self,
        nonce: u64,
        authtext: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let key = self.key.as_ref().ok_or(snow::Error::Decrypt)?;
        if ciphertext.len() < TAG_LEN {
            return Err(snow::Error::Decrypt);
        }
        key.open_to(nonce, authtext, ciphertext, out)
            .map_err(|_| snow::Error::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dh_from(resolver: &AkexResolver) -> Box<dyn Dh> {
        resolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("X25519 resolves")
    }

    /// `set()` with the known static key reuses its parsed form; any other
    /// key is parsed afresh. Both must agree with a fresh derivation.
    #[test]
    fn set_reuses_the_known_static_key_and_parses_others() {
        let known = StaticSecret::from_private(Secret::new([7; 32]));
        let resolver =
            AkexResolver::with_shared_rng(SharedRng::os()).with_local_static(Some(known.clone()));
        let mut dh = dh_from(&resolver);
        dh.set(known.private().expose());
        assert_eq!(dh.pubkey(), known.public());
        let other = Secret::new([9; 32]);
        let mut dh = dh_from(&resolver);
        dh.set(other.expose());
        assert_eq!(dh.pubkey(), crate::crypto::x25519::public_key(&other));
        // The same DH result whichever way the key was installed.
        let peer = *StaticSecret::from_private(Secret::new([3; 32])).public();
        let (mut a, mut b) = (
            dh_from(&resolver),
            dh_from(&AkexResolver::with_shared_rng(SharedRng::os())),
        );
        a.set(known.private().expose());
        b.set(known.private().expose());
        let (mut out_a, mut out_b) = ([0u8; 32], [0u8; 32]);
        a.dh(&peer, &mut out_a).unwrap();
        b.dh(&peer, &mut out_b).unwrap();
        assert_eq!(out_a, out_b);
        assert_ne!(out_a, [0u8; 32]);
    }
}
