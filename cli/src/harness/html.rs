//! `akex bench --report DIR`: one self-contained HTML page (`index.html`,
//! no external resources) with the machine, the versions, the commands
//! that reproduce the run, every table and every SVG chart inline, plus
//! `results.json` beside it.
//!
//! A few lines of inline script check the page once it has loaded (every
//! chart has drawn something, every table has rows, no script error) and
//! write the verdict into `#render-status`; `tests/bench_report.rs` reads
//! it back from headless Chromium.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::charts::{self, Chart};
use super::report::{fmt_num, short, Report};
use super::{seeds, BenchError};

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn table(out: &mut String, caption: &str, header: &[String], rows: &[Vec<String>]) {
    let _ = write!(out, "<table><caption>{}</caption><thead><tr>", esc(caption));
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if i == 0 { "" } else { " class=\"n\"" };
            let _ = write!(out, "<td{class}>{}</td>", esc(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:13px}\
caption{text-align:left;font-weight:bold;padding:.3em 0}\
th,td{border:1px solid #ccc;padding:3px 6px}td.n{text-align:right}\
th{background:#f0f0f0}tr:nth-child(even){background:#fafafa}\
figure{margin:1.5em 0}figcaption{font-size:13px;color:#555}\
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}\
.legend span{display:inline-block;padding:2px 8px;margin-right:8px;color:#fff}";

/// Checks the rendered page and writes the verdict (see the module docs).
const CHECK: &str = r#"<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message)); });
  window.addEventListener('load', function () {
    var charts = document.querySelectorAll('figure svg');
    var blank = 0;
    charts.forEach(function (svg) {
      var box = svg.getBoundingClientRect();
      if (box.width < 50 || box.height < 50 || svg.querySelectorAll('rect,path,polyline,line,text').length < 5) blank++;
    });
    var tables = document.querySelectorAll('table');
    var empty = 0;
    tables.forEach(function (t) { if (t.tBodies.length === 0 || t.tBodies[0].rows.length === 0) empty++; });
    var ok = errors.length === 0 && blank === 0 && empty === 0 && charts.length > 0;
    var status = document.getElementById('render-status');
    status.setAttribute('data-charts', charts.length);
    status.setAttribute('data-tables', tables.length);
    status.setAttribute('data-blank-charts', blank);
    status.setAttribute('data-empty-tables', empty);
    status.setAttribute('data-errors', errors.join(' | '));
    status.setAttribute('data-render', ok ? 'ok' : 'failed');
    status.textContent = (ok ? 'rendered: ' : 'RENDER PROBLEM: ') + charts.length + ' charts, ' + tables.length + ' tables';
  });
})();
</script>"#;

/// The page for `report` with `charts` inline.
pub fn page(report: &Report, charts: &[Chart]) -> String {
    let m = &report.machine;
    let mut out = String::from("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(
        out,
        "<title>akex bench</title><style>{STYLE}</style>{CHECK}</head><body>\n<h1>akex bench</h1>\n"
    );
    if report.interrupted {
        out.push_str("<p><strong>Interrupted: partial results.</strong></p>");
    }
    let _ = writeln!(
        out,
        "<p>Machine: {} ({} cores, {} MiB, {}), load average {} at the start.</p>",
        esc(&m.cpu_model),
        m.cores,
        m.memory_mib,
        esc(&m.kernel),
        esc(&m.load_average)
    );
    let _ = write!(
        out,
        "<p>Versions: <code>{}</code></p>\n<p>Options: <code>{}</code></p>\n",
        esc(&report.versions.to_string()),
        esc(&report.config.to_string())
    );
    out.push_str(
        "<p class=\"legend\"><span style=\"background:#2864b4\">akex</span>\
         <span style=\"background:#c87828\">rustls</span>\
         <span style=\"background:#783c96\">OpenSSL</span></p>\n",
    );
    if !report.commands.is_empty() {
        out.push_str("<h2>Reproduce</h2><pre>");
        for c in &report.commands {
            let _ = writeln!(out, "{}", esc(c));
        }
        out.push_str("</pre>\n");
    }
    out.push_str("<p id=\"render-status\" data-render=\"pending\">not checked</p>\n");

    if !report.results.is_empty() {
        results_table(&mut out, report);
    }
    ratio_and_seed_tables(&mut out, report);
    if !report.loss_sweep.is_empty() {
        loss_table(&mut out, report);
    }

    out.push_str("<h2>Charts</h2>\n");
    for chart in charts {
        let svg = chart.svg.trim_start();
        let svg = match svg.strip_prefix("<?xml") {
            Some(rest) => rest.split_once("?>").map_or(rest, |(_, s)| s),
            None => svg,
        };
        let _ = writeln!(
            out,
            "<figure id=\"chart-{}\">{}<figcaption>{}</figcaption></figure>",
            esc(&chart.name),
            svg,
            esc(&chart.title)
        );
    }
    out.push_str("</body></html>\n");
    out
}

fn results_table(out: &mut String, report: &Report) {
    out.push_str("<h2>Results</h2>\n");
    let cols = report.metrics();
    let mut header = vec!["protocol".to_string(), "implementation".to_string()];
    header.extend(cols.iter().map(|(m, u)| format!("{} ({u})", short(m))));
    let rows: Vec<Vec<String>> = report
        .protocols()
        .iter()
        .map(|p| {
            let implementation = report
                .results
                .iter()
                .find(|r| &r.protocol == p)
                .map_or("", |r| r.implementation.as_str());
            let mut row = vec![p.clone(), implementation.to_string()];
            row.extend(
                cols.iter()
                    .map(|(m, _)| report.value(p, m).map_or_else(|| "-".into(), fmt_num)),
            );
            row
        })
        .collect();
    table(out, "Every measured number", &header, &rows);
}

fn ratio_and_seed_tables(out: &mut String, report: &Report) {
    let ratios = report.ratio_rows();
    if !ratios.is_empty() {
        let header = [
            "akex row",
            "metric",
            "rustls row",
            "akex/rustls",
            "OpenSSL row",
            "akex/OpenSSL",
        ]
        .map(String::from);
        let rows: Vec<Vec<String>> = ratios.into_iter().map(|r| r.to_vec()).collect();
        table(
            out,
            "Like with like, same run (rates: > 1 favours akex; latency and bytes: < 1 favours akex)",
            &header,
            &rows,
        );
    }
    let seed_rows = seeds::rows(report);
    if seed_rows.len() >= 2 {
        let header = [
            "seed",
            "protocol",
            "CPU µs per handshake (in memory)",
            "handshakes per CPU-s (loopback)",
            "bytes on the wire",
            "forward secret",
            "PQ confidentiality",
            "PQ authentication",
        ]
        .map(String::from);
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        let num = |v: Option<f64>| v.map_or_else(|| "-".to_string(), fmt_num);
        let rows: Vec<Vec<String>> = seed_rows
            .iter()
            .map(|r| {
                vec![
                    r.label.clone(),
                    r.protocol.clone(),
                    num(r.cpu_us),
                    num(r.hs_per_cpu_s),
                    num(r.wire_bytes),
                    yes(r.forward_secret),
                    yes(r.pq_confidentiality),
                    yes(r.pq_authentication),
                ]
            })
            .collect();
        table(out, "Key-exchange seeds", &header, &rows);
    }
}

fn loss_table(out: &mut String, report: &Report) {
    {
        let header = [
            "protocol",
            "loss %",
            "RTT ms",
            "completed",
            "failed",
            "p50 ms",
            "p90 ms",
            "p99 ms",
        ]
        .map(String::from);
        let rows: Vec<Vec<String>> = report
            .loss_sweep
            .iter()
            .map(|p| {
                vec![
                    p.protocol.clone(),
                    fmt_num(p.loss_percent.max(0.0)),
                    fmt_num(p.rtt_ms),
                    p.completed.to_string(),
                    p.failed.to_string(),
                    format!("{:.1}", p.p50_ms),
                    format!("{:.1}", p.p90_ms),
                    format!("{:.1}", p.p99_ms),
                ]
            })
            .collect();
        table(
            out,
            "Handshake completion under packet loss (UDP, initiator)",
            &header,
            &rows,
        );
    }
}

/// Writes `DIR/index.html` and `DIR/results.json`; returns the page's path.
pub fn write(report: &Report, dir: &Path) -> Result<PathBuf, BenchError> {
    std::fs::create_dir_all(dir)?;
    let charts = charts::render(report)?;
    let file = dir.join("index.html");
    std::fs::write(&file, page(report, &charts))?;
    report.write_json(&dir.join("results.json"))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::report::Record;
    use crate::harness::{AuthClass, Implementation};

    #[test]
    fn the_page_is_self_contained_and_escaped() {
        let mut report = Report::new(serde_json::json!({"x": "<y>"}));
        for (p, v) in [
            ("Noise_NK_25519_ChaChaPoly_BLAKE2s", 10.0),
            ("TLS13_X25519", 5.0),
        ] {
            report.push(Record {
                protocol: p.into(),
                implementation: if p.starts_with("TLS") {
                    Implementation::Rustls
                } else {
                    Implementation::Akex
                },
                auth: AuthClass::ServerAuth,
                hybrid: false,
                forward_secret: true,
                metric: "handshakes_per_cpu_s_c1".into(),
                value: v,
                unit: "1/s".into(),
            });
        }
        report.compute_ratios();
        report.commands.push("akex bench --report out".into());
        let charts = charts::render(&report).unwrap();
        let html = page(&report, &charts);
        assert!(html.contains("<svg") && html.contains("render-status"));
        assert!(html.contains("&lt;y&gt;") && !html.contains("<y>"));
        assert!(!html.contains("<?xml") && !html.contains("src=\"http"));
        assert_eq!(html.matches("<table>").count(), 2);
    }
}
