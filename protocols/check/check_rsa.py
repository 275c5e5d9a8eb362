#!/usr/bin/env python3
"""Independent check of the RSA key-transport vector (NOT forward secret),
written from protocols/rsa-kt.md and protocols/akex-mode.md only.

RSA-OAEP encryption is randomized, so the ciphertext in message 1 is taken
from the file and checked by decryption: it must decrypt (OAEP, SHA-256,
MGF1-SHA-256) under the file's key to the secret the initiator drew.
Everything else is recomputed: the hello, the transcript with the prologue
and the responder's public key, both messages' encrypted payloads, the
handshake hash, the traffic secrets and the transport records.
"""
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from akexpy import Sym, check_transport, hello

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
NAME = "akex-rsa3072-oaep-kt-not-forward-secret-chachapoly-sha256"


def check(path):
    v = json.loads(Path(path).read_text())
    key = serialization.load_der_private_key(bytes.fromhex(v["responder_rsa_pkcs8"]), None)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    m1, m2 = (bytes.fromhex(m["message"]) for m in v["handshake"])
    p1, p2 = (bytes.fromhex(m["payload"]) for m in v["handshake"])
    h = hello(NAME)
    c = m1[len(h):len(h) + 384]
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    pms = key.decrypt(c, oaep)
    assert pms == bytes.fromhex(v["initiator_random"])[:32], "the ciphertext carries the pms"
    # h = SHA-256(name); MixHash(prologue); MixHash(public key DER); MixHash(hello)
    s = Sym(NAME, False, bytes.fromhex(v["prologue"]))
    s.mix_hash(der)
    s.mix_hash(h)
    s.mix_hash(c)
    s.mix_key(b"akex rsa-kt pms", pms)
    assert h + c + s.enc(p1) == m1, "message 1"
    sr = bytes.fromhex(v["responder_random"])[32:64]
    s.mix_hash(sr)
    s.mix_key(b"akex rsa-kt server random", sr)
    assert sr + s.enc(p2) == m2, "message 2"
    assert s.h.hex() == v["handshake_hash"], "handshake hash"
    i2r, r2i = s.split()
    assert (i2r.hex(), r2i.hex()) == (v["initiator_to_responder"], v["responder_to_initiator"])
    check_transport(v, i2r, r2i, False, NAME)
    print(f"ok {NAME}: 2 handshake messages (ciphertext by decryption), hash, secrets, "
          f"{len(v['transport'])} transport messages")


if __name__ == "__main__":
    check(sys.argv[1] if len(sys.argv) > 1 else VECTORS / f"{NAME}.json")
