//! End-to-end tests over real loopback sockets: handshakes, the byte
//! stream and message APIs, and what an attacker on the wire can cause.

use std::time::Duration;

use akex::crypto::{OsRng, Secret};

use akex::error::{Error, PeerMisbehaved, TrustFailure};
use akex::handshake::noise::NoiseProtocol;
use akex::keys::StaticSecret;
use akex::transport::{accept, connect, SecureStream, TransportOptions};
use akex::{NoiseConfig, NoiseHandshake, Role};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Keys {
    server: StaticSecret,
    client: StaticSecret,
    psk: Secret<32>,
}

fn keys() -> Keys {
    Keys {
        server: StaticSecret::generate(&mut OsRng),
        client: StaticSecret::generate(&mut OsRng),
        psk: Secret::random(&mut OsRng),
    }
}

/// Each side gets exactly the keys its pattern uses.
fn configs(protocol: &str, k: &Keys) -> (NoiseConfig, NoiseConfig) {
    let p = NoiseProtocol::parse(protocol).unwrap();
    let mut server = NoiseConfig::new(protocol).unwrap();
    let mut client = NoiseConfig::new(protocol).unwrap();
    if p.needs_local_static(Role::Responder) {
        server = server.local_static(k.server.clone());
    }
    if p.needs_local_static(Role::Initiator) {
        client = client.local_static(k.client.clone());
    }
    if p.authenticates_peer_of(Role::Initiator) {
        client = client.remote_static(akex::PublicKey::x25519(*k.server.public()));
    }
    if p.authenticates_peer_of(Role::Responder) {
        server = server.remote_static(akex::PublicKey::x25519(*k.client.public()));
    }
    for _ in p.psk_slots() {
        server = server.psk(k.psk.clone());
        client = client.psk(k.psk.clone());
    }
    (server, client)
}

fn short() -> TransportOptions {
    TransportOptions::new().handshake_timeout(Duration::from_secs(5))
}

async fn pair(
    server: NoiseConfig,
    client: NoiseConfig,
) -> (
    Result<SecureStream<TcpStream>, Error>,
    Result<SecureStream<TcpStream>, Error>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept(tcp, Box::new(NoiseHandshake::responder(server)?), &short()).await
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client = connect(
        tcp,
        Box::new(NoiseHandshake::initiator(client).unwrap()),
        &short(),
    )
    .await;
    (server_task.await.unwrap(), client)
}

#[tokio::test]
async fn every_required_pattern_completes_and_streams_bytes() {
    let k = keys();
    for protocol in [
        "Noise_NN_25519_ChaChaPoly_BLAKE2s",
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        "Noise_IK_25519_AESGCM_SHA256",
        "Noise_KK_25519_ChaChaPoly_SHA512",
        "Noise_NK_25519_AESGCM_BLAKE2b",
        "Noise_XXpsk3_25519_ChaChaPoly_SHA256",
        "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s",
    ] {
        let (server, client) = configs(protocol, &k);
        let (server, client) = pair(server, client).await;
        let (mut server, mut client) = (server.unwrap(), client.unwrap());
        let (si, ci) = (server.session_info().clone(), client.session_info().clone());
        assert_eq!(si.handshake_hash, ci.handshake_hash, "{protocol}");
        assert_eq!(si.protocol, protocol);
        let p = NoiseProtocol::parse(protocol).unwrap();
        if p.authenticates_peer_of(Role::Initiator) {
            assert_eq!(ci.remote_static.as_deref(), Some(&k.server.public()[..]));
        }
        if p.authenticates_peer_of(Role::Responder) {
            assert_eq!(si.remote_static.as_deref(), Some(&k.client.public()[..]));
        } else {
            assert_eq!(si.remote_static, None, "{protocol}");
        }

        // 200 KiB crosses several 64 KiB message boundaries.
        let data: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&data).await.unwrap();
            client.shutdown().await.unwrap();
            client
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, expected, "{protocol}");
        let mut client = writer.await.unwrap();
        server.write_all(b"bye").await.unwrap();
        server.flush().await.unwrap();
        let mut bye = [0u8; 3];
        client.read_exact(&mut bye).await.unwrap();
        assert_eq!(&bye, b"bye");
    }
}

#[tokio::test]
async fn message_api_and_no_bytes_lost_on_switch() {
    let k = keys();
    let (server, client) = configs("Noise_XX_25519_ChaChaPoly_BLAKE2s", &k);
    let (server, client) = pair(server, client).await;
    let (mut server, client) = (server.unwrap(), client.unwrap());
    let mut client = client.into_messages();
    // Queue several messages before the server reads anything, so they sit
    // in the server's read buffer together with the last handshake bytes.
    for i in 0..5u8 {
        client
            .feed(Bytes::from(vec![i; 10 + i as usize]))
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    // Read half of the first message as bytes, then switch to messages.
    let mut first = [0u8; 5];
    server.read_exact(&mut first).await.unwrap();
    assert_eq!(first, [0u8; 5]);
    let mut server = server.into_messages();
    let rest = server.next().await.unwrap().unwrap();
    assert_eq!(&rest[..], &[0u8; 5]);
    for i in 1..5u8 {
        let m = server.next().await.unwrap().unwrap();
        assert_eq!(&m[..], &vec![i; 10 + i as usize][..]);
    }
    assert_eq!(server.session().receiving().nonce(), 5);
    drop(client);
    assert!(server.next().await.is_none());
}

#[tokio::test]
async fn wrong_remote_key_is_rejected() {
    let k = keys();
    let impostor = StaticSecret::generate(&mut OsRng);
    // XX: the client pinned the real server key; an impostor server answers.
    let (_, client) = configs("Noise_XX_25519_ChaChaPoly_BLAKE2s", &k);
    let server = NoiseConfig::new("Noise_XX_25519_ChaChaPoly_BLAKE2s")
        .unwrap()
        .local_static(impostor.clone());
    let (server, client) = pair(server, client).await;
    assert!(matches!(
        client,
        Err(Error::PeerNotTrusted(TrustFailure::RemoteKeyMismatch))
    ));
    // The client never sent its identity, so the server sees the connection close.
    assert!(matches!(
        server,
        Err(Error::PeerMisbehaved(PeerMisbehaved::ClosedDuringHandshake))
    ));

    // IK: the client encrypts to the wrong server key; the server cannot decrypt.
    let (_, client) = configs("Noise_IK_25519_ChaChaPoly_BLAKE2s", &k);
    let server = NoiseConfig::new("Noise_IK_25519_ChaChaPoly_BLAKE2s")
        .unwrap()
        .local_static(impostor);
    let (server, client) = pair(server, client).await;
    assert!(matches!(
        server,
        Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))
    ));
    assert!(client.is_err());
}

#[tokio::test]
async fn wrong_psk_fails_both_sides() {
    let k = keys();
    let (server, _) = configs("Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s", &k);
    let wrong = Keys {
        psk: Secret::random(&mut OsRng),
        server: k.server.clone(),
        client: k.client.clone(),
    };
    let (_, client) = configs("Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s", &wrong);
    let (server, client) = pair(server, client).await;
    assert!(matches!(
        server,
        Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))
    ));
    // psk3 is mixed in by the client's last message, so the client only
    // learns of the mismatch when the server hangs up instead of answering.
    let mut client = client.unwrap().into_messages();
    client.send(Bytes::from_static(b"hello?")).await.ok();
    assert!(client.next().await.is_none());
}

/// Frame directions of an XX handshake followed by one echoed message
/// (true = client to server).
const XX_ECHO_DIRECTIONS: [bool; 5] = [true, false, true, true, false];

/// A man in the middle that flips one bit of frame `target` (counting the
/// frames of both directions in order) and forwards everything else.
async fn tampering_proxy(upstream: std::net::SocketAddr, target: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut down, _) = listener.accept().await.unwrap();
        let mut up = TcpStream::connect(upstream).await.unwrap();
        for (index, from_client) in XX_ECHO_DIRECTIONS.into_iter().enumerate() {
            let (src, dst) = if from_client {
                (&mut down, &mut up)
            } else {
                (&mut up, &mut down)
            };
            let mut len = [0u8; 2];
            if src.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
            if src.read_exact(&mut body).await.is_err() {
                return;
            }
            if index == target {
                let last = body.len() - 1;
                body[last / 2] ^= 0x01;
            }
            if dst.write_all(&len).await.is_err() || dst.write_all(&body).await.is_err() {
                return;
            }
        }
    });
    addr
}

#[tokio::test]
async fn tampering_any_handshake_or_transport_frame_is_detected() {
    let k = keys();
    // XX has three handshake frames; frame 3 is the client's first transport
    // message, frame 4 the server's echo.
    for target in 0..5 {
        let (server_cfg, client_cfg) = configs("Noise_XX_25519_ChaChaPoly_BLAKE2s", &k);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let stream = accept(
                tcp,
                Box::new(NoiseHandshake::responder(server_cfg)?),
                &short(),
            )
            .await?;
            let mut messages = stream.into_messages();
            let m = messages
                .next()
                .await
                .ok_or(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage))??;
            messages.send(m.freeze()).await?;
            Ok::<(), Error>(())
        });
        let proxy = tampering_proxy(server_addr, target).await;
        let tcp = TcpStream::connect(proxy).await.unwrap();
        let client = async {
            let stream = connect(
                tcp,
                Box::new(NoiseHandshake::initiator(client_cfg)?),
                &short(),
            )
            .await?;
            let mut messages = stream.into_messages();
            messages.send(Bytes::from_static(b"ping")).await?;
            let m = messages
                .next()
                .await
                .ok_or(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage))??;
            Ok::<_, Error>(m)
        }
        .await;
        let server = server.await.unwrap();
        // Exactly one side detects the flipped bit: the reader of that frame
        // (or, for message 1's plaintext ephemeral key, the initiator when it
        // reads message 2).
        let decrypt_failures = [&server.as_ref().err(), &client.as_ref().err()]
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Some(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))
                )
            })
            .count();
        assert_eq!(
            decrypt_failures, 1,
            "frame {target}: server={server:?} client={client:?}"
        );
        assert!(client.is_err(), "frame {target}: tampering went unnoticed");
    }
}

#[tokio::test]
async fn replayed_transport_message_is_rejected() {
    let k = keys();
    let (server_cfg, client_cfg) = configs("Noise_NN_25519_ChaChaPoly_BLAKE2s", &k);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let stream = accept(
            tcp,
            Box::new(NoiseHandshake::responder(server_cfg)?),
            &short(),
        )
        .await?;
        let mut messages = stream.into_messages();
        let first = messages.next().await.unwrap()?;
        assert_eq!(&first[..], b"once");
        let replay = messages.next().await.unwrap().map(|_| ());
        // A valid message after the failure is refused too: errors are final.
        let after = messages.next().await.unwrap().map(|_| ());
        Ok::<_, Error>((replay, after))
    });
    // A raw client: run the handshake by hand, then send the same frame twice.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut hs = NoiseHandshake::initiator(client_cfg).unwrap();
    use akex::Handshake;
    let mut msg = Vec::new();
    hs.write_message(b"", &mut msg).unwrap();
    tcp.write_all(&(msg.len() as u16).to_be_bytes())
        .await
        .unwrap();
    tcp.write_all(&msg).await.unwrap();
    let mut len = [0u8; 2];
    tcp.read_exact(&mut len).await.unwrap();
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    tcp.read_exact(&mut reply).await.unwrap();
    hs.read_message(&reply, &mut Vec::new()).unwrap();
    let mut session = akex::Session::new(Box::new(hs).finish().unwrap());
    let mut frame = Vec::new();
    session.seal(b"once", &mut frame).unwrap();
    for _ in 0..2 {
        tcp.write_all(&(frame.len() as u16).to_be_bytes())
            .await
            .unwrap();
        tcp.write_all(&frame).await.unwrap();
    }
    let mut valid = Vec::new();
    session.seal(b"valid but too late", &mut valid).unwrap();
    tcp.write_all(&(valid.len() as u16).to_be_bytes())
        .await
        .unwrap();
    tcp.write_all(&valid).await.unwrap();
    let (replay, after) = server.await.unwrap().unwrap();
    assert!(matches!(
        replay,
        Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))
    ));
    assert!(matches!(
        after,
        Err(Error::ApiMisuse(akex::error::ApiMisuse::StreamFailed))
    ));
}

async fn server_result_for_raw_client(bytes: &'static [u8], options: TransportOptions) -> Error {
    let k = keys();
    let (server_cfg, _) = configs("Noise_XX_25519_ChaChaPoly_BLAKE2s", &k);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept(
            tcp,
            Box::new(NoiseHandshake::responder(server_cfg)?),
            &options,
        )
        .await
        .map(|_| ())
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), server).await;
    drop(tcp);
    result.expect("server must not hang").unwrap().unwrap_err()
}

#[tokio::test]
async fn hostile_first_messages_get_typed_errors() {
    // A length prefix announcing 5 bytes, then 2 bytes and EOF.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let k = keys();
    let (server_cfg, _) = configs("Noise_XX_25519_ChaChaPoly_BLAKE2s", &k);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let r = accept(
            tcp,
            Box::new(NoiseHandshake::responder(server_cfg)?),
            &short(),
        )
        .await
        .map(|_| ());
        let _ = tx.send(());
        r
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"\x00\x05ab").await.unwrap();
    tcp.shutdown().await.unwrap();
    let _ = rx.await;
    assert!(matches!(
        server.await.unwrap(),
        Err(Error::PeerMisbehaved(PeerMisbehaved::TruncatedFrame))
    ));

    // A frame too short to hold an ephemeral key.
    let err = server_result_for_raw_client(b"\x00\x03abc", short()).await;
    assert!(
        matches!(err, Error::PeerMisbehaved(PeerMisbehaved::BadMessageLength)),
        "{err:?}"
    );

    // A frame over the configured limit.
    let small = TransportOptions::new().max_frame_len(100);
    let err = server_result_for_raw_client(b"\x01\x00", small).await;
    assert!(
        matches!(err, Error::PeerMisbehaved(PeerMisbehaved::FrameTooLarge)),
        "{err:?}"
    );

    // A client that sends nothing: the handshake deadline fires.
    let quick = TransportOptions::new().handshake_timeout(Duration::from_millis(200));
    let err = server_result_for_raw_client(b"", quick).await;
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
}

#[tokio::test]
async fn peer_closing_mid_handshake_is_reported() {
    let k = keys();
    let (_, client_cfg) = configs("Noise_XX_25519_ChaChaPoly_BLAKE2s", &k);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Read message 1, then hang up.
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 34];
        let _ = tcp.read_exact(&mut buf).await;
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let err = connect(
        tcp,
        Box::new(NoiseHandshake::initiator(client_cfg).unwrap()),
        &short(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PeerMisbehaved(PeerMisbehaved::ClosedDuringHandshake)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn session_errors_surface_through_async_read() {
    let k = keys();
    let (server_cfg, client_cfg) = configs("Noise_NN_25519_ChaChaPoly_BLAKE2s", &k);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut stream = accept(
            tcp,
            Box::new(NoiseHandshake::responder(server_cfg).unwrap()),
            &short(),
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.unwrap_err()
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = connect(
        tcp,
        Box::new(NoiseHandshake::initiator(client_cfg).unwrap()),
        &short(),
    )
    .await
    .unwrap();
    // Write a frame of garbage under the session's framing.
    let mut tcp = stream_into_tcp(stream);
    tcp.write_all(b"\x00\x14garbage-garbage-garb")
        .await
        .unwrap();
    let io_err = server.await.unwrap();
    let err = Error::from_io(io_err);
    assert!(
        matches!(err, Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)),
        "{err:?}"
    );
}

fn stream_into_tcp(stream: SecureStream<TcpStream>) -> TcpStream {
    // The test only needs the raw socket back; dup it through std.
    let std = stream.get_ref().peer_addr().map(|_| ()).ok();
    assert!(std.is_some());
    let fd = stream.get_ref();
    let cloned = socket2_clone(fd);
    drop(stream);
    cloned
}

fn socket2_clone(tcp: &TcpStream) -> TcpStream {
    use std::os::fd::{AsFd, OwnedFd};
    let owned: OwnedFd = tcp.as_fd().try_clone_to_owned().unwrap();
    let std_tcp = std::net::TcpStream::from(owned);
    std_tcp.set_nonblocking(true).unwrap();
    TcpStream::from_std(std_tcp).unwrap()
}
