//! Keys in PKCS#11 tokens on the command line (`--features pkcs11`):
//! `keys generate --pkcs11 URI`, rotate and destroy of token keys, and
//! `--key pkcs11:...` or `--key NAME` of a token key for `serve`/`connect`.
//! The PIN comes from AKEX_PKCS11_PIN, else `--pin-fd FD`, else a prompt
//! on a terminal; never from an argument. Without the feature every entry
//! point fails with one line saying so.

use std::path::Path;
use std::sync::Arc;

use akex::keys::{KeyEntry, KeyStore, KeyType, RotationStatement, Signer};
use akex::Error;

/// A token signer, and the store entry of its key when the store knows it.
pub type OpenedUri = (Arc<dyn Signer>, Option<(KeyStore, KeyEntry)>);

#[cfg(feature = "pkcs11")]
mod imp {
    use super::*;
    use akex::error::HsmError;
    use akex::keys::now_unix;
    use akex::pkcs11::{Pkcs11Signer, Pkcs11Uri, TokenPin, PIN_ENV};

    /// AKEX_PKCS11_PIN, else `--pin-fd`, else a prompt when a terminal is
    /// attached.
    fn pin(fd: Option<u32>, token: &str) -> Result<TokenPin, Error> {
        use std::io::IsTerminal;
        if let Some(pin) = TokenPin::from_env(PIN_ENV)? {
            return Ok(pin);
        }
        if let Some(fd) = fd {
            return TokenPin::from_fd(fd);
        }
        if !std::io::stdin().is_terminal() {
            return Err(HsmError::NoPin {
                token: token.into(),
                how: format!("set {PIN_ENV}, give --pin-fd FD or run from a terminal"),
            }
            .into());
        }
        rpassword::prompt_password(format!("PIN for PKCS#11 token {token}: "))
            .map(TokenPin::new)
            .map_err(|e| {
                HsmError::NoPin {
                    token: token.into(),
                    how: format!("cannot read it: {e}"),
                }
                .into()
            })
    }

    fn token_of(uri: &Pkcs11Uri) -> String {
        uri.token_description()
    }

    fn entry_uri(entry: &KeyEntry) -> Result<Pkcs11Uri, Error> {
        Pkcs11Uri::parse(entry.pkcs11.as_deref().unwrap_or_default())
    }

    pub fn generate(
        store: &mut KeyStore,
        name: &str,
        key_type: KeyType,
        uri: &str,
        expires: Option<u64>,
        pin_fd: Option<u32>,
    ) -> Result<KeyEntry, Error> {
        let uri = Pkcs11Uri::parse(uri)?;
        // Checked before the PIN is asked for.
        akex::keys::check_token_type(key_type)?;
        if store
            .find(name)
            .is_some_and(|e| e.status == akex::keys::KeyStatus::Active)
        {
            return Err(akex::error::KeyStoreError::AlreadyExists(name.into()).into());
        }
        let pin = pin(pin_fd, &token_of(&uri))?;
        store.generate_in_token(name, key_type, &uri, &pin, expires)
    }

    pub fn rotate(
        store: &mut KeyStore,
        entry: &KeyEntry,
        overlap: u64,
        pin_fd: Option<u32>,
    ) -> Result<(KeyEntry, RotationStatement), Error> {
        let pin = pin(pin_fd, &token_of(&entry_uri(entry)?))?;
        store.rotate_in_token(&entry.name, &pin, overlap)
    }

    pub fn destroy(
        store: &mut KeyStore,
        name: &str,
        entry: &KeyEntry,
        pin_fd: Option<u32>,
    ) -> Result<KeyEntry, Error> {
        let pin = pin(pin_fd, &token_of(&entry_uri(entry)?))?;
        store.destroy_in_token(name, &pin)
    }

    pub fn open_entry(
        store: &KeyStore,
        entry: &KeyEntry,
        pin_fd: Option<u32>,
    ) -> Result<Arc<dyn Signer>, Error> {
        let pin = pin(pin_fd, &token_of(&entry_uri(entry)?))?;
        Ok(Arc::new(store.open_in_token(&entry.id, &pin)?))
    }

    pub fn open_uri(
        uri: &str,
        store_dir: Option<&Path>,
        pin_fd: Option<u32>,
    ) -> Result<OpenedUri, Error> {
        let uri = Pkcs11Uri::parse(uri)?;
        let pin = pin(pin_fd, &token_of(&uri))?;
        let store_dir = store_dir.filter(|d| d.join("store.json").exists());
        let signer = match Pkcs11Signer::open(&uri, &pin) {
            Ok(signer) => signer,
            Err(e @ Error::Hsm(HsmError::WrongPin { .. } | HsmError::PinLocked { .. })) => {
                // The key is unknown until the login works: log it in the
                // store, if there is one, without a key id.
                if let Some(dir) = store_dir {
                    let event = akex::keys::AuditEvent::new(
                        "pkcs11-login-failed",
                        None,
                        None,
                        Some(format!("{e} ({uri})")),
                    );
                    let _ = KeyStore::open(dir).and_then(|s| s.audit().append(&event));
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        // A key the store knows keeps its status: revoked, retired or
        // expired keys do not come back through their URI.
        let known = match store_dir {
            Some(dir) => {
                let store = KeyStore::open(dir)?;
                let entry = store.entry_for_public(signer.public_key()).cloned();
                entry.map(|e| (store, e))
            }
            None => None,
        };
        if let Some((_, entry)) = &known {
            entry.check_usable(now_unix())?;
        }
        Ok((Arc::new(signer), known))
    }
}

#[cfg(not(feature = "pkcs11"))]
mod imp {
    use super::*;

    fn not_built<T>() -> Result<T, Error> {
        Err(akex::error::HsmError::NotBuilt.into())
    }

    pub fn generate(
        _: &mut KeyStore,
        _: &str,
        _: KeyType,
        _: &str,
        _: Option<u64>,
        _: Option<u32>,
    ) -> Result<KeyEntry, Error> {
        not_built()
    }

    pub fn rotate(
        _: &mut KeyStore,
        _: &KeyEntry,
        _: u64,
        _: Option<u32>,
    ) -> Result<(KeyEntry, RotationStatement), Error> {
        not_built()
    }

    pub fn destroy(
        _: &mut KeyStore,
        _: &str,
        _: &KeyEntry,
        _: Option<u32>,
    ) -> Result<KeyEntry, Error> {
        not_built()
    }

    pub fn open_entry(
        _: &KeyStore,
        _: &KeyEntry,
        _: Option<u32>,
    ) -> Result<Arc<dyn Signer>, Error> {
        not_built()
    }

    pub fn open_uri(_: &str, _: Option<&Path>, _: Option<u32>) -> Result<OpenedUri, Error> {
        not_built()
    }
}

pub use imp::{destroy, generate, open_entry, open_uri, rotate};
