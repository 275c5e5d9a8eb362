//! Many `akex` processes on one store at once: concurrent writers of every
//! kind lose nothing, readers never damage the store, and a revocation made
//! while `serve` runs is enforced on its next handshake and survives the
//! server's own writes and a restart.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use akex::keys::{KeyStatus, KeyStore, Passphrase};
use support::{start_listener, Listener};

static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
const PASS: &str = "concurrency passphrase";
const XX: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("AKEX_PASSPHRASE", PASS)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .args(args);
    c
}

fn keys(store: &Path, args: &[&str]) -> Output {
    let mut all = vec!["keys", "--store", store.to_str().unwrap()];
    all.extend_from_slice(args);
    cmd(&all).output().expect("run akex")
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn spawn_keys(store: &Path, args: &[String]) -> Child {
    let mut all = vec![
        "keys".to_string(),
        "--store".into(),
        store.display().to_string(),
    ];
    all.extend_from_slice(args);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    cmd(&refs).spawn().expect("spawn akex")
}

fn verify(store: &Path) -> Vec<serde_json::Value> {
    ok(keys(store, &["audit", "--verify"]));
    ok(keys(store, &["audit", "--json"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(events: &[serde_json::Value], kind: &str) -> usize {
    events.iter().filter(|e| e["event"] == kind).count()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn twenty_concurrent_generates_leave_twenty_one_identities() {
    let start = Instant::now();
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("store");
        ok(keys(&st, &["generate", "--name", "first"]));
        let children: Vec<Child> = (0..20)
            .map(|i| spawn_keys(&st, &args(&["generate", "--name", &format!("k{i}")])))
            .collect();
        for child in children {
            ok(child.wait_with_output().unwrap());
        }
        let store = KeyStore::open(&st).unwrap();
        assert_eq!(store.entries().len(), 21, "round {round}");
        let pass = Passphrase::new(PASS.into());
        for entry in store.entries() {
            store.load(&entry.name, Some(&pass)).unwrap();
        }
        assert_eq!(count(&verify(&st), "generate"), 21);
        let leftovers: Vec<_> = std::fs::read_dir(&st)
            .unwrap()
            .chain(std::fs::read_dir(st.join("keys")).unwrap())
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    println!("3 rounds of 20 concurrent generates: {:?}", start.elapsed());
}

#[test]
fn writers_of_every_kind_at_once_lose_nothing() {
    let start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let rounds = 3;
    let per = 2; // targets of each kind per round
    for r in 0..rounds {
        for i in 0..per {
            for prefix in ["rot", "rev", "des", "keep"] {
                ok(keys(
                    &st,
                    &["generate", "--name", &format!("{prefix}{r}-{i}")],
                ));
            }
            for prefix in ["unpin", "stay"] {
                let public = akex::keys::encode_public_key(&[(r * 16 + i * 2 + 1) as u8; 32]);
                let name = format!("{prefix}{r}-{i}");
                ok(keys(&st, &["trust", "--name", &name, "--public", &public]));
            }
        }
    }
    let before = verify(&st);
    let mut total_children = 0;
    for r in 0..rounds {
        let mut children = Vec::new();
        for i in 0..per {
            let n = |p: &str| format!("{p}{r}-{i}");
            let public = akex::keys::encode_public_key(&[(200 + r * 10 + i) as u8; 32]);
            for a in [
                args(&["generate", "--name", &n("gen")]),
                args(&["rotate", "--name", &n("rot"), "--overlap", "60"]),
                args(&["revoke", "--name", &n("rev"), "--reason", "test"]),
                args(&["destroy", "--name", &n("des")]),
                args(&["trust", "--name", &n("pin"), "--public", &public]),
                args(&["untrust", "--name", &n("unpin")]),
            ] {
                children.push(spawn_keys(&st, &a));
            }
        }
        total_children += children.len();
        for child in children {
            ok(child.wait_with_output().unwrap());
        }
    }
    let store = KeyStore::open(&st).unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&ok(keys(&st, &["list", "--json"]))).unwrap();
    let pins: Vec<String> = list["pins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let pass = Passphrase::new(PASS.into());
    for r in 0..rounds {
        for i in 0..per {
            let n = |p: &str| format!("{p}{r}-{i}");
            let named = |name: &str| -> Vec<KeyStatus> {
                store
                    .entries()
                    .iter()
                    .filter(|e| e.name == name)
                    .map(|e| e.status)
                    .collect()
            };
            assert_eq!(named(&n("gen")), [KeyStatus::Active]);
            assert_eq!(named(&n("rot")), [KeyStatus::Retired, KeyStatus::Active]);
            assert_eq!(named(&n("rev")), [KeyStatus::Revoked]);
            assert_eq!(named(&n("des")), [KeyStatus::Destroyed]);
            assert_eq!(named(&n("keep")), [KeyStatus::Active]);
            for name in [n("gen"), n("rot"), n("keep")] {
                store.load(&name, Some(&pass)).unwrap();
            }
            assert!(pins.contains(&n("pin")) && pins.contains(&n("stay")));
            assert!(!pins.contains(&n("unpin")));
        }
    }
    let after = verify(&st);
    let k = rounds * per;
    let new: Vec<_> = after[before.len()..].to_vec();
    assert_eq!(count(&new, "generate"), k);
    assert_eq!(count(&new, "rotate"), k);
    assert_eq!(count(&new, "destroy"), k);
    assert_eq!(count(&new, "untrust"), k);
    assert_eq!(count(&new, "trust"), k);
    // A revoke of our own key is one index change and one trust-store change.
    assert_eq!(count(&new, "revoke"), 2 * k);
    assert_eq!(new.len(), 7 * k);
    println!(
        "{rounds} rounds, {total_children} concurrent writers of 6 kinds: {:?}",
        start.elapsed()
    );
}

/// The first writes into a fresh store, pins and keys at once, while this
/// process keeps reading the trust store as a running server would: no
/// reader ever sees a trust file it takes for an edit, and nothing is lost.
#[test]
fn first_pins_at_once_are_never_taken_for_edits() {
    use akex::keys::TrustStore;
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    std::fs::create_dir(&st).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let reads = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(store) = KeyStore::open(&st) {
                    let trust = TrustStore::open_audited(store.trust_path(), store.audit().clone());
                    if let Err(e) = trust {
                        // A store caught before its first index write has
                        // no store.json yet; anything else is a failure.
                        assert!(!e.to_string().contains("trust.json"), "{e}");
                    }
                    // Nor does the log look damaged while writers append.
                    let report = store.audit_report().unwrap();
                    assert!(report.broken.is_none(), "{:?}", report.broken);
                    reads += 1;
                }
            }
            reads
        });
        let mut children = Vec::new();
        for i in 0..8u8 {
            let public = akex::keys::encode_public_key(&[i + 1; 32]);
            children.push(spawn_keys(
                &st,
                &args(&["trust", "--name", &format!("p{i}"), "--public", &public]),
            ));
            children.push(spawn_keys(
                &st,
                &args(&["generate", "--name", &format!("k{i}")]),
            ));
        }
        for child in children {
            ok(child.wait_with_output().unwrap());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap()
    });
    let store = KeyStore::open(&st).unwrap();
    let trust = TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
    assert_eq!(trust.pins().len(), 8);
    assert_eq!(store.entries().len(), 8);
    let events = verify(&st);
    assert_eq!(
        (count(&events, "trust"), count(&events, "generate")),
        (8, 8)
    );
    println!("16 concurrent first writes, {reads} trust-store reads meanwhile");
    assert!(reads > 0);
}

fn serve(store: &Path, extra: &[&str]) -> Listener {
    let mut c = cmd(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--timeout",
        "5",
        "--protocol",
        XX,
    ]);
    c.args(["--store", store.to_str().unwrap()]).args(extra);
    start_listener(&mut c)
}

fn connect(addr: &str, store: &Path, extra: &[&str]) -> Output {
    let mut c = cmd(&[
        "connect",
        "--addr",
        addr,
        "--protocol",
        XX,
        "--messages",
        "1",
    ]);
    c.args(["--store", store.to_str().unwrap()]).args(extra);
    c.output().unwrap()
}

#[test]
fn ten_concurrent_connects_never_damage_the_store() {
    let start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (srv, cli) = (dir.path().join("srv"), dir.path().join("cli"));
    ok(keys(&srv, &["generate", "--name", "server"]));
    ok(keys(&cli, &["generate", "--name", "client"]));
    let server = serve(&srv, &["--key", "server"]);
    for _ in 0..3 {
        let children: Vec<Child> = (0..10)
            .map(|_| {
                let mut c = cmd(&["connect", "--addr", &server.addr, "--protocol", XX]);
                c.args([
                    "--store",
                    cli.to_str().unwrap(),
                    "--key",
                    "client",
                    "--messages",
                    "1",
                ]);
                c.spawn().unwrap()
            })
            .collect();
        for child in children {
            ok(child.wait_with_output().unwrap());
        }
        let events = verify(&cli);
        assert!(count(&events, "load") >= 10);
        ok(keys(&cli, &["list"]));
    }
    let _ = server.stop();
    verify(&srv);
    println!("3 rounds of 10 concurrent connects: {:?}", start.elapsed());
}

fn key_id(store: &Path, name: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ok(keys(store, &["show", "--name", name, "--json"]))).unwrap();
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn a_revocation_reaches_a_running_tofu_server_and_stays() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(keys(&srv, &["generate", "--name", "server"]));
    ok(keys(&a, &["generate", "--name", "a"]));
    ok(keys(&b, &["generate", "--name", "b"]));
    let a_id = key_id(&a, "a");
    let server = serve(&srv, &["--key", "server", "--trust", "tofu"]);
    ok(connect(&server.addr, &a, &["--key", "a"]));
    // Another process revokes A's pin while the server runs.
    let pin = format!("tofu-{}", &a_id[..16]);
    ok(keys(
        &srv,
        &["revoke", "--name", &pin, "--reason", "stolen laptop"],
    ));
    // Refused on the very next handshake.
    let out = connect(&server.addr, &a, &["--key", "a"]);
    assert!(!out.status.success(), "{out:?}");
    // The server pins someone else: the revocation stays on disk.
    ok(connect(&server.addr, &b, &["--key", "b"]));
    let log = server.stop();
    assert!(log.contains("stolen laptop"), "{log}");
    let list: serde_json::Value =
        serde_json::from_str(&ok(keys(&srv, &["list", "--json"]))).unwrap();
    let revoked: Vec<&str> = list["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key_id"].as_str().unwrap())
        .collect();
    assert!(revoked.contains(&a_id.as_str()), "{list}");
    // After a restart with pinned trust: A refused, B accepted.
    let server = serve(&srv, &["--key", "server", "--trust", "pinned"]);
    assert!(!connect(&server.addr, &a, &["--key", "a"]).status.success());
    ok(connect(&server.addr, &b, &["--key", "b"]));
    let _ = server.stop();
    verify(&srv);
}

#[test]
fn pinned_trust_names_the_peer_it_expects() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, cli) = (dir.path().join("srv"), dir.path().join("cli"));
    ok(keys(&srv, &["generate", "--name", "server"]));
    ok(keys(&cli, &["generate", "--name", "client"]));
    let show = dir.path().join("server.json");
    std::fs::write(
        &show,
        ok(keys(&srv, &["show", "--name", "server", "--json"])),
    )
    .unwrap();
    // The server's key is pinned, but as "mail", not as "web".
    ok(keys(
        &cli,
        &["trust", "--name", "mail", "--from", show.to_str().unwrap()],
    ));
    ok(keys(
        &cli,
        &[
            "trust",
            "--name",
            "web",
            "--public",
            &akex::keys::encode_public_key(&[9; 32]),
        ],
    ));
    let server = serve(&srv, &["--key", "server"]);
    let base = ["--key", "client", "--trust", "pinned"];
    let out = connect(&server.addr, &cli, &base);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("--peer NAME"),
        "{out:?}"
    );
    let out = connect(
        &server.addr,
        &cli,
        &[&base[..], &["--peer", "web"]].concat(),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not pinned as \\\"web\\\""),
        "{out:?}"
    );
    ok(connect(
        &server.addr,
        &cli,
        &[&base[..], &["--peer", "mail"]].concat(),
    ));
    let _ = server.stop();
}
