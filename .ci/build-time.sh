#!/usr/bin/env bash
# Clean release builds of two fresh binary crates, back to back: the
# README's akex client (core + tokio) and a tokio-rustls client of the same
# shape. Prints the seconds of each (docs/embedding.md keeps the numbers).
# Not part of .ci/run: it takes several minutes and needs an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
bash .ci/readme-crate.sh "$WORK/akex" akex-client
mkdir -p "$WORK/rustls/src"
cat > "$WORK/rustls/Cargo.toml" <<'TOML'
[package]
name = "rustls-client"
version = "0.1.0"
edition = "2021"
[dependencies]
tokio-rustls = "0.26"
tokio = { version = "1", features = ["rt-multi-thread", "macros", "net", "io-util"] }
TOML
cat > "$WORK/rustls/src/main.rs" <<'RS'
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).ok_or("usage: client ADDR")?;
    let config = ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(&addr).await?;
    let mut stream = connector.connect(ServerName::try_from("localhost")?, tcp).await?;
    stream.write_all(b"hello").await?;
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).await?;
    Ok(())
}
RS
cp Cargo.lock "$WORK/rustls/"
for round in 1 2; do
    for crate in akex rustls; do
        rm -rf "$WORK/target-$crate"
        start=$(date +%s.%N)
        cargo build -q --release --manifest-path "$WORK/$crate/Cargo.toml" \
            --target-dir "$WORK/target-$crate"
        end=$(date +%s.%N)
        printf 'round %d  %-6s %6.1f s  (load %s)\n' "$round" "$crate" \
            "$(echo "$end - $start" | bc)" "$(cut -d' ' -f1 /proc/loadavg)"
    done
done
