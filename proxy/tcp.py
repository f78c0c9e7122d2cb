"""TCP forwarding for one listening address: accept, pick an endpoint, splice both directions.

* Each accepted connection gets a backend connection chosen by the Service port's balancer; a
  connect that is refused (or times out) is retried on the next endpoint, up to ``max_attempts``
  endpoints, so a dead pod costs no client connection.
* Both directions are copied with asyncio streams: ``read`` then ``write`` + ``drain``, so a
  slow reader stops us reading from the fast writer (backpressure through the kernel buffers),
  and memory per connection stays bounded by the stream limits.
* Half-close is passed on (``write_eof``): a client that shuts down its sending side still gets
  the whole answer. A reset on one side aborts the other.
* The listener's target (which Service port it serves) can be changed in place, and closing a
  listener stops accepting without touching established connections — the same guarantee the
  endpoint list gives (connections keep their backend until either side closes).
* With no endpoint at all the client connection is reset (SO_LINGER 0), which a client sees like
  the "connection refused" kube-proxy's REJECT rule produces.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import Any

from .balancer import Balancers
from .metrics import ProxyMetrics
from .model import ListenKey, ServicePortKey

log = logging.getLogger(__name__)

BUFFER = 256 * 1024
_LINGER_RESET = struct.pack("ii", 1, 0)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        pass
    writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: list[int]) -> None:
    while True:
        data = await reader.read(BUFFER)
        if not data:
            break
        count[0] += len(data)
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof() and not writer.is_closing():
        writer.write_eof()


async def splice(a_reader: asyncio.StreamReader, a_writer: asyncio.StreamWriter, b_reader: asyncio.StreamReader,
                 b_writer: asyncio.StreamWriter) -> tuple[int, int]:
    """Copy a→b and b→a until both ends closed; returns the bytes copied each way."""
    up, down = [0], [0]
    tasks = [asyncio.ensure_future(_pipe(a_reader, b_writer, up)), asyncio.ensure_future(_pipe(b_reader, a_writer, down))]
    try:
        pending: set[asyncio.Future[Any]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(not t.cancelled() and t.exception() is not None for t in done):
                # A reset (or any error) on one side: the conversation is over, abort both.
                a_writer.transport.abort()
                b_writer.transport.abort()
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                break
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in (a_writer, b_writer):
            if not w.is_closing():
                w.close()
    return up[0], down[0]


class TCPListener:
    def __init__(self, key: ListenKey, target: ServicePortKey, *, balancers: Balancers, metrics: ProxyMetrics,
                 connect_timeout: float = 3.0, max_attempts: int = 5) -> None:
        self.key = key
        self.target = target
        self.balancers = balancers
        self.metrics = metrics
        self.connect_timeout = connect_timeout
        self.max_attempts = max_attempts
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()

    async def start(self, *, reuse_port: bool = False, sock: socket.socket | None = None) -> None:
        """Listen on ``key``, or accept on ``sock`` (already bound and listening, e.g. in a pod's namespace)."""
        if sock is not None:
            self._server = await asyncio.start_server(self._accept, sock=sock, limit=BUFFER)
            return
        self._server = await asyncio.start_server(self._accept, self.key.ip, self.key.port, reuse_address=True,
                                                  reuse_port=reuse_port, backlog=1024, limit=BUFFER)

    def close(self) -> None:
        """Stop accepting; established connections go on."""
        if self._server is not None:
            self._server.close()
            self._server = None

    def abort_all(self) -> None:
        for task in list(self._conns):
            task.cancel()

    @property
    def active(self) -> int:
        return len(self._conns)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._serve(reader, writer))
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    async def _connect(self, client_ip: str | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        target = self.target
        bal = self.balancers.get(target)
        tried: set[tuple[str, int]] = set()
        for _ in range(self.max_attempts):
            ep = bal.pick(client_ip, tried)
            if ep is None:
                break
            try:
                async with asyncio.timeout(self.connect_timeout):  # no extra task, unlike wait_for on 3.11
                    conn = await asyncio.open_connection(ep.ip, ep.port, limit=BUFFER)
            except (OSError, asyncio.TimeoutError) as exc:
                bal.failed(ep)
                tried.add(ep.addr)
                self.metrics.connect_errors.labels(str(target)).inc()
                log.info("endpoint failed; trying the next", extra={"event": "endpoint_failed", "service": str(target),
                                                                    "endpoint": f"{ep.ip}:{ep.port}", "error": repr(exc)})
                continue
            bal.succeeded(ep)
            return conn
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client_ip = peer[0] if isinstance(peer, tuple) else None
        target = self.target
        labels = (str(target), "tcp")
        try:
            backend = await self._connect(client_ip)
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        if backend is None:
            self.metrics.connections.labels(*labels, "no_endpoint").inc()
            _reset(writer)
            return
        self.metrics.connections.labels(*labels, "ok").inc()
        self.metrics.active.labels("tcp").inc()
        try:
            up, down = await splice(reader, writer, backend[0], backend[1])
            self.metrics.bytes.labels("tcp", "in").inc(up)
            self.metrics.bytes.labels("tcp", "out").inc(down)
        except asyncio.CancelledError:
            writer.transport.abort()
            backend[1].transport.abort()
            raise
        finally:
            self.metrics.active.labels("tcp").dec()
