//! Runs `examples/http_over_akex.rs`: a server process allowing one client
//! key, and `get` clients: the allowed key gets 200 and a body naming it, an
//! authenticated but unlisted key gets 403, and a client pinning the wrong
//! server key fails the handshake.

mod support;

use support::{describe, finish, listening_addr};

use std::path::Path;

use akex::keys::{encode_public_key, write_new_identity};

fn spawn(args: &[&str]) -> std::process::Child {
    support::spawn_example("http_over_akex", args)
}

fn key(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let public = encode_public_key(
        write_new_identity(&path, &mut akex::crypto::OsRng)
            .unwrap()
            .public(),
    );
    (path.to_str().unwrap().to_string(), public)
}

#[test]
fn authorizes_by_client_static_key() {
    let dir = tempfile::tempdir().unwrap();
    let (server, server_pub) = key(dir.path(), "server.key");
    let (allowed, allowed_pub) = key(dir.path(), "allowed.key");
    let (stranger, stranger_pub) = key(dir.path(), "stranger.key");
    let (_, wrong_server_pub) = key(dir.path(), "wrong.key");
    let mut srv = spawn(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--identity",
        &server,
        "--allow",
        &allowed_pub,
    ]);
    let (addr, srv_err) = listening_addr(&mut srv);
    let get = |identity: &str, server_key: &str| {
        let child = spawn(&[
            "get",
            "--addr",
            &addr,
            "--identity",
            identity,
            "--peer-key",
            server_key,
            "--path",
            "/hello",
        ]);
        let (out, hung) = finish(child, None);
        assert!(!hung, "{}", describe("get", &out));
        out
    };

    let ok = get(&allowed, &server_pub);
    let report = describe("allowed get", &ok);
    assert!(ok.status.success(), "{report}");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.starts_with("200 OK\n"), "{report}");
    assert!(
        stdout.contains(&format!("hello {allowed_pub}, you asked for GET /hello")),
        "{report}"
    );

    let denied = get(&stranger, &server_pub);
    let report = describe("stranger get", &denied);
    assert!(!denied.status.success(), "{report}");
    let stdout = String::from_utf8_lossy(&denied.stdout);
    assert!(stdout.starts_with("403 Forbidden\n"), "{report}");
    assert!(stdout.contains(&stranger_pub), "{report}");

    let wrong = get(&allowed, &wrong_server_pub);
    let report = describe("wrong server key", &wrong);
    assert!(!wrong.status.success(), "{report}");
    assert!(wrong.stdout.is_empty(), "{report}");

    srv.kill().unwrap();
    let (srv_out, _) = finish(srv, Some(srv_err));
    let log = String::from_utf8_lossy(&srv_out.stderr);
    assert!(
        log.contains(&format!("GET /hello from {allowed_pub} -> 200")),
        "{log}"
    );
    assert!(
        log.contains(&format!("GET /hello from {stranger_pub} -> 403")),
        "{log}"
    );
}
