//! The one error type of akex, grouped by cause.
//!
//! Errors never carry secret material: no keys, no plaintext, no
//! ciphertext. They say which rule was broken and by whom.

use std::time::Duration;

/// Every failure akex reports.
///
/// The variants group causes the way a caller reacts to them: the peer
/// misbehaved (drop the connection), the peer is incompatible (fix the
/// configuration on one side), the peer is not trusted, the caller misused
/// the API, or the operating system failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent something a correct peer never sends.
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(#[from] PeerMisbehaved),
    /// The peer speaks something we do not accept.
    #[error("peer incompatible: {0}")]
    PeerIncompatible(#[from] PeerIncompatible),
    /// The peer authenticated, but not as someone we trust.
    #[error("peer not trusted: {0}")]
    PeerNotTrusted(#[from] TrustFailure),
    /// The local configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The API was used in a way its contract forbids.
    #[error("API misuse: {0}")]
    ApiMisuse(#[from] ApiMisuse),
    /// A session key reached a limit and must not be used further.
    #[error("session limit reached: {0}")]
    Limit(#[from] LimitReached),
    /// The handshake did not finish in time.
    #[error("handshake timed out after {0:?}")]
    Timeout(Duration),
    /// No complete message moved on a connection for this long.
    #[error("connection idle for longer than {0:?}")]
    IdleTimeout(Duration),
    /// The server turned the connection away at one of its limits (too
    /// many handshakes or connections, or no handshake slot freed up before
    /// the deadline). Nothing is wrong with the request: try again later.
    #[error("server busy: it turned the connection away at a limit; try again later")]
    ServerBusy,
    /// A key file could not be used.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file's path as given.
        path: String,
        /// What is wrong with it (never its contents).
        reason: String,
        /// The operating system's error, if one caused it.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The key store, trust store or audit log could not be used.
    #[error("key store: {0}")]
    KeyStore(#[from] KeyStoreError),
    /// A hardware security module (PKCS#11) could not be used.
    #[error("PKCS#11: {0}")]
    Hsm(#[from] HsmError),
    /// The operating system reported an I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The peer sent bytes a correct implementation never sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// An AEAD tag did not verify: tampering, a wrong key, a replay or reordering.
    #[error("message failed authentication (tampered, replayed or wrong key)")]
    DecryptFailed,
    /// A message had a length the protocol does not allow at this point.
    #[error("message has an invalid length")]
    BadMessageLength,
    /// A public key was rejected (for X25519: a low-order point).
    #[error("peer sent an invalid public key")]
    InvalidPublicKey,
    /// A message arrived when none was expected.
    #[error("unexpected message")]
    UnexpectedMessage,
    /// The stream ended inside a frame.
    #[error("stream ended in the middle of a frame")]
    TruncatedFrame,
    /// The peer closed the connection before the handshake finished.
    #[error("connection closed during the handshake")]
    ClosedDuringHandshake,
    /// A frame longer than the configured limit was announced.
    #[error("frame exceeds the size limit")]
    FrameTooLarge,
    /// An akex-mode record carried a type byte we do not know (the session closes).
    #[error("record of unknown type {0:#04x}")]
    UnknownRecordType(u8),
    /// An akex-mode control record carried a control type we do not know
    /// (the session closes).
    #[error("control record of unknown type {0:#06x}")]
    UnknownControlType(u16),
    /// A DH ratchet step's key confirmation did not verify: the peer does
    /// not hold the step's keys (someone holding only session secrets
    /// tried to take the step over).
    #[error("ratchet key confirmation does not verify")]
    BadKeyConfirmation,
    /// A record's body does not fit its type (e.g. a ratchet record of the wrong length).
    #[error("malformed record")]
    MalformedRecord,
    /// A record arrived that was already received (datagram mode).
    #[error("replayed record")]
    Replayed,
    /// A record is older than the replay window (datagram mode).
    #[error("record too old for the replay window")]
    TooOld,
    /// The transport ended without an authenticated close record (akex mode):
    /// the stream may have been truncated by an attacker.
    #[error("connection ended without an authenticated close (possible truncation)")]
    UnauthenticatedEof,
    /// The akex hello at the start of the first message is malformed
    /// (truncated, or its name is empty or not UTF-8).
    #[error("malformed akex hello")]
    MalformedHello,
    /// A signature over the transcript did not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A MAC binding the peer's identity to the key exchange did not verify.
    #[error("identity MAC does not verify")]
    BadMac,
}

/// The peer uses a protocol or feature we do not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerIncompatible {
    /// The peer asked for a protocol outside our allow-list.
    #[error("protocol {0:?} is not allowed")]
    ProtocolNotAllowed(String),
    /// The first message does not start with an akex hello (the peer may
    /// be speaking Noise mode, which has none).
    #[error("the first message has no akex hello (is the peer in Noise mode?)")]
    NotAkexMode,
    /// The akex hello has a version we do not speak.
    #[error("unsupported akex hello version {0}")]
    UnsupportedVersion(u8),
}

/// The peer proved an identity we do not trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustFailure {
    /// The peer's static key differs from the one we expected.
    #[error("remote static key does not match the expected key")]
    RemoteKeyMismatch,
    /// The pattern authenticates the peer but no key was learned.
    #[error("peer presented no static key")]
    NoRemoteKey,
    /// The peer's key is on the revocation list.
    #[error("peer key {key_id} is revoked: {reason}")]
    Revoked {
        /// The revoked key's id.
        key_id: String,
        /// The reason recorded with the revocation.
        reason: String,
    },
    /// The peer's key was pinned, but its validity (expiry or the overlap
    /// window after a rotation) has ended.
    #[error("peer key {key_id} ({name}) expired")]
    Expired {
        /// The key's id.
        key_id: String,
        /// The pin's name.
        name: String,
    },
    /// The peer's key is not in the trust store and the policy does not
    /// accept unknown keys.
    #[error("peer key {key_id} is not pinned in the trust store")]
    Unknown {
        /// The key's id.
        key_id: String,
    },
    /// Trust on first use met a key other than the one pinned under the
    /// name the connection expected: a changed key is refused, never
    /// pinned beside the old one (remove the name's pins to accept a new
    /// key).
    #[error(
        "peer key {key_id} is not the key pinned as {name:?}; a changed key is not pinned on \
         first use"
    )]
    Changed {
        /// The new key's id.
        key_id: String,
        /// The pin name the connection expected.
        name: String,
    },
    /// Trust on first use met a key that no pin type fits (the legacy RSA
    /// and FFDH keys, or bytes of no key's length), so it was not pinned.
    #[error("peer key {key_id} fits no pin type, so it cannot be pinned on first use")]
    Unpinnable {
        /// The key's id.
        key_id: String,
    },
    /// The peer's key is pinned, but under another name than the peer the
    /// connection expected: one pinned peer must not pass for another.
    #[error("peer key {key_id} is not pinned as {expected:?}")]
    WrongPeer {
        /// The key's id.
        key_id: String,
        /// The pin name the connection expected.
        expected: String,
    },
}

/// The key store, trust store or audit log cannot be used.
///
/// Messages name files, key names and ids, never key material or passphrases.
/// I/O failures keep the operating system's error as their source, so
/// callers can match on its [`std::io::ErrorKind`] (see
/// [`KeyStoreError::io_kind`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// No key (or pin) with this name or id.
    #[error("no key named {0:?}")]
    NotFound(String),
    /// A key with this name already exists.
    #[error("a key named {0:?} already exists")]
    AlreadyExists(String),
    /// The passphrase does not decrypt the key file.
    #[error("wrong passphrase for key {0:?}")]
    WrongPassphrase(String),
    /// No passphrase was available (no env var, no terminal).
    #[error("no passphrase: {0}")]
    NoPassphrase(String),
    /// A file is corrupted, truncated or was modified; it is left untouched.
    #[error("{path} is corrupted or was modified: {reason} (the file was left untouched)")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong (never its contents).
        reason: String,
    },
    /// The key is held in a PKCS#11 token: it has no key file, and the
    /// operation needs the token (and its PIN).
    #[error("key {name:?} is held in a PKCS#11 token ({uri}), not in a key file")]
    InToken {
        /// The key's name.
        name: String,
        /// Its `pkcs11:` URI.
        uri: String,
    },
    /// The key was destroyed; only its public record remains.
    #[error("key {0:?} was destroyed")]
    Destroyed(String),
    /// The key was revoked and must not be used.
    #[error("key {0:?} is revoked")]
    Revoked(String),
    /// The key's expiry time has passed.
    #[error("key {0:?} has expired")]
    Expired(String),
    /// The key was retired by a rotation.
    #[error("key {0:?} is retired")]
    Retired(String),
    /// The key type is unknown or cannot be used for this operation.
    #[error("unsupported key type: {0}")]
    Unsupported(String),
    /// A rotation statement is malformed or its signatures do not verify.
    #[error("invalid rotation statement: {0}")]
    InvalidStatement(String),
    /// A key that was already rotated to one successor signed a rotation to
    /// another: the two statements fork the chain, so the second is refused
    /// (and the attempt is logged as `equivocation`). The old key has
    /// probably leaked.
    #[error(
        "equivocation: key {old_id} was already rotated to {accepted}, \
         refusing its statement naming {offered}"
    )]
    Equivocation {
        /// The key that signed both statements.
        old_id: String,
        /// The successor accepted first.
        accepted: String,
        /// The successor the refused statement names.
        offered: String,
    },
    /// The audit log's hash chain is broken.
    #[error("audit log line {line}: {reason}")]
    AuditBroken {
        /// The first bad line, counted from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl KeyStoreError {
    /// The operating system's error kind for [`KeyStoreError::Io`] (for
    /// instance `NotFound`, `PermissionDenied`, `ReadOnlyFilesystem`,
    /// `StorageFull`), `None` for every other variant.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            KeyStoreError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// A hardware security module reached through PKCS#11 (feature `pkcs11`)
/// could not do what was asked. Each message names what is missing on one
/// line, never a PIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// No module was named: neither the URI's `module-path` nor the
    /// `AKEX_PKCS11_MODULE` environment variable.
    #[error("no module: add ?module-path=... to the URI or set AKEX_PKCS11_MODULE")]
    NoModule,
    /// The module's shared library could not be loaded or initialised.
    #[error("cannot load module {path}: {reason}")]
    ModuleLoad {
        /// The library's path.
        path: String,
        /// Why (the loader's or the module's message).
        reason: String,
    },
    /// No token matches the URI's token attributes.
    #[error("no token {token} in module {module} (tokens present: {present})")]
    TokenNotFound {
        /// The token attributes looked for, as in the URI.
        token: String,
        /// The module searched.
        module: String,
        /// The labels of the tokens the module has.
        present: String,
    },
    /// The token refused the PIN.
    #[error("wrong PIN for token {token}")]
    WrongPin {
        /// The token's label.
        token: String,
    },
    /// The token's user PIN is locked after too many wrong attempts.
    #[error("the PIN of token {token} is locked")]
    PinLocked {
        /// The token's label.
        token: String,
    },
    /// No PIN was available.
    #[error("no PIN for token {token}: {how}")]
    NoPin {
        /// The token's label.
        token: String,
        /// Where a PIN may come from.
        how: String,
    },
    /// No key in the token matches the URI.
    #[error("no {what} matching {uri} in token {token}")]
    KeyNotFound {
        /// The object looked for (`private key`, `public key`).
        what: &'static str,
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
    },
    /// Several keys match the URI; add `id=` to pick one.
    #[error("{count} keys match {uri} in token {token}: add id=... to the URI")]
    Ambiguous {
        /// The URI.
        uri: String,
        /// The token's label.
        token: String,
        /// How many matched.
        count: usize,
    },
    /// The token already holds an object with the label and id to create.
    #[error("token {token} already holds a key labelled {label:?}; choose another object= label")]
    AlreadyExists {
        /// The token's label.
        token: String,
        /// The object label.
        label: String,
    },
    /// The token does not offer a mechanism akex needs.
    #[error("token {token} does not support {mechanism}")]
    MechanismUnsupported {
        /// The token's label.
        token: String,
        /// The PKCS#11 mechanism, e.g. `CKM_EDDSA`.
        mechanism: String,
    },
    /// The key in the token is not of the kind akex expected.
    #[error("key {uri} is {found}, not {expected}")]
    WrongKeyType {
        /// The URI.
        uri: String,
        /// What was found.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// A `pkcs11:` URI does not parse or asks for something akex refuses.
    #[error("invalid URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI as given (never with a PIN: URIs with `pin-value` are
        /// refused and not echoed).
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// The akex build has no PKCS#11 support.
    #[error("this build of akex has no PKCS#11 support (cargo feature pkcs11)")]
    NotBuilt,
    /// The module reported an error for an operation.
    #[error("{operation} failed in token {token}: {reason}")]
    Device {
        /// What akex asked (`sign`, `generate`, `destroy`, ...).
        operation: &'static str,
        /// The token's label.
        token: String,
        /// The module's return value, e.g. `CKR_DEVICE_REMOVED`.
        reason: String,
    },
}

/// The local configuration cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The protocol name does not parse or names something unsupported.
    #[error("unsupported protocol {name:?}: {reason}")]
    UnsupportedProtocol {
        /// The name as given.
        name: String,
        /// Why it is not supported.
        reason: String,
    },
    /// The pattern needs our static key and none was given.
    #[error("this protocol needs our long-term key and none was given")]
    MissingLocalKey,
    /// The pattern needs the peer's static key in advance and none was given.
    #[error("this protocol needs the peer's public key in advance and none was given")]
    MissingRemoteKey,
    /// The pattern has PSK slots but not enough PSKs were given.
    #[error("this protocol needs {needed} pre-shared key(s), {given} given")]
    PskCount {
        /// PSKs the pattern uses.
        needed: usize,
        /// PSKs configured.
        given: usize,
    },
    /// A key had the wrong length or encoding.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A handshake of one role was given where the other belongs.
    #[error("this call needs a handshake in the {expected} role, not the {given} role")]
    WrongRole {
        /// The role the call needs.
        expected: crate::handshake::Role,
        /// The role of the handshake given.
        given: crate::handshake::Role,
    },
    /// A key of one kind was given where the protocol needs another.
    #[error("wrong kind of key: this protocol needs an {expected} key, got an {given} key")]
    WrongKeyKind {
        /// What the protocol needs.
        expected: crate::keys::KeyKind,
        /// What was given.
        given: crate::keys::KeyKind,
    },
    /// Some other invalid setting.
    #[error("{0}")]
    Invalid(String),
}

/// The caller broke the API's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// A write was attempted when it is the peer's turn, or a read on ours.
    #[error("not this side's turn in the handshake")]
    WrongTurn,
    /// The handshake failed earlier and cannot be used again.
    #[error("the handshake already failed and cannot continue")]
    HandshakeDead,
    /// `finish` was called before the last message.
    #[error("the handshake has not finished")]
    HandshakeNotFinished,
    /// A message was longer than the protocol allows.
    #[error("message too large")]
    MessageTooLarge,
    /// Reading continued after the stream already failed (an earlier error
    /// is final: an attacker must not get a second try).
    #[error("the secure stream already failed")]
    StreamFailed,
    /// The operation exists only in the other record mode (Noise vs akex).
    #[error("operation not available in this record mode")]
    WrongRecordMode,
    /// The session was closed (a close record was sent or received) or
    /// failed; it cannot be used any more.
    #[error("the session is closed")]
    SessionClosed,
    /// A DH ratchet needs a root secret from the handshake and there is none.
    #[error("this session has no root secret, so it cannot ratchet")]
    NoRootSecret,
    /// This record type is built by the session itself (ratchet records:
    /// use `start_ratchet`), or its body must be empty.
    #[error("this record type cannot be sealed with this call")]
    RecordNotAllowed,
}

/// A key reached a usage limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitReached {
    /// The 64-bit nonce counter reached the reserved value 2^64-1.
    #[error("nonce space exhausted; the session must end or rekey")]
    NonceExhausted,
    /// The sending key was used for as many records or bytes as its AEAD
    /// safely allows; it must be rekeyed before sealing more.
    #[error("AEAD usage limit reached for the sending key; rekey first")]
    AeadUsageLimit,
    /// The peer sent more records or bytes under one key than the AEAD
    /// usage limit allows, or too many forgeries were attempted.
    #[error("peer exceeded the AEAD usage limit of one key")]
    PeerExceededLimit,
}

impl Error {
    /// A short, stable name for the kind of error, for logs and JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::PeerMisbehaved(_) => "peer_misbehaved",
            Error::PeerIncompatible(_) => "peer_incompatible",
            Error::PeerNotTrusted(_) => "peer_not_trusted",
            Error::Config(_) => "config",
            Error::ApiMisuse(_) => "api_misuse",
            Error::Limit(_) => "limit",
            Error::Timeout(_) => "timeout",
            Error::IdleTimeout(_) => "idle_timeout",
            Error::ServerBusy => "server_busy",
            Error::KeyFile { .. } => "key_file",
            Error::KeyStore(_) => "key_store",
            Error::Hsm(_) => "hsm",
            Error::Io(_) => "io",
        }
    }

    /// Converts to an `std::io::Error` for the `AsyncRead`/`AsyncWrite` APIs,
    /// keeping this error inside so callers can downcast it back.
    pub fn into_io(self) -> std::io::Error {
        match self {
            Error::Io(e) => e,
            other => {
                let kind = match &other {
                    Error::PeerMisbehaved(
                        PeerMisbehaved::TruncatedFrame | PeerMisbehaved::UnauthenticatedEof,
                    ) => std::io::ErrorKind::UnexpectedEof,
                    Error::Timeout(_) | Error::IdleTimeout(_) => std::io::ErrorKind::TimedOut,
                    Error::ServerBusy => std::io::ErrorKind::ConnectionRefused,
                    Error::KeyStore(KeyStoreError::Io { source, .. }) => source.kind(),
                    Error::KeyFile {
                        source: Some(source),
                        ..
                    } => source.kind(),
                    Error::Config(_) | Error::ApiMisuse(_) => std::io::ErrorKind::InvalidInput,
                    Error::PeerNotTrusted(_) => std::io::ErrorKind::PermissionDenied,
                    _ => std::io::ErrorKind::InvalidData,
                };
                std::io::Error::new(kind, other)
            }
        }
    }

    /// Recovers an akex error from an `std::io::Error` made by [`Error::into_io`].
    pub fn from_io(err: std::io::Error) -> Error {
        if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let kind = err.kind();
            match err.into_inner().map(|b| b.downcast::<Error>()) {
                Some(Ok(inner)) => *inner,
                // The check above makes this branch unreachable; keep a sane fallback.
                _ => Error::Io(std::io::Error::from(kind)),
            }
        } else {
            Error::Io(err)
        }
    }
}

impl From<Error> for std::io::Error {
    /// [`Error::into_io`]: the akex error stays inside (recover it with
    /// [`Error::from_io`]) and the kind says what happened, so `?` works in
    /// functions returning `std::io::Result`.
    fn from(error: Error) -> Self {
        error.into_io()
    }
}

/// Result with akex's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
