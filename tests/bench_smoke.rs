//! A tiny `akex bench --quick` run: the JSON is well-formed, every number
//! in it is positive, and the rustls rows sit beside the Noise and the
//! akex-mode (SIGMA, hybrid) ones, paired like with like.

mod support;

use std::process::Command;

const SIGMA: &str = "akex-sigma-x25519-ed25519-chachapoly-sha256";
const HYBRID_NK: &str = "akex-hybrid-nk-x25519-mlkem768-chachapoly-sha256";

fn numbers(value: &serde_json::Value, path: &str, out: &mut Vec<(String, f64)>) {
    match value {
        serde_json::Value::Number(n) => out.push((path.to_string(), n.as_f64().unwrap_or(-1.0))),
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                numbers(v, &format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                numbers(v, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn quick_bench_writes_positive_json_markdown_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let markdown = dir.path().join("bench.md");
    let charts = dir.path().join("charts");
    let output = Command::new(support::akex_binary())
        .args([
            "bench",
            "--quick",
            "--protocols",
            "Noise_NN_25519_ChaChaPoly_BLAKE2s,Noise_XX_25519_ChaChaPoly_BLAKE2s,\
             akex-sigma-x25519-ed25519-chachapoly-sha256,\
             akex-hybrid-nk-x25519-mlkem768-chachapoly-sha256,\
             TLS13_X25519,TLS13_X25519MLKEM768,TLS13_X25519_mTLS",
            "--json",
        ])
        .arg(&json)
        .arg("--markdown")
        .arg(&markdown)
        .arg("--charts")
        .arg(&charts)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "akex bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();

    let mut all = Vec::new();
    numbers(&doc, "$", &mut all);
    assert!(!all.is_empty());
    for (path, n) in &all {
        assert!(n.is_finite() && *n > 0.0, "{path} = {n} is not positive");
    }

    let results = doc["results"].as_array().unwrap();
    for protocol in [
        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
        SIGMA,
        HYBRID_NK,
        "TLS13_X25519_mTLS",
    ] {
        for metric in [
            "latency_c1_p50",
            "latency_c4_p99",
            "handshakes_per_cpu_s_c1",
            "bulk_echo_mb_s",
            "bulk_echo_mb_per_cpu_s",
            "small_messages_per_s",
            "handshake_bytes",
            "round_trips_to_first_data",
        ] {
            assert!(
                results
                    .iter()
                    .any(|r| r["protocol"] == protocol && r["metric"] == metric),
                "missing {protocol} {metric}"
            );
        }
    }
    // Like with like: mutual rows against TLS with client certificates,
    // the hybrid server-authenticated row against TLS X25519MLKEM768.
    let ratios = doc["ratios"].as_array().unwrap();
    for (protocol, baseline) in [
        ("Noise_XX_25519_ChaChaPoly_BLAKE2s", "TLS13_X25519_mTLS"),
        (SIGMA, "TLS13_X25519_mTLS"),
        (HYBRID_NK, "TLS13_X25519MLKEM768"),
    ] {
        assert!(
            ratios
                .iter()
                .any(|r| r["protocol"] == protocol && r["baseline"] == baseline),
            "no ratio {protocol} / {baseline}"
        );
        assert!(
            ratios
                .iter()
                .filter(|r| r["protocol"] == protocol && r["baseline_implementation"] == "rustls")
                .all(|r| r["baseline"] == baseline),
            "{protocol} compared with another row than {baseline}"
        );
    }
    let hybrid = results.iter().find(|r| r["protocol"] == HYBRID_NK).unwrap();
    assert_eq!(
        (&hybrid["auth"], &hybrid["hybrid"]),
        (&serde_json::json!("server_auth"), &serde_json::json!(true))
    );
    assert!(doc["machine"]["cores"].as_u64().unwrap() >= 1);

    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.contains("| TLS13_X25519 |"));
    let svgs = std::fs::read_dir(&charts).unwrap().count();
    assert!(svgs >= 10, "only {svgs} charts");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("TLS13_X25519_mTLS") && table.contains("akex / baseline"));
}

/// Absurd flag values and outputs that cannot be written fail at once
/// (`bench` and `demo`), naming the flag, before anything is measured (a full run takes minutes
/// and its numbers would be lost at the end); loss-link flags without
/// `--loss-sweep` are refused rather than ignored.
#[test]
fn bench_flags_and_outputs_are_checked_before_anything_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (missing, file) = (missing.to_str().unwrap(), file.to_str().unwrap());
    let (under_file_1, under_file_2) = (format!("{file}/charts"), format!("{file}/report"));
    let sweep = ["--loss-sweep", "--udp"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--concurrency", "0"], "--concurrency"),
        (vec!["--concurrency", "4294967295"], "--concurrency"),
        (vec!["--handshakes", "0"], "--handshakes"),
        (vec!["--handshakes=-1"], "--handshakes"),
        (vec!["--messages", "0"], "--messages"),
        (vec!["--loss", "5"], "--loss-sweep"),
        (vec!["--mtu", "1400"], "--loss-sweep"),
        ([&sweep[..], &["--loss", "250"]].concat(), "--loss"),
        ([&sweep[..], &["--loss", "NaN"]].concat(), "--loss"),
        ([&sweep[..], &["--duplicate", "2"]].concat(), "--duplicate"),
        ([&sweep[..], &["--reorder=-0.5"]].concat(), "--reorder"),
        ([&sweep[..], &["--mtu", "10"]].concat(), "--mtu"),
        ([&sweep[..], &["--mtu", "99999999999"]].concat(), "--mtu"),
        (vec!["--json", missing], "--json"),
        (vec!["--json", dir.path().to_str().unwrap()], "--json"),
        (vec!["--markdown", missing], "--markdown"),
        (vec!["--charts", &under_file_1], "--charts"),
        (vec!["--report", &under_file_2], "--report"),
        ([&sweep[..], &["--json", missing]].concat(), "--json"),
    ];
    for (args, flag) in cases {
        let out = Command::new(support::akex_binary())
            .args(["bench", "--quick", "--no-progress"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // Nothing was measured: no run header, no table.
        assert!(
            !stderr.contains("rows,")
                && !stderr.contains("loss sweep over UDP")
                && out.stdout.is_empty(),
            "{args:?} started measuring: {stderr}"
        );
    }
    // `demo` the same; a bad row is named as such, not as an I/O error.
    for (args, expect) in [
        (&["--handshakes", "0"][..], "--handshakes"),
        (
            &["--protocols", "nonsense"],
            "akex demo: error: invalid configuration",
        ),
    ] {
        let out = Command::new(support::akex_binary())
            .arg("demo")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("I/O error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// The output check refuses nothing the writer can write: a relative
/// file, a FIFO (not opened early, so its reader gets the whole JSON), a
/// dangling symlink whose target can be created, an existing directory;
/// and it leaves no probe file behind.
#[cfg(unix)]
#[test]
fn writable_outputs_pass_the_check_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::os::unix::fs::symlink("target.md", d.join("link.md")).unwrap();
    std::fs::create_dir(d.join("charts")).unwrap();
    let fifo = d.join("fifo.json");
    let made = Command::new("mkfifo").arg(&fifo).status();
    let fifo_ok = made.as_ref().is_ok_and(|s| s.success());
    let reader = fifo_ok.then(|| {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    });
    let mut cmd = Command::new(support::akex_binary());
    cmd.current_dir(d).args([
        "bench",
        "--quick",
        "--no-progress",
        "--sessions",
        "0",
        "--protocols",
        "Noise_NN_25519_ChaChaPoly_BLAKE2s",
        "--markdown",
        "link.md",
        "--charts",
        "charts",
    ]);
    if fifo_ok {
        cmd.args(["--json", "fifo.json"]);
    } else {
        eprintln!("SKIPPED the FIFO case: mkfifo failed ({made:?})");
        cmd.args(["--json", "out.json"]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(reader) = reader {
        let json: serde_json::Value = serde_json::from_slice(&reader.join().unwrap()).unwrap();
        assert!(json.to_string().contains("Noise_NN_25519"), "{json}");
    }
    assert!(std::fs::read_to_string(d.join("target.md"))
        .unwrap()
        .contains("Noise_NN"));
    let mut names = Vec::new();
    for sub in [d.to_path_buf(), d.join("charts")] {
        for e in std::fs::read_dir(sub).unwrap() {
            names.push(e.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    assert!(
        !names.iter().any(|n| n.contains("probe")),
        "probe files left: {names:?}"
    );
}
