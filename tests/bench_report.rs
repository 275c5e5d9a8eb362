//! `akex bench --report DIR` opened in a real browser: headless Chromium
//! loads each page, the page's own check runs on `load` (every chart drew
//! something, every table has rows, no script error) and the test reads
//! the verdict back from the DOM. Two pages: a TCP run with a rustls row,
//! a like-with-like ratio and the seeds table, and a UDP loss sweep.
//!
//! Skipped, with the reason printed, where no Chromium is installed
//! (Debian: `apt-get install chromium`; `.ci/run` installs it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

fn browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    BROWSERS.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The page's DOM after load, from headless Chromium (at most 120 s:
/// coreutils' `timeout` ends a hung browser).
fn dump_dom(browser: &Path, page: &Path) -> String {
    let out = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .stderr(std::process::Stdio::null())
        .output()
        .expect("start chromium");
    assert!(
        out.status.success(),
        "chromium failed or timed out: {:?}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn attribute<'a>(dom: &'a str, name: &str) -> &'a str {
    let status = dom
        .find("id=\"render-status\"")
        .map(|i| &dom[i..])
        .unwrap_or_else(|| {
            panic!(
                "no #render-status in the DOM:\n{}",
                &dom[..dom.len().min(2000)]
            )
        });
    let tag = &status[..status.find('>').unwrap_or(status.len())];
    let key = format!("{name}=\"");
    let start = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    &tag[start..start + tag[start..].find('"').unwrap_or(0)]
}

/// Runs `akex bench ... --report DIR`; returns the page.
fn report(dir: &Path, args: &[&str]) -> PathBuf {
    let out = Command::new(support::akex_binary())
        .arg("bench")
        .args(args)
        .arg("--report")
        .arg(dir)
        .output()
        .expect("run akex bench");
    assert!(
        out.status.success(),
        "akex bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("index.html")
}

fn check(browser: &Path, page: &Path) {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "the page must be self-contained"
    );
    let dom = dump_dom(browser, page);
    let charts = html.matches("<figure").count();
    let tables = html.matches("<table>").count();
    assert_eq!(
        attribute(&dom, "data-render"),
        "ok",
        "{page:?}: errors [{}], blank charts {}, empty tables {}",
        attribute(&dom, "data-errors"),
        attribute(&dom, "data-blank-charts"),
        attribute(&dom, "data-empty-tables")
    );
    assert_eq!(attribute(&dom, "data-charts"), charts.to_string());
    assert_eq!(attribute(&dom, "data-tables"), tables.to_string());
    println!(
        "{}: rendered {charts} charts and {tables} tables",
        page.display()
    );
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = browser() else {
        println!(
            "SKIPPED html_report_renders_in_headless_chromium: no chromium on PATH \
             (apt-get install chromium)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::from(
        "Noise_NK_25519_ChaChaPoly_BLAKE2s,akex-hybrid-nk-x25519-mlkem768-chachapoly-sha256,\
         TLS13_X25519",
    );
    if cfg!(feature = "openssl") {
        rows.push_str(",OpenSSL_TLS13_X25519");
    }
    let tcp = report(
        &dir.path().join("tcp"),
        &["--quick", "--sessions", "20", "--protocols", &rows],
    );
    let html = std::fs::read_to_string(&tcp).unwrap();
    assert!(html.contains("Key-exchange seeds") && html.contains("Like with like"));
    if cfg!(feature = "openssl") {
        assert!(html.contains("OpenSSL_TLS13_X25519") && html.contains("OpenSSL 3"));
    }
    assert!(html.contains("id=\"chart-seeds\""));
    assert!(tcp.with_file_name("results.json").is_file());
    check(&browser, &tcp);

    let udp = report(
        &dir.path().join("udp"),
        &[
            "--udp",
            "--loss-sweep",
            "--quick",
            "--loss",
            "0,20",
            "--rtt",
            "4",
            "--protocols",
            "Noise_NN_25519_ChaChaPoly_BLAKE2s",
        ],
    );
    assert!(std::fs::read_to_string(&udp)
        .unwrap()
        .contains("id=\"chart-loss_sweep\""));
    check(&browser, &udp);
}
