//! snow's primitives replaced by ours: X25519 and AEADs from aws-lc-rs, the
//! RNG passed in by the caller. Hashes fall back to snow's defaults.
//!
//! Output is byte-identical to snow's default resolver (the Noise vectors
//! replay through this resolver), only faster.

use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver};
use snow::types::{Cipher, Dh, Hash, Random};

use super::aead::{AeadAlgorithm, AeadKey, TAG_LEN};
use super::rng::SharedRng;
use super::secret::Secret;
use super::x25519::X25519Private;

/// Resolves X25519, ChaChaPoly and AESGCM to aws-lc-rs and the RNG to the
/// one given; everything else to snow's default resolver.
pub struct AkexResolver {
    rng: SharedRng,
}

impl AkexResolver {
    /// A resolver drawing randomness from `rng`.
    pub fn new(rng: SharedRng) -> Self {
        AkexResolver { rng }
    }

    /// This resolver with snow's default one behind it, as snow's builder wants it.
    pub fn boxed_with_fallback(rng: SharedRng) -> snow::resolvers::BoxedCryptoResolver {
        Box::new(FallbackResolver::new(
            Box::new(AkexResolver::new(rng)),
            Box::new(DefaultResolver),
        ))
    }
}

impl CryptoResolver for AkexResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(RngAdapter(self.rng.clone())))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(AwsX25519::default())),
            _ => None,
        }
    }

    fn resolve_hash(&self, _choice: &HashChoice) -> Option<Box<dyn Hash>> {
        None
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
}

struct RngAdapter(SharedRng);

impl Random for RngAdapter {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        rand_core::RngCore::try_fill_bytes(&mut self.0, dest).map_err(|_| snow::Error::Rng)
    }
}

#[derive(Default)]
struct AwsX25519 {
    raw: Option<Secret<32>>,
    parsed: Option<X25519Private>,
    public: [u8; 32],
}

impl AwsX25519 {
    fn install(&mut self, raw: Secret<32>) {
        // Parse once: aws-lc derives the public key while parsing, so doing
        // it per DH would double the cost of every agreement.
        let parsed = X25519Private::new(&raw);
        self.public = *parsed.public();
        self.parsed = Some(parsed);
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
        if let Some(raw) = Secret::from_slice(privkey) {
            self.install(raw);
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
