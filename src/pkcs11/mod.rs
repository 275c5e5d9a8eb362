//! Keys in hardware security modules, through PKCS#11 (cargo feature
//! `pkcs11`, on the `cryptoki` crate).
//!
//! A key is named by an RFC 7512 URI ([`Pkcs11Uri`]), e.g.
//! `pkcs11:token=akex;object=server-sig?module-path=/usr/lib/softhsm/libsofthsm2.so`
//! (without `module-path`, the module comes from `AKEX_PKCS11_MODULE`).
//! [`Token::open`] loads the module, finds the token by its attributes and
//! logs in with a [`TokenPin`] (from an environment variable or a file
//! descriptor; never an argument or a URI). In the token, akex generates
//! Ed25519 (`CKM_EC_EDWARDS_KEY_PAIR_GEN`) and P-256
//! (`CKM_EC_KEY_PAIR_GEN`) signing keys, sensitive and not extractable
//! ([`Token::generate`]), finds them again ([`Token::find`]), signs
//! (`CKM_EDDSA`, `CKM_ECDSA` over SHA-256) and destroys them.
//! [`Pkcs11Signer`] is the handshake's [`Signer`](crate::keys::Signer):
//!
//! ```no_run
//! # fn main() -> Result<(), akex::Error> {
//! use std::sync::Arc;
//! use akex::pkcs11::{Pkcs11Signer, Pkcs11Uri, TokenPin, PIN_ENV};
//! let uri = Pkcs11Uri::parse("pkcs11:token=akex;object=server-sig")?;
//! let pin = TokenPin::from_env(PIN_ENV)?.expect("set AKEX_PKCS11_PIN");
//! let signer = Arc::new(Pkcs11Signer::open(&uri, &pin)?);
//! let keys = akex::HandshakeKeys::new().signer(signer);
//! let server = akex::ServerConfig::new(&["akex-sigma-x25519-ed25519-aesgcm-sha256"], keys)?;
//! # let _ = server; Ok(()) }
//! ```
//!
//! Ephemeral keys (X25519, P-256 ECDH) and the whole key schedule stay in
//! software: only the long-term signature happens in the token. Tokens
//! without Montgomery keys (SoftHSM 2.6) cannot hold Noise's X25519 static
//! keys at all, so those stay in the key store. `docs/key-management.md`
//! (section "Keys in a hardware module") has the setup.

mod module;
mod pin;
mod signer;
mod token;
mod uri;

pub use module::MODULE_ENV;
pub use pin::{TokenPin, PIN_ENV};
pub use signer::Pkcs11Signer;
pub use token::{KeyProtection, Token, TokenKey};
pub use uri::Pkcs11Uri;
