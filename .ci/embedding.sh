#!/usr/bin/env bash
# The embedding checks (docs/embedding.md): crate budgets of the core and
# core + tokio, the core built with every optional part off, the std::net
# example run with no tokio in its tree, and the README's library example
# copied into a fresh crate, built and run against a real `akex serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

count() { # distinct crates of `cargo tree -p akex -e normal "$@"`, akex excluded
    cargo tree -q -p akex -e normal --prefix none "$@" |
        sed 's/ (\*)//; s/ (proc-macro)//' | sort -u | grep -vc '^akex v' || true
}
forbidden='^(clap|rustls|tokio-rustls|rcgen|plotters|indicatif|hdrhistogram|nix|rpassword|age|ring|pqcrypto[a-z-]*) v'

core=$(count)
with_tokio=$(count --features tokio)
echo "crates: core $core (budget 35), core + tokio $with_tokio (budget 60)"
[ "$core" -le 35 ] || { echo "FAIL: the core has $core crates (budget 35)"; exit 1; }
[ "$with_tokio" -le 60 ] || { echo "FAIL: core + tokio has $with_tokio crates (budget 60)"; exit 1; }
for features in "" "--features tokio"; do
    # shellcheck disable=SC2086
    if cargo tree -q -p akex -e normal --prefix none $features | grep -E "$forbidden"; then
        echo "FAIL: a CLI/bench-only crate is in the library's tree ($features)"; exit 1
    fi
done
if cargo tree -q -p akex -e normal --prefix none | grep -q '^tokio v'; then
    echo "FAIL: tokio is in the core's tree"; exit 1
fi
echo "no CLI or bench crates in either tree; no tokio in the core"
# ML-KEM calls aws-lc through aws-lc-sys (docs/mlkem-choice.md): it must be
# the one aws-lc-rs links, and that module the only one allowing unsafe.
[ "$(grep -c '^name = "aws-lc-sys"$' Cargo.lock)" -eq 1 ] ||
    { echo "FAIL: Cargo.lock has more than one aws-lc-sys"; exit 1; }
unsafe_modules=$(grep -rlE '(allow|expect)\(([a-z_]+, *)*unsafe_code' src | grep -v '^src/crypto/mlkem_ffi.rs$' || true)
[ -z "$unsafe_modules" ] || { echo "FAIL: unsafe allowed outside src/crypto/mlkem_ffi.rs: $unsafe_modules"; exit 1; }
grep -q '^#!\[deny(unsafe_code)\]' src/lib.rs || { echo "FAIL: src/lib.rs no longer denies unsafe code"; exit 1; }
echo "one aws-lc-sys; unsafe only in src/crypto/mlkem_ffi.rs"

echo "building the core with every optional part off"
cargo build -q -p akex --no-default-features
cargo build -q -p akex --no-default-features --features tokio

echo "examples/std-net: blocking std::net, no tokio"
if cargo tree -q -p akex-example-std-net -e normal --prefix none | grep -q '^tokio v'; then
    echo "FAIL: tokio is in examples/std-net's tree"; exit 1
fi
cargo run -q -p akex-example-std-net

echo "the README's library example in a fresh crate, against akex serve"
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
bash .ci/readme-crate.sh "$WORK/client" readme-client
cargo build -q --manifest-path "$WORK/client/Cargo.toml" --target-dir "$ROOT/target"
cargo build -q -p akex-cli --bin akex
AKEX="$ROOT/target/debug/akex"
PUB=$("$AKEX" keygen --output "$WORK/server.key")
"$AKEX" serve --protocol Noise_IK_25519_ChaChaPoly_BLAKE2s --listen 127.0.0.1:0 \
    --identity "$WORK/server.key" 2>"$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    grep -q "listening on" "$WORK/serve.log" && break
    sleep 0.1
done
ADDR=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$WORK/serve.log" | head -n1)
[ -n "$ADDR" ] || { echo "FAIL: akex serve did not start"; cat "$WORK/serve.log"; exit 1; }
OUT=$(timeout 30 "$ROOT/target/debug/readme-client" "$ADDR" "$PUB")
echo "$OUT"
echo "$OUT" | grep -q "echoed over Noise_IK_25519_ChaChaPoly_BLAKE2s" ||
    { echo "FAIL: the README example did not complete"; exit 1; }
echo "embedding checks: ok"
