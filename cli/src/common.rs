//! Options and helpers shared by the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use akex::crypto::Secret;
use akex::error::{ConfigError, KeyStoreError, TrustFailure};
use akex::handshake::registry::{self, HandshakeKeys};
use akex::handshake::sigma::sigma_suite;
use akex::keys::{
    decode_public_key, decode_rotation_announcement, encode_rotation_announcement, load_identity,
    now_unix, AuditLog, KeyStore, KeyType, TrustPolicy, TrustStore,
};
use akex::keys::{P256SigningKey, SignatureScheme, SigningKey};
use akex::transport::TransportOptions;
use akex::{Error, KeyKind, PublicKey};
use clap::{Args, ValueEnum};

/// How to run the handshake: protocol, keys, PSKs, limits.
#[derive(Args, Clone, Debug)]
pub struct HandshakeArgs {
    /// Protocol name (see `akex protocols`), e.g.
    /// Noise_XX_25519_ChaChaPoly_BLAKE2s or
    /// akex-sigma-x25519-ed25519-chachapoly-sha256. `serve` accepts a
    /// comma-separated allow-list of akex-* names (a Noise name only alone:
    /// Noise mode has no hello to negotiate with). Note: RSA key transport
    /// (akex-rsa3072-oaep-kt-not-forward-secret-chachapoly-sha256, built with
    /// --features rsa-kt) is NOT forward secret: a legacy baseline only.
    #[arg(long)]
    pub protocol: String,
    /// Our private key file: X25519 from `akex keygen`, Ed25519 from
    /// `akex keygen --type ed25519` when every protocol is SIGMA, or (server
    /// only) RSA-3072 from `akex keygen --type rsa3072` when every protocol
    /// is RSA key transport.
    #[arg(long, conflicts_with = "key")]
    pub identity: Option<PathBuf>,
    /// Our Ed25519 key file for SIGMA when the allow-list mixes SIGMA with
    /// protocols that use an X25519 --identity.
    #[arg(long = "signing-identity")]
    pub signing_identity: Option<PathBuf>,
    /// Our ML-KEM-768 key file (`akex keygen --type mlkem768`) for the
    /// akex-pq-* protocols, next to the X25519 --identity.
    #[arg(long = "kem-identity")]
    pub kem_identity: Option<PathBuf>,
    /// Our identity by name from the key store (see `akex keys`), or a
    /// key in a PKCS#11 token by URI (`pkcs11:token=...;object=...`,
    /// --features pkcs11); repeat it to give several keys, each used by its
    /// type: x25519 (Noise, hybrid, PQ), ed25519 (SIGMA), p256 (the P-256
    /// SIGMA suite), mlkem768 (akex-pq-*, next to an x25519 key). The
    /// passphrase comes from AKEX_PASSPHRASE, --passphrase-fd or a prompt;
    /// a token's PIN from AKEX_PKCS11_PIN, --pin-fd or a prompt.
    #[arg(long)]
    pub key: Vec<String>,
    /// The key store directory (default $XDG_DATA_HOME/akex, else
    /// ~/.local/share/akex).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Check the peer's static key against the trust store: pinned keys
    /// only (judged inside the handshake, before our identity is sent), or
    /// trust on first use (after the handshake).
    #[arg(long, value_enum)]
    pub trust: Option<TrustMode>,
    /// The trust store file (default: trust.json in the key store); giving
    /// it implies --trust pinned.
    #[arg(long = "trust-store")]
    pub trust_store: Option<PathBuf>,
    /// The peer we expect, by its pin name in the trust store: with
    /// --trust, its key must be pinned under this name (`connect --trust
    /// pinned` requires it); for patterns that need the peer's key in
    /// advance (IK, NK, KK), that key comes from the pin.
    #[arg(long, conflicts_with = "remote_key")]
    pub peer: Option<String>,
    /// The peer's public key, base64: required in advance by NK/IK/KK, and
    /// pinned (checked) by patterns that transmit it, such as XX. For the
    /// akex-pq-* protocols: the X25519 public key followed by the ML-KEM-768
    /// encapsulation key (1216 bytes; `akex pubkey --identity X --kem-identity
    /// K` prints it). For RSA key transport: the server's RSA public key
    /// (DER, as `akex keygen --type rsa3072` prints it).
    #[arg(long = "remote-key")]
    pub remote_key: Option<String>,
    /// A 32-byte pre-shared key, base64; repeat for several psk slots.
    #[arg(long)]
    pub psk: Vec<String>,
    /// Prologue both sides hash into the transcript (UTF-8 text). Every
    /// protocol binds it, empty included: sides with different prologues
    /// fail the handshake.
    #[arg(long, default_value = "")]
    pub prologue: String,
    /// Handshake timeout in seconds (more than 0, at most 3600; fractions
    /// allowed).
    #[arg(long, default_value_t = 10.0, value_parser = parse_timeout)]
    pub timeout: f64,
    /// Read the key store passphrase from this open file descriptor (its
    /// first line) when AKEX_PASSPHRASE is unset (unix).
    #[arg(long = "passphrase-fd", value_name = "FD")]
    pub passphrase_fd: Option<u32>,
    /// Read a PKCS#11 token's PIN from this open file descriptor (its first
    /// line) when AKEX_PKCS11_PIN is unset (unix).
    #[arg(long = "pin-fd", value_name = "FD")]
    pub pin_fd: Option<u32>,
}

impl HandshakeArgs {
    /// The protocol names of `--protocol` (a comma-separated list).
    pub fn protocols(&self) -> Result<Vec<String>, Error> {
        let names: Vec<String> = self
            .protocol
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect();
        if names.is_empty() {
            return Err(ConfigError::Invalid("--protocol is empty".into()).into());
        }
        for name in &names {
            registry::mode_of(name)?;
        }
        Ok(names)
    }

    /// Fails if `--trust`/`--trust-store` is given for a legacy row (RSA
    /// key transport, FFDH): a trust store pins none of their keys.
    pub fn check_trust_applies(&self) -> Result<(), Error> {
        if self.trust_mode().is_none() {
            return Ok(());
        }
        for name in self.protocols()? {
            if matches!(
                registry::remote_key_kind(&name),
                Some(KeyKind::Rsa | KeyKind::Ffdhe3072)
            ) {
                return Err(ConfigError::Invalid(format!(
                    "--trust and --trust-store do not apply to {name}: a trust store pins \
                     no RSA or FFDH key, so --remote-key alone authenticates the server"
                ))
                .into());
            }
        }
        Ok(())
    }

    /// The keys for `akex::handshake::registry` from the key options.
    pub fn handshake_keys(&self) -> Result<HandshakeKeys, Error> {
        self.check_trust_applies()?;
        let names = self.protocols()?;
        let all_sigma = names.iter().all(|n| sigma_suite(n).is_some());
        // A file identity for SIGMA signs with the suites' scheme: Ed25519
        // unless every suite is the P-256 one.
        let p256_only = all_sigma
            && names.iter().all(|n| {
                sigma_suite(n).is_some_and(|s| s.scheme == SignatureScheme::EcdsaP256Sha256)
            });
        let mut keys = HandshakeKeys::new().prologue(self.prologue.as_bytes());
        #[cfg(feature = "rsa-kt")]
        let all_rsa = names.iter().all(|n| n == akex::handshake::rsa::RSA_KT);
        #[cfg(not(feature = "rsa-kt"))]
        let all_rsa = false;
        if let Some(path) = &self.kem_identity {
            keys = keys.kem_key(crate::key_files::load_mlkem768(path)?);
        }
        if all_rsa {
            #[cfg(feature = "rsa-kt")]
            if let Some(path) = &self.identity {
                keys = keys.rsa_key(crate::key_files::load_rsa3072(path)?);
            }
        } else if let Some(path) = &self.identity {
            let key = load_identity(path)?;
            if p256_only {
                keys = keys.signer(std::sync::Arc::new(P256SigningKey::from_scalar(
                    key.private(),
                )?));
            } else if all_sigma {
                keys = keys.signing_key(SigningKey::from_seed(key.private().clone()));
            } else {
                keys = keys.static_key(key);
            }
        }
        if let Some(path) = &self.signing_identity {
            let key = load_identity(path)?;
            keys = keys.signing_key(SigningKey::from_seed(key.private().clone()));
        }
        crate::passphrase::set_passphrase_fd(self.passphrase_fd);
        for name in &self.key {
            load_store_key(self.store.as_deref(), name, self.pin_fd, &mut keys)?;
        }
        if !self.key.is_empty() {
            for suite in names.iter().filter_map(|n| sigma_suite(n)) {
                if keys.local_signer(suite.scheme).is_none() {
                    let (what, kind) = if suite.scheme == SignatureScheme::Ed25519 {
                        ("SIGMA needs an Ed25519", "ed25519")
                    } else {
                        ("SIGMA on P-256 needs a p256", "p256")
                    };
                    return Err(ConfigError::Invalid(format!(
                        "{what} identity: give --key naming a {kind} store key \
                         (`akex keys generate --type {kind}`) or a pkcs11: URI"
                    ))
                    .into());
                }
            }
        }
        // The kind of peer key the (first) protocol authenticates.
        let kind = registry::remote_key_kind(&names[0]).unwrap_or(KeyKind::X25519);
        if let Some(key) = &self.remote_key {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .map_err(|_| ConfigError::InvalidKey("--remote-key is not valid base64"))?;
            keys = keys.remote(PublicKey::from_bytes(kind, &bytes)?);
        }
        if let Some(name) = &self.peer {
            // With a trust policy, patterns that learn the peer's key in the
            // handshake (XX) are checked by name afterwards, which lets a
            // rotated key through on its statement; the others need the
            // pinned key now.
            if self.trust_mode().is_none() || needs_remote_key(&names, &keys) {
                let trust = self.open_trust_store()?;
                let bytes = trust.pinned_key(name, now_unix())?;
                keys = keys.remote(PublicKey::from_bytes(kind, &bytes)?);
            }
        }
        self.install_trust()?;
        for psk in &self.psk {
            let bytes = decode_public_key(psk)
                .map_err(|_| ConfigError::InvalidKey("--psk must be 32 bytes of base64"))?;
            keys = keys.psk(Secret::new(bytes));
        }
        Ok(keys)
    }

    pub fn transport_options(&self) -> Result<TransportOptions, Error> {
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|t| !t.is_zero() && t.as_secs_f64() <= MAX_TIMEOUT_SECS)
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "--timeout must be more than 0 and at most {MAX_TIMEOUT_SECS} seconds"
                ))
            })?;
        Ok(TransportOptions::new().handshake_timeout(timeout))
    }
}

/// The longest handshake timeout the command line accepts, in seconds.
pub const MAX_TIMEOUT_SECS: f64 = 3600.0;

/// `--timeout`: seconds, more than 0 and at most [`MAX_TIMEOUT_SECS`].
pub fn parse_timeout(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("not a number of seconds: {s:?}"))?;
    // The comparisons are false for NaN, which fails here too.
    if secs > 0.0 && secs <= MAX_TIMEOUT_SECS && Duration::try_from_secs_f64(secs).is_ok() {
        Ok(secs)
    } else {
        Err(format!(
            "must be more than 0 and at most {MAX_TIMEOUT_SECS} seconds, got {s}"
        ))
    }
}

/// `--trust` modes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustMode {
    /// Only keys pinned in the trust store.
    Pinned,
    /// Pin unknown keys on first use (off by default).
    Tofu,
}

/// True if some protocol's initiator cannot be built without the peer's
/// key in advance.
fn needs_remote_key(names: &[String], keys: &HandshakeKeys) -> bool {
    names.iter().any(|n| {
        matches!(
            registry::initiator(n, keys),
            Err(Error::Config(ConfigError::MissingRemoteKey))
        )
    })
}

impl HandshakeArgs {
    fn open_trust_store(&self) -> Result<TrustStore, Error> {
        let dir = store_dir(self.store.as_deref())?;
        let path = self
            .trust_store
            .clone()
            .unwrap_or_else(|| dir.join("trust.json"));
        let store = KeyStore::open(&dir)?;
        TrustStore::open_audited(path, store.audit().clone())
    }

    /// The trust mode of `--trust`/`--trust-store`, if any.
    pub fn trust_mode(&self) -> Option<TrustMode> {
        match (self.trust, &self.trust_store) {
            (Some(mode), _) => Some(mode),
            (None, Some(_)) => Some(TrustMode::Pinned),
            (None, None) => None,
        }
    }

    /// Sets up the post-handshake trust check (see [`check_peer`]).
    fn install_trust(&self) -> Result<(), Error> {
        let Some(mode) = self.trust_mode() else {
            return Ok(());
        };
        let store = self.open_trust_store()?;
        let policy = match mode {
            TrustMode::Pinned => TrustPolicy::Pinned(store),
            TrustMode::Tofu => TrustPolicy::Tofu(store),
        };
        let slot = TRUST.get_or_init(|| Mutex::new(None));
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some((policy, self.peer.clone()));
        // With another trust file, the store's own revocations still count:
        // `keys revoke --name N` lands in trust.json.
        if self.trust_store.is_some() {
            let dir = store_dir(self.store.as_deref())?;
            let store = KeyStore::open(&dir)?;
            let own = TrustStore::open_audited(store.trust_path(), store.audit().clone())?;
            let slot = STORE_REVOCATIONS.get_or_init(|| Mutex::new(None));
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(own);
        }
        Ok(())
    }
}

/// The store's trust.json when `--trust-store` names another file: its
/// revocations are checked too.
static STORE_REVOCATIONS: OnceLock<Mutex<Option<TrustStore>>> = OnceLock::new();

/// Fails if the store's own trust.json revokes `key` (see
/// [`STORE_REVOCATIONS`]); re-read when it changed, failing closed if it
/// became corrupt.
fn check_store_revocations(key: &[u8]) -> Result<(), Error> {
    let Some(slot) = STORE_REVOCATIONS.get() else {
        return Ok(());
    };
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    let Some(own) = guard.as_mut() else {
        return Ok(());
    };
    own.refresh()?;
    let id = akex::keys::key_id(key);
    match own.revocation(&id) {
        Some(r) => Err(TrustFailure::Revoked {
            key_id: id,
            reason: r.reason.clone(),
        }
        .into()),
        None => Ok(()),
    }
}

/// The trust policy and the peer name it expects (`--peer`). The mutex is
/// held for one check: a `stat` of the trust file, a re-read only when it
/// changed, then a lookup.
static TRUST: OnceLock<Mutex<Option<PeerTrust>>> = OnceLock::new();

/// A trust policy and the pin name `--peer` expects.
type PeerTrust = (TrustPolicy, Option<String>);

/// The store keys used in handshakes (`--key`): store dir, id, name.
static KEYS_IN_USE: Mutex<Vec<(PathBuf, String, String)>> = Mutex::new(Vec::new());
/// The rotation announcement `serve` sends first, as a control record
/// (`encode_rotation_announcement`).
static ANNOUNCEMENT: OnceLock<Vec<u8>> = OnceLock::new();
/// Serializes `use` records within the process.
static USE_LOCK: Mutex<()> = Mutex::new(());
/// At most one `use` audit line per key per this many seconds.
const USE_INTERVAL: u64 = akex::keys::USE_LINE_INTERVAL;

/// Records a handshake use of the `--key` identity in its store's audit log
/// (rate-limited, see `AuditLog::record_use`). A failure is a warning: it
/// does not end the connection.
pub fn record_use() {
    let keys = KEYS_IN_USE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let _guard = USE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for (dir, id, name) in &keys {
        let audit = AuditLog::new(dir.join("audit.jsonl"));
        if let Err(e) = audit.record_use(id, Some(name), now_unix(), USE_INTERVAL) {
            eprintln!("akex: warning: cannot record the key's use in the audit log: {e}");
        }
    }
}

/// The rotation announcement (a control record's payload) to send first,
/// if the `--key` identity was made by `akex keys rotate`.
pub fn rotation_announcement() -> Option<&'static [u8]> {
    ANNOUNCEMENT.get().map(Vec::as_slice)
}

impl HandshakeArgs {
    /// With `--trust pinned` (or `--trust-store`), checks the peer's key
    /// against the trust store inside the handshake, as soon as a message
    /// has shown it, so an untrusted responder never receives our identity
    /// (Noise XX, SIGMA-I, hybrid and PQ XX send it last). With
    /// `accept_rotation` (the client), an unpinned key is accepted if the
    /// message that showed it carries a rotation announcement the pinned
    /// key vouches for (`serve` puts one there). `--trust tofu` is checked
    /// after the handshake ([`check_peer`]).
    pub fn verify_in_handshake(&self, keys: HandshakeKeys, accept_rotation: bool) -> HandshakeKeys {
        if self.trust_mode() != Some(TrustMode::Pinned) {
            return keys;
        }
        keys.verify_peer(
            move |key: &PublicKey, payload: &[u8]| -> Result<(), Error> {
                let Err(e) = check_peer(Some(key)) else {
                    return Ok(());
                };
                let unknown = matches!(e, Error::PeerNotTrusted(TrustFailure::Unknown { .. }));
                if !(accept_rotation && unknown) || decode_rotation_announcement(payload).is_err() {
                    return Err(e);
                }
                if accept_announced_rotation(key.as_bytes(), payload)? {
                    Ok(())
                } else {
                    Err(e)
                }
            },
        )
    }
}

/// Handles a rotation announcement (the payload of the server's first
/// handshake message) from the peer whose key `remote_static` is not
/// pinned: verifies the chain against the trust store
/// (`TrustStore::accept_rotation_chain`, which records the new pin and logs
/// it), then re-checks the key. Returns `Ok(false)` if the trust policy
/// does not pin keys.
pub fn accept_announced_rotation(remote_static: &[u8], payload: &[u8]) -> Result<bool, Error> {
    let chain = decode_rotation_announcement(payload)?;
    let Some(slot) = TRUST.get() else {
        return Ok(false);
    };
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    let Some((policy @ TrustPolicy::Pinned(_), peer)) = guard.as_mut() else {
        return Ok(false);
    };
    let now = now_unix();
    let store = policy.store_mut().expect("a pinned policy has a store");
    // Only the pin of the peer we expect may move.
    let pin = store.accept_rotation_chain(&chain, remote_static, peer.as_deref(), now)?;
    eprintln!(
        "akex: accepted the peer's key rotation to {} ({}) on a verified statement",
        pin.id, pin.name
    );
    policy.check_peer(remote_static, peer.as_deref(), now)?;
    Ok(true)
}

/// Checks the peer's static key against the trust policy set up by
/// `--trust`/`--trust-store` (a no-op without them). Call it right after
/// the handshake, before any application data.
pub fn check_peer(remote_static: Option<&PublicKey>) -> Result<(), Error> {
    let Some(slot) = TRUST.get() else {
        return Ok(());
    };
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    match (guard.as_mut(), remote_static) {
        (Some((policy, peer)), Some(key)) => {
            check_store_revocations(key.as_bytes())?;
            policy.check_key(key, peer.as_deref(), now_unix())
        }
        (Some((policy, _)), None) => policy.check_optional(None, now_unix()),
        (None, _) => Ok(()),
    }
}

/// The key store directory: `--store`, else the XDG default.
pub fn store_dir(store: Option<&std::path::Path>) -> Result<PathBuf, Error> {
    match store {
        Some(dir) => Ok(dir.to_path_buf()),
        None => KeyStore::default_dir().ok_or_else(|| {
            ConfigError::Invalid("no --store and neither XDG_DATA_HOME nor HOME is set".into())
                .into()
        }),
    }
}

/// Records the handshake key `entry` of `store` for the `use` and `load`
/// audit lines and the rotation announcement.
fn key_in_use(store: &KeyStore, entry: &akex::keys::KeyEntry) -> Result<(), Error> {
    if let Err(e) = store.record_load(entry) {
        eprintln!("akex: warning: cannot record the key's load in the audit log: {e}");
    }
    KEYS_IN_USE.lock().unwrap_or_else(|e| e.into_inner()).push((
        store.dir().to_path_buf(),
        entry.id.clone(),
        entry.name.clone(),
    ));
    // Peers pin the identity key (x25519, ed25519, p256), so a rotation of
    // that key is announced; the ML-KEM key travels in --remote-key instead.
    if entry.key_type != KeyType::Mlkem768 {
        let chain = store.rotation_chain(&entry.id)?;
        if !chain.is_empty() {
            let _ = ANNOUNCEMENT.set(encode_rotation_announcement(&chain)?);
        }
    }
    Ok(())
}

/// Adds a signing identity, refusing a second one of the same scheme.
fn add_signer(
    name: &str,
    keys: &mut HandshakeKeys,
    signer: std::sync::Arc<dyn akex::keys::Signer>,
) -> Result<(), Error> {
    if keys.local_signer(signer.scheme()).is_some() {
        return Err(ConfigError::Invalid(format!(
            "--key {name}: a {} key was already given; give one key of each type",
            signer.scheme()
        ))
        .into());
    }
    *keys = std::mem::take(keys).signer(signer);
    Ok(())
}

/// Loads the store key `name` (`--key`), or the token key of a `pkcs11:`
/// URI, into the slot of `keys` its type fills; a second key of the same
/// type is an error, not a silent override.
fn load_store_key(
    store: Option<&std::path::Path>,
    name: &str,
    pin_fd: Option<u32>,
    keys: &mut HandshakeKeys,
) -> Result<(), Error> {
    if name.starts_with("pkcs11:") {
        let dir = store_dir(store).ok();
        let (signer, known) = crate::hsm::open_uri(name, dir.as_deref(), pin_fd)?;
        add_signer("pkcs11:...", keys, signer)?;
        if let Some((store, entry)) = known {
            key_in_use(&store, &entry)?;
        }
        return Ok(());
    }
    let store = KeyStore::open(store_dir(store)?)?;
    let entry = store
        .find(name)
        .ok_or_else(|| KeyStoreError::NotFound(name.into()))?;
    entry.check_usable(now_unix())?;
    if entry.in_token() {
        let signer = crate::hsm::open_entry(&store, entry, pin_fd)?;
        add_signer(name, keys, signer)?;
        return key_in_use(&store, entry);
    }
    let passphrase = if entry.encrypted {
        Some(crate::passphrase::passphrase(false)?)
    } else {
        None
    };
    // Loading never writes; the `load` line is best effort (a read-only
    // store still serves).
    let loaded = store.load(name, passphrase.as_ref())?;
    let entry = loaded.entry();
    if matches!(entry.key_type, KeyType::Ed25519 | KeyType::P256) {
        add_signer(name, keys, loaded.signer()?)?;
        return key_in_use(&store, entry);
    }
    let twice = |kind: &str| {
        Error::from(ConfigError::Invalid(format!(
            "--key {name}: a {kind} key was already given; give one key of each type"
        )))
    };
    let taken = std::mem::take(keys);
    *keys = match entry.key_type {
        KeyType::X25519 if taken.local_static_key().is_some() => return Err(twice("x25519")),
        KeyType::X25519 => taken.static_key(loaded.static_secret()?),
        KeyType::Mlkem768 if taken.local_kem_key().is_some() => return Err(twice("mlkem768")),
        KeyType::Mlkem768 => taken.kem_key(loaded.mlkem768()?),
        other => {
            return Err(ConfigError::Invalid(format!(
                "--key {name}: a {other} key cannot be used in a handshake"
            ))
            .into())
        }
    };
    key_in_use(&store, entry)
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Io)
}

pub fn report(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("akex: error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error as the command line reports it: the library's message, plus
/// the flags that supply what it says is missing (the library itself never
/// names flags).
pub fn message(e: &Error) -> String {
    match e {
        Error::Config(ConfigError::MissingLocalKey) => {
            format!("{e} (give --identity, or --key from the key store)")
        }
        Error::Config(ConfigError::MissingRemoteKey) => {
            format!("{e} (give --remote-key, or --peer from the trust store)")
        }
        _ => e.to_string(),
    }
}
