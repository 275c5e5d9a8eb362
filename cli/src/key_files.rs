//! Key files given by path (`--identity`, `--kem-identity`, ...): one line
//! of base64, written with mode 0600 and never over an existing file.

use akex::crypto::Secret;
use akex::keys::{read_regular_file, MlKem768KeyPair, MAX_KEY_FILE_LEN};
use akex::Error;

/// Creates `path` holding one line of base64 of `bytes` (mode 0600; fails
/// if the file exists), like `akex::keys::write_new_identity`.
pub fn write_new_key_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let key_file_error = |reason: String| Error::KeyFile {
        path: path.display().to_string(),
        reason,
        source: None,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            key_file_error("already exists; refusing to overwrite".into())
        }
        _ => key_file_error(format!("cannot create: {e}")),
    })?;
    let line = zeroize::Zeroizing::new(format!("{}\n", b64(bytes)));
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| key_file_error(format!("cannot write: {e}")))
}

/// Reads a base64 key file (PEM armour lines are skipped).
pub fn read_key_file(path: &std::path::Path) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
    use base64::Engine;
    let key_file_error = |reason: String| Error::KeyFile {
        path: path.display().to_string(),
        reason,
        source: None,
    };
    let bytes = read_regular_file(path, MAX_KEY_FILE_LEN)
        .map_err(|e| key_file_error(format!("cannot read: {e}")))?;
    let text = zeroize::Zeroizing::new(
        String::from_utf8(bytes.to_vec()).map_err(|_| key_file_error("not a base64 key".into()))?,
    );
    let body: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
        text.lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect(),
    );
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map(zeroize::Zeroizing::new)
        .map_err(|_| key_file_error("not a base64 key".into()))
}

/// Loads an ML-KEM-768 key file: base64 of the 64-byte seed `d ‖ z`.
pub fn load_mlkem768(path: &std::path::Path) -> Result<MlKem768KeyPair, Error> {
    let bytes = read_key_file(path)?;
    const SEED_LEN: usize = MlKem768KeyPair::SEED_LEN;
    let seed = Secret::<SEED_LEN>::from_slice(&bytes).ok_or_else(|| Error::KeyFile {
        path: path.display().to_string(),
        reason: format!(
            "an ML-KEM-768 key must be a {SEED_LEN}-byte seed, found {} bytes",
            bytes.len()
        ),
        source: None,
    })?;
    Ok(MlKem768KeyPair::from_seed(&seed))
}

/// Loads an RSA-3072 key file: base64 (or PEM) of PKCS#8 DER.
#[cfg(feature = "rsa-kt")]
pub fn load_rsa3072(path: &std::path::Path) -> Result<akex::handshake::rsa::RsaKeyPair, Error> {
    akex::handshake::rsa::RsaKeyPair::from_pkcs8(&read_key_file(path)?)
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
