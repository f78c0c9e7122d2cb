"""ReplicaSet (and ReplicationController) controller: keep ``spec.replicas`` active pods, report status.

``sync(key)`` for one ReplicaSet, from the informer caches:

1. claim pods: active pods carrying our controller reference that still match the selector, plus
   matching orphans adopted (``RefManager``); non-matching ones are released;
2. only if the expectations of earlier syncs are met (every pod we created or deleted has been seen
   by the informer): create the missing pods in slow-start batches (1, 2, 4, ... so a broken
   template or an exhausted quota costs one failed request, not hundreds), or delete the surplus,
   choosing unscheduled, then pending, then not-ready, then most recently ready, then newest pods
   first; at most ``burst_replicas`` per sync;
3. write ``status`` (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas after
   ``minReadySeconds``, observedGeneration, the ReplicaFailure condition) when it changed, and
   requeue when a ready pod will become available.

ReplicationControllers share the code: their selector is a plain label map.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apimachinery.selectors import LabelSelector
from apiclient.informer import INDEX_NAMESPACE
from apiclient.rest import PODS, Resource, resource

from . import podutil as pu
from .context import ControllerContext, PodOwner
from .podcontrol import error_message
from .refmanager import RefManager

log = logging.getLogger("controllers.replicaset")

Obj = dict[str, Any]
REPLICASETS = resource("replicasets", "apps")
REPLICATION_CONTROLLERS = resource("replicationcontrollers")
STATUS_RETRIES = 2


class ReplicaSetController(PodOwner):
    name: ClassVar[str] = "replicaset"
    kind: ClassVar[str] = "ReplicaSet"
    api_version: ClassVar[str] = "apps/v1"
    resource: ClassVar[Resource] = REPLICASETS

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.owners = ctx.informer(self.resource)
        self.pods = ctx.informer(PODS)
        self.children = self.watch_pods(self.owners, self.pods, selector=self.selector, on_updated=self._updated)

    # ------------------------------------------------------------------ selectors

    def selector(self, owner: Mapping[str, Any]) -> LabelSelector:
        return pu.selector_of(owner)

    # ------------------------------------------------------------------ event handlers

    def _updated(self, owner: Obj, old: Obj, cur: Obj) -> None:
        min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and not pu.is_pod_ready(old) and pu.is_pod_ready(cur):
            # Available only minReadySeconds after becoming Ready: look again then.
            self.queue.add_after(m.object_key(owner), float(min_ready) + 0.05)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.forget(key)
            return
        needs_sync = self.expectations.satisfied(key) and not pu.is_terminating(owner)
        selector = self.selector(owner)
        ns = m.namespace(owner)
        owner_uid = m.uid(owner)
        candidates = [p for p in self.pods.by_index(INDEX_NAMESPACE, ns) if pu.is_pod_active(p)
                      and ((ref := m.controller_ref(p)) is None or ref.get("uid") == owner_uid)]
        manager = RefManager(self.client, owner=owner, owner_res=self.resource,
                             owner_ref=pu.owner_ref_of(owner, self.kind, self.api_version), selector=selector)
        pods = await manager.claim(PODS, candidates)
        manage_error: BaseException | None = None
        if needs_sync:
            try:
                await self.manage(owner, key, pods)
            except (StatusError, ConnectionError) as exc:
                manage_error = exc
        await self.update_status(owner, pods, manage_error)
        if manage_error is not None:
            raise manage_error

    async def manage(self, owner: Obj, key: str, pods: list[Obj]) -> None:
        want = int((owner.get("spec") or {}).get("replicas", 1) or 0)
        diff = len(pods) - want
        burst = self.options.burst_replicas
        if diff < 0:
            template = (owner.get("spec") or {}).get("template") or {}
            body = pu.pod_from_template(template, owner=owner,
                                        owner_ref=pu.owner_ref_of(owner, self.kind, self.api_version))
            await self.pod_control.create(key, owner, [body] * min(-diff, burst))
        elif diff > 0:
            await self.pod_control.delete(key, owner, sorted(pods, key=pu.deletion_rank)[:min(diff, burst)])

    # ------------------------------------------------------------------ status

    def calculate_status(self, owner: Obj, pods: list[Obj], manage_error: BaseException | None) -> Obj:
        spec = owner.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        at = pu.now()
        status: Obj = dict(owner.get("status") or {})
        status["replicas"] = len(pods)
        status["fullyLabeledReplicas"] = sum(1 for p in pods if pu.labels_match_template(p, template_labels))
        status["readyReplicas"] = sum(1 for p in pods if pu.is_pod_ready(p))
        status["availableReplicas"] = sum(1 for p in pods if pu.is_pod_available(p, min_ready, at))
        status["observedGeneration"] = m.generation(owner)
        conditions = [dict(c) for c in status.get("conditions") or []]
        if manage_error is not None:
            reason = "FailedDelete" if len(pods) > int(spec.get("replicas", 1) or 0) else "FailedCreate"
            if pu.get_condition(owner, "ReplicaFailure") is None:
                pu.set_condition(conditions, {"type": "ReplicaFailure", "status": "True", "reason": reason,
                                              "message": error_message(manage_error)})
        else:
            pu.remove_condition(conditions, "ReplicaFailure")
        if conditions:
            status["conditions"] = conditions
        else:
            status.pop("conditions", None)
        return status

    async def update_status(self, owner: Obj, pods: list[Obj], manage_error: BaseException | None) -> None:
        status = self.calculate_status(owner, pods, manage_error)
        if status != (owner.get("status") or {}):
            current = owner
            for attempt in range(STATUS_RETRIES + 1):
                body = dict(current)
                body["status"] = status
                try:
                    await self.client.update(self.resource, body, namespace=m.namespace(owner), name=m.name(owner),
                                             subresource="status")
                    break
                except StatusError as err:
                    if err.code == 404:
                        return
                    if err.code != 409 or attempt == STATUS_RETRIES:
                        raise
                current = await self.client.get(self.resource, m.name(owner), namespace=m.namespace(owner))
                if m.uid(current) != m.uid(owner):
                    return
                status["observedGeneration"] = m.generation(current)  # pods counted are still current
        # A ready pod that is not yet available: look again when it will be.
        min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0:
            at = pu.now()
            waits = [w for p in pods if (w := pu.seconds_until_available(p, min_ready, at)) is not None]
            if waits:
                self.queue.add_after(m.object_key(owner), min(waits) + 0.05)


class ReplicationControllerController(ReplicaSetController):
    name: ClassVar[str] = "replicationcontroller"
    kind: ClassVar[str] = "ReplicationController"
    api_version: ClassVar[str] = "v1"
    resource: ClassVar[Resource] = REPLICATION_CONTROLLERS

    def selector(self, owner: Mapping[str, Any]) -> LabelSelector:
        sel = (owner.get("spec") or {}).get("selector")
        if not isinstance(sel, Mapping) or not sel:
            return LabelSelector.nothing()
        return LabelSelector.from_set({str(k): str(v) for k, v in sel.items()})

