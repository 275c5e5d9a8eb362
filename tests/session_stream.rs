//! `SecureStream` in akex mode: key updates and ratchets in flight, an
//! authenticated close on shutdown, and truncation detected.

use std::time::Duration;

use akex::crypto::{AeadAlgorithm, Secret};
use akex::error::PeerMisbehaved;
use akex::handshake::TrafficSecret;
use akex::session::{RekeyPolicy, Session, SessionConfig};
use akex::transport::SecureStream;
use akex::{Error, Established, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

fn session(role: Role, config: SessionConfig) -> Session {
    let e = Established::new(
        "akex-stream-test".into(),
        role,
        vec![5; 32],
        None,
        AeadAlgorithm::ChaChaPoly,
        TrafficSecret::new(Secret::new([0x41; 32])),
        TrafficSecret::new(Secret::new([0x42; 32])),
    )
    .with_root_secret(TrafficSecret::new(Secret::new([0x43; 32])));
    Session::with_config(e, config).unwrap()
}

fn pair(config: SessionConfig) -> (SecureStream<DuplexStream>, SecureStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (
        SecureStream::from_session(a, session(Role::Initiator, config.clone())),
        SecureStream::from_session(b, session(Role::Responder, config)),
    )
}

#[tokio::test]
async fn akex_stream_rekeys_ratchets_and_closes_cleanly() {
    let config = SessionConfig::new()
        .rekey_policy(RekeyPolicy::every_messages(3))
        .ratchet_every(Duration::from_millis(5));
    let (mut a, mut b) = pair(config);
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let mut total = 0usize;
        loop {
            let n = b.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
            b.write_all(&buf[..n]).await.unwrap();
            b.flush().await.unwrap();
        }
        b.shutdown().await.unwrap();
        (total, b.session().recv_epoch(), b.session().ratchet_count())
    });
    let mut sent = 0usize;
    for i in 0..40u32 {
        let msg = format!("message {i:04}");
        a.write_all(msg.as_bytes()).await.unwrap();
        a.flush().await.unwrap();
        let mut back = vec![0u8; msg.len()];
        a.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg.as_bytes());
        sent += msg.len();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    a.shutdown().await.unwrap();
    // The peer's close arrives: a clean EOF.
    let mut rest = Vec::new();
    a.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    let (total, b_recv_epoch, b_ratchets) = echo.await.unwrap();
    assert_eq!(total, sent);
    assert_eq!(b_recv_epoch, a.session().send_epoch());
    assert!(
        a.session().send_epoch() >= 10,
        "policy key updates happened"
    );
    assert!(b_ratchets >= 1, "at least one DH ratchet step completed");
    assert_eq!(a.session().ratchet_count(), b_ratchets);
}

#[tokio::test]
async fn akex_stream_truncation_is_an_error() {
    let (mut a, mut b) = pair(SessionConfig::new());
    a.write_all(b"partial").await.unwrap();
    a.flush().await.unwrap();
    // Drop the transport without a close record (an attacker cutting the TCP connection).
    drop(a);
    let mut buf = Vec::new();
    let err = b.read_to_end(&mut buf).await.unwrap_err();
    assert_eq!(buf, b"partial");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(matches!(
        Error::from_io(err),
        Error::PeerMisbehaved(PeerMisbehaved::UnauthenticatedEof)
    ));
}
