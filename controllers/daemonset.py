"""DaemonSet controller: one pod on every eligible node, rolled to a new template a few nodes at a time.

A node is eligible when the pod template's node selector and required node affinity match it and the
pod tolerates its ``NoSchedule``/``NoExecute`` taints — DaemonSet pods always tolerate the node
condition taints (not-ready, unreachable, pressure, unschedulable, network-unavailable), as upstream
adds them. A pod on a node whose ``NoExecute`` taints it does not tolerate is removed.

Pods are created bound to their node (``spec.nodeName``, plus the ``metadata.name`` node affinity
upstream uses) with the labels ``controller-revision-hash`` (the template's ControllerRevision) and
``pod-template-generation``. Per node: a missing pod is created, extra ones deleted (the oldest kept),
a failed one deleted to be replaced.

``RollingUpdate``: old-template pods are replaced while at most ``maxUnavailable`` of the eligible nodes
lack an available pod (unavailable old pods go first; with ``maxSurge`` the new pod starts beside the old
one and the old is deleted once the new is available). ``OnDelete`` replaces a pod only after someone
deletes it. Status: desired/current/misscheduled/ready/available/unavailable/updated numbers,
observedGeneration.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from apimachinery import meta as m
from apiclient.informer import INDEX_CONTROLLER_UID
from apiclient.rest import NODES, PODS, resource

from . import deploymentutil as du
from . import nodeutil as nu
from . import podutil as pu
from .context import ControllerContext, PodOwner
from .history import CONTROLLER_REVISIONS, REVISION_HASH_LABEL, ensure_revision, owned_revisions, truncate

log = logging.getLogger("controllers.daemonset")

Obj = dict[str, Any]
DAEMONSETS = resource("daemonsets", "apps")
KIND = "DaemonSet"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
# Tolerations every DaemonSet pod gets (upstream's AddOrUpdateDaemonPodTolerations).
DAEMON_TOLERATIONS = [
    {"key": nu.TAINT_NOT_READY, "operator": "Exists", "effect": nu.NO_EXECUTE},
    {"key": nu.TAINT_UNREACHABLE, "operator": "Exists", "effect": nu.NO_EXECUTE},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": nu.NO_SCHEDULE},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": nu.NO_SCHEDULE},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": nu.NO_SCHEDULE},
    {"key": nu.TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": nu.NO_SCHEDULE},
]
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": nu.NO_SCHEDULE}


def daemon_pod_spec(template: Mapping[str, Any]) -> Obj:
    spec = m.deep_copy((template.get("spec") or {}))
    tols = list(spec.get("tolerations") or [])
    extra = DAEMON_TOLERATIONS + ([HOST_NETWORK_TOLERATION] if spec.get("hostNetwork") else [])
    for t in extra:
        if not any(nu.tolerates(x, {"key": t["key"], "effect": t["effect"]}) for x in tols):
            tols.append(dict(t))
    spec["tolerations"] = tols
    return spec


def node_should_run(template: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[bool, bool]:
    """(should run a daemon pod there, may keep one that runs there)."""
    pod = {"spec": daemon_pod_spec(template)}
    if not nu.required_affinity_matches(pod, node):
        return False, False
    tols = nu.tolerations(pod)
    node_taints = nu.taints(node)
    if nu.untolerated(tols, node_taints, (nu.NO_EXECUTE,)):
        return False, False
    if nu.untolerated(tols, node_taints, (nu.NO_SCHEDULE,)):
        return False, True
    return True, True


def max_unavailable(ds: Mapping[str, Any], desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a RollingUpdate DaemonSet for ``desired`` nodes."""
    rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = du.int_or_percent(rolling.get("maxSurge", 0), desired, True)
    unavailable = du.int_or_percent(rolling.get("maxUnavailable", 1), desired, True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


class DaemonSetController(PodOwner):
    name: ClassVar[str] = "daemonset"
    kind: ClassVar[str] = KIND

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.daemonsets = ctx.informer(DAEMONSETS)
        self.pods = ctx.informer(PODS)
        self.nodes = ctx.informer(NODES)
        self.revisions = self.uses(ctx.informer(CONTROLLER_REVISIONS))
        self.children = self.watch_pods(self.daemonsets, self.pods)
        self.on(self.nodes, add=self._node, update=self._node_updated, delete=self._node)

    def _node(self, node: Obj) -> None:
        for ds in self.daemonsets.list():
            self.enqueue(ds)

    def _node_updated(self, old: Obj, cur: Obj) -> None:
        def shape(n: Obj) -> tuple[Any, ...]:
            return (m.labels(n), nu.taints(n), (n.get("spec") or {}).get("unschedulable"), nu.ready_status(n))
        if shape(old) != shape(cur):
            self._node(cur)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        cached = self.daemonsets.get(key)
        if cached is None:
            self.expectations.forget(key)
            return
        ds: Obj = m.deep_copy(cached)
        if pu.is_terminating(ds):
            return
        revisions = owned_revisions(self.revisions, ds)
        pod_hash, _ = await ensure_revision(self.client, ds, kind=KIND, revisions=revisions)
        template = (ds.get("spec") or {}).get("template") or {}
        pods = [p for p in self.pods.by_index(INDEX_CONTROLLER_UID, m.uid(ds))
                if (pu.controlled_by_kind(p, KIND) or {}).get("uid") == m.uid(ds)]
        by_node: dict[str, list[Obj]] = {}
        for p in pods:
            if not pu.is_terminating(p):
                by_node.setdefault(str((p.get("spec") or {}).get("nodeName") or ""), []).append(p)
        eligible: dict[str, Obj] = {}
        create_on: list[str] = []
        delete: list[Obj] = []
        for node in self.nodes.list():
            name = m.name(node)
            run, keep = node_should_run(template, node)
            here = sorted(by_node.get(name, []), key=lambda p: (m.creation_timestamp(p), m.name(p)))
            failed = [p for p in here if pu.phase(p) == "Failed"]
            delete.extend(failed)
            here = [p for p in here if p not in failed]
            if run:
                eligible[name] = node
            if run and not here:
                create_on.append(name)
            elif keep and len(here) > 1:
                surge_ok = len(here) == 2 and {m.labels(p).get(REVISION_HASH_LABEL) for p in here} != {pod_hash}
                if not surge_ok:
                    delete.extend(here[1:])
            elif not keep:
                delete.extend(here)
        # Pods bound to nodes that no longer exist.
        known = {m.name(n) for n in self.nodes.list()}
        delete.extend(p for n, ps in by_node.items() if n and n not in known for p in ps)
        if self.expectations.satisfied(key):
            if delete:
                await self.pod_control.delete(key, ds, delete)
            elif create_on:
                await self.pod_control.create(key, ds, [self._pod(ds, n, pod_hash) for n in create_on])
            elif ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
                await self._rolling_update(key, ds, eligible, by_node, pod_hash)
        await self._status(ds, eligible, by_node, pod_hash)
        in_use = {m.labels(p).get(REVISION_HASH_LABEL, "") for p in pods} | {pod_hash}
        await truncate(self.client, ds, owned_revisions(self.revisions, ds), in_use)

    def _pod(self, ds: Obj, node: str, pod_hash: str) -> Obj:
        template = m.deep_copy((ds.get("spec") or {}).get("template") or {})
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels[REVISION_HASH_LABEL] = pod_hash
        labels[TEMPLATE_GENERATION_LABEL] = str(m.generation(ds))
        template["spec"] = daemon_pod_spec(template)
        pod = pu.pod_from_template(template, owner=ds, owner_ref=pu.owner_ref_of(ds, KIND, "apps/v1"))
        spec = pod["spec"]
        spec["nodeName"] = node
        affinity = spec.setdefault("affinity", {})
        affinity["nodeAffinity"] = {**(affinity.get("nodeAffinity") or {}),
                                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                                        {"matchFields": [{"key": "metadata.name", "operator": "In",
                                                          "values": [node]}]}]}}
        return pod

    async def _rolling_update(self, key: str, ds: Obj, eligible: dict[str, Obj], by_node: dict[str, list[Obj]],
                              pod_hash: str) -> None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        at = pu.now()
        surge, max_unavail = max_unavailable(ds, len(eligible))
        unavailable = 0
        old_unavailable: list[Obj] = []
        old_available: list[tuple[str, Obj]] = []
        new_available_on: set[str] = set()
        for name in eligible:
            pods = by_node.get(name, [])
            new = [p for p in pods if m.labels(p).get(REVISION_HASH_LABEL) == pod_hash]
            old = [p for p in pods if p not in new]
            if any(pu.is_pod_available(p, min_ready, at) for p in new):
                new_available_on.add(name)
            if not any(pu.is_pod_available(p, min_ready, at) for p in pods):
                unavailable += 1
            for p in old:
                if pu.is_pod_available(p, min_ready, at):
                    old_available.append((name, p))
                else:
                    old_unavailable.append(p)
        if surge > 0:
            # New pods start beside old ones (up to maxSurge nodes); an old pod goes once its new one is available.
            done = [p for name, p in old_available if name in new_available_on] + \
                [p for p in old_unavailable if (p.get("spec") or {}).get("nodeName") in new_available_on]
            if done:
                await self.pod_control.delete(key, ds, done)
                return
            surging = sum(1 for name in eligible if len(by_node.get(name, [])) > 1)
            room = max(0, surge - surging)
            targets = [name for name, _ in old_available if len(by_node.get(name, [])) == 1][:room]
            if targets:
                await self.pod_control.create(key, ds, [self._pod(ds, n, pod_hash) for n in targets])
            return
        budget = max(0, max_unavail - unavailable)
        victims = old_unavailable + [p for _, p in old_available][:budget]
        if victims:
            await self.pod_control.delete(key, ds, victims)

    async def _status(self, ds: Obj, eligible: dict[str, Obj], by_node: dict[str, list[Obj]], pod_hash: str) -> None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        at = pu.now()
        scheduled = [n for n in eligible if by_node.get(n)]
        misscheduled = [n for n in by_node if n and n not in eligible]
        ready = sum(1 for n in scheduled if any(pu.is_pod_ready(p) for p in by_node[n]))
        available = sum(1 for n in scheduled if any(pu.is_pod_available(p, min_ready, at) for p in by_node[n]))
        updated = sum(1 for n in scheduled if any(m.labels(p).get(REVISION_HASH_LABEL) == pod_hash
                                                  for p in by_node[n]))
        status: Obj = {**(ds.get("status") or {}), "desiredNumberScheduled": len(eligible),
                       "currentNumberScheduled": len(scheduled), "numberMisscheduled": len(misscheduled),
                       "numberReady": ready, "numberAvailable": available,
                       "numberUnavailable": len(eligible) - available, "updatedNumberScheduled": updated,
                       "observedGeneration": m.generation(ds)}
        if not status["numberAvailable"]:
            status.pop("numberAvailable")
        if not status["numberUnavailable"]:
            status.pop("numberUnavailable")
        if status != (ds.get("status") or {}):
            body = dict(ds)
            body["status"] = status
            await self.client.update(DAEMONSETS, body, namespace=m.namespace(ds), subresource="status")
        if min_ready > 0:
            waits = [w for ps in by_node.values() for p in ps if (w := pu.seconds_until_available(p, min_ready, at))]
            if waits:
                self.queue.add_after(m.object_key(ds), min(waits) + 0.05)
