//! Crash safety of the key store, proven with real processes: `akex keys`
//! writers killed with SIGKILL at random moments, and a full disk (a small
//! tmpfs). Afterwards the store opens, the audit log verifies (or reports an
//! interrupted write that the next locked open completes), every key whose
//! command reported success loads, and `revoke` works.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use akex::keys::{KeyStatus, KeyStore, Passphrase, TrustStore};

static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
const PASS: &str = "crash passphrase";

fn keys_cmd(store: &Path, args: &[String]) -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("AKEX_PASSPHRASE", PASS)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .args(["keys", "--store", store.to_str().unwrap()])
        .args(args);
    c
}

fn run(store: &Path, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    keys_cmd(store, &args).output().unwrap()
}

/// xorshift64*: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn temp_files(store: &Path) -> Vec<String> {
    ["", "keys", "rotations"]
        .iter()
        .filter_map(|d| std::fs::read_dir(store.join(d)).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

/// The invariants after any crash: the store opens, the log is not broken
/// (an interrupted write is fine), and every key reported as generated is
/// present and loads.
fn check(store: &Path, generated: &[String], trial: usize) {
    let opened = KeyStore::open(store).unwrap_or_else(|e| panic!("trial {trial}: {e}"));
    let report = opened.audit_report().unwrap();
    assert!(
        report.broken.is_none(),
        "trial {trial}: {:?}",
        report.broken
    );
    // A crash never makes the trust store look edited.
    TrustStore::open_audited(opened.trust_path(), opened.audit().clone())
        .unwrap_or_else(|e| panic!("trial {trial}: {e}"));
    let pass = Passphrase::new(PASS.into());
    for name in generated {
        let entry = opened
            .entries()
            .iter()
            .find(|e| &e.name == name)
            .unwrap_or_else(|| panic!("trial {trial}: {name} was reported generated but is gone"));
        if entry.status != KeyStatus::Destroyed {
            opened
                .read_for_test(&entry.id, &pass)
                .unwrap_or_else(|e| panic!("trial {trial}: {name}: {e}"));
        }
    }
}

trait ReadForTest {
    fn read_for_test(&self, id: &str, pass: &Passphrase) -> Result<(), akex::Error>;
}

impl ReadForTest for KeyStore {
    /// Loads a key whatever its status (revoked and retired keys refuse to
    /// load, but their files must still be whole).
    fn read_for_test(&self, id: &str, pass: &Passphrase) -> Result<(), akex::Error> {
        match self.load(id, Some(pass)) {
            Ok(_) => Ok(()),
            Err(akex::Error::KeyStore(
                akex::error::KeyStoreError::Revoked(_) | akex::error::KeyStoreError::Retired(_),
            )) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[test]
fn sigkill_at_random_moments_never_breaks_the_store() {
    let start = Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    assert!(run(&st, &["generate", "--name", "rot"]).status.success());
    let mut generated = vec!["rot".to_string()];
    let mut pinned: Vec<String> = Vec::new();
    let trials = 240;
    let mut killed = 0;
    let mut finished = 0;
    for trial in 0..trials {
        let kind = trial % 6;
        let args: Vec<String> = match kind {
            0 => vec!["generate".into(), "--name".into(), format!("g{trial}")],
            1 => vec![
                "rotate".into(),
                "--name".into(),
                "rot".into(),
                "--overlap".into(),
                "5".into(),
            ],
            2 => {
                let target = generated[rng.below(generated.len() as u64) as usize].clone();
                vec![
                    "revoke".into(),
                    "--name".into(),
                    target,
                    "--reason".into(),
                    "t".into(),
                ]
            }
            3 => {
                let public = akex::keys::encode_public_key(&[(trial % 250) as u8 + 1; 32]);
                vec![
                    "trust".into(),
                    "--name".into(),
                    format!("p{trial}"),
                    "--public".into(),
                    public,
                ]
            }
            4 => {
                let target = pinned.pop().unwrap_or_else(|| "none".into());
                vec!["untrust".into(), "--name".into(), target]
            }
            _ => {
                let target = generated[rng.below(generated.len() as u64) as usize].clone();
                vec!["destroy".into(), "--name".into(), target]
            }
        };
        let mut child = keys_cmd(&st, &args).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(14_000)));
        let status = match child.try_wait().unwrap() {
            Some(status) => {
                finished += 1;
                Some(status)
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                None
            }
        };
        if status.is_some_and(|s| s.success()) {
            match kind {
                0 => generated.push(args[2].clone()),
                3 => pinned.push(args[2].clone()),
                _ => {}
            }
        }
        check(&st, &generated, trial);
        if trial % 40 == 39 {
            // A revocation always works after a crash.
            let target = generated[rng.below(generated.len() as u64) as usize].clone();
            let out = run(&st, &["revoke", "--name", &target, "--reason", "check"]);
            assert!(out.status.success(), "trial {trial}: {out:?}");
        }
    }
    // One more locked open completes any interrupted write and removes
    // temporary files; then the log verifies strictly.
    let out = run(
        &st,
        &[
            "trust",
            "--name",
            "last",
            "--public",
            &akex::keys::encode_public_key(&[9; 32]),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(temp_files(&st).is_empty(), "{:?}", temp_files(&st));
    let store = KeyStore::open(&st).unwrap();
    store.audit().verify().unwrap();
    let report = store.audit_report().unwrap();
    assert!(
        report.broken.is_none() && report.interrupted.is_empty(),
        "{report:?}"
    );
    check(&st, &generated, trials);
    println!(
        "{trials} trials ({killed} killed mid-run, {finished} finished first), {} keys \
         generated, in {:?}",
        generated.len(),
        start.elapsed()
    );
    assert!(
        killed >= trials / 4,
        "too few kills to mean anything: {killed}"
    );
}

/// The first trust change of a fresh store, killed at random moments: the
/// trust file a crash leaves (none, or one with its audit line) is never
/// taken for an edit, and a pin reported as made is there.
#[test]
fn a_first_pin_killed_at_random_moments_never_looks_forged() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    // Kill within the time one uncontended first pin takes here.
    let span = (0..3)
        .map(|i| {
            let start = Instant::now();
            let public = akex::keys::encode_public_key(&[7; 32]);
            let st = dir.path().join(format!("timing{i}"));
            assert!(run(&st, &["trust", "--name", "p", "--public", &public])
                .status
                .success());
            start.elapsed().as_micros() as u64
        })
        .min()
        .unwrap();
    let (mut killed, mut made, trials) = (0, 0, 80);
    for trial in 0..trials {
        let st = dir.path().join(format!("s{trial}"));
        let public = akex::keys::encode_public_key(&[7; 32]);
        let args: Vec<String> = ["trust", "--name", "peer", "--public", &public]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut child = keys_cmd(&st, &args).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(span / 3 + rng.below(span)));
        let done = match child.try_wait().unwrap() {
            Some(status) => status.success(),
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                killed += 1;
                false
            }
        };
        if !st.exists() {
            continue; // killed before it made the directory
        }
        let store = KeyStore::open(&st).unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        made += usize::from(store.trust_path().exists());
        let trust = TrustStore::open_audited(store.trust_path(), store.audit().clone())
            .unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        if done {
            assert_eq!(trust.pins().len(), 1, "trial {trial}");
        }
        // The next write completes whatever was interrupted.
        let out = run(&st, &["trust", "--name", "peer", "--public", &public]);
        assert!(out.status.success(), "trial {trial}: {out:?}");
        KeyStore::open(&st).unwrap().audit().verify().unwrap();
    }
    println!(
        "{trials} first pins killed within {span} µs: {killed} killed mid-run, {made} left a \
         trust file"
    );
    assert!(
        killed >= trials / 5,
        "too few kills to mean anything: {killed}"
    );
    assert!(
        made >= trials / 8,
        "too few trust files to mean anything: {made}"
    );
}

fn mount_tmpfs(at: &Path, size: &str) -> Result<(), String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    let out = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(at)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

/// Fills the file system at `dir` with `filler` until a write fails, then
/// frees `leave` bytes.
fn fill(filler: &Path, leave: usize) {
    use std::io::Write;
    let mut f = std::fs::File::create(filler).unwrap();
    let chunk = vec![0u8; 512];
    while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    drop(f);
    let len = std::fs::metadata(filler).unwrap().len();
    let keep = len.saturating_sub(leave as u64);
    std::fs::OpenOptions::new()
        .write(true)
        .open(filler)
        .unwrap()
        .set_len(keep)
        .unwrap();
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for d in ["", "keys", "rotations"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(d)) {
            for e in entries.filter_map(Result::ok) {
                let p = e.path();
                if p.is_file() && !p.ends_with("store.lock") {
                    out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_full_disk_fails_cleanly_and_revoke_works_after() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    if let Err(reason) = mount_tmpfs(&mnt, "64k") {
        println!("SKIPPED: cannot mount a 64 KiB tmpfs here ({reason})");
        return;
    }
    let _unmount = Unmount(&mnt);
    let st = mnt.join("store");
    let filler = mnt.join("filler");
    for name in ["a", "b"] {
        assert!(run(&st, &["generate", "--name", name]).status.success());
    }
    assert!(run(
        &st,
        &[
            "trust",
            "--name",
            "p",
            "--public",
            &akex::keys::encode_public_key(&[3; 32])
        ]
    )
    .status
    .success());
    let public = akex::keys::encode_public_key(&[4; 32]);
    let ops: [&[&str]; 5] = [
        &["generate", "--name", "c"],
        &["rotate", "--name", "a"],
        &["trust", "--name", "q", "--public", &public],
        &["revoke", "--name", "b", "--reason", "full"],
        &["untrust", "--name", "p"],
    ];
    // No space at all: every write fails naming a path, and nothing changes.
    fill(&filler, 0);
    let mut failed = 0;
    for op in ops {
        let before = files(&st);
        let out = run(&st, op);
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            failed += 1;
            println!("full disk, {}: {}", op[0], err.trim());
            assert!(err.contains(st.to_str().unwrap()), "{op:?}: {err}");
            assert!(
                err.contains("No space left") || err.contains("space"),
                "{op:?}: {err}"
            );
            assert_eq!(files(&st), before, "{op:?} changed the store");
        }
        assert!(KeyStore::open(&st)
            .unwrap()
            .audit_report()
            .unwrap()
            .broken
            .is_none());
    }
    assert!(failed >= 3, "a full disk should make most writes fail");
    // A little space: some writes of an operation succeed, some fail.
    for leave in [512, 2048, 4096, 6144] {
        for op in ops {
            fill(&filler, leave);
            let _ = run(&st, op);
            std::fs::remove_file(&filler).unwrap();
            let store = KeyStore::open(&st).unwrap();
            let report = store.audit_report().unwrap();
            assert!(
                report.broken.is_none(),
                "{op:?} with {leave} bytes: {:?}",
                report.broken
            );
        }
    }
    // Space freed: revoke works and the log verifies.
    let out = run(
        &st,
        &[
            "revoke",
            "--name",
            "a",
            "--reason",
            "after the disk was full",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let store = KeyStore::open(&st).unwrap();
    store.audit().verify().unwrap();
    assert!(temp_files(&st).is_empty(), "{:?}", temp_files(&st));
    println!("full-disk test: every operation failed cleanly or completed; revoke works after");
}
