#!/usr/bin/env bash
# The PKCS#11 checks (cargo feature pkcs11): installs SoftHSM2 and OpenSC
# (pkcs11-tool) with apt-get when they are absent, then, with a throwaway
# token under a temporary directory, runs `akex serve` and `akex connect` in
# two processes with their signing keys inside the token (Ed25519 and P-256
# suites), and the PKCS#11 test suites (tests/pkcs11.rs: API, protection
# attributes, the key store lifecycle, errors; tests/pkcs11_cli.rs: the
# command line across processes; tests/pkcs11_cli_token.rs: pkcs11-tool's
# view, one-line errors; tests/pkcs11_claims.rs: the PIN prompt, the four
# mechanisms akex needs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
step() { printf '\n== %s (at %d s, %s MB free)\n' "$*" "$SECONDS" "$(df -Pm . | awk 'NR==2 {print $4}')"; }

step "install softhsm2 and opensc if absent"
if ! command -v softhsm2-util >/dev/null 2>&1 || ! command -v pkcs11-tool >/dev/null 2>&1; then
    SUDO=
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y softhsm2 opensc
fi
softhsm2-util --version
MODULE=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/local/lib/softhsm/libsofthsm2.so; do
    [ -f "$m" ] && MODULE=$m && break
done
[ -n "$MODULE" ] || { echo "FAIL: libsofthsm2.so not found"; exit 1; }

step "a throwaway token; serve and connect with their keys in it (two processes)"
cargo build -q -p akex-cli --features pkcs11 --bin akex
AKEX="$ROOT/target/debug/akex"
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$WORK/tokens" >"$WORK/softhsm2.conf"
export SOFTHSM2_CONF="$WORK/softhsm2.conf" AKEX_PKCS11_MODULE="$MODULE"
# A throwaway PIN for a throwaway token; akex reads it from the environment.
export AKEX_PKCS11_PIN=ci-$RANDOM$RANDOM
softhsm2-util --init-token --free --label akex-ci --so-pin "so-$RANDOM$RANDOM" \
    --pin "$AKEX_PKCS11_PIN" >/dev/null
for suite in ed25519:akex-sigma-x25519-ed25519-aesgcm-sha256 p256:akex-sigma-p256-ecdsa-aesgcm-sha256; do
    type=${suite%%:*} protocol=${suite#*:}
    "$AKEX" keys --store "$WORK/srv" generate --name "srv-$type" --type "$type" \
        --pkcs11 "pkcs11:token=akex-ci;object=srv-$type" >/dev/null
    "$AKEX" keys --store "$WORK/cli" generate --name "cli-$type" --type "$type" \
        --pkcs11 "pkcs11:token=akex-ci;object=cli-$type" >/dev/null
    SRV_PUB=$("$AKEX" keys --store "$WORK/srv" show --name "srv-$type" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["public"])')
    CLI_PUB=$("$AKEX" keys --store "$WORK/cli" show --name "cli-$type" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["public"])')
    "$AKEX" serve --protocol "$protocol" --listen 127.0.0.1:0 --once --store "$WORK/srv" \
        --key "srv-$type" --remote-key "$CLI_PUB" 2>"$WORK/serve.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$WORK/serve.log" && break
        sleep 0.1
    done
    ADDR=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$WORK/serve.log" | head -n1)
    [ -n "$ADDR" ] || { echo "FAIL: akex serve did not start"; cat "$WORK/serve.log"; exit 1; }
    OUT=$(timeout 30 "$AKEX" connect --protocol "$protocol" --addr "$ADDR" --messages 3 \
        --store "$WORK/cli" --key "cli-$type" --remote-key "$SRV_PUB")
    echo "$OUT"
    echo "$OUT" | grep -q '"ok":true' || { echo "FAIL: $protocol with keys in the token"; exit 1; }
    wait "$SERVER_PID"
    SERVER_PID=
done
pkcs11-tool --module "$MODULE" --login --pin "$AKEX_PKCS11_PIN" -O --type privkey |
    grep -c "Access:     sensitive, always sensitive, never extractable" | grep -qx 4 ||
    { echo "FAIL: the private keys are not all sensitive and never extractable"; exit 1; }
echo "4 private keys in the token, all sensitive and never extractable"

step "PKCS#11 test suites (cargo test --features pkcs11)"
cargo test -p akex --features pkcs11 --lib --test pkcs11 --test pkcs11_cli --test pkcs11_cli_token --test pkcs11_claims
