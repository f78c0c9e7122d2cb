"""Async REST client for the Kubernetes API: JSON dicts in and out, Status errors as exceptions.

Every component (scheduler, controllers, kubelet, proxy) talks to the API server through one
``RESTClient``: HTTPS with the cluster CA, a bearer token, keep-alive connections (aiohttp), and

* ``StatusError`` (``apimachinery.errors``) rebuilt from the server's ``metav1.Status`` for every
  non-2xx answer, so callers test ``err.code == 409`` exactly as they would server-side;
* retries: 429 and 5xx answers that carry ``Retry-After`` are retried after that delay, whatever the
  verb (the server says it did not act); a connection that could not be opened is retried on the
  next API server URL (failover); a connection lost mid-request is retried only for reads, because a
  write may have been applied (a retried binding would come back 409 and mislead the caller);
* ``watch()``: an async iterator of watch events read in chunks and split on newlines here, because
  aiohttp's line reader refuses lines over 128 KiB and one event for a big object is longer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from apimachinery import errors
from apimachinery.errors import StatusError
from apimachinery.registry import Registry

from .config import ClientConfig

log = logging.getLogger(__name__)

JSON = "application/json"
PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


class APIConnectionError(ConnectionError):
    """No answer from any API server (after retries), or the connection broke during a write."""


# ---------------------------------------------------------------------- resources

@dataclass(frozen=True, slots=True)
class Resource:
    """A resource type as a URL: ``/api/v1/namespaces/{ns}/pods/{name}/{subresource}``."""

    group: str
    version: str
    plural: str
    namespaced: bool = True
    kind: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry()


def resource(plural: str, group: str = "", version: str | None = None) -> Resource:
    """The built-in resource ``plural`` of ``group`` (preferred version unless given)."""
    reg = _registry()
    versions = [version] if version else reg.groups().get(group, [])
    for v in versions:
        rt = reg.get(group, v, plural)
        if rt is not None:
            return Resource(rt.group, rt.version, rt.plural, rt.namespaced, rt.kind)
    raise KeyError(f"unknown resource {plural}.{group}" if group else f"unknown resource {plural}")


PODS = resource("pods")
NODES = resource("nodes")
NAMESPACES = resource("namespaces")
EVENTS = resource("events")
SERVICES = resource("services")
ENDPOINTS = resource("endpoints")
CONFIGMAPS = resource("configmaps")
PERSISTENT_VOLUMES = resource("persistentvolumes")
PERSISTENT_VOLUME_CLAIMS = resource("persistentvolumeclaims")
LEASES = resource("leases", "coordination.k8s.io")
PRIORITY_CLASSES = resource("priorityclasses", "scheduling.k8s.io")


def _query(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None or value == "":
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _error_from_response(status: int, body: bytes) -> StatusError:
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        return StatusError.from_status(doc, http_code=status)
    return errors.generic_error(status, body.decode(errors="replace")[:500])


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def jittered(delay: float, factor: float = 0.5) -> float:
    """``delay`` plus up to ``factor`` of itself at random, so many clients do not retry in step."""
    return delay * (1 + random.random() * factor)


class RESTClient:
    """One connection pool to the API servers of ``config``; use ``async with`` or ``close()``."""

    def __init__(self, config: ClientConfig, *, timeout: float = 30.0, max_retries: int = 8,
                 backoff_base: float = 0.1, backoff_max: float = 5.0, max_connections: int = 100) -> None:
        if not config.servers:
            raise ValueError("no API server URL")
        self.config = config
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_connections = max_connections
        self._servers = list(config.servers)
        self._current = 0
        self._ssl = config.ssl_context()
        self._session: aiohttp.ClientSession | None = None

    @property
    def server(self) -> str:
        """The API server URL requests go to now."""
        return self._servers[self._current]

    def _rotate(self, failed: str) -> None:
        if self._servers[self._current] == failed and len(self._servers) > 1:
            self._current = (self._current + 1) % len(self._servers)
            log.warning("API server %s unreachable; failing over to %s", failed, self.server)

    def _session_(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, ssl=self._ssl if self._ssl else True,
                                             enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(),
                                                  headers={"User-Agent": self.config.user_agent, "Accept": JSON})
        return self._session

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _backoff(self, attempt: int) -> float:
        return jittered(min(self.backoff_max, self.backoff_base * (2 ** attempt)))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> RESTClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ transport

    async def _open(self, method: str, path: str, *, params: dict[str, str], data: bytes | None,
                    content_type: str | None, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        """Send a request (with retries and failover) and return the open response (2xx or final error)."""
        attempt = 0
        idempotent = method in _IDEMPOTENT
        session = self._session_()
        while True:
            server = self.server
            try:
                resp = await session.request(method, server + path, params=params, data=data,
                                             headers=self._headers(content_type), timeout=timeout)
            except aiohttp.ClientConnectorError as exc:
                # Never reached the server: safe to send again, to the next one.
                self._rotate(server)
                if attempt >= self.max_retries:
                    raise APIConnectionError(f"{method} {path}: {exc}") from exc
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self._rotate(server)
                if not idempotent or attempt >= self.max_retries:
                    raise APIConnectionError(f"{method} {path}: {exc!r}") from exc
            else:
                if resp.status < 400:
                    return resp
                wait = _retry_after(resp.headers)
                if (resp.status == 429 or (resp.status >= 500 and wait is not None)) and attempt < self.max_retries:
                    resp.release()
                    await asyncio.sleep(jittered(min(wait if wait is not None else self._backoff(attempt), 30.0), 0.2))
                    attempt += 1
                    continue
                return resp
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
                      content_type: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """One API call; returns the decoded JSON answer, raises ``StatusError`` for non-2xx."""
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            content_type = content_type or JSON
        tmo = aiohttp.ClientTimeout(total=timeout or self.timeout)
        resp = await self._open(method, path, params=_query(params), data=data,
                                content_type=content_type, timeout=tmo)
        try:
            raw = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise APIConnectionError(f"{method} {path}: {exc!r}") from exc
        finally:
            resp.release()
        if resp.status >= 400:
            raise _error_from_response(resp.status, raw)
        if not raw:
            return {}
        try:
            out = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise errors.internal_error(f"{method} {path}: the server answered with non-JSON") from None
        return out if isinstance(out, dict) else {"items": out}

    # ------------------------------------------------------------------ verbs

    @staticmethod
    def _path(res: Resource | str, namespace: str, name: str, subresource: str) -> str:
        if isinstance(res, str):
            path = res.rstrip("/")
            if name:
                path += "/" + quote(name, safe="")
                if subresource:
                    path += "/" + subresource
            return path
        return res.path(namespace, name, subresource)

    def _namespace_for(self, res: Resource | str, namespace: str, body: Mapping[str, Any] | None) -> str:
        if namespace or isinstance(res, str) or not res.namespaced:
            return namespace
        meta = (body or {}).get("metadata") or {}
        return meta.get("namespace") or self.config.namespace

    async def get(self, res: Resource | str, name: str = "", *, namespace: str = "", subresource: str = "",
                  params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        ns = self._namespace_for(res, namespace, None) if name else namespace
        return await self.request("GET", self._path(res, ns, name, subresource), params=params)

    async def list(self, res: Resource | str, *, namespace: str = "", label_selector: str = "",
                   field_selector: str = "", resource_version: str | None = None, limit: int | None = None,
                   params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A List object; with ``limit`` the pages are fetched one by one and joined (one snapshot)."""
        query: dict[str, Any] = {"labelSelector": label_selector, "fieldSelector": field_selector,
                                 "resourceVersion": resource_version, "limit": limit, **(params or {})}
        path = self._path(res, namespace, "", "")
        result = await self.request("GET", path, params=query)
        items = list(result.get("items") or [])
        while limit and (result.get("metadata") or {}).get("continue"):
            page_query = {**query, "continue": result["metadata"]["continue"], "resourceVersion": None}
            result = await self.request("GET", path, params=page_query)
            items.extend(result.get("items") or [])
        result["items"] = items
        if result.get("metadata"):
            result["metadata"].pop("continue", None)
        return result

    async def create(self, res: Resource | str, body: Mapping[str, Any], *, namespace: str = "",
                     name: str = "", subresource: str = "", params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST to the collection, or to ``name/subresource`` (bindings, evictions, token requests)."""
        ns = self._namespace_for(res, namespace, body)
        return await self.request("POST", self._path(res, ns, name, subresource), params=params, body=body)

    async def update(self, res: Resource | str, body: Mapping[str, Any], *, namespace: str = "", name: str = "",
                     subresource: str = "", params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        ns = self._namespace_for(res, namespace, body)
        name = name or (body.get("metadata") or {}).get("name", "")
        if not name:
            raise ValueError("update needs the object's name")
        return await self.request("PUT", self._path(res, ns, name, subresource), params=params, body=body)

    async def patch(self, res: Resource | str, name: str, patch: Any, *, namespace: str = "",
                    patch_type: str = "merge", subresource: str = "", field_manager: str | None = None,
                    force: bool | None = None, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``patch_type``: merge | strategic | json | apply (server-side apply needs ``field_manager``)."""
        try:
            ctype = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}") from None
        query = {"fieldManager": field_manager, "force": force, **(params or {})}
        ns = self._namespace_for(res, namespace, None)
        return await self.request("PATCH", self._path(res, ns, name, subresource), params=query, body=patch,
                                  content_type=ctype)

    async def delete(self, res: Resource | str, name: str, *, namespace: str = "",
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     preconditions: Mapping[str, str] | None = None,
                     params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = dict(preconditions)
        ns = self._namespace_for(res, namespace, None)
        return await self.request("DELETE", self._path(res, ns, name, ""), params=params, body=options)

    async def watch(self, res: Resource | str, *, namespace: str = "", name: str = "",
                    resource_version: str | None = None, label_selector: str = "", field_selector: str = "",
                    allow_bookmarks: bool = True, timeout_seconds: int | None = None,
                    read_timeout: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """Watch events ``{"type", "object"}`` until the server ends the stream.

        An ``ERROR`` event is raised as its ``StatusError`` (410 Expired: relist). ``read_timeout``
        (default 60 s with bookmarks, which the server sends every few seconds) detects a dead
        connection; it is raised as ``APIConnectionError``.
        """
        fields = field_selector
        if name:
            fields = ",".join(f for f in (f"metadata.name={name}", field_selector) if f)
        query = _query({"watch": "true", "resourceVersion": resource_version, "labelSelector": label_selector,
                                  "fieldSelector": fields, "allowWatchBookmarks": allow_bookmarks or None,
                                  "timeoutSeconds": timeout_seconds})
        if read_timeout is None and allow_bookmarks:
            read_timeout = 60.0
        tmo = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=read_timeout)
        path = self._path(res, namespace, "", "")
        resp = await self._open("GET", path, params=query, data=None, content_type=None, timeout=tmo)
        try:
            if resp.status >= 400:
                raise _error_from_response(resp.status, await resp.read())
            buf = bytearray()
            try:
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    start = 0
                    while True:
                        end = buf.find(b"\n", start)
                        if end < 0:
                            break
                        line = bytes(buf[start:end])
                        start = end + 1
                        if not line.strip():
                            continue
                        event = orjson.loads(line)
                        if event.get("type") == "ERROR":
                            obj = event.get("object") or {}
                            raise StatusError.from_status(obj, http_code=int(obj.get("code") or 500))
                        yield event
                    if start:
                        del buf[:start]
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise APIConnectionError(f"watch {path}: {exc!r}") from exc
        finally:
            resp.close()  # a half-read stream must not go back to the pool
