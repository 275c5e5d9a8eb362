//! A token's user PIN, from an environment variable or a file descriptor
//! (the command line adds a prompt); never from an argument or a URI.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, HsmError};

/// The environment variable the command line reads the PIN from.
pub const PIN_ENV: &str = "AKEX_PKCS11_PIN";

/// A token's user PIN: zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct TokenPin(Zeroizing<String>);

impl TokenPin {
    /// Wraps a PIN (the `String` is moved, not copied).
    pub fn new(pin: String) -> Self {
        TokenPin(Zeroizing::new(pin))
    }

    /// The PIN in environment variable `var`: `Ok(None)` if it is unset,
    /// an error if it is set but empty or not UTF-8.
    pub fn from_env(var: &str) -> Result<Option<Self>, Error> {
        match std::env::var(var) {
            Ok(pin) if pin.is_empty() => Err(no_pin(format!("{var} is empty"))),
            Ok(pin) => Ok(Some(TokenPin::new(pin))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(no_pin(format!("{var} is not UTF-8"))),
        }
    }

    /// The first line read from the open file descriptor `fd` (through
    /// `/dev/fd/FD`, at most 4 KiB), without its `\n` or `\r\n`.
    pub fn from_fd(fd: u32) -> Result<Self, Error> {
        use std::io::Read;
        let mut text = Zeroizing::new(String::new());
        std::fs::File::open(format!("/dev/fd/{fd}"))
            .and_then(|f| f.take(4096).read_to_string(&mut text))
            .map_err(|e| no_pin(format!("cannot read file descriptor {fd}: {e}")))?;
        let line = text.split('\n').next().unwrap_or("");
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return Err(no_pin(format!("file descriptor {fd} gave an empty PIN")));
        }
        Ok(TokenPin::new(line.to_string()))
    }

    /// The PIN for cryptoki, in an allocation of exactly its size that
    /// `secrecy` zeroizes.
    pub(crate) fn auth(&self) -> cryptoki::types::AuthPin {
        cryptoki::types::AuthPin::new(Box::<str>::from(self.0.as_str()))
    }
}

fn no_pin(how: String) -> Error {
    HsmError::NoPin {
        token: "(any)".into(),
        how,
    }
    .into()
}

impl fmt::Debug for TokenPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenPin(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_and_read_from_a_descriptor() {
        let pin = TokenPin::new("123456".into());
        assert!(!format!("{pin:?}").contains("123456"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "654321\r\nrest\n").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd() as u32;
        let read = TokenPin::from_fd(fd).unwrap();
        assert_eq!(read.0.as_str(), "654321");
        assert!(TokenPin::from_fd(9999).is_err());
        std::fs::write(&path, "\n").unwrap();
        let empty = std::fs::File::open(&path).unwrap();
        let err = TokenPin::from_fd(empty.as_raw_fd() as u32).unwrap_err();
        assert!(err.to_string().contains("empty PIN"), "{err}");
    }
}
