#!/usr/bin/env bash
# Interoperability matrix: akex against two independent Noise
# implementations from PyPI, `noiseprotocol` and `dissononce`, both driven
# by interop/noise_peer.py (`--impl`).
#
#   bash interop/run.sh            # whole matrix (88 cases per library), ~1 min
#   INTEROP_IMPLS=dissononce bash interop/run.sh   # one library only
#   AKEX=/path/to/akex bash interop/run.sh   # use a prebuilt binary, skip cargo
#   INTEROP_FILTER=IK bash interop/run.sh    # only cases whose name contains IK
#   INTEROP_VERBOSE=1 bash interop/run.sh    # print both sides of every case
#
# For every case it starts one side as a server on 127.0.0.1:0, runs the
# other side as a client against it, and checks both exit codes, that both
# sides computed the same handshake hash and that each side saw the static
# key it should. Negative cases (wrong PSK, wrong or unpinned remote key,
# prologue mismatch) must make BOTH sides exit non-zero, quickly.
# Prints "interop: N passed, M failed" and exits non-zero if any failed.

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
VENV="$HERE/.venv"
PEER="$HERE/noise_peer.py"
FILTER=${INTEROP_FILTER:-}
VERBOSE=${INTEROP_VERBOSE:-0}
# Outer limits (seconds): a hang shows as exit code 124 and fails the case.
POSITIVE_LIMIT=30
NEGATIVE_LIMIT=8
# Inner limits given to both peers; above NEGATIVE_LIMIT on purpose, so a
# negative case that only fails because some timer fired counts as a hang.
PEER_TIMEOUT=10

START_TIME=$(date +%s)

# --- the Python peer ---------------------------------------------------------
IMPLS=${INTEROP_IMPLS:-noiseprotocol dissononce}
if ! "$VENV/bin/python" -c 'import noise, dissononce' 2>/dev/null; then
    echo "interop: creating $VENV with noiseprotocol==0.3.1 and dissononce==0.34.3" >&2
    [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV" || { echo "interop: python3 -m venv failed" >&2; exit 2; }
    "$VENV/bin/pip" install -q noiseprotocol==0.3.1 dissononce==0.34.3 ||
        { echo "interop: pip install failed" >&2; exit 2; }
fi
PY="$VENV/bin/python"

# --- the akex binary ---------------------------------------------------------
if [ -z "${AKEX:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet --bin akex) || { echo "interop: cargo build failed" >&2; exit 2; }
    TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
        "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])') || TARGET_DIR="$ROOT/target"
    AKEX="$TARGET_DIR/release/akex"
fi
[ -x "$AKEX" ] || { echo "interop: no akex binary at $AKEX" >&2; exit 2; }

# --- keys ----------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/akex-interop.XXXXXX")
BG_PIDS=()
cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

S_PUB=$("$AKEX" keygen --output "$WORK/server.key") || exit 2
C_PUB=$("$AKEX" keygen --output "$WORK/client.key") || exit 2
O_PUB=$("$AKEX" keygen --output "$WORK/other.key") || exit 2   # nobody's key
S_PRIV=$(tr -d '\n' <"$WORK/server.key")
C_PRIV=$(tr -d '\n' <"$WORK/client.key")
random32() { "$PY" -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'; }
PSK=$(random32)
PSK_WRONG=$(random32)
PSKS=("$PSK" "$(random32)")

PASSED=0
FAILED=0
FAILED_NAMES=()

# --- helpers ---------------------------------------------------------------------
json_field() { # FILE KEY -> value of KEY in the first JSON line of FILE (or empty)
    "$PY" - "$1" "$2" <<'EOF' 2>/dev/null
import json, sys
try:
    with open(sys.argv[1]) as f:
        v = json.loads(f.readline()).get(sys.argv[2])
except Exception:
    v = None
print("" if v is None else (str(v).lower() if isinstance(v, bool) else v))
EOF
}
py_field() { # FILE TAG -> value of the "TAG value" line
    sed -n "s/^$2 //p" "$1" | head -n1
}
serve_field() { # FILE KEY -> value of KEY=... in akex serve's "handshake ok" line
    grep 'handshake ok' "$1" | head -n1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}
wait_for() { # FILE REGEX PID -> waits (<= 5 s) until FILE matches or PID died
    local i
    for i in $(seq 1 100); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || { grep -qE "$2" "$1" 2>/dev/null; return; }
        sleep 0.05
    done
    return 1
}
show() { # LABEL FILE
    echo "    --- $1"
    if [ -s "$2" ]; then sed 's/^/    | /' "$2"; else echo "    | (empty)"; fi
}

# Prints the handshake arguments of one side, one per line.
#   args_for SIDE(server|client) IMPL(akex|py) CASE
# CASE is a pattern with its modifiers (NN, XX, IK, XXpsk3, IKpsk2,
# XXpsk0+psk3, ...) or the name of a negative case.
#
# For a pattern, each side gets exactly what the pattern uses: its static key
# if it has one, the peer's key if the pattern authenticates the peer (given
# in advance for K/I, pinned for X: both sides always check the peer's key),
# and one PSK per pskN modifier.
args_for() {
    local side=$1 impl=$2 case=$3 id priv
    local ident=() remote=() psk=()
    if [ "$side" = server ]; then priv=$S_PRIV; id="$WORK/server.key"; else priv=$C_PRIV; id="$WORK/client.key"; fi
    if [ "$impl" = akex ]; then ident=(--identity "$id"); else ident=(--private-key "$priv"); fi
    if [[ "$case" =~ ^([NKXI])([NKX])((psk[0-9])(\+psk[0-9])*)?$ ]]; then
        local init=${BASH_REMATCH[1]} resp=${BASH_REMATCH[2]} mods=${BASH_REMATCH[3]} i n
        if [ "$side" = server ]; then
            [ "$resp" = N ] && ident=()
            [ "$init" = N ] || remote=(--remote-key "$C_PUB")
        else
            [ "$init" = N ] && ident=()
            [ "$resp" = N ] || remote=(--remote-key "$S_PUB")
        fi
        n=$(grep -o psk <<<"$mods" | wc -l)
        for ((i = 0; i < n; i++)); do psk+=(--psk "${PSKS[$i]}"); done
    else
        case "$case" in
            wrong-psk) psk=(--psk "$PSK")
                [ "$side" = server ] && psk=(--psk "$PSK_WRONG") ;;
            IK-client-wrong-server-key) [ "$side" = client ] && remote=(--remote-key "$O_PUB") ;;
            KK-server-wrong-client-key) if [ "$side" = server ]; then remote=(--remote-key "$O_PUB"); else remote=(--remote-key "$S_PUB"); fi ;;
            XX-client-pins-other-key) [ "$side" = client ] && remote=(--remote-key "$O_PUB") ;;
            XX-server-pins-other-key) [ "$side" = server ] && remote=(--remote-key "$O_PUB") ;;
            wrong-prologue)
                if [ "$side" = server ]; then printf '%s\n' --prologue akex-interop-server; else printf '%s\n' --prologue akex-interop; fi ;;
            *) echo "args_for: unknown case $case" >&2; return 1 ;;
        esac
    fi
    [ "$case" = wrong-prologue ] || printf '%s\n' --prologue akex-interop
    local a
    for a in "${ident[@]}" "${remote[@]}" "${psk[@]}"; do printf '%s\n' "$a"; done
}

# run_case NAME DIRECTION PROTOCOL CASE EXPECT(ok|fail) [EXTRA_CLIENT_ARGS...]
#   DIRECTION: akex2py (akex connect -> python server)
#              py2akex (python client -> akex serve)
run_case() {
    local name="$IMPL: $1" dir=$2 proto=$3 case=$4 expect=$5
    shift 5
    local extra=("$@")
    if [ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]]; then return; fi
    local d="$WORK/case$((PASSED + FAILED))"
    mkdir -p "$d"
    local limit=$POSITIVE_LIMIT
    [ "$expect" = fail ] && limit=$NEGATIVE_LIMIT
    local sargs cargs
    mapfile -t sargs < <(args_for server "$([ "$dir" = akex2py ] && echo py || echo akex)" "$case")
    mapfile -t cargs < <(args_for client "$([ "$dir" = akex2py ] && echo akex || echo py)" "$case")

    local spid src crc port problems=()
    local t0 t1
    t0=$(date +%s%N)
    if [ "$dir" = akex2py ]; then
        timeout "$limit" "$PY" "$PEER" server --impl "$IMPL" --protocol "$proto" --timeout "$PEER_TIMEOUT" "${sargs[@]}" \
            >"$d/server.out" 2>"$d/server.err" &
        spid=$!
        BG_PIDS+=("$spid")
        if wait_for "$d/server.out" '^PORT [0-9]+' "$spid"; then
            port=$(py_field "$d/server.out" PORT)
            timeout "$limit" "$AKEX" connect --protocol "$proto" --addr "127.0.0.1:$port" \
                --timeout "$PEER_TIMEOUT" "${cargs[@]}" "${extra[@]}" >"$d/client.out" 2>"$d/client.err"
            crc=$?
        else
            problems+=("python server did not print its port")
            crc=99
        fi
    else
        timeout "$limit" "$AKEX" serve --protocol "$proto" --listen 127.0.0.1:0 --once \
            --timeout "$PEER_TIMEOUT" "${sargs[@]}" >"$d/server.out" 2>"$d/server.err" &
        spid=$!
        BG_PIDS+=("$spid")
        if wait_for "$d/server.err" 'listening on [0-9.]+:[0-9]+' "$spid"; then
            port=$(grep -oE 'listening on [0-9.]+:[0-9]+' "$d/server.err" | head -n1 | sed 's/.*://')
            timeout "$limit" "$PY" "$PEER" client --impl "$IMPL" --protocol "$proto" --addr "127.0.0.1:$port" \
                --timeout "$PEER_TIMEOUT" "${cargs[@]}" "${extra[@]}" >"$d/client.out" 2>"$d/client.err"
            crc=$?
        else
            problems+=("akex serve did not print its address")
            crc=99
        fi
    fi
    wait "$spid"
    src=$?
    t1=$(date +%s%N)
    local ms=$(((t1 - t0) / 1000000))
    [ "$src" = 124 ] && problems+=("server hung (killed after ${limit}s)")
    [ "$crc" = 124 ] && problems+=("client hung (killed after ${limit}s)")

    # Each side's view: handshake hash and the peer key it reports.
    local s_hash c_hash s_remote c_remote
    if [ "$dir" = akex2py ]; then
        s_hash=$(py_field "$d/server.out" HANDSHAKE_HASH)
        s_remote=$(py_field "$d/server.out" REMOTE_KEY)
        c_hash=$(json_field "$d/client.out" handshake_hash)
        c_remote=$(json_field "$d/client.out" remote_key)
    else
        s_hash=$(serve_field "$d/server.err" handshake_hash)
        s_remote=$(serve_field "$d/server.err" remote_key)
        [ "$s_remote" = none ] && s_remote=
        c_hash=$(py_field "$d/client.out" HANDSHAKE_HASH)
        c_remote=$(py_field "$d/client.out" REMOTE_KEY)
    fi

    if [ "$expect" = ok ]; then
        [ "$src" = 0 ] || problems+=("server exited $src")
        [ "$crc" = 0 ] || problems+=("client exited $crc")
        if [ "$dir" = akex2py ] && [ "$(json_field "$d/client.out" ok)" != true ]; then
            problems+=("akex connect did not print ok:true")
        fi
        if [ -z "$s_hash" ] || [ -z "$c_hash" ]; then
            problems+=("a side printed no handshake hash")
        elif [ "$s_hash" != "$c_hash" ]; then
            problems+=("handshake hashes differ: server $s_hash, client $c_hash")
        fi
        local want_s_remote= want_c_remote=
        [ "${case:0:1}" = N ] || want_s_remote=$C_PUB
        [ "${case:1:1}" = N ] || want_c_remote=$S_PUB
        [ "$s_remote" = "$want_s_remote" ] || problems+=("server saw peer key '${s_remote}', expected '${want_s_remote}'")
        [ "$c_remote" = "$want_c_remote" ] || problems+=("client saw peer key '${c_remote}', expected '${want_c_remote}'")
    else
        [ "$src" != 0 ] || problems+=("server exited 0, expected a failure")
        [ "$crc" != 0 ] || problems+=("client exited 0, expected a failure")
        if [ "$dir" = akex2py ] && [ "$(json_field "$d/client.out" ok)" != false ]; then
            problems+=("akex connect did not print ok:false")
        fi
    fi

    if [ ${#problems[@]} -eq 0 ]; then
        PASSED=$((PASSED + 1))
        printf 'ok    %-58s %5d ms\n' "$name" "$ms"
        [ "$VERBOSE" = 1 ] || return 0
    else
        FAILED=$((FAILED + 1))
        FAILED_NAMES+=("$name")
        printf 'FAIL  %-58s %5d ms\n' "$name" "$ms"
        local p
        for p in "${problems[@]}"; do echo "    - $p"; done
    fi
    echo "    server args: ${sargs[*]}"
    echo "    client args: ${cargs[*]} ${extra[*]}"
    show "server stdout" "$d/server.out"
    show "server stderr" "$d/server.err"
    show "client stdout" "$d/client.out"
    show "client stderr" "$d/client.err"
}

# --- the matrix ------------------------------------------------------------------
echo "interop: akex=$AKEX"
matrix() {

    for pattern in NN XX IK KK XXpsk3; do
        for cipher in ChaChaPoly AESGCM; do
            for hash in BLAKE2s SHA256; do
                proto="Noise_${pattern}_25519_${cipher}_${hash}"
                run_case "$proto akex->py" akex2py "$proto" "$pattern" ok --messages 5 --size 1000
                run_case "$proto py->akex" py2akex "$proto" "$pattern" ok --messages 5 --size 1000
            done
        done
    done

    # Beyond the required matrix: every other two-way base pattern, more PSK
    # placements (including two PSKs), and the BLAKE2b and SHA512 hashes.
    for proto in \
        Noise_NK_25519_ChaChaPoly_BLAKE2s Noise_NX_25519_AESGCM_SHA256 \
        Noise_XN_25519_ChaChaPoly_SHA256 Noise_XK_25519_AESGCM_BLAKE2s \
        Noise_KN_25519_ChaChaPoly_BLAKE2s Noise_KX_25519_AESGCM_SHA256 \
        Noise_IN_25519_ChaChaPoly_SHA256 Noise_IX_25519_AESGCM_BLAKE2s \
        Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s Noise_IKpsk2_25519_AESGCM_SHA256 \
        Noise_XXpsk0+psk3_25519_ChaChaPoly_BLAKE2s \
        Noise_XX_25519_ChaChaPoly_BLAKE2b Noise_XX_25519_AESGCM_SHA512; do
        pattern=$(cut -d_ -f2 <<<"$proto")
        run_case "$proto akex->py" akex2py "$proto" "$pattern" ok --messages 3 --size 500
        run_case "$proto py->akex" py2akex "$proto" "$pattern" ok --messages 3 --size 500
    done

    # Edge sizes: an empty message and the largest message a frame can carry.
    for size in 0 65519; do
        proto=Noise_XX_25519_ChaChaPoly_BLAKE2s
        run_case "$proto size=$size akex->py" akex2py "$proto" XX ok --messages 3 --size "$size"
        run_case "$proto size=$size py->akex" py2akex "$proto" XX ok --messages 3 --size "$size"
        proto=Noise_NN_25519_AESGCM_SHA256
        run_case "$proto size=$size akex->py" akex2py "$proto" NN ok --messages 3 --size "$size"
        run_case "$proto size=$size py->akex" py2akex "$proto" NN ok --messages 3 --size "$size"
    done

    # Negative cases: both sides must fail, without hanging.
    neg() { # CASE PROTOCOL
        run_case "reject $1 ($2) akex->py" akex2py "$2" "$1" fail --messages 2 --size 100
        run_case "reject $1 ($2) py->akex" py2akex "$2" "$1" fail --messages 2 --size 100
    }
    neg wrong-psk Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s
    neg wrong-psk Noise_XXpsk3_25519_AESGCM_SHA256
    neg IK-client-wrong-server-key Noise_IK_25519_ChaChaPoly_BLAKE2s
    neg KK-server-wrong-client-key Noise_KK_25519_AESGCM_SHA256
    neg XX-client-pins-other-key Noise_XX_25519_ChaChaPoly_SHA256
    neg XX-server-pins-other-key Noise_XX_25519_AESGCM_BLAKE2s
    neg wrong-prologue Noise_XX_25519_ChaChaPoly_BLAKE2s
}

for IMPL in $IMPLS; do
    echo "interop: python peer: $IMPL $("$PY" -c "import importlib.metadata as m; print(m.version('$IMPL'))")"
    matrix
done

echo
if [ "$FAILED" -gt 0 ]; then
    echo "failed cases:"
    for n in "${FAILED_NAMES[@]}"; do echo "  $n"; done
fi
echo "interop: took $(($(date +%s) - START_TIME)) s"
echo "interop: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
