//! The key store's safety rules at the library level: rotation without
//! forks, name-bound pins, live trust, audit recovery and loss detection,
//! paths that stay inside the store, passphrase checks before writes,
//! read-only stores, and the key-file format read by OpenSSL.

use std::path::Path;
use std::time::Instant;

use akex::error::{KeyStoreError, TrustFailure};
use akex::keys::{
    key_id, now_unix, KeyStatus, KeyStore, KeyType, Passphrase, Protection, TrustPolicy, TrustStore,
};
use akex::Error;

fn pass(p: &str) -> Passphrase {
    Passphrase::new(p.into())
}

fn prot(p: &str) -> Protection {
    Protection::Passphrase {
        passphrase: pass(p),
        log_n: 2,
    }
}

fn store_err(e: Error) -> KeyStoreError {
    match e {
        Error::KeyStore(k) => k,
        other => panic!("expected a key store error, got {other:?}"),
    }
}

fn trust_err(e: Error) -> TrustFailure {
    match e {
        Error::PeerNotTrusted(t) => t,
        other => panic!("expected a trust failure, got {other:?}"),
    }
}

fn b64d(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn events(store: &KeyStore) -> Vec<String> {
    store
        .audit()
        .verify()
        .unwrap()
        .into_iter()
        .map(|r| r.event.event)
        .collect()
}

/// Every file under `dir` with its contents, to prove nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with("store.lock") {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_rotated_key_cannot_fork_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let p = prot("pw");
    let mut server = KeyStore::open(dir.path().join("srv")).unwrap();
    let a = server.generate("srv", KeyType::X25519, &p, None).unwrap();
    let client = KeyStore::open(dir.path().join("cli")).unwrap();
    let mut trust = TrustStore::open_audited(client.trust_path(), client.audit().clone()).unwrap();
    let now = now_unix();
    trust
        .pin(
            "server",
            KeyType::X25519,
            &a.public_bytes(),
            Some(&b64d(&a.signing_public)),
            Some(now + 10_000),
        )
        .unwrap();
    let (b, a_to_b) = server.rotate("srv", &p, 3600).unwrap();
    // The store never rotates A again: it is retired and names B.
    let retired = server.find_id(&a.id).unwrap();
    assert_eq!(retired.status, KeyStatus::Retired);
    assert_eq!(retired.replaced_by.as_deref(), Some(b.id.as_str()));
    let pin_b = trust.accept_rotation(&a_to_b, now).unwrap();
    // The successor keeps the old pin's terms.
    assert_eq!(pin_b.expires, Some(now + 10_000));

    // A second statement A -> X signed with the (leaked) A: build it from a
    // copy of the server store taken before the rotation.
    let fork_dir = tempfile::tempdir().unwrap();
    let mut fork = KeyStore::open(fork_dir.path()).unwrap();
    let x = fork.generate("srv", KeyType::X25519, &p, None).unwrap();
    let mut a_to_x = a_to_b.clone();
    a_to_x.new_id = x.id.clone();
    a_to_x.new_public = x.public.clone();
    a_to_x.new_signing_public = x.signing_public.clone();
    let message = a_to_x.signed_message().unwrap();
    // A retired key still loads during its overlap window.
    let a_key = server.load(&a.id, p.passphrase_ref()).unwrap();
    a_to_x.old_signature = b64(&a_key.sign(&message));
    a_to_x.new_signature = b64(&fork.load("srv", p.passphrase_ref()).unwrap().sign(&message));
    a_to_x.verify().unwrap();
    let err = store_err(trust.accept_rotation(&a_to_x, now).unwrap_err());
    match err {
        KeyStoreError::Equivocation {
            old_id,
            accepted,
            offered,
        } => {
            assert_eq!(
                (old_id, accepted, offered),
                (a.id.clone(), b.id.clone(), x.id.clone())
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(events(&client).contains(&"equivocation".to_string()));
    // The announcement path refuses it too, and X is never pinned.
    assert!(trust
        .accept_rotation_chain(
            std::slice::from_ref(&a_to_x),
            &x.public_bytes(),
            Some("server"),
            now
        )
        .is_err());
    assert!(trust.pins().iter().all(|p| p.id != x.id));
    let mut policy = TrustPolicy::Pinned(trust);
    assert!(policy.check(&x.public_bytes(), now).is_err());
    policy.check(&b.public_bytes(), now).unwrap();
    // B's pin ends with A's.
    assert!(policy.check(&b.public_bytes(), now + 10_000).is_err());
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn pins_belong_to_names_and_revoking_a_name_covers_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = prot("pw");
    let mut server = KeyStore::open(dir.path().join("srv")).unwrap();
    let a = server.generate("srv", KeyType::X25519, &p, None).unwrap();
    let other = server.generate("other", KeyType::X25519, &p, None).unwrap();
    let path = dir.path().join("trust.json");
    let mut trust = TrustStore::open(&path).unwrap();
    for (name, e) in [("server", &a), ("other", &other)] {
        trust
            .pin(
                name,
                KeyType::X25519,
                &e.public_bytes(),
                Some(&b64d(&e.signing_public)),
                None,
            )
            .unwrap();
    }
    let now = now_unix();
    let mut policy = TrustPolicy::Pinned(TrustStore::open(&path).unwrap());
    // "other" cannot pass for "server".
    assert!(matches!(
        trust_err(
            policy
                .check_peer(&other.public_bytes(), Some("server"), now)
                .unwrap_err()
        ),
        TrustFailure::WrongPeer { .. }
    ));
    policy
        .check_peer(&a.public_bytes(), Some("server"), now)
        .unwrap();
    // A rotation of "server" announced to a connection expecting "other"
    // moves nothing.
    let (b, chain) = server.rotate("srv", &p, 600).unwrap();
    assert!(trust
        .accept_rotation_chain(
            std::slice::from_ref(&chain),
            &b.public_bytes(),
            Some("other"),
            now
        )
        .is_err());
    trust
        .accept_rotation_chain(&[chain], &b.public_bytes(), Some("server"), now)
        .unwrap();
    // Revoking the name covers A (rotated away) and B.
    let ids = trust.revoke_name("server", &[], "stolen", now).unwrap();
    assert!(ids.contains(&a.id) && ids.contains(&b.id), "{ids:?}");
    for key in [&a, &b] {
        assert!(matches!(
            trust_err(policy.check(&key.public_bytes(), now).unwrap_err()),
            TrustFailure::Revoked { .. }
        ));
    }
    policy.check(&other.public_bytes(), now).unwrap();
    // A pin removed with unpin is still covered by a later revocation.
    trust.unpin("other").unwrap();
    let ids = trust.revoke_name("other", &[], "gone", now).unwrap();
    assert_eq!(ids, std::slice::from_ref(&other.id));
    // The store side: revoking a name revokes every rotation of it.
    let revoked = server.revoke("srv", "stolen").unwrap();
    assert_eq!(revoked.len(), 2);
    assert!(server
        .entries()
        .iter()
        .filter(|e| e.name == "srv")
        .all(|e| e.status == KeyStatus::Revoked));
}

#[test]
fn revocations_reach_a_running_policy_and_survive_tofu_pins() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let audited = || TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
    let (k1, k2) = ([1u8; 32], [2u8; 32]);
    let now = now_unix();
    // A long-running TOFU server pins k1.
    let mut server = TrustPolicy::Tofu(audited());
    server.check(&k1, now).unwrap();
    // Another process revokes it: refused on the very next check.
    let mut other =
        TrustStore::open_for_revocation(store.trust_path(), store.audit().clone()).unwrap();
    other
        .revoke_name(&format!("tofu-{}", &key_id(&k1)[..16]), &[], "stolen", now)
        .unwrap();
    assert!(matches!(
        trust_err(server.check(&k1, now).unwrap_err()),
        TrustFailure::Revoked { .. }
    ));
    // The server pins someone else: the revocation stays on disk.
    server.check(&k2, now).unwrap();
    let reread = audited();
    assert!(reread.revocation(&key_id(&k1)).is_some());
    assert!(reread.pins().iter().any(|p| p.id == key_id(&k2)));
    // A stale copy opened before the revocation does not erase it either.
    let mut stale = TrustPolicy::Tofu(audited());
    stale.check(&[3u8; 32], now).unwrap();
    assert!(audited().revocation(&key_id(&k1)).is_some());
    // And after a restart (a fresh policy) k1 is still refused.
    let mut restarted = TrustPolicy::Pinned(audited());
    assert!(restarted.check(&k1, now).is_err());
    store.audit().verify().unwrap();
}

/// The per-handshake cost of the live check: one `stat` when the file did
/// not change. Prints the figure docs/benchmarks.md quotes.
#[test]
fn live_trust_check_cost() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let mut trust = TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
    for i in 0..100u8 {
        trust
            .pin(&format!("p{i}"), KeyType::X25519, &[i; 32], None, None)
            .unwrap();
    }
    let mut policy = TrustPolicy::Pinned(trust);
    let now = now_unix();
    let n = 20_000;
    let start = Instant::now();
    for _ in 0..n {
        policy.check(&[7u8; 32], now).unwrap();
    }
    let unchanged = start.elapsed() / n;
    let mut writer =
        TrustStore::open_for_revocation(store.trust_path(), store.audit().clone()).unwrap();
    let rounds = 50;
    let mut reread = std::time::Duration::ZERO;
    for i in 0..rounds {
        writer.revoke(&format!("{i:032x}"), "x", now).unwrap();
        let start = Instant::now();
        policy.check(&[7u8; 32], now).unwrap();
        reread += start.elapsed();
    }
    println!(
        "live trust check: {unchanged:?} per handshake with an unchanged trust store of 100 pins \
         ({n} checks); {:?} when the file changed (re-read and checked against the audit log, \
         {rounds} rounds)",
        reread / rounds
    );
    assert!(unchanged < std::time::Duration::from_millis(1));
}

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
