//! The trust store's safety rules at the library level: rotation without
//! forks, name-bound pins and revocation by name, live trust (revocations
//! reaching a running policy, surviving TOFU pins) and its per-handshake
//! cost. The key store's own rules are in tests/keys_safety.rs.

mod keys_support;

use std::time::Instant;

use akex::error::{KeyStoreError, TrustFailure};
use akex::keys::{key_id, now_unix, KeyStatus, KeyStore, KeyType, TrustPolicy, TrustStore};

use keys_support::*;

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
