//! RFC 7512 `pkcs11:` URIs, the names of keys in tokens:
//! `pkcs11:token=akex;object=server-sig;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so`.
//!
//! Path attributes pick the token (`token`, `manufacturer`, `model`,
//! `serial`, `slot-id`) and the key (`object` is the label `CKA_LABEL`,
//! `id` the bytes of `CKA_ID`, `type` must be `private` if given); the
//! query may name the module (`module-path`). A PIN never travels in a
//! URI: `pin-value` and `pin-source` are refused (the PIN comes from an
//! environment variable, a file descriptor or a prompt).

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, HsmError};

/// A parsed `pkcs11:` URI. [`Display`](fmt::Display) writes it back in a
/// canonical order with percent-encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pkcs11Uri {
    /// `token`: the token's label (`CK_TOKEN_INFO.label`, blanks trimmed).
    pub token: Option<String>,
    /// `manufacturer`: the token's manufacturer.
    pub manufacturer: Option<String>,
    /// `model`: the token's model.
    pub model: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `slot-id`: the slot's number.
    pub slot_id: Option<u64>,
    /// `object`: the key's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `id`: the key's `CKA_ID` bytes.
    pub id: Option<Vec<u8>>,
    /// `module-path` (query): the module's shared library.
    pub module_path: Option<PathBuf>,
}

fn invalid(uri: &str, reason: impl Into<String>) -> Error {
    HsmError::InvalidUri {
        uri: uri.to_string(),
        reason: reason.into(),
    }
    .into()
}

/// Percent-decodes `text` (RFC 3986): `%XX` pairs, anything else as is.
fn decode(uri: &str, text: &str) -> Result<Vec<u8>, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(uri, "a % is not followed by two hex digits"))?;
            out.push(pair);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn decode_text(uri: &str, name: &str, text: &str) -> Result<String, Error> {
    String::from_utf8(decode(uri, text)?)
        .map_err(|_| invalid(uri, format!("{name} is not UTF-8 after percent-decoding")))
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and
/// `/` in paths).
fn encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI. Unknown or repeated attributes, a `type`
    /// other than `private`, an empty value and any PIN in the URI are
    /// errors ([`HsmError::InvalidUri`]; a URI with a PIN is not echoed).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let lower = text.to_ascii_lowercase();
        if lower.contains("pin-value") || lower.contains("pin-source") {
            return Err(invalid(
                "<not shown: it carries a PIN>",
                "a PIN never goes in a URI: use AKEX_PKCS11_PIN, --pin-fd or the prompt",
            ));
        }
        let rest = text
            .strip_prefix("pkcs11:")
            .ok_or_else(|| invalid(text, "it does not start with pkcs11:"))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        let pairs = path
            .split(';')
            .filter(|a| !a.is_empty())
            .map(|a| (a, false))
            .chain(
                query
                    .into_iter()
                    .flat_map(|q| q.split('&'))
                    .filter(|a| !a.is_empty())
                    .map(|a| (a, true)),
            );
        for (attr, in_query) in pairs {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| invalid(text, format!("{attr:?} is not name=value")))?;
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(invalid(text, format!("{name} is given twice")));
            }
            if value.is_empty() {
                return Err(invalid(text, format!("{name} is empty")));
            }
            seen.push(name.clone());
            match (name.as_str(), in_query) {
                ("token", false) => uri.token = Some(decode_text(text, &name, value)?),
                ("manufacturer", false) => {
                    uri.manufacturer = Some(decode_text(text, &name, value)?)
                }
                ("model", false) => uri.model = Some(decode_text(text, &name, value)?),
                ("serial", false) => uri.serial = Some(decode_text(text, &name, value)?),
                ("slot-id", false) => {
                    let n = decode_text(text, &name, value)?;
                    uri.slot_id = Some(
                        n.parse()
                            .map_err(|_| invalid(text, "slot-id is not a number"))?,
                    );
                }
                ("object", false) => uri.object = Some(decode_text(text, &name, value)?),
                ("id", false) => uri.id = Some(decode(text, value)?),
                ("type", false) => {
                    if decode_text(text, &name, value)? != "private" {
                        return Err(invalid(
                            text,
                            "type must be private (akex names private keys)",
                        ));
                    }
                }
                ("module-path", true) => {
                    uri.module_path = Some(PathBuf::from(decode_text(text, &name, value)?))
                }
                (other, _) => {
                    return Err(invalid(
                        text,
                        format!(
                            "unsupported attribute {other} (akex reads token, manufacturer, \
                             model, serial, slot-id, object, id, type and ?module-path)"
                        ),
                    ))
                }
            }
        }
        Ok(uri)
    }

    /// Checks that the URI names a key: `object=` or `id=`.
    pub fn require_key(&self) -> Result<(), Error> {
        if self.object.is_none() && self.id.is_none() {
            return Err(invalid(
                &self.to_string(),
                "name the key with object=... or id=...",
            ));
        }
        Ok(())
    }

    /// The token attributes, as they appear in the URI (for messages).
    pub fn token_description(&self) -> String {
        let only = Pkcs11Uri {
            object: None,
            id: None,
            module_path: None,
            ..self.clone()
        };
        let text = only.to_string();
        match text.strip_prefix("pkcs11:") {
            Some("") => "(any token)".into(),
            Some(rest) => rest.to_string(),
            None => text,
        }
    }

    /// The same URI with another `id`.
    pub fn with_id(&self, id: &[u8]) -> Self {
        Pkcs11Uri {
            id: Some(id.to_vec()),
            ..self.clone()
        }
    }
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Pkcs11Uri::parse(s)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = Vec::new();
        for (name, value) in [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
        ] {
            if let Some(v) = value {
                path.push(format!("{name}={}", encode(v.as_bytes(), false)));
            }
        }
        if let Some(n) = self.slot_id {
            path.push(format!("slot-id={n}"));
        }
        if let Some(v) = &self.object {
            path.push(format!("object={}", encode(v.as_bytes(), false)));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02X}")).collect();
            path.push(format!("id={hex}"));
        }
        write!(f, "pkcs11:{}", path.join(";"))?;
        if let Some(p) = &self.module_path {
            let bytes = p.to_string_lossy();
            write!(f, "?module-path={}", encode(bytes.as_bytes(), true))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc7512_examples_and_round_trips() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;\
             model=1.0;object=my-certificate;type=private;id=%69%95%3E%5C%F4?module-path=/usr/lib/x.so",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(uri.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(uri.id.as_deref(), Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4][..]));
        assert_eq!(uri.module_path, Some(PathBuf::from("/usr/lib/x.so")));
        let again = Pkcs11Uri::parse(&uri.to_string()).unwrap();
        assert_eq!(again, uri);
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:token=akex;object=server-sig")
                .unwrap()
                .to_string(),
            "pkcs11:token=akex;object=server-sig"
        );
        let bare = Pkcs11Uri::parse("pkcs11:").unwrap();
        assert_eq!(bare.token_description(), "(any token)");
        assert!(bare.require_key().is_err());
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:token=a;slot-id=3;object=k")
                .unwrap()
                .token_description(),
            "token=a;slot-id=3"
        );
    }

    #[test]
    fn bad_uris_and_pins_are_refused_without_echoing_a_pin() {
        for (text, want) in [
            ("token=a", "pkcs11:"),
            ("pkcs11:token", "name=value"),
            ("pkcs11:token=a;token=b", "twice"),
            ("pkcs11:token=", "empty"),
            ("pkcs11:token=%zz", "two hex digits"),
            ("pkcs11:token=%ff%fe", "UTF-8"),
            ("pkcs11:type=cert;object=a", "type must be private"),
            ("pkcs11:slot-id=x", "not a number"),
            ("pkcs11:library-version=1", "unsupported attribute"),
            (
                "pkcs11:object=a?module-name=softhsm2",
                "unsupported attribute",
            ),
            ("pkcs11:module-path=/x.so", "unsupported attribute"),
        ] {
            let err = Pkcs11Uri::parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        for text in [
            "pkcs11:token=a;object=k?pin-value=123456",
            "pkcs11:token=a?PIN-SOURCE=file:/tmp/pin",
        ] {
            let err = Pkcs11Uri::parse(text).unwrap_err().to_string();
            assert!(err.contains("never goes in a URI"), "{err}");
            assert!(
                !err.contains("123456") && !err.contains("/tmp/pin"),
                "{err}"
            );
        }
    }
}
