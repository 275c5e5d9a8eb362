//! The relay: sessions, names, forwarding, limits and the graceful shutdown.

use super::*;

struct Relay {
    peers: Mutex<HashMap<String, Peer>>,
    shutdown: CancellationToken,
    max_message: usize,
    queue: usize,
    hello_timeout: Duration,
    grace: Duration,
    next_id: AtomicU64,
    served: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

/// A registered client as the other sessions see it.
struct Peer {
    id: u64,
    tx: mpsc::Sender<Bytes>,
    kick: Arc<Notify>,
}

/// A session's hold on its name; gives the name back on drop.
struct Registration {
    relay: Arc<Relay>,
    name: String,
    id: u64,
    rx: mpsc::Receiver<Bytes>,
    kick: Arc<Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut peers = self.relay.peers();
        // The name may already belong to a newer session (after a kick).
        if peers.get(&self.name).is_some_and(|p| p.id == self.id) {
            peers.remove(&self.name);
        }
    }
}

impl Relay {
    fn peers(&self) -> MutexGuard<'_, HashMap<String, Peer>> {
        // Every update is a single map operation: a poisoned map is intact.
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(self: &Arc<Self>, name: &str) -> Result<Registration, String> {
        let mut peers = self.peers();
        if peers.contains_key(name) {
            return Err(format!("the name {name} is taken"));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue);
        let kick = Arc::new(Notify::new());
        let peer = Peer {
            id,
            tx,
            kick: kick.clone(),
        };
        peers.insert(name.to_string(), peer);
        Ok(Registration {
            relay: self.clone(),
            name: name.to_string(),
            id,
            rx,
            kick,
        })
    }

    /// Queues `FROM from text` for `to`, or says why not.
    fn forward(&self, from: &str, to: &str, text: &str) -> Result<(), String> {
        let mut peers = self.peers();
        let Some(peer) = peers.get(to) else {
            return Err(format!("no such peer: {to}"));
        };
        match peer.tx.try_send(Bytes::from(format!("FROM {from} {text}"))) {
            Ok(()) => {
                self.forwarded.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                // A slow consumer is dropped, not buffered without bound.
                if let Some(peer) = peers.remove(to) {
                    peer.kick.notify_one();
                }
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Err(format!("{to} was not keeping up and was disconnected"))
            }
            Err(TrySendError::Closed(_)) => Err(format!("no such peer: {to}")),
        }
    }

    /// The answer to one client message, if it needs one.
    fn handle(&self, name: &str, message: &[u8]) -> Option<String> {
        if message.len() > self.max_message {
            return Some(format!(
                "ERR message too large ({} > {} bytes)",
                message.len(),
                self.max_message
            ));
        }
        let Ok(text) = std::str::from_utf8(message) else {
            return Some("ERR messages must be UTF-8 text".into());
        };
        match text.split_once(' ') {
            Some(("TO", rest)) => {
                let (to, body) = rest.split_once(' ').unwrap_or((rest, ""));
                self.forward(name, to, body)
                    .err()
                    .map(|e| format!("ERR {e}"))
            }
            _ => Some("ERR unknown command; send TO <name> <text>".into()),
        }
    }
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn parse_hello(message: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(message).map_err(|_| "HELLO must be UTF-8 text")?;
    match text.strip_prefix("HELLO ") {
        Some(name) if valid_name(name) => Ok(name.to_string()),
        Some(_) => Err(format!(
            "a name is 1 to {MAX_NAME} characters from A-Z a-z 0-9 _ . -"
        )),
        None => Err("the first message must be HELLO <name>".into()),
    }
}

pub(crate) async fn serve(args: ServeArgs) -> Res<()> {
    check_protocol(&args.protocol)?;
    let key = match &args.identity {
        Some(path) => load_identity(path)?,
        None => StaticSecret::generate(&mut OsRng),
    };
    let public = *key.public();
    let keys = HandshakeKeys::new()
        .static_key(key)
        .prologue(PROLOGUE.to_vec());
    registry::check_responder(&[args.protocol.as_str()], &keys)?;
    let fds = raise_fd_limit();
    let (limits, options) = server_limits(&args);
    let relay = Arc::new(Relay {
        peers: Mutex::new(HashMap::new()),
        shutdown: CancellationToken::new(),
        max_message: args.max_message,
        queue: args.queue.max(1),
        hello_timeout: options.handshake_timeout,
        grace: Duration::from_secs(args.grace),
        next_id: AtomicU64::new(0),
        served: AtomicU64::new(0),
        forwarded: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    });
    let server = Server::bind(args.listen, limits, options)
        .await?
        .on_event(log_event);
    let stats = server.stats();
    eprintln!("relay: key {}", encode_public_key(&public));
    eprintln!(
        "relay: listening on {} ({}, up to {} clients, open-file limit {fds})",
        server.local_addr()?,
        args.protocol,
        args.max_clients
    );

    let protocol = args.protocol.clone();
    let token = relay.shutdown.clone();
    let make_handshake = move |_peer: SocketAddr| {
        // While draining, refuse new sessions before any handshake work.
        if token.is_cancelled() {
            return Err(Error::Io(io::Error::other("the relay is shutting down")));
        }
        registry::responder(&[protocol.as_str()], &keys)
    };
    let handler_relay = relay.clone();
    let handler = move |peer: SocketAddr, stream: ServerStream| {
        serve_session(handler_relay.clone(), peer, stream)
    };
    let shutdown = drain(relay.clone(), stats.clone(), args.shutdown_after);
    // Each session waits up to `grace` for the client's close; one more
    // second covers sending ours.
    let grace = relay.grace + Duration::from_secs(1);
    server
        .run_graceful(make_handshake, handler, shutdown, grace)
        .await;

    let s = stats.snapshot();
    println!(
        "relay: shut down: served {} sessions, forwarded {} messages, dropped {} slow clients, \
         rejected {} connections, {} failed handshakes",
        relay.served.load(Ordering::Relaxed),
        relay.forwarded.load(Ordering::Relaxed),
        relay.dropped.load(Ordering::Relaxed),
        s.rejected,
        s.handshakes_failed,
    );
    Ok(())
}

fn server_limits(args: &ServeArgs) -> (ServerLimits, TransportOptions) {
    let limits = ServerLimits {
        max_half_open: args.max_half_open,
        max_half_open_per_ip: args.max_half_open_per_ip,
        max_connections: args.max_clients,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        ..ServerLimits::default()
    };
    // Bound what one peer can make us buffer before decryption.
    let options = TransportOptions::new()
        .handshake_timeout(Duration::from_secs(args.handshake_timeout))
        .max_frame_len((args.max_message + RECORD_OVERHEAD).clamp(MIN_FRAME, 65535));
    (limits, options)
}

/// The server's shutdown future: waits for a trigger and tells every
/// session to close. `Server::run_graceful` then stops accepting and gives
/// the sessions the grace period to send their authenticated closes.
async fn drain(relay: Arc<Relay>, stats: Arc<ServerStats>, after: Option<u64>) {
    let reason = shutdown_signal(after.map(Duration::from_secs)).await;
    eprintln!(
        "relay: {reason}: shutting down, closing {} sessions",
        stats.snapshot().open
    );
    relay.shutdown.cancel();
}

/// The library never prints: the relay logs every connection that failed.
fn log_event(event: &ServerEvent) {
    if let (Some(reason), peer) = (event.failure(), event.peer()) {
        match peer {
            Some(peer) => eprintln!("relay: {peer}: {reason}"),
            None => eprintln!("relay: {reason}"),
        }
    }
}

/// Completes on Ctrl-C, a `quit` line on stdin, or after `after`.
async fn shutdown_signal(after: Option<Duration>) -> &'static str {
    let ctrl_c = async {
        // Without signal support, only the other triggers remain.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let timer = async {
        match after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => "Ctrl-C",
        () = timer => "--shutdown-after",
        () = stdin_quit() => "quit on stdin",
    }
}

/// Completes when stdin has a line `quit`; never at end of input (a relay
/// started with stdin closed keeps running).
async fn stdin_quit() {
    let (tx, rx) = oneshot::channel();
    // A std thread: a blocking read cannot be cancelled, and it must not
    // hold up the runtime's exit.
    std::thread::spawn(move || {
        for line in io::stdin().lines() {
            match line {
                Ok(line) if line.trim() == "quit" => {
                    let _ = tx.send(());
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    if rx.await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How a registered session's loop ended.
enum End {
    ClientClosed,
    Shutdown,
    TooSlow,
}

/// One client, from HELLO to close.
async fn serve_session(
    relay: Arc<Relay>,
    peer: SocketAddr,
    stream: ServerStream,
) -> Result<(), Error> {
    let key = peer_key(stream.session_info());
    let mut messages = stream.into_messages();
    let Some(key) = key else {
        return refuse(
            &relay,
            &mut messages,
            "this protocol does not authenticate clients",
        )
        .await;
    };
    let name = match read_hello(&relay, &mut messages).await {
        Ok(name) => name,
        Err(why) => return refuse(&relay, &mut messages, &why).await,
    };
    let mut registration = match relay.register(&name) {
        Ok(registration) => registration,
        Err(why) => return refuse(&relay, &mut messages, &why).await,
    };
    relay.served.fetch_add(1, Ordering::Relaxed);
    eprintln!("relay: {name} joined from {peer}, key {}", short_key(&key));
    let ended = async {
        send_line(&mut messages, &format!("OK welcome {name}")).await?;
        pump(&relay, &name, &mut messages, &mut registration).await
    }
    .await;
    drop(registration);
    let how = match &ended {
        Ok(End::ClientClosed) => "closed".to_string(),
        Ok(End::Shutdown) => "closed by the shutdown".to_string(),
        Ok(End::TooSlow) => "dropped: too slow".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    // Best effort after a failure; the failure is what gets reported.
    let closed = close_session(&mut messages, relay.grace).await;
    eprintln!("relay: {name} left ({how})");
    ended.and(closed)
}

/// Tells the client why it cannot stay, then closes.
async fn refuse<IO>(relay: &Relay, messages: &mut SecureFramed<IO>, why: &str) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let _ = send_line(messages, &format!("ERR {why}")).await;
    close_session(messages, relay.grace).await
}

/// Waits for `HELLO <name>`; an `Err` is the reason sent back.
async fn read_hello<IO>(relay: &Relay, messages: &mut SecureFramed<IO>) -> Result<String, String>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let first = tokio::select! {
        first = tokio::time::timeout(relay.hello_timeout, messages.next()) => first,
        () = relay.shutdown.cancelled() => return Err("the relay is shutting down".into()),
    };
    match first {
        Err(_) => Err("no HELLO in time".into()),
        Ok(None) => Err("closed before HELLO".into()),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(Some(Ok(message))) => parse_hello(&message),
    }
}

/// Moves messages both ways until the client closes, the relay shuts down
/// or the client falls too far behind.
async fn pump<IO>(
    relay: &Relay,
    name: &str,
    messages: &mut SecureFramed<IO>,
    registration: &mut Registration,
) -> Result<End, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        tokio::select! {
            () = relay.shutdown.cancelled() => return Ok(End::Shutdown),
            () = registration.kick.notified() => return Ok(End::TooSlow),
            Some(line) = registration.rx.recv() => {
                messages.feed(line).await?;
                // One flush for everything already queued (at most --queue).
                while let Ok(line) = registration.rx.try_recv() {
                    messages.feed(line).await?;
                }
                messages.flush().await?;
            }
            message = messages.next() => match message {
                None => return Ok(End::ClientClosed),
                Some(message) => {
                    if let Some(reply) = relay.handle(name, &message?) {
                        send_line(messages, &reply).await?;
                    }
                }
            },
        }
    }
}

pub(crate) async fn send_line<IO>(messages: &mut SecureFramed<IO>, line: &str) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    messages.send(Bytes::copy_from_slice(line.as_bytes())).await
}

/// Sends our authenticated close and waits (up to `grace`) for the peer's,
/// so the peer knows the session ended on purpose and we know it heard us.
pub(crate) async fn close_session<IO>(
    messages: &mut SecureFramed<IO>,
    grace: Duration,
) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        messages.close().await?;
        // Data still in flight from the peer is dropped.
        while let Some(message) = messages.next().await {
            message?;
        }
        Ok(())
    };
    tokio::time::timeout(grace, exchange)
        .await
        .map_err(|_| Error::Timeout(grace))?
}

// ---------------------------------------------------------------- clients
