"""The REST verbs on resources: create, get, list, watch, update, patch, delete, and subresources.

Each handler takes a parsed ``RequestInfo`` and the authenticated user; admission and
authorization happen around them in app.py. Everything that goes wrong is a ``StatusError``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import orjson
import yaml
from aiohttp import web

from apimachinery import errors, fieldmanager
from apimachinery import meta as m
from apimachinery.defaults import apply_defaults
from apimachinery.errors import StatusError
from apimachinery.protobuf import UnsupportedKindError
from apimachinery.patch import json_patch, merge_patch, strategic_merge_patch, strategic_merge_schema
from apimachinery.registry import Registry, ResourceType
from apimachinery.selectors import FieldSelector, LabelSelector

from .allocator import Allocator
from .auth import UserInfo
from .conversion import Conversions
from .conversion import builtin as builtin_conversions
from .requestinfo import RequestInfo
from .schemas import unknown_fields
from .storage import Storage, object_key
from .strategy import Strategy, field_value, supported_fields
from .watchcache import ResourceCache

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
WATCH_BOOKMARK_INTERVAL = 5.0
# Subresources whose writes change only their part of the object (strategy.prepare_subresource_update).
SUBRESOURCE_WRITES = ("status", "ephemeralcontainers")

Decoder = Callable[[bytes, str, str], dict[str, Any]]
TableConverter = Callable[[ResourceType, list[dict[str, Any]], str, dict[str, Any]], dict[str, Any]]
Admit = Callable[["Operation"], Awaitable[None]]
Committed = Callable[[ResourceType, "dict[str, Any] | None", "dict[str, Any] | None"], Awaitable[None]]


@dataclass
class Operation:
    """One write as admission plugins see it."""

    verb: str  # create | update | delete | connect
    info: RequestInfo
    user: UserInfo
    obj: dict[str, Any] | None
    old: dict[str, Any] | None
    dry_run: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    # Warnings for the client (Warning headers), e.g. PodSecurity's "would violate ...".
    warnings: list[str] = field(default_factory=list)
    # Undo steps for side effects admission took before the object is stored (a quota reservation);
    # run with the error when the write then fails.
    rollbacks: list[Callable[[BaseException], Awaitable[None]]] = field(default_factory=list)
    # Reads the plugins share within this one request (the namespace object is read once).
    memo: dict[str, Any] = field(default_factory=dict)

    async def rollback(self, exc: BaseException) -> None:
        steps, self.rollbacks = self.rollbacks, []
        for step in reversed(steps):
            try:
                await step(exc)
            except Exception:  # noqa: BLE001 - the write already failed; report that, not this
                log.exception("admission rollback after %r failed", exc)


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type=JSON, headers=headers)


def _query_bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


def _parse_int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"invalid value for {name}: {value!r}") from None


class Handlers:
    def __init__(self, *, registry: Registry, storage: Storage, caches: dict[tuple[str, str], ResourceCache],
                 strategies: Callable[[ResourceType], Strategy], allocator: Allocator,
                 admit: Admit, protobuf: Decoder | None = None, table: TableConverter | None = None,
                 committed: Committed | None = None, conversions: Conversions | None = None) -> None:
        self.registry = registry
        self.storage = storage
        self.caches = caches
        self.strategy = strategies
        self.allocator = allocator
        self.admit = admit
        # Told (type, old, new) after an update or delete (new=None) was stored, e.g. to move quota usage.
        self.committed = committed
        self.protobuf = protobuf
        self.table = table
        self.watchers = 0
        # Kinds served in versions other than the one they are stored in (autoscaling/v1 HPAs).
        self.conversions = conversions or builtin_conversions()

    # ------------------------------------------------------------------ versions

    def storage_type(self, rt: ResourceType) -> ResourceType:
        """The type objects of ``rt`` are stored as: ``rt`` itself unless its kind is converted."""
        if not self.conversions.converts(rt):
            return rt
        group, version = self.conversions.storage_group_version(rt.group, rt.kind) or (rt.group, rt.version)
        return self.registry.by_kind(group, version, rt.kind) or dataclasses.replace(rt, group=group, version=version)

    def cache_of(self, rt: ResourceType) -> ResourceCache | None:
        """The watch cache holding ``rt``'s objects (its storage type's)."""
        srt = self.storage_type(rt)
        return self.caches.get((srt.group, srt.plural))

    def _stored(self, info: RequestInfo) -> RequestInfo:
        """``info`` addressing the storage version: storage, strategy and admission all work there."""
        srt = self.storage_type(info.rt)
        return info if srt is info.rt else dataclasses.replace(info, rt=srt)

    def to_storage(self, rt: ResourceType, obj: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
        """A request body in ``rt``'s version as the storage version: decoding applies the request
        version's defaults first (v1 HPAs: minReplicas), then conversion. ``partial``: an apply
        configuration, converted without defaults."""
        if not self.conversions.converts(rt):
            return obj
        if not partial:
            obj = m.deep_copy(obj)
            apply_defaults(rt.group, rt.version, rt.kind, obj)
        return self.conversions.to_storage(rt, obj, partial=partial)

    def served(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """A stored object as the client asked for it (``rt``'s version)."""
        return self.conversions.from_storage(rt, obj)

    def _table_of(self, request: web.Request, rt: ResourceType, items: list[dict[str, Any]],
                  list_meta: dict[str, Any]) -> dict[str, Any]:
        """Table rows are printed from the stored object (upstream prints the internal version, so
        every metric of an HPA shows through v1 too); whole row objects are in ``rt``'s version."""
        include = request.query.get("includeObject", "Metadata")
        srt = self.storage_type(rt)
        table = self.table(srt, items, include, list_meta)  # type: ignore[misc]
        if srt is not rt and include == "Object":
            for row, obj in zip(table.get("rows") or [], items):
                row["object"] = self.served(rt, obj)
        return table

    # ------------------------------------------------------------------ bodies

    async def read_object(self, request: web.Request, rt: ResourceType | None = None) -> dict[str, Any]:
        body = await self.read_body(request)
        ctype = request.content_type or JSON
        if ctype == PROTOBUF:
            if self.protobuf is None:
                raise errors.unsupported_media_type([JSON, "application/yaml"])
            try:
                obj = self.protobuf(body, rt.api_version if rt else "", rt.kind if rt else "")
            except UnsupportedKindError as exc:
                raise StatusError(code=415, reason="UnsupportedMediaType", message=str(exc)) from None
            except ValueError as exc:
                raise errors.bad_request(f"invalid protobuf body: {exc}") from None
        elif ctype in (JSON, "application/yaml", "text/plain", "application/octet-stream", ""):
            obj = self.decode_document(body, yaml_ok=ctype == "application/yaml")
        else:
            raise errors.unsupported_media_type([JSON, "application/yaml", PROTOBUF])
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request was in an unknown format - accepted media types "
                                     "include: application/json, application/yaml, application/vnd.kubernetes.protobuf")
        return obj

    @staticmethod
    async def read_body(request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise errors.request_entity_too_large("limit is 3145728")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise errors.request_entity_too_large("limit is 3145728") from None

    @staticmethod
    def decode_document(body: bytes, *, yaml_ok: bool = False) -> Any:
        if not body.strip():
            raise errors.bad_request("the request body is empty")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if not yaml_ok:
                raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
        try:
            return yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None

    def check_type(self, rt: ResourceType, obj: dict[str, Any], *, expected_kind: str | None = None) -> None:
        kind = expected_kind or rt.kind
        api_version = obj.get("apiVersion")
        if obj.get("kind") not in (None, "", kind) or api_version not in (None, "", rt.api_version):
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match the expected API "
                                     f"version ({rt.api_version})" if api_version not in (None, "", rt.api_version)
                                     else f"the kind in the data ({obj.get('kind')}) does not match the expected kind "
                                          f"({kind})")
        meta = obj.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")

    @staticmethod
    def field_validation(request: web.Request, rt: ResourceType, obj: dict[str, Any]) -> list[str]:
        """Unknown top-level and metadata fields: Strict → 400, Warn → warnings, Ignore → nothing."""
        mode = request.query.get("fieldValidation", "Warn")
        if mode not in ("Strict", "Warn", "Ignore", ""):
            raise errors.bad_request(f"fieldValidation must be one of Ignore, Warn, or Strict; got {mode}")
        if mode == "Ignore":
            return []
        paths = unknown_fields(rt, obj)
        if paths is None:  # no schema for this kind (custom resources are pruned by their schema)
            meta = obj.get("metadata") or {}
            paths = [k for k in obj if k not in _known_top_level(rt)]
            paths += [f"metadata.{k}" for k in meta if k not in _OBJECT_META_FIELDS]
        unknown = [f"unknown field \"{p}\"" for p in paths]
        if unknown and mode == "Strict":
            raise errors.bad_request("strict decoding error: " + ", ".join(unknown))
        return unknown

    # ------------------------------------------------------------------ create

    async def create(self, request: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        rt = info.rt
        obj = await self.read_object(request, rt)
        if rt.virtual:
            raise errors.method_not_allowed(resource=rt.plural, action="create", group=rt.group)
        self.check_type(rt, obj)
        warnings = self.field_validation(request, rt, obj)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if not info.namespace:
                raise errors.bad_request("the namespace of the object must be set in the request path")
            if body_ns and body_ns != info.namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                         "the request")
            meta["namespace"] = info.namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(kind=rt.kind, group=rt.group, name="", causes=[_required("metadata.name",
                                     "name or generateName is required")])
            meta["name"] = prefix + "".join(random.choice(_NAME_CHARS) for _ in range(5))
        request["info"] = RequestInfo(rt, info.namespace, meta["name"], "")  # the audit log names the object
        sinfo = self._stored(info)
        srt = sinfo.rt
        version_errs = self.conversions.validate_create(rt, obj)
        if version_errs:
            raise errors.invalid(kind=rt.kind, group=rt.group, name=meta.get("name", ""), causes=version_errs)
        obj = self.to_storage(rt, obj)
        meta = obj["metadata"]
        strategy = self.strategy(srt)
        strategy.prepare_create(obj)
        _record_update(None, obj, request.query.get("fieldManager") or _default_manager(request), srt)
        dry_run = request.query.get("dryRun") == "All"
        op = Operation("create", sinfo, user, obj, None, dry_run)
        await self.admit(op)
        try:
            errs = strategy.validate(obj)
            if errs:
                raise errors.invalid(kind=rt.kind, group=rt.group, name=meta.get("name", ""), causes=errs)
            created = await self._store_create(srt, obj, dry_run)
        except BaseException as exc:
            await op.rollback(exc)
            raise
        return _json_response(self.served(rt, created), 201, _warning_headers(warnings + op.warnings))

    async def _store_create(self, rt: ResourceType, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        if rt.plural == "services" and rt.group == "":
            await self._allocate_service(obj, dry_run)
        if dry_run:
            return obj
        try:
            return await self.storage.create(rt, obj)
        except StatusError:
            if rt.plural == "services" and rt.group == "":
                await self._release_service(obj)
            raise

    async def _allocate_service(self, svc: dict[str, Any], dry_run: bool) -> None:
        spec = svc.setdefault("spec", {})
        owner = object_key(self.registry.get("", "v1", "services"), svc["metadata"]["namespace"],  # type: ignore[arg-type]
                           svc["metadata"]["name"])
        stype = spec.get("type", "ClusterIP")
        if stype != "ExternalName" and spec.get("clusterIP") != "None":
            requested = spec.get("clusterIP") or None
            if dry_run:
                spec["clusterIP"] = requested or ""
            else:
                spec["clusterIP"] = await self.allocator.allocate_ip(owner, requested, name=svc["metadata"]["name"])
            spec["clusterIPs"] = [spec["clusterIP"]] if spec["clusterIP"] else []
        elif spec.get("clusterIP") == "None":
            spec["clusterIPs"] = ["None"]
        if stype in ("NodePort", "LoadBalancer"):
            for index, port in enumerate(spec.get("ports") or []):
                if dry_run:
                    continue
                port["nodePort"] = await self.allocator.allocate_port(owner, port.get("nodePort"),
                                                                      name=svc["metadata"]["name"], index=index)

    async def _release_service(self, svc: dict[str, Any]) -> None:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            await self.allocator.release_ip(ip)
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                await self.allocator.release_port(port["nodePort"])

    # ------------------------------------------------------------------ reads

    async def get(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        obj = await self.storage.get(self.storage_type(info.rt), info.namespace, info.name)
        return self.respond_objects(request, info.rt, [obj], single=True)

    def _accept_filter(self, request: web.Request, rt: ResourceType) -> Callable[[dict[str, Any]], bool]:
        label_sel = LabelSelector.parse(request.query.get("labelSelector", ""))
        field_sel = FieldSelector.parse(request.query.get("fieldSelector", ""))
        # The objects tested are stored ones: a converted kind's own field labels name stored fields.
        labels = self.conversions.field_labels(rt)
        field_sel.check_fields(("metadata.name", "metadata.namespace", *labels) if labels else supported_fields(rt))
        stored = labels or {}

        def accept(obj: dict[str, Any]) -> bool:
            if not label_sel.matches((obj.get("metadata") or {}).get("labels") or {}):
                return False
            return field_sel.matches(lambda path: field_value(obj, stored.get(path, path)))

        return accept

    async def list(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        rt = info.rt
        if _query_bool(request, "watch"):
            return await self.watch(request, info)
        accept = self._accept_filter(request, rt)
        filtered = bool(request.query.get("labelSelector") or request.query.get("fieldSelector"))
        limit = _parse_int(request.query.get("limit"), "limit") or 0
        rv = request.query.get("resourceVersion", "")
        match = request.query.get("resourceVersionMatch", "")
        token = request.query.get("continue", "")
        _validate_list_options(rv, match, token)
        cache = self.cache_of(rt)
        if rv == "0" and not token and cache is not None and cache.ready.is_set():
            items, revision = cache.list(info.namespace, accept)
            list_meta: dict[str, Any] = {"resourceVersion": str(revision)}
        else:
            revision = 0
            if rv and rv != "0" and not token:
                wanted = _parse_int(rv, "resourceVersion") or 0
                await self._wait_for_revision(wanted)
                if match == "Exact":
                    revision = wanted  # else NotOlderThan: the newest state is never older
            result = await self.storage.list(self.storage_type(rt), info.namespace, limit=limit,
                                             continue_token=token, revision=revision,
                                             accept=accept if filtered else None)
            items = result.items
            list_meta = {"resourceVersion": str(result.revision)}
            if result.continue_token:
                list_meta["continue"] = result.continue_token
                if result.remaining is not None:
                    list_meta["remainingItemCount"] = result.remaining
        return self.respond_objects(request, rt, items, list_meta=list_meta)

    async def _wait_for_revision(self, wanted: int, timeout: float = 3.0) -> None:
        """A read "not older than" ``wanted`` waits (as upstream, up to 3 s) for the store to get
        there; a revision it has not reached by then is refused with upstream's 504."""
        deadline = time.monotonic() + timeout
        while True:
            current = await self.storage.current_revision()
            if wanted <= current:
                return
            if time.monotonic() >= deadline:
                raise errors.too_large_resource_version(wanted, current)
            await asyncio.sleep(0.1)

    def respond_objects(self, request: web.Request, rt: ResourceType, items: list[dict[str, Any]], *,
                        single: bool = False, list_meta: dict[str, Any] | None = None) -> web.StreamResponse:
        """``items`` as stored, answered in ``rt``'s version (or as a Table)."""
        accept = request.headers.get("Accept", "")
        if "as=Table" in accept and self.table is not None:
            if single:
                list_meta = {"resourceVersion": items[0]["metadata"].get("resourceVersion", "")}
            return _json_response(self._table_of(request, rt, items, list_meta or {}))
        items = [self.served(rt, obj) for obj in items]
        if single:
            return _json_response(items[0])
        return _json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                               "metadata": list_meta or {}, "items": items})

    # ------------------------------------------------------------------ watch

    async def watch(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        rt = info.rt
        cache = self.cache_of(rt)
        if cache is None:
            raise errors.method_not_allowed(resource=rt.plural, action="watch", group=rt.group)
        await asyncio.wait_for(cache.ready.wait(), 10)
        accept = self._accept_filter(request, rt)
        if info.name:
            name = info.name
            base = accept
            accept = lambda o: (o.get("metadata") or {}).get("name") == name and base(o)  # noqa: E731
        rv_text = request.query.get("resourceVersion", "")
        rv = _parse_int(rv_text, "resourceVersion") if rv_text else None
        timeout = _parse_int(request.query.get("timeoutSeconds"), "timeoutSeconds")
        if timeout is None:
            timeout = random.randint(1800, 3600)
        bookmarks = _query_bool(request, "allowWatchBookmarks")
        as_table = "as=Table" in request.headers.get("Accept", "") and self.table is not None
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        try:
            watcher, initial = cache.watch(info.namespace, accept, rv)
        except StatusError as err:
            await resp.prepare(request)
            await resp.write(orjson.dumps({"type": "ERROR", "object": err.to_status()}) + b"\n")
            await resp.write_eof()
            return resp
        self.watchers += 1
        await resp.prepare(request)
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()
        sent_rev = rv or 0

        def encode(kind: str, obj: dict[str, Any]) -> bytes:
            # The cache holds stored objects: events of a converted kind are converted one by one.
            if kind != "BOOKMARK" and kind != "ERROR":
                obj = self._table_of(request, rt, [obj], {}) if as_table else self.served(rt, obj)
            return orjson.dumps({"type": kind, "object": obj}) + b"\n"

        try:
            for ev in initial:
                await resp.write(encode(ev.type, ev.object))
                sent_rev = max(sent_rev, ev.revision)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    ev = await asyncio.wait_for(watcher.queue.get(), min(remaining, 1.0))
                except asyncio.TimeoutError:
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break
                    if bookmarks and time.monotonic() - last_bookmark >= WATCH_BOOKMARK_INTERVAL:
                        mark = watcher.bookmark(cache.revision, sent_rev)
                        if mark is not None:
                            last_bookmark = time.monotonic()
                            sent_rev = mark
                            await resp.write(encode("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                                                 "metadata": {"resourceVersion": str(sent_rev)}}))
                    continue
                if ev is None:
                    break  # closed: too slow, or the cache is shutting down
                await resp.write(encode(ev.type, ev.object))
                sent_rev = max(sent_rev, ev.revision)
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            cache.unwatch(watcher)
            self.watchers -= 1
        try:
            await resp.write_eof()
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    # ------------------------------------------------------------------ update

    async def update(self, request: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        rt = info.rt
        obj = await self.read_object(request, rt)
        self.check_type(rt, obj)
        warnings = self.field_validation(request, rt, obj)
        meta = obj.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != info.name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL "
                                     f"({info.name})")
        meta["name"] = info.name
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != info.namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                         "the request")
            meta["namespace"] = info.namespace
        expected = meta.get("resourceVersion") or ""
        if expected and not expected.isdigit():
            raise errors.bad_request(f"invalid resourceVersion {expected!r}")
        dry_run = request.query.get("dryRun") == "All"
        manager = request.query.get("fieldManager") or _default_manager(request)
        subresource_only = info.subresource in SUBRESOURCE_WRITES
        sinfo = self._stored(info)

        async def mutate(current: dict[str, Any]) -> dict[str, Any]:
            if expected and current["metadata"]["resourceVersion"] != expected:
                raise errors.conflict(resource=rt.plural, group=rt.group, name=info.name)
            if info.subresource == "finalize":
                # namespaces/{name}/finalize changes only spec.finalizers
                new = m.deep_copy(current)
                new.setdefault("spec", {})["finalizers"] = list((obj.get("spec") or {}).get("finalizers") or [])
                return new
            return await self._prepare_update(sinfo, user, self.to_storage(rt, obj), current,
                                              subresource_only=subresource_only, manager=manager, dry_run=dry_run,
                                              warnings=warnings)

        updated = await self._write(sinfo, mutate, dry_run)
        return _json_response(self.served(rt, updated), 200, _warning_headers(warnings))

    async def _prepare_update(self, info: RequestInfo, user: UserInfo, new: dict[str, Any], current: dict[str, Any], *,
                              subresource_only: bool, manager: str, dry_run: bool,
                              warnings: list[str] | None = None, applied: dict[str, Any] | None = None,
                              force: bool = False, fields_subresource: str | None = None) -> dict[str, Any]:
        """Strategy, field ownership (an Update by ``manager``, or its server-side apply of ``applied``),
        admission and validation of an update. ``fields_subresource`` names the subresource the
        managedFields entry records when it is not the request's own (``scale`` writes the object)."""
        rt = info.rt
        strategy = self.strategy(rt)
        new = m.deep_copy(new)
        if subresource_only:
            new = strategy.prepare_subresource_update(info.subresource, new, current)
        else:
            strategy.prepare_update(new, current)
        if applied is not None:
            new = fieldmanager.apply(current, fieldmanager.strip_for_scope(applied, info.subresource), new,
                                     manager=manager, api_version=rt.api_version, now=m.now_rfc3339(),
                                     schema=fieldmanager.schema_for(rt.kind, rt.group), force=force,
                                     subresource=info.subresource, kind=rt.kind, group=rt.group, name=info.name)
        else:
            _record_update(current, new, manager, rt,
                           subresource=info.subresource if fields_subresource is None else fields_subresource)
        op = Operation("update", info, user, new, current, dry_run)
        await self.admit(op)
        if warnings is not None:  # retried attempts re-admit: keep each warning once
            warnings.extend(w for w in op.warnings if w not in warnings)
        errs = (strategy.validate_subresource_update(info.subresource, new, current) if subresource_only
                else strategy.validate(new, current))
        if errs:
            raise errors.invalid(kind=rt.kind, group=rt.group, name=info.name, causes=errs)
        return new

    async def _write(self, info: RequestInfo, mutate: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
                     dry_run: bool) -> dict[str, Any]:
        """Read-modify-write; finishes a deletion once the last finalizer is gone."""
        rt = info.rt
        if dry_run:
            current = await self.storage.get(rt, info.namespace, info.name)
            return await mutate(current)
        seen: list[dict[str, Any]] = []

        async def tracked(current: dict[str, Any]) -> dict[str, Any]:
            seen[:] = [current]  # the state the stored update replaced (last attempt wins)
            return await mutate(current)

        updated = await self.storage.guaranteed_update(rt, info.namespace, info.name, tracked)
        if self.committed is not None and seen:
            await self.committed(rt, seen[0], updated)
        meta = updated["metadata"]
        if meta.get("deletionTimestamp") and not _blocks_deletion(rt, updated):
            try:
                obj, _ = await self.storage.delete(rt, info.namespace, info.name, int(meta["resourceVersion"]))
                await self._after_delete(rt, obj)
            except StatusError as err:
                if err.code not in (404, 409):
                    raise
        return updated

    # ------------------------------------------------------------------ patch

    async def patch(self, request: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        rt = info.rt
        ctype = request.content_type
        if ctype not in PATCH_TYPES:
            raise errors.unsupported_media_type(list(PATCH_TYPES))
        body = await self.read_body(request)
        patch = self.decode_document(body, yaml_ok=ctype == "application/apply-patch+yaml")
        dry_run = request.query.get("dryRun") == "All"
        manager = request.query.get("fieldManager", "")
        subresource_only = info.subresource in SUBRESOURCE_WRITES
        force = request.query.get("force", "").lower() == "true"
        if force and ctype != "application/apply-patch+yaml":
            raise errors.invalid(kind="PatchOptions", group="meta.k8s.io", name="",
                                 causes=[_invalid("force", True, "may not be specified for non-apply patch")])
        if ctype == "application/apply-patch+yaml":
            if not manager:
                raise errors.invalid(kind="PatchOptions", group="meta.k8s.io", name="",
                                     causes=[_required("fieldManager", "is required for apply patch")])
            if not isinstance(patch, dict):
                raise errors.bad_request("the apply patch must be an object")
            self.check_type(rt, patch)
            try:
                await self.storage.get(self.storage_type(rt), info.namespace, info.name)
            except StatusError as err:
                if err.code != 404 or subresource_only:
                    raise
                return await self._apply_create(request, info, user, patch, manager, dry_run)
        elif ctype == "application/json-patch+json":
            if not isinstance(patch, list):
                raise errors.bad_request("json patch must be a list of operations")
        elif not isinstance(patch, dict):
            raise errors.bad_request("the patch must be a JSON object")
        warnings: list[str] = []
        sinfo = self._stored(info)
        # An apply configuration in the storage version, for field ownership (no implicit values).
        applied = (self.to_storage(rt, patch, partial=True) if ctype == "application/apply-patch+yaml" else None)

        async def mutate(current: dict[str, Any]) -> dict[str, Any]:
            # The patch is applied to the object in the request's version, then converted back.
            patched = self._apply_patch(rt, ctype, m.deep_copy(self.served(rt, current)), patch)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch produced a non-object")
            if not subresource_only:  # validate the result: patches carry directives ($patch, $setElementOrder)
                warnings[:] = self.field_validation(request, rt, patched)
            pmeta = patched.setdefault("metadata", {})
            if pmeta.get("name") != info.name:
                raise errors.bad_request("the name of the object may not be changed by a patch")
            if rt.namespaced:
                pmeta["namespace"] = info.namespace
            want_rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
            if want_rv and want_rv != current["metadata"]["resourceVersion"]:
                raise errors.conflict(resource=rt.plural, group=rt.group, name=info.name)
            return await self._prepare_update(sinfo, user, self.to_storage(rt, patched), current,
                                              subresource_only=subresource_only,
                                              manager=manager or _default_manager(request), dry_run=dry_run,
                                              warnings=warnings, applied=applied, force=force)

        updated = await self._write(sinfo, mutate, dry_run)
        return _json_response(self.served(rt, updated), 200, _warning_headers(warnings))

    def _apply_patch(self, rt: ResourceType, ctype: str, doc: dict[str, Any], patch: Any) -> Any:
        if ctype == "application/json-patch+json":
            return json_patch(doc, patch)
        if ctype == "application/merge-patch+json":
            return merge_patch(doc, patch)
        schema = strategic_merge_schema(rt.kind, rt.group)
        if schema is None:
            if ctype == "application/apply-patch+yaml":
                return merge_patch(doc, patch)
            raise errors.unsupported_media_type(["application/json-patch+json", "application/merge-patch+json",
                                                 "application/apply-patch+yaml"])
        return strategic_merge_patch(doc, patch, schema)

    async def _apply_create(self, request: web.Request, info: RequestInfo, user: UserInfo, intent: dict[str, Any],
                            manager: str, dry_run: bool) -> web.StreamResponse:
        rt = info.rt
        obj = m.deep_copy(intent)
        meta = obj.setdefault("metadata", {})
        if meta.get("name") not in (None, info.name):
            raise errors.bad_request("the name of the object does not match the name on the URL")
        meta["name"] = info.name
        if rt.namespaced:
            meta["namespace"] = info.namespace
        warnings = self.field_validation(request, rt, obj)
        sinfo = self._stored(info)
        srt = sinfo.rt
        obj = self.to_storage(rt, obj)
        intent = self.to_storage(rt, intent, partial=True)
        strategy = self.strategy(srt)
        strategy.prepare_create(obj)
        obj = fieldmanager.apply(None, fieldmanager.strip_for_scope(intent, ""), obj, manager=manager,
                                 api_version=srt.api_version, now=m.now_rfc3339(),
                                 schema=fieldmanager.schema_for(rt.kind, rt.group), force=True, kind=rt.kind,
                                 group=rt.group, name=info.name)
        op = Operation("create", sinfo, user, obj, None, dry_run)
        await self.admit(op)
        try:
            errs = strategy.validate(obj)
            if errs:
                raise errors.invalid(kind=rt.kind, group=rt.group, name=info.name, causes=errs)
            created = await self._store_create(srt, obj, dry_run)
        except BaseException as exc:
            await op.rollback(exc)
            raise
        return _json_response(self.served(rt, created), 201, _warning_headers(warnings + op.warnings))

    # ------------------------------------------------------------------ delete

    async def delete(self, request: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        options = await self._delete_options(request)
        obj = await self._delete_one(self._stored(info), user, options)
        return _json_response(self.served(info.rt, obj))

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        body = await self.read_body(request)
        if body.strip():
            decoded = self.decode_document(body)
            if not isinstance(decoded, dict):
                raise errors.bad_request("DeleteOptions must be an object")
            options.update(decoded)
        for name in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
            if name in request.query:
                options[name] = request.query[name]
        if "gracePeriodSeconds" in options and options["gracePeriodSeconds"] is not None:
            try:
                options["gracePeriodSeconds"] = int(options["gracePeriodSeconds"])
            except (TypeError, ValueError):
                raise errors.bad_request("gracePeriodSeconds must be an integer") from None
        policy = options.get("propagationPolicy")
        if policy not in (None, "Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"propagationPolicy: Unsupported value: {policy!r}: supported values: "
                                     "\"Foreground\", \"Background\", \"Orphan\"")
        if request.query.get("dryRun") == "All" or options.get("dryRun") == ["All"]:
            options["dryRun"] = True
        return options

    async def _delete_one(self, info: RequestInfo, user: UserInfo, options: dict[str, Any]) -> dict[str, Any]:
        rt = info.rt
        current = await self.storage.get(rt, info.namespace, info.name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != current["metadata"].get("uid"):
            raise errors.conflict(resource=rt.plural, group=rt.group, name=info.name,
                                  detail=f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                                         f"{current['metadata'].get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise errors.conflict(resource=rt.plural, group=rt.group, name=info.name,
                                  detail=f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                         f"ResourceVersion in object meta: {current['metadata']['resourceVersion']}")
        dry_run = bool(options.get("dryRun"))
        await self.admit(Operation("delete", info, user, None, current, dry_run, options))
        if dry_run:
            return current
        finalizers = _deletion_finalizers(rt, current, options)
        grace = _grace_period(rt, current, options)
        if finalizers or grace or _blocks_deletion(rt, current, ignore_timestamp=True):
            async def mark(obj: dict[str, Any]) -> dict[str, Any] | None:
                meta = obj["metadata"]
                fins = list(meta.get("finalizers") or [])
                for f in finalizers:
                    if f not in fins:
                        fins.append(f)
                changed = fins != list(meta.get("finalizers") or [])
                if fins:
                    meta["finalizers"] = fins
                if not meta.get("deletionTimestamp"):
                    when = datetime.fromtimestamp(time.time() + (grace or 0), tz=timezone.utc)
                    meta["deletionTimestamp"] = m.format_rfc3339(when)
                    meta["deletionGracePeriodSeconds"] = grace or 0
                    if meta.get("generation") is not None:
                        meta["generation"] += 1
                    changed = True
                elif grace is not None and meta.get("deletionGracePeriodSeconds", 0) > grace:
                    meta["deletionGracePeriodSeconds"] = grace
                    changed = True
                if rt.plural == "namespaces" and rt.group == "":
                    status = obj.setdefault("status", {})
                    if status.get("phase") != "Terminating":
                        status["phase"] = "Terminating"
                        changed = True
                return obj if changed else None

            marked = await self.storage.guaranteed_update(rt, info.namespace, info.name, mark)
            if _blocks_deletion(rt, marked):
                return marked
            current = marked
        try:
            obj, _ = await self.storage.delete(rt, info.namespace, info.name, int(current["metadata"]["resourceVersion"]))
        except StatusError as err:
            if err.code == 409:  # changed under us: start over against the new state
                return await self._delete_one(info, user, options)
            raise
        await self._after_delete(rt, obj)
        return obj

    async def _after_delete(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.plural == "services" and rt.group == "":
            await self._release_service(obj)
        if self.committed is not None:
            await self.committed(rt, obj, None)

    async def delete_collection(self, request: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        rt = info.rt
        srt = self.storage_type(rt)
        options = await self._delete_options(request)
        accept = self._accept_filter(request, rt)
        result = await self.storage.list(srt, info.namespace, accept=accept)
        deleted = []
        for obj in result.items:
            one = RequestInfo(srt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"], "")
            try:
                deleted.append(self.served(rt, await self._delete_one(one, user, options)))
            except StatusError as err:
                if err.code != 404:
                    raise
        return _json_response({"kind": rt.list_kind, "apiVersion": rt.api_version,
                               "metadata": {"resourceVersion": str(result.revision)}, "items": deleted})

    # ------------------------------------------------------------------ subresources

    async def scale(self, request: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        rt = info.rt
        if request.method == "GET":
            return _json_response(_to_scale(await self.storage.get(rt, info.namespace, info.name)))
        dry_run = request.query.get("dryRun") == "All"
        if request.method == "PUT":
            body = await self.read_object(request)
            replicas = (body.get("spec") or {}).get("replicas")
            want_rv = (body.get("metadata") or {}).get("resourceVersion")
            patch_fn: Callable[[dict[str, Any]], dict[str, Any]] = lambda scale: body  # noqa: E731
        else:
            ctype = request.content_type
            if ctype not in PATCH_TYPES[:3]:
                raise errors.unsupported_media_type(list(PATCH_TYPES[:3]))
            patch = self.decode_document(await self.read_body(request))
            want_rv = None
            replicas = None

            def patch_fn(scale: dict[str, Any]) -> dict[str, Any]:
                if ctype == "application/json-patch+json":
                    return json_patch(scale, patch)
                return merge_patch(scale, patch)

        async def mutate(current: dict[str, Any]) -> dict[str, Any]:
            if want_rv and want_rv != current["metadata"]["resourceVersion"]:
                raise errors.conflict(resource=f"{rt.plural}", group=rt.group, name=info.name)
            scale = patch_fn(_to_scale(current))
            value = (scale.get("spec") or {}).get("replicas", replicas)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise errors.invalid(kind="Scale", group="autoscaling", name=info.name,
                                     causes=[_invalid("spec.replicas", value, "must be greater than or equal to 0")])
            new = m.deep_copy(current)
            new.setdefault("spec", {})["replicas"] = value
            one = RequestInfo(rt, info.namespace, info.name, "")
            return await self._prepare_update(one, user, new, current, subresource_only=False,
                                              manager=request.query.get("fieldManager") or _default_manager(request),
                                              dry_run=dry_run, fields_subresource="scale")

        updated = await self._write(info, mutate, dry_run)
        return _json_response(_to_scale(updated))

    async def eviction(self, request: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        """POST pods/{name}/eviction: a graceful delete that PodDisruptionBudgets may refuse (429)."""
        body = await self.read_object(request)
        options = dict(body.get("deleteOptions") or {})
        pod = await self.storage.get(info.rt, info.namespace, info.name)
        phase = (pod.get("status") or {}).get("phase")
        # As upstream: a pod that is not running (or already going) disrupts nothing by leaving.
        if phase not in ("Pending", "Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp"):
            await self._check_disruption_budgets(pod)
        await self._delete_one(RequestInfo(info.rt, info.namespace, info.name, ""), user, options)
        return _json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                               "code": 201}, 201)

    async def _check_disruption_budgets(self, pod: dict[str, Any]) -> None:
        pdbs = self.registry.get("policy", "v1", "poddisruptionbudgets")
        if pdbs is None:
            return
        labels = (pod.get("metadata") or {}).get("labels") or {}
        result = await self.storage.list(pdbs, pod["metadata"]["namespace"])
        matching = [pdb for pdb in result.items
                    if (selector := (pdb.get("spec") or {}).get("selector")) is not None
                    and LabelSelector.from_structured(selector).matches(labels)]
        if len(matching) > 1:
            raise errors.internal_error(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
        for pdb in matching:
            status = pdb.get("status") or {}
            if status.get("disruptionsAllowed", 0) <= 0:
                # No Retry-After, as upstream: client-go would otherwise retry the 429 itself, ten
                # times, and `kubectl drain` would hang silently instead of reporting and retrying.
                raise errors.too_many_requests(
                    "Cannot evict pod as it would violate the pod's disruption budget.", retry_after_seconds=0,
                    causes=(errors.StatusCause(
                        type="DisruptionBudget",
                        message=f"The disruption budget {pdb['metadata']['name']} needs "
                                f"{status.get('desiredHealthy', 0)} healthy pods and has "
                                f"{status.get('currentHealthy', 0)} currently"),))

    async def binding(self, request: web.Request, info: RequestInfo, user: UserInfo) -> web.StreamResponse:
        """POST pods/{name}/binding: the scheduler assigns a node, exactly once."""
        body = await self.read_object(request)
        target = (body.get("target") or {}).get("name")
        if not target:
            raise errors.invalid(kind="Binding", name=info.name, causes=[_required("target.name", "")])
        pods = info.rt

        async def bind(pod: dict[str, Any]) -> dict[str, Any]:
            if pod["metadata"].get("deletionTimestamp"):
                raise errors.conflict(resource="pods", name=info.name,
                                      detail=f"pod {info.name} is being deleted, cannot be assigned to a host")
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                raise errors.conflict(resource="pods", name=info.name,
                                      detail=f"pod {info.name} is already assigned to node \"{node}\"")
            pod.setdefault("spec", {})["nodeName"] = target
            conds = [c for c in (pod.setdefault("status", {}).get("conditions") or []) if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": m.now_rfc3339()})
            pod["status"]["conditions"] = conds
            return pod

        await self.storage.guaranteed_update(pods, info.namespace, info.name, bind)
        return _json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                              201)


# ---------------------------------------------------------------------- helpers

_OBJECT_META_FIELDS = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
                       "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
                       "annotations", "ownerReferences", "finalizers", "managedFields"}
_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}
_EXTRA_TOP_LEVEL: dict[str, set[str]] = {
    "ConfigMap": {"data", "binaryData", "immutable"},
    "Secret": {"data", "stringData", "type", "immutable"},
    "ServiceAccount": {"secrets", "imagePullSecrets", "automountServiceAccountToken"},
    "Endpoints": {"subsets"},
    "EndpointSlice": {"addressType", "endpoints", "ports"},
    "Event": {"involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count", "type",
              "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance", "regarding",
              "note", "reportingController", "deprecatedSource", "deprecatedFirstTimestamp",
              "deprecatedLastTimestamp", "deprecatedCount"},
    "Role": {"rules"}, "ClusterRole": {"rules", "aggregationRule"},
    "RoleBinding": {"subjects", "roleRef"}, "ClusterRoleBinding": {"subjects", "roleRef"},
    "StorageClass": {"provisioner", "parameters", "reclaimPolicy", "mountOptions", "allowVolumeExpansion",
                     "volumeBindingMode", "allowedTopologies"},
    "PriorityClass": {"value", "globalDefault", "description", "preemptionPolicy"},
    "ControllerRevision": {"data", "revision"},
    "Binding": {"target"},
}


def _known_top_level(rt: ResourceType) -> set[str]:
    return _TOP_LEVEL | _EXTRA_TOP_LEVEL.get(rt.kind, set())


def _required(path: str, detail: str) -> Any:
    from apimachinery.validation import FieldError, Path

    return FieldError.required(Path.of(*path.split(".")), detail)


def _invalid(path: str, value: Any, detail: str) -> Any:
    from apimachinery.validation import FieldError, Path

    return FieldError.invalid(Path.of(*path.split(".")), value, detail)


def _warning_headers(warnings: list[str]) -> dict[str, str] | None:
    if not warnings:
        return None
    return {"Warning": ", ".join(f'299 - "{w.replace(chr(34), chr(92) + chr(34))}"' for w in warnings)}


def _default_manager(request: web.Request) -> str:
    agent = request.headers.get("User-Agent", "unknown")
    return agent.split("/", 1)[0][:128] or "unknown"


def _record_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, rt: ResourceType, *,
                   subresource: str = "") -> None:
    """Field ownership of a create (``old`` None), update or non-apply patch by ``manager``."""
    fieldmanager.record_update(old, new, manager=manager, api_version=rt.api_version, now=m.now_rfc3339(),
                               schema=fieldmanager.schema_for(rt.kind, rt.group), subresource=subresource)


def _deletion_finalizers(rt: ResourceType, obj: dict[str, Any], options: dict[str, Any]) -> list[str]:
    policy = options.get("propagationPolicy")
    if policy is None and str(options.get("orphanDependents", "")).lower() == "true":
        policy = "Orphan"
    if policy == "Foreground":
        return ["foregroundDeletion"]
    if policy == "Orphan":
        return ["orphan"]
    return []


def _awaits_kubelet(rt: ResourceType, obj: dict[str, Any]) -> bool:
    """A bound pod being deleted gracefully waits for its kubelet to finish (grace > 0)."""
    if rt.plural != "pods" or rt.group != "":
        return False
    meta = obj.get("metadata") or {}
    return bool((obj.get("spec") or {}).get("nodeName")) and bool(meta.get("deletionTimestamp")) \
        and (meta.get("deletionGracePeriodSeconds") or 0) > 0


def _blocks_deletion(rt: ResourceType, obj: dict[str, Any], *, ignore_timestamp: bool = False) -> bool:
    """Whether the object must stay (marked for deletion) instead of being removed now."""
    meta = obj.get("metadata") or {}
    if meta.get("finalizers"):
        return True
    if rt.plural == "namespaces" and rt.group == "" and (obj.get("spec") or {}).get("finalizers"):
        return True  # the namespace controller empties it, then removes the "kubernetes" finalizer
    if ignore_timestamp:
        return False
    return _awaits_kubelet(rt, obj)


def _validate_list_options(rv: str, match: str, token: str) -> None:
    """Upstream's ValidateListOptions for resourceVersionMatch: 422 on ``ListOptions.meta.k8s.io``."""
    from apimachinery.validation import FieldError

    if not match:
        return
    errs = []
    if not rv:
        errs.append(FieldError.forbidden("resourceVersionMatch",
                                         "resourceVersionMatch is forbidden unless resourceVersion is provided"))
    if token:
        errs.append(FieldError.forbidden("resourceVersionMatch",
                                         "resourceVersionMatch is forbidden when continue is provided"))
    if match not in ("Exact", "NotOlderThan"):
        errs.append(FieldError.not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""]))
    if match == "Exact" and rv == "0":
        errs.append(FieldError.forbidden("resourceVersionMatch",
                                         'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
    if errs:
        raise errors.invalid(kind="ListOptions", group="meta.k8s.io", name="", causes=errs)


def _grace_period(rt: ResourceType, obj: dict[str, Any], options: dict[str, Any]) -> int | None:
    if rt.plural != "pods" or rt.group != "":
        return None
    grace = options.get("gracePeriodSeconds")
    if grace is None:
        grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    # An unscheduled pod, or one whose containers have all ended for good, is deleted at once.
    if not (obj.get("spec") or {}).get("nodeName"):
        return None
    if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    return max(int(grace), 0) or None


def _to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = ""
    sel = spec.get("selector")
    if isinstance(sel, dict):
        try:
            selector = LabelSelector.from_structured(sel).to_string()
        except Exception:  # noqa: BLE001 - a broken selector just shows empty
            selector = ""
    out = {"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                        if k in meta},
           "spec": {"replicas": spec.get("replicas", 0)},
           "status": {"replicas": status.get("replicas", 0)}}
    if selector:
        out["status"]["selector"] = selector
    return out

