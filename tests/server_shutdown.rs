//! `Server::run_graceful`: on shutdown the listener closes at once, every
//! handler that was told (through the application's token) gets to send a
//! last message and its authenticated close, and a handler that ignores the
//! shutdown is aborted when the grace period ends. `Server::run` aborts at
//! once (grace zero).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use akex::crypto::OsRng;

use akex::error::Error;
use akex::handshake::hybrid::HYBRID_NK;
use akex::handshake::registry::{self, HandshakeKeys};
use akex::keys::StaticSecret;
use akex::transport::{
    connect, SecureFramed, Server, ServerLimits, ServerStream, TransportOptions,
};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

const CLIENTS: usize = 5;

/// How the handler reacts to the shutdown token.
#[derive(Clone, Copy)]
enum Handler {
    /// Sends "bye" and its authenticated close.
    Polite,
    /// Never looks at the token (only the abort ends it).
    Deaf,
}

struct Running {
    addr: SocketAddr,
    server_public: [u8; 32],
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(handler: Handler, grace: Duration) -> Running {
    let key = StaticSecret::generate(&mut OsRng);
    let server_public = *key.public();
    let keys = HandshakeKeys::new().static_key(key);
    let server = Server::bind(
        "127.0.0.1:0",
        ServerLimits::default(),
        TransportOptions::default(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let token = CancellationToken::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = {
        let token = token.clone();
        async move {
            let _ = stopped.await;
            // Tell the handlers before the server stops accepting.
            token.cancel();
        }
    };
    let serve = move |_peer: SocketAddr, stream: ServerStream| {
        let token = token.clone();
        async move {
            let mut messages = stream.into_messages();
            loop {
                tokio::select! {
                    () = token.cancelled(), if matches!(handler, Handler::Polite) => {
                        messages.send(Bytes::from_static(b"bye")).await?;
                        messages.close().await?;
                        return Ok::<(), Error>(());
                    }
                    message = messages.next() => match message {
                        None => return Ok(()),
                        Some(message) => messages.send(message?.freeze()).await?,
                    },
                }
            }
        }
    };
    let task = tokio::spawn(server.run_graceful(
        move |_peer| registry::responder(&[HYBRID_NK], &keys),
        serve,
        shutdown,
        grace,
    ));
    Running {
        addr,
        server_public,
        stop,
        task,
    }
}

/// A client session that has had one message echoed.
async fn client(addr: SocketAddr, server_public: &[u8; 32]) -> SecureFramed<TcpStream> {
    let keys = HandshakeKeys::new().remote(akex::PublicKey::x25519(*server_public));
    let handshake = registry::initiator(HYBRID_NK, &keys).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let stream = connect(tcp, handshake, &TransportOptions::default())
        .await
        .unwrap();
    let mut messages = stream.into_messages();
    messages.send(Bytes::from_static(b"ping")).await.unwrap();
    let echo = messages.next().await.unwrap().unwrap();
    assert_eq!(&echo[..], b"ping");
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polite_handlers_close_with_a_last_message() {
    let server = start(Handler::Polite, Duration::from_secs(10)).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(client(server.addr, &server.server_public).await);
    }
    server.stop.send(()).unwrap();
    let mut closed = 0;
    for messages in &mut clients {
        let last = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the last message in time")
            .expect("a message, not the end")
            .expect("authentic");
        assert_eq!(&last[..], b"bye");
        // The end is the server's authenticated close, not a cut connection.
        let end = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the close in time");
        assert!(end.is_none(), "expected the authenticated close: {end:?}");
        messages.close().await.unwrap();
        closed += 1;
    }
    assert_eq!(closed, CLIENTS);
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("the server returns once every handler is done")
        .unwrap();
    // The listener is gone.
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deaf_handlers_are_aborted_after_the_grace_period() {
    let grace = Duration::from_millis(300);
    let server = start(Handler::Deaf, grace).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(client(server.addr, &server.server_public).await);
    }
    let started = Instant::now();
    server.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("the grace period bounds the drain")
        .unwrap();
    assert!(
        started.elapsed() >= grace,
        "returned before the grace period"
    );
    // Aborted handlers send no close: each client sees an error (the
    // connection ended without the peer's close), never a clean end.
    let mut cut = 0;
    for messages in &mut clients {
        let end = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the end in time");
        assert!(matches!(end, Some(Err(_))), "{end:?}");
        cut += 1;
    }
    assert_eq!(cut, CLIENTS);
}
