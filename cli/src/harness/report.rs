//! Results: records (one per protocol × metric), like-with-like ratios
//! against rustls and OpenSSL, and their renderings: an aligned table,
//! JSON and markdown (SVG charts in [`super::charts`], the HTML page in
//! [`super::html`]).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::loss::LossPoint;
use super::sys::Machine;
use super::{AuthClass, BenchError, Endpoint, Implementation};

/// One measured number.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Row name (Noise protocol, akex-mode name, `TLS13_...` or
    /// `OpenSSL_TLS13_...`).
    pub protocol: String,
    /// `akex`, `rustls` or `openssl`.
    pub implementation: Implementation,
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
            implementation: endpoint.implementation(),
            auth: endpoint.auth(),
            hybrid: endpoint.is_hybrid(),
            forward_secret: endpoint.is_forward_secret(),
            metric: metric.to_string(),
            value,
            unit: unit.to_string(),
        }
    }
}

/// akex ÷ baseline for one metric, like with like.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// The akex row.
    pub protocol: String,
    /// The baseline row it is compared with.
    pub baseline: String,
    /// `rustls` or `openssl`.
    pub baseline_implementation: Implementation,
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
    /// akex/rustls and akex/OpenSSL ratios.
    pub ratios: Vec<Ratio>,
    /// Handshake completion under loss (`--loss-sweep`), if measured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loss_sweep: Vec<LossPoint>,
    /// The command lines that reproduce this run.
    pub commands: Vec<String>,
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
            versions: versions(),
            config,
            results: Vec::new(),
            ratios: Vec::new(),
            loss_sweep: Vec::new(),
            commands: Vec::new(),
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

    /// The value of `metric` for `protocol`, if measured.
    pub fn value(&self, protocol: &str, metric: &str) -> Option<f64> {
        self.results
            .iter()
            .find(|r| r.protocol == protocol && r.metric == metric)
            .map(|r| r.value)
    }

    /// Row names in the order they were measured.
    pub fn protocols(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for r in &self.results {
            if !seen.contains(&r.protocol) {
                seen.push(r.protocol.clone());
            }
        }
        seen
    }

    /// Metric names and units in the order they were first measured.
    pub fn metrics(&self) -> Vec<(String, String)> {
        let mut seen: Vec<(String, String)> = Vec::new();
        for r in &self.results {
            if !seen.iter().any(|(m, _)| *m == r.metric) {
                seen.push((r.metric.clone(), r.unit.clone()));
            }
        }
        seen
    }

    /// Computes the like-with-like ratios: server-authenticated akex rows
    /// against TLS without client certificates, mutual ones against TLS
    /// with client certificates, hybrid against X25519MLKEM768; each
    /// against the rustls row and, where measured, the OpenSSL row.
    pub fn compute_ratios(&mut self) {
        let mut rows: Vec<(String, AuthClass, bool, Implementation)> = Vec::new();
        for r in &self.results {
            if !rows.iter().any(|(p, ..)| *p == r.protocol) {
                rows.push((r.protocol.clone(), r.auth, r.hybrid, r.implementation));
            }
        }
        let mut ratios = Vec::new();
        for (protocol, auth, hybrid, implementation) in &rows {
            if *implementation != Implementation::Akex || *auth == AuthClass::Anonymous {
                continue;
            }
            for (prefix, baseline_implementation) in [
                ("", Implementation::Rustls),
                ("OpenSSL_", Implementation::Openssl),
            ] {
                let baseline = baseline_row(prefix, *auth, *hybrid);
                for metric in RATIO_METRICS {
                    if let (Some(a), Some(b)) =
                        (self.value(protocol, metric), self.value(&baseline, metric))
                    {
                        ratios.push(Ratio {
                            protocol: protocol.clone(),
                            baseline: baseline.clone(),
                            baseline_implementation,
                            metric: metric.to_string(),
                            ratio: a / b,
                        });
                    }
                }
            }
        }
        self.ratios = ratios;
    }

    /// The ratio of `protocol` against `implementation` for `metric`.
    pub fn ratio(
        &self,
        protocol: &str,
        implementation: Implementation,
        metric: &str,
    ) -> Option<&Ratio> {
        self.ratios.iter().find(|r| {
            r.protocol == protocol
                && r.baseline_implementation == implementation
                && r.metric == metric
        })
    }

    /// The ratio table: one line per akex row and metric, with the rustls
    /// and the OpenSSL column side by side.
    pub fn ratio_rows(&self) -> Vec<[String; 6]> {
        let mut out = Vec::new();
        let mut seen: Vec<(String, String)> = Vec::new();
        for r in &self.ratios {
            let key = (r.protocol.clone(), r.metric.clone());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let cell = |implementation| {
                self.ratio(&r.protocol, implementation, &r.metric)
                    .map_or_else(
                        || ("-".to_string(), "-".to_string()),
                        |x| (x.baseline.clone(), format!("{:.2}", x.ratio)),
                    )
            };
            let (rustls_row, rustls_ratio) = cell(Implementation::Rustls);
            let (openssl_row, openssl_ratio) = cell(Implementation::Openssl);
            out.push([
                r.protocol.clone(),
                r.metric.clone(),
                rustls_row,
                rustls_ratio,
                openssl_row,
                openssl_ratio,
            ]);
        }
        out
    }

    /// The columns of the terminal and markdown tables.
    fn columns(&self) -> Vec<(String, String)> {
        let wanted = [
            "inmem_handshake_us",
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
            out.push_str(
                "\nakex / baseline, like with like (>1 is more for akex; \
                 rustls and OpenSSL side by side):\n",
            );
            for [protocol, metric, rustls_row, rustls, openssl_row, openssl] in self.ratio_rows() {
                let _ = writeln!(
                    out,
                    "  {protocol:<50} {metric:<24} vs {rustls_row:<26} {rustls:>5}   \
                     vs {openssl_row:<34} {openssl:>5}"
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
                "\n| akex row | metric | rustls row | akex/rustls | OpenSSL row | akex/OpenSSL |\n\
                 |---|---|---|---:|---|---:|\n",
            );
            for row in self.ratio_rows() {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
        }
        out.push_str(&super::seeds::markdown(self));
        if !self.loss_sweep.is_empty() {
            out.push_str(&super::loss::markdown(&self.loss_sweep));
        }
        if !self.commands.is_empty() {
            out.push_str("\nReproduce:\n\n```sh\n");
            for c in &self.commands {
                let _ = writeln!(out, "{c}");
            }
            out.push_str("```\n");
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
}

/// The baseline row compared with an akex row of `auth` and `hybrid`.
fn baseline_row(prefix: &str, auth: AuthClass, hybrid: bool) -> String {
    format!(
        "{prefix}TLS13_{}{}",
        if hybrid { "X25519MLKEM768" } else { "X25519" },
        if auth == AuthClass::Mutual {
            "_mTLS"
        } else {
            ""
        }
    )
}

/// The versions of what is measured (the OpenSSL one read from the
/// linked library).
fn versions() -> serde_json::Value {
    #[allow(unused_mut)]
    let mut v = serde_json::json!({
        "akex": env!("CARGO_PKG_VERSION"),
        "rustls": "0.23 (aws-lc-rs provider)",
        "snow": "0.10",
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    #[cfg(feature = "openssl")]
    {
        v["openssl"] = super::openssl_baseline::version().into();
    }
    v
}

/// A short column name for `metric`.
pub fn short(metric: &str) -> String {
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
        .replace("inmem_handshake_us", "in-mem hs")
}

/// A number with 3 significant-ish digits.
pub fn fmt_num(v: f64) -> String {
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
            implementation: if protocol.starts_with("OpenSSL_") {
                Implementation::Openssl
            } else if rustls {
                Implementation::Rustls
            } else {
                Implementation::Akex
            },
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
            record("OpenSSL_TLS13_X25519", AuthClass::ServerAuth, false, true),
            record("OpenSSL_TLS13_X25519_mTLS", AuthClass::Mutual, false, true),
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
                ("Noise_NK_25519_ChaChaPoly_BLAKE2s", "OpenSSL_TLS13_X25519"),
                ("Noise_XX_25519_ChaChaPoly_BLAKE2s", "TLS13_X25519_mTLS"),
                (
                    "Noise_XX_25519_ChaChaPoly_BLAKE2s",
                    "OpenSSL_TLS13_X25519_mTLS"
                ),
                (SIGMA_CHACHAPOLY, "TLS13_X25519_mTLS"),
                (SIGMA_CHACHAPOLY, "OpenSSL_TLS13_X25519_mTLS"),
                (HYBRID_NK, "TLS13_X25519MLKEM768"),
                (HYBRID_XX, "TLS13_X25519MLKEM768_mTLS"),
            ]
        );
        let rows = report.ratio_rows();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0][4], "OpenSSL_TLS13_X25519");
        assert_eq!(rows[3][4], "-");
    }
}
