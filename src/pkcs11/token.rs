//! A token found by URI, logged in: generate, find and destroy signing
//! keys, read their protection attributes.

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use super::module::{device, module, module_path};
use super::pin::TokenPin;
use super::uri::Pkcs11Uri;
use crate::crypto::RandomSource;
use crate::error::{Error, HsmError};
use crate::keys::SignatureScheme;

/// `CKA_EC_PARAMS` of Ed25519: the PrintableString "edwards25519" (what
/// SoftHSM and OpenSC write; the RFC 8410 OID is accepted when reading).
const ED25519_PARAMS: &[u8] = b"\x13\x0cedwards25519";
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// `CKA_EC_PARAMS` of P-256: the OID prime256v1 (1.2.840.10045.3.1.7).
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// What protects a private key object, as the token reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyProtection {
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE` (false: it cannot be wrapped out of the token).
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// True if the token refused to return `CKA_VALUE` (the private key).
    pub value_unreadable: bool,
}

/// A signing key in a token: its scheme, public key, handles and full URI.
#[derive(Debug, Clone)]
pub struct TokenKey {
    /// Ed25519 or ECDSA P-256.
    pub scheme: SignatureScheme,
    /// The public key in the scheme's encoding.
    pub public: Vec<u8>,
    /// The key's URI, with its `object` label and `id`.
    pub uri: Pkcs11Uri,
    pub(crate) private: ObjectHandle,
    pub(crate) public_handle: ObjectHandle,
}

/// An open token: module, slot and a logged-in session.
pub struct Token {
    pub(crate) module: Pkcs11,
    pub(crate) slot: Slot,
    pub(crate) label: String,
    pub(crate) session: Session,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Loads the URI's module, finds its token and logs in with `pin`.
    /// Typed errors: [`HsmError::NoModule`], [`HsmError::ModuleLoad`],
    /// [`HsmError::TokenNotFound`], [`HsmError::WrongPin`],
    /// [`HsmError::PinLocked`].
    pub fn open(uri: &Pkcs11Uri, pin: &TokenPin) -> Result<Token, Error> {
        let path = module_path(uri)?;
        let module = module(&path)?;
        let slots = module
            .get_slots_with_token()
            .map_err(|e| device("C_GetSlotList", "(none yet)", e))?;
        let mut present = Vec::new();
        let mut found = None;
        for slot in slots {
            let Ok(info) = module.get_token_info(slot) else {
                continue;
            };
            let label = info.label().trim_end().to_string();
            let matches = uri.token.as_deref().is_none_or(|t| t == label)
                && uri
                    .manufacturer
                    .as_deref()
                    .is_none_or(|m| m == info.manufacturer_id().trim_end())
                && uri
                    .model
                    .as_deref()
                    .is_none_or(|m| m == info.model().trim_end())
                && uri
                    .serial
                    .as_deref()
                    .is_none_or(|s| s == info.serial_number().trim_end())
                && uri.slot_id.is_none_or(|id| id == slot.id());
            if !info.token_initialized() {
                continue;
            }
            if matches && found.is_none() {
                found = Some((slot, label.clone()));
            }
            present.push(label);
        }
        let Some((slot, label)) = found else {
            return Err(HsmError::TokenNotFound {
                token: uri.token_description(),
                module: path.display().to_string(),
                present: if present.is_empty() {
                    "none".into()
                } else {
                    present.join(", ")
                },
            }
            .into());
        };
        let session = module
            .open_rw_session(slot)
            .map_err(|e| device("C_OpenSession", &label, e))?;
        match session.login(UserType::User, Some(&pin.auth())) {
            // Login is per application: another handle may hold it.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(
                RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
                _,
            )) => return Err(HsmError::WrongPin { token: label }.into()),
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(HsmError::PinLocked { token: label }.into())
            }
            Err(e) => return Err(device("C_Login", &label, e)),
        }
        Ok(Token {
            module,
            slot,
            label,
            session,
        })
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Fails with [`HsmError::MechanismUnsupported`] unless the token
    /// offers every mechanism `scheme` needs (key generation too, if
    /// `generate`).
    pub fn require_mechanisms(&self, scheme: SignatureScheme, generate: bool) -> Result<(), Error> {
        let list = self
            .module
            .get_mechanism_list(self.slot)
            .map_err(|e| device("C_GetMechanismList", &self.label, e))?;
        let (gen, sign) = mechanisms(scheme);
        let needed = if generate {
            vec![gen, sign]
        } else {
            vec![sign]
        };
        for mech in needed {
            if !list.contains(&mech) {
                return Err(HsmError::MechanismUnsupported {
                    token: self.label.clone(),
                    mechanism: mech.to_string(),
                }
                .into());
            }
        }
        Ok(())
    }

    fn private_keys(
        &self,
        label: Option<&str>,
        id: Option<&[u8]>,
    ) -> Result<Vec<ObjectHandle>, Error> {
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(l) = label {
            template.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(id) = id {
            template.push(Attribute::Id(id.to_vec()));
        }
        self.session
            .find_objects(&template)
            .map_err(|e| device("C_FindObjects", &self.label, e))
    }

    /// Generates a key pair of `scheme` in the token, labelled with the
    /// URI's `object`: private half sensitive, not extractable, signing
    /// only. Its `id` is the URI's, or 8 random bytes. Refused with
    /// [`HsmError::AlreadyExists`] if a private key with that label
    /// (`new_label`) or that id exists.
    pub fn generate(
        &self,
        uri: &Pkcs11Uri,
        scheme: SignatureScheme,
        new_label: bool,
    ) -> Result<TokenKey, Error> {
        let label = uri.object.clone().ok_or_else(|| HsmError::InvalidUri {
            uri: uri.to_string(),
            reason: "name the new key with object=...".into(),
        })?;
        self.require_mechanisms(scheme, true)?;
        let id = match &uri.id {
            Some(id) => id.clone(),
            None => {
                let mut id = vec![0u8; 8];
                crate::crypto::OsRng.fill_bytes(&mut id);
                id
            }
        };
        let taken = !self.private_keys(None, Some(&id))?.is_empty()
            || (new_label && !self.private_keys(Some(&label), None)?.is_empty());
        if taken {
            return Err(HsmError::AlreadyExists {
                token: self.label.clone(),
                label,
            }
            .into());
        }
        let (mechanism, params) = match scheme {
            SignatureScheme::EcdsaP256Sha256 => (Mechanism::EccKeyPairGen, P256_PARAMS),
            _ => (Mechanism::EccEdwardsKeyPairGen, ED25519_PARAMS),
        };
        let common = [
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ];
        let mut public_template = common.to_vec();
        public_template.extend([
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(params.to_vec()),
        ]);
        let mut private_template = common.to_vec();
        private_template.extend([
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Derive(false),
        ]);
        let (public_handle, private) = self
            .session
            .generate_key_pair(&mechanism, &public_template, &private_template)
            .map_err(|e| device("C_GenerateKeyPair", &self.label, e))?;
        let mut key_uri = uri.with_id(&id);
        key_uri.object = Some(label);
        let key = self.describe(private, public_handle, key_uri);
        // A token that ignored the template must not keep a key we call
        // non-extractable.
        let checked = key.and_then(|k| {
            let p = self.protection(&k)?;
            if p.sensitive && !p.extractable {
                Ok(k)
            } else {
                Err(HsmError::Device {
                    operation: "C_GenerateKeyPair",
                    token: self.label.clone(),
                    reason: "the token made an extractable or non-sensitive key".into(),
                }
                .into())
            }
        });
        if checked.is_err() {
            let _ = self.session.destroy_object(private);
            let _ = self.session.destroy_object(public_handle);
        }
        checked
    }

    /// The one private key the URI names (by `object` and/or `id`), with
    /// its public key. [`HsmError::KeyNotFound`] or
    /// [`HsmError::Ambiguous`] otherwise.
    pub fn find(&self, uri: &Pkcs11Uri) -> Result<TokenKey, Error> {
        uri.require_key()?;
        let found = self.private_keys(uri.object.as_deref(), uri.id.as_deref())?;
        let private = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(HsmError::KeyNotFound {
                    what: "private key",
                    uri: uri.to_string(),
                    token: self.label.clone(),
                }
                .into())
            }
            many => {
                return Err(HsmError::Ambiguous {
                    uri: uri.to_string(),
                    token: self.label.clone(),
                    count: many.len(),
                }
                .into())
            }
        };
        let attrs = self.attributes(private, &[AttributeType::Label, AttributeType::Id])?;
        let (mut label, mut id) = (None, None);
        for a in attrs {
            match a {
                Attribute::Label(l) if !l.is_empty() => {
                    label = Some(String::from_utf8_lossy(&l).into_owned())
                }
                Attribute::Id(i) if !i.is_empty() => id = Some(i),
                _ => {}
            }
        }
        let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
        if let Some(l) = &label {
            template.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(i) = &id {
            template.push(Attribute::Id(i.clone()));
        }
        let publics = self
            .session
            .find_objects(&template)
            .map_err(|e| device("C_FindObjects", &self.label, e))?;
        let Some(&public_handle) = publics.first() else {
            return Err(HsmError::KeyNotFound {
                what: "public key",
                uri: uri.to_string(),
                token: self.label.clone(),
            }
            .into());
        };
        let mut key_uri = uri.clone();
        key_uri.object = label.or(key_uri.object);
        key_uri.id = id.or(key_uri.id);
        self.describe(private, public_handle, key_uri)
    }

    fn attributes(
        &self,
        object: ObjectHandle,
        types: &[AttributeType],
    ) -> Result<Vec<Attribute>, Error> {
        self.session
            .get_attributes(object, types)
            .map_err(|e| device("C_GetAttributeValue", &self.label, e))
    }

    /// Reads the key's type and public point.
    fn describe(
        &self,
        private: ObjectHandle,
        public_handle: ObjectHandle,
        uri: Pkcs11Uri,
    ) -> Result<TokenKey, Error> {
        let mut key_type = None;
        let mut params = Vec::new();
        for a in self.attributes(private, &[AttributeType::KeyType])? {
            if let Attribute::KeyType(t) = a {
                key_type = Some(t);
            }
        }
        let mut point = Vec::new();
        for a in self.attributes(
            public_handle,
            &[AttributeType::EcParams, AttributeType::EcPoint],
        )? {
            match a {
                Attribute::EcParams(p) => params = p,
                Attribute::EcPoint(p) => point = p,
                _ => {}
            }
        }
        let scheme = match key_type {
            Some(t)
                if t == KeyType::EC_EDWARDS
                    && (params == ED25519_PARAMS || params == ED25519_OID) =>
            {
                SignatureScheme::Ed25519
            }
            Some(t) if t == KeyType::EC && params == P256_PARAMS => {
                SignatureScheme::EcdsaP256Sha256
            }
            other => {
                return Err(HsmError::WrongKeyType {
                    uri: uri.to_string(),
                    found: match other {
                        Some(t) => format!("{t} with parameters {}", hex::encode(&params)),
                        None => "a key of unknown type".into(),
                    },
                    expected: "an Ed25519 or P-256 signing key".into(),
                }
                .into())
            }
        };
        let public = decode_point(&point, scheme.public_key_len())
            .filter(|p| scheme.is_valid_public_key(p))
            .ok_or_else(|| HsmError::WrongKeyType {
                uri: uri.to_string(),
                found: "a public key whose CKA_EC_POINT does not decode".into(),
                expected: format!("an {scheme} public key"),
            })?;
        Ok(TokenKey {
            scheme,
            public,
            uri,
            private,
            public_handle,
        })
    }

    /// The protection attributes of `key`'s private object, and whether
    /// the token refuses to return its value.
    pub fn protection(&self, key: &TokenKey) -> Result<KeyProtection, Error> {
        let mut p = KeyProtection {
            sensitive: false,
            extractable: true,
            always_sensitive: false,
            never_extractable: false,
            value_unreadable: false,
        };
        let types = [
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
        ];
        for a in self.attributes(key.private, &types)? {
            match a {
                Attribute::Sensitive(v) => p.sensitive = v,
                Attribute::Extractable(v) => p.extractable = v,
                Attribute::AlwaysSensitive(v) => p.always_sensitive = v,
                Attribute::NeverExtractable(v) => p.never_extractable = v,
                _ => {}
            }
        }
        let info = self
            .session
            .get_attribute_info(key.private, &[AttributeType::Value])
            .map_err(|e| device("C_GetAttributeValue", &self.label, e))?;
        p.value_unreadable = matches!(
            info.first(),
            Some(
                AttributeInfo::Sensitive | AttributeInfo::TypeInvalid | AttributeInfo::Unavailable
            )
        );
        Ok(p)
    }

    /// Destroys the key's private and public objects.
    pub fn destroy(&self, key: &TokenKey) -> Result<(), Error> {
        self.session
            .destroy_object(key.private)
            .map_err(|e| device("C_DestroyObject", &self.label, e))?;
        self.session
            .destroy_object(key.public_handle)
            .map_err(|e| device("C_DestroyObject", &self.label, e))
    }

    /// Signs `message` with `key` in this token's session.
    pub fn sign(&self, key: &TokenKey, message: &[u8]) -> Result<Vec<u8>, Error> {
        sign_in(&self.session, &self.label, key.private, key.scheme, message)
    }
}

/// The (generation, signing) mechanisms of a scheme.
fn mechanisms(scheme: SignatureScheme) -> (MechanismType, MechanismType) {
    match scheme {
        SignatureScheme::EcdsaP256Sha256 => (MechanismType::ECC_KEY_PAIR_GEN, MechanismType::ECDSA),
        _ => (
            MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            MechanismType::EDDSA,
        ),
    }
}

/// One signature: CKM_EDDSA over the message, or CKM_ECDSA over its
/// SHA-256 (hashed here: every token has CKM_ECDSA, fewer CKM_ECDSA_SHA256).
pub(crate) fn sign_in(
    session: &Session,
    token: &str,
    key: ObjectHandle,
    scheme: SignatureScheme,
    message: &[u8],
) -> Result<Vec<u8>, Error> {
    let result = match scheme {
        SignatureScheme::EcdsaP256Sha256 => {
            let digest = crate::crypto::hash::sha256(&[message]);
            session.sign(&Mechanism::Ecdsa, key, &digest)
        }
        _ => session.sign(
            &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            key,
            message,
        ),
    };
    result.map_err(|e| device("C_Sign", token, e))
}

/// `CKA_EC_POINT`: a DER OCTET STRING around the point (the standard), or
/// the raw point (some modules); told apart by length.
fn decode_point(bytes: &[u8], raw_len: usize) -> Option<Vec<u8>> {
    if bytes.len() == raw_len {
        return Some(bytes.to_vec());
    }
    match bytes {
        [0x04, len, rest @ ..] if usize::from(*len) == raw_len && rest.len() == raw_len => {
            Some(rest.to_vec())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_decode_wrapped_or_raw() {
        let mut der = vec![0x04, 32];
        der.extend_from_slice(&[7; 32]);
        assert_eq!(decode_point(&der, 32), Some(vec![7; 32]));
        assert_eq!(decode_point(&[7; 32], 32), Some(vec![7; 32]));
        assert_eq!(decode_point(&der[..33], 32), None);
        let mut p = vec![0x04, 65, 0x04];
        p.extend_from_slice(&[1; 64]);
        assert_eq!(decode_point(&p, 65).map(|v| v.len()), Some(65));
    }

    #[test]
    fn missing_modules_are_named() {
        let uri =
            Pkcs11Uri::parse("pkcs11:token=x;object=k?module-path=/nonexistent/lib.so").unwrap();
        let err = Token::open(&uri, &TokenPin::new("1".into())).unwrap_err();
        assert!(
            matches!(err, Error::Hsm(HsmError::ModuleLoad { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("/nonexistent/lib.so"), "{err}");
    }
}
