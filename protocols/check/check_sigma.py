#!/usr/bin/env python3
"""Independent check of the SIGMA-I vectors, written from protocols/sigma.md,
protocols/sigma-p256.md and protocols/akex-mode.md only.

Usage: python3 protocols/check/check_sigma.py [vector.json ...]
Recomputes every handshake message, the handshake hash and the traffic
secrets from the file's keys, prologue and randomness, and the transport
messages (akex-mode data records: type byte 0x01 + payload, counter nonce,
empty AD, under the record key HKDF-Expand(secret, "akex record key", 32)).
The P-256 suite's vector signs with RFC 6979 deterministic ECDSA, which
`cryptography` reproduces; every ECDSA signature is also verified.
"""
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from akexpy import Sym, check_transport, dh, ed25519, ed_pub, hello, hmac256, x_pub

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
X962 = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint


class Ed25519Suite:
    """X25519 ephemerals, Ed25519 identities (protocols/sigma.md)."""

    def __init__(self, keys):
        self.seeds = {w: bytes.fromhex(keys[f"{w}_ed25519_seed"]) for w in ("initiator", "responder")}

    def eph_pub(self, rand):
        return x_pub(rand[:32])

    def exchange(self, rand, peer):
        return dh(rand[:32], peer)

    def id_pub(self, who):
        return ed_pub(self.seeds[who])

    def sign(self, who, msg):
        return ed25519(self.seeds[who]).sign(msg)


class P256Suite:
    """P-256 ECDH (x-coordinate) and ECDSA P-256/SHA-256 as r || s, SEC1
    uncompressed points (protocols/sigma-p256.md)."""

    def __init__(self, keys):
        self.ids = {
            w: ec.derive_private_key(int(keys[f"{w}_p256_scalar"], 16), ec.SECP256R1())
            for w in ("initiator", "responder")
        }

    @staticmethod
    def _eph(rand):
        # 32 bytes, big-endian; the vector's scalars are below n, no retry.
        return ec.derive_private_key(int.from_bytes(rand[:32], "big"), ec.SECP256R1())

    def eph_pub(self, rand):
        return self._eph(rand).public_key().public_bytes(*X962)

    def exchange(self, rand, peer):
        point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer)
        return self._eph(rand).exchange(ec.ECDH(), point)

    def id_pub(self, who):
        return self.ids[who].public_key().public_bytes(*X962)

    def sign(self, who, msg):
        sk = self.ids[who]
        der = sk.sign(msg, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        sk.public_key().verify(der, msg, ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def check(path):
    v = __import__("json").loads(Path(path).read_text())
    name = v["protocol"]
    gcm = "aesgcm" in name
    suite = (P256Suite if "-p256-" in name else Ed25519Suite)(v["keys"])
    ie = bytes.fromhex(v["initiator_random"])
    re = bytes.fromhex(v["responder_random"])
    p = [bytes.fromhex(m["payload"]) for m in v["handshake"]]

    # h = SHA-256(name); MixHash(prologue); MixHash(hello)
    s = Sym(name, gcm, bytes.fromhex(v["prologue"]))
    m1 = hello(name)
    s.mix_hash(m1)
    m1 += suite.eph_pub(ie)
    s.mix_hash(suite.eph_pub(ie))
    m1 += s.enc(p[0])

    m2 = suite.eph_pub(re)
    s.mix_hash(suite.eph_pub(re))
    s.mix_key(b"akex sigma dh ee", suite.exchange(re, suite.eph_pub(ie)))
    sig = suite.sign("responder", b"akex sigma sig responder" + s.h)
    mac = hmac256(s.derive(b"akex sigma mac responder"), suite.id_pub("responder"))
    m2 += s.enc(suite.id_pub("responder") + sig + mac)
    m2 += s.enc(p[1])

    sig = suite.sign("initiator", b"akex sigma sig initiator" + s.h)
    mac = hmac256(s.derive(b"akex sigma mac initiator"), suite.id_pub("initiator"))
    m3 = s.enc(suite.id_pub("initiator") + sig + mac)
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
