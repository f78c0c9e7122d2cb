"""One store watch per resource, fanned out to every API watch: the watch cache.

Each resource type keeps the current objects and a bounded window of recent events, fed by a
single list + watch on its key prefix (the kvstore client resumes that watch across store members
and we relist when history has been compacted). API watches are served from here:

* ``resourceVersion`` unset or "0": a synthetic ADDED for every current match, then live events;
* ``resourceVersion=N``: the buffered events after N, then live events; N older than the window
  is answered with 410 Expired, which makes informers relist.

Selectors are applied per watcher with Kubernetes' transition rules: an object that stops
matching is sent as DELETED, one that starts matching as ADDED. A watcher that cannot keep up
(its queue is full) is closed; clients re-watch from their last resourceVersion.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from apimachinery import errors
from apimachinery.registry import ResourceType
from kvstore.client import Compacted, EtcdClient, prefix_end

from .storage import Storage, resource_prefix

log = logging.getLogger(__name__)

Filter = Callable[[dict[str, Any]], bool]


@dataclass(slots=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED
    object: dict[str, Any]
    revision: int
    prev: dict[str, Any] | None


@dataclass(eq=False)
class Watcher:
    namespace: str
    accept: Filter
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(maxsize=2000))
    closed: bool = False
    after: int = 0  # only events newer than this revision (the client's resourceVersion)

    def offer(self, ev: Event) -> None:
        if self.closed or ev.revision <= self.after:
            return
        if self.namespace and ev.object.get("metadata", {}).get("namespace") != self.namespace:
            return
        now = self.accept(ev.object)
        before = ev.prev is not None and self.accept(ev.prev)
        if ev.type == "DELETED":
            out = ev if now else None
        elif now and before:
            out = ev
        elif now:
            out = Event("ADDED", ev.object, ev.revision, ev.prev)
        elif before:
            out = Event("DELETED", ev.object, ev.revision, ev.prev)
        else:
            out = None
        if out is None:
            return
        try:
            self.queue.put_nowait(out)
        except asyncio.QueueFull:
            self.close(discard=True)

    def bookmark(self, cache_revision: int, sent: int) -> int | None:
        """The resourceVersion a BOOKMARK may carry now, or None while events wait in the queue.

        A bookmark promises the client every event up to its revision. The cache's revision covers
        the events it offered to this watcher, which are delivered only once the queue is empty: a
        ``wait_for(queue.get())`` that times out in the same loop turn as an event is queued leaves
        that event queued, and a bookmark sent then would overtake it (a client that resumed from the
        bookmark would never see it).
        """
        if not self.queue.empty():
            return None
        return max(cache_revision, sent)

    def close(self, *, discard: bool = False) -> None:
        """End the stream after what is queued, or (``discard``, or no room left for the end marker)
        right after what was already sent.

        The backlog goes whole or not at all: the client resumes from the last resourceVersion it
        received, so dropping some queued events but delivering later ones would leave a gap it
        could not see.
        """
        if not self.closed:
            self.closed = True
            if discard or self.queue.full():
                while not self.queue.empty():
                    self.queue.get_nowait()
            self.queue.put_nowait(None)


class ResourceCache:
    def __init__(self, rt: ResourceType, storage: Storage, client: EtcdClient, *, window: int = 20000) -> None:
        self.rt = rt
        self.storage = storage
        self.client = client
        self.objects: dict[bytes, dict[str, Any]] = {}
        self.events: deque[Event] = deque(maxlen=window)
        self.revision = 0
        self.complete_from = 0  # events after this revision are all in the window
        self.watchers: set[Watcher] = set()
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"watchcache-{self.rt.group_resource}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for w in list(self.watchers):
            w.close()

    async def _run(self) -> None:
        prefix = resource_prefix(self.rt)
        end = prefix_end(prefix)
        while True:
            try:
                await self._relist(prefix, end)
                async for msg in self.client.watch(prefix, end, start_revision=self.revision + 1,
                                                   progress_notify=True):
                    for ev in msg.events:
                        self._apply(ev.type, ev.kv.key, ev.kv.value, ev.kv.mod_revision)
                    if msg.revision > self.revision and not msg.events:
                        self.revision = msg.revision
            except Compacted:
                log.info("watch cache for %s: history compacted, relisting", self.rt.group_resource)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep serving; the next loop relists
                log.exception("watch cache for %s failed; relisting", self.rt.group_resource)
                await asyncio.sleep(0.5)

    async def _relist(self, prefix: bytes, end: bytes) -> None:
        """Load the current objects. After the first time (history compacted, or the store watch
        failed) the changes in between are unknown event by event: as upstream's cacher, every watch
        is ended and the window starts afresh at the list's revision, so a client resuming from an
        older resourceVersion gets 410 and lists again. Replaying the differences as events instead
        would hand out objects whose resourceVersions go backwards within one stream."""
        result = await self.client.range(prefix, end)
        fresh: dict[bytes, dict[str, Any]] = {}
        for kv in result.kvs:
            fresh[kv.key] = self.storage.decode(kv.key, kv.value, kv.mod_revision)
        if self.ready.is_set():
            for w in list(self.watchers):
                w.close()
            self.watchers.clear()
            self.events.clear()
        self.objects = fresh
        self.revision = result.revision
        self.complete_from = result.revision
        self.ready.set()

    def _apply(self, kind: str, key: bytes, value: bytes, revision: int) -> None:
        old = self.objects.get(key)
        if kind == "DELETE":
            if old is None:
                return
            del self.objects[key]
            gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(revision)}}
            self._emit(Event("DELETED", gone, revision, old))
        else:
            obj = self.storage.decode(key, value, revision)
            self.objects[key] = obj
            self._emit(Event("MODIFIED" if old is not None else "ADDED", obj, revision, old))
        self.revision = max(self.revision, revision)

    def _emit(self, ev: Event) -> None:
        if len(self.events) == self.events.maxlen:
            self.complete_from = self.events[0].revision
        self.events.append(ev)
        for w in list(self.watchers):
            w.offer(ev)
            if w.closed:
                self.watchers.discard(w)

    # ------------------------------------------------------------------ serving

    def list(self, namespace: str, accept: Filter) -> tuple[list[dict[str, Any]], int]:
        items = []
        for key in sorted(self.objects):
            obj = self.objects[key]
            if namespace and obj.get("metadata", {}).get("namespace") != namespace:
                continue
            if accept(obj):
                items.append(obj)
        return items, self.revision

    def watch(self, namespace: str, accept: Filter, resource_version: int | None) -> tuple[Watcher, list[Event]]:
        """Register a watcher; returns it and the events to send before the live ones."""
        w = Watcher(namespace, accept, after=resource_version or 0)
        initial: list[Event] = []
        if resource_version is None or resource_version == 0:
            objs, rev = self.list(namespace, accept)
            initial = [Event("ADDED", obj, int(obj["metadata"]["resourceVersion"]), None) for obj in objs]
        else:
            if resource_version < self.complete_from:
                raise errors.expired(resource_version=resource_version, compacted=self.complete_from)
            revisions = [e.revision for e in self.events]
            start = bisect.bisect_right(revisions, resource_version)
            # Replay through a private watcher so the same selector transition rules apply.
            replay = Watcher(namespace, accept, asyncio.Queue())
            for ev in list(self.events)[start:]:
                replay.offer(ev)
            while not replay.queue.empty():
                item = replay.queue.get_nowait()
                if item is not None:
                    initial.append(item)
        self.watchers.add(w)
        return w, initial

    def unwatch(self, w: Watcher) -> None:
        self.watchers.discard(w)
        w.closed = True
