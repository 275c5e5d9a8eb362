//! Randomness is passed in: the sans-IO core never reaches for a global RNG.
//!
//! [`RandomSource`] is akex's own trait, so callers are not tied to one
//! version of `rand`: [`OsRng`] draws from the operating system (through
//! aws-lc), and any other cryptographically secure generator can be wrapped
//! in a type that implements the trait.

use std::sync::{Arc, Mutex};

/// A cryptographically secure source of random bytes.
///
/// Implementations must be unpredictable to an attacker: every ephemeral
/// key, nonce and KEM encapsulation is drawn from it. There is no way to
/// report a failure: an implementation that cannot produce randomness must
/// panic rather than return predictable bytes.
pub trait RandomSource: Send {
    /// Fills `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

/// The operating system's generator (`getrandom(2)` on Linux, through
/// aws-lc).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRng;

impl RandomSource for OsRng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The OS generator only fails on a broken system; continuing with
        // predictable bytes would be worse than stopping.
        aws_lc_rs::rand::fill(dest).expect("the operating system's random number generator failed");
    }
}

impl<R: RandomSource + ?Sized> RandomSource for &mut R {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        (**self).fill_bytes(dest)
    }
}

impl<R: RandomSource + ?Sized> RandomSource for Box<R> {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        (**self).fill_bytes(dest)
    }
}

/// A generator shared between a handshake and the code that built it (snow
/// asks for its RNG through a `&self` resolver, and configurations are
/// cloned per connection).
#[derive(Clone)]
pub struct SharedRng(Option<Arc<Mutex<Box<dyn RandomSource>>>>);

impl SharedRng {
    /// Wraps a generator.
    pub fn new(rng: impl RandomSource + 'static) -> Self {
        SharedRng(Some(Arc::new(Mutex::new(Box::new(rng)))))
    }

    /// The operating system's generator (no lock, no allocation).
    pub fn os() -> Self {
        SharedRng(None)
    }
}

impl std::fmt::Debug for SharedRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "SharedRng(injected)"
        } else {
            "SharedRng(os)"
        })
    }
}

impl RandomSource for SharedRng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        match &self.0 {
            None => OsRng.fill_bytes(dest),
            Some(shared) => {
                // A poisoned lock means another thread panicked mid-draw;
                // the generator itself is still usable.
                let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
                guard.fill_bytes(dest)
            }
        }
    }
}

/// Replays a fixed byte string, then panics. For known-answer tests only:
/// it makes "random" ephemeral keys equal to a vector's. Never use it for
/// anything else: every byte it yields is known in advance.
#[cfg(any(test, feature = "hazmat"))]
#[derive(Debug, Clone)]
pub struct ReplayRng {
    bytes: Vec<u8>,
    pos: usize,
}

#[cfg(any(test, feature = "hazmat"))]
impl ReplayRng {
    /// A generator that yields `bytes` in order.
    pub fn new(bytes: Vec<u8>) -> Self {
        ReplayRng { bytes, pos: 0 }
    }

    /// How many bytes have been drawn so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

#[cfg(any(test, feature = "hazmat"))]
impl RandomSource for ReplayRng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let end = self.pos + dest.len();
        // Exhausting a script is a bug in the test that built it.
        let src = self
            .bytes
            .get(self.pos..end)
            .expect("ReplayRng ran out of scripted bytes");
        dest.copy_from_slice(src);
        self.pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_rng_fills_and_differs() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        OsRng.fill_bytes(&mut a);
        OsRng.fill_bytes(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn shared_rng_draws_in_order_across_clones() {
        let mut a = SharedRng::new(ReplayRng::new((0u8..8).collect()));
        let mut b = a.clone();
        let (mut x, mut y) = ([0u8; 4], [0u8; 4]);
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        assert_eq!((x, y), ([0, 1, 2, 3], [4, 5, 6, 7]));
    }
}
