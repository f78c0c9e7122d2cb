"""UDP forwarding for one listening address: a session per client address, ended by idleness.

UDP has no connections, so the proxy makes its own (what conntrack does for kube-proxy):

* The first datagram from a client address opens a *session*: an endpoint is picked by the
  balancer and a connected datagram socket to it is created. Later datagrams of that client go to
  the same endpoint; answers from the endpoint are sent back from the listening address, so the
  client sees replies from the address it talked to.
* A session ends after ``idle_timeout`` seconds without traffic either way, or when its endpoint
  leaves the Service (the next datagram opens a session on a live endpoint), as kube-proxy
  flushes conntrack entries of removed UDP endpoints.
* An ICMP port-unreachable for a session that never got an answer (the endpoint is not
  listening) arrives as ``ConnectionRefusedError``: the endpoint is marked failed and the
  datagrams not yet answered are re-sent to the next endpoint.
* Bounded: at most ``max_sessions`` sessions per listener (the least recently active goes) and
  ``max_pending`` datagrams held per session while its socket is being created.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import OrderedDict
from typing import Any

from .balancer import Balancers
from .metrics import ProxyMetrics
from .model import Endpoint, ListenKey, ServicePortKey

log = logging.getLogger(__name__)

Addr = tuple[str, int]


class _BackendProtocol(asyncio.DatagramProtocol):
    def __init__(self, session: _Session) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.session.from_backend(data)

    def error_received(self, exc: Exception) -> None:
        self.session.backend_error(exc)


class _Session:
    def __init__(self, listener: UDPListener, client: Addr) -> None:
        self.listener = listener
        self.client = client
        self.endpoint: Endpoint | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []  # sent (or to send) but not answered yet: re-sent after a refusal
        self.replied = False
        self.tried: set[Addr] = set()
        self.last = asyncio.get_running_loop().time()
        self.closed = False
        self._opening: asyncio.Task[None] | None = None

    def send(self, data: bytes) -> None:
        self.last = asyncio.get_running_loop().time()
        if not self.replied:
            if len(self.pending) >= self.listener.max_pending:
                self.pending.pop(0)
            self.pending.append(data)
        if self.transport is not None:
            self.transport.sendto(data)
            self.listener.metrics.datagrams.labels("in").inc()
        elif self._opening is None:
            self._opening = asyncio.ensure_future(self._open())

    async def _open(self) -> None:
        listener = self.listener
        bal = listener.balancers.get(listener.target)
        loop = asyncio.get_running_loop()
        while not self.closed and len(self.tried) < listener.max_attempts:
            ep = bal.pick(self.client[0], self.tried)
            if ep is None:
                break
            try:
                transport, _ = await loop.create_datagram_endpoint(lambda: _BackendProtocol(self), remote_addr=ep.addr)
            except OSError as exc:
                bal.failed(ep)
                self.tried.add(ep.addr)
                log.info("endpoint failed", extra={"event": "endpoint_failed", "endpoint": f"{ep.ip}:{ep.port}",
                                                   "error": repr(exc)})
                continue
            if self.closed:
                transport.close()
                return
            self.endpoint, self.transport = ep, transport  # type: ignore[assignment]
            listener.metrics.connections.labels(str(listener.target), "udp", "ok").inc()
            for data in self.pending:
                transport.sendto(data)
                listener.metrics.datagrams.labels("in").inc()
            self._opening = None
            return
        listener.metrics.connections.labels(str(listener.target), "udp", "no_endpoint").inc()
        self._opening = None
        listener.drop(self)

    def from_backend(self, data: bytes) -> None:
        self.last = asyncio.get_running_loop().time()
        if not self.replied:
            self.replied = True
            self.pending.clear()
            if self.endpoint is not None:
                self.listener.balancers.get(self.listener.target).succeeded(self.endpoint)
        self.listener.reply(data, self.client)

    def backend_error(self, exc: Exception) -> None:
        if not isinstance(exc, ConnectionRefusedError) or self.endpoint is None:
            return
        if self.replied:
            self.listener.drop(self)  # the endpoint went away mid-conversation: next datagram re-picks
            return
        bal = self.listener.balancers.get(self.listener.target)
        bal.failed(self.endpoint)
        self.tried.add(self.endpoint.addr)
        self.listener.metrics.connect_errors.labels(str(self.listener.target)).inc()
        if self.transport is not None:
            self.transport.close()
        self.transport, self.endpoint = None, None
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self._opening is not None:
            self._opening.cancel()
            self._opening = None


class UDPListener(asyncio.DatagramProtocol):
    def __init__(self, key: ListenKey, target: ServicePortKey, *, balancers: Balancers, metrics: ProxyMetrics,
                 idle_timeout: float = 30.0, max_sessions: int = 10000, max_pending: int = 64,
                 max_attempts: int = 5) -> None:
        self.key = key
        self.target = target
        self.balancers = balancers
        self.metrics = metrics
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self.max_pending = max_pending
        self.max_attempts = max_attempts
        self.sessions: OrderedDict[Addr, _Session] = OrderedDict()
        self.transport: asyncio.DatagramTransport | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self, *, reuse_port: bool = False, sock: socket.socket | None = None) -> None:
        """Bind ``key``, or receive on ``sock`` (already bound, e.g. in a pod's namespace)."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            await loop.create_datagram_endpoint(lambda: self, sock=sock)
        else:
            await loop.create_datagram_endpoint(lambda: self, local_addr=(self.key.ip, self.key.port),
                                                reuse_port=reuse_port)
        self._schedule_sweep()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self.abort_all()

    def abort_all(self) -> None:
        for s in list(self.sessions.values()):
            self.drop(s)

    @property
    def active(self) -> int:
        return len(self.sessions)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        client = (addr[0], addr[1])
        session = self.sessions.get(client)
        if session is None:
            while len(self.sessions) >= self.max_sessions:
                self.drop(next(iter(self.sessions.values())))
            session = self.sessions[client] = _Session(self, client)
            self.metrics.active.labels("udp").inc()
        else:
            self.sessions.move_to_end(client)
        session.send(data)

    def reply(self, data: bytes, client: Addr) -> None:
        if self.transport is not None:
            self.transport.sendto(data, client)
            self.metrics.datagrams.labels("out").inc()

    def drop(self, session: _Session) -> None:
        if self.sessions.get(session.client) is session:
            del self.sessions[session.client]
            self.metrics.active.labels("udp").dec()
        session.close()

    def endpoints_gone(self, gone: set[Addr]) -> None:
        for s in list(self.sessions.values()):
            if s.endpoint is not None and s.endpoint.addr in gone:
                self.drop(s)

    def _schedule_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(min(1.0, self.idle_timeout / 2), self._sweep)

    def _sweep(self) -> None:
        now = asyncio.get_running_loop().time()
        for s in [s for s in self.sessions.values() if now - s.last > self.idle_timeout]:
            self.drop(s)
        if self.transport is not None:
            self._schedule_sweep()
