//! akex mode: the building blocks of akex-native handshakes.
//!
//! - [`symmetric`]: the Noise-style symmetric state (SHA-256, HKDF-SHA256,
//!   an AEAD through [`crate::crypto::AeadKey`]) with labelled key
//!   derivations;
//! - the **hello** ([`encode_hello`], [`parse_hello`]): the bytes at the
//!   start of the initiator's first message that name the protocol;
//! - [`negotiate`]: [`NegotiatingResponder`], which reads the hello, checks
//!   it against an allow-list and hands the rest of the handshake to the
//!   chosen protocol.
//!
//! # Writing an akex-native protocol
//!
//! - The **initiator** starts its transcript with
//!   `SymmetricState::new(name)`, then writes the hello with
//!   [`encode_hello`] at the start of its first message and mixes those
//!   exact bytes into its transcript with `mix_hash` before anything else.
//! - The **responder** implements [`AkexResponder`]: its
//!   [`AkexResponder::mix_hello`] does the same `mix_hash(hello)` on its
//!   side; the [`NegotiatingResponder`] calls it before passing the rest of
//!   the first message (the bytes after the hello) to `read_message`.
//!
//! A rewritten hello therefore changes `h` on one side only, and the first
//! AEAD tag or signature over `h` fails: no downgrade. The wire format, the
//! label tree and the negotiation are specified in `protocols/akex-mode.md`.

pub mod negotiate;
pub mod symmetric;

#[allow(unused_imports)]
pub use negotiate::{NegotiatingResponder, ResponderFactory};
pub use symmetric::SymmetricState;

use crate::error::{ConfigError, Error, PeerIncompatible, PeerMisbehaved};
use crate::handshake::Handshake;

/// The four bytes every akex hello starts with.
pub const HELLO_MAGIC: &[u8; 4] = b"AKEX";
/// The hello version this implementation writes and accepts: 2, the wire
/// version of `protocols/akex-mode.md` (what changed from 1 is listed
/// there). A hello of any other version, 1 included, is
/// [`PeerIncompatible::UnsupportedVersion`].
pub const HELLO_VERSION: u8 = 2;
/// Longest protocol name a hello can carry.
pub const MAX_NAME_LEN: usize = 255;

/// The protocol names of akex mode all start with this prefix (Noise
/// names start with `Noise_`).
pub const AKEX_PREFIX: &str = "akex-";

/// Appends the hello for `protocol` to `out`:
/// `"AKEX" || version (u8) || name_len (u8) || name`.
///
/// Fails for an empty name or one longer than [`MAX_NAME_LEN`] bytes.
pub fn encode_hello(protocol: &str, out: &mut Vec<u8>) -> Result<(), Error> {
    let len = u8::try_from(protocol.len())
        .ok()
        .filter(|&n| n > 0 && is_name(protocol.as_bytes()))
        .ok_or_else(|| ConfigError::UnsupportedProtocol {
            name: protocol.to_string(),
            reason: "an akex protocol name must be 1 to 255 printable ASCII characters".into(),
        })?;
    out.extend_from_slice(HELLO_MAGIC);
    out.push(HELLO_VERSION);
    out.push(len);
    out.extend_from_slice(protocol.as_bytes());
    Ok(())
}

/// The hello for `protocol` as a new vector (see [`encode_hello`]).
pub fn hello(protocol: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(6 + protocol.len());
    encode_hello(protocol, &mut out)?;
    Ok(out)
}

/// Protocol names are printable ASCII without spaces (0x21 to 0x7e).
fn is_name(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// A parsed hello, borrowing from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedHello<'a> {
    /// The protocol the initiator chose.
    pub protocol: &'a str,
    /// The hello's bytes exactly as received (what both sides hash).
    pub bytes: &'a [u8],
    /// The rest of the first message, for the chosen protocol.
    pub rest: &'a [u8],
}

/// Parses the hello at the start of `message`.
///
/// Errors: [`PeerIncompatible::NotAkexMode`] if the magic is missing,
/// [`PeerIncompatible::UnsupportedVersion`] for another version,
/// [`PeerMisbehaved::MalformedHello`] if it is truncated or its name is
/// empty or not printable ASCII.
pub fn parse_hello(message: &[u8]) -> Result<ParsedHello<'_>, Error> {
    let Some(magic) = message.get(..4) else {
        return Err(PeerMisbehaved::MalformedHello.into());
    };
    if magic != HELLO_MAGIC {
        return Err(PeerIncompatible::NotAkexMode.into());
    }
    let (Some(&version), Some(&len)) = (message.get(4), message.get(5)) else {
        return Err(PeerMisbehaved::MalformedHello.into());
    };
    if version != HELLO_VERSION {
        return Err(PeerIncompatible::UnsupportedVersion(version).into());
    }
    let end = 6 + usize::from(len);
    let Some(name) = message.get(6..end) else {
        return Err(PeerMisbehaved::MalformedHello.into());
    };
    if name.is_empty() || !is_name(name) {
        return Err(PeerMisbehaved::MalformedHello.into());
    }
    let protocol = std::str::from_utf8(name).map_err(|_| PeerMisbehaved::MalformedHello)?;
    Ok(ParsedHello {
        protocol,
        bytes: &message[..end],
        rest: &message[end..],
    })
}

/// The responder side of an akex-native protocol, as the
/// [`NegotiatingResponder`] drives it.
pub trait AkexResponder: Handshake {
    /// Mixes the hello (its bytes exactly as received, see
    /// [`ParsedHello::bytes`]) into the transcript. Called once, before the
    /// first `read_message`, which then gets the bytes after the hello.
    fn mix_hello(&mut self, hello: &[u8]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trip() {
        let mut msg = hello("akex-x").unwrap();
        assert_eq!(msg, b"AKEX\x02\x06akex-x");
        msg.extend_from_slice(b"rest");
        let parsed = parse_hello(&msg).unwrap();
        assert_eq!(parsed.protocol, "akex-x");
        assert_eq!(parsed.bytes, b"AKEX\x02\x06akex-x");
        assert_eq!(parsed.rest, b"rest");
    }

    #[test]
    fn hello_errors_are_typed() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "MalformedHello"),
            (b"AKE", "MalformedHello"),
            (b"NOIS\x01\x01a", "NotAkexMode"),
            (b"AKEX", "MalformedHello"),
            (b"AKEX\x02", "MalformedHello"),
            (b"AKEX\x01\x01a", "UnsupportedVersion(1)"),
            (b"AKEX\x03\x01a", "UnsupportedVersion(3)"),
            (b"AKEX\x02\x05abc", "MalformedHello"),
            (b"AKEX\x02\x00", "MalformedHello"),
            (b"AKEX\x02\x02\xff\xfe", "MalformedHello"),
            (b"AKEX\x02\x02a b", "MalformedHello"),
        ];
        for (input, want) in cases {
            let err = parse_hello(input).unwrap_err();
            assert!(format!("{err:?}").contains(want), "{input:?}: {err:?}");
        }
        assert!(hello("").is_err());
        assert!(hello(&"a".repeat(256)).is_err());
        assert!(hello(&"a".repeat(255)).is_ok());
        assert!(hello("akex-é").is_err());
    }
}
