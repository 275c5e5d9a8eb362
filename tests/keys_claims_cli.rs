//! Promises of docs/key-management.md about the `akex keys` command line
//! that no other test held to their letter: the default store, where the
//! passphrase comes from, the scrypt work factor from the environment,
//! readers that never lock, `trust --statement` and the size of its
//! inputs, one successor per rotated key and one passphrase per store under
//! concurrency, and the message of a build without PKCS#11.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use akex::keys::{KeyStatus, KeyStore, Passphrase};

static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
const PASS: &str = "claims passphrase";

fn cmd() -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("AKEX_PASSPHRASE", PASS)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn keys(store: &Path, args: &[&str]) -> Command {
    let mut c = cmd();
    c.args(["keys", "--store", store.to_str().unwrap()])
        .args(args);
    c
}

fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", support::describe("akex", &out));
    String::from_utf8(out.stdout).unwrap()
}

fn fail(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{}", support::describe("akex", &out));
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

/// Every file of a store but the lock, with its contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for d in ["", "keys", "rotations"] {
        for e in std::fs::read_dir(dir.join(d))
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = e.path();
            if p.is_file() && !p.ends_with("store.lock") {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Waits for `child` at most `limit`; kills it and fails if it takes longer.
fn wait_within(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn the_default_store_is_xdg_data_home_then_home() {
    let dir = tempfile::tempdir().unwrap();
    let (xdg, home) = (dir.path().join("xdg"), dir.path().join("home"));
    let generate = |c: &mut Command| {
        ok(c.args(["keys", "generate", "--name", "k"]));
    };
    generate(cmd().env("XDG_DATA_HOME", &xdg).env("HOME", &home));
    assert!(xdg.join("akex/store.json").exists());
    // Unset or empty: ~/.local/share/akex.
    generate(cmd().env("XDG_DATA_HOME", "").env("HOME", &home));
    assert!(home.join(".local/share/akex/store.json").exists());
    let err = fail(cmd().env_remove("HOME").args(["keys", "list"]));
    assert!(err.contains("XDG_DATA_HOME nor HOME"), "{err}");
}

/// `akex ARGS --passphrase-fd 3 3<FILE` with FILE holding `contents`.
fn with_fd(dir: &Path, contents: &str, args: &str) -> Output {
    let file = dir.join("passfile");
    std::fs::write(&file, contents).unwrap();
    Command::new("bash")
        .arg("-c")
        .arg(format!("exec \"$AKEX\" {args} --passphrase-fd 3 3<\"$F\""))
        .env("AKEX", &*AKEX)
        .env("F", &file)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("AKEX_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn passphrase_lines_descriptors_and_the_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let s = st.to_str().unwrap();
    // A CRLF line: the passphrase is the line without "\r\n".
    let out = with_fd(
        dir.path(),
        &format!("{PASS}\r\nsecond line\n"),
        &format!("keys --store '{s}' generate --name k"),
    );
    assert!(out.status.success(), "{out:?}");
    ok(&mut keys(&st, &["rotate", "--name", "k"]));
    // An empty first line is an error naming the descriptor.
    let out = with_fd(
        dir.path(),
        "\nsecond\n",
        &format!("keys --store '{s}' rotate --name k"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--passphrase-fd 3"),
        "{err}"
    );
    // connect takes it too: the right one loads the key (the connection
    // then fails on the closed port), a wrong one does not.
    let connect = format!(
        "connect --addr 127.0.0.1:9 --protocol Noise_XX_25519_ChaChaPoly_BLAKE2s \
         --store '{s}' --key k"
    );
    let out = with_fd(dir.path(), &format!("{PASS}\n"), &connect);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("passphrase") && text.contains("\"ok\":false"),
        "{text}"
    );
    let out = with_fd(dir.path(), "wrong\n", &connect);
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrong passphrase"));
    // On a terminal (a pseudo-terminal from `script`), a prompt, asked
    // twice for a new key.
    let prompt = |input: &str, name: &str| {
        let mut child = Command::new("script")
            .args(["-qec"])
            .arg(format!(
                "env -u AKEX_PASSPHRASE AKEX_SCRYPT_LOG_N=4 '{}' keys --store '{s}' generate --name {name}",
                AKEX.display()
            ))
            .arg("/dev/null")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script (util-linux)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        wait_within(child, Duration::from_secs(30))
    };
    let out = prompt(&format!("{PASS}\n{PASS}\n"), "t");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("passphrase: "),
        "{out:?}"
    );
    let store = KeyStore::open(&st).unwrap();
    store
        .load("t", Some(&Passphrase::new(PASS.into())))
        .unwrap();
    let out = prompt(&format!("{PASS}\nsomething else\n"), "u");
    assert!(String::from_utf8_lossy(&out.stdout).contains("the passphrases differ"));
    assert!(KeyStore::open(&st).unwrap().find("u").is_none());
}

/// N, r and p of the scrypt parameters in a PKCS#8 key file's first block.
fn scrypt_params(pem: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use base64::Engine;
    const SCRYPT_OID: &[u8] = &[
        0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x04, 0x0b,
    ];
    let body: String = pem
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let at = der.windows(11).position(|w| w == SCRYPT_OID).unwrap() + 11;
    // SEQUENCE { OCTET STRING salt, INTEGER N, INTEGER r, INTEGER p }
    assert_eq!(der[at], 0x30);
    let mut i = at + 2;
    assert_eq!(der[i], 0x04);
    i += 2 + der[i + 1] as usize;
    let mut ints = Vec::new();
    for _ in 0..3 {
        assert_eq!(der[i], 0x02);
        let len = der[i + 1] as usize;
        ints.push(der[i + 2..i + 2 + len].to_vec());
        i += 2 + len;
    }
    (ints[0].clone(), ints[1].clone(), ints[2].clone())
}

#[test]
fn the_scrypt_work_factor_comes_from_the_environment_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    for bad in ["0", "23", "x"] {
        let err = fail(keys(&st, &["generate", "--name", "k"]).env("AKEX_SCRYPT_LOG_N", bad));
        assert!(
            err.contains("AKEX_SCRYPT_LOG_N must be 1..=22"),
            "{bad}: {err}"
        );
    }
    assert!(!st.join("store.json").exists());
    let v: serde_json::Value =
        serde_json::from_str(&ok(
            keys(&st, &["generate", "--name", "k", "--json"]).env("AKEX_SCRYPT_LOG_N", "5")
        ))
        .unwrap();
    let pem = std::fs::read_to_string(st.join(format!("keys/{}.pem", v["id"].as_str().unwrap())))
        .unwrap();
    assert_eq!(scrypt_params(&pem), (vec![32], vec![8], vec![1]));
}

#[test]
fn readers_never_take_the_store_lock() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    ok(&mut keys(&st, &["generate", "--name", "k"]));
    let public = akex::keys::encode_public_key(&[5; 32]);
    ok(&mut keys(
        &st,
        &["trust", "--name", "p", "--public", &public],
    ));
    let before = snapshot(&st);
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(st.join("store.lock"))
        .unwrap();
    lock.lock().unwrap();
    for args in [
        &["list"][..],
        &["show", "--name", "k"],
        &["audit"],
        &["audit", "--verify"],
    ] {
        let out = wait_within(keys(&st, args).spawn().unwrap(), Duration::from_secs(20));
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    // A writer waits for the lock.
    let mut writer = keys(&st, &["generate", "--name", "w"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        writer.try_wait().unwrap().is_none(),
        "a writer ran without the lock"
    );
    assert_eq!(snapshot(&st), before, "a reader wrote");
    drop(lock);
    assert!(wait_within(writer, Duration::from_secs(20))
        .status
        .success());
}

#[test]
fn statements_and_shown_keys_are_read_from_small_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, cli) = (dir.path().join("srv"), dir.path().join("cli"));
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&mut keys(&srv, &["generate", "--name", "s", "--json"]))).unwrap();
    // --public with --signing-public: enough to accept the key's rotation.
    ok(&mut keys(
        &cli,
        &[
            "trust",
            "--name",
            "server",
            "--public",
            shown["public"].as_str().unwrap(),
            "--signing-public",
            shown["signing_public"].as_str().unwrap(),
        ],
    ));
    let rotated: serde_json::Value =
        serde_json::from_str(&ok(&mut keys(&srv, &["rotate", "--name", "s", "--json"]))).unwrap();
    let statement = rotated["statement_file"].as_str().unwrap();
    ok(&mut keys(&cli, &["trust", "--statement", statement]));
    let audit = ok(&mut keys(&cli, &["audit", "--json"]));
    let last: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "trust");
    assert!(last["detail"]
        .as_str()
        .unwrap()
        .starts_with("rotation from"));
    // 64 KiB is the limit of --from and --statement; devices and FIFOs are
    // refused without being read.
    let big = dir.path().join("big.json");
    let mut text = serde_json::to_string(&shown).unwrap().into_bytes();
    text.resize(64 * 1024, b' ');
    std::fs::write(&big, &text).unwrap();
    ok(&mut keys(
        &cli,
        &["trust", "--name", "b", "--from", big.to_str().unwrap()],
    ));
    text.push(b' ');
    std::fs::write(&big, &text).unwrap();
    let err = fail(&mut keys(
        &cli,
        &["trust", "--name", "c", "--from", big.to_str().unwrap()],
    ));
    assert!(err.contains("larger than 65536 bytes"), "{err}");
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for args in [
        ["trust", "--name", "d", "--from", "/dev/zero"],
        ["trust", "--statement", fifo.to_str().unwrap(), "", ""],
    ] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let out = wait_within(keys(&cli, &args).spawn().unwrap(), Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("not a regular file"),
            "{err}"
        );
    }
}

#[test]
fn concurrent_rotations_of_one_key_leave_one_successor() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    ok(&mut keys(&st, &["generate", "--name", "r"]));
    let children: Vec<Child> = (0..4)
        .map(|_| keys(&st, &["rotate", "--name", "r"]).spawn().unwrap())
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "{outs:?}");
    let store = KeyStore::open(&st).unwrap();
    let statuses: Vec<KeyStatus> = store.entries().iter().map(|e| e.status).collect();
    assert_eq!(statuses, [KeyStatus::Retired, KeyStatus::Active]);
    assert_eq!(std::fs::read_dir(st.join("rotations")).unwrap().count(), 1);
    ok(&mut keys(&st, &["audit", "--verify"]));
}

#[test]
fn concurrent_first_keys_never_leave_two_passphrases_in_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let passes = ["first passphrase", "second passphrase"];
    let children: Vec<Child> = (0..8)
        .map(|i| {
            keys(&st, &["generate", "--name", &format!("k{i}")])
                .env("AKEX_PASSPHRASE", passes[i % 2])
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("wrong passphrase"),
            "{err}"
        );
    }
    let store = KeyStore::open(&st).unwrap();
    assert!(!store.entries().is_empty());
    let opens = |p: &str| {
        let pass = Passphrase::new(p.into());
        store
            .entries()
            .iter()
            .all(|e| store.load(&e.name, Some(&pass)).is_ok())
    };
    assert!(
        opens(passes[0]) || opens(passes[1]),
        "keys under two passphrases"
    );
}

/// Without the `pkcs11` feature every token command says so in one line.
#[cfg(not(feature = "pkcs11"))]
#[test]
fn a_build_without_pkcs11_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let uri = "pkcs11:token=t;object=k";
    let out = keys(
        &st,
        &["generate", "--name", "k", "--type", "p256", "--pkcs11", uri],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.lines().count() == 1, "{err}");
    assert!(
        err.contains("PKCS#11: this build of akex has no PKCS#11 support (cargo feature pkcs11)"),
        "{err}"
    );
    let out = cmd()
        .args(["connect", "--addr", "127.0.0.1:9", "--protocol"])
        .args(["akex-sigma-p256-ecdsa-aesgcm-sha256", "--key", uri])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no PKCS#11 support"),
        "{out:?}"
    );
    assert!(!st.join("store.json").exists());
}

#[test]
fn a_damaged_log_is_reported_by_every_command_and_blocks_only_new_trust() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    for name in ["a", "b", "c", "d"] {
        ok(&mut keys(&st, &["generate", "--name", name]));
    }
    let public = akex::keys::encode_public_key(&[5; 32]);
    ok(&mut keys(
        &st,
        &["trust", "--name", "p", "--public", &public],
    ));
    // An interrupted write (the head file lost) is a note, not damage.
    std::fs::remove_file(st.join("audit.head")).unwrap();
    let out = keys(&st, &["audit", "--verify"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("note: interrupted write"),
        "{err}"
    );
    let log = st.join("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("\"generate\"", "\"gEnerate\"", 1)).unwrap();
    // --verify names the first bad line.
    let err = fail(&mut keys(&st, &["audit", "--verify"]));
    assert!(err.contains("audit log line 1"), "{err}");
    // Changes that add trust are refused, with the warning.
    let other = akex::keys::encode_public_key(&[6; 32]);
    for args in [
        &["generate", "--name", "e"][..],
        &["rotate", "--name", "a"],
        &["trust", "--name", "q", "--public", &other],
    ] {
        let err = fail(&mut keys(&st, args));
        assert!(
            err.contains("WARNING: the audit log is damaged"),
            "{args:?}: {err}"
        );
    }
    // Revoke, untrust, destroy and loading go on, warning each time.
    for args in [
        &["revoke", "--name", "b", "--reason", "log damaged"][..],
        &["untrust", "--name", "p"],
        &["destroy", "--name", "c"],
        &["list"],
    ] {
        let out = keys(&st, args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(
            err.contains("WARNING: the audit log is damaged"),
            "{args:?}: {err}"
        );
    }
    let store = KeyStore::open(&st).unwrap();
    store
        .load("d", Some(&Passphrase::new(PASS.into())))
        .unwrap();
    // Their lines are chained to the log's last line: the damage stays
    // the first and only break.
    let err = fail(&mut keys(&st, &["audit", "--verify"]));
    assert!(err.contains("audit log line 1"), "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines[1..].windows(2) {
        let next: serde_json::Value = serde_json::from_str(pair[1]).unwrap();
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(pair[0].as_bytes()));
        assert_eq!(next["prev"], hash.as_str());
    }
}

#[test]
fn expiry_and_overlap_options_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let connect = |key: &str| {
        cmd()
            .args(["connect", "--addr", "127.0.0.1:9", "--protocol"])
            .args(["Noise_XX_25519_ChaChaPoly_BLAKE2s", "--store"])
            .args([st.to_str().unwrap(), "--key", key])
            .output()
            .unwrap()
    };
    // --expires-in 0: expired from the start, never loads.
    let v: serde_json::Value = serde_json::from_str(&ok(&mut keys(
        &st,
        &["generate", "--name", "e", "--expires-in", "0", "--json"],
    )))
    .unwrap();
    assert!(v["expires"].is_u64(), "{v}");
    let out = connect("e");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("expired"),
        "{out:?}"
    );
    // --overlap 0: the old key is retired at once, the new one loads.
    let old: serde_json::Value =
        serde_json::from_str(&ok(&mut keys(&st, &["generate", "--name", "r", "--json"]))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&mut keys(
        &st,
        &["rotate", "--name", "r", "--overlap", "0", "--json"],
    )))
    .unwrap();
    assert_eq!(v["statement"]["overlap_until"], v["statement"]["created"]);
    let store = KeyStore::open(&st).unwrap();
    let pass = Passphrase::new(PASS.into());
    let err = store
        .load(old["id"].as_str().unwrap(), Some(&pass))
        .unwrap_err();
    assert!(err.to_string().contains("retired"), "{err}");
    let out = connect("r");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("retired"),
        "{out:?}"
    );
    // A pin with --expires-in 0 no longer counts.
    let public = akex::keys::encode_public_key(&[5; 32]);
    ok(&mut keys(
        &st,
        &[
            "trust",
            "--name",
            "p",
            "--public",
            &public,
            "--expires-in",
            "0",
        ],
    ));
    let trust =
        akex::keys::TrustStore::open_audited(store.trust_path(), store.audit().clone()).unwrap();
    let mut policy = akex::keys::TrustPolicy::Pinned(trust);
    let err = policy.check(&[5; 32], akex::keys::now_unix()).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
}

/// An unreadable `audit.head` is named by a warning from every `keys`
/// command (as a damaged log is), changes that add trust are refused, and
/// revocation still works.
#[test]
fn an_unreadable_audit_head_is_warned_about_and_revocation_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    ok(keys(&store, &["generate", "--name", "a"]).arg("--insecure-plaintext"));
    std::fs::write(store.join("audit.head"), "garbage\n").unwrap();
    let out = keys(&store, &["list"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("WARNING") && err.contains("audit.head"),
        "{err}"
    );
    fail(keys(&store, &["generate", "--name", "b"]).arg("--insecure-plaintext"));
    ok(&mut keys(
        &store,
        &["revoke", "--name", "a", "--reason", "lost"],
    ));
}
