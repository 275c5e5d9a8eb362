//! Results: records (one per protocol × metric), like-with-like ratios
//! against rustls, and their renderings: an aligned table, JSON, markdown
//! and one SVG bar chart per metric.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::sys::Machine;
use super::{AuthClass, BenchError, Endpoint};

/// One measured number.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Row name (Noise protocol or `TLS13_...`).
    pub protocol: String,
    /// `akex` or `rustls`.
    pub implementation: &'static str,
    /// Which sides are authenticated.
    pub auth: AuthClass,
    /// True if the key exchange includes ML-KEM.
    pub hybrid: bool,
    /// False for RSA key transport (not forward secret).
    pub forward_secret: bool,
    /// Metric name, e.g. `latency_c1_p50`.
    pub metric: String,
    /// The value (always positive).
    pub value: f64,
    /// Its unit.
    pub unit: String,
}

impl Record {
    /// A record for `endpoint`.
    pub fn new(endpoint: &Endpoint, metric: &str, value: f64, unit: &str) -> Record {
        Record {
            protocol: endpoint.name(),
            implementation: if endpoint.is_baseline() {
                "rustls"
            } else {
                "akex"
            },
            auth: endpoint.auth(),
            hybrid: endpoint.is_hybrid(),
            forward_secret: endpoint.is_forward_secret(),
            metric: metric.to_string(),
            value,
            unit: unit.to_string(),
        }
    }
}

/// akex ÷ rustls for one metric, like with like.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// The akex row.
    pub protocol: String,
    /// The rustls row it is compared with.
    pub baseline: String,
    /// The metric.
    pub metric: String,
    /// akex value / rustls value.
    pub ratio: f64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// Versions of akex and of the libraries measured.
    pub versions: serde_json::Value,
    /// The options of the run.
    pub config: serde_json::Value,
    /// Every measured number.
    pub results: Vec<Record>,
    /// akex/rustls ratios.
    pub ratios: Vec<Ratio>,
    /// Protocols measured completely.
    pub completed: Vec<String>,
    /// True if the run was interrupted.
    pub interrupted: bool,
}

/// The metrics compared with rustls.
const RATIO_METRICS: [&str; 6] = [
    "handshakes_per_cpu_s_c1",
    "handshakes_per_s_c1",
    "latency_c1_p50",
    "bulk_echo_mb_s",
    "bulk_echo_mb_per_cpu_s",
    "handshake_bytes",
];

impl Report {
    /// An empty report for this machine.
    pub fn new(config: serde_json::Value) -> Report {
        Report {
            machine: Machine::describe(),
            versions: serde_json::json!({
                "akex": env!("CARGO_PKG_VERSION"),
                "rustls": "0.23 (aws-lc-rs provider)",
                "snow": "0.10",
                "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
            }),
            config,
            results: Vec::new(),
            ratios: Vec::new(),
            completed: Vec::new(),
            interrupted: false,
        }
    }

    /// Adds a record.
    pub fn push(&mut self, record: Record) {
        if record.value.is_finite() && record.value > 0.0 {
            self.results.push(record);
        }
    }

    /// Marks `protocol` as measured completely.
    pub fn finish_protocol(&mut self, protocol: &str) {
        self.completed.push(protocol.to_string());
    }

    fn value(&self, protocol: &str, metric: &str) -> Option<f64> {
        self.results
            .iter()
            .find(|r| r.protocol == protocol && r.metric == metric)
            .map(|r| r.value)
    }

    fn protocols(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for r in &self.results {
            if !seen.contains(&r.protocol) {
                seen.push(r.protocol.clone());
            }
        }
        seen
    }

    fn metrics(&self) -> Vec<(String, String)> {
        let mut seen: Vec<(String, String)> = Vec::new();
        for r in &self.results {
            if !seen.iter().any(|(m, _)| *m == r.metric) {
                seen.push((r.metric.clone(), r.unit.clone()));
            }
        }
        seen
    }

    /// Computes the akex/rustls ratios: server-authenticated Noise rows
    /// against TLS without client certificates, mutual ones against TLS
    /// with client certificates, hybrid against X25519MLKEM768.
    pub fn compute_ratios(&mut self) {
        let mut rows: Vec<(String, AuthClass, bool, &'static str)> = Vec::new();
        for r in &self.results {
            if !rows.iter().any(|(p, ..)| *p == r.protocol) {
                rows.push((r.protocol.clone(), r.auth, r.hybrid, r.implementation));
            }
        }
        let mut ratios = Vec::new();
        for (protocol, auth, hybrid, implementation) in &rows {
            if *implementation != "akex" || *auth == AuthClass::Anonymous {
                continue;
            }
            let baseline = format!(
                "TLS13_{}{}",
                if *hybrid { "X25519MLKEM768" } else { "X25519" },
                if *auth == AuthClass::Mutual {
                    "_mTLS"
                } else {
                    ""
                }
            );
            for metric in RATIO_METRICS {
                if let (Some(a), Some(b)) =
                    (self.value(protocol, metric), self.value(&baseline, metric))
                {
                    ratios.push(Ratio {
                        protocol: protocol.clone(),
                        baseline: baseline.clone(),
                        metric: metric.to_string(),
                        ratio: a / b,
                    });
                }
            }
        }
        self.ratios = ratios;
    }

    /// The columns of the terminal and markdown tables.
    fn columns(&self) -> Vec<(String, String)> {
        let wanted = [
            "latency_c1_p50",
            "latency_c1_p99",
            "latency_c*_p50",
            "latency_c*_p99",
            "latency_c*_p99.9",
            "handshakes_per_s_c*",
            "handshakes_per_cpu_s_c1",
            "bulk_echo_mb_s",
            "bulk_echo_mb_per_cpu_s",
            "small_messages_per_s",
            "handshake_bytes",
            "round_trips_to_first_data",
            "rss_per_session",
            "heap_per_session",
            "sessions_held",
            "latency_held_p99",
            "completion_rtt0ms_p50",
            "completion_rtt30ms_p50",
            "completion_rtt100ms_p50",
        ];
        let metrics = self.metrics();
        let mut cols = Vec::new();
        for w in wanted {
            for (m, unit) in &metrics {
                let hit = match w.split_once('*') {
                    Some((pre, post)) => {
                        m.starts_with(pre)
                            && m.ends_with(post)
                            && !m.starts_with("latency_c1_")
                            && !m.ends_with("_c1")
                            && m[pre.len()..m.len() - post.len()]
                                .chars()
                                .all(|c| c.is_ascii_digit())
                    }
                    None => m == w,
                };
                if hit && !cols.iter().any(|(c, _): &(String, String)| c == m) {
                    cols.push((m.clone(), unit.clone()));
                }
            }
        }
        cols
    }

    fn rows(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let cols = self.columns();
        let mut header = vec!["protocol".to_string()];
        header.extend(cols.iter().map(|(m, u)| format!("{} ({u})", short(m))));
        let mut rows = Vec::new();
        for p in self.protocols() {
            let mut row = vec![p.clone()];
            for (m, _) in &cols {
                row.push(self.value(&p, m).map_or_else(|| "-".into(), fmt_num));
            }
            rows.push(row);
        }
        (header, rows)
    }

    /// The aligned terminal table, then the ratios.
    pub fn table(&self) -> String {
        let (header, rows) = self.rows();
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in &rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.len());
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            for (i, cell) in cells.iter().enumerate() {
                if i == 0 {
                    let _ = write!(out, "{cell:<w$}", w = widths[0]);
                } else {
                    let _ = write!(out, "  {cell:>w$}", w = widths[i]);
                }
            }
            out.push('\n');
        };
        line(&header, &mut out);
        for row in &rows {
            line(row, &mut out);
        }
        if !self.ratios.is_empty() {
            out.push_str("\nakex / rustls, like with like (>1 is more for akex):\n");
            for r in &self.ratios {
                let _ = writeln!(
                    out,
                    "  {:<36} vs {:<26} {:<26} {:.2}",
                    r.protocol, r.baseline, r.metric, r.ratio
                );
            }
        }
        out
    }

    /// A markdown document: machine, table, ratios.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = format!(
            "# akex bench\n\nMachine: {} ({} cores, {} MiB, {}), load {}; akex {}, build {}.\n\n",
            m.cpu_model,
            m.cores,
            m.memory_mib,
            m.kernel,
            m.load_average,
            env!("CARGO_PKG_VERSION"),
            self.versions["profile"].as_str().unwrap_or("?"),
        );
        if self.interrupted {
            out.push_str("**Interrupted: partial results.**\n\n");
        }
        let (header, rows) = self.rows();
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
                .collect::<String>()
        );
        for row in rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        if !self.ratios.is_empty() {
            out.push_str(
                "\n| akex row | rustls row | metric | akex/rustls |\n|---|---|---|---:|\n",
            );
            for r in &self.ratios {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.2} |",
                    r.protocol, r.baseline, r.metric, r.ratio
                );
            }
        }
        out
    }

    /// Writes the JSON document.
    pub fn write_json(&self, path: &Path) -> Result<(), BenchError> {
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }

    /// Writes the markdown document.
    pub fn write_markdown(&self, path: &Path) -> Result<(), BenchError> {
        std::fs::write(path, self.markdown())?;
        Ok(())
    }

    /// One horizontal bar chart per metric, `<metric>.svg` in `dir`;
    /// returns the files written.
    pub fn write_charts(&self, dir: &Path) -> Result<Vec<std::path::PathBuf>, BenchError> {
        use plotters::prelude::*;
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let protocols = self.protocols();
        let mut metric_names = BTreeSet::new();
        for (metric, unit) in self.metrics() {
            if !metric_names.insert(metric.clone()) {
                continue;
            }
            let bars: Vec<(String, f64, bool)> = protocols
                .iter()
                .filter_map(|p| {
                    let r = self
                        .results
                        .iter()
                        .find(|r| &r.protocol == p && r.metric == metric)?;
                    Some((p.clone(), r.value, r.implementation == "rustls"))
                })
                .collect();
            if bars.is_empty() {
                continue;
            }
            let file = dir.join(format!("{}.svg", metric.replace('.', "_")));
            let height = 80 + 28 * bars.len() as u32;
            let max = bars.iter().map(|b| b.1).fold(0.0, f64::max) * 1.15;
            {
                let root = SVGBackend::new(&file, (900, height)).into_drawing_area();
                root.fill(&WHITE).map_err(chart_err)?;
                let mut chart = ChartBuilder::on(&root)
                    .caption(format!("{metric} ({unit})"), ("sans-serif", 18))
                    .margin(10)
                    .x_label_area_size(30)
                    .y_label_area_size(300)
                    .build_cartesian_2d(0.0..max, 0..bars.len())
                    .map_err(chart_err)?;
                let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
                chart
                    .configure_mesh()
                    .disable_y_mesh()
                    .y_labels(bars.len() + 1)
                    .y_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
                    .draw()
                    .map_err(chart_err)?;
                chart
                    .draw_series(bars.iter().enumerate().map(|(i, (_, v, baseline))| {
                        let color = if *baseline {
                            RGBColor(200, 120, 40)
                        } else {
                            RGBColor(40, 100, 180)
                        };
                        Rectangle::new([(0.0, i), (*v, i + 1)], color.filled())
                    }))
                    .map_err(chart_err)?;
                root.present().map_err(chart_err)?;
            }
            written.push(file);
        }
        Ok(written)
    }
}

fn chart_err<E: std::fmt::Debug>(e: E) -> BenchError {
    format!("chart: {e:?}").into()
}

fn short(metric: &str) -> String {
    metric
        .replace("latency_", "")
        .replace("handshakes_per_cpu_s", "hs/cpu-s")
        .replace("handshakes_per_s", "hs/s")
        .replace("bulk_echo_mb_per_cpu_s", "bulk/cpu-s")
        .replace("bulk_echo_mb_s", "bulk")
        .replace("small_messages_per_s", "msg/s")
        .replace("handshake_bytes", "wire")
        .replace("round_trips_to_first_data", "RTs")
        .replace("rss_per_session", "RSS/sess")
        .replace("heap_per_session", "heap/sess")
        .replace("sessions_held", "held")
        .replace("completion_", "")
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use akex::handshake::hybrid::{HYBRID_NK, HYBRID_XX};
    use akex::handshake::sigma::SIGMA_CHACHAPOLY;

    fn record(protocol: &str, auth: AuthClass, hybrid: bool, rustls: bool) -> Record {
        Record {
            protocol: protocol.to_string(),
            implementation: if rustls { "rustls" } else { "akex" },
            auth,
            hybrid,
            forward_secret: true,
            metric: "handshakes_per_cpu_s_c1".into(),
            value: 100.0,
            unit: "1/s".into(),
        }
    }

    #[test]
    fn ratios_pair_like_with_like() {
        let mut report = Report::new(serde_json::json!({}));
        for r in [
            record(
                "Noise_NN_25519_ChaChaPoly_BLAKE2s",
                AuthClass::Anonymous,
                false,
                false,
            ),
            record(
                "Noise_NK_25519_ChaChaPoly_BLAKE2s",
                AuthClass::ServerAuth,
                false,
                false,
            ),
            record(
                "Noise_XX_25519_ChaChaPoly_BLAKE2s",
                AuthClass::Mutual,
                false,
                false,
            ),
            record(SIGMA_CHACHAPOLY, AuthClass::Mutual, false, false),
            record(HYBRID_NK, AuthClass::ServerAuth, true, false),
            record(HYBRID_XX, AuthClass::Mutual, true, false),
            record("TLS13_X25519", AuthClass::ServerAuth, false, true),
            record("TLS13_X25519MLKEM768", AuthClass::ServerAuth, true, true),
            record("TLS13_X25519_mTLS", AuthClass::Mutual, false, true),
            record("TLS13_X25519MLKEM768_mTLS", AuthClass::Mutual, true, true),
        ] {
            report.push(r);
        }
        report.compute_ratios();
        let pairs: Vec<(&str, &str)> = report
            .ratios
            .iter()
            .map(|r| (r.protocol.as_str(), r.baseline.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("Noise_NK_25519_ChaChaPoly_BLAKE2s", "TLS13_X25519"),
                ("Noise_XX_25519_ChaChaPoly_BLAKE2s", "TLS13_X25519_mTLS"),
                (SIGMA_CHACHAPOLY, "TLS13_X25519_mTLS"),
                (HYBRID_NK, "TLS13_X25519MLKEM768"),
                (HYBRID_XX, "TLS13_X25519MLKEM768_mTLS"),
            ]
        );
    }
}
