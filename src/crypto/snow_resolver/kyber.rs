//! The KEM snow's `hfs` names call "Kyber1024", from libcrux-ml-kem.

use libcrux_ml_kem::mlkem1024::{
    self, MlKem1024Ciphertext, MlKem1024PrivateKey, MlKem1024PublicKey,
};
use snow::params::KemChoice;
use snow::types::{Kem, Random};
use zeroize::{Zeroize, Zeroizing};

use super::super::rng::{RandomSource, SharedRng};

pub(super) fn resolve(choice: &KemChoice, rng: &SharedRng) -> Option<Box<dyn Kem>> {
    match choice {
        KemChoice::Kyber1024 => Some(Box::new(Kyber1024 {
            rng: rng.clone(),
            keys: None,
        })),
        #[allow(unreachable_patterns)]
        _ => None,
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
/// (`tests/hybrid_noise_hfs.rs` checks it).
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
        self.rng.clone().fill_bytes(&mut m[..]);
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
