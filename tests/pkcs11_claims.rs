//! PKCS#11 promises of docs/key-management.md checked across processes
//! with SoftHSM2: the PIN prompt on a terminal, and a module that offers
//! only the four mechanisms the document names.
//! `cargo test --features pkcs11 --test pkcs11_claims`.
#![cfg(feature = "pkcs11")]

#[path = "support/softhsm.rs"]
mod softhsm;
mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use softhsm::{SoftHsm, PIN};
use support::start_listener;

static AKEX: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(support::akex_binary);
const ED: &str = "akex-sigma-x25519-ed25519-aesgcm-sha256";
const P256: &str = "akex-sigma-p256-ecdsa-aesgcm-sha256";

/// The command with this installation; the PIN from the environment.
fn cmd(hsm: &SoftHsm) -> Command {
    let mut c = Command::new(&*AKEX);
    c.env("SOFTHSM2_CONF", &hsm.conf)
        .env("AKEX_PKCS11_MODULE", &hsm.module)
        .env("AKEX_PKCS11_PIN", PIN)
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null());
    c
}

fn run(log: &mut String, c: &mut Command) -> Output {
    let out = c.output().expect("run akex");
    log.push_str(&String::from_utf8_lossy(&out.stdout));
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// With no PIN in the environment or on a descriptor, a terminal gets a
/// prompt (a pseudo-terminal from `script`).
#[test]
fn the_pin_is_asked_for_on_a_terminal() {
    let hsm = SoftHsm::new(&["t"]);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let line = format!(
        "env -u AKEX_PKCS11_PIN SOFTHSM2_CONF='{}' AKEX_PKCS11_MODULE='{}' '{}' keys --store '{}' \
         generate --name p --type p256 --pkcs11 'pkcs11:token=t;object=p'",
        hsm.conf.display(),
        hsm.module.display(),
        AKEX.display(),
        store.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{PIN}\n").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PIN for PKCS#11 token"), "{text}");
    let list = run(
        &mut String::new(),
        cmd(&hsm).args(["keys", "--store", s(&store), "list"]),
    );
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(" pkcs11 "),
        "{text}"
    );
}

/// A module that offers only the four mechanisms the document names
/// (`CKM_EC_EDWARDS_KEY_PAIR_GEN`, `CKM_EDDSA`, `CKM_EC_KEY_PAIR_GEN`,
/// `CKM_ECDSA`) is enough for generating, rotating and both SIGMA suites.
#[test]
fn the_documented_mechanisms_are_all_akex_needs() {
    let hsm = SoftHsm::new(&["server", "client"]);
    let only = hsm.dir.path().join("only.conf");
    std::fs::write(
        &only,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
             slots.mechanisms = CKM_EC_EDWARDS_KEY_PAIR_GEN,CKM_EDDSA,CKM_EC_KEY_PAIR_GEN,CKM_ECDSA\n",
            hsm.dir.path().join("tokens").display()
        ),
    )
    .unwrap();
    let c = || {
        let mut c = cmd(&hsm);
        c.env("SOFTHSM2_CONF", &only);
        c
    };
    let dir = tempfile::tempdir().unwrap();
    let (srv, cli) = (dir.path().join("srv"), dir.path().join("cli"));
    let mut log = String::new();
    let must = |log: &mut String, c: &mut Command| {
        let out = run(log, c);
        assert!(out.status.success(), "{}", support::describe("akex", &out));
        out
    };
    for (protocol, ty) in [(ED, "ed25519"), (P256, "p256")] {
        for (store, token) in [(&srv, "server"), (&cli, "client")] {
            let uri = format!("pkcs11:token={token};object={ty}");
            must(
                &mut log,
                c().args(["keys", "--store", s(store), "generate", "--name", ty])
                    .args(["--type", ty, "--pkcs11", &uri]),
            );
        }
        must(
            &mut log,
            c().args(["keys", "--store", s(&srv), "rotate", "--name", ty]),
        );
        let public = |log: &mut String, store: &Path| {
            let out = must(
                log,
                c().args(["keys", "--store", s(store), "show", "--name", ty, "--json"]),
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v["public"].as_str().unwrap().to_string()
        };
        let (srv_pub, cli_pub) = (public(&mut log, &srv), public(&mut log, &cli));
        let server = start_listener(
            c().args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--once",
                "--timeout",
                "10",
            ])
            .args(["--protocol", protocol, "--store", s(&srv), "--key", ty])
            .args(["--remote-key", &cli_pub]),
        );
        must(
            &mut log,
            c().args(["connect", "--addr", &server.addr, "--protocol", protocol])
                .args(["--messages", "1", "--store", s(&cli), "--key", ty])
                .args(["--remote-key", &srv_pub]),
        );
        let (served, text) = server.finish();
        assert!(served, "{protocol}: {text}");
    }
}
