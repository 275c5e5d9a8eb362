//! A throwaway SoftHSM2 installation for the PKCS#11 tests: a
//! configuration and token directory under a temporary directory
//! (`SOFTHSM2_CONF`), tokens initialised with `softhsm2-util`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The user PIN of every test token (tests pass it through the
/// environment or a file descriptor, as users do).
pub const PIN: &str = "246810";
const SO_PIN: &str = "13579135";

/// Where distributions put SoftHSM2's module.
const MODULE_PATHS: [&str; 4] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The SoftHSM2 module, or a panic saying how to install it.
pub fn module() -> PathBuf {
    if let Some(p) = std::env::var_os("SOFTHSM2_MODULE") {
        return PathBuf::from(p);
    }
    MODULE_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("SoftHSM2 is not installed: apt-get install softhsm2 opensc (see .ci/run)")
}

/// A token directory with initialised tokens.
pub struct SoftHsm {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub module: PathBuf,
}

fn write_conf(path: &Path, tokens: &Path, extra: &str) {
    std::fs::write(
        path,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n{extra}",
            tokens.display()
        ),
    )
    .unwrap();
}

impl SoftHsm {
    /// A fresh installation with one token per label.
    pub fn new(labels: &[&str]) -> SoftHsm {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        write_conf(&conf, &tokens, "");
        let hsm = SoftHsm {
            dir,
            conf,
            module: module(),
        };
        for label in labels {
            let out = Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label])
                .args(["--so-pin", SO_PIN, "--pin", PIN])
                .env("SOFTHSM2_CONF", &hsm.conf)
                .output()
                .expect("run softhsm2-util (apt-get install softhsm2)");
            assert!(
                out.status.success(),
                "softhsm2-util --init-token {label}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        hsm
    }

    /// A configuration for the same tokens whose slots lack `mechanisms`
    /// (SoftHSM's `slots.mechanisms`), e.g. a module without Ed25519.
    pub fn conf_without(&self, mechanisms: &[&str]) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(format!("without-{}.conf", mechanisms.join("-")));
        // One leading minus makes the whole list the disabled ones.
        write_conf(
            &path,
            &self.dir.path().join("tokens"),
            &format!("slots.mechanisms = -{}\n", mechanisms.join(",")),
        );
        path
    }

    /// `pkcs11:token=T;object=O?module-path=...`.
    pub fn uri(&self, token: &str, object: &str) -> String {
        format!(
            "pkcs11:token={token};object={object}?module-path={}",
            self.module.display()
        )
    }

    /// `pkcs11-tool` with this installation, or `None` if OpenSC is not
    /// installed.
    pub fn pkcs11_tool(&self) -> Option<Command> {
        let found = Command::new("pkcs11-tool").arg("--help").output().is_ok();
        found.then(|| {
            let mut cmd = Command::new("pkcs11-tool");
            cmd.arg("--module")
                .arg(&self.module)
                .env("SOFTHSM2_CONF", &self.conf);
            cmd
        })
    }
}
