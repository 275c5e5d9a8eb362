//! Fuzz target `keystore_parsers`: arbitrary bytes through the key-store,
//! trust-store, audit-log and rotation-announcement parsers.

use super::{Progress, Seed};

/// Fuzz target `keystore_parsers`: the selector byte (modulo 4) picks a
/// parser and the rest is its input: 0, a key-store index (`store.json`,
/// through `KeyStore::open`); 1, a trust-store file (`TrustStore::open`);
/// 2, an audit log (`AuditLog::verify`); 3, a rotation announcement's
/// payload (`decode_rotation_announcement`, then `verify` on each statement). The file
/// parsers get the bytes in a fresh temporary directory. Errors are fine,
/// panics are not; `finished` says the input parsed.
pub fn keystore_parsers(data: &[u8]) -> Progress {
    use akex::keys::{audit::AuditLog, rotation, store::KeyStore, trust::TrustStore};

    let mut progress = Progress::default();
    let Some((&selector, rest)) = data.split_first() else {
        return progress;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, rest).expect("write the input");
        path
    };
    progress.answered = true;
    progress.finished = match selector % 4 {
        0 => {
            write("store.json");
            KeyStore::open(dir.path()).is_ok()
        }
        1 => TrustStore::open(write("trust.json")).is_ok(),
        2 => AuditLog::new(write("audit.log")).verify().is_ok(),
        _ => match rotation::decode_rotation_announcement(rest) {
            Ok(chain) => {
                for statement in &chain {
                    let _ = statement.verify();
                }
                true
            }
            _ => false,
        },
    };
    progress
}

/// Seeds for `keystore_parsers`: empty and near-empty documents for each
/// parser (they exercise the JSON paths without needing real keys).
pub fn keystore_parsers_seeds() -> Vec<Seed> {
    let seed = |name, selector: u8, body: &[u8]| {
        let mut data = vec![selector];
        data.extend_from_slice(body);
        Seed {
            name,
            data,
            expect: Progress {
                answered: true,
                finished: false,
                records: 0,
            },
        }
    };
    vec![
        seed("store-not-json", 0, b"{\"version\":"),
        seed("trust-not-json", 1, b"[1,2"),
        seed("audit-garbage", 2, b"not a record\n"),
        seed("rotation-not-a-list", 3, b"{}"),
    ]
}
