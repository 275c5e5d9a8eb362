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
use std::sync::Arc;

use snow::params::{CipherChoice, DHChoice, HashChoice, KemChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver};
use snow::types::{Cipher, Dh, Hash, Kem, Random};
use zeroize::{Zeroize, Zeroizing};

use super::aead::{AeadAlgorithm, AeadKey, TAG_LEN};
use super::rng::SharedRng;
use super::secret::{Secret, StaticSecret};
use super::x25519::X25519Private;

/// Resolves X25519, ChaChaPoly and AESGCM to aws-lc-rs and the RNG to the
/// one given; everything else to snow's default resolver.
pub struct AkexResolver {
    rng: SharedRng,
    local_static: Option<StaticSecret>,
}

impl AkexResolver {
    /// A resolver drawing randomness from `rng`.
    pub fn new(rng: SharedRng) -> Self {
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

    /// This resolver with snow's default one behind it, as snow's builder wants it.
    pub fn boxed_with_fallback(self) -> snow::resolvers::BoxedCryptoResolver {
        Box::new(FallbackResolver::new(
            Box::new(self),
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
            DHChoice::Curve25519 => Some(Box::new(AwsX25519 {
                known: self.local_static.clone(),
                ..AwsX25519::default()
            })),
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
        let resolver = AkexResolver::new(SharedRng::os()).with_local_static(Some(known.clone()));
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
            dh_from(&AkexResolver::new(SharedRng::os())),
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
