"""The ingress controller: ``pilot ingress --kubeconfig F --bind 127.0.0.1:8080 [--tls-bind 127.0.0.1:8443]``.

An aiohttp reverse proxy routing by networking.k8s.io/v1 Ingresses of the class ``pilot``
(``routes.RouteTable``) to the ready endpoints of their backend Services (the same balancers as
the service proxy: round robin, failure marks). What it does, and why:

* Class: at startup the IngressClass ``pilot`` (controller ``pilothouse.dev/ingress-controller``)
  is created if missing, marked default with ``ingressclass.kubernetes.io/is-default-class``.
  Ingresses whose ``ingressClassName`` names a class of that controller, or that name no class
  at all, are served.
* Retries: an upstream attempt that fails before any response byte — connection refused, reset,
  closed (a replica just killed, a pooled keep-alive connection to a stopped one) — is repeated on
  another endpoint, up to ``--upstream-tries`` endpoints. Requests whose body is buffered (no body
  or up to ``--retry-body-limit`` bytes with a Content-Length) are retried after any such failure
  if the method is idempotent, and after a failed connect whatever the method; a streamed body
  (larger or chunked) is only retried after a failed connect, because nothing of it was read
  yet. So killing a replica is invisible to clients of idempotent requests.
* Streaming both ways: request bodies above the limit and all response bodies are copied chunk by
  chunk, never held whole.
* Headers: hop-by-hop headers (``Connection`` and those it names, ``Keep-Alive``, ``TE``,
  ``Transfer-Encoding``, ``Upgrade``, ...) are dropped in both directions; ``Host`` is passed on;
  ``X-Forwarded-For`` (appended), ``X-Forwarded-Host``, ``X-Forwarded-Proto``,
  ``X-Forwarded-Port`` and ``X-Real-IP`` are set. Response bodies are passed through
  undecoded (``Content-Encoding`` kept).
* Status: the replica holding the Lease ``kube-system/pilot-ingress-status`` writes
  ``status.loadBalancer.ingress = [{ip: --publish-address, ports: [{port}, ...]}]`` of every
  served Ingress through ``/status``, and clears it on Ingresses that leave the class.
* Not supported: WebSocket/``Upgrade`` (the header is dropped), resource backends, per-Ingress
  annotations (rewrites, redirects).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from apiclient import component
from apiclient.controller import Controller
from apiclient.informer import Informer
from apiclient.rest import RESTClient, resource
from apiclient.workqueue import WorkQueue
from apimachinery import meta as m
from apimachinery.errors import StatusError

from . import runtime
from .balancer import Balancers
from .catalog import ServiceCatalog
from .metrics import IngressMetrics
from .model import ServicePortKey, find_service_port
from .routes import Backend, RouteTable
from .tls import CertStore

log = logging.getLogger("ingress")

INGRESSES = resource("ingresses", "networking.k8s.io", "v1")
INGRESS_CLASSES = resource("ingressclasses", "networking.k8s.io", "v1")
SECRETS = resource("secrets")
CLASS_NAME = "pilot"
CONTROLLER = "pilothouse.dev/ingress-controller"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
STATUS_LEASE = "pilot-ingress-status"

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade", "proxy-connection", "expect"})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
SMALL_BODY = 64 * 1024  # responses up to this size (with a Content-Length) are relayed whole

Obj = Mapping[str, Any]


def strip_hop_by_hop(headers: Mapping[str, str] | Any) -> CIMultiDict[str]:
    """A copy of ``headers`` without hop-by-hop headers, including those named in ``Connection``."""
    named = {t.strip().lower() for v in headers.getall("Connection", []) for t in v.split(",")}
    out: CIMultiDict[str] = CIMultiDict()
    for k, v in headers.items():
        lk = k.lower()
        if lk not in HOP_BY_HOP and lk not in named:
            out.add(k, v)
    return out


def forwarded_headers(request: web.Request) -> CIMultiDict[str]:
    headers = strip_hop_by_hop(request.headers)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    client_ip = peer[0] if isinstance(peer, tuple) else ""
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    prior = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {client_ip}" if prior else client_ip
    headers["X-Real-IP"] = client_ip
    headers["X-Forwarded-Host"] = request.headers.get("Host", "")
    headers["X-Forwarded-Proto"] = "https" if request.secure else "http"
    if isinstance(sock, tuple):
        headers["X-Forwarded-Port"] = str(sock[1])
    return headers


class IngressController:
    def __init__(self, client: RESTClient, *, metrics: IngressMetrics, class_name: str = CLASS_NAME,
                 controller: str = CONTROLLER, publish_ip: str = "127.0.0.1", publish_ports: tuple[int, ...] = (),
                 connect_timeout: float = 3.0, read_timeout: float = 60.0, upstream_tries: int = 5,
                 retry_body_limit: int = 1 << 20, fail_timeout: float = 2.0) -> None:
        self.client = client
        self.metrics = metrics
        self.class_name = class_name
        self.controller_name = controller
        self.publish_ip = publish_ip
        self.publish_ports = publish_ports
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.upstream_tries = upstream_tries
        self.retry_body_limit = retry_body_limit
        self.catalog = ServiceCatalog(client)
        self.ingresses = Informer(client, INGRESSES, name="ingresses")
        self.classes = Informer(client, INGRESS_CLASSES, name="ingressclasses")
        self.secrets = Informer(client, SECRETS, name="tls-secrets", field_selector="type=kubernetes.io/tls")
        self.balancers = Balancers(self.catalog.balancer_lookup, fail_timeout=fail_timeout)
        self.table = RouteTable()
        self.certs = CertStore(self.secrets.get, lambda name: self.table.tls_secret(name))
        self.status = Controller("ingress-status", self.sync_status, workers=2)
        self.status.informers.append(self.ingresses)
        self._session: aiohttp.ClientSession | None = None
        self.catalog.on_endpoints.append(self.balancers.refresh)
        self.catalog.on_service.append(self.balancers.refresh)
        for inf in (self.ingresses, self.classes):
            inf.add_event_handler(on_add=self._rebuild, on_update=lambda _o, _n: self._rebuild(),
                                  on_delete=self._rebuild)
        self.ingresses.add_event_handler(on_add=self.status.enqueue, on_update=lambda _o, n: self.status.enqueue(n),
                                         on_delete=self.status.enqueue)
        self.classes.add_event_handler(on_add=self._requeue_all, on_update=lambda _o, _n: self._requeue_all(),
                                       on_delete=self._requeue_all)

    # ------------------------------------------------------------------ lifecycle

    @property
    def synced(self) -> bool:
        return (self.catalog.synced and self.ingresses.has_synced and self.classes.has_synced
                and self.secrets.has_synced)

    def start(self) -> None:
        self.catalog.start()
        for inf in (self.ingresses, self.classes, self.secrets):
            inf.start()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=None,
                                           enable_cleanup_closed=True),
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout))

    async def stop(self) -> None:
        await self.catalog.stop()
        await asyncio.gather(*(inf.stop() for inf in (self.ingresses, self.classes, self.secrets)))
        if self._session is not None:
            await self._session.close()

    async def ensure_class(self, *, attempts: int = 1000, delay: float = 1.0, max_delay: float = 30.0) -> None:
        """Create the IngressClass (default class) unless it exists; retries (backing off) while it cannot."""
        body = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": self.class_name, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
                "spec": {"controller": self.controller_name}}
        reported = ""
        for _ in range(attempts):
            try:
                try:
                    await self.client.get(INGRESS_CLASSES, self.class_name)
                    return
                except StatusError as err:
                    if err.code != 404:
                        raise
                await self.client.create(INGRESS_CLASSES, body)
                log.info("created IngressClass", extra={"event": "class_created", "class": self.class_name})
                return
            except StatusError as err:
                if err.code == 409:
                    return  # created meanwhile (another replica)
                problem = err.message
            except Exception as exc:  # noqa: BLE001 - API away: try again
                problem = repr(exc)
            if problem != reported:
                log.warning("cannot ensure IngressClass %s: %s", self.class_name, problem,
                            extra={"event": "class_failed"})
                reported = problem
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)

    # ------------------------------------------------------------------ which Ingresses are ours

    def class_names(self) -> set[str]:
        names = {self.class_name}
        for ic in self.classes.list():
            if (ic.get("spec") or {}).get("controller") == self.controller_name:
                names.add(m.name(ic))
        return names

    def serves(self, ing: Obj, names: set[str] | None = None) -> bool:
        names = self.class_names() if names is None else names
        cls = (ing.get("spec") or {}).get("ingressClassName")
        if cls:
            return cls in names
        legacy = m.annotations(ing).get(LEGACY_CLASS_ANNOTATION)
        return not legacy or legacy in names

    def _rebuild(self, *_: Any) -> None:
        names = self.class_names()
        served = [i for i in self.ingresses.list() if self.serves(i, names)]
        self.table = RouteTable.build(served)
        used = self.table.service_keys()
        self.balancers.retain([k for k in self.balancers.keys() if k.service_key in used])
        self.metrics.ingresses.set(len(served))

    def _requeue_all(self, *_: Any) -> None:
        for ing in self.ingresses.list():
            self.status.enqueue(ing)

    # ------------------------------------------------------------------ status

    def desired_status(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"ip": self.publish_ip}
        if self.publish_ports:
            entry["ports"] = [{"port": p, "protocol": "TCP"} for p in self.publish_ports]
        return [entry]

    async def lead_status(self) -> None:
        if self.status.queue.shutting_down:
            self.status.queue = WorkQueue(name="ingress-status")
        self._requeue_all()
        await self.status.run()

    async def sync_status(self, key: str) -> None:
        ing = self.ingresses.get(key)
        if ing is None:
            return
        current = (((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
        if self.serves(ing):
            desired: list[dict[str, Any]] | None = self.desired_status()
        elif current == self.desired_status():
            desired = None  # left our class: take our address back
        else:
            return
        if (desired or []) == current:
            return
        ns, name = m.split_object_key(key)
        try:
            await self.client.patch(INGRESSES, name, {"status": {"loadBalancer": {"ingress": desired}}},
                                    namespace=ns, subresource="status")
        except StatusError as err:
            self.metrics.status_writes.labels("error").inc()
            if err.code == 404:
                return
            raise
        self.metrics.status_writes.labels("ok").inc()
        log.info("ingress status written", extra={"event": "ingress_status", "ingress": key, "ingress_lb": desired})

    # ------------------------------------------------------------------ proxying

    def resolve(self, backend: Backend) -> ServicePortKey | None:
        svc = self.catalog.service(backend.service_key)
        if svc is None:
            return None
        port = find_service_port(svc, backend.port)
        if port is None or str(port.get("protocol") or "TCP").upper() != "TCP":
            return None
        return ServicePortKey(backend.namespace, backend.service, str(port.get("name") or ""), "TCP")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        backend = self.table.match(request.host, request.path)
        if backend is None:
            self.metrics.requests.labels("", "404").inc()
            return web.Response(status=404, text="default backend - 404\n")
        key = self.resolve(backend)
        if key is None:
            self.metrics.requests.labels(backend.ingress, "503").inc()
            return web.Response(status=503, text=f"service {backend.service_key} port {backend.port} not found\n")
        response = await self._proxy(request, key, backend, started)
        self.metrics.requests.labels(backend.ingress, str(response.status)).inc()
        return response

    async def _body(self, request: web.Request) -> tuple[Any, bool]:
        """The body to send upstream and whether it can be sent again."""
        if not request.body_exists:
            return None, True
        length = request.content_length
        if length is not None and length <= self.retry_body_limit:
            return await request.read(), True
        return request.content, False

    async def _proxy(self, request: web.Request, key: ServicePortKey, backend: Backend,
                     started: float) -> web.StreamResponse:
        assert self._session is not None
        bal = self.balancers.get(key)
        headers = forwarded_headers(request)
        body, replayable = await self._body(request)
        idempotent = request.method in IDEMPOTENT
        client_ip = headers.get("X-Real-IP") or None
        tried: set[tuple[str, int]] = set()
        last_error = "no ready endpoints"
        for _ in range(self.upstream_tries):
            ep = bal.pick(client_ip, tried)
            if ep is None:
                break
            url = URL(f"http://{ep.ip}:{ep.port}{request.raw_path}", encoded=True)
            try:
                upstream = await self._session.request(request.method, url, headers=headers, data=body,
                                                       allow_redirects=False)
                small = await self._small_body(request, upstream)
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                # Never connected: nothing was sent, always safe to try the next endpoint.
                bal.failed(ep)
                tried.add(ep.addr)
                last_error = f"connect {ep.ip}:{ep.port}: {exc!r}"
                self.metrics.upstream_retries.labels("connect").inc()
                continue
            except asyncio.TimeoutError:
                return self._fail(504, f"upstream {ep.ip}:{ep.port} timed out", backend)
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                # Reset, closed (a pooled connection to a replica that just died) or cut short before
                # anything reached our client: the request may have been seen, so only safe requests go again.
                tried.add(ep.addr)
                last_error = f"{ep.ip}:{ep.port}: {exc!r}"
                if replayable and idempotent:
                    self.metrics.upstream_retries.labels("reset").inc()
                    continue
                return self._fail(502, f"upstream failed: {last_error}", backend)
            except aiohttp.ClientError as exc:
                return self._fail(502, f"upstream failed: {exc!r}", backend)
            bal.succeeded(ep)
            self.metrics.duration.observe(time.perf_counter() - started)
            if small is not None:
                return small
            return await self._stream(request, upstream)
        return self._fail(503 if not tried else 502, f"no upstream answered for {backend.service_key}: {last_error}",
                          backend)

    @staticmethod
    def _fail(status: int, message: str, backend: Backend) -> web.Response:
        log.warning("request failed", extra={"event": "upstream_failed", "status": status, "ingress": backend.ingress,
                                             "service": backend.service_key, "error": message})
        return web.Response(status=status, text=message + "\n")

    @staticmethod
    async def _small_body(request: web.Request, upstream: aiohttp.ClientResponse) -> web.Response | None:
        """The whole answer when it is small and of known size (one write for headers and body, and a
        failure while reading it can still be retried); None: stream it."""
        length = upstream.content_length
        if length is None or length > SMALL_BODY or request.method == "HEAD":
            return None
        try:
            body = await upstream.read()  # the connection goes back to the pool once the body is read
        except BaseException:
            upstream.close()  # half-read: the connection cannot be reused
            raise
        headers = strip_hop_by_hop(upstream.headers)
        headers.popall("Content-Length", None)
        return web.Response(status=upstream.status, reason=upstream.reason, headers=headers, body=body)

    async def _stream(self, request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        try:
            out = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                                     headers=strip_hop_by_hop(upstream.headers))
            await out.prepare(request)
            async for chunk in upstream.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out
        finally:
            upstream.release()


def build_app(ctl: IngressController) -> web.Application:
    app = web.Application(client_max_size=ctl.retry_body_limit + 1)
    app.router.add_route("*", "/{tail:.*}", ctl.handle)
    return app


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pilot ingress",
                                description="Ingress controller: an HTTP(S) reverse proxy for networking.k8s.io/v1 "
                                            "Ingresses of the class 'pilot'.")
    runtime.add_client_args(p)
    p.add_argument("--bind", default="127.0.0.1:8080", help="HOST:PORT for HTTP")
    p.add_argument("--tls-bind", default="", help="HOST:PORT for HTTPS (certificates from the Ingresses' TLS secrets)")
    p.add_argument("--bind-health", default="127.0.0.1:10254", help="HOST:PORT for /healthz, /readyz, /metrics")
    p.add_argument("--publish-address", default="", help="IP written to the Ingresses' status (default: the bind host)")
    p.add_argument("--ingress-class", default=CLASS_NAME, help="the IngressClass to create and serve")
    p.add_argument("--controller-name", default=CONTROLLER, help="spec.controller of the IngressClasses to serve")
    p.add_argument("--connect-timeout", type=float, default=3.0, metavar="SECONDS")
    p.add_argument("--read-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="upstream silence that ends a request with 504")
    p.add_argument("--upstream-tries", type=int, default=5, help="endpoints tried per request at most")
    p.add_argument("--retry-body-limit", type=int, default=1 << 20, metavar="BYTES",
                   help="request bodies up to this size are buffered so the request can be retried")
    p.add_argument("--endpoint-fail-timeout", type=float, default=2.0, metavar="SECONDS")
    component.add_leader_election_flags(p, resource_name=STATUS_LEASE)
    return p


async def serve(args: argparse.Namespace) -> None:
    host, port = runtime.split_host_port(args.bind, 80)
    tls = runtime.split_host_port(args.tls_bind, 443) if args.tls_bind else None
    publish = args.publish_address or (host if host not in ("0.0.0.0", "") else "127.0.0.1")
    client = runtime.make_client(args, "pilot-ingress")
    metrics = IngressMetrics()
    ctl = IngressController(client, metrics=metrics, class_name=args.ingress_class, controller=args.controller_name,
                            publish_ip=publish, publish_ports=(port, *((tls[1],) if tls else ())),
                            connect_timeout=args.connect_timeout, read_timeout=args.read_timeout,
                            upstream_tries=args.upstream_tries, retry_body_limit=args.retry_body_limit,
                            fail_timeout=args.endpoint_fail_timeout)
    ctl.start()
    health = await runtime.start_http(args.bind_health, metrics, lambda: ctl.synced)
    runner = web.AppRunner(build_app(ctl), access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True, backlog=1024).start()
    if tls:
        await web.TCPSite(runner, tls[0], tls[1], ssl_context=ctl.certs.default, reuse_address=True,
                          backlog=1024).start()
    elector = runtime.leader_elector(client, args, metrics, ctl.lead_status)
    work = asyncio.gather(ctl.ensure_class(), component.campaign(elector))
    log.info("ingress started", extra={"event": "started", "bind": args.bind, "tls_bind": args.tls_bind or None,
                                       "publish": publish, "servers": list(client.config.servers)})
    try:
        await component.run_until_signal(work, name="ingress")
    finally:
        await runner.cleanup()
        await ctl.stop()
        await health.cleanup()
        await client.close()
        log.info("stopped", extra={"event": "stopped"})


def main(argv: list[str] | None = None) -> None:
    runtime.run(serve, build_parser().parse_args(sys.argv[1:] if argv is None else argv))
