"""Node lifecycle: notice dead nodes, taint them, and evict their pods so controllers replace them elsewhere.

A kubelet proves it is alive by renewing its Lease (``kube-node-lease/<node>``) and by posting node
status. Every sign of life is timed on our own monotonic clock when the informer delivers it (never by
comparing the kubelet's timestamps with our wall clock). A node silent for longer than
``--node-monitor-grace-period`` (40 s):

1. gets every condition (Ready, MemoryPressure, DiskPressure, PIDPressure) set to ``Unknown`` with
   reason ``NodeStatusUnknown`` ("Kubelet stopped posting node status."), and its pods are marked not
   Ready (so Services stop sending them traffic);
2. gets the taints ``node.kubernetes.io/unreachable`` ``NoExecute`` and ``NoSchedule`` (a node that
   reports ``Ready=False`` itself gets ``node.kubernetes.io/not-ready`` instead);
3. its pods are deleted once they have tolerated the NoExecute taint for their ``tolerationSeconds``
   — pods without a toleration for ``unreachable``/``not-ready`` get
   ``--default-unreachable-toleration-seconds``/``--default-not-ready-toleration-seconds`` (300 s),
   as the DefaultTolerationSeconds admission gives them upstream; a pod that tolerates the taint
   without a time limit stays. Their ReplicaSets (etc.) then create replacements, which the scheduler
   places on live nodes.

When the Lease is renewed again the unreachable taints are removed (the kubelet reports its real
conditions itself). Other NoExecute taints (set by people) evict untolerating pods too, like upstream's
taint manager.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.events import NORMAL
from apiclient.informer import INDEX_NODE_NAME
from apiclient.rest import LEASES, NODES, PODS

from . import nodeutil as nu
from . import podutil as pu
from .context import BaseController, ControllerContext
from .podcontrol import delete_pod

log = logging.getLogger("controllers.nodelifecycle")

Obj = dict[str, Any]
LEASE_NAMESPACE = "kube-node-lease"
WATCHED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


class NodeLifecycleController(BaseController):
    name: ClassVar[str] = "nodelifecycle"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.nodes = ctx.informer(NODES)
        self.leases = ctx.informer(LEASES, namespace=LEASE_NAMESPACE)
        self.pods = ctx.informer(PODS)
        self.alive_at: dict[str, float] = {}  # node -> loop time of the last sign of life we saw
        self._lease_seen: dict[str, str] = {}
        self._status_seen: dict[str, str] = {}
        # NoExecute taints without timeAdded (set by people): tolerations count from when we first saw them.
        self._taint_seen: dict[tuple[str, str, str], datetime] = {}
        self._registered: set[str] = set()  # nodes this controller announced (RegisteredNode)
        self.on(self.nodes, add=self._node, update=lambda _o, n: self._node(n), delete=self._node_gone)
        self.on(self.leases, add=self._lease, update=lambda _o, n: self._lease(n))
        self.on(self.pods, add=self._pod, update=lambda _o, n: self._pod(n))

    # ------------------------------------------------------------------ signs of life

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _alive(self, name: str) -> None:
        self.alive_at[name] = self._now()

    def _node(self, node: Obj) -> None:
        name = m.name(node)
        ready = nu.condition(node, "Ready") or {}
        beat = f"{ready.get('lastHeartbeatTime')}|{ready.get('status')}"
        if ready.get("reason") != "NodeStatusUnknown" and beat != self._status_seen.get(name):
            if name in self._status_seen:
                self._alive(name)  # a status the kubelet posted since we last looked
            self._status_seen[name] = beat
        self.queue.add(name)

    def _node_gone(self, node: Obj) -> None:
        self._registered.discard(m.name(node))
        for d in (self.alive_at, self._lease_seen, self._status_seen):
            d.pop(m.name(node), None)
        for key in [k for k in self._taint_seen if k[0] == m.name(node)]:
            del self._taint_seen[key]

    def _lease(self, lease: Obj) -> None:
        name = m.name(lease)
        renewed = str((lease.get("spec") or {}).get("renewTime") or "")
        if renewed and renewed != self._lease_seen.get(name):
            if name in self._lease_seen:
                self._alive(name)
            self._lease_seen[name] = renewed
            self.queue.add(name)

    def _pod(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and not pu.is_terminating(pod):
            n = self.nodes.get(node)
            if n is not None and any(t.get("effect") == nu.NO_EXECUTE for t in nu.taints(n)):
                self.queue.add(node)

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.options.node_monitor_period)
            for node in self.nodes.list():
                self.queue.add(m.name(node))

    async def run(self) -> None:
        self.spawn(self._monitor(), "node-monitor")
        await super().run()

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            return
        if key not in self._registered:
            # Upstream announces every node it starts to watch, after each start of the controller.
            self._registered.add(key)
            self.recorder.event(node, NORMAL, "RegisteredNode", f"Node {key} event: Registered Node {key} in Controller")
        now = self._now()
        grace = self.options.node_monitor_grace_period
        last = self.alive_at.setdefault(key, now)  # first sight: the grace period starts now
        silent = now - last > grace
        stale = nu.condition(node, "Ready") is None or any(
            (nu.condition(node, t) or {}).get("status") not in (None, "Unknown") for t in WATCHED_CONDITIONS)
        if silent and stale:
            node = await self._mark_unknown(node)
        elif not silent:
            self.queue.add_after(key, grace - (now - last) + 0.1)
        node = await self._reconcile_taints(node, silent)
        await self._evict(node)

    async def _mark_unknown(self, node: Obj) -> Obj:
        stamp = m.now_rfc3339()
        status = dict(node.get("status") or {})
        conditions = [dict(c) for c in status.get("conditions") or []]
        types = {c.get("type") for c in conditions}
        for c in conditions:
            if c.get("type") in WATCHED_CONDITIONS and c.get("status") != "Unknown":
                c.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                         lastTransitionTime=stamp)
        if "Ready" not in types:
            conditions.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.", "lastHeartbeatTime": stamp,
                               "lastTransitionTime": stamp})
        status["conditions"] = conditions
        body = {**node, "status": status}
        updated = await self.client.update(NODES, body, name=m.name(node), subresource="status")
        log.info("node %s is not responding", m.name(node),
                 extra={"event": "node_unknown", "node": m.name(node)})
        self.recorder.event(node, NORMAL, "NodeNotReady", f"Node {m.name(node)} status is now: NodeNotReady")
        await self._mark_pods_not_ready(m.name(node))
        return updated

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        stamp = m.now_rfc3339()
        for pod in self.pods.by_index(INDEX_NODE_NAME, node_name):
            if not pu.is_pod_ready(pod) or pu.is_terminating(pod):
                continue
            conditions = [dict(c) for c in (pod.get("status") or {}).get("conditions") or []]
            for c in conditions:
                if c.get("type") == "Ready":
                    c.update(status="False", lastTransitionTime=stamp)
            body = {**pod, "status": {**(pod.get("status") or {}), "conditions": conditions}}
            try:
                await self.client.update(PODS, body, namespace=m.namespace(pod), subresource="status")
            except StatusError as err:
                if err.code not in (404, 409):
                    raise

    def _wanted_taints(self, node: Obj, silent: bool) -> list[Obj]:
        """The lifecycle taints this node should carry now."""
        ready = nu.ready_status(node)
        if ready == "Unknown" and silent:
            key = nu.TAINT_UNREACHABLE
        elif ready == "False":
            key = nu.TAINT_NOT_READY
        else:
            return []
        return [{"key": key, "effect": nu.NO_SCHEDULE}, {"key": key, "effect": nu.NO_EXECUTE}]

    async def _reconcile_taints(self, node: Obj, silent: bool) -> Obj:
        ours = (nu.TAINT_UNREACHABLE, nu.TAINT_NOT_READY)
        current = nu.taints(node)
        wanted = self._wanted_taints(node, silent)
        kept = [t for t in current if t.get("key") not in ours
                or any(nu.same_taint(t, w) for w in wanted)]
        added = [dict(w) for w in wanted if not any(nu.same_taint(t, w) for t in kept)]
        if not added and len(kept) == len(current):
            return node
        stamp = m.now_rfc3339()
        for t in added:
            if t["effect"] == nu.NO_EXECUTE:
                t["timeAdded"] = stamp
        spec = dict(node.get("spec") or {})
        spec["taints"] = kept + added
        if not spec["taints"]:
            spec.pop("taints")
        body = {**node, "spec": spec}
        updated = await self.client.update(NODES, body, name=m.name(node))
        log.info("node %s taints: %s", m.name(node), [f"{t['key']}:{t['effect']}" for t in spec.get("taints", [])],
                 extra={"event": "node_taints", "node": m.name(node),
                        "added": [t["key"] for t in added], "removed": len(current) - len(kept)})
        return updated

    # ------------------------------------------------------------------ NoExecute eviction

    def _toleration_seconds(self, pod: Obj, taint: Obj) -> float | None:
        """How long ``pod`` may stay on a node with ``taint``: 0 = evict now, None = forever."""
        matching = nu.tolerating(nu.tolerations(pod), taint)
        if not matching:
            if taint.get("key") == nu.TAINT_UNREACHABLE:
                return float(self.options.default_unreachable_toleration_seconds)
            if taint.get("key") == nu.TAINT_NOT_READY:
                return float(self.options.default_not_ready_toleration_seconds)
            return 0.0
        limits = [t.get("tolerationSeconds") for t in matching]
        if any(v is None for v in limits):
            return None
        return float(max(0, min(int(v) for v in limits if v is not None)))

    async def _evict(self, node: Obj) -> None:
        no_execute = [t for t in nu.taints(node) if t.get("effect") == nu.NO_EXECUTE]
        now = pu.now()
        present = {(m.name(node), str(t.get("key") or ""), str(t.get("value") or "")) for t in no_execute}
        for key in [k for k in self._taint_seen if k[0] == m.name(node) and k not in present]:
            del self._taint_seen[key]
        if not no_execute:
            return
        next_check: float | None = None
        for pod in self.pods.by_index(INDEX_NODE_NAME, m.name(node)):
            if pu.is_terminating(pod) or pu.phase(pod) in ("Succeeded", "Failed"):
                continue
            deadline = None
            for taint in no_execute:
                seconds = self._toleration_seconds(pod, taint)
                if seconds is None:
                    continue
                added = pu.parse_time(taint.get("timeAdded")) or self._taint_seen.setdefault(
                    (m.name(node), str(taint.get("key") or ""), str(taint.get("value") or "")), now)
                at = added + timedelta(seconds=seconds)
                deadline = at if deadline is None else min(deadline, at)
            if deadline is None:
                continue
            wait = (deadline - now).total_seconds()
            if wait > 0:
                next_check = wait if next_check is None else min(next_check, wait)
                continue
            await self._delete_pod(pod, node)
        if next_check is not None:
            self.queue.add_after(m.name(node), next_check + 0.1)

    async def _delete_pod(self, pod: Obj, node: Obj) -> None:
        if not await delete_pod(self.client, pod):
            return
        log.info("evicted pod %s from node %s", m.object_key(pod), m.name(node),
                 extra={"event": "pod_evicted", "pod": m.object_key(pod), "node": m.name(node)})
        self.recorder.event(pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {m.object_key(pod)}")
