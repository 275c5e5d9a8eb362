//! Passphrases for the key store: AKEX_PASSPHRASE, `--passphrase-fd`, a
//! prompt; never an argument. And the scrypt cost of new key files.

use std::path::PathBuf;
use std::sync::OnceLock;

use akex::error::{ConfigError, KeyStoreError};
use akex::keys::{Passphrase, Protection, DEFAULT_SCRYPT_LOG_N};
use akex::Error;

pub fn set_passphrase_fd(fd: Option<u32>) {
    if let Some(fd) = fd {
        let _ = PASSPHRASE_FD.set(fd);
    }
}

static PASSPHRASE_FD: OnceLock<u32> = OnceLock::new();

/// `--passphrase-fd FD`: the first line read from the descriptor.
fn passphrase_from_fd(fd: u32) -> Result<Passphrase, Error> {
    let path = PathBuf::from(format!("/dev/fd/{fd}"));
    let mut text = zeroize::Zeroizing::new(String::new());
    // Bounded: the descriptor may be a pipe that never ends.
    std::fs::File::open(&path)
        .and_then(|f| {
            std::io::Read::read_to_string(&mut std::io::Read::take(f, 64 * 1024), &mut text)
        })
        .map_err(|e| {
            Error::from(KeyStoreError::NoPassphrase(format!(
                "cannot read --passphrase-fd {fd}: {e}"
            )))
        })?;
    let line = text.split('\n').next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(KeyStoreError::NoPassphrase(format!(
            "--passphrase-fd {fd} gave an empty passphrase"
        ))
        .into());
    }
    Ok(Passphrase::new(line.to_string()))
}

/// The passphrase: AKEX_PASSPHRASE, else `--passphrase-fd`, else a prompt
/// when a terminal is attached, else an error. Never a command-line
/// argument.
pub fn passphrase(confirm: bool) -> Result<Passphrase, Error> {
    use std::io::IsTerminal;
    if let Ok(text) = std::env::var("AKEX_PASSPHRASE") {
        if text.is_empty() {
            return Err(KeyStoreError::NoPassphrase("AKEX_PASSPHRASE is empty".into()).into());
        }
        return Ok(Passphrase::new(text));
    }
    if let Some(fd) = PASSPHRASE_FD.get() {
        return passphrase_from_fd(*fd);
    }
    if !std::io::stdin().is_terminal() {
        return Err(KeyStoreError::NoPassphrase(
            "set AKEX_PASSPHRASE, give --passphrase-fd or run from a terminal to be prompted"
                .into(),
        )
        .into());
    }
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map_err(|e| Error::from(KeyStoreError::NoPassphrase(format!("cannot read it: {e}"))))
    };
    let first = read("akex key store passphrase: ")?;
    if confirm {
        let second = zeroize::Zeroizing::new(read("again: ")?);
        if first != *second {
            return Err(KeyStoreError::NoPassphrase("the passphrases differ".into()).into());
        }
    }
    Ok(Passphrase::new(first))
}

/// The scrypt work factor for new key files: AKEX_SCRYPT_LOG_N (1..=22; small
/// values are for tests only), else the secure default.
pub fn scrypt_log_n() -> Result<u8, Error> {
    match std::env::var("AKEX_SCRYPT_LOG_N") {
        Ok(v) => v
            .parse::<u8>()
            .ok()
            .filter(|n| (1..=22).contains(n))
            .ok_or_else(|| ConfigError::Invalid("AKEX_SCRYPT_LOG_N must be 1..=22".into()).into()),
        Err(_) => Ok(DEFAULT_SCRYPT_LOG_N),
    }
}

/// Protection for writing new key files.
pub fn protection(insecure_plaintext: bool, confirm: bool) -> Result<Protection, Error> {
    if insecure_plaintext {
        return Ok(Protection::InsecurePlaintext);
    }
    Ok(Protection::Passphrase {
        passphrase: passphrase(confirm)?,
        log_n: scrypt_log_n()?,
    })
}
