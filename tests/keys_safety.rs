//! The key store's safety rules at the library level: audit recovery and
//! loss detection, a missing index, paths that stay inside the store,
//! passphrase checks before writes, I/O error kinds, read-only stores,
//! the key-file format read by OpenSSL, and key names. The trust store's
//! rules (forks, name-bound pins, live trust) are in
//! tests/keys_safety_trust.rs.

mod keys_support;

use akex::error::KeyStoreError;
use akex::keys::{KeyStatus, KeyStore, KeyType, Protection};
use akex::Error;
// Only the (Linux) read-only store test needs these.
#[cfg(target_os = "linux")]
use akex::keys::{now_unix, TrustPolicy, TrustStore};
#[cfg(target_os = "linux")]
use std::path::Path;

use keys_support::*;

#[test]
fn interrupted_writes_are_completed_and_a_cut_log_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let p = prot("pw");
    let mut store = KeyStore::open(dir.path()).unwrap();
    store.generate("a", KeyType::X25519, &p, None).unwrap();
    let log = dir.path().join("audit.jsonl");
    let head = dir.path().join("audit.head");
    let head_at_line_1 = std::fs::read(&head).unwrap();
    store.generate("b", KeyType::X25519, &p, None).unwrap();
    let full = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = full.lines().collect();

    // A crash after the index commit, before the append: the index carries
    // line 2, the log and the head stop at line 1.
    std::fs::write(&log, format!("{}\n", lines[0])).unwrap();
    std::fs::write(&head, head_at_line_1).unwrap();
    let report = store.audit_report().unwrap();
    assert!(report.broken.is_none(), "{:?}", report.broken);
    assert!(!report.interrupted.is_empty());
    // The next locked open completes it: line 2 exactly once.
    store.generate("c", KeyType::X25519, &p, None).unwrap();
    assert_eq!(events(&store), ["generate", "generate", "generate"]);

    // A torn last line (no newline): cut and logged as `recovered`.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"seq\":4,\"ti"))
        .unwrap();
    assert!(store.audit().verify().is_ok());
    store.revoke("a", "test").unwrap();
    assert_eq!(
        events(&store),
        ["generate", "generate", "generate", "recovered", "revoke"]
    );

    // Deleting the log (and its head) is detected: the index committed a
    // line the log lacks. Loading and revoking still work; adding keys not.
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(&head).unwrap();
    let report = store.audit_report().unwrap();
    let broken = report.broken.expect("a deleted log is reported");
    assert!(
        broken
            .to_string()
            .contains("removed or the log was deleted"),
        "{broken}"
    );
    store.load("b", p.passphrase_ref()).unwrap();
    store.revoke("b", "log gone").unwrap();
    assert!(store.generate("d", KeyType::X25519, &p, None).is_err());
    assert!(store.find("d").is_none());
}

#[test]
fn a_missing_index_is_an_error_never_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let p = prot("pw");
    let mut store = KeyStore::open(dir.path()).unwrap();
    store.generate("a", KeyType::X25519, &p, None).unwrap();
    std::fs::remove_file(dir.path().join("store.json")).unwrap();
    let before = snapshot(dir.path());
    let err = store_err(KeyStore::open(dir.path()).unwrap_err());
    assert!(err.to_string().contains("index is missing"), "{err}");
    assert!(store.generate("b", KeyType::X25519, &p, None).is_err());
    assert_eq!(snapshot(dir.path()), before);
}

#[cfg(unix)]
#[test]
fn destroy_never_leaves_the_store_and_checks_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let p = Protection::InsecurePlaintext;
    let mut store = KeyStore::open(&root).unwrap();
    let a = store.generate("a", KeyType::X25519, &p, None).unwrap();
    let b = store.generate("b", KeyType::X25519, &p, None).unwrap();
    // An index whose id is a path is refused outright.
    let index = root.join("store.json");
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, text.replace(&a.id, "../../victim.txt")).unwrap();
    assert!(KeyStore::open(&root).is_err());
    std::fs::write(&index, &text).unwrap();
    // A key file replaced by a link to a file outside: not followed.
    let key = root.join(a.file());
    std::fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink(&victim, &key).unwrap();
    let mut store = KeyStore::open(&root).unwrap();
    assert!(store.destroy("a", None).is_err());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    // A key file that differs from the recorded hash is not overwritten.
    let key_b = root.join(b.file());
    std::fs::write(&key_b, b"not the key").unwrap();
    let err = store.destroy("b", None).unwrap_err().to_string();
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(std::fs::read(&key_b).unwrap(), b"not the key");
    assert_eq!(store.find("b").unwrap().status, KeyStatus::Active);
}

#[test]
fn a_wrong_passphrase_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    store
        .generate("a", KeyType::X25519, &prot("right"), None)
        .unwrap();
    let before = snapshot(dir.path());
    let wrong = prot("wrong");
    for result in [
        store.generate("b", KeyType::X25519, &wrong, None).map(drop),
        store.rotate("a", &wrong, 10).map(drop),
        store.destroy("a", Some(&pass("wrong"))).map(drop),
        store.destroy("a", None).map(drop),
    ] {
        let err = store_err(result.unwrap_err());
        assert!(
            matches!(
                err,
                KeyStoreError::WrongPassphrase(_) | KeyStoreError::NoPassphrase(_)
            ),
            "{err}"
        );
    }
    assert_eq!(snapshot(dir.path()), before);
    store
        .generate("b", KeyType::X25519, &prot("right"), None)
        .unwrap();
}

#[test]
fn io_errors_keep_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let p = Protection::InsecurePlaintext;
    let mut store = KeyStore::open(dir.path()).unwrap();
    let a = store.generate("a", KeyType::X25519, &p, None).unwrap();
    std::fs::remove_file(dir.path().join(a.file())).unwrap();
    let err = store_err(store.load("a", None).unwrap_err());
    assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
    assert!(std::error::Error::source(&err).is_some());
    let io = Error::from(err).into_io();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

/// Mounts `src` read-only at a new directory (root only); `None` with the
/// reason when that is impossible here.
#[cfg(target_os = "linux")]
fn read_only_view(src: &Path, at: &Path) -> Result<(), String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    let run = |args: &[&str]| {
        std::process::Command::new("mount")
            .args(args)
            .output()
            .map_err(|e| e.to_string())
            .and_then(|o| {
                if o.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&o.stderr).into_owned())
                }
            })
    };
    run(&["--bind", src.to_str().unwrap(), at.to_str().unwrap()])?;
    if let Err(e) = run(&["-o", "remount,bind,ro", at.to_str().unwrap()]) {
        let _ = std::process::Command::new("umount").arg(at).status();
        return Err(e);
    }
    Ok(())
}

#[cfg(target_os = "linux")]
#[test]
fn keys_load_from_a_read_only_store() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("store");
    let p = prot("pw");
    let mut store = KeyStore::open(&src).unwrap();
    store.generate("k", KeyType::X25519, &p, None).unwrap();
    let mut trust = TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
    trust
        .pin("peer", KeyType::X25519, &[4u8; 32], None, None)
        .unwrap();
    let before = snapshot(&src);
    let ro = dir.path().join("ro");
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let view = if is_root {
        match read_only_view(&src, &ro) {
            Ok(()) => ro.clone(),
            Err(reason) => {
                println!("SKIPPED: running as root and a read-only bind mount failed: {reason}");
                return;
            }
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        for d in [&src, &src.join("keys")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o500)).unwrap();
        }
        src.clone()
    };
    let result = std::panic::catch_unwind(|| {
        let store = KeyStore::open(&view).unwrap();
        let key = store.load("k", p.passphrase_ref()).unwrap();
        assert_eq!(key.entry().name, "k");
        // Recording the load is optional and fails cleanly here.
        assert!(store.record_load(key.entry()).is_err());
        let trust = TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
        let mut policy = TrustPolicy::Pinned(trust);
        policy.check(&[4u8; 32], now_unix()).unwrap();
        store.audit().verify().unwrap();
    });
    if is_root {
        let _ = std::process::Command::new("umount").arg(&ro).status();
    } else {
        use std::os::unix::fs::PermissionsExt;
        for d in [&src, &src.join("keys")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
    }
    result.unwrap();
    assert_eq!(snapshot(&src), before);
}

/// OpenSSL reads the encrypted PKCS#8 files the store writes and finds
/// the same public key.
#[test]
fn openssl_reads_the_key_files() {
    let Ok(version) = std::process::Command::new("openssl")
        .arg("version")
        .output()
    else {
        println!("SKIPPED: openssl is not installed");
        return;
    };
    println!("using {}", String::from_utf8_lossy(&version.stdout).trim());
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    let p = Protection::Passphrase {
        passphrase: pass("open sesame"),
        log_n: 10,
    };
    for (name, ty) in [
        ("x", KeyType::X25519),
        ("e", KeyType::Ed25519),
        ("m", KeyType::Mlkem768),
    ] {
        let entry = store.generate(name, ty, &p, None).unwrap();
        let out = std::process::Command::new("openssl")
            .args([
                "pkey",
                "-pubout",
                "-outform",
                "DER",
                "-passin",
                "pass:open sesame",
                "-in",
            ])
            .arg(dir.path().join(entry.file()))
            .output()
            .unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(ty, KeyType::Mlkem768, "openssl failed on {ty}: {err}");
            println!(
                "SKIPPED for {ty}: this openssl does not know ML-KEM ({})",
                err.lines().next().unwrap_or("")
            );
            continue;
        }
        // The SubjectPublicKeyInfo ends with the raw public key.
        if ty == KeyType::Mlkem768 && out.stdout.ends_with(&b64d(&entry.signing_public)) {
            // OpenSSL before 3.5 skips the ML-KEM block it does not know
            // and reads the companion Ed25519 block.
            println!(
                "SKIPPED for mlkem768: this openssl does not know ML-KEM; it read the \
                 companion Ed25519 block of the same file, with the same public key"
            );
            continue;
        }
        assert!(out.stdout.ends_with(&entry.public_bytes()), "{ty}");
        println!("openssl decrypted the {ty} key file and printed the same public key");
    }
}

/// Key names that could be mistaken for paths or key ids are refused with
/// an error about the name, and nothing is written.
#[test]
fn names_that_read_as_paths_or_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KeyStore::open(dir.path()).unwrap();
    for bad in [
        "",
        " ",
        " a",
        ".",
        "..",
        "../evil",
        "/etc/passwd",
        "a\\b",
        "0123456789abcdef0123456789abcdef",
    ] {
        let err = store
            .generate(bad, KeyType::X25519, &Protection::InsecurePlaintext, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("key name"), "{bad:?}: {err}");
    }
    assert!(store.entries().is_empty());
    store
        .generate(
            "web-1.example",
            KeyType::X25519,
            &Protection::InsecurePlaintext,
            None,
        )
        .unwrap();
}
