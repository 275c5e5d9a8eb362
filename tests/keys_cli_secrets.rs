//! Secrets over the `akex` command line: the passphrase (required, checked,
//! never an argument, read from a file descriptor) and no private key or
//! passphrase in any output or non-key store file.

mod keys_cli_support;
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use keys_cli_support::*;

#[test]
fn passphrase_is_required_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("store");
    let mut log = String::new();
    ok(
        &mut log,
        &["keys", "--store", s(&st), "generate", "--name", "k"],
    );
    // No env var and no terminal: a clear error, not a hang.
    let out = cmd()
        .env_remove("AKEX_PASSPHRASE")
        .args(["keys", "--store", s(&st), "generate", "--name", "k2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AKEX_PASSPHRASE"), "{err}");
    // Wrong passphrase when loading for a handshake.
    let out = cmd()
        .env("AKEX_PASSPHRASE", "wrong")
        .args(["connect", "--addr", "127.0.0.1:9", "--protocol", XX])
        .args(["--store", s(&st), "--key", "k"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("wrong passphrase"), "{text}");
    // There is no passphrase argument.
    fail(
        &mut log,
        &[
            "keys",
            "--store",
            s(&st),
            "generate",
            "--name",
            "x",
            "--passphrase",
            "p",
        ],
    );
}

#[test]
fn passphrase_from_a_file_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let pass_file = dir.path().join("pass");
    std::fs::write(&pass_file, format!("{PASS}\n")).unwrap();
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, "not it\n").unwrap();
    // bash opens the file as fd 3 and execs akex with it.
    let bash_fd = |args: &str, file: &Path| {
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(format!(
                "exec \"$AKEX\" {args} --passphrase-fd 3 3<\"$PASSFILE\""
            ))
            .env("AKEX", &*AKEX)
            .env("PASSFILE", file)
            .env("AKEX_SCRYPT_LOG_N", "4")
            .env_remove("AKEX_PASSPHRASE")
            .env_remove("XDG_DATA_HOME")
            .stdin(Stdio::null());
        c
    };
    let akex_fd = |args: &str, file: &Path| {
        let out = bash_fd(args, file).output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stdout).contains(PASS));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(PASS));
        out
    };
    let st = s(&store);
    let out = akex_fd(
        &format!("keys --store '{st}' generate --name fd"),
        &pass_file,
    );
    assert!(out.status.success(), "{out:?}");
    // The key is encrypted with the passphrase read from fd 3: the env var
    // opens it, a wrong passphrase on the fd does not.
    let mut log = String::new();
    ok(
        &mut log,
        &[
            "keys",
            "--store",
            st,
            "rotate",
            "--name",
            "fd",
            "--overlap",
            "1",
        ],
    );
    let out = akex_fd(
        &format!("keys --store '{st}' rotate --name fd"),
        &wrong_file,
    );
    assert!(!out.status.success(), "{out:?}");
    let out = akex_fd(&format!("keys --store '{st}' rotate --name fd"), &pass_file);
    assert!(out.status.success(), "{out:?}");
    // A pipe works as well as a file.
    let out = Command::new("bash")
        .arg("-c")
        .arg("exec \"$AKEX\" keys --store \"$STORE\" rotate --name fd --passphrase-fd 3 3< <(printf '%s\\n' \"$PASS\")")
        .env("AKEX", &*AKEX)
        .env("STORE", st)
        .env("PASS", PASS)
        .env("AKEX_SCRYPT_LOG_N", "4")
        .env_remove("AKEX_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // serve/connect take it too.
    let mut child = bash_fd(
        &format!("serve --listen 127.0.0.1:0 --protocol {XX} --store '{st}' --key fd"),
        &pass_file,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().ok();
    child.wait().ok();
    assert!(line.contains("listening on"), "{line}");
    let out = akex_fd(
        &format!("serve --listen 127.0.0.1:0 --protocol {XX} --store '{st}' --key fd --once"),
        &wrong_file,
    );
    assert!(!out.status.success());
    // Without the env var or a descriptor, and no terminal: a clear error.
    let out = cmd()
        .env_remove("AKEX_PASSPHRASE")
        .args(["keys", "--store", st, "rotate", "--name", "fd"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--passphrase-fd"));
    // A descriptor that is not open is an error naming it.
    let out = cmd()
        .env_remove("AKEX_PASSPHRASE")
        .args([
            "keys",
            "--store",
            st,
            "rotate",
            "--name",
            "fd",
            "--passphrase-fd",
            "9",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--passphrase-fd 9"),
        "{out:?}"
    );
}

#[test]
fn no_private_key_appears_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    let cli = dir.path().join("cli");
    let mut log = String::new();
    // Plaintext keys so the test can read the private bytes it greps for.
    for (st, name) in [(&srv, "server"), (&cli, "client")] {
        for ty in ["x25519", "ed25519", "mlkem768"] {
            let n = format!("{name}-{ty}");
            ok(
                &mut log,
                &[
                    "keys",
                    "--store",
                    s(st),
                    "generate",
                    "--name",
                    &n,
                    "--type",
                    ty,
                    "--insecure-plaintext",
                    "--json",
                ],
            );
            ok(
                &mut log,
                &["keys", "--store", s(st), "show", "--name", &n, "--json"],
            );
            run(&mut log, &["keys", "--store", s(st), "show", "--name", &n]);
        }
    }
    // Per store: x25519 and mlkem768 keys with their signing keys, and
    // the ed25519 key (its own signing key).
    assert_eq!(plaintext_secrets(&[&srv, &cli]).len(), 10);
    pin_key(&mut log, &srv, "server-x25519", &cli, "server");
    let server = serve(&[
        "--store",
        s(&srv),
        "--key",
        "server-x25519",
        "--trust",
        "tofu",
    ]);
    ok(
        &mut log,
        &[
            "connect",
            "--addr",
            &server.addr,
            "--protocol",
            XX,
            "--store",
            s(&cli),
            "--key",
            "client-x25519",
            "--trust",
            "pinned",
            "--peer",
            "server",
        ],
    );
    let (ok_server, slog) = finish(server);
    log.push_str(&slog);
    assert!(ok_server, "{slog}");
    // Failures too.
    let server = serve(&[
        "--store",
        s(&srv),
        "--key",
        "server-x25519",
        "--trust",
        "pinned",
    ]);
    run(
        &mut log,
        &[
            "connect",
            "--addr",
            &server.addr,
            "--protocol",
            XX,
            "--store",
            s(&cli),
            "--key",
            "client-x25519",
        ],
    );
    log.push_str(&finish(server).1);
    ok(
        &mut log,
        &[
            "keys",
            "--store",
            s(&srv),
            "rotate",
            "--name",
            "server-ed25519",
            "--insecure-plaintext",
            "--json",
        ],
    );
    run(
        &mut log,
        &[
            "keys",
            "--store",
            s(&srv),
            "rotate",
            "--name",
            "server-x25519",
            "--insecure-plaintext",
        ],
    );
    ok(&mut log, &["keys", "--store", s(&srv), "list", "--json"]);
    run(&mut log, &["keys", "--store", s(&srv), "list"]);
    run(&mut log, &["keys", "--store", s(&srv), "audit"]);
    ok(&mut log, &["keys", "--store", s(&srv), "audit", "--json"]);
    run(
        &mut log,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--protocol",
            "Noise_XX_bogus",
            "--store",
            s(&srv),
            "--key",
            "server-mlkem768",
        ],
    );
    run(
        &mut log,
        &[
            "connect",
            "--addr",
            "127.0.0.1:9",
            "--protocol",
            XX,
            "--store",
            s(&srv),
            "--key",
            "server-ed25519",
        ],
    );
    assert!(log.contains("handshake ok"), "{log}");
    secret_grep(&[&srv, &cli], &log);
}
