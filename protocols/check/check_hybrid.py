#!/usr/bin/env python3
"""Independent check of the hybrid and PQ-authenticated vectors, written
from protocols/hybrid.md, protocols/pq.md and protocols/akex-mode.md only.

Usage: python3 protocols/check/check_hybrid.py [vector.json ...]
Replays each handshake as the spec describes it (the token engine, the
labels, the pre-message, the prologue and hello, the randomness order),
from the file's private keys, prologue and randomness, and compares every
handshake message, the handshake hash, both traffic secrets and the
transport records.
"""
import json
import sys
from pathlib import Path

from akexpy import (Rng, Sym, check_transport, dh, hello, mlkem_encaps, mlkem_keygen,
                    x_pub)

VECTORS = Path(__file__).resolve().parent.parent / "vectors"

# name -> (family, pre-message <- s, patterns); protocols/hybrid.md, pq.md
PATTERNS = {
    "akex-hybrid-xx-x25519-mlkem768-chachapoly-sha256":
        ("hybrid", False, [["e", "e1"], ["e", "ee", "ekem", "s", "es"], ["s", "se"]]),
    "akex-hybrid-ik-x25519-mlkem768-chachapoly-sha256":
        ("hybrid", True, [["e", "e1", "es", "s", "ss"], ["e", "ee", "ekem", "se"]]),
    "akex-hybrid-nk-x25519-mlkem768-chachapoly-sha256":
        ("hybrid", True, [["e", "e1", "es"], ["e", "ee", "ekem"]]),
    "akex-pq-xx-x25519-mlkem768-chachapoly-sha256":
        ("pq", False, [["e", "e1"], ["e", "ee", "ekem", "s", "es"], ["skem", "s", "se"], ["skem"]]),
    "akex-pq-ik-x25519-mlkem768-chachapoly-sha256":
        ("pq", True, [["e", "e1", "es", "skem", "s", "ss"], ["e", "ee", "ekem", "se", "skem"]]),
}


class Party:
    def __init__(self, keys, who, pq, random):
        self.s = keys.get(f"{who}_x25519")
        self.kem = mlkem_keygen(keys[f"{who}_mlkem768_seed"]) if pq else None  # (ek, dk)
        self.rng = Rng(random)
        self.e = None
        self.e1 = None

    def static(self):
        """The identity: x25519 public (32) [‖ ML-KEM-768 ek (1184)]."""
        return x_pub(self.s) + (self.kem[0] if self.kem else b"")


def check(path):
    v = json.loads(Path(path).read_text())
    name = v["protocol"]
    family, pre, messages = PATTERNS[name]
    pq = family == "pq"
    keys = {k: bytes.fromhex(x) for k, x in v["keys"].items()}
    ini = Party(keys, "initiator", pq, bytes.fromhex(v["initiator_random"]))
    res = Party(keys, "responder", pq, bytes.fromhex(v["responder_random"]))
    label = lambda t: f"akex {family} {'kem' if 'kem' in t else 'dh'} {t}".encode()

    # h = SHA-256(name); MixHash(prologue); [MixHash(rs)]; MixHash(hello)
    s = Sym(name, False, bytes.fromhex(v["prologue"]))
    if pre:
        s.mix_hash(res.static())  # one MixHash of the whole identity
    got = []
    for index, tokens in enumerate(messages):
        me, peer = (ini, res) if index % 2 == 0 else (res, ini)
        out = b""
        if index == 0:
            out += hello(name)
            s.mix_hash(out)
        for t in tokens:
            if t == "e":
                me.e = me.rng.take(32)
                out += x_pub(me.e)
                s.mix_hash(x_pub(me.e))
            elif t == "e1":
                me.e1 = mlkem_keygen(me.rng.take(64))
                out += s.enc(me.e1[0])
            elif t in ("ekem", "skem"):
                ek = peer.e1[0] if t == "ekem" else peer.kem[0]
                ct, ss = mlkem_encaps(ek, me.rng.take(32))
                out += s.enc(ct)
                s.mix_key(label(t), ss)
            elif t == "s":
                out += s.enc(me.static())
            else:  # ee, es, se, ss: initiator's key first letter, responder's second
                a = ini.e if t[0] == "e" else ini.s
                b = res.e if t[1] == "e" else res.s
                s.mix_key(label(t), dh(a, x_pub(b)))
        out += s.enc(bytes.fromhex(v["handshake"][index]["payload"]))
        got.append(out)
    for n, (g, want) in enumerate(zip(got, v["handshake"])):
        assert g.hex() == want["message"], f"{name}: handshake message {n}"
    assert len(got) == len(v["handshake"])
    assert s.h.hex() == v["handshake_hash"], f"{name}: handshake hash"
    i2r, r2i = s.split()
    assert i2r.hex() == v["initiator_to_responder"], f"{name}: i->r"
    assert r2i.hex() == v["responder_to_initiator"], f"{name}: r->i"
    check_transport(v, i2r, r2i, False, name)
    print(f"ok {name}: {len(got)} handshake messages, hash, secrets, "
          f"{len(v['transport'])} transport messages")


if __name__ == "__main__":
    files = sys.argv[1:] or [str(VECTORS / f"{n}.json") for n in PATTERNS]
    for f in files:
        check(f)
