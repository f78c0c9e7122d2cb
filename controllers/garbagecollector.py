"""Garbage collector: deletes objects whose owners are gone, and carries out foreground and orphan deletion.

A graph of every object of every listable, watchable, deletable type (re-read from discovery, so
custom resources count) is kept from informer events: node = uid, edges = ``ownerReferences``.
Owners referenced but not (yet) observed are *virtual* nodes, kept only while they have dependents.

* **Background** (the default): an owner's deletion event puts its dependents on the
  *attempt-to-delete* queue. There each is re-read from the API and each of its owners is checked
  with a live GET (what the graph says may lag): no owner left → the object is deleted (with the
  propagation its own finalizers ask for); some owners left → the references to the missing ones are
  removed by a patch.
* **Foreground** (the API server added the ``foregroundDeletion`` finalizer and a deletion timestamp):
  the owner's dependents are deleted — those that have dependents of their own in the foreground
  too — and once no dependent with ``blockOwnerDeletion`` is left the finalizer is removed, so the
  API server finishes deleting the owner.
* **Orphan** (the ``orphan`` finalizer): the owner reference is removed from every dependent, then the
  finalizer, and the dependents stay.

Every delete carries uid and resourceVersion preconditions, so an object that changed since it was
judged (e.g. adopted by a new owner) is judged again instead. A restarted controller-manager rebuilds
the graph from its first lists: dependents whose owners vanished while it was down are found the same
way (their owner is a virtual node that the live GET shows absent).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.controller import Controller
from apiclient.informer import Informer
from apiclient.rest import Resource

from .context import CONFLICT_RETRY, BaseController, ControllerContext
from .discovery import APIResource, DiscoveryError, by_group_kind, discover

log = logging.getLogger("controllers.garbagecollector")

Obj = dict[str, Any]
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
# Never watched: very chatty and never owners of anything that matters (upstream ignores them too).
IGNORED = frozenset({("", "events"), ("events.k8s.io", "events")})
ABSENT_CACHE_SIZE = 10000


@dataclass
class Node:
    uid: str
    api_version: str
    kind: str
    namespace: str
    name: str
    owners: list[Obj] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    virtual: bool = False
    deleting: bool = False
    deleting_dependents: bool = False

    def ref_to(self, owner_uid: str) -> Obj | None:
        return next((r for r in self.owners if r.get("uid") == owner_uid), None)


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


class GarbageCollector(BaseController):
    name: ClassVar[str] = "garbagecollector"
    default_workers: ClassVar[int] = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.nodes: dict[str, Node] = {}
        self.absent: OrderedDict[str, None] = OrderedDict()
        self.mapping: dict[tuple[str, str], APIResource] = {}
        self.monitored: dict[tuple[str, str], Informer] = {}  # (group, plural) -> informer
        self.orphaner = Controller(f"{self.name}-orphan", self._orphan_sync, workers=2)
        self.unresolved: set[str] = set()  # objects with an owner of a type discovery did not list (yet)

    # ------------------------------------------------------------------ discovery and monitors

    async def refresh(self) -> None:
        """Re-read discovery; watch new deletable types, stop watching types that went away."""
        try:
            resources = await discover(self.client)
            partial = False
        except DiscoveryError as err:
            resources, partial = err.partial, True
        if partial:
            self.mapping.update(by_group_kind(resources))  # keep what a failed group version had
        else:
            self.mapping = by_group_kind(resources)
        wanted = {(r.resource.group, r.resource.plural): r for r in resources
                  if r.can("list", "watch", "delete") and (r.resource.group, r.resource.plural) not in IGNORED}
        for key, api in wanted.items():
            if key not in self.monitored:
                informer = self.ctx.informer(api.resource)
                self.monitored[key] = informer
                self.on(informer, add=self._observed, update=lambda _o, n: self._observed(n), delete=self._gone)
        # Objects judged while their owner's type was unknown (a CRD just created): judge them again.
        for uid in self.unresolved:
            self.attempt(uid)
        self.unresolved.clear()
        if not partial:
            for key in [k for k in self.monitored if k not in wanted]:
                informer = self.monitored.pop(key)
                self.off(informer)
                await self.ctx.factory.forget(informer.resource)

    async def _rediscover_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.discovery_period)
            try:
                await self.refresh()
            except (StatusError, ConnectionError) as exc:
                log.warning("garbage collector discovery failed: %r", exc)

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
                break
            except (StatusError, ConnectionError) as exc:
                log.warning("garbage collector discovery failed, retrying: %r", exc)
                await asyncio.sleep(2.0)
        self.spawn(self._rediscover_forever(), "gc-discovery")
        self.spawn(self.orphaner.run(informers=list(self.monitored.values())), "gc-orphan")
        await super().run()

    async def close(self) -> None:
        self.orphaner.queue.shutdown()
        await super().close()

    # ------------------------------------------------------------------ the graph

    def attempt(self, uid: str) -> None:
        self.queue.add(uid)

    def _node_for(self, obj: Mapping[str, Any]) -> Node:
        return Node(uid=m.uid(obj), api_version=str(obj.get("apiVersion") or ""), kind=str(obj.get("kind") or ""),
                    namespace=m.namespace(obj), name=m.name(obj))

    def _link(self, node: Node, refs: list[Obj]) -> None:
        for ref in refs:
            owner_uid = str(ref.get("uid") or "")
            if not owner_uid:
                continue
            owner = self.nodes.get(owner_uid)
            if owner is None:
                # Not observed (yet, or any more): a virtual node; the dependent is checked with a live GET.
                owner = Node(uid=owner_uid, api_version=str(ref.get("apiVersion") or ""), kind=str(ref.get("kind") or ""),
                             namespace=node.namespace, name=str(ref.get("name") or ""), virtual=True)
                self.nodes[owner_uid] = owner
                self.attempt(node.uid)
            elif owner.virtual:
                self.attempt(node.uid)
            owner.dependents.add(node.uid)

    def _unlink(self, node: Node, refs: list[Obj]) -> None:
        for ref in refs:
            owner = self.nodes.get(str(ref.get("uid") or ""))
            if owner is None:
                continue
            owner.dependents.discard(node.uid)
            if owner.deleting_dependents:
                self.attempt(owner.uid)  # one blocking dependent fewer
            if owner.virtual and not owner.dependents:
                del self.nodes[owner.uid]

    def _observed(self, obj: Obj) -> None:
        uid = m.uid(obj)
        if not uid:
            return
        refs = [dict(r) for r in m.owner_references(obj)]
        node = self.nodes.get(uid)
        if node is None:
            node = self._node_for(obj)
            self.nodes[uid] = node
            node.owners = refs
            self._link(node, refs)
        else:
            if node.virtual:
                node.virtual = False
                node.api_version, node.kind = str(obj.get("apiVersion") or node.api_version), \
                    str(obj.get("kind") or node.kind)
                node.namespace, node.name = m.namespace(obj), m.name(obj)
                self.absent.pop(uid, None)
            if refs != node.owners:
                old = node.owners
                node.owners = refs
                old_uids = {r.get("uid") for r in old}
                new_uids = {r.get("uid") for r in refs}
                self._unlink(node, [r for r in old if r.get("uid") not in new_uids])
                self._link(node, [r for r in refs if r.get("uid") not in old_uids])
                for r in refs:  # blockOwnerDeletion may have changed for a foreground owner
                    owner = self.nodes.get(str(r.get("uid") or ""))
                    if owner is not None and owner.deleting_dependents:
                        self.attempt(owner.uid)
        self._transitions(node, obj)

    def _transitions(self, node: Node, obj: Mapping[str, Any]) -> None:
        finalizers = m.finalizers(obj)
        was = node.deleting_dependents
        node.deleting = bool(m.deletion_timestamp(obj))
        node.deleting_dependents = node.deleting and FOREGROUND in finalizers
        if node.deleting and ORPHAN in finalizers:
            self.orphaner.queue.add(node.uid)
        if node.deleting_dependents:
            if not was:
                for dep in node.dependents:
                    self.attempt(dep)
            self.attempt(node.uid)

    def _gone(self, obj: Obj) -> None:
        uid = m.uid(obj)
        node = self.nodes.get(uid)
        if node is None or node.virtual:
            return
        self._unlink(node, node.owners)
        node.owners = []
        if node.dependents:
            # Keep it as a virtual node so its dependents stay indexed; they are orphans of a deleted owner now.
            node.virtual, node.deleting, node.deleting_dependents = True, False, False
            self._mark_absent(uid)
            for dep in node.dependents:
                self.attempt(dep)
        else:
            del self.nodes[uid]

    def _mark_absent(self, uid: str) -> None:
        self.absent[uid] = None
        self.absent.move_to_end(uid)
        while len(self.absent) > ABSENT_CACHE_SIZE:
            self.absent.popitem(last=False)

    # ------------------------------------------------------------------ API helpers

    def _api(self, api_version: str, kind: str) -> APIResource | None:
        return self.mapping.get((_group(api_version), kind))

    def _res(self, node: Node) -> Resource | None:
        api = self._api(node.api_version, node.kind)
        return api.resource if api is not None else None

    async def _get(self, node: Node) -> Obj | None:
        res = self._res(node)
        if res is None:
            return None
        try:
            obj = await self.client.get(res, node.name, namespace=node.namespace if res.namespaced else "")
        except StatusError as err:
            if err.code == 404:
                return None
            raise
        return obj if m.uid(obj) == node.uid else None

    async def _patch_metadata(self, node: Node, field: str, change: Callable[[Obj], list[Any] | None]) -> None:
        """Re-read the object and set ``metadata.<field>`` to ``change(latest)`` unless that is None; the patch
        carries the resourceVersion read, so a concurrent change makes it 409 and the key is retried."""
        res = self._res(node)
        if res is None:
            return
        latest = await self._get(node)
        if latest is None:
            return
        new = change(latest)
        if new is None:
            return
        patch = {"metadata": {field: new or None, "resourceVersion": m.resource_version(latest)}}
        try:
            await self.client.patch(res, node.name, patch, namespace=node.namespace if res.namespaced else "")
        except StatusError as err:
            if err.code != 404:
                raise

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        def change(latest: Obj) -> list[Any] | None:
            current = m.finalizers(latest)
            return [f for f in current if f != finalizer] if finalizer in current else None

        await self._patch_metadata(node, "finalizers", change)

    async def _remove_owner_refs(self, node: Node, owner_uids: set[str]) -> None:
        def change(latest: Obj) -> list[Any] | None:
            refs = [dict(r) for r in m.owner_references(latest)]
            kept = [r for r in refs if r.get("uid") not in owner_uids]
            return kept if len(kept) != len(refs) else None

        await self._patch_metadata(node, "ownerReferences", change)

    # ------------------------------------------------------------------ attempt to delete

    async def _classify(self, node: Node, refs: list[Obj]) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """(solid, dangling, waiting for dependents' deletion) owner references."""
        solid: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []
        for ref in refs:
            owner_uid = str(ref.get("uid") or "")
            if owner_uid in self.absent:
                dangling.append(ref)
                continue
            known = self.nodes.get(owner_uid)
            if known is not None and not known.virtual and not known.deleting:
                solid.append(ref)  # observed alive; its deletion event would bring us back here
                continue
            api = self._api(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
            if api is None:
                solid.append(ref)  # a type we cannot look up: never delete on a guess; retry after discovery
                self.unresolved.add(node.uid)
                continue
            ns = node.namespace if api.namespaced else ""
            if api.namespaced and not ns:
                dangling.append(ref)  # a cluster-scoped object cannot be owned by a namespaced one
                continue
            try:
                owner = await self.client.get(api.resource, str(ref.get("name") or ""), namespace=ns)
            except StatusError as err:
                if err.code != 404:
                    raise
                owner = None
            if owner is None or m.uid(owner) != owner_uid:
                self._mark_absent(owner_uid)
                dangling.append(ref)
            elif m.deletion_timestamp(owner) and FOREGROUND in m.finalizers(owner):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None or node.virtual:
            return
        if node.deleting and not node.deleting_dependents:
            return  # being deleted already
        latest = await self._get(node)
        if latest is None:
            return
        if m.deletion_timestamp(latest) and FOREGROUND in m.finalizers(latest):
            await self._deleting_dependents(node)
            return
        refs = [dict(r) for r in m.owner_references(latest)]
        if not refs:
            return
        solid, dangling, waiting = await self._classify(node, refs)
        if solid:
            if dangling or waiting:
                await self._remove_owner_refs(node, {str(r.get("uid")) for r in [*dangling, *waiting]})
            return
        if waiting and node.dependents:
            if any(self.nodes.get(d) is not None and self.nodes[d].deleting_dependents for d in node.dependents):
                await self._unblock_owner_refs(node)
            await self._delete(node, latest, "Foreground")
            return
        finalizers = m.finalizers(latest)
        policy = "Orphan" if ORPHAN in finalizers else "Foreground" if FOREGROUND in finalizers else "Background"
        await self._delete(node, latest, policy)

    async def _unblock_owner_refs(self, node: Node) -> None:
        """Break a possible cycle of foreground deletions: our references stop blocking our owners."""
        def change(latest: Obj) -> list[Any] | None:
            refs = [dict(r) for r in m.owner_references(latest)]
            if not any(r.get("blockOwnerDeletion") for r in refs):
                return None
            return [{**r, "blockOwnerDeletion": False} if r.get("blockOwnerDeletion") else r for r in refs]

        await self._patch_metadata(node, "ownerReferences", change)

    async def _delete(self, node: Node, latest: Obj, policy: str) -> None:
        res = self._res(node)
        if res is None:
            return
        log.info("deleting %s %s/%s (%s)", node.kind, node.namespace, node.name, policy,
                 extra={"event": "gc_delete", "uid": node.uid, "policy": policy})
        try:
            await self.client.delete(res, node.name, namespace=node.namespace if res.namespaced else "",
                                     propagation_policy=policy,
                                     preconditions={"uid": node.uid, "resourceVersion": m.resource_version(latest)})
        except StatusError as err:
            if err.code != 404:
                raise

    async def _deleting_dependents(self, node: Node) -> None:
        """Foreground: wait for the blocking dependents, then let the owner go."""
        blocking = [d for d in node.dependents if (dep := self.nodes.get(d)) is not None
                    and ((dep.ref_to(node.uid) or {}).get("blockOwnerDeletion") is True)]
        if not blocking:
            await self._remove_finalizer(node, FOREGROUND)
            return
        for d in blocking:
            dep = self.nodes.get(d)
            if dep is not None and not dep.deleting_dependents:
                self.attempt(d)

    # ------------------------------------------------------------------ orphaning

    async def _orphan_sync(self, key: str) -> None:
        try:
            await self._orphan(key)
        except StatusError as err:
            if err.code != 409:
                raise
            self.orphaner.queue.add_after(key, CONFLICT_RETRY)

    async def _orphan(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None or node.virtual:
            return
        results = await asyncio.gather(*(self._remove_owner_refs(self.nodes[d], {node.uid})
                                         for d in list(node.dependents) if d in self.nodes),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        await self._remove_finalizer(node, ORPHAN)
