"""A durable Raft journal for pysyncobj: checksummed records, fsync before anything is acknowledged.

pysyncobj's own FileJournal writes into an mmap and never syncs it, stores the vote without fsync
and cannot detect a torn record. This journal implements the same small interface
(``pysyncobj.journal.Journal``) with an append-only file:

    header  b"PHJ1"
    record  <u32 body length> <u32 crc32(body)> body = <u64 idx> <u64 term> <command bytes>

``add`` only writes (into the page cache); ``sync`` makes everything written so far durable with
one fdatasync. The Raft node calls ``sync`` before it sends any message and at the end of every
tick, so a follower's acknowledgement and a leader's commit always follow the fsync of the entries
they vouch for (group commit: one fsync covers every entry appended since the last).

Term and vote are stored synchronously (write temp file, fsync, rename, fsync dir) because Raft
requires them durable before a vote is granted. The commit index is advisory and written lazily.
A torn tail (crash mid-write) is detected by length/CRC on load and truncated away.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from typing import Any, Callable

import msgpack
from pysyncobj.journal import Journal

MAGIC = b"PHJ1"
_REC = struct.Struct("<II")
_IDX = struct.Struct("<QQ")

Entry = tuple[bytes, int, int]


def fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path)


class DurableJournal(Journal):  # type: ignore[misc]
    def __init__(self, path: str, on_fsync: Callable[[float], None] | None = None, fsync: bool = True) -> None:
        self._path = path
        self._meta_path = path + ".meta"
        self._on_fsync = on_fsync
        self._fsync = fsync  # False only with --unsafe-no-fsync: to measure what durability costs
        self._entries: list[Entry] = []
        self._offsets: list[int] = []
        self._dirty = False
        self._meta: dict[str, Any] = self._load_meta()
        self._meta_dirty = False
        self._fd = self._open_and_load()

    # ------------------------------------------------------------------ loading

    def _load_meta(self) -> dict[str, Any]:
        try:
            with open(self._meta_path, "rb") as f:
                meta = msgpack.unpackb(f.read(), raw=False)
            return meta if isinstance(meta, dict) else {}
        except (OSError, ValueError, msgpack.UnpackException):
            return {}

    def _open_and_load(self) -> int:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        size = os.fstat(fd).st_size
        if size < len(MAGIC):
            os.ftruncate(fd, 0)
            os.pwrite(fd, MAGIC, 0)
            os.fsync(fd)
            fsync_dir(self._path)
            self._end = len(MAGIC)
            return fd
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
        if data[: len(MAGIC)] != MAGIC:
            os.close(fd)
            raise RuntimeError(f"{self._path} is not a Pilothouse journal")
        pos = len(MAGIC)
        while pos + _REC.size <= len(data):
            length, crc = _REC.unpack_from(data, pos)
            body = data[pos + _REC.size : pos + _REC.size + length]
            if length < _IDX.size or len(body) != length or zlib.crc32(body) != crc:
                break  # torn or corrupt tail: everything from here on was never acknowledged
            idx, term = _IDX.unpack_from(body)
            self._entries.append((bytes(body[_IDX.size :]), idx, term))
            self._offsets.append(pos)
            pos += _REC.size + length
        if pos != len(data):
            os.ftruncate(fd, pos)
            os.fsync(fd)
        self._end = pos
        return fd

    # ---------------------------------------------------------- Journal interface

    def add(self, command: bytes, idx: int, term: int) -> None:
        body = _IDX.pack(idx, term) + bytes(command)
        record = _REC.pack(len(body), zlib.crc32(body)) + body
        os.pwrite(self._fd, record, self._end)
        self._entries.append((bytes(command), idx, term))
        self._offsets.append(self._end)
        self._end += len(record)
        self._dirty = True

    def clear(self) -> None:
        self._entries.clear()
        self._offsets.clear()
        self._end = len(MAGIC)
        os.ftruncate(self._fd, self._end)
        self._dirty = True

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 (pysyncobj's name)
        if entryFrom >= len(self._entries):
            return
        self._end = self._offsets[entryFrom]
        del self._entries[entryFrom:]
        del self._offsets[entryFrom:]
        os.ftruncate(self._fd, self._end)
        self._dirty = True

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802
        keep = self._entries[entryTo:]
        tmp = self._path + ".compact"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        chunks = [MAGIC]
        offsets = []
        end = len(MAGIC)
        for command, idx, term in keep:
            body = _IDX.pack(idx, term) + command
            record = _REC.pack(len(body), zlib.crc32(body)) + body
            chunks.append(record)
            offsets.append(end)
            end += len(record)
        os.write(fd, b"".join(chunks))
        os.fsync(fd)
        os.replace(tmp, self._path)
        fsync_dir(self._path)
        os.close(self._fd)
        self._fd = fd
        self._entries = keep
        self._offsets = offsets
        self._end = end
        self._dirty = False

    def __getitem__(self, item: Any) -> Any:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def _destroy(self) -> None:
        self.sync()
        self._store_meta()
        os.close(self._fd)

    def flush(self) -> None:
        self.sync()

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802,N803
        if self._meta.get("commit") != raftCommitIndex:
            self._meta["commit"] = raftCommitIndex
            self._meta_dirty = True

    def getRaftCommitIndex(self) -> int:  # noqa: N802
        return int(self._meta.get("commit", 1))

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:  # noqa: N802,N803
        self._meta["term"] = term
        self._meta["vote"] = votedForNodeId
        self._store_meta()

    def getCurrentTerm(self) -> int:  # noqa: N802
        return int(self._meta.get("term", 0))

    def getVotedForNodeId(self) -> Any:  # noqa: N802
        return self._meta.get("vote")

    def onOneSecondTimer(self) -> None:  # noqa: N802
        if self._meta_dirty:
            self._store_meta()

    # ------------------------------------------------------------------ durability

    def sync(self) -> None:
        """Make every record written so far durable (one fdatasync for the whole group)."""
        if not self._dirty:
            return
        self._dirty = False
        if not self._fsync:
            return
        started = time.monotonic()
        os.fdatasync(self._fd)
        if self._on_fsync:
            self._on_fsync(time.monotonic() - started)

    def _store_meta(self) -> None:
        write_atomic(self._meta_path, msgpack.packb(self._meta, use_bin_type=True))
        self._meta_dirty = False
