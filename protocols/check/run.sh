#!/usr/bin/env bash
# Recomputes every akex-mode known-answer vector independently of the Rust
# code, from the specs in protocols/ (Python `cryptography` for X25519,
# Ed25519, RSA-OAEP, the AEADs; hashlib/hmac for SHA-256/HKDF; `kyber-py`
# for FIPS 203 ML-KEM-768 with keygen and encapsulation from seeds).
#
#   bash protocols/check/run.sh
#
# Installs what it needs into protocols/check/.venv (ignored by git) on the
# first run. Prints one line per check and "vector checks: N passed, M
# failed"; exits non-zero if any failed.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV="$HERE/.venv"
if ! "$VENV/bin/python" -c 'import cryptography, kyber_py' 2>/dev/null; then
    echo "vector checks: creating $VENV with cryptography==50.0.2 and kyber-py==1.2.0" >&2
    [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV" || { echo "python3 -m venv failed" >&2; exit 2; }
    "$VENV/bin/pip" install -q "cryptography==50.0.2" "kyber-py==1.2.0" ||
        { echo "pip install failed" >&2; exit 2; }
fi
PASSED=0
FAILED=0
for check in check_sigma check_hybrid check_rsa check_session; do
    echo "== $check.py"
    if (cd "$HERE" && "$VENV/bin/python" "$check.py"); then
        PASSED=$((PASSED + 1))
    else
        FAILED=$((FAILED + 1))
        echo "FAILED: $check.py"
    fi
done
echo "vector checks: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
