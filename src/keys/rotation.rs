//! Rotation with continuity.
//!
//! Every identity has a signing key: for ed25519 and p256 identities the key
//! itself (ECDSA P-256 for p256, possibly in a PKCS#11 token), for x25519
//! and mlkem768 identities a companion Ed25519 key generated with it, stored
//! in the same encrypted file, and published (`signing_public`) next to the
//! public key when the identity is pinned. X25519 keys cannot sign without
//! XEdDSA, and we do not hand-roll it. The statement's `type` decides the
//! scheme ([`KeyType::signature_scheme`]).
//!
//! `akex keys rotate` makes a new identity and a [`RotationStatement`]
//! signed by the old signing key (continuity: only the holder of the old key
//! can name a successor) and by the new one (the new key holder consents,
//! which prevents attributing someone else's key). A peer that pinned the old
//! key together with its signing key accepts the new key on a valid
//! statement, records it in its trust store, and keeps the old pin valid
//! until `overlap_until`.

use serde::{Deserialize, Serialize};

use super::fsutil::{corrupt, read_file, MAX_KEY_FILE};
use super::index::KeyType;
use super::store::KeyStore;
use super::{key_id, unb64};
use crate::error::{Error, KeyStoreError};

const DOMAIN: &[u8] = b"akex rotation statement v1\0";

/// A signed statement that `old` is replaced by `new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RotationStatement {
    /// Format version (1).
    pub version: u32,
    /// The identity's name on the rotating side.
    pub name: String,
    /// The type of both keys.
    #[serde(rename = "type")]
    pub key_type: KeyType,
    /// Old key id.
    pub old_id: String,
    /// Old public key, base64.
    pub old_public: String,
    /// Old signing key, base64.
    pub old_signing_public: String,
    /// New key id.
    pub new_id: String,
    /// New public key, base64.
    pub new_public: String,
    /// New signing key, base64.
    pub new_signing_public: String,
    /// When the statement was made, Unix seconds.
    pub created: u64,
    /// The old key stays valid until this time.
    pub overlap_until: u64,
    /// Signature by the old signing key, base64.
    pub old_signature: String,
    /// Signature by the new signing key, base64.
    pub new_signature: String,
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn decode(what: &str, text: &str) -> Result<Vec<u8>, Error> {
    unb64(text)
        .ok_or_else(|| KeyStoreError::InvalidStatement(format!("{what} is not base64")).into())
}

pub(crate) fn decode_field(what: &str, text: &str) -> Result<Vec<u8>, Error> {
    decode(what, text)
}

fn verifying_key(key_type: KeyType, what: &str, text: &str) -> Result<Vec<u8>, Error> {
    let bytes = decode(what, text)?;
    let scheme = key_type.signature_scheme();
    if !scheme.is_valid_public_key(&bytes) {
        return Err(
            KeyStoreError::InvalidStatement(format!("{what} is not an {scheme} key")).into(),
        );
    }
    Ok(bytes)
}

impl RotationStatement {
    /// The exact bytes both signatures cover: a domain label, then each
    /// field length-prefixed (keys as raw bytes).
    pub fn signed_message(&self) -> Result<Vec<u8>, Error> {
        let mut out = DOMAIN.to_vec();
        out.extend_from_slice(&self.version.to_be_bytes());
        field(&mut out, self.name.as_bytes());
        field(&mut out, self.key_type.to_string().as_bytes());
        field(&mut out, &decode("old_public", &self.old_public)?);
        field(
            &mut out,
            &decode("old_signing_public", &self.old_signing_public)?,
        );
        field(&mut out, &decode("new_public", &self.new_public)?);
        field(
            &mut out,
            &decode("new_signing_public", &self.new_signing_public)?,
        );
        out.extend_from_slice(&self.created.to_be_bytes());
        out.extend_from_slice(&self.overlap_until.to_be_bytes());
        Ok(out)
    }

    /// Checks the format, the ids and both signatures.
    pub fn verify(&self) -> Result<(), Error> {
        let bad = |m: &str| -> Error { KeyStoreError::InvalidStatement(m.into()).into() };
        if self.version != 1 {
            return Err(bad("unknown version"));
        }
        if key_id(&decode("old_public", &self.old_public)?) != self.old_id
            || key_id(&decode("new_public", &self.new_public)?) != self.new_id
        {
            return Err(bad("a key id does not match its public key"));
        }
        if self.old_id == self.new_id {
            return Err(bad("old and new keys are the same"));
        }
        let message = self.signed_message()?;
        for (who, key, sig) in [
            ("old", &self.old_signing_public, &self.old_signature),
            ("new", &self.new_signing_public, &self.new_signature),
        ] {
            let vk = verifying_key(self.key_type, &format!("{who}_signing_public"), key)?;
            let sig = decode(&format!("{who}_signature"), sig)?;
            if sig.len() != 64 {
                return Err(bad("a signature is not 64 bytes"));
            }
            let scheme = self.key_type.signature_scheme();
            if scheme.verify(&vk, &message, &sig).is_err() {
                return Err(bad(&format!("the {who} key's signature does not verify")));
            }
        }
        Ok(())
    }
}

/// At most this many statements are announced or accepted in one chain.
pub const MAX_ROTATION_CHAIN: usize = 16;

/// Encodes a rotation announcement: the JSON array of the rotation
/// statements leading to the key in use, oldest first. It travels as the
/// payload of an akex-mode control record of type
/// [`ControlType::RotationAnnouncement`](crate::session::ControlType::RotationAnnouncement)
/// (`akex serve --key NAME` sends one after the handshake when NAME was
/// rotated), never as application data.
pub fn encode_rotation_announcement(chain: &[RotationStatement]) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(chain)
        .map_err(|e| KeyStoreError::InvalidStatement(format!("cannot encode: {e}")).into())
}

/// Decodes a rotation announcement's payload (see
/// [`encode_rotation_announcement`]): 1 to [`MAX_ROTATION_CHAIN`]
/// statements. The statements are not verified here.
pub fn decode_rotation_announcement(payload: &[u8]) -> Result<Vec<RotationStatement>, Error> {
    let chain = serde_json::from_slice::<Vec<RotationStatement>>(payload).map_err(|_| {
        Error::from(KeyStoreError::InvalidStatement(
            "malformed rotation announcement".into(),
        ))
    })?;
    if chain.is_empty() || chain.len() > MAX_ROTATION_CHAIN {
        return Err(KeyStoreError::InvalidStatement(format!(
            "a rotation announcement carries 1 to {MAX_ROTATION_CHAIN} statements"
        ))
        .into());
    }
    Ok(chain)
}

impl KeyStore {
    /// The rotation statements leading to the key with id `id` (read from
    /// `rotations/`), oldest first, at most [`MAX_ROTATION_CHAIN`]; empty if
    /// the key was not made by a rotation. Each statement is verified.
    pub fn rotation_chain(&self, id: &str) -> Result<Vec<RotationStatement>, Error> {
        let mut chain = Vec::new();
        let mut current = self.find_id(id).cloned();
        while let Some(entry) = current {
            let Some(old_id) = entry.replaces.clone() else {
                break;
            };
            if chain.len() == MAX_ROTATION_CHAIN {
                break;
            }
            let path = self.paths().rotation_file(&old_id)?;
            let Some(bytes) = read_file(&path, MAX_KEY_FILE)? else {
                break;
            };
            let statement: RotationStatement = serde_json::from_slice(&bytes)
                .map_err(|_| corrupt(&path, "not a rotation statement"))?;
            statement.verify()?;
            if statement.new_id != entry.id || statement.old_id != old_id {
                return Err(corrupt(
                    &path,
                    "the statement names other keys than the store",
                ));
            }
            chain.push(statement);
            current = self.find_id(&old_id).cloned();
        }
        chain.reverse();
        Ok(chain)
    }
}
