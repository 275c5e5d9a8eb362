//! Identities held in a PKCS#11 token (features `keystore` and `pkcs11`):
//! the store records the public key and the `pkcs11:` URI, never a private
//! key file. Every change runs under the store lock like the others; the
//! token is changed first and undone if the store cannot commit, so a
//! failure leaves neither a half-made entry nor an orphan key. Logins that
//! the token refuses are logged (`pkcs11-login-failed`), without the PIN.

use super::audit::AuditEvent;
use super::index::{KeyEntry, KeyStatus, KeyType};
use super::rotate::new_statement;
use super::rotation::RotationStatement;
use super::store::{check_name, KeyStore};
use super::{b64, key_id, now_unix};
use crate::error::{Error, HsmError, KeyStoreError};
use crate::pkcs11::{Pkcs11Signer, Pkcs11Uri, Token, TokenKey, TokenPin};

impl KeyStore {
    /// Generates a signing identity `name` of `key_type` (ed25519 or p256)
    /// in the token `uri` names (its `object` is the key's label; `id` is
    /// random unless given), and records it. Checks the name first and
    /// removes the new key from the token if the store cannot record it.
    pub fn generate_in_token(
        &mut self,
        name: &str,
        key_type: KeyType,
        uri: &Pkcs11Uri,
        pin: &TokenPin,
        expires: Option<u64>,
    ) -> Result<KeyEntry, Error> {
        check_name(name)?;
        check_token_type(key_type)?;
        if self
            .find(name)
            .is_some_and(|e| e.status == KeyStatus::Active)
        {
            return Err(KeyStoreError::AlreadyExists(name.into()).into());
        }
        let token = self.open_token(uri, pin, None)?;
        let key = token.generate(uri, key_type.signature_scheme(), true)?;
        let entry = token_entry(name, key_type, &key, expires, None);
        let result = self.transact(|index, journal, _paths| {
            journal.require_intact()?;
            if index
                .keys
                .iter()
                .any(|e| e.name == name && e.status == KeyStatus::Active)
            {
                return Err(KeyStoreError::AlreadyExists(name.into()).into());
            }
            index.keys.push(entry.clone());
            let detail = format!("type={key_type} pkcs11={} token={}", key.uri, token.label());
            let event = AuditEvent::new("generate", Some(&entry.id), Some(name), Some(detail));
            Ok((entry.clone(), event))
        });
        if result.is_err() {
            let _ = token.destroy(&key);
        }
        result
    }

    /// Opens the token identity `name` for handshakes: the key must be
    /// usable now, found by its URI, and have the recorded public key.
    /// Log the first use with [`record_load`](Self::record_load).
    pub fn open_in_token(&self, name: &str, pin: &TokenPin) -> Result<Pkcs11Signer, Error> {
        self.check_undamaged()?;
        let entry = self.lookup(name)?;
        entry.check_usable(now_unix())?;
        let (token, key) = self.find_in_token(&entry, pin)?;
        Pkcs11Signer::from_token(token, key)
    }

    /// The store's entry for a signing key found directly by URI (`--key
    /// pkcs11:...`), if the store knows its public key.
    pub fn entry_for_public(&self, public: &[u8]) -> Option<&KeyEntry> {
        self.find_id(&key_id(public))
            .filter(|e| e.public_bytes() == public)
    }

    /// Rotates the token identity `name`: a new key in the same token
    /// (same label, new id), a statement signed in the token by the old
    /// key and by the new one, the old key retired after `overlap`
    /// seconds. The new key is removed from the token if anything fails.
    pub fn rotate_in_token(
        &mut self,
        name: &str,
        pin: &TokenPin,
        overlap: u64,
    ) -> Result<(KeyEntry, RotationStatement), Error> {
        let now = now_unix();
        let old = self.rotatable(name, now)?;
        let (token, old_key) = self.find_in_token(&old, pin)?;
        let new_uri = Pkcs11Uri {
            id: None,
            ..old_key.uri.clone()
        };
        let new_key = token.generate(&new_uri, old_key.scheme, false)?;
        let new = token_entry(
            &old.name,
            old.key_type,
            &new_key,
            old.expires,
            Some(old.id.clone()),
        );
        let result = (|| {
            let mut statement = new_statement(&old, &new, now, overlap);
            let message = statement.signed_message()?;
            statement.old_signature = b64(&token.sign(&old_key, &message)?);
            statement.new_signature = b64(&token.sign(&new_key, &message)?);
            self.commit_rotation(&old, new.clone(), statement, |_, _| Ok(()))
        })();
        if result.is_err() {
            let _ = token.destroy(&new_key);
        }
        result
    }

    /// Destroys the token identity `name`: its objects in the token, then
    /// the entry is marked destroyed (its public record stays). A key
    /// already gone from the token (an earlier destroy that could not
    /// commit) is marked destroyed too; a key whose public key differs from
    /// the record is never touched.
    pub fn destroy_in_token(&mut self, name: &str, pin: &TokenPin) -> Result<KeyEntry, Error> {
        let entry = self.lookup(name)?;
        if entry.status == KeyStatus::Destroyed {
            return Err(KeyStoreError::Destroyed(entry.name).into());
        }
        let (token, key) = match self.find_in_token(&entry, pin) {
            Ok((token, key)) => (token, Some(key)),
            Err(Error::Hsm(HsmError::KeyNotFound { .. })) => (
                self.open_token(&entry_uri(&entry)?, pin, Some(&entry))?,
                None,
            ),
            Err(e) => return Err(e),
        };
        self.transact_as(true, |index, _journal, _paths| {
            let current = index
                .entry_mut(&entry.id)
                .ok_or_else(|| KeyStoreError::NotFound(name.into()))?;
            if current.status == KeyStatus::Destroyed {
                return Err(KeyStoreError::Destroyed(current.name.clone()).into());
            }
            let detail = match &key {
                Some(key) => {
                    token.destroy(key)?;
                    format!("pkcs11 objects destroyed in token {}", token.label())
                }
                None => format!("pkcs11 key already absent from token {}", token.label()),
            };
            current.status = KeyStatus::Destroyed;
            current.status_changed = Some(now_unix());
            let done = current.clone();
            let event = AuditEvent::new("destroy", Some(&done.id), Some(&done.name), Some(detail));
            Ok((done, event))
        })
    }

    fn lookup(&self, name: &str) -> Result<KeyEntry, Error> {
        self.find(name)
            .or_else(|| self.find_id(name))
            .cloned()
            .ok_or_else(|| KeyStoreError::NotFound(name.into()).into())
    }

    /// Opens `entry`'s token and finds its key, which must carry the
    /// recorded public key.
    fn find_in_token(&self, entry: &KeyEntry, pin: &TokenPin) -> Result<(Token, TokenKey), Error> {
        let uri = entry_uri(entry)?;
        let token = self.open_token(&uri, pin, Some(entry))?;
        let key = token.find(&uri)?;
        if key.public != entry.public_bytes() {
            return Err(KeyStoreError::Corrupt {
                path: uri.to_string(),
                reason: format!(
                    "the token's key is not the one store.json records for {:?}",
                    entry.name
                ),
            }
            .into());
        }
        Ok((token, key))
    }

    /// [`Token::open`], logging a refused login (never the PIN).
    fn open_token(
        &self,
        uri: &Pkcs11Uri,
        pin: &TokenPin,
        entry: Option<&KeyEntry>,
    ) -> Result<Token, Error> {
        let result = Token::open(uri, pin);
        if let Err(e @ Error::Hsm(HsmError::WrongPin { .. } | HsmError::PinLocked { .. })) = &result
        {
            // Best effort: a read-only store still reports the error.
            let _ = self.audit().append(&AuditEvent::new(
                "pkcs11-login-failed",
                entry.map(|e| e.id.as_str()),
                entry.map(|e| e.name.as_str()),
                Some(format!("{e} ({})", uri.token_description())),
            ));
        }
        result
    }
}

/// Refuses a key type a token cannot hold for akex (before any PIN is
/// asked for).
pub fn check_token_type(key_type: KeyType) -> Result<(), Error> {
    if key_type.is_signing() {
        return Ok(());
    }
    Err(KeyStoreError::Unsupported(format!(
        "a {key_type} key cannot live in a token for akex: tokens hold signing \
         identities (ed25519, p256); X25519 and ML-KEM keys stay in the key store"
    ))
    .into())
}

fn entry_uri(entry: &KeyEntry) -> Result<Pkcs11Uri, Error> {
    match &entry.pkcs11 {
        Some(uri) => Pkcs11Uri::parse(uri),
        None => Err(KeyStoreError::Unsupported(format!(
            "key {:?} is not held in a PKCS#11 token",
            entry.name
        ))
        .into()),
    }
}

/// The index entry of a token key: the public key is also the signing key.
fn token_entry(
    name: &str,
    key_type: KeyType,
    key: &TokenKey,
    expires: Option<u64>,
    replaces: Option<String>,
) -> KeyEntry {
    KeyEntry {
        id: key_id(&key.public),
        name: name.into(),
        key_type,
        public: b64(&key.public),
        signing_public: b64(&key.public),
        created: now_unix(),
        expires,
        status: KeyStatus::Active,
        status_changed: None,
        revoked_reason: None,
        retire_at: None,
        replaced_by: None,
        replaces,
        encrypted: false,
        file_sha256: String::new(),
        pkcs11: Some(key.uri.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signing_types_go_to_a_token_and_nothing_is_written_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = KeyStore::open(dir.path().join("s")).unwrap();
        let uri = Pkcs11Uri::parse("pkcs11:token=t;object=k?module-path=/nonexistent.so").unwrap();
        let pin = TokenPin::new("1".into());
        let err = store
            .generate_in_token("n", KeyType::X25519, &uri, &pin, None)
            .unwrap_err();
        assert!(err.to_string().contains("stay in the key store"), "{err}");
        let err = store
            .generate_in_token("n", KeyType::Ed25519, &uri, &pin, None)
            .unwrap_err();
        assert!(
            matches!(err, Error::Hsm(HsmError::ModuleLoad { .. })),
            "{err}"
        );
        assert!(store.entries().is_empty());
        assert!(!dir.path().join("s/store.json").exists());
    }
}
