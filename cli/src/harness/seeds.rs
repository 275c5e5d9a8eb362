//! The key-exchange seeds side by side (`akex bench --seeds`): finite-field
//! DH, RSA key transport, ECDH X25519, the X25519 + ML-KEM-768 hybrid and
//! PQ authentication, with CPU per handshake, bytes on the wire and the
//! properties that moved the field from one to the next.

use std::fmt::Write as _;

use akex::handshake::registry;

use super::report::{fmt_num, Report};

/// One seed of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedRow {
    /// The protocol measured.
    pub protocol: String,
    /// What it stands for, e.g. `FFDH-3072 (NK shape)`.
    pub label: String,
    /// CPU µs per handshake, both ends, in memory (no sockets).
    pub cpu_us: Option<f64>,
    /// Handshakes per CPU-second over loopback TCP (both ends).
    pub hs_per_cpu_s: Option<f64>,
    /// Handshake bytes on the wire, both ways, with framing.
    pub wire_bytes: Option<f64>,
    /// Past sessions survive the theft of long-term keys.
    pub forward_secret: bool,
    /// Confidentiality holds against a quantum attacker.
    pub pq_confidentiality: bool,
    /// Authentication holds against a quantum attacker.
    pub pq_authentication: bool,
}

/// The label of a seed protocol, or `None` for other rows.
pub fn label(protocol: &str) -> Option<&'static str> {
    Some(match protocol {
        #[cfg(feature = "ffdh")]
        akex::handshake::ffdh::FFDH_NK => "FFDH-3072 (finite-field DH, NK shape)",
        #[cfg(feature = "rsa-kt")]
        akex::handshake::rsa::RSA_KT => "RSA-3072 key transport (NK shape)",
        "Noise_NK_25519_ChaChaPoly_BLAKE2s" => "ECDH X25519 (Noise NK)",
        "Noise_XX_25519_ChaChaPoly_BLAKE2s" => "ECDH X25519 (Noise XX)",
        akex::handshake::hybrid::HYBRID_NK => "X25519 + ML-KEM-768 (hybrid NK)",
        akex::handshake::hybrid::HYBRID_XX => "X25519 + ML-KEM-768 (hybrid XX)",
        akex::handshake::pq::PQ_XX => "PQ-authenticated XX (ML-KEM-768 statics)",
        akex::handshake::pq::PQ_IK => "PQ-authenticated IK (ML-KEM-768 statics)",
        _ => return None,
    })
}

/// The seed rows `report` measured, in its order.
pub fn rows(report: &Report) -> Vec<SeedRow> {
    report
        .protocols()
        .into_iter()
        .filter_map(|p| {
            let label = label(&p)?;
            let info = registry::info(&p);
            let pq = info.map_or("no", |i| i.post_quantum);
            Some(SeedRow {
                cpu_us: report.value(&p, "inmem_handshake_us"),
                hs_per_cpu_s: report.value(&p, "handshakes_per_cpu_s_c1"),
                wire_bytes: report.value(&p, "handshake_bytes"),
                forward_secret: registry::forward_secrecy(&p).unwrap_or(true),
                pq_confidentiality: pq.starts_with("confidentiality"),
                pq_authentication: pq.contains("authentication"),
                label: label.to_string(),
                protocol: p,
            })
        })
        .collect()
}

/// The comparison as a markdown table (empty with fewer than two seeds).
pub fn markdown(report: &Report) -> String {
    let rows = rows(report);
    if rows.len() < 2 {
        return String::new();
    }
    let mut out = String::from(
        "\n| seed | protocol | CPU µs / handshake (in memory, both ends) | handshakes per CPU-s (loopback) \
         | bytes on the wire | forward secret | PQ confidentiality | PQ authentication |\n\
         |---|---|---:|---:|---:|---|---|---|\n",
    );
    let yes = |b: bool| if b { "yes" } else { "**no**" };
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_string(), fmt_num);
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.protocol,
            num(r.cpu_us),
            num(r.hs_per_cpu_s),
            num(r.wire_bytes),
            yes(r.forward_secret),
            yes(r.pq_confidentiality),
            yes(r.pq_authentication),
        );
    }
    out
}
