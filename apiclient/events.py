"""Event recorder: core/v1 Events about objects, written in the background, with count aggregation.

``recorder.event(pod, "Warning", "FailedScheduling", "0/3 nodes are available: ...")`` returns at
once; writer tasks create the Event. The same object, type, reason and message again does not
make a new Event: the existing one gets ``count`` + 1 and a new ``lastTimestamp`` (a merge patch),
as client-go's event correlator does, so a pod retried a hundred times shows one line with
``x100`` in ``kubectl describe``. Bursts of the same event are folded into one write.

Events are best effort, as upstream: when the API is slow and too many are pending, new ones are
dropped (and counted in ``dropped``) rather than slowing the component down — Normal events once
half the buffer is full, Warnings only when it is full.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from apimachinery import meta as m
from apimachinery.errors import StatusError

from .rest import EVENTS, APIConnectionError, RESTClient
from .workqueue import ItemExponentialFailureRateLimiter, ShutDown, WorkQueue

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
_MAX_ATTEMPTS = 3

EventKey = tuple[str, str, str, str, str, str, str]  # component, uid, kind, namespace, name, reason, message


def object_reference(obj: Mapping[str, Any]) -> dict[str, str]:
    """The ``involvedObject`` of an event about ``obj``."""
    ref = {"kind": str(obj.get("kind") or ""), "apiVersion": str(obj.get("apiVersion") or ""),
           "name": m.name(obj), "namespace": m.namespace(obj), "uid": m.uid(obj),
           "resourceVersion": m.resource_version(obj)}
    return {k: v for k, v in ref.items() if v}


@dataclass
class _Pending:
    ref: dict[str, str]
    type: str
    reason: str
    message: str
    first: str
    last: str
    count: int
    component: str
    attempts: int = 0


class EventSink(Protocol):
    """What records events: an EventRecorder, or one component's view of one (ComponentRecorder)."""

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ComponentRecorder:
    """One component's view of a shared recorder: its events name it as their source (as each
    controller of kube-controller-manager reports as e.g. ``deployment-controller``)."""

    recorder: EventRecorder
    component: str

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        self.recorder.event(obj, type, reason, message, component=self.component)


class EventRecorder:
    def __init__(self, client: RESTClient, *, component: str, host: str = "", workers: int = 2,
                 max_pending: int = 1000, cache_size: int = 4096) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.workers = workers
        self.max_pending = max_pending
        self.cache_size = cache_size
        self.dropped = 0
        self.written = 0
        self._pending: dict[EventKey, _Pending] = {}
        # Events we wrote: key -> (namespace, name, count), least recently used first.
        self._written: OrderedDict[EventKey, tuple[str, str, int]] = OrderedDict()
        self._queue: WorkQueue[EventKey] = WorkQueue(rate_limiter=ItemExponentialFailureRateLimiter(0.2, 10.0),
                                                     name="events")
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._worker(), name=f"events-{i}") for i in range(self.workers)]

    async def stop(self, flush_timeout: float = 2.0) -> None:
        await self.flush(flush_timeout)
        self._queue.shutdown()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded event is written (or given up); False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def for_component(self, component: str) -> ComponentRecorder:
        return ComponentRecorder(self, component)

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str, *, component: str = "") -> None:
        """Record an event about ``obj`` (``type`` Normal or Warning); never blocks, never raises.

        ``component`` is the event's source, this recorder's own by default.
        """
        ref = object_reference(obj)
        component = component or self.component
        key: EventKey = (component, ref.get("uid", ""), ref.get("kind", ""), ref.get("namespace", ""),
                         ref.get("name", ""), reason, message)
        now = m.now_rfc3339()
        pending = self._pending.get(key)
        if pending is not None:
            pending.count += 1
            pending.last = now
        else:
            # Under pressure Normal events go first: the second half of the buffer is for Warnings.
            limit = self.max_pending if type != NORMAL else self.max_pending // 2
            if len(self._pending) >= limit:
                self.dropped += 1
                return
            self._pending[key] = _Pending(ref, type, reason, message[:1024], now, now, 1, component)
        self._idle.clear()
        self._queue.add(key)

    # ------------------------------------------------------------------ writing

    async def _worker(self) -> None:
        while True:
            try:
                key = await self._queue.get()
            except ShutDown:
                return
            try:
                await self._write(key)
            finally:
                self._queue.done(key)
                if not self._pending and not self._queue.processing:
                    self._idle.set()

    async def _write(self, key: EventKey) -> None:
        pending = self._pending.pop(key, None)
        if pending is None:
            return
        try:
            cached = self._written.get(key)
            if cached is not None:
                ns, name, count = cached
                try:
                    await self.client.patch(EVENTS, name, {"count": count + pending.count, "lastTimestamp": pending.last},
                                            namespace=ns)
                    self._remember(key, ns, name, count + pending.count)
                    self.written += 1
                    return
                except StatusError as err:
                    if err.code != 404:
                        raise
                    self._written.pop(key, None)  # expired or deleted: start a new one
            ns, name = await self._create(pending)
            self._remember(key, ns, name, pending.count)
            self.written += 1
            self._queue.forget(key)
        except (StatusError, APIConnectionError) as exc:
            pending.attempts += 1
            if pending.attempts >= _MAX_ATTEMPTS:
                log.warning("dropping event %s %s: %r", pending.reason, pending.ref.get("name"), exc)
                self.dropped += 1
                self._queue.forget(key)
                return
            merged = self._pending.get(key)
            if merged is not None:  # more of the same arrived meanwhile
                merged.count += pending.count
                merged.first = pending.first
            else:
                self._pending[key] = pending
            self._queue.add_rate_limited(key)

    async def _create(self, p: _Pending) -> tuple[str, str]:
        ns = p.ref.get("namespace") or "default"
        name = f"{p.ref.get('name', 'unknown')}.{time.time_ns():x}"
        body = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
                "involvedObject": p.ref, "reason": p.reason, "message": p.message, "type": p.type,
                "source": {"component": p.component, **({"host": self.host} if self.host else {})},
                "firstTimestamp": p.first, "lastTimestamp": p.last, "count": p.count,
                "reportingComponent": p.component, "reportingInstance": self.host or p.component}
        created = await self.client.create(EVENTS, body, namespace=ns)
        return ns, m.name(created) or name

    def _remember(self, key: EventKey, ns: str, name: str, count: int) -> None:
        self._written[key] = (ns, name, count)
        self._written.move_to_end(key)
        while len(self._written) > self.cache_size:
            self._written.popitem(last=False)
