//! The load generator: many sessions at once, messages in a ring, closes.

use super::*;

pub(crate) async fn load(args: LoadArgs) -> Res<()> {
    check_protocol(&args.conn.protocol)?;
    let fds = raise_fd_limit();
    if (fds as usize) < args.clients + 64 {
        eprintln!(
            "load: warning: open-file limit {fds} is low for {} clients",
            args.clients
        );
    }
    let phase = Duration::from_secs(args.timeout);
    let conn = Arc::new(args.conn);
    let names: Arc<Vec<String>> = Arc::new(
        (0..args.clients)
            .map(|i| format!("load{}-{i}", std::process::id()))
            .collect(),
    );
    let start = Instant::now();
    let (sessions, connect_failures) =
        connect_all(&conn, &names, args.concurrency.max(1), phase).await;
    let connect_time = start.elapsed();
    eprintln!(
        "load: {} of {} sessions open in {:.2} s",
        sessions.len(),
        args.clients,
        connect_time.as_secs_f64()
    );

    let start = Instant::now();
    let (sessions, delivered, exchange_failures) =
        exchange_all(sessions, &names, args.messages, phase).await;
    let exchange_time = start.elapsed();
    if args.hold {
        eprintln!(
            "load: holding {} sessions open until the relay closes them",
            sessions.len()
        );
    }
    let count = sessions.len();
    let (closes, close_failures) = close_all(sessions, args.hold, phase).await;
    let failures = connect_failures + exchange_failures + close_failures;
    println!(
        "load: {} clients, {count} sessions, {delivered} messages delivered, {closes} authenticated \
         closes, {failures} failures (connect {:.2} s, exchange {:.2} s)",
        args.clients,
        connect_time.as_secs_f64(),
        exchange_time.as_secs_f64()
    );
    if failures > 0 {
        return Err(format!("{failures} of {} clients failed", args.clients).into());
    }
    Ok(())
}

/// Opens and registers a session per name, `concurrency` at a time.
/// Returns the open ones (by index) and how many failed.
async fn connect_all(
    conn: &Arc<ConnectArgs>,
    names: &Arc<Vec<String>>,
    concurrency: usize,
    phase: Duration,
) -> (Vec<(usize, Session)>, usize) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for i in 0..names.len() {
        let (conn, names, permits) = (conn.clone(), names.clone(), permits.clone());
        tasks.spawn(async move {
            // Held until the relay answers HELLO, i.e. until its side of
            // the handshake is done too: that keeps us under its limit.
            let _permit = permits.acquire_owned().await?;
            let mut session = open_session(&conn, StaticSecret::generate(&mut OsRng)).await?;
            let reply = register(&mut session, &names[i], phase).await?;
            if !reply.starts_with("OK") {
                return Err(format!("{}: {reply}", names[i]).into());
            }
            Res::Ok((i, session))
        });
    }
    let joined = tokio::time::timeout(phase, collect(&mut tasks)).await;
    let results = joined.unwrap_or_else(|_| vec![Err("connect phase timed out".into())]);
    let mut open = Vec::new();
    let mut failures = names.len();
    for result in results {
        match result {
            Ok(session) => {
                open.push(session);
                failures -= 1;
            }
            Err(e) => report_failure(&e),
        }
    }
    open.sort_by_key(|(i, _)| *i);
    (open, failures)
}

/// Each session sends `count` messages to the next open one (a ring) and
/// expects as many from the previous one. Returns the sessions that got
/// all theirs, the messages delivered and the failures.
async fn exchange_all(
    sessions: Vec<(usize, Session)>,
    names: &[String],
    count: usize,
    phase: Duration,
) -> (Vec<Session>, usize, usize) {
    let order: Vec<usize> = sessions.iter().map(|(i, _)| *i).collect();
    let n = order.len();
    let mut tasks = JoinSet::new();
    for (k, (i, session)) in sessions.into_iter().enumerate() {
        let to = names[order[(k + 1) % n]].clone();
        let from = names[order[(k + n - 1) % n]].clone();
        let me = names[i].clone();
        tasks.spawn(async move {
            tokio::time::timeout(phase, exchange(session, me, to, from, count))
                .await
                .map_err(|_| "exchange timed out")?
        });
    }
    let (mut done, mut failures) = (Vec::new(), 0);
    for result in collect(&mut tasks).await {
        match result {
            Ok(session) => done.push(session),
            Err(e) => {
                failures += 1;
                report_failure(&e);
            }
        }
    }
    let delivered = done.len() * count;
    (done, delivered, failures)
}

async fn exchange(
    mut session: Session,
    me: String,
    to: String,
    from: String,
    count: usize,
) -> Res<Session> {
    for j in 0..count {
        session
            .feed(Bytes::from(format!("TO {to} {me} message {j}")))
            .await?;
    }
    session.flush().await?;
    let expected = format!("FROM {from} {from} message ");
    for _ in 0..count {
        let message = session
            .next()
            .await
            .ok_or("the relay closed before all messages arrived")??;
        let text = String::from_utf8_lossy(&message);
        if !text.starts_with(&expected) {
            return Err(format!("{me}: unexpected {text:?}").into());
        }
    }
    Ok(session)
}

/// Ends every session: we close first and the relay answers, or with
/// `hold` the relay closes first (its shutdown) and we answer. Returns the
/// authenticated closes received from the relay and the failures.
async fn close_all(sessions: Vec<Session>, hold: bool, phase: Duration) -> (usize, usize) {
    let mut tasks = JoinSet::new();
    for session in sessions {
        tasks.spawn(end_session(session, hold, phase));
    }
    let (mut closes, mut failures) = (0, 0);
    for result in collect(&mut tasks).await {
        match result {
            Ok(()) => closes += 1,
            Err(e) => {
                failures += 1;
                report_failure(&e);
            }
        }
    }
    (closes, failures)
}

async fn end_session(mut session: Session, hold: bool, phase: Duration) -> Res<()> {
    if hold {
        // The relay closes first (its shutdown); we answer.
        relay_close(&mut session).await?;
        session.close().await?;
        return Ok(());
    }
    session.close().await?;
    tokio::time::timeout(phase, relay_close(&mut session))
        .await
        .map_err(|_| "no close from the relay in time")?
}

/// `None` comes only after the relay's authenticated close; an end of
/// stream without it is an error.
async fn relay_close(session: &mut Session) -> Res<()> {
    while let Some(message) = session.next().await {
        message?;
    }
    Ok(())
}

async fn collect<T: 'static>(tasks: &mut JoinSet<Res<T>>) -> Vec<Res<T>> {
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.unwrap_or_else(|e| Err(e.to_string().into())));
    }
    results
}

/// Prints the first failures only: thousands of identical lines help nobody.
fn report_failure(error: &dyn std::fmt::Display) {
    static SHOWN: AtomicU64 = AtomicU64::new(0);
    if SHOWN.fetch_add(1, Ordering::Relaxed) < 10 {
        eprintln!("load: failure: {error}");
    }
}

/// Raises the soft limit on open files to the hard limit (thousands of
/// clients need thousands of descriptors); returns the limit in force.
pub(crate) fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard))
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() =>
        {
            hard
        }
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}
