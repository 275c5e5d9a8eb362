//! Randomness is passed in: the sans-IO core never reaches for a global RNG.

use std::sync::{Arc, Mutex};

pub use rand_core::OsRng;
use rand_core::{CryptoRng, CryptoRngCore, RngCore};

/// A cryptographic RNG that can be shared between a handshake and the code
/// that built it (snow asks for its RNG through a `&self` resolver).
#[derive(Clone)]
pub struct SharedRng(Arc<Mutex<Box<dyn CryptoRngCore + Send>>>);

impl SharedRng {
    /// Wraps an RNG.
    pub fn new(rng: Box<dyn CryptoRngCore + Send>) -> Self {
        SharedRng(Arc::new(Mutex::new(rng)))
    }

    /// The operating system's RNG.
    pub fn os() -> Self {
        Self::new(Box::new(OsRng))
    }
}

impl std::fmt::Debug for SharedRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedRng")
    }
}

impl RngCore for SharedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // A poisoned lock means another thread panicked mid-draw; the RNG
        // state itself is still usable.
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard.try_fill_bytes(dest)
    }
}

impl CryptoRng for SharedRng {}

/// Replays a fixed byte string, then fails. For known-answer tests only:
/// it makes "random" ephemeral keys equal to a vector's.
#[derive(Debug, Clone)]
pub struct ScriptedRng {
    bytes: Vec<u8>,
    pos: usize,
}

impl ScriptedRng {
    /// An RNG that yields `bytes` in order.
    pub fn new(bytes: Vec<u8>) -> Self {
        ScriptedRng { bytes, pos: 0 }
    }
}

impl RngCore for ScriptedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // Exhausting a script is a bug in the test that built it.
        self.try_fill_bytes(dest)
            .expect("ScriptedRng ran out of scripted bytes")
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        let end = self.pos + dest.len();
        if end > self.bytes.len() {
            return Err(rand_core::Error::new("scripted RNG exhausted"));
        }
        dest.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
        Ok(())
    }
}

impl CryptoRng for ScriptedRng {}
