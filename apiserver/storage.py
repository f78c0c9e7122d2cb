"""Object storage over the etcd v3 API: keys, optimistic concurrency, consistent pagination.

Every object lives at ``/registry/<resource>[.<group>]/[<namespace>/]<name>`` as JSON. Its
``metadata.resourceVersion`` is not stored: it is the key's ``mod_revision``, filled in on read, so
it always equals the store revision of the object's last change. Writes are compare-and-swap
transactions on ``mod_revision`` (or ``create_revision == 0`` for creates), the optimistic
concurrency Kubernetes clients rely on: a stale resourceVersion answers 409 Conflict.

A ``Transformer`` sits between JSON and the stored bytes so encryption at rest can be added
without touching callers.
"""

from __future__ import annotations

import base64
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterator, Protocol

import orjson

from apimachinery import errors
from apimachinery.registry import ResourceType
from kvstore.client import Compacted, Compare, EtcdClient, Op, UnknownOutcome, prefix_end

ROOT = b"/registry/"
MAX_UPDATE_RETRIES = 16


class Transformer(Protocol):
    def to_storage(self, key: bytes, data: bytes) -> bytes: ...

    def from_storage(self, key: bytes, data: bytes) -> bytes: ...

    def stale(self, key: bytes, data: bytes) -> bool:
        """True when ``data`` at rest is not in the form ``to_storage`` writes now (another key or
        provider), so that writing the same object again is a change (re-encryption)."""
        ...


class IdentityTransformer:
    def to_storage(self, key: bytes, data: bytes) -> bytes:
        return data

    def from_storage(self, key: bytes, data: bytes) -> bytes:
        return data

    def stale(self, key: bytes, data: bytes) -> bool:
        return False


def resource_prefix(rt: ResourceType) -> bytes:
    return ROOT + rt.group_resource.encode() + b"/"


def object_key(rt: ResourceType, namespace: str, name: str) -> bytes:
    if rt.namespaced:
        return resource_prefix(rt) + f"{namespace}/{name}".encode()
    return resource_prefix(rt) + name.encode()


def list_prefix(rt: ResourceType, namespace: str) -> bytes:
    if rt.namespaced and namespace:
        return resource_prefix(rt) + namespace.encode() + b"/"
    return resource_prefix(rt)


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[dict[str, Any]]
    revision: int
    continue_token: str
    remaining: int | None


def encode_continue(revision: int, start: bytes) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision,
                                                  "start": start.decode("utf-8", "surrogateescape")})).decode()


def decode_continue(token: str) -> tuple[int, bytes]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        return int(data["rv"]), str(data["start"]).encode("utf-8", "surrogateescape")
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                 "(version meta.k8s.io/v1)") from None


LatencyObserver = Callable[[str, float], None]


class Storage:
    def __init__(self, client: EtcdClient, transformer: Transformer | None = None,
                 observe: LatencyObserver | None = None) -> None:
        self.client = client
        self.transformer = transformer or IdentityTransformer()
        self._observe = observe

    @contextlib.contextmanager
    def _timed(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            if self._observe is not None:
                self._observe(operation, time.perf_counter() - started)

    # ------------------------------------------------------------------ codec

    @staticmethod
    def serialize(obj: dict[str, Any]) -> bytes:
        """The stored form before encryption: JSON without metadata.resourceVersion."""
        meta = obj.get("metadata") or {}
        if "resourceVersion" in meta:
            obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
        return orjson.dumps(obj)

    @staticmethod
    def deserialize(plain: bytes, mod_revision: int) -> dict[str, Any]:
        obj = orjson.loads(plain)
        obj.setdefault("metadata", {})["resourceVersion"] = str(mod_revision)
        return obj

    def encode(self, key: bytes, obj: dict[str, Any]) -> bytes:
        return self.transformer.to_storage(key, self.serialize(obj))

    def decode(self, key: bytes, data: bytes, mod_revision: int) -> dict[str, Any]:
        return self.deserialize(self.transformer.from_storage(key, data), mod_revision)

    # ------------------------------------------------------------------ reads

    async def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        key = object_key(rt, namespace, name)
        with self._timed("get"):
            kv = await self.client.get(key)
        if kv is None:
            raise errors.not_found(resource=rt.plural, group=rt.group, name=name)
        return self.decode(key, kv.value, kv.mod_revision)

    async def current_revision(self) -> int:
        with self._timed("count"):
            result = await self.client.range(ROOT, count_only=True)
        return result.revision

    async def list(self, rt: ResourceType, namespace: str, *, limit: int = 0, continue_token: str = "",
                   revision: int = 0, accept: Callable[[dict[str, Any]], bool] | None = None) -> ListResult:
        """A consistent list: every page of one list is read at the same store revision.

        With a filter (``accept``) and a limit, pages are filled by reading on until ``limit``
        matches were found, as the real API server does.
        """
        prefix = list_prefix(rt, namespace)
        end = prefix_end(prefix)
        start = prefix
        if continue_token:
            revision, start = decode_continue(continue_token)
        items: list[dict[str, Any]] = []
        read_rev = revision
        while True:
            batch = max(limit - len(items), 0) if limit else 0
            if accept is not None and limit:
                batch = max(batch, 100)
            try:
                with self._timed("list"):
                    result = await self.client.range(start, end, revision=read_rev, limit=batch)
            except Compacted:
                raise errors.expired("The provided continue parameter is too old to display a consistent list "
                                     "result. You can start a new list without the continue parameter, or use "
                                     "the continue token in this response to retrieve the remainder of the "
                                     "results.") from None
            if not read_rev:
                read_rev = result.revision
            for kv in result.kvs:
                obj = self.decode(kv.key, kv.value, kv.mod_revision)
                if accept is None or accept(obj):
                    items.append(obj)
                    if limit and len(items) >= limit:
                        next_key = kv.key + b"\x00"
                        more = next_key < end and (result.more or kv is not result.kvs[-1])
                        if more:
                            # Unfiltered, this range read every key it counted up to here.
                            remaining = result.count - len(result.kvs) if accept is None else None
                            return ListResult(items, read_rev, encode_continue(read_rev, next_key), remaining)
                        return ListResult(items, read_rev, "", None)
            if not result.more or not result.kvs:
                return ListResult(items, read_rev, "", 0)
            start = result.kvs[-1].key + b"\x00"

    # ------------------------------------------------------------------ writes

    async def create(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = object_key(rt, meta.get("namespace", ""), meta["name"])
        data = self.encode(key, obj)
        try:
            with self._timed("create"):
                result = await self.client.txn([Compare.create_revision(key, "=", 0)], [Op.put(key, data)])
        except UnknownOutcome:
            raise errors.timeout("the request's outcome is unknown: the store did not answer in time") from None
        if not result.succeeded:
            raise errors.already_exists(resource=rt.plural, group=rt.group, name=meta["name"])
        return self.decode(key, data, result.revision)

    async def update(self, rt: ResourceType, obj: dict[str, Any], expected_revision: int) -> dict[str, Any]:
        """Replace the object if its stored revision is still ``expected_revision`` (else 409)."""
        meta = obj["metadata"]
        key = object_key(rt, meta.get("namespace", ""), meta["name"])
        data = self.encode(key, obj)
        try:
            with self._timed("update"):
                result = await self.client.txn([Compare.mod_revision(key, "=", expected_revision)],
                                               [Op.put(key, data)], [Op.get(key)])
        except UnknownOutcome:
            raise errors.timeout("the request's outcome is unknown: the store did not answer in time") from None
        if not result.succeeded:
            exists = bool(result.responses and result.responses[0].get("response_range", {}).get("kvs"))
            if not exists:
                raise errors.not_found(resource=rt.plural, group=rt.group, name=meta["name"])
            raise errors.conflict(resource=rt.plural, group=rt.group, name=meta["name"])
        return self.decode(key, data, result.revision)

    async def guaranteed_update(self, rt: ResourceType, namespace: str, name: str,
                                mutate: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]) -> dict[str, Any]:
        """Read-modify-write with retries on conflict, like Kubernetes' GuaranteedUpdate.

        ``mutate`` gets a fresh copy each attempt and returns the new object, or None for no change.
        As upstream, an update that would store the very bytes already there is not written: no new
        resourceVersion, no watch event (unless the stored form is stale, e.g. under an old key).
        """
        key = object_key(rt, namespace, name)
        for _ in range(MAX_UPDATE_RETRIES):
            with self._timed("get"):
                kv = await self.client.get(key)
            if kv is None:
                raise errors.not_found(resource=rt.plural, group=rt.group, name=name)
            plain = self.transformer.from_storage(key, kv.value)
            revision = kv.mod_revision
            updated = await mutate(self.deserialize(plain, revision))
            if updated is None:
                return self.deserialize(plain, revision)
            if self.serialize(updated) == plain and not self.transformer.stale(key, kv.value):
                return self.deserialize(plain, revision)
            try:
                return await self.update(rt, updated, revision)
            except errors.StatusError as err:
                if err.code != 409 or err.reason != "Conflict":
                    raise
        raise errors.conflict(resource=rt.plural, group=rt.group, name=name)

    async def delete(self, rt: ResourceType, namespace: str, name: str, expected_revision: int) -> tuple[dict[str, Any], int]:
        """Delete if unchanged since ``expected_revision``; returns (last state, deletion revision)."""
        key = object_key(rt, namespace, name)
        try:
            with self._timed("delete"):
                result = await self.client.txn([Compare.mod_revision(key, "=", expected_revision)],
                                               [Op.delete(key, prev_kv=True)], [Op.get(key)])
        except UnknownOutcome:
            raise errors.timeout("the request's outcome is unknown: the store did not answer in time") from None
        if not result.succeeded:
            exists = bool(result.responses and result.responses[0].get("response_range", {}).get("kvs"))
            if not exists:
                raise errors.not_found(resource=rt.plural, group=rt.group, name=name)
            raise errors.conflict(resource=rt.plural, group=rt.group, name=name)
        prev = result.responses[0]["response_delete_range"].get("prev_kvs", [])
        if not prev:
            raise errors.not_found(resource=rt.plural, group=rt.group, name=name)
        data = base64.b64decode(prev[0].get("value", ""))
        obj = self.decode(key, data, result.revision)
        return obj, result.revision
