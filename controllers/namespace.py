"""Namespace controller: empties a terminating namespace through the API, then lets the API server delete it.

``kubectl delete namespace x`` only marks it (deletionTimestamp, phase Terminating); its
``spec.finalizers`` holds ``kubernetes`` until this controller has deleted every namespaced object in
it — every type discovery lists, custom resources included — with DELETE on the collection (or one by
one where a type has no ``deletecollection``). Objects that linger (pods waiting for their kubelet,
objects with finalizers) are reported in the namespace's conditions (``NamespaceContentRemaining``,
``NamespaceFinalizersRemaining``, as upstream words them) and the namespace is looked at again a
little later. Once nothing is left, ``PUT /api/v1/namespaces/{name}/finalize`` removes ``kubernetes``
from ``spec.finalizers`` and the API server deletes the namespace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.rest import NAMESPACES

from . import podutil as pu
from .context import BaseController, ControllerContext
from .discovery import APIResource, DiscoveryError, discover

log = logging.getLogger("controllers.namespace")

Obj = dict[str, Any]
FINALIZER = "kubernetes"
DISCOVERY_TTL = 5.0
REMAINING_RETRY = 1.0  # seconds until a namespace with content left is looked at again
PARALLEL = 8


class NamespaceController(BaseController):
    name: ClassVar[str] = "namespace"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.namespaces = ctx.informer(NAMESPACES)
        self.on(self.namespaces, add=self._changed, update=lambda _o, n: self._changed(n))
        self._resources: list[APIResource] = []
        self._discovered_at = float("-inf")
        self._discovery_failed: list[str] = []

    def _changed(self, ns: Obj) -> None:
        if m.deletion_timestamp(ns):
            self.queue.add(m.name(ns))

    async def _namespaced(self) -> list[APIResource]:
        if time.monotonic() - self._discovered_at > DISCOVERY_TTL:
            try:
                resources = await discover(self.client)
                self._discovery_failed = []
            except DiscoveryError as err:
                resources, self._discovery_failed = err.partial, err.failed
            self._resources = [r for r in resources if r.namespaced and r.can("list", "delete")]
            self._discovered_at = time.monotonic()
        return self._resources

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or not m.deletion_timestamp(ns):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        resources = await self._namespaced()
        slots = asyncio.Semaphore(PARALLEL)

        async def empty(api: APIResource) -> tuple[int, int]:
            async with slots:
                return await self._empty(api, key)

        results = await asyncio.gather(*(empty(r) for r in resources), return_exceptions=True)
        remaining: dict[str, int] = {}
        with_finalizers: dict[str, int] = {}
        failures: list[str] = []
        for api, result in zip(resources, results):
            label = f"{api.resource.plural}.{api.resource.group}" if api.resource.group else api.resource.plural
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                failures.append(f"{label}: {result}")
                continue
            left, finalized = result
            if left:
                remaining[label] = left
            if finalized:
                with_finalizers[label] = finalized
        await self._report(ns, remaining, with_finalizers, failures)
        if failures or remaining or self._discovery_failed:
            self.queue.add_after(key, REMAINING_RETRY)
            return
        await self._finalize(key)

    async def _empty(self, api: APIResource, namespace: str) -> tuple[int, int]:
        """Delete what is left of one type; return (objects still there, of which with finalizers)."""
        res = api.resource
        path = res.path(namespace)
        listed = await self.client.list(res, namespace=namespace)
        items = listed.get("items") or []
        alive = [o for o in items if not pu.is_terminating(o)]
        if alive:
            if api.can("deletecollection"):
                try:
                    await self.client.request("DELETE", path, body={"kind": "DeleteOptions", "apiVersion": "v1",
                                                                    "propagationPolicy": "Background"})
                except StatusError as err:
                    if err.code not in (404, 405):
                        raise
            else:
                for obj in alive:
                    try:
                        await self.client.delete(res, m.name(obj), namespace=namespace,
                                                 propagation_policy="Background")
                    except StatusError as err:
                        if err.code not in (404, 409):
                            raise
            items = (await self.client.list(res, namespace=namespace)).get("items") or []
        return len(items), sum(1 for o in items if m.finalizers(o))

    async def _report(self, ns: Obj, remaining: dict[str, int], finalizers: dict[str, int],
                      failures: list[str]) -> None:
        conditions = [dict(c) for c in (ns.get("status") or {}).get("conditions") or []]
        changed = False

        def put(type_: str, status: str, reason: str, message: str) -> None:
            nonlocal changed
            changed = pu.set_condition(conditions, {"type": type_, "status": status, "reason": reason,
                                                    "message": message}) or changed

        if self._discovery_failed:
            put("NamespaceDeletionDiscoveryFailure", "True", "DiscoveryFailed",
                f"Discovery failed for some groups, {len(self._discovery_failed)} failing: "
                + ", ".join(self._discovery_failed))
        else:
            put("NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered",
                "All resources successfully discovered")
        put("NamespaceDeletionGroupVersionParsingFailure", "False", "ParsedGroupVersions",
            "All legacy kube types successfully parsed")
        if failures:
            put("NamespaceDeletionContentFailure", "True", "ContentDeletionFailed",
                "Failed to delete all resource types, " + "; ".join(failures)[:1000])
        else:
            put("NamespaceDeletionContentFailure", "False", "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization")
        if remaining:
            put("NamespaceContentRemaining", "True", "SomeResourcesRemain", "Some resources are remaining: "
                + ", ".join(f"{k} has {v} resource instances" for k, v in sorted(remaining.items())))
        else:
            put("NamespaceContentRemaining", "False", "ContentRemoved", "All content successfully removed")
        if finalizers:
            put("NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
                "Some content in the namespace has finalizers remaining: "
                + ", ".join(f"{k} in {v} resource instances" for k, v in sorted(finalizers.items())))
        else:
            put("NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers",
                "All content-preserving finalizers finished")
        if not changed:
            return
        body = dict(ns)
        body["status"] = {**(ns.get("status") or {}), "conditions": conditions}
        try:
            await self.client.update(NAMESPACES, body, name=m.name(ns), subresource="status")
        except StatusError as err:
            if err.code not in (404, 409):
                raise

    async def _finalize(self, name: str) -> None:
        try:
            latest = await self.client.get(NAMESPACES, name)
        except StatusError as err:
            if err.code == 404:
                return
            raise
        spec = latest.get("spec") or {}
        finalizers = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        latest["spec"] = {**spec, "finalizers": finalizers}
        try:
            await self.client.update(NAMESPACES, latest, name=name, subresource="finalize")
        except StatusError as err:
            if err.code != 404:
                raise
        log.info("namespace %s finalized", name, extra={"event": "namespace_finalized", "namespace": name})
