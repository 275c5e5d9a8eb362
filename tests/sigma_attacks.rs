//! SIGMA-I under attack, each failure a typed error: every byte range of
//! every message tampered with, truncated and extended messages, reflected
//! messages and messages from another session, a rewritten protocol name
//! (in memory and over the transport: no downgrade), a hand-written message
//! 2 with a bad signature or MAC, a low-order ephemeral, and arbitrary bytes
//! at any step.

mod sigma_support;

use akex::crypto::{AeadAlgorithm, Secret};
use akex::error::{Error, PeerIncompatible, PeerMisbehaved};
use akex::handshake::sigma::{SIGMA_AESGCM, SIGMA_CHACHAPOLY};
use akex::hazmat::aead::TAG_LEN;
use akex::hazmat::akex::labels;
use akex::hazmat::akex::{hello, SymmetricState};
use akex::hazmat::x25519::X25519Private;
use sigma_support::{assert_err, client, ed, read, server, transcript, write};

/// Flips one byte at `pos` of message `idx` and returns the receiver's
/// error (later messages come from honest parties on the tampered run).
fn tamper(name: &str, idx: usize, pos: usize) -> Error {
    let (mut i, mut r) = (client(name), server(&[name]));
    let flip = |m: &mut Vec<u8>, n: usize| {
        if n == idx {
            m[pos] ^= 0x01;
        }
    };
    let mut m1 = write(&mut i, b"");
    flip(&mut m1, 0);
    if let Err(e) = read(&mut r, &m1) {
        assert_err(read(&mut r, &m1), "HandshakeDead");
        return e;
    }
    let mut m2 = write(&mut r, b"");
    flip(&mut m2, 1);
    if let Err(e) = read(&mut i, &m2) {
        assert_err(i.write_message(b"", &mut Vec::new()), "HandshakeDead");
        return e;
    }
    let mut m3 = write(&mut i, b"");
    flip(&mut m3, 2);
    match read(&mut r, &m3) {
        Err(e) => {
            assert!(!r.is_finished());
            e
        }
        Ok(_) => panic!("tampering message {idx} byte {pos} went unnoticed"),
    }
}

#[test]
fn tampering_with_each_byte_range_fails_with_a_typed_error() {
    let name = SIGMA_CHACHAPOLY;
    let n = name.len();
    let hello_end = 6 + n;
    // (message, byte range, error the receiver reports)
    let ranges: &[(usize, std::ops::Range<usize>, &str)] = &[
        (0, 0..4, "NotAkexMode"),
        (0, 4..5, "UnsupportedVersion"),
        (0, 6..hello_end, "ProtocolNotAllowed"),
        // e_i is not authenticated by message 1; the initiator's
        // transcript differs, so message 2 fails at the initiator.
        (0, hello_end..hello_end + 32, "DecryptFailed"),
        // e_r, then the encrypted identity block, then the payload tag.
        (1, 0..32, "DecryptFailed"),
        (1, 32..32 + 144, "DecryptFailed"),
        (1, 176..192, "DecryptFailed"),
        (2, 0..144, "DecryptFailed"),
        (2, 144..160, "DecryptFailed"),
    ];
    for (idx, range, want) in ranges {
        for pos in [range.start, (range.start + range.end) / 2, range.end - 1] {
            let err = tamper(name, *idx, pos);
            assert!(
                format!("{err:?}").contains(want),
                "message {idx} byte {pos}: expected {want}, got {err:?}"
            );
        }
    }
    // The name length byte: shorter or longer names parse to something
    // that is not in the allow-list (or past the end).
    let err = tamper(name, 0, 5);
    assert!(
        matches!(
            err,
            Error::PeerIncompatible(PeerIncompatible::ProtocolNotAllowed(_))
                | Error::PeerMisbehaved(PeerMisbehaved::MalformedHello)
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_and_extended_messages_fail() {
    let name = SIGMA_CHACHAPOLY;
    let [m1, m2, m3] = transcript(name);
    for cut in [0, 3, 5, 10, m1.len() - 1] {
        let mut r = server(&[name]);
        assert!(read(&mut r, &m1[..cut]).is_err(), "m1 cut at {cut}");
    }
    for (idx, m) in [(1usize, &m2), (2, &m3)] {
        for cut in [0, 31, m.len() - TAG_LEN - 1, m.len() - 1] {
            let (mut i, mut r) = (client(name), server(&[name]));
            let m1 = write(&mut i, b"");
            read(&mut r, &m1).unwrap();
            let m2 = write(&mut r, b"");
            let err = if idx == 1 {
                read(&mut i, &m2[..cut.min(m2.len())]).unwrap_err()
            } else {
                read(&mut i, &m2).unwrap();
                let m3 = write(&mut i, b"");
                read(&mut r, &m3[..cut.min(m3.len())]).unwrap_err()
            };
            assert!(
                matches!(
                    err,
                    Error::PeerMisbehaved(
                        PeerMisbehaved::BadMessageLength | PeerMisbehaved::DecryptFailed
                    )
                ),
                "message {idx} cut at {cut}: {err:?}"
            );
        }
    }
}

#[test]
fn reflected_messages_fail() {
    let name = SIGMA_CHACHAPOLY;
    // Message 1 back to the initiator (which waits for message 2).
    let mut i = client(name);
    let m1 = write(&mut i, b"");
    assert_err(read(&mut i, &m1), "BadMessageLength");
    // Message 2 back to the responder (which waits for message 3).
    let (mut i, mut r) = (client(name), server(&[name]));
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    assert_err(read(&mut r, &m2), "DecryptFailed");
    // Message 3 back to the initiator (which is done).
    let (mut i, mut r) = (client(name), server(&[name]));
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    read(&mut i, &m2).unwrap();
    let m3 = write(&mut i, b"");
    assert_err(read(&mut i, &m3), "UnexpectedMessage");
    // Two initiators: each one's message 1 is no answer for the other.
    let (mut a, mut b) = (client(name), client(name));
    let _ = write(&mut a, b"");
    let mb = write(&mut b, b"");
    assert_err(read(&mut a, &mb), "BadMessageLength");
}

#[test]
fn messages_from_another_session_fail() {
    let name = SIGMA_CHACHAPOLY;
    let [_, other_m2, other_m3] = transcript(name);
    let (mut i, mut r) = (client(name), server(&[name]));
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    assert_err(read(&mut i, &other_m2), "DecryptFailed");
    let (mut i, mut r) = (client(name), server(&[name]));
    let m1 = write(&mut i, b"");
    read(&mut r, &m1).unwrap();
    let m2 = write(&mut r, b"");
    read(&mut i, &m2).unwrap();
    assert_err(read(&mut r, &other_m3), "DecryptFailed");
}

/// An attacker rewrites the protocol name in the hello to another protocol
/// the server allows. The server follows the rewritten name, but the hello
/// is in both transcripts, so the initiator rejects message 2 and never
/// sends message 3: neither side finishes.
#[test]
fn rewritten_protocol_name_fails_on_both_sides_no_downgrade() {
    for (chosen, forced) in [
        (SIGMA_CHACHAPOLY, SIGMA_AESGCM),
        (SIGMA_AESGCM, SIGMA_CHACHAPOLY),
    ] {
        let mut i = client(chosen);
        let mut r = server(&[SIGMA_CHACHAPOLY, SIGMA_AESGCM]);
        let m1 = write(&mut i, b"");
        let old_hello = hello(chosen).unwrap();
        assert!(m1.starts_with(&old_hello));
        let mut rewritten = hello(forced).unwrap();
        rewritten.extend_from_slice(&m1[old_hello.len()..]);
        read(&mut r, &rewritten).unwrap();
        assert_eq!(r.protocol(), forced);
        let m2 = write(&mut r, b"");
        assert_err(read(&mut i, &m2), "DecryptFailed");
        assert!(!i.is_finished());
        // The responder gets no valid message 3: whatever the attacker
        // sends fails, and it cannot finish.
        assert_err(read(&mut r, &[0u8; 160]), "DecryptFailed");
        assert!(!r.is_finished());
        assert_err(r.finish(), "HandshakeDead");
    }
    // Rewriting only the version byte fails at the responder.
    let mut i = client(SIGMA_CHACHAPOLY);
    let mut r = server(&[SIGMA_CHACHAPOLY]);
    let mut m1 = write(&mut i, b"");
    m1[4] = 0;
    assert_err(read(&mut r, &m1), "UnsupportedVersion(0)");
}

/// A responder written by hand from the spec, so the test can send a
/// well-encrypted message 2 whose signature or MAC is wrong.
fn forged_m2(m1: &[u8], bad_sig: bool, bad_mac: bool) -> Vec<u8> {
    let name = SIGMA_CHACHAPOLY;
    let hello = hello(name).unwrap();
    let (hello_bytes, rest) = m1.split_at(hello.len());
    assert_eq!(hello_bytes, hello);
    // InitializeSymmetric(name), MixHash(prologue = ""), MixHash(hello).
    let mut ss = SymmetricState::new(name, AeadAlgorithm::ChaChaPoly, b"");
    ss.mix_hash(&hello);
    ss.mix_hash(&rest[..32]);
    ss.encrypt_and_hash(&rest[32..], &mut Vec::new()).unwrap();
    let e = X25519Private::new(&Secret::new([5u8; 32]));
    let dh = e.agree(&rest[..32]).unwrap();
    let mut out = e.public().to_vec();
    ss.mix_hash(e.public());
    ss.mix_key(labels::SIGMA_DH_EE, dh.expose());
    let id = ed(2);
    let mut signed = labels::SIGMA_SIG_RESPONDER.to_vec();
    signed.extend_from_slice(&ss.handshake_hash());
    if bad_sig {
        signed.push(0);
    }
    let sig = id.sign(&signed);
    let km = ss.derive_key(if bad_mac {
        labels::SIGMA_MAC_INITIATOR
    } else {
        labels::SIGMA_MAC_RESPONDER
    });
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(km.expose()).unwrap();
    mac.update(id.public());
    let mut block = id.public().to_owned().to_vec();
    block.extend_from_slice(&sig);
    block.extend_from_slice(&mac.finalize().into_bytes());
    ss.encrypt_and_hash(&block, &mut out).unwrap();
    ss.encrypt_and_hash(b"", &mut out).unwrap();
    out
}

#[test]
fn bad_signature_and_bad_mac_under_valid_encryption() {
    let mut i = client(SIGMA_CHACHAPOLY);
    let m1 = write(&mut i, b"");
    // The hand-written responder is faithful: with both right it passes.
    read(&mut i, &forged_m2(&m1, false, false)).unwrap();
    for (bad_sig, bad_mac, want) in [(true, false, "BadSignature"), (false, true, "BadMac")] {
        let mut i = client(SIGMA_CHACHAPOLY);
        let m1 = write(&mut i, b"");
        assert_err(read(&mut i, &forged_m2(&m1, bad_sig, bad_mac)), want);
    }
}

#[test]
fn low_order_ephemeral_is_rejected() {
    let mut m1 = hello(SIGMA_CHACHAPOLY).unwrap();
    m1.extend_from_slice(&[0u8; 32]);
    let mut r = server(&[SIGMA_CHACHAPOLY]);
    assert_err(read(&mut r, &m1), "InvalidPublicKey");
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Arbitrary bytes at any step give an error or a (checked) Ok,
        /// never a panic.
        #[test]
        fn arbitrary_messages_never_panic(
            step in 0usize..3,
            junk in proptest::collection::vec(any::<u8>(), 0..400),
            keep_hello in any::<bool>(),
        ) {
            let name = SIGMA_CHACHAPOLY;
            let (mut i, mut r) = (client(name), server(&[name]));
            let mut msg = junk.clone();
            if keep_hello && step == 0 {
                msg = hello(name).unwrap();
                msg.extend_from_slice(&junk);
            }
            match step {
                0 => { let _ = read(&mut r, &msg); }
                1 => {
                    let m1 = write(&mut i, b"");
                    read(&mut r, &m1).unwrap();
                    prop_assert!(read(&mut i, &msg).is_err());
                }
                _ => {
                    let m1 = write(&mut i, b"");
                    read(&mut r, &m1).unwrap();
                    let m2 = write(&mut r, b"");
                    read(&mut i, &m2).unwrap();
                    prop_assert!(read(&mut r, &msg).is_err());
                }
            }
        }
    }
}

/// The downgrade attempt over real framed streams: a man in the middle
/// rewrites the hello in the first frame and relays everything else. The
/// client fails on message 2; the server sees the connection end before
/// message 3. Neither gets a session.
#[tokio::test]
async fn downgrade_over_the_transport_fails_for_both() {
    use akex::transport::{accept, connect, TransportOptions};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn read_frame(io: &mut tokio::io::DuplexStream) -> Option<Vec<u8>> {
        let mut len = [0u8; 2];
        io.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        io.read_exact(&mut buf).await.ok()?;
        Some(buf)
    }
    async fn write_frame(io: &mut tokio::io::DuplexStream, frame: &[u8]) -> Option<()> {
        io.write_all(&(frame.len() as u16).to_be_bytes())
            .await
            .ok()?;
        io.write_all(frame).await.ok()
    }

    let (client_io, mut mitm_client) = tokio::io::duplex(1 << 16);
    let (mut mitm_server, server_io) = tokio::io::duplex(1 << 16);
    let options = TransportOptions::new().handshake_timeout(std::time::Duration::from_secs(5));
    let server = tokio::spawn({
        let options = options.clone();
        async move {
            accept(
                server_io,
                server(&[SIGMA_CHACHAPOLY, SIGMA_AESGCM]),
                &options,
            )
            .await
            .map(|_| ())
        }
    });
    let mitm = tokio::spawn(async move {
        let m1 = read_frame(&mut mitm_client).await?;
        let old = hello(SIGMA_CHACHAPOLY).unwrap();
        let mut rewritten = hello(SIGMA_AESGCM).unwrap();
        rewritten.extend_from_slice(&m1[old.len()..]);
        write_frame(&mut mitm_server, &rewritten).await?;
        let m2 = read_frame(&mut mitm_server).await?;
        write_frame(&mut mitm_client, &m2).await?;
        // Relay whatever the client sends next (nothing: it fails), then hang up.
        if let Some(m3) = read_frame(&mut mitm_client).await {
            write_frame(&mut mitm_server, &m3).await?;
        }
        drop(mitm_server);
        Some(())
    });
    let client = connect(client_io, client(SIGMA_CHACHAPOLY), &options).await;
    assert!(
        matches!(
            client,
            Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))
        ),
        "{:?}",
        client.err()
    );
    let server = server.await.unwrap();
    assert!(
        matches!(
            server,
            Err(Error::PeerMisbehaved(PeerMisbehaved::ClosedDuringHandshake))
        ),
        "{server:?}"
    );
    let _ = mitm.await;
}
