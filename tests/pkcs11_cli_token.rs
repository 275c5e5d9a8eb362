//! What a SoftHSM2 token holds after `akex keys generate --pkcs11`: the
//! protection of the private objects as OpenSC's `pkcs11-tool` sees it,
//! and every error case failing in one line with store and token left
//! unchanged. The handshakes and the key lifecycle are in
//! tests/pkcs11_cli.rs.
//! `cargo test --features pkcs11 --test pkcs11_cli_token`.

mod pkcs11_cli_support;
#[path = "support/softhsm.rs"]
mod softhsm;
mod support;

use pkcs11_cli_support::*;
use softhsm::{SoftHsm, PIN};

#[test]
fn pkcs11_tool_sees_sensitive_never_extractable_private_keys() {
    let hsm = SoftHsm::new(&["keys"]);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut log = String::new();
    generate(&mut log, &hsm, &store, "ed", "ed25519", "keys");
    generate(&mut log, &hsm, &store, "p", "p256", "keys");
    let tool = || {
        hsm.pkcs11_tool()
            .expect("pkcs11-tool (apt-get install opensc)")
    };
    let out = tool()
        .args(["--login", "--pin", PIN, "-O", "--type", "privkey"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let blocks: Vec<&str> = text.split("Private Key Object").skip(1).collect();
    assert_eq!(blocks.len(), 2, "{text}");
    for block in blocks {
        assert!(
            block.contains("Access:     sensitive, always sensitive, never extractable"),
            "{block}"
        );
        assert!(
            block.contains("Usage:") && block.contains("sign"),
            "{block}"
        );
        assert!(!block.contains("derive"), "{block}");
    }
    // Both halves carry the key's label and id; the public half verifies
    // and names its curve (edwards25519 as a PrintableString, prime256v1).
    let out = tool()
        .args(["--login", "--pin", PIN, "-O"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |block: &str, name: &str| {
        block
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    for (label, params) in [
        ("ed", "130c6564776172647332353531"),
        ("p", "06082a8648ce3d030107"),
    ] {
        let halves: Vec<&str> = text
            .split("Key Object")
            .skip(1)
            .filter(|b| field(b, "label:") == label)
            .collect();
        assert_eq!(halves.len(), 2, "{label}: {text}");
        assert_eq!(field(halves[0], "ID:"), field(halves[1], "ID:"));
        let public = halves.iter().find(|b| b.contains("EC_PARAMS")).unwrap();
        assert!(field(public, "Usage:").contains("verify"), "{public}");
        assert!(field(public, "EC_PARAMS:").starts_with(params), "{public}");
    }
    // (pkcs11-tool cannot be asked for CKA_VALUE; tests/pkcs11.rs checks
    // through the PKCS#11 API that the token refuses to return it.)
}

#[test]
fn each_failure_is_one_line_and_leaves_store_and_token_unchanged() {
    let hsm = SoftHsm::new(&["t"]);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut log = String::new();
    generate(&mut log, &hsm, &store, "first", "ed25519", "t");
    let index = || std::fs::read(store.join("store.json")).unwrap();
    let before = index();
    let count = || {
        let out = hsm
            .pkcs11_tool()
            .expect("pkcs11-tool")
            .args(["--login", "--pin", PIN, "-O"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .matches("Object;")
            .count()
    };
    let objects = count();
    // (URI, key type, environment changes: name -> Some(value) or None
    // to remove, the message expected). An empty URI means `connect`.
    let restricted = hsm.conf_without(&["CKM_EC_EDWARDS_KEY_PAIR_GEN", "CKM_EDDSA"]);
    let restricted = [("SOFTHSM2_CONF", Some(restricted.to_str().unwrap()))];
    let with_pin = format!("pkcs11:token=t;object=second?pin-value={PIN}");
    let ok_uri = "pkcs11:token=t;object=second";
    type Env<'a> = &'a [(&'a str, Option<&'a str>)];
    let cases: Vec<(&str, &str, Env, &str)> = vec![
        (
            ok_uri,
            "ed25519",
            &[("AKEX_PKCS11_MODULE", Some("/no/such/pkcs11.so"))],
            "cannot load module /no/such/pkcs11.so",
        ),
        (
            ok_uri,
            "ed25519",
            &[("AKEX_PKCS11_MODULE", None)],
            "no module",
        ),
        (
            "pkcs11:token=absent;object=second",
            "ed25519",
            &[],
            "no token token=absent",
        ),
        (
            ok_uri,
            "ed25519",
            &[("AKEX_PKCS11_PIN", Some("000000"))],
            "wrong PIN for token t",
        ),
        // A module without Ed25519 (SoftHSM's slots.mechanisms).
        (
            ok_uri,
            "ed25519",
            &restricted,
            "token t does not support CKM_",
        ),
        (
            "pkcs11:token=t;object=first",
            "ed25519",
            &[],
            "already holds a key labelled \"first\"",
        ),
        (ok_uri, "x25519", &[], "stay in the key store"),
        // Refused before a PIN is asked for (there is none here).
        (
            ok_uri,
            "mlkem768",
            &[("AKEX_PKCS11_PIN", None)],
            "stay in the key store",
        ),
        (&with_pin, "ed25519", &[], "never goes in a URI"),
        (
            ok_uri,
            "ed25519",
            &[("AKEX_PKCS11_PIN", None)],
            "set AKEX_PKCS11_PIN",
        ),
        // A key that is not in the token, and a wrong PIN, for a handshake.
        (
            "",
            "",
            &[],
            "no private key matching pkcs11:token=t;object=missing in token t",
        ),
        (
            "",
            "",
            &[("AKEX_PKCS11_PIN", Some("111111"))],
            "wrong PIN for token t",
        ),
    ];
    let cases = cases.into_iter().map(|(uri, key_type, env, want)| {
        let mut c = cmd(&hsm);
        if uri.is_empty() {
            c.args([
                "connect",
                "--addr",
                "127.0.0.1:9",
                "--protocol",
                ED,
                "--store",
                s(&store),
            ])
            .args(["--key", "pkcs11:token=t;object=missing"]);
        } else {
            c.args(["keys", "--store", s(&store), "generate", "--name", "second"])
                .args(["--type", key_type, "--pkcs11", uri]);
        }
        for (name, value) in env {
            match value {
                Some(v) => c.env(name, v),
                None => c.env_remove(name),
            };
        }
        (c, want)
    });
    for (mut c, want) in cases {
        let out = run(&mut log, &mut c);
        assert!(
            !out.status.success(),
            "{want}: {}",
            support::describe("akex", &out)
        );
        // `keys` reports on stderr, `connect` as one JSON line on stdout.
        let text = if out.stderr.is_empty() {
            out.stdout.clone()
        } else {
            out.stderr.clone()
        };
        let text = String::from_utf8_lossy(&text);
        assert_eq!(text.lines().count(), 1, "{want}: {text:?}");
        assert!(text.contains(want), "expected {want:?} in {text:?}");
        assert_eq!(index(), before, "{want}: store.json changed");
        assert_eq!(count(), objects, "{want}: the token changed");
    }
    // The refused login is in the audit log, without the PIN.
    let audit = run(
        &mut log,
        cmd(&hsm).args(["keys", "--store", s(&store), "audit"]),
    );
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(
        text.contains("pkcs11-login-failed") && text.contains("wrong PIN for token t"),
        "{text}"
    );
    assert!(!log.contains(PIN), "the PIN appeared in an output");
    assert!(!text.contains("000000") && !text.contains("111111"));
    assert_eq!(text.matches("pkcs11-login-failed").count(), 2, "{text}");
}
