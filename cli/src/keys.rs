//! `akex keys`: the key store, trust store and audit log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use akex::error::{ConfigError, KeyStoreError};
use akex::keys::{
    now_unix, read_regular_file, KeyEntry, KeyStatus, KeyStore, KeyType, Pin, RotationStatement,
    TrustStore, MAX_KEY_FILE_LEN,
};
use akex::Error;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::common::store_dir;
use crate::passphrase::protection;

#[derive(Args, Debug)]
pub struct KeysArgs {
    /// The key store directory (default $XDG_DATA_HOME/akex, else
    /// ~/.local/share/akex).
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Read the passphrase from this open file descriptor (its first line)
    /// when AKEX_PASSPHRASE is unset (unix); never give it as an argument.
    #[arg(long = "passphrase-fd", value_name = "FD", global = true)]
    passphrase_fd: Option<u32>,
    /// Read a PKCS#11 token's PIN from this open file descriptor (its
    /// first line) when AKEX_PKCS11_PIN is unset (unix); never give it as
    /// an argument.
    #[arg(long = "pin-fd", value_name = "FD", global = true)]
    pin_fd: Option<u32>,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// List identities, pinned peers and revocations.
    List,
    /// Generate a new identity.
    Generate {
        /// The identity's name, which `--key` and `keys show` take: 1-128
        /// printable characters, no leading or trailing spaces, no '/' or
        /// '\', not "." or "..", not 32 hex digits (those read as a key id).
        #[arg(long)]
        name: String,
        /// x25519 (Noise static), ed25519 (signing), p256 (ECDSA signing,
        /// the FIPS-algorithm SIGMA suite) or mlkem768.
        #[arg(long = "type", default_value = "x25519")]
        key_type: String,
        /// Expire the key this many seconds from now.
        #[arg(long)]
        expires_in: Option<u64>,
        /// Store the private key unencrypted (protected only by mode 0600).
        #[arg(long, conflicts_with = "pkcs11")]
        insecure_plaintext: bool,
        /// Generate the key inside a PKCS#11 token instead (ed25519 or
        /// p256; needs --features pkcs11), e.g.
        /// 'pkcs11:token=akex;object=server-sig?module-path=/usr/lib/softhsm/libsofthsm2.so'.
        /// The store records its public key and URI; the PIN comes from
        /// AKEX_PKCS11_PIN, --pin-fd or a prompt.
        #[arg(long, value_name = "URI")]
        pkcs11: Option<String>,
    },
    /// Show an identity's public record (feed `--json` output to `keys trust --from`).
    Show {
        /// Name (the current key) or key id.
        #[arg(long)]
        name: String,
    },
    /// Replace an identity by a new one with a statement signed by both.
    Rotate {
        /// The identity to rotate (its current key).
        #[arg(long)]
        name: String,
        /// Seconds the old key stays valid after the rotation.
        #[arg(long, default_value_t = 7 * 24 * 3600)]
        overlap: u64,
        /// Store the new private key unencrypted.
        #[arg(long)]
        insecure_plaintext: bool,
    },
    /// Revoke every key of ours held under a name (all its rotations) and
    /// every key ever pinned under that name.
    Revoke {
        /// Name (every key of ours and every pin under it) or key id.
        #[arg(long)]
        name: String,
        /// Why, for the audit log and the revocation record.
        #[arg(long)]
        reason: String,
        /// Also revoke in this trust file (repeatable): every key pinned
        /// there under the name. The store's trust.json always gets every
        /// revocation, and `serve`/`connect --trust-store` check it too.
        #[arg(long = "trust-store", value_name = "FILE")]
        trust_stores: Vec<PathBuf>,
    },
    /// Overwrite and remove an identity's private key file (an encrypted
    /// key's passphrase is checked first).
    Destroy {
        /// Name (the current key) or key id.
        #[arg(long)]
        name: String,
    },
    /// Pin a peer's key, or accept a rotation statement.
    Trust {
        /// The peer's name (not needed with --statement).
        #[arg(long, required_unless_present = "statement")]
        name: Option<String>,
        /// The peer's public key, base64.
        #[arg(long, conflicts_with_all = ["from", "statement"])]
        public: Option<String>,
        /// The peer's signing key, base64 (needed to accept its rotations).
        #[arg(long, requires = "public")]
        signing_public: Option<String>,
        /// The key type with --public.
        #[arg(long = "type", default_value = "x25519")]
        key_type: String,
        /// A file with the JSON from `akex keys show --json`.
        #[arg(long, conflicts_with = "statement")]
        from: Option<PathBuf>,
        /// A rotation statement from `akex keys rotate`.
        #[arg(long)]
        statement: Option<PathBuf>,
        /// Stop trusting the pin this many seconds from now.
        #[arg(long)]
        expires_in: Option<u64>,
        /// Pin in this trust file (the one `serve`/`connect --trust-store`
        /// read) instead of the store's trust.json; audited by the store.
        #[arg(long)]
        trust_store: Option<PathBuf>,
    },
    /// Remove every pin with this name.
    Untrust {
        /// The peer's name.
        #[arg(long)]
        name: String,
        /// Unpin in this trust file instead of the store's trust.json.
        #[arg(long)]
        trust_store: Option<PathBuf>,
    },
    /// Print the audit log; with --verify, check its hash chain.
    Audit {
        /// Only check the hash chain (and the head and commits that hold
        /// its lines) and print a one-line verdict.
        #[arg(long)]
        verify: bool,
    },
}

pub fn main(args: KeysArgs) -> ExitCode {
    let json = args.json;
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                println!(
                    "{}",
                    json!({ "ok": false, "error": e.to_string(), "kind": e.kind() })
                );
            }
            eprintln!("akex keys: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn entry_json(e: &KeyEntry) -> serde_json::Value {
    json!({
        "pkcs11": e.pkcs11,
        "id": e.id,
        "name": e.name,
        "type": e.key_type,
        "public": e.public,
        "signing_public": e.signing_public,
        "created": e.created,
        "expires": e.expires,
        "status": e.status,
        "retire_at": e.retire_at,
        "replaced_by": e.replaced_by,
        "replaces": e.replaces,
        "revoked_reason": e.revoked_reason,
        "encrypted": e.encrypted,
    })
}

fn entry_line(e: &KeyEntry) -> String {
    format!(
        "{}  {:<20} {:<8} {:<9} {}  public={}",
        e.id,
        e.name,
        e.key_type.to_string(),
        e.status.to_string(),
        match (e.in_token(), e.encrypted) {
            (true, _) => "pkcs11",
            (false, true) => "encrypted",
            (false, false) => "PLAINTEXT",
        },
        e.public.get(..44).unwrap_or(&e.public),
    )
}

fn pin_line(p: &Pin) -> String {
    format!(
        "pin {}  {:<20} {:<8} added={}{}{}",
        p.id,
        p.name,
        p.key_type.to_string(),
        p.added,
        p.valid_until
            .map(|t| format!(" valid_until={t}"))
            .unwrap_or_default(),
        if p.tofu { " (tofu)" } else { "" },
    )
}

fn emit(json: bool, value: serde_json::Value, text: String) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

fn open_trust(store: &KeyStore) -> Result<TrustStore, Error> {
    open_trust_at(store, None)
}

/// The store's trust.json, or `file` (a `--trust-store` file), audited by
/// the store's log either way.
fn open_trust_at(store: &KeyStore, file: Option<&Path>) -> Result<TrustStore, Error> {
    let path = file.map_or_else(|| store.trust_path(), Path::to_path_buf);
    TrustStore::open_audited(path, store.audit().clone())
}

/// For changes that only remove trust: no integrity check, which must
/// never block a revocation; an edited file is still reported.
fn open_trust_for_revocation(store: &KeyStore, file: Option<&Path>) -> Result<TrustStore, Error> {
    let path = file.map_or_else(|| store.trust_path(), Path::to_path_buf);
    let trust = TrustStore::open_for_revocation(path, store.audit().clone())?;
    if let Err(e) = open_trust_at(store, file) {
        eprintln!(
            "akex keys: WARNING: {e}; the change goes ahead (revocations are never blocked), \
             its audit line records this, and the pins in the file stay: review them"
        );
    }
    Ok(trust)
}

/// Reads a small JSON file (`--from`, `--statement`): a regular file of at
/// most 64 KiB.
fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, Error> {
    let bytes = read_regular_file(path, MAX_KEY_FILE_LEN).map_err(|source| KeyStoreError::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        KeyStoreError::Corrupt {
            path: path.display().to_string(),
            reason: format!("invalid JSON at line {} column {}", e.line(), e.column()),
        }
        .into()
    })
}

fn decode(what: &str, text: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| ConfigError::Invalid(format!("{what} is not base64")).into())
}

fn run(args: KeysArgs) -> Result<(), Error> {
    crate::passphrase::set_passphrase_fd(args.passphrase_fd);
    let mut store = KeyStore::open(store_dir(args.store.as_deref())?)?;
    let json = args.json;
    let pin_fd = args.pin_fd;
    if let Some(damage) = store.index_damage() {
        eprintln!(
            "akex keys: WARNING: {}: {damage}; its keys are not loaded, revoke and destroy \
             still work (and put back what the audit log records), other changes are refused",
            store.dir().join("store.json").display()
        );
    }
    if !matches!(args.command, KeysCommand::Audit { .. }) {
        // Loud, but never in the way of the command (revoke must work).
        let (damage, restorable) = match store.audit_report() {
            Ok(report) => (report.broken.map(|b| b.to_string()), report.restorable),
            Err(e) => (Some(e.to_string()), false),
        };
        match damage {
            Some(damage) if restorable => eprintln!(
                "akex keys: WARNING: the audit log is damaged ({damage}); a commit still \
                 holds the line: the next change puts it back and logs that it was removed"
            ),
            Some(damage) => eprintln!(
                "akex keys: WARNING: the audit log is damaged ({damage}); \
                 revoke, untrust and destroy still work, other changes are refused"
            ),
            None => {}
        }
    }
    match args.command {
        KeysCommand::List => {
            let trust = open_trust(&store)?;
            let value = json!({
                "keys": store.entries().iter().map(entry_json).collect::<Vec<_>>(),
                "pins": trust.pins(),
                "revocations": trust.revocations(),
            });
            let mut text: Vec<String> = store.entries().iter().map(entry_line).collect();
            text.extend(trust.pins().iter().map(pin_line));
            text.extend(
                trust
                    .revocations()
                    .iter()
                    .map(|r| format!("revoked {} at {}: {}", r.key_id, r.time, r.reason)),
            );
            emit(json, value, text.join("\n"));
        }
        KeysCommand::Generate {
            name,
            key_type,
            expires_in,
            insecure_plaintext,
            pkcs11,
        } => {
            let key_type: KeyType = key_type.parse()?;
            let expires = expires_in.map(|s| now_unix().saturating_add(s));
            let entry = match pkcs11 {
                Some(uri) => {
                    crate::hsm::generate(&mut store, &name, key_type, &uri, expires, pin_fd)?
                }
                None => {
                    let protection = protection(insecure_plaintext, true)?;
                    store.generate(&name, key_type, &protection, expires)?
                }
            };
            emit(json, entry_json(&entry), entry_line(&entry));
        }
        KeysCommand::Show { name } => {
            let entry = store
                .find(&name)
                .or_else(|| store.find_id(&name))
                .ok_or_else(|| KeyStoreError::NotFound(name.clone()))?;
            let mut text = format!(
                "id: {}\nname: {}\ntype: {}\nstatus: {}\npublic: {}\nsigning_public: {}\ncreated: {}\nexpires: {}\nencrypted: {}",
                entry.id,
                entry.name,
                entry.key_type,
                entry.status,
                entry.public,
                entry.signing_public,
                entry.created,
                entry.expires.map(|t| t.to_string()).unwrap_or_else(|| "never".into()),
                entry.encrypted
            );
            if let Some(uri) = &entry.pkcs11 {
                text.push_str(&format!("\npkcs11: {uri}"));
            }
            emit(json, entry_json(entry), text);
        }
        KeysCommand::Rotate {
            name,
            overlap,
            insecure_plaintext,
        } => {
            let old = store
                .find(&name)
                .cloned()
                .ok_or_else(|| KeyStoreError::NotFound(name.clone()))?;
            let (entry, statement) = if old.in_token() {
                crate::hsm::rotate(&mut store, &old, overlap, pin_fd)?
            } else {
                // The old key's passphrase also protects the new key.
                let protection = protection(insecure_plaintext && !old.encrypted, false)?;
                store.rotate(&name, &protection, overlap)?
            };
            let path = store
                .dir()
                .join("rotations")
                .join(format!("{}.json", statement.old_id));
            emit(
                json,
                json!({ "new": entry_json(&entry), "statement": statement, "statement_file": path }),
                format!(
                    "{}\nrotated {} -> {} (old key valid until {}); statement: {}",
                    entry_line(&entry),
                    statement.old_id,
                    statement.new_id,
                    statement.overlap_until,
                    path.display()
                ),
            );
        }
        KeysCommand::Revoke {
            name,
            reason,
            trust_stores,
        } => {
            let now = now_unix();
            // Our keys under the name (every rotation) first, then the
            // trust store: every key ever pinned or held under it.
            let own: Vec<String> = if store.find(&name).or_else(|| store.find_id(&name)).is_some() {
                store
                    .revoke(&name, &reason)?
                    .into_iter()
                    .map(|e| e.id)
                    .collect()
            } else {
                Vec::new()
            };
            // Keys pinned under the name in the other trust files, revoked
            // there and then in trust.json with the rest.
            let mut all = own.clone();
            for file in &trust_stores {
                let mut other = open_trust_for_revocation(&store, Some(file))?;
                match other.revoke_name(&name, &own, &reason, now) {
                    Ok(ids) => {
                        for id in ids {
                            if !all.contains(&id) {
                                all.push(id);
                            }
                        }
                    }
                    Err(Error::KeyStore(KeyStoreError::NotFound(_))) => {}
                    Err(e) => return Err(e),
                }
            }
            let mut trust = open_trust_for_revocation(&store, None)?;
            let ids = trust.revoke_name(&name, &all, &reason, now)?;
            emit(
                json,
                json!({ "ok": true, "revoked": ids, "reason": reason }),
                format!("revoked {}", ids.join(", ")),
            );
        }
        KeysCommand::Destroy { name } => {
            let in_token = store
                .find(&name)
                .or_else(|| store.find_id(&name))
                .filter(|e| e.in_token())
                .cloned();
            if let Some(entry) = in_token {
                let done = crate::hsm::destroy(&mut store, &name, &entry, pin_fd)?;
                emit(
                    json,
                    entry_json(&done),
                    format!("destroyed {} ({}) in its token", done.id, done.name),
                );
                return Ok(());
            }
            let encrypted = store
                .find(&name)
                .or_else(|| store.find_id(&name))
                .is_some_and(|e| e.encrypted && e.status != KeyStatus::Destroyed);
            let passphrase = if encrypted {
                Some(crate::passphrase::passphrase(false)?)
            } else {
                None
            };
            let entry = store.destroy(&name, passphrase.as_ref())?;
            emit(
                json,
                entry_json(&entry),
                format!("destroyed {} ({})", entry.id, entry.name),
            );
        }
        KeysCommand::Trust {
            name,
            public,
            signing_public,
            key_type,
            from,
            statement,
            expires_in,
            trust_store,
        } => {
            let mut trust = open_trust_at(&store, trust_store.as_deref())?;
            let pin = if let Some(path) = statement {
                let statement: RotationStatement = read_json(&path)?;
                trust.accept_rotation(&statement, now_unix())?
            } else {
                let name = name.unwrap_or_default();
                let expires = expires_in.map(|s| now_unix().saturating_add(s));
                let (key_type, public, signing) = match (public, from) {
                    (Some(public), _) => (key_type, public, signing_public),
                    (None, Some(path)) => {
                        let v: serde_json::Value = read_json(&path)?;
                        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
                        (
                            field("type").unwrap_or(key_type),
                            field("public").ok_or_else(|| {
                                ConfigError::Invalid(format!(
                                    "{} has no \"public\"",
                                    path.display()
                                ))
                            })?,
                            field("signing_public"),
                        )
                    }
                    (None, None) => {
                        return Err(ConfigError::Invalid(
                            "give --public, --from or --statement".into(),
                        )
                        .into())
                    }
                };
                let key_type: KeyType = key_type.parse()?;
                let public = decode("--public", &public)?;
                let signing = signing
                    .map(|s| decode("--signing-public", &s))
                    .transpose()?;
                let scheme = key_type.signature_scheme();
                if key_type == KeyType::P256 && !scheme.is_valid_public_key(&public) {
                    return Err(ConfigError::InvalidKey(
                        "a p256 public key is 65 bytes, an uncompressed point on the curve",
                    )
                    .into());
                }
                if !matches!(key_type, KeyType::Mlkem768 | KeyType::P256) && public.len() != 32 {
                    return Err(ConfigError::InvalidKey("public key must be 32 bytes").into());
                }
                if signing
                    .as_ref()
                    .is_some_and(|s| s.len() != scheme.public_key_len())
                {
                    return Err(ConfigError::InvalidKey(
                        "the signing key does not have the length of the type's scheme",
                    )
                    .into());
                }
                trust.pin(&name, key_type, &public, signing.as_deref(), expires)?
            };
            emit(
                json,
                serde_json::to_value(&pin).unwrap_or_default(),
                pin_line(&pin),
            );
        }
        KeysCommand::Untrust { name, trust_store } => {
            let mut trust = open_trust_for_revocation(&store, trust_store.as_deref())?;
            let n = trust.unpin(&name)?;
            emit(
                json,
                json!({ "ok": true, "removed": n }),
                format!("removed {n} pin(s) named {name}"),
            );
        }
        KeysCommand::Audit { verify } => {
            let report = store.audit_report()?;
            for note in &report.interrupted {
                eprintln!(
                    "akex keys: note: interrupted write, completed by the next change: {note}"
                );
            }
            if let Some(broken) = report.broken {
                if report.restorable {
                    eprintln!(
                        "akex keys: note: a commit still holds the removed line(s): the next \
                         change puts them back and logs that they had been removed"
                    );
                }
                return Err(broken.into());
            }
            if let Some(damage) = store.index_damage() {
                return Err(akex::error::KeyStoreError::Corrupt {
                    path: store.dir().join("store.json").display().to_string(),
                    reason: damage.to_string(),
                }
                .into());
            }
            let records = report.records;
            if verify {
                emit(
                    json,
                    json!({ "ok": true, "lines": records.len() }),
                    format!("audit log ok: {} line(s), chain intact", records.len()),
                );
            } else if json {
                for r in &records {
                    println!("{}", serde_json::to_string(r).unwrap_or_default());
                }
            } else {
                for r in &records {
                    println!(
                        "{:>5} {} {:<8} {} {} {}",
                        r.seq,
                        r.time,
                        r.event.event,
                        r.event.key_id.as_deref().unwrap_or("-"),
                        r.event.name.as_deref().unwrap_or("-"),
                        r.event.detail.as_deref().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(())
}
