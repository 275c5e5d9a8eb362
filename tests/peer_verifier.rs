//! `HandshakeKeys::verify_peer`: the peer's key is judged inside the
//! handshake, before we write again, so a refused responder never receives
//! the initiator's identity (docs/security.md, protocols/sigma.md,
//! noise.md, hybrid.md, pq.md: "identity hiding").

mod threat_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use akex::error::{Error, TrustFailure};
use akex::{ClientConfig, Connection, PublicKey, Role, ServerConfig};
use threat_support::*;

const INITIATOR: u8 = 1;
const RESPONDER: u8 = 2;
const ATTACKER: u8 = 66;

fn refuse(_: &PublicKey, _: &[u8]) -> Result<(), Error> {
    Err(TrustFailure::Unknown {
        key_id: "not ours".into(),
    }
    .into())
}

/// An active attacker answers with its own (valid) long-term key. The
/// initiator's verifier refuses that key: the handshake stops right after
/// the message that showed it, the initiator writes nothing more, its
/// identity appears in none of its bytes, and the attacker never learns
/// it. Without the check the same attacker does learn it (the control
/// that shows the test can see a leak).
#[test]
fn a_refused_responder_never_receives_the_initiator_identity() {
    for name in IDENTITY_LAST {
        let id = public(name, INITIATOR);
        // Refused: the verifier says no.
        let mut i = build(
            name,
            Role::Initiator,
            &keys(name, Role::Initiator, INITIATOR, ATTACKER, false).verify_peer(refuse),
        );
        let mut attacker = build(
            name,
            Role::Responder,
            &keys(name, Role::Responder, ATTACKER, INITIATOR, false),
        );
        let run = pump(&mut i, &mut attacker);
        let (k, side, err) = run.error.as_ref().expect("the handshake must stop");
        assert_eq!((*k, *side), (1, Role::Initiator), "{name}");
        assert!(
            matches!(err, Error::PeerNotTrusted(TrustFailure::Unknown { .. })),
            "{name}: {err:?}"
        );
        assert_eq!(run.messages.len(), 2, "{name}: nothing after message 2");
        assert!(!contains(&run.sent_by(Role::Initiator), &id), "{name}");
        assert!(attacker.remote_static().is_none(), "{name}");
        assert!(!attacker.is_finished() && !i.wants_write(), "{name}");
        assert!(i.finish().is_err(), "{name}");

        // Control: no check, and the attacker learns the initiator's key.
        let mut i = build(
            name,
            Role::Initiator,
            &keys(name, Role::Initiator, INITIATOR, ATTACKER, false),
        );
        let mut attacker = build(
            name,
            Role::Responder,
            &keys(name, Role::Responder, ATTACKER, INITIATOR, false),
        );
        let run = pump(&mut i, &mut attacker);
        assert!(run.error.is_none(), "{name}");
        assert_eq!(attacker.remote_static().as_ref(), Some(&id), "{name}");
    }
}

/// The verifier is asked once, with the key the handshake authenticated
/// and the payload of the message that showed it; a refusal hands out no
/// payload; an acceptance lets the handshake finish with that key. Both
/// roles (the responder judges the initiator in message 3 of XX, in
/// message 1 of IK).
#[test]
fn the_verifier_sees_each_peer_key_once_with_its_message_payload() {
    for name in AUTHENTICATED {
        for role in [Role::Initiator, Role::Responder] {
            if !has_own_key(name, role.peer()) {
                continue; // hybrid NK: the responder has no peer key to judge
            }
            let (me, peer) = match role {
                Role::Initiator => (INITIATOR, RESPONDER),
                Role::Responder => (RESPONDER, INITIATOR),
            };
            let calls = Arc::new(AtomicUsize::new(0));
            let seen = Arc::new(Mutex::new(Vec::new()));
            let (c, s) = (calls.clone(), seen.clone());
            let verifier = move |key: &PublicKey, payload: &[u8]| -> Result<(), Error> {
                c.fetch_add(1, Ordering::SeqCst);
                s.lock().unwrap().push((key.clone(), payload.to_vec()));
                Ok(())
            };
            let mine = keys(name, role, me, peer, false).verify_peer(verifier);
            let theirs = keys(name, role.peer(), peer, me, false);
            let (mut i, mut r) = match role {
                Role::Initiator => (build(name, role, &mine), build(name, role.peer(), &theirs)),
                Role::Responder => (build(name, role.peer(), &theirs), build(name, role, &mine)),
            };
            let run = pump(&mut i, &mut r);
            assert!(run.error.is_none(), "{name} {role}: {:?}", run.error);
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{name} {role}");
            let (key, payload) = seen.lock().unwrap()[0].clone();
            assert_eq!(key, public(name, peer), "{name} {role}");
            // The payload the verifier saw is one the peer sent.
            assert!(
                run.payloads
                    .iter()
                    .any(|(who, p)| *who == role && *p == payload),
                "{name} {role}: {payload:?}"
            );
            let me_hs = if role == Role::Initiator {
                &mut i
            } else {
                &mut r
            };
            let est = me_hs.finish().unwrap();
            assert_eq!(
                est.remote_static(),
                Some(&public(name, peer)),
                "{name} {role}"
            );

            // Refused: the error is the verifier's and no payload comes out.
            let mine = keys(name, role, me, peer, false).verify_peer(refuse);
            let (mut i, mut r) = match role {
                Role::Initiator => (build(name, role, &mine), build(name, role.peer(), &theirs)),
                Role::Responder => (build(name, role.peer(), &theirs), build(name, role, &mine)),
            };
            let run = pump(&mut i, &mut r);
            let (_, side, err) = run.error.expect("refused");
            assert_eq!(side, role, "{name}");
            assert!(matches!(err, Error::PeerNotTrusted(_)), "{name}: {err:?}");
            assert!(
                run.failed_payload.is_empty(),
                "{name}: a refused payload came out"
            );
        }
    }
}

/// A verifier needs a peer key: a handshake that authenticates none (NN)
/// cannot finish under one.
#[test]
fn a_verifier_refuses_a_handshake_without_a_peer_key() {
    let name = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
    let mut i = build(
        name,
        Role::Initiator,
        &akex::HandshakeKeys::new().verify_peer(|_: &PublicKey, _: &[u8]| Ok(())),
    );
    let mut r = build(name, Role::Responder, &akex::HandshakeKeys::new());
    let run = pump(&mut i, &mut r);
    assert!(run.error.is_none());
    assert!(matches!(
        i.finish(),
        Err(Error::PeerNotTrusted(TrustFailure::NoRemoteKey))
    ));
    assert!(r.finish().is_ok());
}

/// Through `Connection` (what every driver uses): the client configured
/// with a refusing verifier fails on the server's message 2 and queues no
/// message 3, so the server's connection never gets the client's key.
#[test]
fn connections_stop_before_the_initiator_identity_leaves() {
    for name in IDENTITY_LAST {
        let client = ClientConfig::new(
            name,
            keys(name, Role::Initiator, INITIATOR, ATTACKER, false).verify_peer(refuse),
        )
        .unwrap();
        let server = ServerConfig::new(
            &[name],
            keys(name, Role::Responder, ATTACKER, INITIATOR, false),
        )
        .unwrap();
        let mut c = Connection::client(&client).unwrap();
        let mut s = Connection::server(&server).unwrap();
        let m1 = c.wire_output().to_vec();
        c.consume_wire_output(m1.len());
        s.read_wire(&m1).unwrap();
        let m2 = s.wire_output().to_vec();
        s.consume_wire_output(m2.len());
        let err = c.read_wire(&m2).unwrap_err();
        assert!(matches!(err, Error::PeerNotTrusted(_)), "{name}: {err:?}");
        assert!(
            c.wire_output().is_empty(),
            "{name}: nothing queued after the refusal"
        );
        assert!(c.has_failed() && s.is_handshaking(), "{name}");
        let id = public(name, INITIATOR);
        assert!(!contains(&m1, &id), "{name}");
    }
}

/// `TrustPolicy::verifier`: a key store's pins judge the peer inside the
/// handshake. A pinned responder passes; an unpinned one is refused before
/// the initiator's identity leaves; a revocation written to the store after
/// the verifier was made counts from the next handshake; a key pinned under
/// another name fails when a name is expected.
#[test]
fn a_trust_policy_judges_the_peer_during_the_handshake() {
    use akex::keys::{KeyStore, KeyType, TrustPolicy};
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let server = public(NOISE_XX, RESPONDER);
    store
        .trust_store()
        .unwrap()
        .pin("server", KeyType::X25519, server.as_bytes(), None, None)
        .unwrap();
    let policy = || TrustPolicy::Pinned(store.trust_store().unwrap());
    let verifier = Arc::new(policy().verifier(Some("server")));
    let run_with = |verifier: Arc<akex::keys::PolicyVerifier>, responder: u8| {
        let v =
            move |k: &PublicKey, p: &[u8]| akex::PeerVerifier::verify_peer(verifier.as_ref(), k, p);
        let mut i = build(
            NOISE_XX,
            Role::Initiator,
            &keys(NOISE_XX, Role::Initiator, INITIATOR, responder, false).verify_peer(v),
        );
        let mut r = build(
            NOISE_XX,
            Role::Responder,
            &keys(NOISE_XX, Role::Responder, responder, INITIATOR, false),
        );
        pump(&mut i, &mut r)
    };
    assert!(run_with(verifier.clone(), RESPONDER).error.is_none());

    let run = run_with(verifier.clone(), ATTACKER);
    let (_, side, err) = run
        .error
        .as_ref()
        .expect("an unpinned responder is refused");
    assert_eq!(*side, Role::Initiator);
    assert!(
        matches!(err, Error::PeerNotTrusted(TrustFailure::Unknown { .. })),
        "{err:?}"
    );
    let id = public(NOISE_XX, INITIATOR);
    assert!(!contains(&run.sent_by(Role::Initiator), id.as_bytes()));

    let other = Arc::new(policy().verifier(Some("another")));
    let run = run_with(other, RESPONDER);
    assert!(
        matches!(
            run.error.as_ref().map(|e| &e.2),
            Some(Error::PeerNotTrusted(TrustFailure::WrongPeer { .. }))
        ),
        "{:?}",
        run.error
    );

    // Revoked through the store while the verifier lives: refused next time.
    store
        .trust_store()
        .unwrap()
        .revoke(
            &akex::keys::key_id(server.as_bytes()),
            "compromised",
            akex::keys::now_unix(),
        )
        .unwrap();
    let run = run_with(verifier, RESPONDER);
    assert!(
        matches!(
            run.error.as_ref().map(|e| &e.2),
            Some(Error::PeerNotTrusted(TrustFailure::Revoked { .. }))
        ),
        "{:?}",
        run.error
    );
}

/// `TrustStore::pin` refuses a key whose length fits no key of its type.
#[test]
fn pins_of_the_wrong_length_are_refused() {
    use akex::keys::{KeyStore, KeyType};
    let dir = tempfile::tempdir().unwrap();
    let mut trust = KeyStore::open(dir.path()).unwrap().trust_store().unwrap();
    for (kind, len) in [
        (KeyType::X25519, 3),
        (KeyType::X25519, 33),
        (KeyType::Ed25519, 65),
        (KeyType::P256, 32),
        (KeyType::Mlkem768, 32),
    ] {
        let err = trust.pin("p", kind, &vec![7; len], None, None).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{kind:?} {len}: {err:?}");
    }
    assert!(trust.pins().is_empty());
    trust.pin("p", KeyType::P256, &[4; 65], None, None).unwrap();
    trust
        .pin("q", KeyType::X25519, &[9; 32 + 1184], None, None)
        .unwrap();
    assert_eq!(trust.pins().len(), 2);
}
