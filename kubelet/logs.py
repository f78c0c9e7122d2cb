"""Reading container logs in the CRI format: what ``kubectl logs`` asks for, with its options.

A log file holds records ``<RFC3339Nano> <stdout|stderr> <F|P> <text>`` (``P``: a partial line,
continued by the next record of the same stream), rotated by the writer into ``<file>.1 .. .N``
(oldest last). ``read_log`` yields the lines (``\\n``-terminated) after applying, as the kubelet does:

* ``sinceSeconds`` / ``sinceTime`` — records at or after that instant;
* ``tailLines`` — the last N lines (of what ``since`` kept);
* ``timestamps`` — each line prefixed with its RFC3339Nano timestamp and a space;
* ``limitBytes`` — stop after that many bytes (of output);
* ``follow`` — keep reading the current file as it grows (and across a rotation: the writer renames
  the file, we notice the path now names another inode, finish the old one and reopen) until the
  container is no longer running and everything is read, or the client goes away.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    timestamps: bool = False
    since: float | None = None  # Unix seconds
    limit_bytes: int | None = None
    streams: tuple[str, ...] = ("stdout", "stderr")
    # follow only: (inode, byte offset) of the current file to read from, nothing before (attach
    # fixes it when the session starts); a file rotated since is read from its start
    start: tuple[int, int] | None = None


def parse_time(text: str) -> float | None:
    """RFC 3339 with up to nanoseconds → Unix seconds (float)."""
    try:
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        head, sep, rest = text.partition(".")
        if sep:
            digits = ""
            i = 0
            while i < len(rest) and rest[i].isdigit():
                digits += rest[i]
                i += 1
            tz = rest[i:]
            dt = datetime.fromisoformat(head + tz)
            return dt.timestamp() + (int(digits[:9].ljust(9, "0")) / 1e9 if digits else 0.0)
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def parse_record(raw: bytes) -> tuple[str, str, bool, bytes] | None:
    """``(timestamp, stream, full, text)`` of one record, or None for garbage."""
    parts = raw.split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[0].decode(errors="replace"), parts[1].decode(errors="replace"), parts[2]
    text = parts[3] if len(parts) == 4 else b""
    if stream not in ("stdout", "stderr"):
        return None
    return ts, stream, tag != b"P", text


def log_files(path: Path) -> list[Path]:
    """The rotated files of ``path``, oldest first, then ``path`` itself."""
    rotated = []
    i = 1
    while True:
        p = path.with_name(f"{path.name}.{i}")
        if not p.exists():
            break
        rotated.append(p)
        i += 1
    return [*reversed(rotated), path]


class _Assembler:
    """Joins partial records into lines, per stream."""

    def __init__(self) -> None:
        self.partial: dict[str, tuple[str, bytes]] = {}

    def feed(self, raw: bytes) -> tuple[str, str, bytes] | None:
        rec = parse_record(raw)
        if rec is None:
            return None
        ts, stream, full, text = rec
        first_ts, pending = self.partial.pop(stream, (ts, b""))
        if not full:
            self.partial[stream] = (first_ts, pending + text)
            return None
        return first_ts, stream, pending + text


class _Budget:
    """``limitBytes``: what may still be written (None: no limit)."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit if limit and limit > 0 else None

    def take(self, data: bytes) -> bytes | None:
        if self.left is None:
            return data
        if self.left <= 0:
            return None
        data = data[:self.left]
        self.left -= len(data)
        return data


def _render(ts: str, text: bytes, opts: LogOptions) -> bytes:
    return (ts.encode() + b" " + text + b"\n") if opts.timestamps else text + b"\n"


def _keep(ts: str, stream: str, opts: LogOptions) -> bool:
    if stream not in opts.streams:
        return False
    if opts.since is not None:
        when = parse_time(ts)
        if when is not None and when < opts.since:
            return False
    return True


async def read_log(path: Path | None, opts: LogOptions, *, running: Callable[[], bool] = lambda: False,
                   poll: float = 0.1) -> AsyncIterator[bytes]:
    if path is None:
        return
    assembler = _Assembler()
    files = [] if opts.follow and opts.start is not None else log_files(path)
    tail: deque[bytes] | None = deque(maxlen=opts.tail_lines) if opts.tail_lines is not None and opts.tail_lines >= 0 else None
    out_lines: list[bytes] = []
    position = 0
    inode = None
    for f in files:
        try:
            data = f.read_bytes()
        except OSError:
            continue
        if f == path:
            # Only complete records: the writer may be in the middle of one.
            end = data.rfind(b"\n") + 1
            data = data[:end]
            position = end
            try:
                inode = os.stat(path).st_ino
            except OSError:
                inode = None
        for raw in data.split(b"\n"):
            if not raw:
                continue
            line = assembler.feed(raw)
            if line is None or not _keep(line[0], line[1], opts):
                continue
            rendered = _render(line[0], line[2], opts)
            if tail is not None:
                tail.append(rendered)
            else:
                out_lines.append(rendered)
    limiter = _Budget(opts.limit_bytes)
    for rendered in (tail if tail is not None else out_lines):
        rendered = limiter.take(rendered)
        if rendered is None:
            return
        yield rendered
    if not opts.follow:
        return
    handle = None
    try:
        handle = open(path, "rb")
        if opts.follow and opts.start is not None:
            inode, position = opts.start
            if os.fstat(handle.fileno()).st_ino != inode:
                inode, position = os.fstat(handle.fileno()).st_ino, 0
        handle.seek(position)
        buf = b""
        idle_rounds = 0
        while True:
            chunk = handle.read(65536)
            if chunk:
                idle_rounds = 0
                buf += chunk
                *complete, buf = buf.split(b"\n")
                for raw in complete:
                    if not raw:
                        continue
                    line = assembler.feed(raw)
                    if line is None or not _keep(line[0], line[1], opts):
                        continue
                    rendered = limiter.take(_render(line[0], line[2], opts))
                    if rendered is None:
                        return
                    yield rendered
                continue
            # At the end of what is written: rotated? finished?
            try:
                now_inode = os.stat(path).st_ino
            except OSError:
                now_inode = None
            if now_inode is not None and now_inode != inode:
                handle.close()
                handle = open(path, "rb")
                inode = now_inode
                buf = b""
                continue
            if not running():
                idle_rounds += 1
                if idle_rounds > 2:
                    return
            await asyncio.sleep(poll)
    finally:
        if handle is not None:
            handle.close()

