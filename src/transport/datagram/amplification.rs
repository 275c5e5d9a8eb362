//! The anti-amplification rule (RFC 9000 §8.1): until a peer's address is
//! validated, we send it at most three times the bytes we received from it.

/// Bytes we may send per byte received from an unvalidated address.
pub const AMPLIFICATION_FACTOR: u64 = 3;

/// What an unvalidated address has sent us and what we sent it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AmplificationBudget {
    received: u64,
    sent: u64,
    validated: bool,
}

impl AmplificationBudget {
    /// A budget for an address that is already validated (for example the
    /// one an initiator chose to send to).
    pub fn validated() -> Self {
        AmplificationBudget {
            validated: true,
            ..Self::default()
        }
    }

    /// `n` bytes (a whole UDP payload) arrived from the address.
    pub fn on_received(&mut self, n: usize) {
        self.received = self.received.saturating_add(n as u64);
    }

    /// True if `n` more bytes may be sent now.
    pub fn allows(&self, n: usize) -> bool {
        self.validated
            || self.sent.saturating_add(n as u64)
                <= self.received.saturating_mul(AMPLIFICATION_FACTOR)
    }

    /// `n` bytes were sent to the address.
    pub fn on_sent(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n as u64);
    }

    /// The address proved it receives what we send there: no limit any more.
    pub fn validate(&mut self) {
        self.validated = true;
    }

    /// True once the address is validated.
    pub fn is_validated(&self) -> bool {
        self.validated
    }

    /// Bytes received from the address.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes sent to the address.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_times_what_arrived_until_validated() {
        let mut b = AmplificationBudget::default();
        assert!(!b.allows(1));
        b.on_received(100);
        assert!(b.allows(300) && !b.allows(301));
        b.on_sent(250);
        assert!(b.allows(50) && !b.allows(51));
        b.validate();
        assert!(b.allows(1 << 40));
        assert!(AmplificationBudget::validated().allows(usize::MAX));
    }
}
