//! The store's write protocol as the kernel sees it (`strace`): every state
//! file is written to a `.<name>.tmp-*` file created exclusively with mode
//! 0600 in the same directory, fsynced, renamed over the old one, and the
//! directory fsynced; all of it under the store lock. Audit lines are
//! appended and fsynced. `destroy` commits first, then overwrites the key
//! file in place, fsyncs, unlinks it and fsyncs the directory. Skipped,
//! with the reason printed, where strace cannot run.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

static AKEX: std::sync::LazyLock<PathBuf> = std::sync::LazyLock::new(support::akex_binary);

#[derive(Debug)]
struct Call {
    /// Seconds, with `-ttt`.
    time: f64,
    name: String,
    args: String,
    ret: String,
}

impl Call {
    /// The first quoted argument (a path).
    fn path(&self) -> Option<&str> {
        self.args.split('"').nth(1)
    }

    fn quoted(&self, n: usize) -> Option<&str> {
        self.args.split('"').nth(2 * n + 1)
    }

    fn fd_arg(&self) -> &str {
        self.args.split([',', ')']).next().unwrap_or("")
    }
}

fn parse(text: &str) -> Vec<Call> {
    text.lines()
        .filter(|l| !l.contains("unfinished") && !l.contains("resumed>"))
        .filter_map(|l| {
            let mut l = l.split_once(' ')?.1.trim_start();
            let mut time = 0.0;
            if let Some((t, rest)) = l.split_once(' ') {
                if let Ok(t) = t.parse::<f64>() {
                    (time, l) = (t, rest);
                }
            }
            let (name, rest) = l.split_once('(')?;
            // strace pads short calls: "flock(3, LOCK_EX)      = 0".
            let (args, ret) = rest.rsplit_once(" = ")?;
            let args = args.trim_end().strip_suffix(')')?;
            Some(Call {
                time,
                name: name.into(),
                args: args.into(),
                ret: ret.split_whitespace().next().unwrap_or("").into(),
            })
        })
        .collect()
}

/// Runs `akex keys --store STORE ARGS` under strace; `None` if strace is
/// not available here.
fn traced(store: &Path, args: &[&str]) -> Option<Vec<Call>> {
    traced_with(store, args, &[])
}

/// `akex keys --store STORE ARGS` with the tests' passphrase and a fast
/// scrypt; under `strace` with those options when `strace` is not empty.
fn keys_command(strace: &[&str], store: &Path, args: &[&str]) -> Command {
    let mut c = if strace.is_empty() {
        Command::new(&*AKEX)
    } else {
        let mut c = Command::new("strace");
        c.args(strace).arg(&*AKEX);
        c
    };
    c.args(["keys", "--store", store.to_str().unwrap()])
        .args(args)
        .env("AKEX_PASSPHRASE", "syscalls")
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    c
}

/// [`traced`] with extra environment.
fn traced_with(store: &Path, args: &[&str], env: &[(&str, &str)]) -> Option<Vec<Call>> {
    let out_file = store.with_extension("strace");
    let status = keys_command(
        &[
            "-f",
            "-qq",
            "-ttt",
            "-s",
            "0",
            "-o",
            out_file.to_str().unwrap(),
            "-e",
            "trace=openat,write,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,close,\
             flock",
        ],
        store,
        args,
    )
    .envs(env.iter().copied())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status();
    let text = std::fs::read_to_string(&out_file).unwrap_or_default();
    match status {
        Ok(s) if s.success() && !text.is_empty() => Some(parse(&text)),
        Ok(s) if text.is_empty() => {
            println!("SKIPPED: strace could not trace akex here ({s})");
            None
        }
        Ok(s) => panic!("akex keys {args:?} failed under strace: {s}\n{text}"),
        Err(e) => {
            println!("SKIPPED: strace is not installed ({e})");
            None
        }
    }
}

fn position(calls: &[Call], from: usize, f: impl Fn(&Call) -> bool) -> Option<usize> {
    calls[from..].iter().position(f).map(|i| i + from)
}

/// Checks every rename into `store` against the atomic-write protocol and
/// returns how many it checked.
fn check_atomic_writes(calls: &[Call], store: &Path) -> usize {
    let lock = position(calls, 0, |c| {
        c.name == "flock" && c.args.contains("LOCK_EX")
    })
    .expect("the store lock is taken");
    let mut checked = 0;
    for (i, c) in calls.iter().enumerate() {
        if c.name != "rename"
            || !c
                .quoted(1)
                .is_some_and(|p| p.starts_with(store.to_str().unwrap()))
        {
            continue;
        }
        let (tmp, dest) = (
            Path::new(c.quoted(0).unwrap()),
            Path::new(c.quoted(1).unwrap()),
        );
        let base = dest.file_name().unwrap().to_str().unwrap();
        let tmp_name = tmp.file_name().unwrap().to_str().unwrap();
        assert_eq!(tmp.parent(), dest.parent(), "{c:?}");
        assert!(tmp_name.starts_with(&format!(".{base}.tmp-")), "{c:?}");
        let open = position(calls, 0, |o| o.name == "openat" && o.path() == tmp.to_str())
            .expect("the temporary file is opened");
        let o = &calls[open];
        assert!(
            o.args.contains("O_CREAT|O_EXCL") && o.args.ends_with("0600"),
            "{o:?}"
        );
        assert!(open > lock, "{base} written before the lock was taken");
        let fd = o.ret.clone();
        let fsync = position(calls, open, |f| f.name == "fsync" && f.fd_arg() == fd)
            .expect("the temporary file is fsynced");
        let close = position(calls, open, |f| f.name == "close" && f.fd_arg() == fd).unwrap();
        let written = calls[open..close]
            .iter()
            .any(|w| w.name == "write" && w.fd_arg() == fd);
        assert!(
            written && fsync < close && close < i,
            "{base}: write, fsync, close, rename"
        );
        // Then the directory is opened and fsynced, before anything else
        // is renamed.
        let dir = position(calls, i, |d| {
            d.name == "openat" && d.path() == dest.parent().and_then(Path::to_str)
        })
        .expect("the directory is opened");
        let dfd = calls[dir].ret.clone();
        let dsync = position(calls, dir, |f| f.name == "fsync" && f.fd_arg() == dfd).unwrap();
        let next = position(calls, i + 1, |r| r.name == "rename").unwrap_or(calls.len());
        assert!(
            dsync < next,
            "{base}: the directory is fsynced after the rename"
        );
        checked += 1;
    }
    // Audit lines: appended, fsynced before the file is closed.
    for (i, c) in calls.iter().enumerate() {
        if c.name == "openat"
            && c.path().is_some_and(|p| p.ends_with("audit.jsonl"))
            && c.args.contains("O_APPEND")
        {
            let close = position(calls, i, |f| f.name == "close" && f.fd_arg() == c.ret).unwrap();
            let fsync = position(calls, i, |f| f.name == "fsync" && f.fd_arg() == c.ret).unwrap();
            assert!(fsync < close && c.args.ends_with("0600"), "{c:?}");
        }
    }
    checked
}

/// The last rename to a path containing `part` (the commit, for the index:
/// a new store's first write also creates an empty one).
fn renamed(calls: &[Call], part: &str) -> usize {
    calls
        .iter()
        .rposition(|c| c.name == "rename" && c.quoted(1).is_some_and(|p| p.contains(part)))
        .unwrap_or_else(|| panic!("nothing renamed to *{part}*"))
}

#[test]
fn state_files_are_replaced_atomically_and_destroy_overwrites_then_unlinks() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let Some(generate) = traced(&st, &["generate", "--name", "a"]) else {
        return;
    };
    // The key file is complete under its final name before the index
    // commits it.
    assert!(renamed(&generate, "/keys/") < renamed(&generate, "store.json"));
    assert!(check_atomic_writes(&generate, &st) >= 3);
    let public = akex::keys::encode_public_key(&[1; 32]);
    let trust = traced(&st, &["trust", "--name", "p", "--public", &public]).unwrap();
    renamed(&trust, "trust.json");
    check_atomic_writes(&trust, &st);
    let rotate = traced(&st, &["rotate", "--name", "a"]).unwrap();
    assert!(renamed(&rotate, "/rotations/") < renamed(&rotate, "store.json"));
    check_atomic_writes(&rotate, &st);

    let store = akex::keys::KeyStore::open(&st).unwrap();
    let entry = store.find("a").unwrap().clone();
    let key = st.join(entry.file());
    let len = std::fs::metadata(&key).unwrap().len();
    let destroy = traced(&st, &["destroy", "--name", "a"]).unwrap();
    check_atomic_writes(&destroy, &st);
    let commit = renamed(&destroy, "store.json");
    let key_str = key.to_str().unwrap();
    let open = position(&destroy, commit, |c| {
        c.name == "openat" && c.path() == Some(key_str) && c.args.contains("O_WRONLY")
    })
    .expect("the key file is opened for writing after the commit");
    let o = &destroy[open];
    assert!(
        !o.args.contains("O_TRUNC") && !o.args.contains("O_CREAT"),
        "{o:?}"
    );
    let fd = o.ret.clone();
    let close = position(&destroy, open, |c| c.name == "close" && c.fd_arg() == fd).unwrap();
    let written: u64 = destroy[open..close]
        .iter()
        .filter(|c| c.name == "write" && c.fd_arg() == fd)
        .map(|c| c.ret.parse::<u64>().unwrap())
        .sum();
    assert_eq!(written, len, "the whole file is overwritten");
    let fsync = position(&destroy, open, |c| c.name == "fsync" && c.fd_arg() == fd).unwrap();
    let unlink = position(&destroy, close, |c| {
        c.name == "unlink" && c.path() == Some(key_str)
    })
    .expect("then unlinked");
    assert!(fsync < close);
    let keys_dir = st.join("keys");
    let dir_open = position(&destroy, unlink, |c| {
        c.name == "openat" && c.path() == keys_dir.to_str()
    })
    .unwrap();
    let dfd = destroy[dir_open].ret.clone();
    assert!(position(&destroy, dir_open, |c| c.name == "fsync"
        && c.fd_arg() == dfd)
    .is_some());
    assert!(!key.exists());
}

/// Key generation and scrypt run before the lock is taken; under it, only
/// small reads, fsyncs and renames.
#[test]
fn slow_work_runs_before_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    if traced(&st, &["generate", "--name", "a"]).is_none() {
        return;
    }
    // Two scrypt runs at 2^12 (checking the passphrase, sealing the file).
    let calls = traced_with(
        &st,
        &["generate", "--name", "b"],
        &[("AKEX_SCRYPT_LOG_N", "12")],
    )
    .unwrap();
    let flock = position(&calls, 0, |c| {
        c.name == "flock" && c.args.contains("LOCK_EX")
    })
    .unwrap();
    let lock_fd = calls[flock].fd_arg().to_string();
    let release = position(&calls, flock, |c| {
        c.name == "close" && c.fd_arg() == lock_fd
    })
    .unwrap_or(calls.len() - 1);
    let before = calls[flock].time - calls[0].time;
    let held = calls[release].time - calls[flock].time;
    println!("before the lock: {before:.3} s; lock held: {held:.3} s");
    assert!(
        held * 4.0 < before,
        "before the lock {before:.3} s, held {held:.3} s"
    );
}

/// A full disk when the index is written (strace makes that rename fail
/// with ENOSPC): `generate` fails, and the key file it wrote first is
/// removed again, so no orphaned private key is left; the store still lists
/// and verifies.
#[test]
fn a_full_disk_at_the_index_leaves_no_orphaned_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let akex = |args: &[&str]| keys_command(&[], &store, args).output().unwrap();
    assert!(akex(&["generate", "--name", "a"]).status.success());
    let files = || std::fs::read_dir(store.join("keys")).unwrap().count();
    assert_eq!(files(), 1);
    let out = keys_command(
        &[
            "-f",
            "-qq",
            "-e",
            "trace=none",
            "-e",
            "inject=rename,renameat,renameat2:error=ENOSPC:when=2",
        ],
        &store,
        &["generate", "--name", "b"],
    )
    .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            println!("SKIPPED: strace is not installed ({e})");
            return;
        }
    };
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.contains("No space left on device") {
        println!("SKIPPED: strace could not inject the fault here: {err}");
        return;
    }
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("store.json"), "{err}");
    assert_eq!(files(), 1, "the new key file was left behind");
    let list = akex(&["list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success() && text.contains(" a ") && !text.contains(" b "),
        "{text}"
    );
    assert!(akex(&["audit", "--verify"]).status.success());
}

/// Killed after a `--trust-store` file was renamed into place but before
/// its audit line was appended (strace kills at the first write to the
/// log): the next writer of the store, whatever it changes, appends that
/// line, so the file is not later taken for an edited one.
#[test]
fn a_trust_file_commit_cut_short_is_completed_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (store, peer) = (dir.path().join("s"), dir.path().join("p"));
    let run = |store: &Path, args: &[&str]| keys_command(&[], store, args).output().unwrap();
    assert!(run(&peer, &["generate", "--name", "q"]).status.success());
    let shown = dir.path().join("q.json");
    std::fs::write(
        &shown,
        run(&peer, &["show", "--name", "q", "--json"]).stdout,
    )
    .unwrap();
    assert!(run(&store, &["generate", "--name", "me"]).status.success());
    let file = dir.path().join("ext.json");
    let log = store.join("audit.jsonl");
    let killed = keys_command(
        &[
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-P",
            log.to_str().unwrap(),
            "-e",
            "trace=write",
            "-e",
            "inject=write:signal=KILL:when=1",
        ],
        &store,
        &[
            "trust",
            "--name",
            "q",
            "--from",
            shown.to_str().unwrap(),
            "--trust-store",
            file.to_str().unwrap(),
        ],
    )
    .output();
    match killed {
        Err(e) => {
            println!("SKIPPED: strace is not installed ({e})");
            return;
        }
        Ok(out) if out.status.success() || !file.exists() => {
            println!(
                "SKIPPED: strace could not cut the write short here ({:?})",
                out.status
            );
            return;
        }
        Ok(_) => {}
    }
    // An unrelated writer completes the cut-short commit; then the file
    // passes its integrity check (adding trust to it checks it).
    assert!(run(&store, &["generate", "--name", "other"])
        .status
        .success());
    let out = run(&store, &["audit", "--verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &store,
        &[
            "trust",
            "--name",
            "q2",
            "--from",
            shown.to_str().unwrap(),
            "--trust-store",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&store, &["audit", "--verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
