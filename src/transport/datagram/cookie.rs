//! Stateless address-validation tokens (protocols/datagram.md, "Cookies").
//!
//! A token proves that whoever sends it received a packet we sent to its
//! address, recently, for this connection id. It is
//!
//! ```text
//! token = t u32 BE || HMAC-SHA256(K, "akex udp cookie v1" || t u32 BE || ip [16] || port u16 BE || cid [8])[..16]
//! ```
//!
//! with `t` the time in seconds since the Unix epoch when it was made, `ip`
//! the address as 16 bytes (IPv4 mapped into IPv6), and `K` a secret only
//! the responder (or every responder behind one address) knows. Checking a
//! token costs one HMAC and needs no state.

use std::net::{IpAddr, SocketAddr};

use aws_lc_rs::hmac;
use subtle::ConstantTimeEq;

use super::packet::ConnectionId;
use crate::crypto::{OsRng, RandomSource};

/// Length of the tokens a [`CookieJar`] makes.
pub const TOKEN_LEN: usize = 4 + MAC_LEN;
const MAC_LEN: usize = 16;
/// How long a token stays valid, in seconds.
pub const TOKEN_LIFETIME_SECS: u32 = 30;
/// How far in the future a token's time may be (clock skew between
/// responders sharing a key).
const MAX_SKEW_SECS: u32 = 2;
const LABEL: &[u8] = b"akex udp cookie v1";

/// Makes and checks address-validation tokens under one secret key.
pub struct CookieJar {
    key: hmac::Key,
}

impl std::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieJar { key: <secret> }")
    }
}

impl Default for CookieJar {
    fn default() -> Self {
        Self::new()
    }
}

impl CookieJar {
    /// A jar with a fresh random key.
    pub fn new() -> Self {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut key[..]);
        Self::from_key(&key)
    }

    /// A jar with a given key: for responders behind one address (a load
    /// balancer) that must accept each other's tokens, and for test
    /// vectors. Keep the key secret; anyone holding it can mint tokens.
    pub fn from_key(key: &[u8; 32]) -> Self {
        CookieJar {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    fn mac(&self, time: u32, peer: SocketAddr, cid: &ConnectionId) -> [u8; MAC_LEN] {
        let ip = match peer.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(LABEL);
        ctx.update(&time.to_be_bytes());
        ctx.update(&ip.octets());
        ctx.update(&peer.port().to_be_bytes());
        ctx.update(cid);
        let tag = ctx.sign();
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
        mac
    }

    /// A token for `peer` and `cid`, made at `now` (Unix seconds).
    pub fn mint(&self, now: u32, peer: SocketAddr, cid: &ConnectionId) -> [u8; TOKEN_LEN] {
        let mut token = [0u8; TOKEN_LEN];
        token[..4].copy_from_slice(&now.to_be_bytes());
        token[4..].copy_from_slice(&self.mac(now, peer, cid));
        token
    }

    /// True if `token` was made by this jar's key for `peer` and `cid`
    /// within [`TOKEN_LIFETIME_SECS`] before `now`.
    pub fn check(&self, now: u32, peer: SocketAddr, cid: &ConnectionId, token: &[u8]) -> bool {
        let Ok(token) = <&[u8; TOKEN_LEN]>::try_from(token) else {
            return false;
        };
        let time = u32::from_be_bytes([token[0], token[1], token[2], token[3]]);
        let fresh = time <= now.saturating_add(MAX_SKEW_SECS)
            && now.saturating_sub(time) <= TOKEN_LIFETIME_SECS;
        // The MAC is checked whatever the time, so both cost the same.
        let mac_ok = self.mac(time, peer, cid).ct_eq(&token[4..]).into();
        fresh && mac_ok
    }
}

/// Seconds since the Unix epoch, for [`CookieJar::mint`] and
/// [`CookieJar::check`] (0 on a clock before 1970).
pub(crate) fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_address_port_id_and_time() {
        let jar = CookieJar::from_key(&[9; 32]);
        let peer: SocketAddr = "192.0.2.1:4433".parse().unwrap();
        let cid = [1u8; 8];
        let token = jar.mint(1000, peer, &cid);
        assert!(jar.check(1000, peer, &cid, &token));
        assert!(jar.check(1000 + TOKEN_LIFETIME_SECS, peer, &cid, &token));
        assert!(!jar.check(1001 + TOKEN_LIFETIME_SECS, peer, &cid, &token));
        assert!(!jar.check(900, peer, &cid, &token), "made in the future");
        // Up to 2 s of clock skew between responders sharing a key.
        assert!(jar.check(998, peer, &cid, &token));
        assert!(!jar.check(997, peer, &cid, &token));
        assert!(!jar.check(1000, "192.0.2.2:4433".parse().unwrap(), &cid, &token));
        assert!(!jar.check(1000, "192.0.2.1:4434".parse().unwrap(), &cid, &token));
        assert!(!jar.check(1000, peer, &[2u8; 8], &token));
        assert!(!jar.check(1000, peer, &cid, &token[..19]));
        let mut bad = token;
        bad[10] ^= 1;
        assert!(!jar.check(1000, peer, &cid, &bad));
        assert!(!CookieJar::from_key(&[8; 32]).check(1000, peer, &cid, &token));
        // IPv4 and its IPv6-mapped form are one address.
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:4433".parse().unwrap();
        assert!(jar.check(1000, mapped, &cid, &token));
    }
}
