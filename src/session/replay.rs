//! A sliding anti-replay window (RFC 6479-style bitmap).
//!
//! The window remembers the highest counter accepted and which of the
//! [`WINDOW_SIZE`] counters below it were seen, in a ring of 64-bit words.
//! Advancing the window clears whole words instead of shifting the bitmap,
//! so each check costs O(1) on average (RFC 6479, section 2).

/// Counters tracked below the highest one accepted (2048 for the
/// bitmap, minus one word of slack as in RFC 6479).
pub const WINDOW_SIZE: u64 = (WORDS as u64 - 1) * 64;

const WORDS: usize = 33; // 32 words in the window plus one being cleared
const BITS: u64 = 64;

/// Why a counter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayCheck {
    /// Never seen and inside the window.
    Fresh,
    /// Already accepted.
    Replayed,
    /// Too far below the highest counter accepted to tell.
    TooOld,
}

/// The window. Check a counter with [`ReplayWindow::check`] *before*
/// decrypting, and [`ReplayWindow::accept`] it only after the record
/// authenticated, so forged records cannot move the window.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    bitmap: [u64; WORDS],
    /// Highest counter accepted plus one (0: nothing accepted yet).
    top: u64,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// An empty window.
    pub fn new() -> Self {
        ReplayWindow {
            bitmap: [0; WORDS],
            top: 0,
        }
    }

    /// The highest counter accepted, if any.
    pub fn highest(&self) -> Option<u64> {
        self.top.checked_sub(1)
    }

    /// Whether `counter` would be accepted.
    pub fn check(&self, counter: u64) -> ReplayCheck {
        if counter == u64::MAX {
            // The reserved nonce is never a valid record counter.
            return ReplayCheck::TooOld;
        }
        if self.top == 0 || counter >= self.top {
            return ReplayCheck::Fresh;
        }
        let highest = self.top - 1;
        if highest - counter >= WINDOW_SIZE {
            return ReplayCheck::TooOld;
        }
        let (word, bit) = Self::position(counter);
        if self.bitmap[word] & (1 << bit) != 0 {
            ReplayCheck::Replayed
        } else {
            ReplayCheck::Fresh
        }
    }

    /// Marks `counter` as seen; returns what [`ReplayWindow::check`] said.
    /// Only a `Fresh` counter changes the window.
    pub fn accept(&mut self, counter: u64) -> ReplayCheck {
        let verdict = self.check(counter);
        if verdict != ReplayCheck::Fresh {
            return verdict;
        }
        if self.top == 0 || counter >= self.top {
            // Clear the words between the old top and the new one.
            let old_word = if self.top == 0 {
                None
            } else {
                Some((self.top - 1) / BITS)
            };
            let new_word = counter / BITS;
            match old_word {
                Some(old) => {
                    let steps = (new_word - old).min(WORDS as u64);
                    for i in 1..=steps {
                        self.bitmap[((old + i) % WORDS as u64) as usize] = 0;
                    }
                }
                None => self.bitmap = [0; WORDS],
            }
            self.top = counter + 1;
        }
        let (word, bit) = Self::position(counter);
        self.bitmap[word] |= 1 << bit;
        ReplayCheck::Fresh
    }

    fn position(counter: u64) -> (usize, u64) {
        (((counter / BITS) % WORDS as u64) as usize, counter % BITS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.accept(0), ReplayCheck::Fresh);
        assert_eq!(w.accept(0), ReplayCheck::Replayed);
        assert_eq!(w.accept(5), ReplayCheck::Fresh);
        assert_eq!(w.accept(3), ReplayCheck::Fresh);
        assert_eq!(w.accept(3), ReplayCheck::Replayed);
        assert_eq!(w.accept(5 + WINDOW_SIZE), ReplayCheck::Fresh);
        assert_eq!(w.check(5), ReplayCheck::TooOld);
        assert_eq!(w.check(6), ReplayCheck::Fresh);
        assert_eq!(w.accept(u64::MAX), ReplayCheck::TooOld);
        assert_eq!(w.accept(u64::MAX - 1), ReplayCheck::Fresh);
        assert_eq!(w.check(u64::MAX - 1), ReplayCheck::Replayed);
        assert_eq!(w.check(1000), ReplayCheck::TooOld);
        const { assert!(WINDOW_SIZE >= 2048) };
    }
}
