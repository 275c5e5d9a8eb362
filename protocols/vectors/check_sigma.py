#!/usr/bin/env python3
"""Independent check of the SIGMA-I vectors, written from protocols/sigma.md,
protocols/sigma-p256.md and protocols/akex-mode.md only (Python
`cryptography`, hashlib, hmac).

Usage: python3 protocols/vectors/check_sigma.py [vector.json ...]
Recomputes every handshake message, the handshake hash and the traffic
secrets from the file's keys and randomness, and the two transport
messages (akex-mode data records: type byte 0x01 + payload, counter nonce,
empty AD, under the record key HKDF-Expand(secret, "akex record key", 32)).
The P-256 suite's vector signs with RFC 6979 deterministic ECDSA, which
`cryptography` (42+) reproduces; every signature is also verified.
"""
import hashlib
import hmac
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives import hashes, serialization

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
X962 = serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint


def record_key(traffic_secret):
    # HKDF-Expand(PRK = traffic secret, info = "akex record key", L = 32):
    # one HMAC block.
    return hmac.new(traffic_secret, b"akex record key" + b"\x01", hashlib.sha256).digest()


def hkdf(salt, ikm, info, length=64):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


class Sym:
    def __init__(self, name, gcm):
        self.h = hashlib.sha256(name.encode()).digest()
        self.ck = self.h
        self.k = None
        self.n = 0
        self.gcm = gcm

    def mix_hash(self, data):
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key(self, label, ikm):
        okm = hkdf(self.ck, ikm, label)
        self.ck, self.k, self.n = okm[:32], okm[32:], 0

    def derive(self, label):
        return hkdf(self.ck, b"", label)[:32]

    def nonce(self, n):
        return bytes(4) + (n.to_bytes(8, "big") if self.gcm else n.to_bytes(8, "little"))

    def enc(self, pt):
        if self.k is None:
            ct = pt
        else:
            aead = AESGCM(self.k) if self.gcm else ChaCha20Poly1305(self.k)
            ct = aead.encrypt(self.nonce(self.n), pt, self.h)
            self.n += 1
        self.mix_hash(ct)
        return ct


class Ed25519Suite:
    def identity(self, keys, who):
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(keys[f"{who}_ed25519_seed"]))

    def ephemeral(self, rand):
        return X25519PrivateKey.from_private_bytes(rand[:32])

    def public(self, sk):
        return sk.public_key().public_bytes(*RAW)

    def exchange(self, sk, peer):
        return sk.exchange(X25519PublicKey.from_public_bytes(peer))

    def sign(self, sk, msg):
        return sk.sign(msg)


class P256Suite:
    """ECDH P-256 (x-coordinate), ECDSA P-256 SHA-256 as r || s, SEC1 points."""

    def identity(self, keys, who):
        return ec.derive_private_key(int(keys[f"{who}_p256_scalar"], 16), ec.SECP256R1())

    def ephemeral(self, rand):
        # 32 bytes, big-endian; the vector's scalars are below n, no retry.
        return ec.derive_private_key(int.from_bytes(rand[:32], "big"), ec.SECP256R1())

    def public(self, sk):
        return sk.public_key().public_bytes(*X962)

    def exchange(self, sk, peer):
        return sk.exchange(ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer))

    def sign(self, sk, msg):
        der = sk.sign(msg, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = utils.decode_dss_signature(der)
        sk.public_key().verify(der, msg, ec.ECDSA(hashes.SHA256()))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def check(path):
    v = json.loads(Path(path).read_text())
    name = v["protocol"]
    gcm = "aesgcm" in name
    suite = P256Suite() if "-p256-" in name else Ed25519Suite()
    public = suite.public
    ik = suite.identity(v["keys"], "initiator")
    rk = suite.identity(v["keys"], "responder")
    ie = suite.ephemeral(bytes.fromhex(v["initiator_random"]))
    re = suite.ephemeral(bytes.fromhex(v["responder_random"]))
    p = [bytes.fromhex(m["payload"]) for m in v["handshake"]]

    s = Sym(name, gcm)
    hello = b"AKEX" + bytes([1, len(name)]) + name.encode()
    s.mix_hash(hello)
    m1 = hello + public(ie)
    s.mix_hash(public(ie))
    m1 += s.enc(p[0])

    m2 = public(re)
    s.mix_hash(public(re))
    s.mix_key(b"akex sigma dh ee", suite.exchange(re, public(ie)))
    sig = suite.sign(rk, b"akex sigma sig responder" + s.h)
    mac = hmac.new(s.derive(b"akex sigma mac responder"), public(rk), hashlib.sha256).digest()
    m2 += s.enc(public(rk) + sig + mac)
    m2 += s.enc(p[1])

    sig = suite.sign(ik, b"akex sigma sig initiator" + s.h)
    mac = hmac.new(s.derive(b"akex sigma mac initiator"), public(ik), hashlib.sha256).digest()
    m3 = s.enc(public(ik) + sig + mac)
    m3 += s.enc(p[2])

    for n, (got, want) in enumerate(zip([m1, m2, m3], v["handshake"])):
        assert got.hex() == want["message"], f"{name}: handshake message {n}"
    assert s.h.hex() == v["handshake_hash"], f"{name}: handshake hash"
    okm = hkdf(s.ck, b"", b"akex split")
    assert okm[:32].hex() == v["initiator_to_responder"], f"{name}: i->r"
    assert okm[32:].hex() == v["responder_to_initiator"], f"{name}: r->i"

    counters = {"initiator": 0, "responder": 0}
    for n, m in enumerate(v["transport"]):
        secret = okm[:32] if m["sender"] == "initiator" else okm[32:]
        key = record_key(secret)
        aead = AESGCM(key) if gcm else ChaCha20Poly1305(key)
        # akex-mode data record: type byte 0x01, then the payload
        ct = aead.encrypt(s.nonce(counters[m["sender"]]), b"\x01" + bytes.fromhex(m["payload"]), b"")
        counters[m["sender"]] += 1
        assert ct.hex() == m["message"], f"{name}: transport message {n}"
    print(f"ok {name}: 3 handshake messages, hash, secrets, {len(v['transport'])} transport messages")


if __name__ == "__main__":
    here = Path(__file__).parent
    files = sys.argv[1:] or sorted(str(p) for p in here.glob("akex-sigma-*.json"))
    for f in files:
        check(f)
