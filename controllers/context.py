"""What every controller of the controller-manager shares: one API client, one informer per resource,
the event recorder, the options, and the base class that wires a controller to its informers.

Informers are shared (the pod informer feeds the ReplicaSet, Endpoints, Job, node-lifecycle ...
controllers) and run for the life of the process, so a standby replica keeps warm caches. The
controllers themselves exist only while this replica leads: each leadership term builds them
afresh (no expectations or queues survive from an earlier term), registers their handlers (the
cached objects arrive as adds, so every object is synced once at the start of a term) and removes
the handlers when the term ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apimachinery.selectors import LabelSelector
from apiclient.controller import Controller
from apiclient.events import EventRecorder, EventSink
from apiclient.informer import INDEX_NAMESPACE, STANDARD_INDEXERS, Informer
from apiclient.rest import Resource, RESTClient

from . import podutil as pu
from .metrics import Metrics

log = logging.getLogger("controllers")

CONFLICT_RETRY = 0.1  # seconds before a key whose write got 409 Conflict is synced again

Obj = dict[str, Any]


@dataclass(frozen=True)
class Options:
    """Tunables of the controllers (flags of ``pilot controller-manager``)."""

    workers: int = 5
    # Node lifecycle
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 40.0
    node_startup_grace_period: float = 60.0
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300
    # HPA
    hpa_sync_period: float = 15.0
    hpa_downscale_stabilization: float = 300.0
    hpa_tolerance: float = 0.1
    hpa_cpu_initialization_period: float = 300.0
    hpa_initial_readiness_delay: float = 30.0
    # Garbage collector / namespaces
    discovery_period: float = 30.0
    namespace_sync_period: float = 5.0
    # ReplicaSet
    burst_replicas: int = 500
    # Job: a failed pod is replaced after base * 2^(failures-1) seconds (at most 6 min)
    job_backoff_base: float = 10.0
    # Deployment: how often a progressing rollout is re-checked against its deadline
    deployment_resync: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class InformerFactory:
    """One informer per (resource, namespace, selectors), started on first use after ``start``."""

    def __init__(self, client: RESTClient, *, resync_period: float = 0.0) -> None:
        self.client = client
        self.resync_period = resync_period
        self._informers: dict[tuple[str, str, str, str, str, str], Informer] = {}
        self._started = False

    def informer(self, res: Resource, *, namespace: str = "", label_selector: str = "",
                 field_selector: str = "") -> Informer:
        key = (res.group, res.version, res.plural, namespace, label_selector, field_selector)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, res, namespace=namespace, label_selector=label_selector,
                           field_selector=field_selector, resync_period=self.resync_period,
                           indexers=dict(STANDARD_INDEXERS),
                           name=f"{res.plural}.{res.group}" if res.group else res.plural)
            self._informers[key] = inf
            if self._started:
                inf.start()
        return inf

    async def forget(self, res: Resource) -> None:
        """Stop and drop the informers of a resource type that is no longer served (a deleted CRD)."""
        for key in [k for k in self._informers if k[:3] == (res.group, res.version, res.plural)]:
            await self._informers.pop(key).stop()

    def start(self) -> None:
        self._started = True
        for inf in self._informers.values():
            inf.start()

    async def stop(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()), return_exceptions=True)
        self._started = False

    def all(self) -> list[Informer]:
        return list(self._informers.values())

    @property
    def synced(self) -> bool:
        return all(inf.has_synced for inf in self._informers.values())


@dataclass
class ControllerContext:
    client: RESTClient
    factory: InformerFactory
    recorder: EventRecorder
    options: Options = field(default_factory=Options)
    ca_data: bytes | None = None  # the cluster CA (PEM), published as kube-root-ca.crt
    metrics: Metrics = field(default_factory=Metrics)

    def informer(self, res: Resource, **kw: Any) -> Informer:
        return self.factory.informer(res, **kw)


# The event source of each controller, as kube-controller-manager's controllers report themselves.
_EVENT_SOURCES = {"endpoints": "endpoint-controller", "endpointslice": "endpoint-slice-controller",
                  "garbagecollector": "garbage-collector-controller",
                  "horizontalpodautoscaling": "horizontal-pod-autoscaler", "nodelifecycle": "node-controller",
                  "podgc": "pod-garbage-collector", "replicationcontroller": "replication-controller",
                  "root-ca-cert-publisher": "root-ca-cert-publisher", "serviceaccount": "service-account-controller"}


def event_source(controller: str) -> str:
    """``deployment`` → ``deployment-controller`` (the ``source.component`` of its events)."""
    return _EVENT_SOURCES.get(controller, f"{controller}-controller")


class BaseController:
    """A named controller: a work queue of keys drained by ``sync(key)`` in workers.

    Subclasses create their informers and handlers in ``__init__`` through ``self.on(...)`` and
    implement ``sync``. ``run`` waits for every informer they use, then processes keys until
    cancelled; ``close`` removes the handlers.
    """

    name: ClassVar[str] = ""
    default_workers: ClassVar[int] = 5

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recorder: EventSink = ctx.recorder.for_component(event_source(self.name))
        self.options = ctx.options
        self.loop = Controller(self.name, self._timed_sync,
                               workers=min(self.default_workers, ctx.options.workers) or 1)
        self.queue = self.loop.queue
        self._informers: list[Informer] = []
        self._handles: list[tuple[Informer, object]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, informer: Informer, *, add: Callable[[Obj], None] | None = None,
           update: Callable[[Obj, Obj], None] | None = None, delete: Callable[[Obj], None] | None = None) -> None:
        """Register handlers on ``informer`` (removed again by ``close``)."""
        if informer not in self._informers:
            self._informers.append(informer)
        self._handles.append((informer, informer.add_event_handler(on_add=add, on_update=update, on_delete=delete)))

    def off(self, informer: Informer) -> None:
        """Remove every handler registered on ``informer`` (its resource type went away)."""
        for inf, handle in [h for h in self._handles if h[0] is informer]:
            inf.remove_event_handler(handle)
        self._handles = [h for h in self._handles if h[0] is not informer]
        if informer in self._informers:
            self._informers.remove(informer)

    def uses(self, informer: Informer) -> Informer:
        """Declare an informer whose cache ``sync`` reads without handlers (waited for by ``run``)."""
        if informer not in self._informers:
            self._informers.append(informer)
        return informer

    def enqueue_key(self, key: str, delay: float = 0.0) -> None:
        if delay > 0:
            self.queue.add_after(key, delay)
        else:
            self.queue.add(key)

    async def sync(self, key: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _timed_sync(self, key: str) -> None:
        metrics = self.ctx.metrics
        started = time.perf_counter()
        try:
            await self.sync(key)
        except asyncio.CancelledError:
            raise
        except StatusError as err:
            if err.code != 409:
                metrics.syncs.labels(self.name, "error").inc()
                raise
            # A write lost a race (our cache was behind): the informer brings the news; look again soon.
            metrics.syncs.labels(self.name, "conflict").inc()
            self.queue.add_after(key, CONFLICT_RETRY)
        except BaseException:
            metrics.syncs.labels(self.name, "error").inc()
            raise
        else:
            metrics.syncs.labels(self.name, "success").inc()
        finally:
            metrics.sync_duration.labels(self.name).observe(time.perf_counter() - started)

    async def run(self) -> None:
        self.ctx.metrics.queue_depth.labels(self.name).set_function(lambda: len(self.queue))
        await self.loop.run(informers=self._informers, sync_timeout=None)

    def spawn(self, coro: Any, name: str = "") -> None:
        """A background task of this controller (cancelled by ``close``)."""
        task = asyncio.get_running_loop().create_task(coro, name=name or f"{self.name}-task")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for informer, handle in self._handles:
            informer.remove_event_handler(handle)
        self._handles.clear()
        self.queue.shutdown()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class ChildEvents:
    """Turns events of controlled objects (pods of a ReplicaSet, ReplicaSets of a Deployment) into syncs of
    their owners of one ``kind``, as upstream's add/update/delete handlers do:

    * a child with a controller reference syncs that owner (if it is in the cache with the same uid);
    * an orphan syncs every owner whose selector matches it (one of them may adopt it);
    * a changed controller reference syncs the old owner too; a child seen terminating counts as deleted.

    ``on_created``/``on_deleted``/``on_updated`` see (owner, child) for bookkeeping such as expectations.
    """

    def __init__(self, owners: Informer, kind: str, enqueue: Callable[[Obj], None], *,
                 selector: Callable[[Mapping[str, Any]], LabelSelector] = pu.selector_of,
                 on_created: Callable[[Obj, Obj], None] | None = None,
                 on_deleted: Callable[[Obj, Obj], None] | None = None,
                 on_updated: Callable[[Obj, Obj, Obj], None] | None = None) -> None:
        self.owners = owners
        self.kind = kind
        self.enqueue = enqueue
        self.selector = selector
        self.on_created = on_created
        self.on_deleted = on_deleted
        self.on_updated = on_updated

    def resolve(self, namespace: str, ref: Mapping[str, Any] | None) -> Obj | None:
        """The owner ``ref`` points to, if it is of our kind and the cached object is that very one."""
        if ref is None or ref.get("kind") != self.kind:
            return None
        owner = self.owners.get_by_name(namespace, str(ref.get("name") or ""))
        if owner is None or m.uid(owner) != ref.get("uid"):
            return None
        return owner

    def owner_of(self, child: Mapping[str, Any]) -> Obj | None:
        return self.resolve(m.namespace(child), m.controller_ref(child))

    def selecting(self, child: Mapping[str, Any]) -> list[Obj]:
        labels = m.labels(child)
        if not labels:
            return []
        return [o for o in self.owners.by_index(INDEX_NAMESPACE, m.namespace(child)) if self.selector(o).matches(labels)]

    def add(self, child: Obj) -> None:
        if pu.is_terminating(child):
            self.delete(child)
            return
        if m.controller_ref(child) is not None:
            owner = self.owner_of(child)
            if owner is not None:
                if self.on_created is not None:
                    self.on_created(owner, child)
                self.enqueue(owner)
            return
        for owner in self.selecting(child):
            self.enqueue(owner)

    def update(self, old: Obj, cur: Obj) -> None:
        if m.resource_version(old) == m.resource_version(cur):
            return  # a resync: nothing changed
        labels_changed = m.labels(old) != m.labels(cur)
        if pu.is_terminating(cur):
            self.delete(cur)
            if labels_changed:
                self.delete(old)
            return
        cur_ref, old_ref = m.controller_ref(cur), m.controller_ref(old)
        ref_changed = (cur_ref or {}).get("uid") != (old_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            previous = self.owner_of(old)
            if previous is not None:
                self.enqueue(previous)
        if cur_ref is not None:
            owner = self.owner_of(cur)
            if owner is not None:
                if self.on_updated is not None:
                    self.on_updated(owner, old, cur)
                self.enqueue(owner)
            return
        if labels_changed or ref_changed:
            for owner in self.selecting(cur):
                self.enqueue(owner)

    def delete(self, child: Obj) -> None:
        owner = self.owner_of(child)
        if owner is None:
            return
        if self.on_deleted is not None:
            self.on_deleted(owner, child)
        self.enqueue(owner)


class PodOwner(BaseController):
    """A controller whose objects own pods it creates and deletes: expectations, ``PodControl`` and the
    owner/pod event wiring (``watch_pods``) every such controller needs."""

    kind: ClassVar[str] = ""

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        from .expectations import Expectations
        from .podcontrol import PodControl

        self.expectations = Expectations()
        self.pod_control = PodControl(self.client, self.recorder, self.expectations)

    def enqueue(self, owner: Obj) -> None:
        self.queue.add(m.object_key(owner))

    def watch_pods(self, owners: Informer, pods: Informer, *,
                   selector: Callable[[Mapping[str, Any]], LabelSelector] = pu.selector_of,
                   on_updated: Callable[[Obj, Obj, Obj], None] | None = None,
                   pod_add: Callable[[Obj], None] | None = None,
                   pod_update: Callable[[Obj, Obj], None] | None = None) -> ChildEvents:
        """Owners' events sync them (a deleted owner's expectations are dropped); pods' events sync their
        owner and settle its expectations. ``pod_add``/``pod_update`` wrap the pod handlers if given."""
        children = ChildEvents(owners, self.kind, self.enqueue, selector=selector,
                               on_created=lambda o, _p: self.expectations.creation_observed(m.object_key(o)),
                               on_deleted=lambda o, p: self.expectations.deletion_observed(m.object_key(o),
                                                                                          m.object_key(p)),
                               on_updated=on_updated)

        def owner_gone(owner: Obj) -> None:
            self.expectations.forget(m.object_key(owner))
            self.enqueue(owner)

        self.on(owners, add=self.enqueue, update=lambda _o, n: self.enqueue(n), delete=owner_gone)
        self.on(pods, add=pod_add or children.add, update=pod_update or children.update, delete=children.delete)
        return children
