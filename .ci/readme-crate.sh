#!/usr/bin/env bash
# Usage: .ci/readme-crate.sh DIR NAME
# Makes DIR a fresh binary crate NAME whose main.rs is the README's library
# example (its first ```rust,no_run block) and whose dependencies are the
# README's lines, with the path of this checkout. Copies Cargo.lock, so the
# crate builds with the versions CI tested.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$1
NAME=$2
mkdir -p "$DIR/src"
python3 - "$ROOT/README.md" "$DIR/src/main.rs" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index("```rust,no_run\n") + len("```rust,no_run\n")
open(sys.argv[2], "w").write(text[start:text.index("```", start)])
PY
cat > "$DIR/Cargo.toml" <<TOML
[package]
name = "$NAME"
version = "0.1.0"
edition = "2021"

[dependencies]
akex = { path = "$ROOT", features = ["tokio"] }
tokio = { version = "1", features = ["rt-multi-thread", "macros", "net", "io-util"] }
TOML
cp "$ROOT/Cargo.lock" "$DIR/"
