"""Cluster DNS: ``pilot dns --kubeconfig F [--bind 127.0.0.1:10053]`` (or ``python -m proxy dns``).

Serves the zone ``cluster.local`` (``dnszone.ClusterZone``) over UDP and TCP on one address,
answering from a watch of Services and EndpointSlices, so a new Service resolves as soon as the
API server has it. Names outside the zone are answered REFUSED, or forwarded over UDP to
``--upstream HOST:PORT`` when one is given (SERVFAIL if it does not answer in time).

How pods use it:

* process runtime: a pod process finds the server in ``PILOT_DNS=127.0.0.1:10053`` (a resolver
  that takes a port, such as dnslib's or aiodns', is pointed there; libc's resolver cannot use a
  port other than 53, so ``getaddrinfo`` does not see cluster names unless the DNS server is bound
  on port 53 of a loopback address, ``--bind 127.0.0.53:53`` as root, and ``/etc/resolv.conf``
  names it);
* docker runtime: the container's ``resolv.conf`` gets ``nameserver <address the DNS listens on
  at port 53>`` and ``search <ns>.svc.cluster.local svc.cluster.local cluster.local``,
  ``options ndots:5``, as a kubelet writes it for ``dnsPolicy: ClusterFirst``.

UDP answers larger than the client's limit (512 bytes, or its EDNS0 payload size) are sent with
the TC bit and no records, and the client repeats the query over TCP.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import struct
import sys
import time
from collections.abc import Callable

from dnslib import QTYPE, RCODE, DNSError, DNSHeader, DNSRecord

from apiclient import component

from . import runtime
from .catalog import ServiceCatalog
from .dnszone import ClusterZone, reverse_ip
from .metrics import DNSMetrics

log = logging.getLogger("dns")

UDP_DEFAULT_SIZE = 512
OPT = 41


class DNSServer:
    def __init__(self, zone: ClusterZone, metrics: DNSMetrics, *, ready: Callable[[], bool] = lambda: True,
                 upstream: tuple[str, int] | None = None, upstream_timeout: float = 2.0,
                 tcp_idle_timeout: float = 10.0) -> None:
        self.zone = zone
        self.ready = ready
        self.metrics = metrics
        self.upstream = upstream
        self.upstream_timeout = upstream_timeout
        self.tcp_idle_timeout = tcp_idle_timeout
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UDP(self), local_addr=(host, port))
        self._tcp = await asyncio.start_server(self._tcp_client, host, port, reuse_address=True)

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ answering

    def answer(self, data: bytes, transport: str) -> bytes | DNSRecord | None:
        """The packed answer to one query; a parsed request when it must be forwarded; None: drop it."""
        started = time.perf_counter()
        try:
            request = DNSRecord.parse(data)
        except (DNSError, struct.error, IndexError, ValueError):
            if len(data) < 12:
                return None
            reply = DNSRecord(DNSHeader(id=struct.unpack("!H", data[:2])[0], qr=1, rcode=RCODE.FORMERR))
            self._count(transport, "-", reply, started)
            return bytes(reply.pack())
        qtype = QTYPE.get(request.q.qtype, str(request.q.qtype)) if request.questions else "-"
        if request.questions and self.upstream is not None and not self.zone.in_zone(str(request.q.qname)):
            ip = reverse_ip(str(request.q.qname)) if self.zone.is_reverse(str(request.q.qname)) else None
            if ip is None or not self.zone.ptr_targets(ip):
                return request  # not a cluster address: the upstream's to answer
        if not self.ready():
            # An empty cache would answer NXDOMAIN, which resolvers cache: say "try again" instead.
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
        else:
            reply = self.zone.answer(request)
        self._count(transport, qtype, reply, started)
        packed = bytes(reply.pack())
        if transport == "udp" and len(packed) > self._udp_limit(request):
            packed = bytes(DNSRecord(DNSHeader(id=reply.header.id, bitmap=reply.header.bitmap, tc=1),
                                     q=request.q).pack())
        return packed

    async def handle(self, data: bytes, transport: str) -> bytes | None:
        result = self.answer(data, transport)
        if not isinstance(result, DNSRecord):
            return result
        started = time.perf_counter()
        packed = await self._forward(result, data)
        self.metrics.queries.labels(transport, QTYPE.get(result.q.qtype, "?"), "FORWARDED").inc()
        self.metrics.duration.observe(time.perf_counter() - started)
        return packed

    def _count(self, transport: str, qtype: str, reply: DNSRecord, started: float) -> None:
        self.metrics.queries.labels(transport, qtype, RCODE.get(reply.header.rcode, "?")).inc()
        self.metrics.duration.observe(time.perf_counter() - started)

    @staticmethod
    def _udp_limit(request: DNSRecord) -> int:
        for rr in request.ar:
            if rr.rtype == OPT:
                return max(UDP_DEFAULT_SIZE, min(int(rr.rclass), 65535))
        return UDP_DEFAULT_SIZE

    async def _forward(self, request: DNSRecord, data: bytes) -> bytes:
        assert self.upstream is not None
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()

        class _Client(asyncio.DatagramProtocol):
            def datagram_received(self, reply: bytes, addr: object) -> None:
                if not answer.done() and reply[:2] == data[:2]:
                    answer.set_result(reply)

            def error_received(self, exc: Exception) -> None:
                if not answer.done():
                    answer.set_exception(exc)

        transport = None
        try:
            transport, _ = await loop.create_datagram_endpoint(_Client, remote_addr=self.upstream)
            transport.sendto(data)
            return await asyncio.wait_for(answer, self.upstream_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            log.info("upstream failed", extra={"event": "upstream_failed", "qname": str(request.q.qname),
                                               "error": repr(exc)})
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            reply.header.aa = 0
            return bytes(reply.pack())
        finally:
            if transport is not None:
                transport.close()

    # ------------------------------------------------------------------ transports

    def datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        result = self.answer(data, "udp")
        if isinstance(result, bytes):
            if self._udp is not None:
                self._udp.sendto(result, addr)
            return
        if result is None:
            return

        async def forward() -> None:
            packed = await self.handle(data, "udp")
            if packed is not None and self._udp is not None:
                self._udp.sendto(packed, addr)

        self._spawn(forward())

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), self.tcp_idle_timeout)
                (length,) = struct.unpack("!H", head)
                data = await asyncio.wait_for(reader.readexactly(length), self.tcp_idle_timeout)
                packed = await self.handle(data, "tcp")
                if packed is None:
                    break
                writer.write(struct.pack("!H", len(packed)) + packed)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.server.datagram(data, addr)  # type: ignore[arg-type]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pilot dns", description="Cluster DNS: <svc>.<ns>.svc.cluster.local and SRV "
                                                              "records from Services and EndpointSlices.")
    runtime.add_client_args(p)
    p.add_argument("--bind", default="127.0.0.1:10053",
                   help="HOST:PORT to answer on, UDP and TCP (127.0.0.53:53 as root, for libc resolvers)")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--ttl", type=int, default=5, help="TTL of answers and of negative answers (seconds)")
    p.add_argument("--upstream", default="", help="HOST:PORT to forward names outside the zone to "
                                                  "(default: answer them REFUSED)")
    p.add_argument("--bind-health", default="127.0.0.1:9153", help="HOST:PORT for /healthz, /readyz, /metrics")
    return p


async def serve(args: argparse.Namespace) -> None:
    host, port = runtime.split_host_port(args.bind, 53)
    upstream = runtime.split_host_port(args.upstream, 53) if args.upstream else None
    client = runtime.make_client(args, "pilot-dns")
    metrics = DNSMetrics()
    catalog = ServiceCatalog(client)
    server = DNSServer(ClusterZone(catalog, domain=args.cluster_domain, ttl=args.ttl), metrics,
                       ready=lambda: catalog.synced, upstream=upstream)
    catalog.start()
    runner = await runtime.start_http(args.bind_health, metrics, lambda: catalog.synced)
    await server.start(host, port)
    log.info("dns started", extra={"event": "started", "bind": f"{host}:{port}", "domain": args.cluster_domain,
                                   "upstream": args.upstream or None, "servers": list(client.config.servers)})
    try:
        await component.run_until_signal(asyncio.Event().wait())
    finally:
        await server.stop()
        await catalog.stop()
        await runner.cleanup()
        await client.close()
        log.info("stopped", extra={"event": "stopped"})


def main(argv: list[str] | None = None) -> None:
    runtime.run(serve, build_parser().parse_args(sys.argv[1:] if argv is None else argv))
