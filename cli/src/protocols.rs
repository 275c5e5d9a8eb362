//! `akex protocols`: the registry as a table.

use akex::handshake::registry::{protocols, Mode};

/// The registry as a plain-text table, one protocol per line.
pub fn table() -> String {
    let header = [
        "protocol",
        "family",
        "mode",
        "authentication",
        "forward secrecy",
        "post-quantum",
        "identity hiding",
        "messages (bytes)",
        "total",
        "round trips",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for p in protocols() {
        rows.push(vec![
            p.name.to_string(),
            p.family.to_string(),
            match p.mode {
                Mode::Noise => "noise".into(),
                _ => "akex".into(),
            },
            p.authentication.to_string(),
            match (p.forward_secrecy, p.one_way) {
                (true, _) => "yes",
                (false, true) => "NO (one-way)",
                (false, false) => "NO",
            }
            .into(),
            p.post_quantum.to_string(),
            p.identity_hiding.to_string(),
            p.message_sizes
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("/"),
            p.total_bytes().to_string(),
            format!("{}", p.round_trips),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out.push_str(
        "\nNoise mode also accepts any other Noise name with the 25519 DH \
         (e.g. Noise_XX_25519_AESGCM_SHA256).\n\
         One-way patterns (N, K, X, with any cipher, hash or PSK): one message, no answer; \
         not forward secret against the theft of the responder's key, and a replayed \
         message cannot be told from a fresh one.\n",
    );
    out
}
