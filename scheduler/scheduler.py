"""The scheduler's I/O: informers feed the cache and the queue; the loop decides, binds, reports.

Informers (pods, nodes, priority classes, PVCs, PVs, namespaces) run all the time, so a standby
replica has a warm cache; the scheduling loop runs only while leading (``lead``). Per pod:

1. pop the most important pending pod; re-read it from the informer (skip it if it was bound,
   deleted or is being bound);
2. decide (``core.Algorithm``); on success *assume* the pod onto the node in the cache and send
   the binding (``POST pods/{name}/binding``) in the background, at most ``bind_concurrency`` at
   once; the next pod is decided meanwhile and already sees the assumed one;
3. a pod that fits nowhere may preempt lower-priority pods (they are deleted and the pod is
   nominated to their node); either way it gets ``PodScheduled=False/Unschedulable`` and a
   ``FailedScheduling`` event and waits in the queue for an event that could help it.

The API server accepts a pod's binding once (a second gets 409): only a 201 is logged as bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.events import NORMAL, WARNING, EventRecorder
from apiclient.informer import Informer
from apiclient.rest import (NAMESPACES, NODES, PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES, PODS, PRIORITY_CLASSES,
                            APIConnectionError, RESTClient)

from . import plugins as P
from . import preemption
from .cache import SchedulerCache, pod_key
from .core import Algorithm, FitError
from .framework import NodeSelector, PodInfo
from .metrics import Metrics
from .queue import QueuedPod, SchedulingQueue

log = logging.getLogger("scheduler")

Obj = dict[str, Any]
_TERMINAL = ("Succeeded", "Failed")
# Plugins whose verdict can change when an assigned pod appears or changes labels.
_POD_LABEL_PLUGINS = ("InterPodAffinity", "PodTopologySpread")


@dataclass(frozen=True)
class SchedulerConfig:
    scheduler_name: str = "default-scheduler"
    percentage_of_nodes_to_score: int = 0
    initial_backoff: float = 1.0
    max_backoff: float = 10.0
    bind_concurrency: int = 64
    scheduled_events: bool = True


def _node_signature(node: Obj) -> tuple[Any, ...]:
    """What of a node can change a scheduling verdict (heartbeats alone do not)."""
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return (repr((node.get("metadata") or {}).get("labels")), repr(spec.get("taints")), bool(spec.get("unschedulable")),
            repr(status.get("allocatable") or status.get("capacity")), ready)


def _spec_changed(old: Obj, new: Obj) -> bool:
    """Whether a pending pod changed in a way that could change its verdict (our own status writes do not)."""
    if old.get("spec") != new.get("spec"):
        return True
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return any(om.get(k) != nm.get(k) for k in ("labels", "annotations", "deletionTimestamp", "uid"))


class Scheduler:
    def __init__(self, client: RESTClient, config: SchedulerConfig, *, metrics: Metrics | None = None,
                 recorder: EventRecorder | None = None) -> None:
        self.client = client
        self.config = config
        self.metrics = metrics or Metrics()
        self.recorder = recorder or EventRecorder(client, component=config.scheduler_name)
        self.pods = Informer(client, PODS)
        self.nodes = Informer(client, NODES)
        self.priority_classes = Informer(client, PRIORITY_CLASSES)
        self.pvcs = Informer(client, PERSISTENT_VOLUME_CLAIMS)
        self.pvs = Informer(client, PERSISTENT_VOLUMES)
        self.namespaces = Informer(client, NAMESPACES)
        self.informers = [self.pods, self.nodes, self.priority_classes, self.pvcs, self.pvs, self.namespaces]
        self.cache = SchedulerCache(self.priority_of)
        self.algorithm = Algorithm(self.cache, volume_lookup=self.volume_lookup,
                                   percentage_of_nodes_to_score=config.percentage_of_nodes_to_score)
        self.queue: SchedulingQueue | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bind_slots = asyncio.Semaphore(config.bind_concurrency)
        self.scheduled = 0
        self._wire()
        self.metrics.events_dropped.set_function(lambda: self.recorder.dropped)
        self.metrics.watch_queue(lambda: self.queue.sizes if self.queue is not None else {})
        self.metrics.watch_cache(lambda: {"nodes": len(self.cache.node_names), "pods": len(self.cache.pods),
                                          "assumed_pods": len(self.cache.assumed)})

    # ------------------------------------------------------------------ lookups

    def priority_of(self, pod: Obj) -> int:
        """``spec.priority``, or the value of its PriorityClass (or the global default) if the API server left it unset."""
        spec = pod.get("spec") or {}
        value = spec.get("priority")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        name = spec.get("priorityClassName")
        if name:
            pc = self.priority_classes.get(name)
            return int((pc or {}).get("value") or 0)
        for pc in self.priority_classes.list():
            if pc.get("globalDefault"):
                return int(pc.get("value") or 0)
        return 0

    def volume_lookup(self, namespace: str, claim: str) -> tuple[str | None, NodeSelector | None]:
        pvc = self.pvcs.get(f"{namespace}/{claim}")
        if pvc is None:
            return f'persistentvolumeclaim "{claim}" not found', None
        if (pvc.get("metadata") or {}).get("deletionTimestamp"):
            return f'persistentvolumeclaim "{claim}" is being deleted', None
        volume = (pvc.get("spec") or {}).get("volumeName")
        if not volume:
            return P.R_UNBOUND_PVC, None
        pv = self.pvs.get(volume)
        if pv is None:
            return "pvc(s) bound to non-existent pv(s)", None
        required = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required"))
        return None, NodeSelector(required) if required else None

    def responsible(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName") or "default-scheduler") == self.config.scheduler_name

    @staticmethod
    def _pending(pod: Obj) -> bool:
        return (not (pod.get("spec") or {}).get("nodeName") and not (pod.get("metadata") or {}).get("deletionTimestamp")
                and (pod.get("status") or {}).get("phase") not in _TERMINAL)

    # ------------------------------------------------------------------ events

    def _wire(self) -> None:
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        self.nodes.add_event_handler(on_add=self._node_added, on_update=self._node_updated,
                                     on_delete=lambda n: self.cache.remove_node(m.name(n)))
        for inf in (self.pvcs, self.pvs):
            inf.add_event_handler(on_add=lambda _o: self._move(("VolumeBinding",)),
                                  on_update=lambda _o, _n: self._move(("VolumeBinding",)))
        self.namespaces.add_event_handler(on_add=self.cache.set_namespace, on_delete=self.cache.remove_namespace,
                                          on_update=self._namespace_updated)

    def _move(self, plugins: tuple[str, ...] | None) -> None:
        if self.queue is not None:
            self.queue.move(plugins)

    def _queue_pending(self, pod: Obj) -> None:
        key = pod_key(pod)
        if self.queue is None or self.cache.is_assumed(key):
            return
        if self._pending(pod) and self.responsible(pod):
            self.queue.update(key, self.priority_of(pod))
        else:
            self.queue.delete(key)
        nominated = (pod.get("status") or {}).get("nominatedNodeName")
        if nominated and self._pending(pod):
            self.cache.set_nominated(PodInfo(pod, self.priority_of(pod)), nominated)

    def _pod_added(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self.cache.set_pod(pod)
            self._move(_POD_LABEL_PLUGINS)
        else:
            self._queue_pending(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if (new.get("spec") or {}).get("nodeName"):
            key = pod_key(new)
            if self.queue is not None and not (old.get("spec") or {}).get("nodeName"):
                self.queue.delete(key)
            self.cache.set_pod(new)
            if (new.get("status") or {}).get("phase") in _TERMINAL and \
                    (old.get("status") or {}).get("phase") not in _TERMINAL:
                self._move(None)  # its resources are free
            elif m.labels(old) != m.labels(new) or not (old.get("spec") or {}).get("nodeName"):
                self._move(_POD_LABEL_PLUGINS)
        elif _spec_changed(old, new):
            self._queue_pending(new)
        elif (new.get("status") or {}).get("nominatedNodeName") and self._pending(new):
            self.cache.set_nominated(PodInfo(new, self.priority_of(new)), new["status"]["nominatedNodeName"])

    def _pod_deleted(self, pod: Obj) -> None:
        key = pod_key(pod)
        was_placed = key in self.cache.pods
        self.cache.remove_pod(pod)
        if self.queue is not None:
            self.queue.delete(key)
            if was_placed:
                self._move(None)

    def _node_added(self, node: Obj) -> None:
        self.cache.set_node(node)
        self._move(None)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self.cache.set_node(new)
        if _node_signature(old) != _node_signature(new):
            self._move(None)

    def _namespace_updated(self, old: Obj, new: Obj) -> None:
        self.cache.set_namespace(new)
        if m.labels(old) != m.labels(new):
            self._move(("InterPodAffinity",))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for inf in self.informers:
            inf.start()
        self.recorder.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        results = await asyncio.gather(*(inf.wait_for_sync(timeout) for inf in self.informers))
        return all(results)

    @property
    def synced(self) -> bool:
        return all(inf.has_synced for inf in self.informers)

    async def stop(self) -> None:
        await self.recorder.stop()
        for inf in self.informers:
            await inf.stop()

    async def lead(self) -> None:
        """Schedule until cancelled (the leader task)."""
        await self.wait_for_sync()
        queue = SchedulingQueue(initial_backoff=self.config.initial_backoff, max_backoff=self.config.max_backoff)
        self.queue = queue
        for pod in self.pods.list():
            self._queue_pending(pod)
        log.info("scheduling", extra={"event": "scheduling_started", "pending": queue.sizes["active"],
                                      "nodes": len(self.cache.node_names)})
        try:
            while True:
                qp = await queue.pop()
                await self._bind_slots.acquire()
                try:
                    launched = self.schedule_one(qp)
                except Exception:  # noqa: BLE001 - a bug for one pod must not stop scheduling
                    log.exception("scheduling %s failed", qp.key)
                    self.metrics.attempts.labels("error").inc()
                    queue.requeue_backoff(qp)
                    launched = False
                if not launched:
                    self._bind_slots.release()
                await asyncio.sleep(0)  # let watch events and binding answers in
        finally:
            self.queue = None
            queue.close()
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Bindings we never saw confirmed are forgotten; the informer will show what really happened.
            for key in list(self.cache.assumed):
                self.cache.forget(key)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ one pod

    def schedule_one(self, qp: QueuedPod) -> bool:
        """Decide for one pod; True if a binding was launched (it holds a bind slot)."""
        queue = self.queue
        assert queue is not None
        pod = self.pods.get(qp.key)
        if pod is None or not self._pending(pod) or not self.responsible(pod) or self.cache.is_assumed(qp.key):
            queue.done(qp.key)
            return False
        pi = PodInfo(pod, self.priority_of(pod))
        started = time.perf_counter()
        try:
            result = self.algorithm.schedule(pi)
        except FitError as err:
            self.metrics.attempt_duration.labels("unschedulable").observe(time.perf_counter() - started)
            self.metrics.attempts.labels("unschedulable").inc()
            self._unschedulable(qp, pi, err)
            return False
        self.metrics.attempt_duration.labels("scheduled").observe(time.perf_counter() - started)
        self.cache.assume(pi, result.node)
        queue.done(qp.key)
        self._spawn(self._bind(pi, result.node, qp))
        return True

    async def _bind(self, pi: PodInfo, node: str, qp: QueuedPod) -> None:
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pi.name, "namespace": pi.namespace,
                                                                    "uid": pi.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        started = time.perf_counter()
        try:
            await self.client.create(PODS, body, namespace=pi.namespace, name=pi.name, subresource="binding")
        except StatusError as err:
            self.cache.forget(pi.key)
            self.metrics.bindings.labels("conflict" if err.code == 409 else "error").inc()
            self.metrics.attempts.labels("error").inc()
            log.warning("binding rejected", extra={"event": "bind_rejected", "pod": pi.key, "node": node,
                                                   "code": err.code, "reason": err.reason, "detail": err.message})
            if err.code not in (404, 409) and self.queue is not None:
                self.recorder.event(pi.pod, WARNING, "FailedScheduling", f"Binding rejected: {err.message}")
                self.queue.requeue_backoff(qp)
            return
        except (APIConnectionError, asyncio.TimeoutError) as exc:
            self.cache.forget(pi.key)
            self.metrics.bindings.labels("error").inc()
            self.metrics.attempts.labels("error").inc()
            log.warning("binding failed", extra={"event": "bind_failed", "pod": pi.key, "node": node, "error": repr(exc)})
            if self.queue is not None:
                self.queue.requeue_backoff(qp)
            return
        finally:
            self._bind_slots.release()
        self.cache.finish_binding(pi.key)
        now = time.perf_counter()
        self.metrics.binding_duration.observe(now - started)
        self.metrics.bindings.labels("success").inc()
        self.metrics.attempts.labels("scheduled").inc()
        self.metrics.e2e.observe(asyncio.get_running_loop().time() - qp.added)
        self.scheduled += 1
        log.info("bound", extra={"event": "bound", "pod": pi.key, "uid": pi.uid, "node": node})
        if self.config.scheduled_events:
            self.recorder.event(pi.pod, NORMAL, "Scheduled", f"Successfully assigned {pi.key} to {node}")

    # ------------------------------------------------------------------ failures

    def _unschedulable(self, qp: QueuedPod, pi: PodInfo, err: FitError) -> None:
        diagnosis = err.diagnosis
        nominated = ""
        if diagnosis.node_reasons:
            why_not = preemption.eligible(pi, self.cache)
            if why_not is None:
                candidate, summary = preemption.find_candidate(self.cache, pi, diagnosis, self.volume_lookup)
                if candidate is not None:
                    nominated = candidate.node
                    self._preempt(pi, candidate)
                else:
                    diagnosis.preemption = summary
            else:
                diagnosis.preemption = f" preemption: {why_not}"
        message = diagnosis.message()
        assert self.queue is not None
        self.queue.requeue_unschedulable(qp, diagnosis.unschedulable_plugins())
        log.info("unschedulable", extra={"event": "unschedulable", "pod": pi.key, "detail": message,
                                         "nominated": nominated})
        self.recorder.event(pi.pod, WARNING, "FailedScheduling", message)
        self._spawn(self._set_unschedulable(pi, message, nominated))

    async def _set_unschedulable(self, pi: PodInfo, message: str, nominated: str) -> None:
        status = pi.pod.get("status") or {}
        current = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        unchanged = (current is not None and current.get("status") == "False"
                     and current.get("reason") == "Unschedulable" and current.get("message") == message)
        if unchanged and (not nominated or status.get("nominatedNodeName") == nominated):
            return
        patch: dict[str, Any] = {"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": (current or {}).get("lastTransitionTime") if current and current.get("status") == "False"
            else m.now_rfc3339()}]}}
        if nominated:
            patch["status"]["nominatedNodeName"] = nominated
        try:
            await self.client.patch(PODS, pi.name, patch, namespace=pi.namespace, subresource="status",
                                    patch_type="strategic")
        except (StatusError, APIConnectionError) as exc:
            if not isinstance(exc, StatusError) or exc.code != 404:
                log.warning("could not update the status of %s: %r", pi.key, exc)

    def _preempt(self, pi: PodInfo, candidate: preemption.Candidate) -> None:
        self.metrics.preemption_attempts.inc()
        self.metrics.preemption_victims.observe(len(candidate.victims))
        self.cache.set_nominated(pi, candidate.node)
        log.info("preempting", extra={"event": "preempt", "pod": pi.key, "node": candidate.node,
                                      "victims": [v.key for v in candidate.victims]})
        for victim in candidate.victims:
            self.recorder.event(victim.pod, NORMAL, "Preempted", f"Preempted by {pi.key} on node {candidate.node}")
            self._spawn(self._evict(victim))

    async def _evict(self, victim: PodInfo) -> None:
        condition = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                     "message": f"{self.config.scheduler_name}: preempting to accommodate a higher priority pod",
                     "lastTransitionTime": m.now_rfc3339()}
        try:
            await self.client.patch(PODS, victim.name, {"status": {"conditions": [condition]}},
                                    namespace=victim.namespace, subresource="status", patch_type="strategic")
            await self.client.delete(PODS, victim.name, namespace=victim.namespace,
                                     preconditions={"uid": victim.uid})
        except StatusError as err:
            if err.code not in (404, 409):
                log.warning("could not evict %s: %s", victim.key, err.message)
        except APIConnectionError as exc:
            log.warning("could not evict %s: %r", victim.key, exc)
