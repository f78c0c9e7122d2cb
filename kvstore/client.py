"""An async client for the etcd v3 JSON API: the built-in store or a real etcd 3.4.

* Endpoint list with failover; writes go to the leader's endpoint when it can be found
  (``/v3/maintenance/status`` tells each member's id and the leader's id).
* Reads are retried on any endpoint. A write is retried only when it certainly was not received
  (connection refused); after that its outcome is unknown and ``UnknownOutcome`` is raised, because
  a blind retry of a create-if-absent txn would turn its own success into a conflict.
* Watches resume on another endpoint from the last seen revision + 1 (no gap, no duplicate) and
  raise ``Compacted`` when the history they need is gone.

The stream reader splits on newlines itself: aiohttp's line reader refuses lines over 128 KiB and
a watch message for a big object is longer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Sequence

import aiohttp
import orjson

log = logging.getLogger(__name__)


class EtcdClientError(Exception):
    """An error answered by the server, with etcd's gRPC code."""

    def __init__(self, code: int, message: str, http_status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


class Unavailable(EtcdClientError):
    """No endpoint could serve the request in time."""


class UnknownOutcome(EtcdClientError):
    """A write was sent but its result never arrived: it may or may not have been applied."""


class WatchCanceled(EtcdClientError):
    """The server cancelled the watch for a reason other than compaction."""


class Compacted(EtcdClientError):
    """The requested revision has been compacted away."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(11, "etcdserver: mvcc: required revision has been compacted")
        self.compact_revision = compact_revision


# Unavailable answers to a write that etcd gives before proposing it, so a retry cannot apply it twice.
# Every other Unavailable answer to a write ("etcdserver: request timed out", "... possibly due to
# previous leader failure", "etcdserver: server stopped", ...) comes after the proposal entered the
# Raft log, where it may still commit: the outcome is unknown. etcd's own client retries a mutation
# only when it never reached a server, for the same reason.
_WRITE_NOT_PROPOSED = frozenset({"etcdserver: no leader", "etcdserver: not capable"})


def _outcome_unknown(exc: EtcdClientError) -> bool:
    """Whether a failed write may still have been applied."""
    if exc.code == 14:
        return exc.message not in _WRITE_NOT_PROPOSED
    return exc.code == 2 and "deadline" in exc.message  # "context deadline exceeded"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that selects every key starting with ``prefix``."""
    buf = bytearray(prefix)
    for i in range(len(buf) - 1, -1, -1):
        if buf[i] < 0xFF:
            buf[i] += 1
            return bytes(buf[: i + 1])
    return b"\x00"


@dataclass(frozen=True, slots=True)
class KV:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> KV:
        return cls(_unb64(obj.get("key")), _unb64(obj.get("value")), int(obj.get("create_revision", 0)),
                   int(obj.get("mod_revision", 0)), int(obj.get("version", 0)), int(obj.get("lease", 0)))


@dataclass(frozen=True, slots=True)
class RangeResult:
    revision: int
    kvs: list[KV]
    count: int
    more: bool


@dataclass(frozen=True, slots=True)
class TxnResult:
    revision: int
    succeeded: bool
    responses: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # "PUT" | "DELETE"
    kv: KV
    prev_kv: KV | None


@dataclass(frozen=True, slots=True)
class WatchMessage:
    revision: int  # header revision
    events: list[WatchEvent]
    progress: bool = False  # a progress notification (no events)


# ---------------------------------------------------------------- request builders

class Compare:
    _RESULTS = {"=": "EQUAL", "==": "EQUAL", "!=": "NOT_EQUAL", ">": "GREATER", "<": "LESS"}

    @staticmethod
    def _make(key: bytes, target: str, op: str, field_name: str, value: Any) -> dict[str, Any]:
        return {"key": _b64(key), "target": target, "result": Compare._RESULTS[op], field_name: value}

    @staticmethod
    def version(key: bytes, op: str, version: int) -> dict[str, Any]:
        return Compare._make(key, "VERSION", op, "version", str(version))

    @staticmethod
    def create_revision(key: bytes, op: str, revision: int) -> dict[str, Any]:
        return Compare._make(key, "CREATE", op, "create_revision", str(revision))

    @staticmethod
    def mod_revision(key: bytes, op: str, revision: int) -> dict[str, Any]:
        return Compare._make(key, "MOD", op, "mod_revision", str(revision))

    @staticmethod
    def value(key: bytes, op: str, value: bytes) -> dict[str, Any]:
        return Compare._make(key, "VALUE", op, "value", _b64(value))


class Op:
    @staticmethod
    def put(key: bytes, value: bytes, *, lease: int = 0, prev_kv: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        if prev_kv:
            body["prev_kv"] = True
        return {"request_put": body}

    @staticmethod
    def get(key: bytes, range_end: bytes = b"", *, limit: int = 0) -> dict[str, Any]:
        body: dict[str, Any] = {"key": _b64(key)}
        if range_end:
            body["range_end"] = _b64(range_end)
        if limit:
            body["limit"] = str(limit)
        return {"request_range": body}

    @staticmethod
    def delete(key: bytes, range_end: bytes = b"", *, prev_kv: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"key": _b64(key)}
        if range_end:
            body["range_end"] = _b64(range_end)
        if prev_kv:
            body["prev_kv"] = True
        return {"request_delete_range": body}


# ---------------------------------------------------------------- the client

@dataclass
class _Endpoints:
    urls: list[str]
    preferred: int = 0
    leader: str | None = None
    member_ids: dict[str, int] = field(default_factory=dict)
    checked_at: float = 0.0


class EtcdClient:
    def __init__(self, endpoints: Sequence[str], *, timeout: float = 10.0, connect_timeout: float = 1.0,
                 ssl_context: ssl.SSLContext | None = None, watch_idle_check: float = 3.0,
                 watch_probe_timeout: float = 2.0) -> None:
        """``watch_idle_check``: a watch silent that long has its member probed with a linearizable read
        (shared by every watch on that member); a member that does not answer within
        ``watch_probe_timeout`` is frozen or cut off from the leader, and its watches resume elsewhere."""
        if not endpoints:
            raise ValueError("at least one endpoint is required")
        self._eps = _Endpoints([e.rstrip("/") for e in endpoints])
        self._ssl = ssl_context
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._watch_idle_check = watch_idle_check
        self._watch_probe_timeout = watch_probe_timeout
        self._probes: dict[str, tuple[float, asyncio.Future[bool]]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EtcdClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, enable_cleanup_closed=True,
                                               ssl=self._ssl if self._ssl is not None else True),
                json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    # ------------------------------------------------------------ transport

    async def _post_once(self, url: str, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        t = aiohttp.ClientTimeout(total=timeout, sock_connect=self._connect_timeout)
        async with self._http().post(url + path, data=orjson.dumps(body), timeout=t,
                                     headers={"Content-Type": "application/json"}) as resp:
            data = await resp.read()
            try:
                obj = orjson.loads(data) if data else {}
            except orjson.JSONDecodeError:
                raise EtcdClientError(2, f"bad response from {url}: {data[:200]!r}", resp.status) from None
            if resp.status != 200:
                code = int(obj.get("code", 2)) if isinstance(obj, dict) else 2
                message = obj.get("message", "") if isinstance(obj, dict) else str(obj)
                raise EtcdClientError(code, message, resp.status)
            return obj

    def _order(self, prefer_leader: bool) -> list[str]:
        urls = list(self._eps.urls)
        first = self._eps.leader if (prefer_leader and self._eps.leader in urls) else urls[self._eps.preferred % len(urls)]
        return [first] + [u for u in urls if u != first]

    async def _call(self, path: str, body: dict[str, Any], *, write: bool) -> dict[str, Any]:
        deadline = time.monotonic() + self._timeout
        if write and self._eps.leader is None and len(self._eps.urls) > 1:
            await self._find_leader()
        last: Exception | None = None
        attempt = 0
        while time.monotonic() < deadline:
            for url in self._order(prefer_leader=write):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # A read may be retried elsewhere: a frozen member must not take the whole deadline.
                attempt_timeout = remaining if write else min(remaining, max(self._timeout / 2, 1.0))
                try:
                    result = await self._post_once(url, path, body, attempt_timeout)
                    self._eps.preferred = self._eps.urls.index(url)
                    return result
                except aiohttp.ClientConnectorError as exc:
                    last = exc  # never reached the server: safe to try elsewhere
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    if write:
                        raise UnknownOutcome(4, f"{path} on {url}: {exc!r}") from exc
                    last = exc
                except EtcdClientError as exc:
                    if write and _outcome_unknown(exc):
                        raise UnknownOutcome(exc.code, exc.message, exc.http_status) from exc
                    if exc.http_status != 503 or exc.code != 14:
                        raise
                    last = exc  # unavailable: a read, or a write refused before it was proposed
                self._eps.leader = None
            attempt += 1
            await asyncio.sleep(min(0.05 * 2**attempt, 0.5))
            if write and len(self._eps.urls) > 1:
                await self._find_leader()
        raise Unavailable(14, f"no endpoint answered {path} in time: {last!r}")

    async def _find_leader(self) -> None:
        async def probe(url: str) -> tuple[str, dict[str, Any] | None]:
            try:
                return url, await self._post_once(url, "/v3/maintenance/status", {}, 1.0)
            except (aiohttp.ClientError, asyncio.TimeoutError, EtcdClientError):
                return url, None

        results = await asyncio.gather(*(probe(u) for u in self._eps.urls))
        ids = {}
        leader_id = None
        for url, st in results:
            if st is None:
                continue
            ids[int(st["header"]["member_id"])] = url
            if st.get("leader"):
                leader_id = int(st["leader"])
        self._eps.leader = ids.get(leader_id) if leader_id is not None else None
        self._eps.checked_at = time.monotonic()

    # ------------------------------------------------------------ KV

    async def range(self, key: bytes, range_end: bytes = b"", *, revision: int = 0, limit: int = 0,
                    serializable: bool = False, keys_only: bool = False, count_only: bool = False) -> RangeResult:
        body: dict[str, Any] = {"key": _b64(key)}
        if range_end:
            body["range_end"] = _b64(range_end)
        if revision:
            body["revision"] = str(revision)
        if limit:
            body["limit"] = str(limit)
        for name, flag in (("serializable", serializable), ("keys_only", keys_only), ("count_only", count_only)):
            if flag:
                body[name] = True
        try:
            out = await self._call("/v3/kv/range", body, write=False)
        except EtcdClientError as exc:
            if exc.code == 11 and "compacted" in exc.message:
                raise Compacted(0) from exc
            raise
        return RangeResult(int(out["header"].get("revision", 0)), [KV.from_json(kv) for kv in out.get("kvs", ())],
                           int(out.get("count", 0)), bool(out.get("more", False)))

    async def get(self, key: bytes) -> KV | None:
        result = await self.range(key)
        return result.kvs[0] if result.kvs else None

    async def put(self, key: bytes, value: bytes, *, lease: int = 0, prev_kv: bool = False) -> tuple[int, KV | None]:
        out = await self._call("/v3/kv/put", Op.put(key, value, lease=lease, prev_kv=prev_kv)["request_put"], write=True)
        prev = out.get("prev_kv")
        return int(out["header"]["revision"]), (KV.from_json(prev) if prev else None)

    async def delete_range(self, key: bytes, range_end: bytes = b"", *, prev_kv: bool = False) -> tuple[int, int, list[KV]]:
        out = await self._call("/v3/kv/deleterange", Op.delete(key, range_end, prev_kv=prev_kv)["request_delete_range"], write=True)
        return (int(out["header"]["revision"]), int(out.get("deleted", 0)),
                [KV.from_json(kv) for kv in out.get("prev_kvs", ())])

    async def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
                  failure: list[dict[str, Any]] | None = None) -> TxnResult:
        out = await self._call("/v3/kv/txn", {"compare": compare, "success": success, "failure": failure or []}, write=True)
        return TxnResult(int(out["header"]["revision"]), bool(out.get("succeeded", False)), out.get("responses", []))

    async def compact(self, revision: int) -> None:
        await self._call("/v3/kv/compaction", {"revision": str(revision)}, write=True)

    @property
    def endpoints(self) -> list[str]:
        """The member URLs this client was given, in order."""
        return list(self._eps.urls)

    async def status(self, endpoint: str | None = None) -> dict[str, Any]:
        if endpoint is not None:
            return await self._post_once(endpoint.rstrip("/"), "/v3/maintenance/status", {}, self._timeout)
        return await self._call("/v3/maintenance/status", {}, write=False)

    # ------------------------------------------------------------ leases

    async def lease_grant(self, ttl: int, lease_id: int = 0) -> tuple[int, int]:
        out = await self._call("/v3/lease/grant", {"TTL": str(ttl), "ID": str(lease_id)}, write=True)
        return int(out["ID"]), int(out["TTL"])

    async def lease_revoke(self, lease_id: int) -> None:
        await self._call("/v3/lease/revoke", {"ID": str(lease_id)}, write=True)

    async def lease_keepalive(self, lease_id: int) -> int:
        """Refresh once; returns the TTL, or -1 when the lease no longer exists."""
        deadline = time.monotonic() + self._timeout
        while True:
            for url in self._order(prefer_leader=True):
                try:
                    t = aiohttp.ClientTimeout(total=max(0.1, deadline - time.monotonic()), sock_connect=self._connect_timeout)
                    async with self._http().post(url + "/v3/lease/keepalive", data=orjson.dumps({"ID": str(lease_id)}), timeout=t) as resp:
                        data = await resp.read()
                    for line in data.split(b"\n"):
                        if line.strip():
                            obj = orjson.loads(line)
                            if "result" in obj:
                                return int(obj["result"].get("TTL", -1))
                            if "error" in obj:
                                raise EtcdClientError(obj["error"].get("grpc_code", 2), obj["error"].get("message", ""))
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass  # keepalives are idempotent: try the next endpoint
                if time.monotonic() >= deadline:
                    raise Unavailable(14, "lease keepalive: no endpoint answered")
            await asyncio.sleep(0.1)

    async def lease_timetolive(self, lease_id: int, *, keys: bool = False) -> dict[str, Any]:
        return await self._call("/v3/lease/timetolive", {"ID": str(lease_id), "keys": keys}, write=False)

    # ------------------------------------------------------------ watch

    async def watch(self, key: bytes, range_end: bytes = b"", *, start_revision: int = 0, prev_kv: bool = False,
                    progress_notify: bool = False) -> AsyncIterator[WatchMessage]:
        """Yield watch messages forever, resuming on another endpoint after a failure."""
        next_rev = start_revision
        failures = 0
        while True:
            url = self._order(prefer_leader=False)[0]
            create: dict[str, Any] = {"key": _b64(key)}
            if range_end:
                create["range_end"] = _b64(range_end)
            if next_rev:
                create["start_revision"] = str(next_rev)
            if prev_kv:
                create["prev_kv"] = True
            if progress_notify:
                create["progress_notify"] = True
            try:
                t = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout, sock_read=None)
                async with self._http().post(url + "/v3/watch", data=orjson.dumps({"create_request": create}), timeout=t) as resp:
                    if resp.status != 200:
                        raise EtcdClientError(2, f"watch: HTTP {resp.status}", resp.status)
                    async for result in self._live_stream(url, resp):
                        failures = 0
                        if result.get("canceled"):
                            if result.get("compact_revision"):
                                raise Compacted(int(result["compact_revision"]))
                            raise WatchCanceled(1, result.get("cancel_reason", "watch canceled"))
                        if result.get("created"):
                            if not next_rev:
                                next_rev = int(result["header"].get("revision", 0)) + 1
                            continue
                        events = [WatchEvent(e.get("type", "PUT"), KV.from_json(e["kv"]),
                                             KV.from_json(e["prev_kv"]) if e.get("prev_kv") else None)
                                  for e in result.get("events", ())]
                        revision = int(result.get("header", {}).get("revision", 0))
                        if events:
                            next_rev = max(next_rev, events[-1].kv.mod_revision + 1)
                            yield WatchMessage(revision, events)
                        else:
                            yield WatchMessage(revision, [], progress=True)
            except (aiohttp.ClientError, asyncio.TimeoutError, EtcdClientError) as exc:
                if isinstance(exc, (Compacted, WatchCanceled)):
                    raise
                log.debug("watch on %s broke (%r); resuming from %d", url, exc, next_rev)
            failures += 1
            self._eps.preferred = (self._eps.preferred + 1) % len(self._eps.urls)
            await asyncio.sleep(min(0.05 * failures, 1.0))


    async def _live_stream(self, url: str, resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
        """``_read_stream`` that gives up on a member which stops answering while the stream is quiet.

        A SIGSTOPped or partitioned member keeps the TCP connection open and simply sends nothing:
        without this, a watch on it would wait forever while the cluster moves on.
        """
        stream = _read_stream(resp)
        pending: asyncio.Future[dict[str, Any]] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(stream.__anext__())
                done, _ = await asyncio.wait({pending}, timeout=self._watch_idle_check)
                if done:
                    result, pending = pending.result(), None
                    yield result
                    continue
                if not await self._member_alive(url):
                    raise asyncio.TimeoutError(f"{url} did not answer a linearizable read")
        except StopAsyncIteration:
            return
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            await stream.aclose()

    async def _member_alive(self, url: str) -> bool:
        """One linearizable read to ``url``, shared by every watch asking within ``watch_idle_check``."""
        now = time.monotonic()
        cached = self._probes.get(url)
        if cached is None or now - cached[0] > self._watch_idle_check:
            async def probe() -> bool:
                try:
                    await self._post_once(url, "/v3/kv/range", {"key": _b64(b"\0"), "count_only": True},
                                          self._watch_probe_timeout)
                    return True
                except (aiohttp.ClientError, asyncio.TimeoutError, EtcdClientError):
                    return False
            cached = (now, asyncio.ensure_future(probe()))
            self._probes[url] = cached
        return await asyncio.shield(cached[1])


async def _read_stream(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """Newline-delimited JSON ``{"result": ...}`` messages; a final ``{"error": ...}`` raises."""
    buf = b""
    async for chunk in resp.content.iter_any():
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield _unwrap(orjson.loads(line))
    if buf.strip():
        yield _unwrap(orjson.loads(buf))
    raise aiohttp.ClientPayloadError("watch stream ended")


def _unwrap(obj: dict[str, Any]) -> dict[str, Any]:
    if "error" in obj:
        err = obj["error"]
        raise EtcdClientError(int(err.get("grpc_code", 2)), err.get("message", "stream error"), int(err.get("http_code", 0)))
    return obj.get("result", {})
