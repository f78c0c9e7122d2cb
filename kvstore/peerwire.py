"""How a peer message becomes bytes on the wire, made cheap enough for the Raft thread.

pysyncobj frames every peer message as ``encrypt(zlib.compress(pickle.dumps(msg), 3))`` with a
Fernet token, once per follower. On this project's messages that was most of the Raft thread's
time: a 30 KiB AppendEntries cost ~380 us in zlib (base64 values barely compress) and ~150 us in
Fernet, which base64-encodes the token and, on receipt, checks its HMAC twice (once to read the
timestamp, once to decrypt). Two replacements, both installed when a member starts, neither an
edit of the installed package:

* ``StoredDeflate`` stands in for the ``zlib`` module of ``pysyncobj.tcp_connection``: it frames
  the pickle as a zlib stream of *stored* (uncompressed) blocks, which any ``zlib.decompress``
  reads. Loopback and LAN peers gain nothing from compression and the CPU is what is scarce.
* ``PeerCipher`` is the object pysyncobj calls ``encryptor`` (``encrypt_at_time``,
  ``extract_timestamp``, ``decrypt``): AES-256-GCM under a key stretched from the peer secret with
  PBKDF2, the timestamp authenticated as associated data, one tag check per message. Nonces are a
  random 96-bit start per cipher object plus a message counter, so they never repeat within a
  member's life and two lives collide only with negligible probability.

Wire compatibility: ``StoredDeflate`` output is standard zlib, but ``PeerCipher`` frames are not
Fernet tokens, so every member of a cluster must run a version with this module (a member of an
older version cannot complete the connection handshake and stays disconnected until upgraded).
"""

from __future__ import annotations

import itertools
import os
import struct
import zlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

_STORED_MAX = 0xFFFF  # the largest stored deflate block
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, no dictionary, "fastest" (header check ok)
_BLOCK = struct.Struct("<BHH")
_ADLER = struct.Struct(">I")


class StoredDeflate:
    """What ``pysyncobj.tcp_connection`` sees as ``zlib``: zlib streams of stored blocks."""

    @staticmethod
    def compress(data: bytes, level: int = -1) -> bytes:  # noqa: ARG004 - zlib's signature
        parts = [_ZLIB_HEADER]
        view = memoryview(data)
        pos, size = 0, len(data)
        while True:
            chunk = view[pos:pos + _STORED_MAX]
            pos += _STORED_MAX
            final = pos >= size
            parts.append(_BLOCK.pack(1 if final else 0, len(chunk), len(chunk) ^ 0xFFFF))
            parts.append(chunk)
            if final:
                break
        parts.append(_ADLER.pack(zlib.adler32(data)))
        return b"".join(parts)

    decompress = staticmethod(zlib.decompress)


_VERSION = 1
_HEADER = struct.Struct(">BQ12s")  # version, timestamp, nonce
_SALT = b"pilothouse-peer-aes-gcm-v1"
_KDF_ITERATIONS = 100_000


class InvalidPeerFrame(Exception):
    """A frame that is not a well-formed, authentic PeerCipher frame (pysyncobj then disconnects)."""


def derive_key(secret: str | bytes) -> bytes:
    """The AES-256 key for ``secret`` (stretched: the secret may be a human-chosen password)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=_SALT, iterations=_KDF_ITERATIONS).derive(raw)


class PeerCipher:
    """Authenticated encryption of peer frames, with the interface pysyncobj expects of Fernet.

    A frame is ``version (1) | timestamp (8, big-endian) | nonce (12) | ciphertext+tag``; the first
    21 bytes are associated data, so the timestamp pysyncobj reads before decrypting is checked
    along with the body (pysyncobj disconnects on any exception from either call).
    """

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self._nonces = itertools.count(int.from_bytes(os.urandom(12), "big"))

    @classmethod
    def from_secret(cls, secret: str | bytes) -> "PeerCipher":
        return cls(derive_key(secret))

    def encrypt_at_time(self, data: bytes, current_time: int) -> bytes:  # noqa: N802 - Fernet's name
        nonce = (next(self._nonces) % (1 << 96)).to_bytes(12, "big")
        header = _HEADER.pack(_VERSION, current_time, nonce)
        return header + self._aead.encrypt(nonce, data, header)

    def extract_timestamp(self, token: bytes) -> int:
        return self._header(token)[0]

    def decrypt(self, token: bytes) -> bytes:
        _timestamp, nonce = self._header(token)
        try:
            return self._aead.decrypt(nonce, token[_HEADER.size:], token[:_HEADER.size])
        except InvalidTag as exc:
            raise InvalidPeerFrame("peer frame failed authentication") from exc

    @staticmethod
    def _header(token: bytes) -> tuple[int, bytes]:
        """(timestamp, nonce) of a frame whose length and version are right."""
        if len(token) < _HEADER.size + 16:
            raise InvalidPeerFrame("peer frame too short")
        version, timestamp, nonce = _HEADER.unpack_from(token)
        if version != _VERSION:
            raise InvalidPeerFrame(f"peer frame version {version} is not {_VERSION}")
        return timestamp, nonce
