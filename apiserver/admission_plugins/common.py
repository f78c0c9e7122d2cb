"""What several admission plugins need: the pod spec inside any workload, containers, pod-level
resource sums, the ``NewForbidden`` answer for an operation, and cache-first lookups.

Lookups read the API server's watch caches first (no store round trip on the hot path) and fall
back to a store read when the cache does not have the object yet: a ServiceAccount or LimitRange
created a moment ago may not have reached this replica's cache, and admission must not act on
that lag.
"""

from __future__ import annotations

import time
from typing import Any

from apimachinery import errors
from apimachinery.errors import StatusError
# The pure resource helpers live with the quota evaluators (shared with the quota controller).
from apimachinery.quota import (CONTAINER_KINDS, container_resources, containers, is_pod, pod_resources,  # noqa: F401
                                quantity, resource_list)
from apimachinery.registry import Registry, ResourceType

from ..handlers import Operation
from ..storage import Storage, object_key
from ..watchcache import ResourceCache

Obj = dict[str, Any]

# (group, plural) -> path from the object to its PodTemplateSpec. Pods are their own "template".
TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): (),
    ("", "podtemplates"): ("template",),
    ("", "replicationcontrollers"): ("spec", "template"),
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
}


def pod_template(rt: ResourceType, obj: Obj | None) -> tuple[Obj, Obj] | None:
    """(metadata, spec) of the pod an object is or describes; None if it has none (or is malformed)."""
    path = TEMPLATE_PATHS.get((rt.group, rt.plural))
    if path is None or not isinstance(obj, dict):
        return None
    cur: Any = obj
    for key in path:
        cur = cur.get(key) if isinstance(cur, dict) else None
    if not isinstance(cur, dict):
        return None
    meta = cur.get("metadata")
    spec = cur.get("spec")
    if not isinstance(spec, dict):
        return None
    return (meta if isinstance(meta, dict) else {}), spec


def template_field_path(rt: ResourceType) -> str:
    """``spec.template.spec`` for a Deployment, ``spec`` for a Pod (for messages)."""
    return ".".join((*TEMPLATE_PATHS.get((rt.group, rt.plural), ()), "spec"))


def security_context(holder: Obj) -> Obj:
    sc = holder.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def object_name(op: Operation) -> str:
    """The name admission errors carry: the URL's, else the object's (or its generateName)."""
    if op.info.name:
        return op.info.name
    meta = (op.obj or op.old or {}).get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "")


def forbidden(op: Operation, reason: str) -> StatusError:
    """``admission.NewForbidden``: ``pods "x" is forbidden: <reason>``."""
    rt = op.info.rt
    return errors.forbidden_reason(resource=rt.plural, group=rt.group, name=object_name(op), reason=reason)


def join_quote(items: list[str] | tuple[str, ...]) -> str:
    """``"a", "b"`` (Go's ``%q`` of each, comma-joined)."""
    from apimachinery.gofmt import go_quote

    return ", ".join(go_quote(str(i)) for i in items)


class Lookups:
    """Cache-first reads with a store fallback, for the objects admission consults."""

    ABSENT_TTL = 10.0

    def __init__(self, *, storage: Storage, registry: Registry, caches: dict[tuple[str, str], ResourceCache]) -> None:
        self.storage = storage
        self.registry = registry
        self.caches = caches
        self._absent: dict[tuple[str, str, str], float] = {}  # (group, plural, namespace) -> expiry

    def type(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.get(group, version, plural)
        assert rt is not None, (group, version, plural)
        return rt

    def cache(self, rt: ResourceType) -> ResourceCache | None:
        cache = self.caches.get((rt.group, rt.plural))
        return cache if cache is not None and cache.ready.is_set() else None

    def cached(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        cache = self.cache(rt)
        return None if cache is None else cache.objects.get(object_key(rt, namespace, name))

    async def get(self, rt: ResourceType, namespace: str, name: str, *, live: bool = True) -> Obj | None:
        """The object, or None when it does not exist. ``live`` re-reads the store on a cache miss."""
        obj = self.cached(rt, namespace, name)
        if obj is not None or not live:
            return obj
        try:
            return await self.storage.get(rt, namespace, name)
        except StatusError as err:
            if err.code == 404:
                return None
            raise

    async def list(self, rt: ResourceType, namespace: str, *, live_if_empty: bool = True) -> list[Obj]:
        """Objects of a namespace from the cache; a store list when the cache has none (it may lag).

        Most namespaces have no LimitRange or ResourceQuota, so an empty store answer is remembered
        for ``ABSENT_TTL`` seconds (upstream's "live lookup" cache): the cache is still asked first,
        so this only hides an object created in the last moment before the cache saw it.
        """
        cache = self.cache(rt)
        items: list[Obj] = []
        if cache is not None:
            items, _ = cache.list(namespace, lambda _o: True)
        if items or not live_if_empty:
            return items
        key = (rt.group, rt.plural, namespace)
        now = time.monotonic()
        if self._absent.get(key, 0.0) > now:
            return []
        result = await self.storage.list(rt, namespace)
        if not result.items:
            if len(self._absent) > 4096:
                self._absent = {k: t for k, t in self._absent.items() if t > now}
            self._absent[key] = now + self.ABSENT_TTL
        return result.items

    async def namespace(self, op: Operation) -> Obj | None:
        """The request's Namespace, read from the store once per request (NamespaceLifecycle usually
        already did): its labels and annotations carry policy, and a policy set a moment ago must
        apply to the very next request, which a watch cache cannot promise."""
        name = op.info.namespace
        if not name:
            return None
        key = f"namespace/{name}"
        if key not in op.memo:
            try:
                op.memo[key] = await self.storage.get(self.type("", "v1", "namespaces"), "", name)
            except StatusError as err:
                if err.code != 404:
                    raise
                op.memo[key] = None
        return op.memo[key]
