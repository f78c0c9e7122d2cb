"""A lean HTTP/1.1 protocol for the etcd API's unary calls, handing everything else to aiohttp.

Why: a put is a small POST with a small JSON answer, and aiohttp's server machinery (request and
response objects, router, middleware, stream writer) cost about 50 µs of CPU per request on top of
the 25 µs the parsing, handling and sockets need (measured with the same handler both ways). On a
member that shares two cores with the other members and the clients, that is a fifth of the CPU a
write costs.

What it serves itself: ``POST`` of a known unary path (``routes``), HTTP/1.1, a ``Content-Length``
body within ``max_body``, no ``Transfer-Encoding``, ``Expect`` or ``Upgrade``. The first request on
a connection that is anything else (a watch, a GET, an oversized or chunked body, a malformed
request, HTTP/1.0) hands the connection, with every byte not yet consumed, to an aiohttp
``RequestHandler`` for the rest of its life: those requests get exactly aiohttp's behaviour,
errors included. Requests on a connection are answered in order, one at a time, as aiohttp does.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Awaitable, Callable, cast

log = logging.getLogger(__name__)

MAX_HEAD = 8190  # aiohttp's default limit for the request line and each header field
IDLE_TIMEOUT = 75.0  # seconds an idle keep-alive connection stays open, as aiohttp's default
_TERMINATOR = b"\r\n\r\n"
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110 token)
_FORBIDDEN_IN_HEAD = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\n(?<!\r\n)|\r(?!\n)")


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete answer: ``headers`` are sent as given, plus Date and the framing ones."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    chunked: bool = False  # one data chunk and the last chunk, instead of Content-Length


UnaryHandler = Callable[[bytes], Awaitable[Reply]]


class _HeadCache:
    """Encoded status lines and header blocks, and the Date header, rebuilt once a second."""

    def __init__(self) -> None:
        self._blocks: dict[tuple[int, tuple[tuple[str, str], ...]], bytes] = {}
        self._date_second = 0
        self._date = b""

    def block(self, status: int, headers: tuple[tuple[str, str], ...]) -> bytes:
        key = (status, headers)
        block = self._blocks.get(key)
        if block is None:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = ""
            lines = [f"HTTP/1.1 {status} {phrase}"] + [f"{name}: {value}" for name, value in headers]
            block = ("\r\n".join(lines) + "\r\n").encode("latin-1")
            if len(self._blocks) < 64:
                self._blocks[key] = block
        return block

    def date(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._date


def render(reply: Reply, heads: _HeadCache, keep_alive: bool) -> bytes:
    """The bytes of a response to a request that was not a HEAD."""
    parts = [heads.block(reply.status, reply.headers), heads.date()]
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    if reply.chunked:
        parts.append(b"Transfer-Encoding: chunked\r\n\r\n")
        if reply.body:
            parts += [b"%x\r\n" % len(reply.body), reply.body, b"\r\n"]
        parts.append(b"0\r\n\r\n")
    else:
        parts += [b"Content-Length: %d\r\n\r\n" % len(reply.body), reply.body]
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class _Request:
    handler: UnaryHandler
    body_start: int
    body_end: int
    keep_alive: bool


class FastPath:
    """The listening side: makes one ``FastConnection`` per accepted connection and tracks them."""

    def __init__(self, routes: dict[bytes, UnaryHandler], fallback: Callable[[], asyncio.Protocol], *,
                 max_body: int, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.routes = routes
        self.fallback = fallback
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.heads = _HeadCache()
        self.connections: set[FastConnection] = set()
        self.handed_over = 0  # connections given to aiohttp so far

    def __call__(self) -> FastConnection:
        return FastConnection(self)

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.close()


class FastConnection(asyncio.Protocol):
    def __init__(self, server: FastPath) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()  # appended in place: a large body arriving in many reads is not recopied
        self._busy = False  # a request is being handled; later ones wait in the buffer
        self._eof = False
        self._write_paused = False
        self._read_paused = False
        self._buffer_limit = server.max_body + 2 * MAX_HEAD
        self._last_active = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._server.connections.add(self)
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._transport = None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._last_active = self._loop.time()
        if len(self._buf) > self._buffer_limit and not self._read_paused and self._transport is not None:
            # A client pipelining faster than it reads answers: never hold more than one request.
            self._transport.pause_reading()
            self._read_paused = True
        self._next()

    def eof_received(self) -> bool:
        self._eof = True
        if self._busy:
            return True  # keep the write side open for the answer being prepared
        self._next()
        return False

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._next()

    # ------------------------------------------------------------------ requests

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _touch(self) -> None:
        self._last_active = self._loop.time()
        if self._idle_timer is None:
            self._idle_timer = self._loop.call_at(self._last_active + self._server.idle_timeout, self._on_idle)

    def _on_idle(self) -> None:
        self._idle_timer = None
        if self._transport is None:
            return
        due = self._last_active + self._server.idle_timeout
        if self._busy or self._buf or due > self._loop.time():
            self._idle_timer = self._loop.call_at(max(due, self._loop.time() + 1.0), self._on_idle)
            return
        self._transport.close()

    def _next(self) -> None:
        """Start the next complete request in the buffer, hand over, or wait for more bytes."""
        transport = self._transport
        if self._busy or self._write_paused or transport is None or transport.is_closing():
            return
        request = self._parse()
        if request is None:
            # Incomplete. Never while reading is paused: a buffer over the limit holds either a
            # complete request or one that is not ours.
            if self._eof:
                transport.close()
            return
        if request is False:
            self._hand_over()
            return
        body = bytes(self._buf[request.body_start:request.body_end])
        del self._buf[:request.body_end]
        if self._read_paused and len(self._buf) <= self._buffer_limit:
            transport.resume_reading()
            self._read_paused = False
        self._busy = True
        task = self._loop.create_task(self._answer(request, body))
        task.add_done_callback(_log_crash)

    def _parse(self) -> _Request | None | bool:
        """The first buffered request if complete; None if incomplete; False if not ours to serve."""
        buf = self._buf
        if not buf:
            return None
        head_end = buf.find(_TERMINATOR, 0, MAX_HEAD + 4)
        if head_end < 0:
            return False if len(buf) > MAX_HEAD else None
        head = bytes(buf[:head_end])
        if _FORBIDDEN_IN_HEAD.search(head):
            return False  # control bytes, bare CR or LF: aiohttp's parser says what is wrong
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[0] != b"POST" or parts[2] != b"HTTP/1.1":
            return False
        handler = self._server.routes.get(parts[1])
        if handler is None:
            return False
        length = -1
        keep_alive = True
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not _TOKEN.fullmatch(name):
                return False
            name = name.lower()
            if name == b"content-length":
                value = value.strip()
                if length >= 0 or not value.isdigit():
                    return False
                length = int(value)
            elif name in (b"transfer-encoding", b"expect", b"upgrade"):
                return False
            elif name == b"connection":
                tokens = {t.strip().lower() for t in value.split(b",")}
                if b"close" in tokens:
                    keep_alive = False
                elif b"upgrade" in tokens:
                    return False
        if length < 0 or length > self._server.max_body:
            return False
        body_start = head_end + len(_TERMINATOR)
        if len(buf) < body_start + length:
            return None
        return _Request(handler, body_start, body_start + length, keep_alive)

    async def _answer(self, request: _Request, body: bytes) -> None:
        keep_alive = request.keep_alive
        try:
            reply = await request.handler(body)
        except Exception:  # noqa: BLE001 - answered as aiohttp answers a handler that crashed
            log.exception("error handling a request")
            reply = Reply(500, b"500 Internal Server Error\n\nServer got itself in trouble",
                          (("Content-Type", "text/plain; charset=utf-8"),))
            keep_alive = False
        self._busy = False
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(render(reply, self._server.heads, keep_alive))
        self._touch()
        if not keep_alive:
            transport.close()
            return
        self._next()

    def _hand_over(self) -> None:
        """Give the connection and its unread bytes to aiohttp for good."""
        transport = self._transport
        assert transport is not None
        self._server.connections.discard(self)
        self._server.handed_over += 1
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._read_paused:
            transport.resume_reading()
            self._read_paused = False
        protocol = self._server.fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        self._transport = None
        buf, self._buf = bytes(self._buf), bytearray()
        if buf:
            protocol.data_received(buf)
        if self._eof:
            protocol.eof_received()


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("fast-path connection task failed", exc_info=task.exception())
