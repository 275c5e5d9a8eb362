//! Rotation with continuity.
//!
//! Every identity has an Ed25519 signing key: for ed25519 identities the key
//! itself, for x25519 and mlkem768 identities a companion key generated with
//! it, stored in the same encrypted file, and published (`signing_public`)
//! next to the public key when the identity is pinned. X25519 keys cannot
//! sign without XEdDSA, and we do not hand-roll it.
//!
//! `akex keys rotate` makes a new identity and a [`RotationStatement`]
//! signed by the old signing key (continuity: only the holder of the old key
//! can name a successor) and by the new one (the new key holder consents,
//! which prevents attributing someone else's key). A peer that pinned the old
//! key together with its signing key accepts the new key on a valid
//! statement, records it in its trust store, and keeps the old pin valid
//! until `overlap_until`.

use serde::{Deserialize, Serialize};

use ed25519_dalek::{Signature, VerifyingKey};

use super::audit::AuditEvent;
use super::encrypted::Protection;
use super::fsutil::{ensure_dir, io_err, write_atomic};
use super::store::{KeyEntry, KeyStatus, KeyStore, KeyType};
use super::trust::{Pin, TrustStore};
use super::{key_id, now_unix, unb64};
use crate::error::{Error, KeyStoreError};

const DOMAIN: &[u8] = b"akex rotation statement v1\0";

/// A signed statement that `old` is replaced by `new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

fn verifying_key(what: &str, text: &str) -> Result<VerifyingKey, Error> {
    let bytes: [u8; 32] = decode(what, text)?
        .try_into()
        .map_err(|_| KeyStoreError::InvalidStatement(format!("{what} is not 32 bytes")))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| {
        KeyStoreError::InvalidStatement(format!("{what} is not an Ed25519 key")).into()
    })
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
            let vk = verifying_key(&format!("{who}_signing_public"), key)?;
            let sig: [u8; 64] = decode(&format!("{who}_signature"), sig)?
                .try_into()
                .map_err(|_| bad("a signature is not 64 bytes"))?;
            vk.verify_strict(&message, &Signature::from_bytes(&sig))
                .map_err(|_| bad(&format!("the {who} key's signature does not verify")))?;
        }
        Ok(())
    }
}

impl KeyStore {
    /// Replaces the active key `name` by a new one of the same type, retires
    /// the old one after `overlap` seconds, writes the signed statement to
    /// `rotations/<old_id>.json` and returns (new entry, statement).
    pub fn rotate(
        &mut self,
        name: &str,
        protection: &Protection,
        overlap: u64,
    ) -> Result<(KeyEntry, RotationStatement), Error> {
        let now = now_unix();
        self.audit().verify()?;
        let old = self
            .find(name)
            .cloned()
            .ok_or_else(|| KeyStoreError::NotFound(name.into()))?;
        if old.status != KeyStatus::Active {
            old.check_usable(now)?;
            return Err(KeyStoreError::Retired(name.into()).into());
        }
        old.check_usable(now)?;
        let old_key = self.read_private(&old, Some(protection))?;
        let new = self.create(
            &old.name,
            old.key_type,
            protection,
            old.expires,
            Some(old.id.clone()),
        )?;
        let new_key = self.read_private(&new, Some(protection))?;
        let mut statement = RotationStatement {
            version: 1,
            name: old.name.clone(),
            key_type: old.key_type,
            old_id: old.id.clone(),
            old_public: old.public.clone(),
            old_signing_public: old.signing_public.clone(),
            new_id: new.id.clone(),
            new_public: new.public.clone(),
            new_signing_public: new.signing_public.clone(),
            created: now,
            overlap_until: now.saturating_add(overlap),
            old_signature: String::new(),
            new_signature: String::new(),
        };
        let message = statement.signed_message()?;
        statement.old_signature = super::b64(&old_key.sign(&message));
        statement.new_signature = super::b64(&new_key.sign(&message));
        statement.verify()?;

        if let Some(entry) = self.entry_mut(&old.id) {
            entry.status = KeyStatus::Retired;
            entry.status_changed = Some(now);
            entry.retire_at = Some(statement.overlap_until);
            entry.replaced_by = Some(new.id.clone());
        }
        self.save()?;
        let dir = self.dir().join("rotations");
        ensure_dir(&dir)?;
        let path = dir.join(format!("{}.json", old.id));
        let json = serde_json::to_vec_pretty(&statement).map_err(|e| io_err(&path, e))?;
        write_atomic(&path, &json)?;
        self.audit().append(&AuditEvent::new(
            "rotate",
            Some(&new.id),
            Some(&new.name),
            Some(format!(
                "replaces {} overlap_until={}",
                old.id, statement.overlap_until
            )),
        ))?;
        Ok((new, statement))
    }
}

impl TrustStore {
    /// Accepts a rotation: the old key must be pinned with its signing key
    /// and not revoked, the statement must verify. The new key is pinned
    /// under the same name; the old pin stays valid until the overlap ends.
    pub fn accept_rotation(
        &mut self,
        statement: &RotationStatement,
        now: u64,
    ) -> Result<Pin, Error> {
        let bad = |m: &str| -> Error { KeyStoreError::InvalidStatement(m.into()).into() };
        statement.verify()?;
        if let Some(r) = self.revocation(&statement.old_id) {
            return Err(bad(&format!("the old key is revoked ({})", r.reason)));
        }
        if self.revocation(&statement.new_id).is_some() {
            return Err(bad("the new key is revoked"));
        }
        let old = self
            .pins()
            .iter()
            .find(|p| p.id == statement.old_id && p.public == statement.old_public)
            .cloned()
            .ok_or_else(|| bad("the old key is not pinned here"))?;
        if old.signing_public.as_deref() != Some(statement.old_signing_public.as_str()) {
            return Err(bad("the old key's pin has no (or a different) signing key"));
        }
        if !old.is_valid(now) {
            return Err(bad("the old key's pin has expired"));
        }
        if let Some(existing) = self.pins().iter().find(|p| p.id == statement.new_id) {
            return Ok(existing.clone());
        }
        let public = decode("new_public", &statement.new_public)?;
        let new = Pin {
            name: old.name.clone(),
            id: statement.new_id.clone(),
            key_type: statement.key_type,
            public: super::b64(&public),
            signing_public: Some(statement.new_signing_public.clone()),
            added: now,
            expires: old.expires,
            valid_until: None,
            rotated_to: None,
            rotated_from: Some(old.id.clone()),
            tofu: false,
        };
        for pin in self
            .pins_mut()
            .iter_mut()
            .filter(|p| p.id == statement.old_id)
        {
            let until = statement.overlap_until.max(now);
            pin.valid_until = Some(pin.valid_until.map_or(until, |t| t.min(until)));
            pin.rotated_to = Some(statement.new_id.clone());
        }
        self.pins_mut().push(new.clone());
        self.save_and_log(AuditEvent::new(
            "trust",
            Some(&new.id),
            Some(&new.name),
            Some(format!("rotation from {} accepted", old.id)),
        ))?;
        Ok(new)
    }
}

/// The prefix of the message `akex serve --key NAME` sends first after the
/// handshake when NAME was rotated: these bytes, then a JSON array of the
/// rotation statements leading to the key in use, oldest first. The NUL
/// byte keeps it apart from text, and `akex connect` only looks for it in
/// the server's first message, which precedes every echo.
pub const ROTATION_MESSAGE_PREFIX: &[u8] = b"\0akex-rotation-v1\n";

/// At most this many statements are announced or accepted in one chain.
pub const MAX_ROTATION_CHAIN: usize = 16;

/// Encodes a rotation announcement (see [`ROTATION_MESSAGE_PREFIX`]).
pub fn encode_rotation_message(chain: &[RotationStatement]) -> Result<Vec<u8>, Error> {
    let json = serde_json::to_vec(chain)
        .map_err(|e| KeyStoreError::InvalidStatement(format!("cannot encode: {e}")))?;
    let mut out = ROTATION_MESSAGE_PREFIX.to_vec();
    out.extend_from_slice(&json);
    Ok(out)
}

/// Decodes a rotation announcement: `None` if `message` does not start with
/// [`ROTATION_MESSAGE_PREFIX`], an error if it does but is malformed. The
/// statements are not verified here.
pub fn decode_rotation_message(message: &[u8]) -> Option<Result<Vec<RotationStatement>, Error>> {
    let json = message.strip_prefix(ROTATION_MESSAGE_PREFIX)?;
    Some(
        serde_json::from_slice::<Vec<RotationStatement>>(json)
            .map_err(|_| {
                KeyStoreError::InvalidStatement("malformed rotation announcement".into()).into()
            })
            .and_then(|chain| {
                if chain.is_empty() || chain.len() > MAX_ROTATION_CHAIN {
                    Err(KeyStoreError::InvalidStatement(format!(
                        "a rotation announcement carries 1 to {MAX_ROTATION_CHAIN} statements"
                    ))
                    .into())
                } else {
                    Ok(chain)
                }
            }),
    )
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
            let path = self.dir().join("rotations").join(format!("{old_id}.json"));
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(io_err(&path, e)),
            };
            let statement: RotationStatement = serde_json::from_slice(&bytes).map_err(|_| {
                Error::from(KeyStoreError::Corrupt {
                    path: path.display().to_string(),
                    reason: "not a rotation statement".into(),
                })
            })?;
            statement.verify()?;
            if statement.new_id != entry.id || statement.old_id != old_id {
                return Err(KeyStoreError::Corrupt {
                    path: path.display().to_string(),
                    reason: "the statement names other keys than the store".into(),
                }
                .into());
            }
            chain.push(statement);
            current = self.find_id(&old_id).cloned();
        }
        chain.reverse();
        Ok(chain)
    }
}

impl TrustStore {
    /// Accepts a chain of rotation statements presented by a peer whose
    /// handshake key `remote_static` is not pinned: the statements must be
    /// linked (each one's new key is the next one's old key), the last must
    /// name `remote_static`, and each statement accepted must still be in
    /// its overlap window at `now` (a retired key can no longer name a
    /// successor automatically). Starts from the newest statement whose old
    /// key is pinned and valid here and accepts every later one with
    /// [`accept_rotation`](Self::accept_rotation). Returns the new pin.
    pub fn accept_rotation_chain(
        &mut self,
        chain: &[RotationStatement],
        remote_static: &[u8],
        now: u64,
    ) -> Result<Pin, Error> {
        let bad = |m: &str| -> Error { KeyStoreError::InvalidStatement(m.into()).into() };
        let last = chain.last().ok_or_else(|| bad("no statement"))?;
        if chain.len() > MAX_ROTATION_CHAIN {
            return Err(bad("too many statements"));
        }
        if chain.windows(2).any(|w| w[0].new_id != w[1].old_id) {
            return Err(bad("the statements do not form a chain"));
        }
        if decode("new_public", &last.new_public)? != remote_static {
            return Err(bad("the last statement does not name the key presented"));
        }
        for statement in chain {
            statement.verify()?;
        }
        let start = chain
            .iter()
            .rposition(|s| {
                self.pins()
                    .iter()
                    .any(|p| p.id == s.old_id && p.public == s.old_public && p.is_valid(now))
            })
            .ok_or_else(|| bad("the old key is not pinned here"))?;
        if let Some(late) = chain[start..].iter().find(|s| now >= s.overlap_until) {
            return Err(bad(&format!(
                "the overlap window of the rotation from {} has ended",
                late.old_id
            )));
        }
        let mut pin = None;
        for statement in &chain[start..] {
            pin = Some(self.accept_rotation(statement, now)?);
        }
        pin.ok_or_else(|| bad("no statement"))
    }
}
