"""The primitives of protocols/akex-mode.md and protocols/session.md, written
from those documents alone (Python `cryptography`, hashlib, hmac, and
`kyber-py` for FIPS 203 ML-KEM-768). Shared by the check_*.py scripts,
which recompute every akex-mode known-answer vector independently of the
Rust code.
"""
import hashlib
import hmac

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
HELLO_VERSION = 2


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def hkdf_expand(prk, info, length):
    """RFC 5869 HKDF-Expand with SHA-256."""
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def hkdf(salt, ikm, info, length):
    """RFC 5869 HKDF (Extract, then Expand) with SHA-256."""
    return hkdf_expand(hmac.new(salt, ikm, hashlib.sha256).digest(), info, length)


def hmac256(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


# --- session.md: the key schedule ----------------------------------------

def record_key(traffic_secret):
    return hkdf_expand(traffic_secret, b"akex record key", 32)


def next_secret(traffic_secret):
    return hkdf_expand(traffic_secret, b"akex key update", 32)


def nonce(n, gcm):
    """Noise nonce layout: 4 zero bytes, the 64-bit counter (big-endian for
    AES-GCM, little-endian for ChaCha20-Poly1305)."""
    return bytes(4) + (n.to_bytes(8, "big") if gcm else n.to_bytes(8, "little"))


def aead(key, gcm):
    return AESGCM(key) if gcm else ChaCha20Poly1305(key)


# --- akex-mode.md: hello and symmetric state --------------------------------

def hello(name):
    return b"AKEX" + bytes([HELLO_VERSION, len(name)]) + name.encode("ascii")


class Sym:
    """InitializeSymmetric(name) then MixHash(prologue), always."""

    def __init__(self, name, gcm=False, prologue=b""):
        self.h = sha256(name.encode("ascii"))
        self.ck = self.h
        self.k = None
        self.n = 0
        self.gcm = gcm
        self.mix_hash(prologue)

    def mix_hash(self, data):
        self.h = sha256(self.h, data)

    def mix_key(self, label, ikm):
        okm = hkdf(self.ck, ikm, label, 64)
        self.ck, self.k, self.n = okm[:32], okm[32:], 0

    def derive(self, label):
        return hkdf(self.ck, b"", label, 64)[:32]

    def enc(self, pt):
        """EncryptAndHash."""
        if self.k is None:
            ct = pt
        else:
            ct = aead(self.k, self.gcm).encrypt(nonce(self.n, self.gcm), pt, self.h)
            self.n += 1
        self.mix_hash(ct)
        return ct

    def split(self):
        okm = hkdf(self.ck, b"", b"akex split", 64)
        return okm[:32], okm[32:]

    def root(self):
        return self.derive(b"akex root")


# --- keys ---------------------------------------------------------------------

def x25519(private):
    return X25519PrivateKey.from_private_bytes(private)


def x_pub(private):
    return x25519(private).public_key().public_bytes(*RAW)


def dh(private, public):
    return x25519(private).exchange(X25519PublicKey.from_public_bytes(public))


def ed25519(seed):
    return Ed25519PrivateKey.from_private_bytes(seed)


def ed_pub(seed):
    return ed25519(seed).public_key().public_bytes(*RAW)


def mlkem_keygen(seed):
    """ML-KEM-768.KeyGen_internal(d, z) from the 64-byte seed d || z."""
    from kyber_py.ml_kem import ML_KEM_768
    return ML_KEM_768._keygen_internal(seed[:32], seed[32:])  # (ek, dk)


def mlkem_encaps(ek, m):
    """ML-KEM-768.Encaps_internal(ek, m): (ciphertext, shared secret)."""
    from kyber_py.ml_kem import ML_KEM_768
    k, c = ML_KEM_768._encaps_internal(ek, m)
    return c, k


def mlkem_decaps(dk, c):
    from kyber_py.ml_kem import ML_KEM_768
    return ML_KEM_768.decaps(dk, c)


class Rng:
    """Hands out a vector's scripted randomness in order."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        out = self.data[self.pos:self.pos + n]
        assert len(out) == n, "ran out of scripted randomness"
        self.pos += n
        return out


def check_transport(v, i2r, r2i, gcm, name):
    """The vector's transport messages: akex-mode data records (type byte
    0x01, then the payload) under each direction's record key, counter
    nonces from 0, empty associated data."""
    counters = {"initiator": 0, "responder": 0}
    for n, m in enumerate(v["transport"]):
        secret = i2r if m["sender"] == "initiator" else r2i
        ct = aead(record_key(secret), gcm).encrypt(
            nonce(counters[m["sender"]], gcm), b"\x01" + bytes.fromhex(m["payload"]), b"")
        counters[m["sender"]] += 1
        assert ct.hex() == m["message"], f"{name}: transport message {n}"
