#!/usr/bin/env python3
"""Independent check of protocols/vectors/session.json, written from
protocols/session.md only: the key schedule (record keys, key updates, the
ratchet KDF) and every record of the scripted runs (its plaintext and its
wire bytes), including two DH ratchet steps per run (one started by each
side) with the ratchet's transcript, long-term authentication (static DH
or Ed25519 signatures) and key confirmation.

Usage: python3 protocols/check/check_session.py [session.json]
"""
import json
import sys
from pathlib import Path

from akexpy import (aead, dh, ed25519, hkdf, mlkem_encaps, mlkem_keygen, next_secret, nonce,
                    record_key, sha256, x_pub)

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def ratchet_kdf(root, secrets, th):
    okm = hkdf(root, b"".join(secrets), b"akex ratchet" + th, 160)
    return [okm[32 * i:32 * (i + 1)] for i in range(5)]  # root, i2r, r2i, confirms


def check_schedule(sched):
    s = bytes.fromhex(sched["key_update"]["start"])
    keys = [record_key(s)]
    for want in sched["key_update"]["chain"]:
        s = next_secret(s)
        assert s.hex() == want, "key update chain"
        keys.append(record_key(s))
    assert [k.hex() for k in keys] == sched["record_key"]["keys"], "record keys"
    r = sched["ratchet"]
    for out in r["outputs"]:
        got = ratchet_kdf(bytes.fromhex(r["root"]), [bytes.fromhex(x) for x in out["secrets"]],
                          bytes.fromhex(r["transcript"]))
        names = ["root", "initiator_to_responder", "responder_to_initiator",
                 "confirm_response", "confirm_finish"]
        for name, value in zip(names, got):
            assert value.hex() == out[name], f"ratchet KDF {name}"
    print(f"ok schedule: {len(keys)} record keys, {len(keys) - 1} key updates, "
          f"{len(r['outputs'])} ratchet KDF outputs")


class Direction:
    """One direction's traffic secret and record counter."""

    def __init__(self, secret):
        self.secret, self.n = secret, 0

    def seal(self, plaintext, gcm):
        ct = aead(record_key(self.secret), gcm).encrypt(nonce(self.n, gcm), plaintext, b"")
        self.n += 1
        return ct

    def switch(self, secret):
        self.secret, self.n = secret, 0


def check_run(run):
    gcm = run["aead"] == "AesGcm"
    hybrid, auth = run["hybrid"], run["auth"]
    hh = bytes.fromhex(run["handshake_hash"])
    root = bytes.fromhex(run["root"])
    dirs = {"initiator": Direction(bytes.fromhex(run["initiator_to_responder"])),
            "responder": Direction(bytes.fromhex(run["responder_to_initiator"]))}
    static = {w: bytes.fromhex(run[f"{w}_static"]) for w in dirs}
    ed = {w: bytes.fromhex(run[f"{w}_ed25519_seed"]) for w in dirs}
    other = {"initiator": "responder", "responder": "initiator"}
    steps = iter(run["ratchet_randomness"])
    generation = 0
    step = None
    records = run["records"]
    for n, rec in enumerate(records):
        who, kind = rec["from"], rec["record"]
        given = bytes.fromhex(rec["plaintext"])
        after = None  # the sender's next traffic secret, after this record
        if kind == "data":
            assert given[0] == 0x01
            plaintext = given
        elif kind == "control":
            assert given[0] == 0x05 and len(given) >= 3
            plaintext = given
        elif kind == "close":
            plaintext = b"\x04"
        elif kind == "key_update":
            plaintext = b"\x02"
            after = next_secret(dirs[who].secret)
        elif kind == "ratchet_init":
            rnd = next(steps)
            assert rnd["started_by"] == who
            starter, responder = who, other[who]
            srng = bytes.fromhex(rnd["starter_rng"])
            rrng = bytes.fromhex(rnd["responder_rng"])
            generation += 1
            g = generation.to_bytes(4, "big")
            x = srng[:32]
            ek, dk = mlkem_keygen(srng[32:96]) if hybrid else (b"", None)
            init = x_pub(x) + len(ek).to_bytes(2, "big") + ek
            ctx = hh + g + (b"\x01" if starter == "initiator" else b"\x02")
            body = g + b"\x01" + init
            if auth == "signature":
                body += ed25519(ed[starter]).sign(b"akex ratchet sig init" + sha256(ctx, init))
            plaintext = b"\x03" + body
            step = (starter, responder, x, ek, rrng, init, ctx, g)
        elif kind == "ratchet_response":
            starter, responder, x, ek, rrng, init, ctx, g = step
            assert who == responder
            y = rrng[:32]
            secrets = [dh(y, x_pub(x))]
            ct = b""
            if hybrid:
                ct, ss = mlkem_encaps(ek, rrng[32:64])
                secrets.append(ss)
            if auth == "static_dh":
                secrets.append(dh(x, x_pub(static[responder])))  # es
                secrets.append(dh(static[starter], x_pub(y)))    # se
            response = x_pub(y) + len(ct).to_bytes(2, "big") + ct
            th = sha256(ctx, init, response)
            new_root, i2r, r2i, confirm_response, confirm_finish = ratchet_kdf(root, secrets, th)
            body = g + b"\x02" + response
            if auth == "signature":
                body += ed25519(ed[responder]).sign(b"akex ratchet sig response" + th)
            body += confirm_response
            plaintext = b"\x03" + body
            new = {"initiator": i2r, "responder": r2i}
            after = new[responder]
            step = (starter, new[starter], confirm_finish, g)
            root = new_root
        elif kind == "ratchet_finish":
            starter, send, confirm_finish, g = step
            assert who == starter
            plaintext = b"\x03" + g + b"\x03" + confirm_finish
            after = send
        else:
            raise AssertionError(f"unknown record {kind}")
        assert plaintext.hex() == rec["plaintext"], f"record {n} ({kind}) plaintext"
        wire = dirs[who].seal(plaintext, gcm)
        assert wire.hex() == rec["wire"], f"record {n} ({kind}) wire bytes"
        if after is not None:
            dirs[who].switch(after)
    print(f"ok run {run['aead']} hybrid={hybrid} auth={auth}: {len(records)} records, "
          f"{generation} ratchet steps")


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else VECTORS / "session.json"
    v = json.loads(Path(path).read_text())
    check_schedule(v["schedule"])
    for run in v["runs"]:
        check_run(run)
