"""The etcd v3 JSON API (grpc-gateway form) over HTTP on the client port.

Writes and linearizable reads go through the Proposer (group commit through the Raft log);
serializable reads and watches read local MVCC state. Wire details follow etcd 3.4 as observed in
../shared/reference/etcd-json-api.md.

Unary calls (every method but watch and lease keepalive) are ``unary(tail, body) -> Reply``, framed
by either of two HTTP layers: the lean one of httpfast.py (``fast_routes``), which takes the plain
requests, and aiohttp (``app``), which takes everything else.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import errors, jsonapi
from .errors import EtcdError
from .httpfast import Reply, UnaryHandler
from .jsonapi import Reader
from .lease import LeaseClock
from .mvcc import MVCCStore
from .proposer import Proposer
from .readindex import LinearizableReads
from .watch import WatchHub, filter_events

log = logging.getLogger(__name__)

ETCD_VERSION = "3.4.0"
MAX_BODY = 2_883_584  # JSON bodies whose decoded message would be over 2 MiB: gRPC's own limit
CORS = {
    "Access-Control-Allow-Headers": "accept, content-type, authorization",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE",
    "Access-Control-Allow-Origin": "*",
}
CHUNK_THRESHOLD = 2048
STREAM_CLOSING = {"error": {"grpc_code": 1, "http_code": 408, "message": "grpc: the client connection is closing",
                            "http_status": "Request Timeout"}}


_OK_HEADERS = (("Content-Type", "application/json"), ("Grpc-Metadata-Content-Type", "application/grpc"),
               *CORS.items())
_ERROR_HEADERS = (("Content-Type", "application/json"), *CORS.items())


@dataclass(frozen=True, slots=True)
class MemberIdentity:
    name: str
    member_id: int
    cluster_id: int
    client_url: str  # the advertised one
    peers: dict[str, tuple[str, int]]  # peer address -> (name, member id)
    peer_scheme: str = "http"  # https when peers talk TLS


class EtcdServer:
    def __init__(self, *, identity: MemberIdentity, store: MVCCStore, lock: threading.Lock,
                 raft: Any, proposer: Proposer, reads: LinearizableReads, hub: WatchHub, leases: LeaseClock,
                 registry: CollectorRegistry, progress_interval: float = 600.0) -> None:
        self.identity = identity
        self.store = store
        self.lock = lock
        self.raft = raft
        self.proposer = proposer
        self.reads = reads
        self.hub = hub
        self.leases = leases
        self.progress_interval = progress_interval
        self.closing = asyncio.Event()
        self.registry = registry
        self._handled = Counter("grpc_server_handled_total", "RPCs completed on the server",
                                ["grpc_type", "grpc_service", "grpc_method", "grpc_code"], registry=registry)
        self._latency = Histogram("etcd_http_request_duration_seconds", "Latency of gateway requests",
                                  ["method"], registry=registry,
                                  buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        registry.register(_StoreCollector(self))
        self._unary: dict[str, tuple[str, Callable[[bytes], Awaitable[dict[str, Any]]]]] = {
            "kv/range": ("KV", self._range),
            "kv/put": ("KV", self._put),
            "kv/deleterange": ("KV", self._delete_range),
            "kv/txn": ("KV", self._txn),
            "kv/compaction": ("KV", self._compaction),
            "lease/grant": ("Lease", self._lease_grant),
            "lease/revoke": ("Lease", self._lease_revoke),
            "kv/lease/revoke": ("Lease", self._lease_revoke),
            "lease/timetolive": ("Lease", self._lease_ttl),
            "kv/lease/timetolive": ("Lease", self._lease_ttl),
            "lease/leases": ("Lease", self._lease_list),
            "kv/lease/leases": ("Lease", self._lease_list),
            "maintenance/status": ("Maintenance", self._status),
            "maintenance/alarm": ("Maintenance", self._alarm),
            "cluster/member/list": ("Cluster", self._member_list),
        }
        self._streaming: dict[str, tuple[str, Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]]] = {
            "lease/keepalive": ("Lease", self._lease_keepalive),
            "watch": ("Watch", self._watch),
        }
        self._gateway_prefixes = ("kv/", "lease/", "watch", "maintenance/", "cluster/", "auth/")

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._cors_middleware])
        app.router.add_route("*", "/health", self._health)
        app.router.add_route("*", "/version", self._version)
        app.router.add_route("*", "/metrics", self._metrics)
        # The gateway paths themselves as plain routes: aiohttp finds those by a dict lookup, where
        # the pattern below costs a regex match per request. The pattern still serves the rest
        # (trailing slashes, unknown paths with etcd's 404s).
        for tail in (*self._unary, *self._streaming):
            for prefix in ("v3", "v3beta"):
                app.router.add_route("*", f"/{prefix}/{tail}", functools.partial(self._serve, tail=tail))
        app.router.add_route("*", r"/{prefix:v3|v3beta}/{tail:.*}", self._gateway)
        return app

    def fast_routes(self) -> dict[bytes, UnaryHandler]:
        """The request paths the lean HTTP layer serves (httpfast.py), each to its unary method."""
        return {f"/{prefix}/{tail}".encode(): functools.partial(self.unary, tail)
                for tail in self._unary for prefix in ("v3", "v3beta")}

    @web.middleware
    async def _cors_middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            response = web.Response(status=404, text="404 page not found\n",
                                    headers={"X-Content-Type-Options": "nosniff"}, content_type="text/plain")
        except web.HTTPException as exc:
            response = web.Response(status=exc.status, text=exc.text or "", content_type="text/plain")
        if not response.prepared:
            response.headers.update(CORS)
        return response

    def header(self, revision: int | None = None) -> dict[str, str]:
        rev = self.store.revision if revision is None else revision
        # The term straight from the node: status() builds a whole dict, and this runs per response.
        return jsonapi.header(self.identity.cluster_id, self.identity.member_id, rev, self.raft.raftCurrentTerm)

    # ------------------------------------------------------------------ framing

    @staticmethod
    def _ok(body: dict[str, Any]) -> Reply:
        data = orjson.dumps(body)
        # etcd's gateway streams bodies over 2 KiB chunked, as one data chunk.
        return Reply(200, data, _OK_HEADERS, chunked=len(data) > CHUNK_THRESHOLD)

    @staticmethod
    def _error(err: EtcdError) -> Reply:
        return Reply(err.http_status, orjson.dumps(jsonapi.render_error(err)), _ERROR_HEADERS)

    @staticmethod
    async def _send(request: web.Request, reply: Reply) -> web.StreamResponse:
        """A Reply through aiohttp (the middleware finds the CORS headers already set)."""
        if not reply.chunked:
            return web.Response(status=reply.status, body=reply.body, headers=dict(reply.headers))
        resp = web.StreamResponse(status=reply.status, headers=dict(reply.headers))
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(reply.body)
        await resp.write_eof()
        return resp

    # ------------------------------------------------------------------ plain endpoints

    async def _health(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            return web.Response(status=405, text="Method Not Allowed\n", headers={"Allow": "GET"})
        ok = self.raft.status()["leader"] is not None
        return web.Response(status=200 if ok else 503, text='{"health":"%s"}' % ("true" if ok else "false"),
                            content_type="text/plain")

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=orjson.dumps({"etcdserver": ETCD_VERSION, "etcdcluster": "3.4.0"}),
                            content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    # ------------------------------------------------------------------ gateway dispatch

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, request.match_info["tail"].rstrip("/"))

    async def _serve(self, request: web.Request, tail: str) -> web.StreamResponse:
        route = self._unary.get(tail) or self._streaming.get(tail)
        if route is None:
            if any(tail.startswith(p) for p in self._gateway_prefixes):
                return web.Response(status=404, text="Not Found\n", content_type="text/plain",
                                    headers={"X-Content-Type-Options": "nosniff"})
            raise web.HTTPNotFound()
        if request.method == "OPTIONS":
            return web.Response(status=200)
        if request.method != "POST":
            return web.Response(status=405, text="Method Not Allowed\n", content_type="text/plain",
                                headers={"X-Content-Type-Options": "nosniff"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            size = request.content_length or MAX_BODY
            err = EtcdError(errors.RESOURCE_EXHAUSTED, f"grpc: received message larger than max ({size} vs. 2097152)")
            self._observe(route[0], tail, err.code, time.perf_counter())
            return await self._send(request, self._error(err))
        if tail in self._unary:
            return await self._send(request, await self.unary(tail, body))
        service, handler = self._streaming[tail]
        started = time.perf_counter()
        code = 0
        try:
            return await handler(request, body)
        except EtcdError as err:
            code = err.code
            return await self._send(request, self._error(err))
        finally:
            self._observe(service, tail, code, started)

    async def unary(self, tail: str, body: bytes) -> Reply:
        """Run the unary method at ``tail`` (e.g. ``kv/put``) on a JSON body; its answer or error."""
        service, handler = self._unary[tail]
        started = time.perf_counter()
        code = 0
        try:
            return self._ok(await handler(body))
        except EtcdError as err:
            code = err.code
            return self._error(err)
        finally:
            self._observe(service, tail, code, started)

    def _observe(self, service: str, tail: str, code: int, started: float) -> None:
        handled, latency = self._metric_children(service, tail.rsplit("/", 1)[-1], code)
        handled.inc()
        latency.observe(time.perf_counter() - started)

    def _metric_children(self, service: str, method: str, code: int) -> tuple[Any, Any]:
        """The (handled counter, latency histogram) children of one route and code, looked up once:
        ``labels()`` takes a lock and builds a tuple key on every call."""
        key = (service, method, code)
        children = self._children.get(key)
        if children is None:
            children = (self._handled.labels("unary", f"etcdserverpb.{service}", method.capitalize(),
                                             _CODE_NAMES.get(code, str(code))),
                        self._latency.labels(method))
            self._children[key] = children
        return children

    @staticmethod
    def _reader(body: bytes) -> Reader:
        if not body.strip():
            return Reader({})
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_json(_json_error(body, exc)) from None
        return Reader(obj)

    # ------------------------------------------------------------------ KV

    async def _range(self, body: bytes) -> dict[str, Any]:
        reader = self._reader(body)
        req = jsonapi.parse_range(reader)
        jsonapi.check_size(reader)
        if not req["serializable"]:
            await self.reads.wait()
        with self.lock:
            result = self.store.range(req)
            revision = self.store.revision
        return {"header": self.header(revision), **jsonapi.render_range(result)}

    async def _submit(self, req: dict[str, Any], render: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        result = await self.proposer.submit(req)
        return {"header": self.header(result["revision"]), **render(result)}

    async def _put(self, body: bytes) -> dict[str, Any]:
        reader = self._reader(body)
        req = jsonapi.parse_put(reader)
        jsonapi.check_size(reader)
        return await self._submit(req, jsonapi.render_put)

    async def _delete_range(self, body: bytes) -> dict[str, Any]:
        reader = self._reader(body)
        req = jsonapi.parse_delete(reader)
        jsonapi.check_size(reader)
        return await self._submit(req, jsonapi.render_delete)

    async def _txn(self, body: bytes) -> dict[str, Any]:
        reader = self._reader(body)
        req = jsonapi.parse_txn(reader)
        jsonapi.check_size(reader)
        return await self._submit(req, jsonapi.render_txn)

    async def _compaction(self, body: bytes) -> dict[str, Any]:
        req = jsonapi.parse_compaction(self._reader(body))
        return await self._submit(req, lambda _r: {})

    # ------------------------------------------------------------------ leases

    async def _lease_grant(self, body: bytes) -> dict[str, Any]:
        reader = self._reader(body)
        ttl = reader.int("TTL")
        lease_id = reader.int("ID")
        if lease_id == 0:
            lease_id = secrets.randbits(62) + 1
        result = await self.proposer.submit({"op": "lease_grant", "id": lease_id, "ttl": ttl})
        return {"header": self.header(result["revision"]), "ID": str(result["id"]), "TTL": str(result["ttl"])}

    async def _lease_revoke(self, body: bytes) -> dict[str, Any]:
        lease_id = self._reader(body).int("ID")
        result = await self.proposer.submit({"op": "lease_revoke", "id": lease_id})
        return {"header": self.header(result["revision"])}

    async def _lease_ttl(self, body: bytes) -> dict[str, Any]:
        reader = self._reader(body)
        lease_id = reader.int("ID")
        want_keys = reader.bool("keys")
        await self.reads.wait()
        with self.lock:
            lease = self.store.leases.get(lease_id)
            granted = lease.ttl if lease else 0
            keys = sorted(lease.keys) if (lease and want_keys) else []
            revision = self.store.revision
        out: dict[str, Any] = {"header": self.header(revision), "ID": str(lease_id)}
        if lease is None:
            out["TTL"] = "-1"
        else:
            remaining = self.leases.remaining(lease_id)
            out["TTL"] = str(granted if remaining < 0 else remaining)
            out["grantedTTL"] = str(granted)
            if keys:
                out["keys"] = [jsonapi.b64(k) for k in keys]
        return out

    async def _lease_list(self, body: bytes) -> dict[str, Any]:
        await self.reads.wait()
        with self.lock:
            ids = list(self.store.leases)
            revision = self.store.revision
        out: dict[str, Any] = {"header": self.header(revision)}
        if ids:
            out["leases"] = [{"ID": str(i)} for i in ids]
        return out

    async def _lease_keepalive(self, request: web.Request, body: bytes) -> web.StreamResponse:
        try:
            messages = _split_messages(body)
        except ValueError:
            raise EtcdError(errors.UNKNOWN, "unexpected EOF") from None
        resp = web.StreamResponse(headers={**CORS, "Content-Type": "application/json",
                                           "Grpc-Metadata-Content-Type": "application/grpc"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for message in messages:
            lease_id = Reader(message).int("ID")
            try:
                result = await self.proposer.submit({"op": "lease_keepalive", "id": lease_id})
            except EtcdError as err:
                await resp.write(orjson.dumps(_stream_error(err)))
                break
            out: dict[str, Any] = {"header": self.header(result["revision"]), "ID": str(lease_id)}
            if result["ttl"]:
                out["TTL"] = str(result["ttl"])
            await resp.write(orjson.dumps({"result": out}) + b"\n")
        await resp.write_eof()
        return resp

    # ------------------------------------------------------------------ maintenance

    async def _status(self, body: bytes) -> dict[str, Any]:
        st = self.raft.status()
        out: dict[str, Any] = {"header": self.header(), "version": ETCD_VERSION}
        size = str(max(self.store.key_count, 1) * 256)
        out["dbSize"] = size
        leader = st["leader"]
        if leader is not None:
            leader_id = self.identity.peers.get(leader, (None, 0))[1]
            if leader_id:
                out["leader"] = str(leader_id)
        out["raftIndex"] = str(st["commit_index"])
        out["raftTerm"] = str(st["term"])
        out["raftAppliedIndex"] = str(st["applied_index"])
        out["dbSizeInUse"] = size
        if leader is None:
            out["errors"] = ["etcdserver: no leader"]
        return out

    async def _alarm(self, body: bytes) -> dict[str, Any]:
        return {}

    async def _member_list(self, body: bytes) -> dict[str, Any]:
        members = []
        for addr, (name, member_id) in sorted(self.identity.peers.items(), key=lambda p: p[1][0]):
            member: dict[str, Any] = {"ID": str(member_id), "name": name, "peerURLs": [f"{self.identity.peer_scheme}://{addr}"]}
            # Every member publishes its client URL through the log; until this one has applied a
            # member's, it lists that member without one, as etcd lists a member not yet started.
            client_url = self.identity.client_url if member_id == self.identity.member_id else self.store.members.get(name)
            if client_url:
                member["clientURLs"] = [client_url]
            members.append(member)
        hdr = self.header()
        hdr.pop("revision", None)
        return {"header": hdr, "members": members}

    # ------------------------------------------------------------------ watch

    async def _watch(self, request: web.Request, body: bytes) -> web.StreamResponse:
        try:
            messages = _split_messages(body)
        except ValueError:
            raise EtcdError(errors.UNKNOWN, "unexpected EOF") from None
        stream = _WatchStream(self, request)
        try:
            for message in messages:
                await stream.handle(Reader(message))
            await stream.run()
        except ConnectionResetError:
            pass  # the client went away while its watches were being created: nobody to answer
        finally:
            await stream.close()
        return stream.response or web.Response(status=200)


class _WatchStream:
    """One POST /v3/watch: its watchers share one chunked response, one message per chunk."""

    def __init__(self, server: EtcdServer, request: web.Request) -> None:
        self.server = server
        self.request = request
        self.response: web.StreamResponse | None = None
        self._lock = asyncio.Lock()
        self._next_id = 0
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._failed = False

    async def send(self, result: dict[str, Any]) -> None:
        data = orjson.dumps({"result": result}) + b"\n"
        async with self._lock:
            if self.response is None:
                self.response = web.StreamResponse(headers={**CORS, "Content-Type": "application/json",
                                                            "Grpc-Metadata-Content-Type": "application/grpc"})
                self.response.enable_chunked_encoding()
                await self.response.prepare(self.request)
            await self.response.write(data)

    async def handle(self, msg: Reader) -> None:
        create = msg.child("create_request")
        cancel = msg.child("cancel_request")
        if create is not None:
            await self._create(create)
        elif cancel is not None:
            watch_id = cancel.int("watch_id")
            task = self._tasks.pop(watch_id, None)
            if task is not None:
                task.cancel()
                await self.send({"header": self.server.header(), **_wid(watch_id), "canceled": True})
        elif msg.raw("progress_request") is not None:
            await self.send({"header": self.server.header(), "watch_id": "-1"})

    async def _create(self, req: Reader) -> None:
        key = req.bytes("key")
        range_end = req.bytes("range_end")
        start = req.int("start_revision")
        filters = frozenset(_filters(req.list("filters")))
        prev_kv = req.bool("prev_kv")
        progress = req.bool("progress_notify")
        wanted = req.int("watch_id")
        watch_id = wanted if wanted else self._next_id
        self._next_id = max(self._next_id, watch_id) + 1
        current = self.server.hub.current_revision()
        next_rev = start if start > 0 else current + 1
        await self.send({"header": self.server.header(current), **_wid(watch_id), "created": True})
        task = asyncio.get_running_loop().create_task(
            self._pump(watch_id, key, range_end, next_rev, filters, prev_kv, progress))
        self._tasks[watch_id] = task

    async def _pump(self, watch_id: int, key: bytes, range_end: bytes, next_rev: int,
                    filters: frozenset[int], prev_kv: bool, progress: bool) -> None:
        hub = self.server.hub
        hub.watchers += 1
        last_sent = time.monotonic()
        try:
            while True:
                batch = hub.read(next_rev, key, range_end)
                if batch.compacted:
                    hdr = self.server.header()
                    hdr.pop("revision", None)
                    await self.send({"header": hdr, **_wid(watch_id), "canceled": True,
                                     "compact_revision": str(batch.compacted)})
                    return
                for rev, events in batch.events:
                    events = filter_events(events, filters)
                    if events:
                        await self.send({"header": self.server.header(rev), **_wid(watch_id),
                                         "events": [jsonapi.render_event(e, prev_kv) for e in events]})
                        last_sent = time.monotonic()
                next_rev = batch.next_revision
                if next_rev <= batch.current_revision:
                    continue  # still catching up from history
                interval = self.server.progress_interval
                timeout = max(0.05, interval - (time.monotonic() - last_sent)) if progress else None
                await hub.wait_after(next_rev - 1, timeout)
                # One read of the revision for the check and the header: the Raft thread may apply a
                # write between two reads, and a notification at its revision would overtake its event.
                current = hub.current_revision()
                if progress and time.monotonic() - last_sent >= interval and current < next_rev:
                    await self.send({"header": self.server.header(current), **_wid(watch_id)})
                    last_sent = time.monotonic()
        except (ConnectionResetError, RuntimeError):
            self._failed = True
        finally:
            hub.watchers -= 1

    async def run(self) -> None:
        """Serve until the client goes away or the member shuts down."""
        closing = self.server.closing
        while not closing.is_set():
            transport = self.request.transport
            if self._failed or transport is None or transport.is_closing():
                return
            tasks = list(self._tasks.values())
            waiter = asyncio.ensure_future(closing.wait())
            try:
                await asyncio.wait([waiter, *tasks], timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
        # SIGTERM: etcd ends the stream with a final error chunk (no trailing newline).
        try:
            async with self._lock:
                if self.response is not None:
                    await self.response.write(orjson.dumps(STREAM_CLOSING))
                    await self.response.write_eof()
        except (ConnectionResetError, RuntimeError):
            pass

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)


def _wid(watch_id: int) -> dict[str, str]:
    return {"watch_id": str(watch_id)} if watch_id else {}


def _filters(values: list[Any]) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            out.append(v)
        elif v in jsonapi.WATCH_FILTER:
            out.append(jsonapi.WATCH_FILTER[v])
        else:
            raise errors.bad_json(f"unknown value {json.dumps(v)} for enum etcdserverpb.WatchCreateRequest_FilterType")
    return out


def _split_messages(body: bytes) -> list[Any]:
    """Concatenated or newline-separated JSON objects, as etcd's streaming endpoints accept."""
    text = body.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    out = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            return out
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)


def _stream_error(err: EtcdError) -> dict[str, Any]:
    return {"error": {"grpc_code": err.code, "http_code": err.http_status, "message": err.message,
                      "http_status": _HTTP_TEXT.get(err.http_status, "")}}


def _json_error(body: bytes, exc: orjson.JSONDecodeError) -> str:
    pos = getattr(exc, "pos", 0) or 0
    text = body.decode("utf-8", "replace")
    if pos >= len(text.rstrip()):
        return "unexpected EOF"
    return f"invalid character {text[pos]!r} looking for beginning of value"


_CODE_NAMES = {0: "OK", 1: "Canceled", 2: "Unknown", 3: "InvalidArgument", 4: "DeadlineExceeded", 5: "NotFound",
               8: "ResourceExhausted", 9: "FailedPrecondition", 11: "OutOfRange", 13: "Internal", 14: "Unavailable"}
_HTTP_TEXT = {400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 412: "Precondition Failed",
              429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable",
              504: "Gateway Timeout"}


class _StoreCollector:
    """etcd-named gauges and counters read from the store and the Raft node at scrape time."""

    def __init__(self, server: EtcdServer) -> None:
        self.server = server

    def collect(self) -> Any:
        st = self.server.raft.status()
        store = self.server.store
        yield GaugeMetricFamily("etcd_server_has_leader", "Whether a leader exists", value=1 if st["leader"] else 0)
        yield GaugeMetricFamily("etcd_server_is_leader", "Whether this member is leader", value=1 if st["is_leader"] else 0)
        yield GaugeMetricFamily("etcd_debugging_mvcc_current_revision", "Current revision", value=store.revision)
        yield GaugeMetricFamily("etcd_debugging_mvcc_compact_revision", "Last compaction revision", value=store.compact_revision)
        yield GaugeMetricFamily("etcd_debugging_mvcc_keys_total", "Live keys", value=store.key_count)
        yield GaugeMetricFamily("etcd_debugging_mvcc_watcher_total", "Watchers", value=self.server.hub.watchers)
        yield GaugeMetricFamily("etcd_server_raft_term", "Raft term", value=st["term"])
        yield GaugeMetricFamily("etcd_server_raft_applied_index", "Applied index", value=st["applied_index"])
        for name, value in dict(store.counters).items():
            yield CounterMetricFamily(f"etcd_mvcc_{name}", f"MVCC {name} operations", value=value)
