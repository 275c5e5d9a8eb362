//! Datagram mode over UDP (protocols/datagram.md): a handshake that
//! survives loss, repeats and noise, then a [`DatagramSession`] with
//! explicit counters and a replay window.
//!
//! Every UDP payload is a packet: a kind byte, the connection id the
//! initiator picked (8 random bytes), then a body:
//!
//! | kind | from | body |
//! |---|---|---|
//! | `0x01` initiation | initiator | `token_len u8`, cookie token, handshake message 0 |
//! | `0x02` handshake | both | `index u8` (1, 2, ...), handshake message `index` |
//! | `0x03` record | both | a [`DatagramSession`] record |
//! | `0x04` cookie | responder | a token to carry in the initiation |
//! | `0x05` busy | responder | nothing: the responder is at a limit |
//!
//! The rules that make UDP safe to serve on the open internet:
//!
//! - **Anti-amplification.** Until the initiator's address is validated (a
//!   cookie came back, or a message arrived that needed ours to be
//!   written), a responder sends it at most three times the bytes it
//!   received from it.
//! - **Retransmission.** A side sends its last handshake message again on
//!   a timer ([`DatagramOptions::initial_rto`] doubling up to
//!   [`DatagramOptions::max_rto`]) and in answer to a repeat of the
//!   message it answered, only if the repeat is byte for byte what was
//!   read, at most once per half timer period, at most
//!   [`MAX_HANDSHAKE_RESENDS`] times, and never once the peer has shown it
//!   finished (its first authenticated record) or the handshake deadline
//!   passed.
//! - **Cookies.** A responder that is under load ([`CookiePolicy`]), or
//!   whose answer would not fit in the budget, first answers with a
//!   stateless token bound to the address and connection id; only an
//!   initiation that carries it back costs a DH or KEM operation.
//! - **Noise is dropped.** A packet that does not parse, carries another
//!   id, comes from another address during the handshake, or repeats or
//!   precedes what was read is dropped and counted
//!   ([`DatagramCounters`]); only a message at its turn reaches the
//!   handshake.
//! - **Roaming.** After the handshake, an authenticated record that is
//!   the newest so far moves the peer to the address it came from.
//!
//! [`connect_udp`] and [`accept_udp`] run one connection on their own
//! socket; [`DatagramServer`] serves many peers on one socket, by
//! connection id, under the same [`ServerLimits`](crate::transport::ServerLimits)
//! and events as the TCP server.

mod amplification;
mod cookie;
#[cfg(feature = "hazmat")]
pub(crate) mod engine;
mod link;
mod packet;
mod pump;
mod secure;
mod server;
mod stats;

use std::time::Duration;

use crate::error::{ConfigError, Error};
pub use crate::session::datagram::DatagramSession;
use crate::session::datagram::{MAX_DATAGRAM_PAYLOAD, OVERHEAD};
use crate::session::SessionConfig;

pub use amplification::{AmplificationBudget, AMPLIFICATION_FACTOR};
pub use cookie::{CookieJar, TOKEN_LEN, TOKEN_LIFETIME_SECS};
pub use packet::{
    ConnectionId, CONNECTION_ID_LEN, KIND_BUSY, KIND_COOKIE, KIND_HANDSHAKE, KIND_INITIATION,
    KIND_RECORD, MAX_TOKEN_LEN, PACKET_HEADER_LEN,
};
pub use pump::MAX_HANDSHAKE_RESENDS;
pub use secure::{accept_udp, connect_udp, SecureDatagram};
pub use server::DatagramServer;
pub use stats::{DatagramCounters, DatagramStats, DatagramStatsSnapshot};

/// Largest payload [`SecureDatagram::send`] accepts: a record must fit in
/// one UDP datagram (65507 bytes over IPv4) with its packet header.
pub const MAX_UDP_PAYLOAD: usize = {
    let udp = 65507 - PACKET_HEADER_LEN - OVERHEAD;
    if udp < MAX_DATAGRAM_PAYLOAD {
        udp
    } else {
        MAX_DATAGRAM_PAYLOAD
    }
};

/// When a responder asks an initiator to prove its address with a cookie
/// before it does any handshake work. Whatever the policy, it also asks
/// when its answer would exceed three times the initiation, and when the
/// initiator's IP address already has
/// [`ServerLimits::max_half_open_per_ip`](crate::transport::ServerLimits::max_half_open_per_ip)
/// unproven handshakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookiePolicy {
    /// For every new connection (one round trip more for everyone; no
    /// spoofed packet ever costs a DH).
    Always,
    /// Once this many handshakes are in progress at once.
    UnderLoad(usize),
}

impl Default for CookiePolicy {
    fn default() -> Self {
        CookiePolicy::UnderLoad(128)
    }
}

/// Handshake timers and session settings for datagram mode.
#[derive(Debug, Clone)]
pub struct DatagramOptions {
    /// The whole handshake must finish within this time (default 10 s).
    pub handshake_timeout: Duration,
    /// First retransmission delay of an unanswered handshake message
    /// (default 200 ms).
    pub initial_rto: Duration,
    /// Largest retransmission delay; the delay doubles up to it (default
    /// 2 s).
    pub max_rto: Duration,
    /// Rekey policy, ratchet interval and limits of the session.
    pub session: SessionConfig,
    /// When a responder asks for a cookie first (default: when 128
    /// handshakes are in progress).
    pub cookies: CookiePolicy,
}

impl Default for DatagramOptions {
    fn default() -> Self {
        DatagramOptions {
            handshake_timeout: Duration::from_secs(10),
            initial_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(2),
            session: SessionConfig::default(),
            cookies: CookiePolicy::default(),
        }
    }
}

impl DatagramOptions {
    /// Checks that the timers are usable: none zero, `max_rto` at least
    /// `initial_rto`, every one at most an hour.
    pub fn validate(&self) -> Result<(), Error> {
        const HOUR: Duration = Duration::from_secs(3600);
        let timers = [
            ("handshake_timeout", self.handshake_timeout),
            ("initial_rto", self.initial_rto),
            ("max_rto", self.max_rto),
        ];
        for (name, value) in timers {
            if value.is_zero() || value > HOUR {
                return Err(ConfigError::Invalid(format!(
                    "datagram {name} must be between 1 ns and one hour"
                ))
                .into());
            }
        }
        if self.max_rto < self.initial_rto {
            return Err(ConfigError::Invalid(
                "datagram max_rto must be at least initial_rto".into(),
            )
            .into());
        }
        Ok(())
    }

    fn timers(&self) -> pump::Timers {
        pump::Timers {
            initial_rto: self.initial_rto,
            max_rto: self.max_rto,
            handshake_timeout: self.handshake_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_timers_are_refused() {
        assert!(DatagramOptions::default().validate().is_ok());
        let ms = Duration::from_millis;
        for (hs, first, max) in [
            (Duration::ZERO, ms(200), ms(2000)),
            (ms(10_000), Duration::ZERO, ms(2000)),
            (ms(10_000), ms(300), ms(200)),
            (Duration::MAX, ms(200), ms(2000)),
            (ms(10_000), ms(200), Duration::from_secs(3601)),
        ] {
            let options = DatagramOptions {
                handshake_timeout: hs,
                initial_rto: first,
                max_rto: max,
                ..DatagramOptions::default()
            };
            assert!(options.validate().is_err(), "{hs:?} {first:?} {max:?}");
        }
    }
}
