//! [`Pkcs11Signer`]: a handshake [`Signer`] whose private key stays in a
//! PKCS#11 token; each signature is one `C_Sign` call.

use std::fmt;
use std::sync::Mutex;

use cryptoki::context::Pkcs11;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use super::module::device;
use super::pin::TokenPin;
use super::token::{sign_in, Token, TokenKey};
use super::uri::Pkcs11Uri;
use crate::error::Error;
use crate::keys::{SignatureScheme, Signer};

/// Sessions kept for reuse; more concurrent signatures open more.
const MAX_IDLE_SESSIONS: usize = 16;

/// A signing key in a PKCS#11 token. Cheap to share (`Arc`); signatures
/// from several threads run on separate sessions. The login lasts as long
/// as the signer (PKCS#11 keeps an application logged in while one of its
/// sessions is open).
pub struct Pkcs11Signer {
    scheme: SignatureScheme,
    public: Vec<u8>,
    uri: Pkcs11Uri,
    token: String,
    module: Pkcs11,
    slot: Slot,
    key: ObjectHandle,
    /// The session that logged in; never used for signing, never closed
    /// before the signer.
    _login: Mutex<Session>,
    idle: Mutex<Vec<Session>>,
}

impl Pkcs11Signer {
    /// Opens the token `uri` names, logs in with `pin`, finds the key and
    /// checks that the token can sign with it (see [`Token::open`] and
    /// [`Token::find`] for the errors).
    pub fn open(uri: &Pkcs11Uri, pin: &TokenPin) -> Result<Self, Error> {
        let token = Token::open(uri, pin)?;
        let key = token.find(uri)?;
        Self::from_token(token, key)
    }

    /// A signer for `key`, found or generated in `token` (whose logged-in
    /// session it keeps).
    pub fn from_token(token: Token, key: TokenKey) -> Result<Self, Error> {
        token.require_mechanisms(key.scheme, false)?;
        Ok(Pkcs11Signer {
            scheme: key.scheme,
            public: key.public,
            uri: key.uri,
            token: token.label,
            module: token.module,
            slot: token.slot,
            key: key.private,
            _login: Mutex::new(token.session),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The key's URI (with its `object` label and `id`).
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("scheme", &self.scheme)
            .field("uri", &self.uri.to_string())
            .field("public", &hex::encode(&self.public))
            .finish_non_exhaustive()
    }
}

impl Signer for Pkcs11Signer {
    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let session = match idle {
            Some(s) => s,
            None => self
                .module
                .open_ro_session(self.slot)
                .map_err(|e| device("C_OpenSession", &self.token, e))?,
        };
        let signature = sign_in(&session, &self.token, self.key, self.scheme, message)?;
        // A session that failed is dropped (closed) rather than reused.
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_SESSIONS {
            idle.push(session);
        }
        Ok(signature)
    }
}
