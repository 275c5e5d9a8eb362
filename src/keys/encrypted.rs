//! Private key files at rest: PKCS#8 in PEM. Encrypted files hold
//! `ENCRYPTED PRIVATE KEY` blocks (RFC 5958 `EncryptedPrivateKeyInfo`,
//! PBES2 with scrypt (RFC 7914) and AES-256-CBC), which OpenSSL and other
//! tools read; `--insecure-plaintext` files hold plain `PRIVATE KEY` blocks.
//! Both blocks of one file share one scrypt run (same salt and parameters,
//! different IVs): the passphrase is the same, and loading costs one
//! derivation instead of two.

use std::fmt;
use std::path::Path;

use crate::crypto::{OsRng, RandomSource};
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use pkcs8::der::pem::{self, LineEnding};
use pkcs8::der::{Decode, Encode};
use pkcs8::pkcs5::pbes2::{self, EncryptionScheme, Kdf, ScryptParams};
use pkcs8::pkcs5::{scrypt, EncryptionScheme as Scheme};
use pkcs8::EncryptedPrivateKeyInfo;
use zeroize::Zeroizing;

use crate::error::{Error, KeyStoreError};

/// The default scrypt work factor (log2 N) for new key files: about one
/// second and 256 MiB on a current machine (r = 8, p = 1).
pub const DEFAULT_SCRYPT_LOG_N: u8 = 18;

/// The largest work factor accepted, for writing and reading alike, so a
/// hostile file cannot pin a CPU or exhaust memory (N = 2^22 with r = 8 is
/// 4 GiB).
pub const MAX_SCRYPT_LOG_N: u8 = 22;

/// scrypt's r and p in new files (RFC 7914's recommendation).
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// Bounds on files read: memory is 128·r·N bytes, work N·r·p.
const MAX_SCRYPT_R: u32 = 32;
const MAX_SCRYPT_P: u32 = 16;
const MAX_SCRYPT_MEMORY: u128 = 4 << 30;
const MAX_SCRYPT_WORK: u128 = (1 << MAX_SCRYPT_LOG_N) * 8 * 4;

const PEM_PLAIN: &str = "PRIVATE KEY";
const PEM_ENCRYPTED: &str = "ENCRYPTED PRIVATE KEY";

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// A passphrase: zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase (the `String` is moved, not copied).
    pub fn new(text: String) -> Self {
        Passphrase(Zeroizing::new(text))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// True if the passphrase is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// How a new private key file is protected at rest.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Protection {
    /// Encrypted PKCS#8 (scrypt + AES-256-CBC); `log_n` is scrypt's work
    /// factor for new files (1..=22).
    Passphrase {
        /// The passphrase.
        passphrase: Passphrase,
        /// scrypt's log2 N for new files.
        log_n: u8,
    },
    /// No encryption (`--insecure-plaintext`): only the file mode protects it.
    InsecurePlaintext,
}

impl Protection {
    /// Passphrase protection with the default work factor.
    pub fn passphrase(passphrase: Passphrase) -> Self {
        Protection::Passphrase {
            passphrase,
            log_n: DEFAULT_SCRYPT_LOG_N,
        }
    }

    /// True for the encrypted form.
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Protection::Passphrase { .. })
    }

    /// The passphrase, if any (what loading needs).
    pub fn passphrase_ref(&self) -> Option<&Passphrase> {
        match self {
            Protection::Passphrase { passphrase, .. } => Some(passphrase),
            Protection::InsecurePlaintext => None,
        }
    }
}

fn derive(
    passphrase: &Passphrase,
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Option<Zeroizing<[u8; 32]>> {
    let params = scrypt::Params::new(log_n, r, p, 32).ok()?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase.bytes(), salt, &params, key.as_mut()).ok()?;
    Some(key)
}

fn encoding_error(what: &str) -> Error {
    KeyStoreError::Unsupported(format!("cannot encode the key file: {what}")).into()
}

/// Seals PKCS#8 `PrivateKeyInfo` DER blocks into the PEM text of a key file.
pub(crate) fn seal(
    blocks: &[Zeroizing<Vec<u8>>],
    protection: &Protection,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut out = Zeroizing::new(Vec::new());
    let (passphrase, log_n) = match protection {
        Protection::InsecurePlaintext => {
            for der in blocks {
                let text = Zeroizing::new(
                    pem::encode_string(PEM_PLAIN, LineEnding::LF, der)
                        .map_err(|_| encoding_error("PEM"))?,
                );
                out.extend_from_slice(text.as_bytes());
            }
            return Ok(out);
        }
        Protection::Passphrase { passphrase, log_n } => (passphrase, *log_n),
    };
    if passphrase.is_empty() {
        return Err(KeyStoreError::NoPassphrase("the passphrase is empty".into()).into());
    }
    if !(1..=MAX_SCRYPT_LOG_N).contains(&log_n) {
        return Err(crate::error::ConfigError::Invalid(format!(
            "scrypt log2 N must be 1..={MAX_SCRYPT_LOG_N}, not {log_n}"
        ))
        .into());
    }
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let key = derive(passphrase, &salt, log_n, SCRYPT_R, SCRYPT_P)
        .ok_or_else(|| encoding_error("scrypt parameters"))?;
    for der in blocks {
        let mut iv = [0u8; 16];
        OsRng.fill_bytes(&mut iv);
        let encrypted =
            Aes256CbcEnc::new(key.as_ref().into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(der);
        let kdf = ScryptParams {
            salt: &salt,
            cost_parameter: 1u64 << log_n,
            block_size: SCRYPT_R as u16,
            parallelization: SCRYPT_P as u16,
            key_length: None,
        };
        let info = EncryptedPrivateKeyInfo {
            encryption_algorithm: pbes2::Parameters {
                kdf: kdf.into(),
                encryption: EncryptionScheme::Aes256Cbc { iv: &iv },
            }
            .into(),
            encrypted_data: &encrypted,
        };
        let der = info.to_der().map_err(|_| encoding_error("DER"))?;
        let text = pem::encode_string(PEM_ENCRYPTED, LineEnding::LF, &der)
            .map_err(|_| encoding_error("PEM"))?;
        out.extend_from_slice(text.as_bytes());
    }
    Ok(out)
}

/// Splits PEM text into its blocks (label, DER).
fn pem_blocks(text: &[u8]) -> Option<Vec<(String, Zeroizing<Vec<u8>>)>> {
    const END: &[u8] = b"-----END ";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = find(rest, b"-----BEGIN ") {
        let after = &rest[start..];
        let end = find(after, END)?;
        let close = find(&after[end + END.len()..], b"-----")? + end + END.len() + 5;
        let (label, der) = pem::decode_vec(&after[..close]).ok()?;
        blocks.push((label.to_string(), Zeroizing::new(der)));
        rest = &after[close..];
        if blocks.len() > 4 {
            return None;
        }
    }
    (!blocks.is_empty()).then_some(blocks)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Checks scrypt parameters read from a file against the bounds above,
/// before any memory is allocated for them.
fn bounded(params: &ScryptParams<'_>) -> Option<(u8, u32, u32)> {
    let n = params.cost_parameter;
    if n < 2 || !n.is_power_of_two() {
        return None;
    }
    let log_n = n.trailing_zeros() as u8;
    let (r, p) = (
        u32::from(params.block_size),
        u32::from(params.parallelization),
    );
    let ok = log_n <= MAX_SCRYPT_LOG_N
        && (1..=MAX_SCRYPT_R).contains(&r)
        && (1..=MAX_SCRYPT_P).contains(&p)
        && 128 * u128::from(r) * u128::from(n) <= MAX_SCRYPT_MEMORY
        && u128::from(n) * u128::from(r) * u128::from(p) <= MAX_SCRYPT_WORK
        && params.key_length.is_none_or(|l| l == 32)
        && (8..=64).contains(&params.salt.len());
    ok.then_some((log_n, r, p))
}

/// A derived key and the (salt, log N, r, p) it came from.
struct Derived {
    params: (Vec<u8>, u8, u32, u32),
    key: Zeroizing<[u8; 32]>,
}

/// Opens a key file: its PKCS#8 `PrivateKeyInfo` DER blocks. `encrypted`
/// is what the index recorded; a file whose form differs is corrupt. A
/// passphrase that does not decrypt is [`KeyStoreError::WrongPassphrase`].
pub(crate) fn open(
    bytes: &[u8],
    encrypted: bool,
    passphrase: Option<&Passphrase>,
    name: &str,
    path: &Path,
) -> Result<Vec<Zeroizing<Vec<u8>>>, Error> {
    let corrupt = |reason: &str| super::fsutil::corrupt(path, reason);
    let blocks = pem_blocks(bytes).ok_or_else(|| corrupt("not a PEM key file"))?;
    let wanted = if encrypted { PEM_ENCRYPTED } else { PEM_PLAIN };
    if blocks.iter().any(|(label, _)| label != wanted) {
        return Err(corrupt(&format!(
            "expected {wanted} blocks (the index says the key is {})",
            if encrypted {
                "encrypted"
            } else {
                "not encrypted"
            }
        )));
    }
    if !encrypted {
        return Ok(blocks.into_iter().map(|(_, der)| der).collect());
    }
    let passphrase = passphrase.ok_or_else(|| {
        KeyStoreError::NoPassphrase(format!("key {name:?} is encrypted and needs a passphrase"))
    })?;
    // Blocks written together share salt and parameters, hence the key.
    let mut cached: Option<Derived> = None;
    let mut out = Vec::with_capacity(blocks.len());
    for (_, der) in &blocks {
        let info = EncryptedPrivateKeyInfo::from_der(der)
            .map_err(|_| corrupt("not a PKCS#8 EncryptedPrivateKeyInfo"))?;
        let Scheme::Pbes2(params) = &info.encryption_algorithm else {
            return Err(corrupt(
                "only PBES2 with scrypt and AES-256-CBC is accepted",
            ));
        };
        let (Kdf::Scrypt(kdf), EncryptionScheme::Aes256Cbc { iv }) =
            (&params.kdf, params.encryption)
        else {
            return Err(corrupt(
                "only PBES2 with scrypt and AES-256-CBC is accepted",
            ));
        };
        let (log_n, r, p) = bounded(kdf).ok_or_else(|| {
            corrupt(
                "scrypt parameters outside the accepted bounds (log2 N <= 22, r <= 32, p <= 16)",
            )
        })?;
        let params = (kdf.salt.to_vec(), log_n, r, p);
        let key = match cached.take() {
            Some(d) if d.params == params => d,
            _ => Derived {
                key: derive(passphrase, kdf.salt, log_n, r, p)
                    .ok_or_else(|| corrupt("invalid scrypt parameters"))?,
                params,
            },
        };
        let key = &cached.insert(key).key;
        let plain = Aes256CbcDec::new(key.as_ref().into(), iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(info.encrypted_data)
            .map(Zeroizing::new)
            .map_err(|_| KeyStoreError::WrongPassphrase(name.into()))?;
        out.push(plain);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(n: u64, r: u16, p: u16, salt_len: usize) -> Vec<u8> {
        let (salt, iv) = (vec![1u8; salt_len], [2u8; 16]);
        let info = EncryptedPrivateKeyInfo {
            encryption_algorithm: pbes2::Parameters {
                kdf: ScryptParams {
                    salt: &salt,
                    cost_parameter: n,
                    block_size: r,
                    parallelization: p,
                    key_length: None,
                }
                .into(),
                encryption: EncryptionScheme::Aes256Cbc { iv: &iv },
            }
            .into(),
            encrypted_data: &[0u8; 32],
        };
        let der = info.to_der().unwrap();
        pem::encode_string(PEM_ENCRYPTED, LineEnding::LF, &der)
            .unwrap()
            .into_bytes()
    }

    fn params(n: u64, r: u16, p: u16, salt: &[u8]) -> ScryptParams<'_> {
        ScryptParams {
            salt,
            cost_parameter: n,
            block_size: r,
            parallelization: p,
            key_length: None,
        }
    }

    /// The bounds docs/key-management.md states, each broken alone; none
    /// of these files costs anything to refuse.
    #[test]
    fn hostile_scrypt_parameters_are_refused_before_any_work() {
        let pass = Passphrase::new("pw".into());
        let path = Path::new("k.pem");
        let start = std::time::Instant::now();
        for (n, r, p, salt, what) in [
            (
                1u64 << 23,
                1,
                1,
                16,
                "log2 N = 23 (1 GiB, 2^23 work otherwise fine)",
            ),
            (1 << 40, 8, 1, 16, "N = 2^40"),
            (u64::MAX, 8, 1, 16, "N = 2^64 - 1"),
            (1 << 10, 33, 1, 16, "r = 33"),
            (1 << 10, u16::MAX, 1, 16, "r = 65535"),
            (1 << 10, 8, 17, 16, "p = 17"),
            (1 << 10, 8, u16::MAX, 16, "p = 65535"),
            (1 << 22, 9, 1, 16, "128 r N = 4.5 GiB"),
            (1 << 21, 8, 16, 16, "N r p = 2^28"),
            (1 << 20, 8, 1, 7, "a 7-byte salt"),
            (1 << 20, 8, 1, 65, "a 65-byte salt"),
            (1, 8, 1, 16, "N = 1"),
            (0, 8, 1, 16, "N = 0"),
            (3, 8, 1, 16, "N not a power of two"),
            (1 << 10, 0, 1, 16, "r = 0"),
            (1 << 10, 8, 0, 16, "p = 0"),
        ] {
            let err = open(&file_with(n, r, p, salt), true, Some(&pass), "k", path).unwrap_err();
            match err {
                Error::KeyStore(KeyStoreError::Corrupt { ref reason, .. }) => {
                    assert!(reason.contains("bounds"), "{what}: {reason}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        // The limits themselves are accepted.
        for (n, r, p, salt) in [
            (1u64 << 22, 8, 4, 16), // log2 N 22, 4 GiB, 2^27 work
            (1 << 15, 32, 16, 16),  // r and p at their maxima
            (2, 1, 1, 8),
            (2, 1, 1, 64),
        ] {
            let salt = vec![0u8; salt];
            assert!(bounded(&params(n, r, p, &salt)).is_some(), "{n} {r} {p}");
        }
    }

    /// New files: scrypt N = 2^log_n, r = 8, p = 1, a 16-byte salt shared
    /// by the blocks of one file, a fresh IV per block; the default work
    /// factor is 18 (256 MiB), the largest 22.
    #[test]
    fn new_files_use_the_documented_scrypt_parameters() {
        assert_eq!((DEFAULT_SCRYPT_LOG_N, MAX_SCRYPT_LOG_N), (18, 22));
        assert_eq!((SCRYPT_R, SCRYPT_P), (8, 1));
        assert_eq!(
            (128 * u64::from(SCRYPT_R)) << DEFAULT_SCRYPT_LOG_N,
            256 << 20
        );
        let pass = Passphrase::new("pw".into());
        assert!(matches!(
            Protection::passphrase(pass.clone()),
            Protection::Passphrase { log_n: 18, .. }
        ));
        let blocks = vec![
            Zeroizing::new(vec![0x30, 0x03, 0x02, 0x01, 0x00]),
            Zeroizing::new(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
        ];
        for bad in [0, MAX_SCRYPT_LOG_N + 1] {
            let protection = Protection::Passphrase {
                passphrase: pass.clone(),
                log_n: bad,
            };
            let err = seal(&blocks, &protection).unwrap_err().to_string();
            assert!(
                err.contains("scrypt log2 N must be") && !err.contains("key type"),
                "log_n {bad}: {err}"
            );
        }
        let protection = Protection::Passphrase {
            passphrase: pass,
            log_n: 5,
        };
        let sealed = seal(&blocks, &protection).unwrap();
        let pems = pem_blocks(&sealed).unwrap();
        assert_eq!(pems.len(), 2);
        let mut seen = Vec::new();
        for (label, der) in &pems {
            assert_eq!(label, PEM_ENCRYPTED);
            let info = EncryptedPrivateKeyInfo::from_der(der).unwrap();
            let Scheme::Pbes2(p) = &info.encryption_algorithm else {
                panic!("not PBES2")
            };
            let (Kdf::Scrypt(kdf), EncryptionScheme::Aes256Cbc { iv }) = (&p.kdf, p.encryption)
            else {
                panic!("not scrypt with AES-256-CBC")
            };
            assert_eq!(kdf.cost_parameter, 32);
            assert_eq!((kdf.block_size, kdf.parallelization), (8, 1));
            assert_eq!(kdf.salt.len(), 16);
            seen.push((kdf.salt.to_vec(), iv.to_vec()));
        }
        assert_eq!(seen[0].0, seen[1].0, "one salt per file");
        assert_ne!(seen[0].1, seen[1].1, "one IV per block");
        assert_ne!(
            seal(&blocks, &protection).unwrap(),
            sealed,
            "a fresh salt per file"
        );
    }

    /// Derived keys, sealed files, decrypted DER and passphrases live in
    /// `Zeroizing` buffers: these typed bindings stop compiling if not.
    #[test]
    fn derived_keys_and_plaintexts_are_zeroizing() {
        type Derive = fn(&Passphrase, &[u8], u8, u32, u32) -> Option<Zeroizing<[u8; 32]>>;
        type Seal = fn(&[Zeroizing<Vec<u8>>], &Protection) -> Result<Zeroizing<Vec<u8>>, Error>;
        type Open = fn(
            &[u8],
            bool,
            Option<&Passphrase>,
            &str,
            &Path,
        ) -> Result<Vec<Zeroizing<Vec<u8>>>, Error>;
        let (derive, seal, open): (Derive, Seal, Open) = (derive, seal, open);
        let pass = Passphrase::new("pw".into());
        let _: &Zeroizing<String> = &pass.0;
        let key = derive(&pass, &[1; 16], 2, 8, 1).unwrap();
        assert_ne!(*key, [0u8; 32]);
        let blocks = vec![Zeroizing::new(vec![0x30, 0x00])];
        let protection = Protection::Passphrase {
            passphrase: pass.clone(),
            log_n: 2,
        };
        let sealed = seal(&blocks, &protection).unwrap();
        let opened = open(&sealed, true, Some(&pass), "k", Path::new("k.pem")).unwrap();
        assert_eq!(opened[0].as_slice(), blocks[0].as_slice());
    }

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let blocks = vec![Zeroizing::new(vec![0x30, 0x03, 0x02, 0x01, 0x00])];
        let protection = Protection::Passphrase {
            passphrase: Passphrase::new("right".into()),
            log_n: 4,
        };
        let sealed = seal(&blocks, &protection).unwrap();
        let path = Path::new("k.pem");
        let opened = open(&sealed, true, protection.passphrase_ref(), "k", path).unwrap();
        assert_eq!(opened[0].as_slice(), blocks[0].as_slice());
        // A wrong passphrase fails the padding (or, rarely, the DER parse
        // by the caller); it never returns the plaintext.
        let wrong = Passphrase::new("wrong".into());
        if let Ok(bad) = open(&sealed, true, Some(&wrong), "k", path) {
            assert_ne!(bad[0].as_slice(), blocks[0].as_slice());
        }
        // The index's `encrypted` flag must match the file.
        assert!(open(&sealed, false, None, "k", path).is_err());
    }
}
