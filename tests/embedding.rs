//! The library as an embedder meets it: configurations that fail when they
//! are built, with typed errors; the tokio-rustls-shaped Connector and
//! Acceptor; handshake payloads both ways; writes that make progress
//! without a flush; errors that become `io::Error`s and come back.

use std::sync::Arc;
use std::time::Duration;

use akex::crypto::OsRng;
use akex::error::{ConfigError, PeerMisbehaved};
use akex::keys::{SigningKey, StaticSecret};
use akex::transport::{connect, Acceptor, Connector};
use akex::{
    ClientConfig, Connection, Error, HandshakeKeys, KeyKind, NoiseConfig, NoiseHandshake,
    PublicKey, RecordMode, ServerConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IK: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
const HYBRID_XX: &str = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256";
const SIGMA: &str = "akex-sigma-x25519-ed25519-chachapoly-sha256";

fn x_key(key: &StaticSecret) -> PublicKey {
    PublicKey::x25519(*key.public())
}

#[test]
fn configuration_errors_are_typed_and_come_at_build_time() {
    let key = StaticSecret::generate(&mut OsRng);
    // A typo in the protocol name.
    let typo = ClientConfig::new("Noise_IK_25519_ChaChaPoly_BLAKE2", HandshakeKeys::new());
    assert!(
        matches!(
            typo,
            Err(Error::Config(ConfigError::UnsupportedProtocol { ref name, .. }))
                if name == "Noise_IK_25519_ChaChaPoly_BLAKE2"
        ),
        "{typo:?}"
    );
    assert!(matches!(
        NoiseConfig::new("Noise_QQ_25519_ChaChaPoly_BLAKE2s"),
        Err(Error::Config(ConfigError::UnsupportedProtocol { .. }))
    ));
    assert!(matches!(
        ServerConfig::new(&["akex-nope"], HandshakeKeys::new()),
        Err(Error::Config(ConfigError::UnsupportedProtocol { .. }))
    ));
    // Missing keys.
    assert!(matches!(
        ClientConfig::new(IK, HandshakeKeys::new().static_key(key.clone())),
        Err(Error::Config(ConfigError::MissingRemoteKey))
    ));
    assert!(matches!(
        ServerConfig::new(&[IK], HandshakeKeys::new()),
        Err(Error::Config(ConfigError::MissingLocalKey))
    ));
    // A key of the wrong kind: an Ed25519 key where the protocol
    // authenticates X25519, and half a PQ identity.
    let ed = SigningKey::generate(&mut OsRng);
    let wrong = HandshakeKeys::new()
        .static_key(key.clone())
        .remote(PublicKey::ed25519(*ed.public()));
    assert!(matches!(
        ClientConfig::new(IK, wrong),
        Err(Error::Config(ConfigError::WrongKeyKind {
            expected: KeyKind::X25519,
            given: KeyKind::Ed25519
        }))
    ));
    let half = HandshakeKeys::new()
        .static_key(key.clone())
        .kem_key(akex::keys::MlKem768KeyPair::generate(&mut OsRng))
        .remote(x_key(&key));
    assert!(matches!(
        ClientConfig::new("akex-pq-xx-x25519-mlkem768-chachapoly-sha256", half),
        Err(Error::Config(ConfigError::WrongKeyKind {
            expected: KeyKind::X25519MlKem768,
            ..
        }))
    ));
    // Messages name what is missing, never a command-line flag.
    for err in [
        Error::from(ConfigError::MissingLocalKey),
        Error::from(ConfigError::MissingRemoteKey),
    ] {
        assert!(!err.to_string().contains("--"), "{err}");
    }
}

#[tokio::test]
async fn a_responder_is_refused_where_an_initiator_belongs() {
    let (a, _b) = tokio::io::duplex(1024);
    let responder =
        NoiseHandshake::responder(NoiseConfig::new("Noise_NN_25519_ChaChaPoly_BLAKE2s").unwrap())
            .unwrap();
    let err = connect(a, responder, &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ConfigError::WrongRole { .. })),
        "{err:?}"
    );
}

/// Connector and Acceptor from shared configurations, handshake payloads
/// both ways, `get_ref`/`into_inner`, and data that arrives although the
/// writer never flushes.
#[tokio::test]
async fn connector_and_acceptor_carry_payloads_and_write_without_flush() {
    for protocol in [IK, HYBRID_XX] {
        let server_key = StaticSecret::generate(&mut OsRng);
        let client_key = StaticSecret::generate(&mut OsRng);
        let server_config = ServerConfig::new(
            &[protocol],
            HandshakeKeys::new().static_key(server_key.clone()),
        )
        .unwrap()
        // Payload i goes in our i-th handshake message: the server's first
        // (and only) message carries its token, encrypted in both patterns.
        .with_handshake_payloads(vec![b"server token".to_vec()])
        .unwrap();
        let client_config = ClientConfig::new(
            protocol,
            HandshakeKeys::new()
                .static_key(client_key.clone())
                .remote(x_key(&server_key)),
        )
        .unwrap();
        let acceptor = Acceptor::new(Arc::new(server_config));
        let connector = Connector::new(Arc::new(client_config));
        let (a, b) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move {
            let mut stream = acceptor.accept(b).await.unwrap();
            assert_eq!(
                stream.session_info().remote_static.as_ref(),
                Some(&x_key(&client_key))
            );
            let payloads = stream.handshake_payloads().to_vec();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.unwrap();
            // No flush here: the echo must still reach the client.
            stream.write_all(&buf).await.unwrap();
            (payloads, stream)
        });
        // The client's payload rides in its second handshake message (the
        // third of XX; IK has only two messages, so it is not sent).
        let mut stream = connector
            .connect_with_payloads(a, vec![Vec::new(), b"client token".to_vec()])
            .await
            .unwrap();
        let expected_mode = RecordMode::for_protocol(protocol);
        assert_eq!(stream.session_info().mode, expected_mode);
        assert!(stream
            .handshake_payloads()
            .iter()
            .any(|p| p == b"server token"));
        stream.write_all(b"hello").await.unwrap(); // never flushed
        let mut reply = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut reply))
            .await
            .expect("the unflushed write and its echo arrive")
            .unwrap();
        assert_eq!(&reply, b"hello");
        let (payloads, _server_stream) = server.await.unwrap();
        if protocol == HYBRID_XX {
            assert!(
                payloads.iter().any(|p| p == b"client token"),
                "{payloads:?}"
            );
        }
        let _: &tokio::io::DuplexStream = stream.get_ref();
        let (_io, conn) = stream.into_inner();
        assert!(!conn.is_handshaking());
    }
}

#[test]
fn akex_errors_become_io_errors_and_come_back() {
    let cases: Vec<(Error, std::io::ErrorKind)> = vec![
        (
            PeerMisbehaved::UnauthenticatedEof.into(),
            std::io::ErrorKind::UnexpectedEof,
        ),
        (
            PeerMisbehaved::DecryptFailed.into(),
            std::io::ErrorKind::InvalidData,
        ),
        (
            ConfigError::MissingLocalKey.into(),
            std::io::ErrorKind::InvalidInput,
        ),
        (
            akex::error::TrustFailure::RemoteKeyMismatch.into(),
            std::io::ErrorKind::PermissionDenied,
        ),
        (
            Error::Timeout(Duration::from_secs(1)),
            std::io::ErrorKind::TimedOut,
        ),
    ];
    for (err, kind) in cases {
        let text = err.to_string();
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), kind, "{text}");
        assert_eq!(Error::from_io(io).to_string(), text);
    }
    // `?` in a function returning io::Result.
    fn io_result() -> std::io::Result<()> {
        NoiseConfig::new("Noise_nope")?;
        Ok(())
    }
    assert_eq!(
        io_result().unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
}

/// The sans-IO Connection on its own: two of them exchanging bytes through
/// plain vectors, data in both directions, the authenticated close.
#[test]
fn connections_talk_through_plain_buffers() {
    let server_id = SigningKey::generate(&mut OsRng);
    let client_id = SigningKey::generate(&mut OsRng);
    let server = ServerConfig::new(
        &[SIGMA],
        HandshakeKeys::new()
            .signing_key(server_id.clone())
            .remote(PublicKey::ed25519(*client_id.public())),
    )
    .unwrap();
    let client = ClientConfig::new(
        SIGMA,
        HandshakeKeys::new()
            .signing_key(client_id)
            .remote(PublicKey::ed25519(*server_id.public())),
    )
    .unwrap();
    let mut c = Connection::client(&client).unwrap();
    let mut s = Connection::server(&server).unwrap();
    let pump = |from: &mut Connection, to: &mut Connection| {
        let bytes = from.wire_output().to_vec();
        from.consume_wire_output(bytes.len());
        // Deliver byte by byte: frames split anywhere must work.
        for byte in bytes {
            to.read_wire(&[byte]).unwrap();
        }
    };
    while c.is_handshaking() || s.is_handshaking() {
        pump(&mut c, &mut s);
        pump(&mut s, &mut c);
    }
    c.send(b"ping").unwrap();
    pump(&mut c, &mut s);
    assert_eq!(s.next_message(), Some(&b"ping"[..]));
    s.consume_message().unwrap();
    s.send_message(b"pong").unwrap();
    s.close().unwrap();
    pump(&mut s, &mut c);
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"pong");
    assert!(c.is_peer_closed());
    c.read_eof().unwrap();
    // Bytes cut mid-stream without a close are an error in akex mode.
    let mut c2 = Connection::client(&client).unwrap();
    let mut s2 = Connection::server(&server).unwrap();
    while c2.is_handshaking() || s2.is_handshaking() {
        pump(&mut c2, &mut s2);
        pump(&mut s2, &mut c2);
    }
    assert!(matches!(
        s2.read_eof(),
        Err(Error::PeerMisbehaved(PeerMisbehaved::UnauthenticatedEof))
    ));
}
