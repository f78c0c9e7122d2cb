"""StatefulSet controller: pods with stable names and storage, started and stopped in order.

Pod *i* is ``<sts>-<i>`` (hostname the same, subdomain ``serviceName``), labelled with its name, its
index and its ``controller-revision-hash``; each ``volumeClaimTemplates`` entry gives it the claim
``<template>-<sts>-<i>``, created before the pod and never deleted with it (unless
``persistentVolumeClaimRetentionPolicy`` says ``Delete``: the claim is then owned by the StatefulSet
or, for ``whenScaled``, by the pod).

``OrderedReady`` (default): pod *i* is created only when 0..i-1 are Running and Ready; scale-down
removes the highest ordinal first, one at a time, only while all others are Running and Ready; a failed
pod is deleted and recreated under the same name. ``Parallel`` does all of it at once.

``RollingUpdate``: from the highest ordinal down to ``partition``, the first pod not at the update
revision is deleted (and recreated from the new template); the next waits until it is Running and
Ready. Pods below the partition are recreated from the current revision's template. ``OnDelete`` only
recreates pods people delete. The revisions live in ControllerRevisions (``kubectl rollout history``).
Status: replicas, ready/available/current/updated replicas, currentRevision/updateRevision,
observedGeneration.

Names make creation idempotent: a create that finds the pod already there (our cache was behind)
answers 409 and is simply not repeated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.events import NORMAL, WARNING
from apiclient.informer import INDEX_CONTROLLER_UID
from apiclient.rest import PERSISTENT_VOLUME_CLAIMS, PODS, resource

from . import podutil as pu
from .context import BaseController, ChildEvents, ControllerContext
from .history import CONTROLLER_REVISIONS, REVISION_HASH_LABEL, ensure_revision, owned_revisions, truncate
from .podcontrol import delete_pod, namespace_terminating

log = logging.getLogger("controllers.statefulset")

Obj = dict[str, Any]
STATEFULSETS = resource("statefulsets", "apps")
KIND = "StatefulSet"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def ordinal_of(sts_name: str, pod_name: str) -> int | None:
    match = re.fullmatch(re.escape(sts_name) + r"-(\d+)", pod_name)
    return int(match.group(1)) if match else None


def running_and_ready(pod: Mapping[str, Any]) -> bool:
    return pu.phase(pod) == "Running" and pu.is_pod_ready(pod) and not pu.is_terminating(pod)


def claim_name(template: Mapping[str, Any], sts: Mapping[str, Any], ordinal: int) -> str:
    return f"{m.name(template)}-{m.name(sts)}-{ordinal}"


class StatefulSetController(BaseController):
    name: ClassVar[str] = "statefulset"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.sets = ctx.informer(STATEFULSETS)
        self.pods = ctx.informer(PODS)
        self.claims = self.uses(ctx.informer(PERSISTENT_VOLUME_CLAIMS))
        self.revisions = self.uses(ctx.informer(CONTROLLER_REVISIONS))
        self.children = ChildEvents(self.sets, KIND, self._enqueue)
        self.on(self.sets, add=self._enqueue, update=lambda _o, n: self._enqueue(n))
        self.on(self.pods, add=self.children.add, update=self.children.update, delete=self.children.delete)

    def _enqueue(self, sts: Obj) -> None:
        self.queue.add(m.object_key(sts))

    # ------------------------------------------------------------------ building pods and claims

    def _template_for(self, sts: Obj, revision_hash: str, revisions: list[Obj]) -> Obj:
        current = (sts.get("spec") or {}).get("template") or {}
        for rev in revisions:
            if m.labels(rev).get(REVISION_HASH_LABEL) == revision_hash:
                t = m.deep_copy(((rev.get("data") or {}).get("spec") or {}).get("template") or current)
                t.pop("$patch", None)
                return t
        return m.deep_copy(current)

    def _pod(self, sts: Obj, ordinal: int, template: Obj, revision_hash: str) -> Obj:
        name = f"{m.name(sts)}-{ordinal}"
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.update({REVISION_HASH_LABEL: revision_hash, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)})
        pod = pu.pod_from_template(template, owner=sts, owner_ref=pu.owner_ref_of(sts, KIND, "apps/v1"), name=name)
        spec = pod["spec"]
        spec["hostname"] = name
        service = (sts.get("spec") or {}).get("serviceName")
        if service:
            spec["subdomain"] = service
        volumes = [v for v in spec.get("volumes") or []]
        for tpl in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            volumes = [v for v in volumes if v.get("name") != m.name(tpl)]
            volumes.append({"name": m.name(tpl), "persistentVolumeClaim": {"claimName": claim_name(tpl, sts, ordinal)}})
        if volumes:
            spec["volumes"] = volumes
        return pod

    async def _ensure_claims(self, sts: Obj, ordinal: int) -> None:
        spec = sts.get("spec") or {}
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        selector_labels = ((spec.get("selector") or {}).get("matchLabels") or {})
        for tpl in spec.get("volumeClaimTemplates") or []:
            name = claim_name(tpl, sts, ordinal)
            if self.claims.get_by_name(m.namespace(sts), name) is not None:
                continue
            meta = m.deep_copy(tpl.get("metadata") or {})
            body: Obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "metadata": {"name": name, "namespace": m.namespace(sts),
                                      "labels": {**(meta.get("labels") or {}), **selector_labels}},
                         "spec": m.deep_copy(tpl.get("spec") or {})}
            if meta.get("annotations"):
                body["metadata"]["annotations"] = meta["annotations"]
            if policy.get("whenDeleted") == "Delete":
                body["metadata"]["ownerReferences"] = [m.new_controller_ref(sts, api_version="apps/v1", kind=KIND)]
            try:
                await self.client.create(PERSISTENT_VOLUME_CLAIMS, body, namespace=m.namespace(sts))
            except StatusError as err:
                if err.code != 409:
                    raise

    async def _create(self, sts: Obj, ordinal: int, template: Obj, revision_hash: str) -> None:
        await self._ensure_claims(sts, ordinal)
        pod = self._pod(sts, ordinal, template, revision_hash)
        try:
            await self.client.create(PODS, pod, namespace=m.namespace(sts))
        except StatusError as err:
            if err.code == 409 or namespace_terminating(err):
                return  # there already (our cache is behind), or the namespace is going
            self.recorder.event(sts, WARNING, "FailedCreate",
                                f"create Pod {m.name(pod)} in StatefulSet {m.name(sts)} failed error: {err.message}")
            raise
        self.recorder.event(sts, NORMAL, "SuccessfulCreate",
                            f"create Pod {m.name(pod)} in StatefulSet {m.name(sts)} successful")

    async def _delete(self, sts: Obj, pod: Obj) -> None:
        if await delete_pod(self.client, pod):
            self.recorder.event(sts, NORMAL, "SuccessfulDelete",
                                f"delete Pod {m.name(pod)} in StatefulSet {m.name(sts)} successful")

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        cached = self.sets.get(key)
        if cached is None or pu.is_terminating(cached):
            return
        sts: Obj = m.deep_copy(cached)
        spec = sts.get("spec") or {}
        revisions = owned_revisions(self.revisions, sts)
        update_hash, _ = await ensure_revision(self.client, sts, kind=KIND, revisions=revisions)
        revisions = owned_revisions(self.revisions, sts)
        status = dict(sts.get("status") or {})
        current_hash = status.get("currentRevision") and str(status["currentRevision"]).rpartition("-")[2] or update_hash
        pods = [p for p in self.pods.by_index(INDEX_CONTROLLER_UID, m.uid(sts))
                if (pu.controlled_by_kind(p, KIND) or {}).get("uid") == m.uid(sts)]
        start = int(((spec.get("ordinals") or {}).get("start")) or 0)
        replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        wanted = range(start, start + replicas)
        by_ordinal: dict[int, Obj] = {}
        condemned: list[Obj] = []
        for p in pods:
            o = ordinal_of(m.name(sts), m.name(p))
            if o is not None and o in wanted:
                by_ordinal[o] = p
            else:
                condemned.append(p)
        condemned.sort(key=lambda p: ordinal_of(m.name(sts), m.name(p)) or -1, reverse=True)
        strategy = spec.get("updateStrategy") or {}
        partition = int(((strategy.get("rollingUpdate") or {}).get("partition")) or 0) \
            if strategy.get("type", "RollingUpdate") == "RollingUpdate" else 0
        await self._step(sts, wanted, by_ordinal, condemned, update_hash, current_hash, partition, revisions)
        await self._status(sts, pods, update_hash, current_hash, revisions)

    async def _step(self, sts: Obj, wanted: range, by_ordinal: dict[int, Obj], condemned: list[Obj],
                    update_hash: str, current_hash: str, partition: int, revisions: list[Obj]) -> None:
        spec = sts.get("spec") or {}
        ordered = (spec.get("podManagementPolicy") or "OrderedReady") != "Parallel"
        rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
        for o in wanted:
            pod = by_ordinal.get(o)
            if pod is not None and pu.phase(pod) == "Failed" and not pu.is_terminating(pod):
                await self._delete(sts, pod)  # recreated under the same name once gone
                if ordered:
                    return
                continue
            if pod is None:
                revision = current_hash if rolling and o < partition else update_hash
                if not rolling:
                    revision = update_hash
                template = self._template_for(sts, revision, revisions)
                await self._create(sts, o, template, revision)
                if ordered:
                    return
                continue
            if ordered and not running_and_ready(pod):
                return  # wait for it before anything else happens
        for pod in condemned:
            if pu.is_terminating(pod):
                if ordered:
                    return
                continue
            if ordered and not all(running_and_ready(p) for p in by_ordinal.values()):
                return
            await self._delete(sts, pod)
            if ordered:
                return
        if not rolling:
            return
        for o in sorted((o for o in wanted if o >= partition), reverse=True):
            pod = by_ordinal.get(o)
            if pod is None:
                return
            if m.labels(pod).get(REVISION_HASH_LABEL) != update_hash and not pu.is_terminating(pod):
                await self._delete(sts, pod)
                return
            if not running_and_ready(pod):
                return  # one pod at a time (maxUnavailable 1)

    async def _status(self, sts: Obj, pods: list[Obj], update_hash: str, current_hash: str,
                      revisions: list[Obj]) -> None:
        spec = sts.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        live = [p for p in pods if not pu.is_terminating(p)]
        updated = sum(1 for p in live if m.labels(p).get(REVISION_HASH_LABEL) == update_hash)
        current = sum(1 for p in live if m.labels(p).get(REVISION_HASH_LABEL) == current_hash)
        ready = sum(1 for p in live if running_and_ready(p))
        replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        name = m.name(sts)
        status: Obj = {**(sts.get("status") or {}), "observedGeneration": m.generation(sts), "replicas": len(live),
                       "readyReplicas": ready, "currentReplicas": current, "updatedReplicas": updated,
                       "availableReplicas": sum(1 for p in live if pu.is_pod_available(p, min_ready)),
                       "currentRevision": f"{name}-{current_hash}", "updateRevision": f"{name}-{update_hash}"}
        if updated == replicas and ready == replicas and len(live) == replicas:
            status["currentRevision"] = status["updateRevision"]
            status["currentReplicas"] = updated
        status.setdefault("collisionCount", 0)
        if status != (sts.get("status") or {}):
            body = dict(sts)
            body["status"] = status
            await self.client.update(STATEFULSETS, body, namespace=m.namespace(sts), subresource="status")
        in_use = {m.labels(p).get(REVISION_HASH_LABEL, "") for p in pods} | {update_hash, current_hash}
        await truncate(self.client, sts, revisions, in_use)
