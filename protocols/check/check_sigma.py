#!/usr/bin/env python3
"""Independent check of the SIGMA-I vectors, written from protocols/sigma.md
and protocols/akex-mode.md only.

Usage: python3 protocols/check/check_sigma.py [vector.json ...]
Recomputes every handshake message, the handshake hash and the traffic
secrets from the file's keys, prologue and randomness, and the transport
messages (akex-mode data records: type byte 0x01 + payload, counter nonce,
empty AD, under the record key HKDF-Expand(secret, "akex record key", 32)).
"""
import sys
from pathlib import Path

from akexpy import Sym, check_transport, dh, ed25519, ed_pub, hello, hmac256, x_pub

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def check(path):
    v = __import__("json").loads(Path(path).read_text())
    name = v["protocol"]
    gcm = "aesgcm" in name
    iseed = bytes.fromhex(v["keys"]["initiator_ed25519_seed"])
    rseed = bytes.fromhex(v["keys"]["responder_ed25519_seed"])
    ie = bytes.fromhex(v["initiator_random"])[:32]
    re = bytes.fromhex(v["responder_random"])[:32]
    p = [bytes.fromhex(m["payload"]) for m in v["handshake"]]

    # h = SHA-256(name); MixHash(prologue); MixHash(hello)
    s = Sym(name, gcm, bytes.fromhex(v["prologue"]))
    m1 = hello(name)
    s.mix_hash(m1)
    m1 += x_pub(ie)
    s.mix_hash(x_pub(ie))
    m1 += s.enc(p[0])

    m2 = x_pub(re)
    s.mix_hash(x_pub(re))
    s.mix_key(b"akex sigma dh ee", dh(re, x_pub(ie)))
    sig = ed25519(rseed).sign(b"akex sigma sig responder" + s.h)
    mac = hmac256(s.derive(b"akex sigma mac responder"), ed_pub(rseed))
    m2 += s.enc(ed_pub(rseed) + sig + mac)
    m2 += s.enc(p[1])

    sig = ed25519(iseed).sign(b"akex sigma sig initiator" + s.h)
    mac = hmac256(s.derive(b"akex sigma mac initiator"), ed_pub(iseed))
    m3 = s.enc(ed_pub(iseed) + sig + mac)
    m3 += s.enc(p[2])

    for n, (got, want) in enumerate(zip([m1, m2, m3], v["handshake"])):
        assert got.hex() == want["message"], f"{name}: handshake message {n}"
    assert s.h.hex() == v["handshake_hash"], f"{name}: handshake hash"
    i2r, r2i = s.split()
    assert i2r.hex() == v["initiator_to_responder"], f"{name}: i->r"
    assert r2i.hex() == v["responder_to_initiator"], f"{name}: r->i"

    check_transport(v, i2r, r2i, gcm, name)
    print(f"ok {name}: 3 handshake messages, hash, secrets, {len(v['transport'])} transport messages")


if __name__ == "__main__":
    files = sys.argv[1:] or sorted(str(p) for p in VECTORS.glob("akex-sigma-*.json"))
    for f in files:
        check(f)
