//! snow's primitives replaced by ours: X25519 and AEADs from aws-lc-rs,
//! Kyber1024 (for the `hfs` patterns) from libcrux-ml-kem, the RNG passed in
//! by the caller. Hashes fall back to snow's defaults.
//!
//! Output is byte-identical to snow's default resolver (the Noise vectors
//! replay through this resolver, and `tests/hybrid.rs` runs the hfs patterns
//! against snow's pqcrypto-kyber), only faster. Because the KEM draws from
//! the caller's RNG too, the hfs handshakes are deterministic under an
//! injected RNG, so they have known-answer vectors.

use libcrux_ml_kem::mlkem1024::{
    self, MlKem1024Ciphertext, MlKem1024PrivateKey, MlKem1024PublicKey,
};
use snow::params::{CipherChoice, DHChoice, HashChoice, KemChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver};
use snow::types::{Cipher, Dh, Hash, Kem, Random};
use zeroize::{Zeroize, Zeroizing};

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

    fn resolve_kem(&self, choice: &KemChoice) -> Option<Box<dyn Kem>> {
        match choice {
            KemChoice::Kyber1024 => Some(Box::new(Kyber1024 {
                rng: self.rng.clone(),
                keys: None,
            })),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

const KYBER1024_PUBLIC_LEN: usize = 1568;
const KYBER1024_CIPHERTEXT_LEN: usize = 1568;
const KYBER1024_SHARED_LEN: usize = 32;
const KYBER1024_KEYGEN_SEED_LEN: usize = 64;

/// The KEM snow's `hfs` names call "Kyber1024", from libcrux-ml-kem, with
/// randomness from the handshake's RNG.
///
/// snow's default resolver runs pqcrypto-kyber 0.8, which is PQClean's
/// FIPS 203 draft: its encapsulation and decapsulation are ML-KEM-1024's
/// (K, r = G(m ‖ H(ek)); rejection key J(z ‖ c)), only key generation
/// differs (G(d) without the final standard's `k` byte). Key generation is
/// local, so ML-KEM-1024 here is wire-compatible with snow in both roles
/// (`tests/hybrid.rs` checks it).
struct Kyber1024 {
    rng: SharedRng,
    /// (public, private) after `generate`; boxed, 4.6 KiB together.
    keys: Option<(Box<MlKem1024PublicKey>, Box<MlKem1024PrivateKey>)>,
}

impl Drop for Kyber1024 {
    fn drop(&mut self) {
        if let Some((_, private)) = self.keys.as_mut() {
            private[0..].zeroize();
        }
    }
}

/// Copies a KEM shared secret into snow's buffer and wipes our copy, even
/// when the buffer is too short.
fn move_shared_secret(
    mut shared: [u8; KYBER1024_SHARED_LEN],
    out: &mut [u8],
) -> Result<(), snow::Error> {
    let result = match out.get_mut(..KYBER1024_SHARED_LEN) {
        Some(out) => {
            out.copy_from_slice(&shared);
            Ok(())
        }
        None => Err(snow::Error::Kem),
    };
    shared.zeroize();
    result
}

/// What `pubkey` shows before a key exists (or if the RNG failed): snow's
/// trait cannot report a keygen failure, so we send a key we cannot decrypt
/// for and the handshake fails at `decapsulate` instead of panicking.
static NO_KYBER_KEY: [u8; KYBER1024_PUBLIC_LEN] = [0; KYBER1024_PUBLIC_LEN];

impl Kem for Kyber1024 {
    fn name(&self) -> &'static str {
        "Kyber1024"
    }
    fn pub_len(&self) -> usize {
        KYBER1024_PUBLIC_LEN
    }
    fn ciphertext_len(&self) -> usize {
        KYBER1024_CIPHERTEXT_LEN
    }
    fn shared_secret_len(&self) -> usize {
        KYBER1024_SHARED_LEN
    }
    fn generate(&mut self, rng: &mut dyn Random) {
        let mut seed = Zeroizing::new([0u8; KYBER1024_KEYGEN_SEED_LEN]);
        if rng.try_fill_bytes(&mut seed[..]).is_err() {
            self.keys = None;
            return;
        }
        let (private, public) = mlkem1024::generate_key_pair(*seed).into_parts();
        if let Some((_, old)) = self.keys.as_mut() {
            old[0..].zeroize();
        }
        self.keys = Some((Box::new(public), Box::new(private)));
    }
    fn pubkey(&self) -> &[u8] {
        match &self.keys {
            Some((public, _)) => public.as_slice(),
            None => &NO_KYBER_KEY,
        }
    }
    fn encapsulate(
        &self,
        pubkey: &[u8],
        shared_secret_out: &mut [u8],
        ciphertext_out: &mut [u8],
    ) -> Result<(usize, usize), snow::Error> {
        let public: [u8; KYBER1024_PUBLIC_LEN] = pubkey
            .get(..KYBER1024_PUBLIC_LEN)
            .and_then(|p| p.try_into().ok())
            .ok_or(snow::Error::Kem)?;
        let public = MlKem1024PublicKey::from(public);
        // FIPS 203's encapsulation key check (coefficients reduced mod q).
        if !mlkem1024::validate_public_key(&public) {
            return Err(snow::Error::Kem);
        }
        let mut m = Zeroizing::new([0u8; KYBER1024_SHARED_LEN]);
        rand_core::RngCore::try_fill_bytes(&mut self.rng.clone(), &mut m[..])
            .map_err(|_| snow::Error::Kem)?;
        let (ciphertext, shared) = mlkem1024::encapsulate(&public, *m);
        move_shared_secret(shared, shared_secret_out)?;
        ciphertext_out
            .get_mut(..KYBER1024_CIPHERTEXT_LEN)
            .ok_or(snow::Error::Kem)?
            .copy_from_slice(ciphertext.as_slice());
        Ok((KYBER1024_SHARED_LEN, KYBER1024_CIPHERTEXT_LEN))
    }
    fn decapsulate(
        &self,
        ciphertext: &[u8],
        shared_secret_out: &mut [u8],
    ) -> Result<usize, snow::Error> {
        let (_, private) = self.keys.as_ref().ok_or(snow::Error::Kem)?;
        let ciphertext: [u8; KYBER1024_CIPHERTEXT_LEN] = ciphertext
            .get(..KYBER1024_CIPHERTEXT_LEN)
            .and_then(|c| c.try_into().ok())
            .ok_or(snow::Error::Kem)?;
        let shared = mlkem1024::decapsulate(private, &MlKem1024Ciphertext::from(ciphertext));
        move_shared_secret(shared, shared_secret_out)?;
        Ok(KYBER1024_SHARED_LEN)
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
