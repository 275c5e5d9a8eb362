//! The interactive client: register a name, then send and print lines.

use super::*;

pub(crate) type Session = SecureFramed<TcpStream>;

/// Connects and runs the handshake, pinning the relay's key if given.
pub(crate) async fn open_session(conn: &ConnectArgs, key: StaticSecret) -> Res<Session> {
    let pinned = conn
        .peer_key
        .as_deref()
        .map(decode_public_key)
        .transpose()?;
    let mut keys = HandshakeKeys::new()
        .static_key(key)
        .prologue(PROLOGUE.to_vec());
    if let Some(pinned) = pinned {
        keys = keys.remote(PublicKey::x25519(pinned));
    }
    let handshake = registry::initiator(&conn.protocol, &keys)?;
    let tcp = TcpStream::connect(&conn.connect).await?;
    let _ = tcp.set_nodelay(true);
    let stream = connect(tcp, handshake, &TransportOptions::default()).await?;
    Ok(stream.into_messages())
}

/// Sends `HELLO name` and returns the relay's answer (`OK ...` or `ERR ...`).
pub(crate) async fn register(session: &mut Session, name: &str, wait: Duration) -> Res<String> {
    send_line(session, &format!("HELLO {name}")).await?;
    let reply = tokio::time::timeout(wait, session.next())
        .await
        .map_err(|_| "no answer to HELLO in time")?
        .ok_or("the relay closed the session without answering HELLO")??;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

pub(crate) async fn client(args: ClientArgs) -> Res<()> {
    check_protocol(&args.conn.protocol)?;
    let key = match &args.identity {
        Some(path) => load_identity(path)?,
        None => StaticSecret::generate(&mut OsRng),
    };
    eprintln!("relay: my key {}", encode_public_key(key.public()));
    let mut session = open_session(&args.conn, key).await?;
    let relay_key = peer_key(session.session_info()).map_or("?".into(), |k| encode_public_key(&k));
    let pinned = if args.conn.peer_key.is_some() {
        "pinned"
    } else {
        "NOT pinned: check it out of band"
    };
    eprintln!("relay: connected, relay key {relay_key} ({pinned})");
    let welcome = register(&mut session, &args.name, Duration::from_secs(30)).await?;
    println!("{}", printable(&welcome));
    if !welcome.starts_with("OK") {
        let _ = close_session(&mut session, Duration::from_secs(5)).await;
        return Err(format!("the relay refused {}: {welcome}", args.name).into());
    }
    eprintln!("relay: type `TO <name> <text>`; Ctrl-D or Ctrl-C to leave");
    chat(session).await
}

/// Sends stdin lines and prints the relay's until a close either way.
async fn chat(mut session: Session) -> Res<()> {
    let mut lines = stdin_lines();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) if line.len() > session.max_payload() => {
                    eprintln!("relay: line too long ({} bytes), not sent", line.len());
                }
                Some(line) => send_line(&mut session, &line).await?,
                None => break,
            },
            _ = &mut ctrl_c => break,
            message = session.next() => match message {
                Some(message) => print_message(&message?),
                None => {
                    eprintln!("relay: authenticated close from the relay");
                    // Answer with ours, so the relay sees a clean end too.
                    session.close().await?;
                    return Ok(());
                }
            },
        }
    }
    // We leave: our close first, the relay's in answer.
    session.close().await?;
    eprintln!("relay: sent an authenticated close; waiting for the relay's");
    let rest = async {
        while let Some(message) = session.next().await {
            print_message(&message?);
        }
        Res::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), rest)
        .await
        .map_err(|_| "the relay did not answer our close")??;
    eprintln!("relay: authenticated close from the relay");
    Ok(())
}

fn print_message(message: &[u8]) {
    println!("{}", printable(&String::from_utf8_lossy(message)));
}

/// Lines from stdin, read on a plain thread (see `stdin_quit`).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        for line in io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The text with control characters escaped, so a peer cannot drive our
/// terminal with escape sequences.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

// ---------------------------------------------------------------- load
