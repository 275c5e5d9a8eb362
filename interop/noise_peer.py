#!/usr/bin/env python3
"""A standalone Noise peer built on an independent Python Noise library:
the PyPI `noiseprotocol` package (`--impl noiseprotocol`, the default) or
`dissononce` (`--impl dissononce`).

It speaks plain Noise over TCP with the framing the Noise spec recommends and
akex uses: every handshake and transport message is a 2-byte big-endian
length followed by that many bytes. It shares no code with akex, so a
handshake that succeeds between the two is evidence that akex speaks Noise.

Modes:
  server  listen on 127.0.0.1:0, print "PORT <n>" as the first stdout line,
          accept ONE connection, run the handshake as responder, echo every
          transport message back until the peer closes, then exit.
  client  connect, run the handshake as initiator, send N random messages,
          check each echo, close, exit.

Both modes print "HANDSHAKE_HASH <hex>" (and "REMOTE_KEY <b64>" when the
pattern transmits or pre-knows the peer's static key) once the handshake is
done, and exit non-zero (with "ERROR ..." on stderr) on any failure: a
rejected handshake message, a pinned key mismatch, a bad MAC, an echo that
differs, the peer closing early, or a timeout.

Keys are base64: --private-key is the raw 32-byte X25519 private key (the
contents of an `akex keygen` file), or --identity reads such a file.
--remote-key is given to the handshake when the pattern needs it in advance
(IK/KK/NK initiator, KK responder, ...) and is otherwise checked against the
key the peer transmits (pinning, like `akex --remote-key`).
"""

import argparse
import base64
import os
import socket
import struct
import sys


MAX_FRAME = 65535


class PeerError(Exception):
    pass


def b64key(text, what):
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except Exception as e:  # binascii.Error, ValueError
        raise PeerError(f"{what}: not valid base64 ({e})")
    if len(raw) != 32:
        raise PeerError(f"{what}: must decode to 32 bytes, got {len(raw)}")
    return raw


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None if not buf else bytes(buf)
        buf.extend(chunk)
    return bytes(buf)


def read_frame(sock, allow_eof=False):
    header = recv_exact(sock, 2)
    if header is None:
        if allow_eof:
            return None
        raise PeerError("peer closed the connection")
    if len(header) < 2:
        raise PeerError("peer closed the connection inside a frame header")
    (length,) = struct.unpack(">H", header)
    body = recv_exact(sock, length) if length else b""
    if body is None or len(body) != length:
        raise PeerError("peer closed the connection inside a frame")
    return body


def write_frame(sock, data):
    if len(data) > MAX_FRAME:
        raise PeerError(f"frame too large: {len(data)}")
    sock.sendall(struct.pack(">H", len(data)) + bytes(data))


def read_private_key(args):
    if args.private_key:
        return b64key(args.private_key, "--private-key")
    if args.identity:
        with open(args.identity, "r", encoding="ascii") as f:
            return b64key(f.read(), f"--identity {args.identity}")
    return None


class NoiseprotocolPeer:
    """The handshake and transport through `noiseprotocol`."""

    def __init__(self, args, initiator):
        from noise.connection import Keypair, NoiseConnection

        conn = NoiseConnection.from_name(args.protocol.encode())
        if initiator:
            conn.set_as_initiator()
        else:
            conn.set_as_responder()
        if args.prologue:
            conn.set_prologue(args.prologue.encode())
        private = read_private_key(args)
        required = conn.noise_protocol.pattern.get_required_keypairs(initiator)
        if private is not None:
            conn.set_keypair_from_private_bytes(Keypair.STATIC, private)
        elif "s" in required:
            raise PeerError("this pattern needs our static key: pass --private-key or --identity")
        self.remote = b64key(args.remote_key, "--remote-key") if args.remote_key else None
        if "rs" in required:
            if self.remote is None:
                raise PeerError("this pattern needs the peer's static key: pass --remote-key")
            conn.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, self.remote)
        if args.psk:
            conn.set_psks(psks=[b64key(p, "--psk") for p in args.psk])
        conn.start_handshake()
        self.conn = conn
        # noiseprotocol drops the handshake state when the handshake ends;
        # keep it for `rs` (pinning).
        self.state = conn.noise_protocol.handshake_state

    def finished(self):
        return self.conn.handshake_finished

    def write_message(self):
        return self.conn.write_message()

    def read_message(self, message):
        self.conn.read_message(message)

    def remote_static(self):
        # noiseprotocol uses an `Empty` placeholder for unknown keys.
        return getattr(self.state.rs, "public_bytes", None)

    def handshake_hash(self):
        return bytes(self.conn.get_handshake_hash())

    def encrypt(self, plaintext):
        return self.conn.encrypt(plaintext)

    def decrypt(self, ciphertext):
        return self.conn.decrypt(ciphertext)


class DissononcePeer:
    """The handshake and transport through `dissononce`, built from its
    parts: pattern (and psk modifiers), X25519, cipher and hash by name."""

    def __init__(self, args, initiator):
        import importlib
        import re

        from dissononce.cipher.aesgcm import AESGCMCipher
        from dissononce.cipher.chachapoly import ChaChaPolyCipher
        from dissononce.dh.x25519.private import PrivateKey
        from dissononce.dh.x25519.public import PublicKey
        from dissononce.dh.x25519.x25519 import X25519DH
        from dissononce.hash.blake2b import Blake2bHash
        from dissononce.hash.blake2s import Blake2sHash
        from dissononce.hash.sha256 import SHA256Hash
        from dissononce.hash.sha512 import SHA512Hash
        from dissononce.processing.impl.cipherstate import CipherState
        from dissononce.processing.impl.handshakestate import HandshakeState
        from dissononce.processing.impl.symmetricstate import SymmetricState
        from dissononce.processing.modifiers.psk import PSKPatternModifier

        m = re.fullmatch(r"Noise_([NKXI]{2})((?:psk\d)(?:\+psk\d)*)?_25519_(ChaChaPoly|AESGCM)_(BLAKE2s|BLAKE2b|SHA256|SHA512)",
                         args.protocol)
        if not m:
            raise PeerError(f"dissononce peer: unsupported protocol {args.protocol}")
        base, mods, cipher, hash_name = m.groups()
        mods = mods or ""
        module = importlib.import_module(f"dissononce.processing.handshakepatterns.interactive.{base}")
        pattern = getattr(module, f"{base}HandshakePattern")()
        for placement in re.findall(r"psk(\d)", mods):
            pattern = PSKPatternModifier(int(placement)).modify(pattern)
        cipher = {"ChaChaPoly": ChaChaPolyCipher, "AESGCM": AESGCMCipher}[cipher]()
        hash_impl = {"BLAKE2s": Blake2sHash, "BLAKE2b": Blake2bHash,
                     "SHA256": SHA256Hash, "SHA512": SHA512Hash}[hash_name]()
        dh = X25519DH()
        self.hs = HandshakeState(SymmetricState(CipherState(cipher), hash_impl), dh)

        me = "initiator" if initiator else "responder"
        peer = "responder" if initiator else "initiator"
        tokens = [t for msg in pattern.message_patterns for t in msg]
        own_pre = pattern.initiator_pre_message_pattern if initiator else pattern.responder_pre_message_pattern
        peer_pre = pattern.responder_pre_message_pattern if initiator else pattern.initiator_pre_message_pattern
        # Our static key is needed if we send `s` (our messages) or it is pre-known.
        ours = [t for i, msg in enumerate(pattern.message_patterns)
                if (i % 2 == 0) == initiator for t in msg]
        needs_s = "s" in ours or "s" in own_pre
        private = read_private_key(args)
        s = dh.generate_keypair(PrivateKey(private)) if private is not None else None
        if needs_s and s is None:
            raise PeerError(f"this pattern needs the {me}'s static key: pass --private-key or --identity")
        self.remote = b64key(args.remote_key, "--remote-key") if args.remote_key else None
        rs = None
        if "s" in peer_pre:
            if self.remote is None:
                raise PeerError(f"this pattern needs the {peer}'s static key: pass --remote-key")
            rs = PublicKey(self.remote)
        psks = [b64key(p, "--psk") for p in args.psk] if "psk" in tokens else None
        self.hs.initialize(pattern, initiator, args.prologue.encode(), s=s if needs_s else None,
                           rs=rs, psks=psks)
        self.initiator = initiator
        self.send = self.recv = None
        self.hash = None

    def _done(self, cipherstates):
        if cipherstates is not None:
            first, second = cipherstates
            self.send, self.recv = (first, second) if self.initiator else (second, first)
            self.hash = bytes(self.hs.symmetricstate.get_handshake_hash())

    def finished(self):
        return self.send is not None

    def write_message(self):
        buf = bytearray()
        self._done(self.hs.write_message(b"", buf))
        return bytes(buf)

    def read_message(self, message):
        payload = bytearray()
        self._done(self.hs.read_message(bytes(message), payload))

    def remote_static(self):
        rs = self.hs.rs
        return None if rs is None else bytes(rs.data)

    def handshake_hash(self):
        return self.hash

    def encrypt(self, plaintext):
        return bytes(self.send.encrypt_with_ad(b"", bytes(plaintext)))

    def decrypt(self, ciphertext):
        return bytes(self.recv.decrypt_with_ad(b"", bytes(ciphertext)))


def build(args, initiator):
    impl = {"noiseprotocol": NoiseprotocolPeer, "dissononce": DissononcePeer}[args.impl]
    peer = impl(args, initiator)
    return peer, peer.remote


def handshake(sock, conn, remote, initiator):
    """Pumps the handshake; returns (hash, remote static key or None)."""
    my_turn = initiator  # Noise messages alternate, the initiator first
    while not conn.finished():
        if my_turn:
            write_frame(sock, conn.write_message())
        else:
            message = read_frame(sock)
            try:
                conn.read_message(message)
            except Exception as e:
                raise PeerError(f"handshake message rejected: {type(e).__name__}: {e}")
            rs = conn.remote_static()
            if remote is not None and rs is not None and rs != remote:
                raise PeerError("the peer's static key differs from --remote-key")
        my_turn = not my_turn
    rs = conn.remote_static()
    if remote is not None and rs is None:
        raise PeerError("--remote-key given but the pattern never revealed the peer's key")
    return conn.handshake_hash(), rs


def report(hh, rs):
    print(f"HANDSHAKE_HASH {hh.hex()}", flush=True)
    if rs is not None:
        print(f"REMOTE_KEY {base64.b64encode(rs).decode()}", flush=True)


def decrypt(conn, frame):
    try:
        return conn.decrypt(frame)
    except Exception as e:
        raise PeerError(f"transport message rejected: {type(e).__name__}: {e}")


def run_server(args):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(1)
    listener.settimeout(args.timeout)
    # Build (and validate) before announcing the port.
    conn, remote = build(args, initiator=False)
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    try:
        sock, _ = listener.accept()
    except socket.timeout:
        raise PeerError("no connection within the timeout")
    finally:
        listener.close()
    with sock:
        sock.settimeout(args.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hh, rs = handshake(sock, conn, remote, initiator=False)
        report(hh, rs)
        count = 0
        while True:
            frame = read_frame(sock, allow_eof=True)
            if frame is None:
                break
            write_frame(sock, conn.encrypt(decrypt(conn, frame)))
            count += 1
    print(f"ECHOED {count}", flush=True)


def run_client(args):
    host, _, port = args.addr.rpartition(":")
    conn, remote = build(args, initiator=True)
    sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=args.timeout)
    with sock:
        sock.settimeout(args.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hh, rs = handshake(sock, conn, remote, initiator=True)
        report(hh, rs)
        for i in range(args.messages):
            payload = os.urandom(args.size)
            write_frame(sock, conn.encrypt(payload))
            echo = decrypt(conn, read_frame(sock))
            if echo != payload:
                raise PeerError(f"echo {i} differs from the message sent")
        sock.shutdown(socket.SHUT_WR)
        # The peer should close cleanly after our half-close.
        try:
            trailing = read_frame(sock, allow_eof=True)
        except socket.timeout:
            trailing = None
        if trailing is not None:
            raise PeerError("unexpected message after the last echo")
    print(f"OK {args.messages}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["server", "client"])
    parser.add_argument("--protocol", required=True, help="e.g. Noise_XX_25519_ChaChaPoly_BLAKE2s")
    parser.add_argument("--impl", choices=["noiseprotocol", "dissononce"], default="noiseprotocol",
                        help="the Python Noise library to use")
    parser.add_argument("--addr", help="client: server address HOST:PORT")
    parser.add_argument("--port", type=int, default=0, help="server: port (default 0 = any free port)")
    parser.add_argument("--private-key", help="our X25519 private key, base64 of 32 bytes")
    parser.add_argument("--identity", help="file holding our private key (akex keygen format)")
    parser.add_argument("--remote-key", help="the peer's public key, base64 (pre-known or pinned)")
    parser.add_argument("--psk", action="append", default=[], help="32-byte PSK, base64; repeat per slot")
    parser.add_argument("--prologue", default="", help="prologue text both sides hash")
    parser.add_argument("--messages", type=int, default=10, help="client: messages to send")
    parser.add_argument("--size", type=int, default=1000, help="client: bytes per message (<= 65519)")
    parser.add_argument("--timeout", type=float, default=10.0, help="socket timeout in seconds")
    args = parser.parse_args()
    try:
        if args.mode == "server":
            run_server(args)
        else:
            if not args.addr:
                raise PeerError("client mode needs --addr")
            run_client(args)
    except (PeerError, OSError) as e:
        print(f"ERROR {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1
    except Exception as e:  # noiseprotocol's own exceptions, bad arguments
        print(f"ERROR {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
