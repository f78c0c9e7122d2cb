"""The peer port must not be a door: pysyncobj's wire is pickle (pysyncobj-notes §1.1)."""

from __future__ import annotations

import os
import pickle
import socket
import stat
import struct
import time
import zlib
from pathlib import Path

import msgpack

from tests.harness.kvcluster import KVCluster, post_json


class _Exploit:
    """Unpickling this creates a file: proof of code execution if it ever works."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.path, "w"))


def _frame(payload: bytes) -> bytes:
    return struct.pack("i", len(payload)) + payload


def _send(peer: str, data: bytes, wait: float = 0.5) -> bytes:
    host, port = peer.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.sendall(data)
        time.sleep(wait)
        s.settimeout(0.5)
        try:
            return s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return b""


def _still_serving(cluster: KVCluster) -> bool:
    code, _ = post_json(cluster.members[0].url + "/v3/kv/put", {"key": "cHJvYmU=", "value": "eA=="}, 10)
    return code == 200


def test_unauthenticated_pickle_frame_is_not_executed(kv_cluster_factory, tmp_path: Path) -> None:
    cluster = kv_cluster_factory(3, name="rce")
    marker = tmp_path / "pwned"
    payload = zlib.compress(pickle.dumps(_Exploit(str(marker)), protocol=2), 3)
    for m in cluster.members:
        _send(m.peer, _frame(payload))
        # also as an 'apply_command' message, which the leader would append for everyone
        cmd = zlib.compress(pickle.dumps({"type": "apply_command", "command": b"\x00" + pickle.dumps(_Exploit(str(marker)))}), 3)
        _send(m.peer, _frame(cmd))
    time.sleep(0.5)
    assert not marker.exists()
    assert _still_serving(cluster)


def test_readonly_and_utility_peers_are_refused(kv_cluster_factory) -> None:
    cluster = kv_cluster_factory(1, name="ro")
    peer = cluster.members[0].peer
    # Without the secret nothing decrypts; the connection is closed and nothing is answered.
    for message in ("readonly", ["status"], ["add", "127.0.0.1:1"]):
        reply = _send(peer, _frame(zlib.compress(pickle.dumps(message), 3)))
        assert reply == b""
    assert _still_serving(cluster)


def test_oversized_frame_closes_the_connection(kv_cluster_factory) -> None:
    cluster = kv_cluster_factory(1, name="big")
    host, port = cluster.members[0].peer.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.sendall(struct.pack("i", 2**31 - 1) + b"x" * 1024)
        s.settimeout(3)
        closed = False
        try:
            # The member must hang up instead of buffering towards 2 GiB.
            for _ in range(200):
                s.sendall(b"y" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            try:
                closed = s.recv(1) == b""
            except ConnectionResetError:
                closed = True
            except socket.timeout:
                closed = False  # still open and silently buffering
    assert closed
    assert _still_serving(cluster)


def test_negative_frame_length_is_refused(kv_cluster_factory) -> None:
    cluster = kv_cluster_factory(1, name="neg")
    reply = _send(cluster.members[0].peer, struct.pack("i", -5) + b"zzzz")
    assert reply == b""
    assert _still_serving(cluster)


def test_data_dir_is_private_and_holds_no_pickle(kv_cluster_factory) -> None:
    cluster = kv_cluster_factory(1, name="files")
    for i in range(20):
        post_json(cluster.members[0].url + "/v3/kv/put", {"key": "ZmlsZS8" + "=", "value": "eHh4"}, 10)
    data_dir = cluster.members[0].data_dir
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    journal = (data_dir / "raft.journal").read_bytes()
    assert journal.startswith(b"PHJ1")
    # Every record (kvstore/journal.py: <len> <crc> <idx> <term> <command>) is Raft's one-byte no-op
    # or one of our commands (type byte 0, then one whole msgpack document); nothing is a pickle.
    # (Searching the file for pickle's b"\x80\x02" would also match random bytes inside msgpack.)
    pos, commands = 4, []
    while pos < len(journal):
        length, crc = struct.unpack_from("<II", journal, pos)
        body = journal[pos + 8:pos + 8 + length]
        assert len(body) == length and zlib.crc32(body) == crc
        commands.append(body[16:])
        pos += 8 + length
    assert commands and all(c == b"\x01" or c[:1] == b"\x00" for c in commands), [c[:2] for c in commands]
    regular = [c for c in commands if c[:1] == b"\x00"]
    assert len(regular) >= 20
    for command in regular:
        msgpack.unpackb(command[1:], raw=False, strict_map_key=False)  # raises unless exactly one document
    assert stat.S_IMODE(os.stat(data_dir / "raft.journal").st_mode) & 0o077 == 0


def test_peer_port_binds_only_the_given_address(kv_cluster_factory) -> None:
    cluster = kv_cluster_factory(1, name="bind")
    port = int(cluster.members[0].peer.rsplit(":", 1)[1])
    # 127.0.0.2 is local too but was not named: nothing listens there for this port
    try:
        with socket.create_connection(("127.0.0.2", port), timeout=1):
            reachable = True
    except OSError:
        reachable = False
    assert not reachable
