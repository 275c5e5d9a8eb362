//! SIGMA-I and akex-mode negotiation: the happy path, pinned and unpinned
//! peers, the hello's typed errors, misuse, the prologue, ratchet-ready
//! sessions and akex-mode records over the transport. Tampered, truncated,
//! reflected, replayed and forged messages: tests/sigma_attacks.rs.

mod sigma_support;

use akex::crypto::Secret;
use akex::error::{ApiMisuse, Error, PeerIncompatible, TrustFailure};
use akex::handshake::registry::{self, HandshakeKeys};
use akex::handshake::sigma::{SIGMA_AESGCM, SIGMA_CHACHAPOLY};
use akex::Session;
use sigma_support::{assert_err, client, ed, keys, read, run, server, transcript, write};

const NOISE_NN: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";

#[test]
fn handshake_completes_both_aeads() {
    for name in [SIGMA_CHACHAPOLY, SIGMA_AESGCM] {
        let (ie, re) = run(client(name), server(&[SIGMA_AESGCM, SIGMA_CHACHAPOLY]));
        assert_eq!(ie.protocol(), name);
        assert_eq!(re.protocol(), name);
        assert_eq!(ie.handshake_hash(), re.handshake_hash());
        assert_eq!(ie.sending_secret(), re.receiving_secret());
        assert_eq!(ie.receiving_secret(), re.sending_secret());
        assert_ne!(ie.sending_secret(), ie.receiving_secret());
        assert_eq!(ie.remote_static().unwrap(), ed(2).public());
        assert_eq!(re.remote_static().unwrap(), ed(1).public());
        let mut a = Session::new(ie);
        let mut b = Session::new(re);
        let mut ct = Vec::new();
        a.seal(b"data", &mut ct).unwrap();
        let mut pt = Vec::new();
        b.open(&ct, &mut pt).unwrap();
        assert_eq!(pt, b"data");
    }
}

#[test]
fn message_sizes_match_the_registry() {
    for name in [SIGMA_CHACHAPOLY, SIGMA_AESGCM] {
        let sizes: Vec<usize> = transcript(name).iter().map(Vec::len).collect();
        assert_eq!(sizes, registry::info(name).unwrap().message_sizes, "{name}");
    }
}

#[test]
fn unpinned_peers_are_reported_not_rejected() {
    let i = registry::initiator(SIGMA_CHACHAPOLY, &keys(1, None)).unwrap();
    let r = registry::responder(&[SIGMA_CHACHAPOLY], &keys(9, None)).unwrap();
    let (ie, re) = run(i, r);
    assert_eq!(ie.remote_static().unwrap(), ed(9).public());
    assert_eq!(re.remote_static().unwrap(), ed(1).public());
}

#[test]
fn wrong_pinned_key_is_rejected_by_either_side() {
    // The initiator expects key 3 but talks to key 2.
    let mut i = registry::initiator(SIGMA_CHACHAPOLY, &keys(1, Some(&ed(3)))).unwrap();
    let mut r = server(&[SIGMA_CHACHAPOLY]);
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    assert!(matches!(
        read(&mut i, &m2),
        Err(Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch))
    ));
    // The responder expects key 1 but an unknown initiator (key 7) comes.
    let mut i = registry::initiator(SIGMA_CHACHAPOLY, &keys(7, Some(&ed(2)))).unwrap();
    let mut r = server(&[SIGMA_CHACHAPOLY]);
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    read(&mut i, &m2).unwrap();
    let m3 = write(&mut i, b"");
    assert!(matches!(
        read(&mut r, &m3),
        Err(Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch))
    ));
    assert!(!r.is_finished());
}

#[test]
fn initiator_identity_stays_hidden_from_an_impostor_responder() {
    // An active attacker answers with its own key: the initiator (pinned
    // to key 2) stops at message 2 and never sends its identity.
    let mut i = client(SIGMA_CHACHAPOLY);
    let mut attacker = registry::responder(&[SIGMA_CHACHAPOLY], &keys(66, None)).unwrap();
    let m1 = write(&mut i, b"");
    read(&mut attacker, &m1).unwrap();
    let m2 = write(&mut attacker, b"");
    assert!(read(&mut i, &m2).is_err());
    assert!(!i.wants_write());
    assert_err(i.write_message(b"", &mut Vec::new()), "HandshakeDead");
    // And message 1 carries no long-term key material at all.
    let id = ed(1).public().to_owned();
    assert!(!m1.windows(32).any(|w| w == id));
}

#[test]
fn name_outside_the_allow_list_is_refused() {
    let mut i = client(SIGMA_CHACHAPOLY);
    let mut r = server(&[SIGMA_AESGCM]);
    let m1 = write(&mut i, b"");
    match read(&mut r, &m1) {
        Err(Error::PeerIncompatible(PeerIncompatible::ProtocolNotAllowed(name))) => {
            assert_eq!(name, SIGMA_CHACHAPOLY)
        }
        other => panic!("{other:?}"),
    }
    assert_err(read(&mut r, &m1), "HandshakeDead");
}

#[test]
fn noise_client_to_akex_server_is_told_apart() {
    let mut i = registry::initiator(NOISE_NN, &HandshakeKeys::default()).unwrap();
    let mut r = server(&[SIGMA_CHACHAPOLY]);
    let m1 = write(&mut i, b"");
    assert_err(read(&mut r, &m1), "NotAkexMode");
}

#[test]
fn misuse_is_typed() {
    let mut r = server(&[SIGMA_CHACHAPOLY]);
    assert!(!r.wants_write());
    assert!(matches!(
        r.write_message(b"", &mut Vec::new()),
        Err(Error::ApiMisuse(ApiMisuse::WrongTurn))
    ));
    let mut i = client(SIGMA_CHACHAPOLY);
    assert!(matches!(
        i.finish(),
        Err(Error::ApiMisuse(ApiMisuse::HandshakeNotFinished))
    ));
}

#[test]
fn debug_output_has_no_secrets() {
    let mut i = client(SIGMA_CHACHAPOLY);
    let _ = write(&mut i, b"");
    let k = keys(0x42, None);
    let text = format!("{k:?}");
    assert!(!text.contains(&hex::encode([0x42u8; 32])), "{text}");
}

/// Handshake time, for the report: `cargo test --release --test sigma --
/// --ignored timing --nocapture`.
#[test]
#[ignore = "timing loop; run in --release"]
fn timing() {
    let n = 2000;
    for name in [
        SIGMA_CHACHAPOLY,
        SIGMA_AESGCM,
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
    ] {
        let (ik, rk) = if name.starts_with("Noise") {
            let si = akex::keys::StaticSecret::from_private(Secret::new([1; 32]));
            let sr = akex::keys::StaticSecret::from_private(Secret::new([2; 32]));
            (
                HandshakeKeys::new().static_key(si),
                HandshakeKeys::new().static_key(sr),
            )
        } else {
            (keys(1, Some(&ed(2))), keys(2, Some(&ed(1))))
        };
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let start = std::time::Instant::now();
            let mut i = registry::initiator(name, &ik).unwrap();
            let mut r = registry::responder(&[name], &rk).unwrap();
            while !(i.is_finished() && r.is_finished()) {
                let (s, rcv) = if i.wants_write() {
                    (&mut i, &mut r)
                } else {
                    (&mut r, &mut i)
                };
                let mut m = Vec::new();
                s.write_message(b"", &mut m).unwrap();
                rcv.read_message(&m, &mut Vec::new()).unwrap();
            }
            let _ = (i.finish().unwrap(), r.finish().unwrap());
            samples.push(start.elapsed());
        }
        samples.sort();
        eprintln!(
            "{name}: median {:?}, p90 {:?} (full in-memory handshake, both sides, {n} runs)",
            samples[n / 2],
            samples[n * 9 / 10]
        );
    }
}

#[test]
fn sigma_sessions_can_ratchet() {
    let (ie, re) = run(client(SIGMA_CHACHAPOLY), server(&[SIGMA_CHACHAPOLY]));
    assert!(ie.root_secret().is_some());
    assert_eq!(ie.root_secret(), re.root_secret());
    assert_ne!(ie.root_secret(), Some(ie.sending_secret()));
}

/// Over real sockets an akex-mode protocol gets akex-mode records: a clean
/// close is authenticated, and a cut connection is an error, not an EOF.
#[tokio::test]
async fn akex_protocols_get_akex_records_over_the_transport() {
    use akex::session::RecordMode;
    use akex::transport::{accept, connect, TransportOptions};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut results = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut stream = accept(
                tcp,
                server(&[SIGMA_CHACHAPOLY]),
                &TransportOptions::default(),
            )
            .await
            .unwrap();
            assert_eq!(stream.session().mode(), RecordMode::Akex);
            let mut got = Vec::new();
            results.push(stream.read_to_end(&mut got).await.map(|_| got));
        }
        results
    });

    // Clean end: shutdown sends the authenticated close record.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut stream = connect(tcp, client(SIGMA_CHACHAPOLY), &TransportOptions::default())
        .await
        .unwrap();
    assert_eq!(stream.session().mode(), RecordMode::Akex);
    stream.write_all(b"bye").await.unwrap();
    stream.shutdown().await.unwrap();

    // Cut connection: the socket closes without a close record.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut stream = connect(tcp, client(SIGMA_CHACHAPOLY), &TransportOptions::default())
        .await
        .unwrap();
    stream.write_all(b"partial").await.unwrap();
    stream.flush().await.unwrap();
    drop(stream);

    let results = server.await.unwrap();
    assert_eq!(results[0].as_ref().unwrap(), b"bye");
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err:?}");
}

/// Wire version 2: a version-1 hello (or any other version) gets a typed
/// "unsupported version" error at the responder, before anything else.
#[test]
fn a_version_1_hello_is_an_unsupported_version() {
    let mut i = client(SIGMA_CHACHAPOLY);
    let mut m1 = write(&mut i, b"");
    assert_eq!(m1[4], 2, "the hello says version 2");
    for version in [1u8, 3, 0xff] {
        m1[4] = version;
        let mut r = server(&[SIGMA_CHACHAPOLY]);
        let err = read(&mut r, &m1).unwrap_err();
        assert!(
            matches!(err, Error::PeerIncompatible(PeerIncompatible::UnsupportedVersion(v)) if v == version),
            "{err:?}"
        );
    }
}

/// SIGMA binds the prologue (wire version 1 ignored it): "AAA" against
/// "BBB" fails at the initiator's check of message 2.
#[test]
fn sigma_binds_the_prologue() {
    let keys = |seed: u8, prologue: &[u8]| {
        HandshakeKeys::new()
            .signing_key(ed(seed))
            .prologue(prologue)
    };
    let mut i = registry::initiator(SIGMA_CHACHAPOLY, &keys(1, b"AAA")).unwrap();
    let mut r = registry::responder(&[SIGMA_CHACHAPOLY], &keys(2, b"BBB")).unwrap();
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    assert_err(read(&mut i, &m2), "DecryptFailed");
}
