//! A handshake and an echo over blocking `std::net::TcpStream`, driven by
//! akex's sans-IO [`Connection`]: no async runtime, no framing code here.
//!
//! The server and the client run in two threads of this process; each
//! pins the other's X25519 key (hybrid X25519 + ML-KEM-768 XX handshake,
//! akex records with an authenticated close).
//!
//! ```sh
//! cargo run -p akex-example-std-net
//! ```

use std::error::Error;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::thread;

use akex::crypto::OsRng;
use akex::keys::StaticSecret;
use akex::{ClientConfig, Connection, HandshakeKeys, PublicKey, ServerConfig};

const PROTOCOL: &str = "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256";

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Writes everything the connection has queued for the wire.
fn flush(conn: &mut Connection, tcp: &mut TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_to(tcp)?;
    }
    Ok(())
}

/// Runs the handshake: our messages out, the peer's in.
fn handshake(conn: &mut Connection, tcp: &mut TcpStream) -> Res<()> {
    flush(conn, tcp)?;
    while conn.is_handshaking() {
        if conn.read_from(tcp)? == 0 {
            return Err("the peer left during the handshake".into());
        }
        flush(conn, tcp)?;
    }
    Ok(())
}

/// The next whole message, or `None` once the peer closed.
fn receive(conn: &mut Connection, tcp: &mut TcpStream) -> Res<Option<Vec<u8>>> {
    loop {
        if let Some(message) = conn.next_message() {
            let message = message.to_vec();
            conn.consume_message()?;
            return Ok(Some(message));
        }
        if conn.is_peer_closed() {
            return Ok(None);
        }
        // 0 bytes: the stream ended; `read_from` has checked that the end
        // came after the peer's authenticated close.
        if conn.read_from(tcp)? == 0 {
            return Ok(None);
        }
        // Answers to the peer's key updates go out while we read.
        flush(conn, tcp)?;
    }
}

fn serve(listener: TcpListener, config: ServerConfig) -> Res<usize> {
    let (mut tcp, _) = listener.accept()?;
    let mut conn = Connection::server(&config)?;
    handshake(&mut conn, &mut tcp)?;
    let mut echoed = 0;
    while let Some(message) = receive(&mut conn, &mut tcp)? {
        conn.send_message(&message)?;
        flush(&mut conn, &mut tcp)?;
        echoed += 1;
    }
    conn.close()?;
    flush(&mut conn, &mut tcp)?;
    Ok(echoed)
}

fn main() -> Res<()> {
    let server_key = StaticSecret::generate(&mut OsRng);
    let client_key = StaticSecret::generate(&mut OsRng);
    let server_public = PublicKey::x25519(*server_key.public());
    let client_public = PublicKey::x25519(*client_key.public());

    // Both configurations are checked here, once: a typo in the protocol
    // name or a missing key fails now, not at the first connection.
    let server_config = ServerConfig::new(
        &[PROTOCOL],
        HandshakeKeys::new()
            .static_key(server_key)
            .remote(client_public),
    )?;
    let client_config = ClientConfig::new(
        PROTOCOL,
        HandshakeKeys::new()
            .static_key(client_key)
            .remote(server_public.clone()),
    )?;

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || serve(listener, server_config));

    let mut tcp = TcpStream::connect(addr)?;
    let mut conn = Connection::client(&client_config)?;
    handshake(&mut conn, &mut tcp)?;
    let info = conn
        .session_info()
        .ok_or("no session after the handshake")?;
    assert_eq!(info.remote_static.as_ref(), Some(&server_public));
    println!(
        "{PROTOCOL}: handshake hash {}",
        info.handshake_hash
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );

    for text in ["hello", "over blocking std::net", "no runtime needed"] {
        conn.send_message(text.as_bytes())?;
        flush(&mut conn, &mut tcp)?;
        let echo = receive(&mut conn, &mut tcp)?.ok_or("the server closed early")?;
        assert_eq!(echo, text.as_bytes());
        println!("echo: {}", String::from_utf8_lossy(&echo));
    }
    conn.close()?;
    flush(&mut conn, &mut tcp)?;
    // The server answers with its own close; after it the stream ends.
    assert!(receive(&mut conn, &mut tcp)?.is_none());
    let echoed = server.join().map_err(|_| "the server thread panicked")??;
    println!("ok: {echoed} messages echoed, both sides closed with an authenticated close");
    Ok(())
}
