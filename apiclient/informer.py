"""List + watch one resource into a local cache, with indexes and change handlers (client-go's informer).

The protocol facts this module is built on:

* The first list is ``resourceVersion=0``: the API server answers from its watch cache, cheaply.
  The watch then starts at the list's ``resourceVersion`` so no change between the two is lost.
* A watch ends normally when its ``timeoutSeconds`` runs out (we ask for 5-10 minutes, jittered,
  so thousands of clients do not reconnect together); it is resumed from the last
  ``resourceVersion`` seen, without a relist.
* ``allowWatchBookmarks``: the server sends BOOKMARK events carrying only a newer
  ``resourceVersion``; remembering it keeps a resumed watch inside the server's event window.
* 410 Expired (``ERROR`` event or answer): the resourceVersion fell out of that window. Only a new
  list can recover; it is done with ``resourceVersion=""`` (a consistent read, as client-go does
  after 410), and the difference to the cache is delivered as add/update/delete.
* Connection failures are retried with jittered exponential backoff (0.8 s → 30 s).
* ``resync_period``: every so often every cached object is re-delivered as an update (old is
  new), so level-triggered controllers get a chance to repair drift.

Handlers are plain functions called on the event loop in order; they should be quick (put a key
in a work queue). An exception in a handler is logged and does not stop the informer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from apimachinery import meta as m
from apimachinery.errors import StatusError

from .rest import APIConnectionError, Resource, RESTClient, jittered

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]

INDEX_NAMESPACE = "namespace"
INDEX_NODE_NAME = "spec.nodeName"
INDEX_CONTROLLER_UID = "controller-uid"


def namespace_index(obj: Obj) -> list[str]:
    ns = m.namespace(obj)
    return [ns] if ns else []


def node_name_index(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


def controller_uid_index(obj: Obj) -> list[str]:
    ref = m.controller_ref(obj)
    return [str(ref["uid"])] if ref and ref.get("uid") else []


STANDARD_INDEXERS: dict[str, IndexFunc] = {
    INDEX_NAMESPACE: namespace_index,
    INDEX_NODE_NAME: node_name_index,
    INDEX_CONTROLLER_UID: controller_uid_index,
}


class Indexer:
    """Objects by ``namespace/name`` key plus secondary indexes (index name → value → keys)."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self.indexers = dict(indexers or {})
        self._items: dict[str, Obj] = {}
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self.indexers}

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self.indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    def _index(self, key: str, obj: Obj) -> None:
        for name, fn in self.indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                index.setdefault(value, set()).add(key)

    def put(self, key: str, obj: Obj) -> Obj | None:
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        self._index(key, obj)
        return old

    def pop(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def list(self) -> list[Obj]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def by_index(self, index: str, value: str) -> list[Obj]:
        if index not in self._indices:
            raise KeyError(f"no index named {index!r}")
        return [self._items[k] for k in self._indices[index].get(value, ())]

    def index_values(self, index: str) -> list[str]:
        return list(self._indices[index])

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


@dataclass
class _Handler:
    on_add: Callable[[Obj], None] | None
    on_update: Callable[[Obj, Obj], None] | None
    on_delete: Callable[[Obj], None] | None


class Informer:
    def __init__(self, client: RESTClient, res: Resource, *, namespace: str = "", label_selector: str = "",
                 field_selector: str = "", resync_period: float = 0.0, indexers: dict[str, IndexFunc] | None = None,
                 name: str = "", backoff_initial: float = 0.8, backoff_max: float = 30.0,
                 watch_timeout: tuple[int, int] = (300, 600), page_size: int = 500) -> None:
        self.client = client
        self.resource = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.name = name or res.plural
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.watch_timeout = watch_timeout
        self.page_size = page_size
        self.store = Indexer(indexers)
        self.last_sync_resource_version = ""
        self.relists = 0  # lists done (the first one included)
        self.watches = 0  # watch requests made
        self._handlers: list[_Handler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ public

    def add_event_handler(self, *, on_add: Callable[[Obj], None] | None = None,
                          on_update: Callable[[Obj, Obj], None] | None = None,
                          on_delete: Callable[[Obj], None] | None = None) -> object:
        """Register handlers; objects already cached are delivered to ``on_add`` at once.

        Returns a handle for ``remove_event_handler`` (a controller that stops while the informer
        keeps running, e.g. after losing leadership, unregisters its handlers with it).
        """
        handler = _Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if on_add is not None:
            for obj in self.store.list():
                self._call(on_add, obj)
        return handler

    def remove_event_handler(self, handle: object) -> None:
        """Stop delivering events to the handlers ``add_event_handler`` returned ``handle`` for."""
        self._handlers = [h for h in self._handlers if h is not handle]

    @property
    def has_synced(self) -> bool:
        """True once the first list is in the cache (and its handlers ran)."""
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def get(self, key: str) -> Obj | None:
        return self.store.get(key)

    def get_by_name(self, namespace: str, name: str) -> Obj | None:
        return self.store.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[Obj]:
        return self.store.list()

    def by_index(self, index: str, value: str) -> list[Obj]:
        return self.store.by_index(index, value)

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self.run(), name=f"informer-{self.name}")
            if self.resync_period > 0:
                self._resync_task = loop.create_task(self._resync_loop(), name=f"resync-{self.name}")

    async def stop(self) -> None:
        for task in (self._task, self._resync_task):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._task, self._resync_task) if t is not None), return_exceptions=True)
        self._task = self._resync_task = None

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        """List, then watch forever; relist on 410; back off on failures.

        An informer started again after ``stop`` resumes watching from its last resourceVersion
        (the events it missed are replayed, or a 410 makes it relist).
        """
        failures = 0
        need_list = not self.has_synced
        list_rv = "0"
        while True:
            try:
                if need_list:
                    await self._list(list_rv)
                    need_list = False
                    failures = 0
                started = asyncio.get_running_loop().time()
                got_events = await self._watch()
                if got_events:
                    failures = 0
                if got_events or asyncio.get_running_loop().time() - started > 1.0:
                    continue  # ended by its timeout: resume from the last resourceVersion
                # Closed at once with nothing in it: do not spin; back off like after an error.
            except asyncio.CancelledError:
                raise
            except StatusError as err:
                if err.code == 410:
                    log.info("informer %s: resourceVersion %s expired; relisting", self.name,
                             self.last_sync_resource_version)
                    need_list, list_rv = True, ""
                    continue
                log.warning("informer %s: %s (code %s)", self.name, err.message, err.code)
            except APIConnectionError as exc:
                log.warning("informer %s: %s", self.name, exc)
            except Exception:  # noqa: BLE001 - never let one bad response kill the informer
                log.exception("informer %s failed", self.name)
                need_list, list_rv = True, ""
            delay = jittered(min(self.backoff_max, self.backoff_initial * (2 ** min(failures, 10))), 1.0)
            failures += 1
            await asyncio.sleep(delay)

    async def _list(self, resource_version: str) -> None:
        result = await self.client.list(self.resource, namespace=self.namespace, label_selector=self.label_selector,
                                        field_selector=self.field_selector, resource_version=resource_version,
                                        limit=None if resource_version == "0" else self.page_size)
        self.relists += 1
        fresh: dict[str, Obj] = {}
        for obj in result.get("items") or []:
            fresh[m.object_key(obj)] = obj
        # Deliver the difference: new and changed objects, then those that vanished while we were away.
        for key, obj in fresh.items():
            old = self.store.put(key, obj)
            if old is None:
                self._dispatch_add(obj)
            elif m.resource_version(old) != m.resource_version(obj):
                self._dispatch_update(old, obj)
        for key in [k for k in self.store.keys() if k not in fresh]:
            old = self.store.pop(key)
            if old is not None:
                self._dispatch_delete(old)
        self.last_sync_resource_version = str((result.get("metadata") or {}).get("resourceVersion") or "")
        self._synced.set()

    async def _watch(self) -> bool:
        self.watches += 1
        got = False
        events = self.client.watch(self.resource, namespace=self.namespace, label_selector=self.label_selector,
                                   field_selector=self.field_selector,
                                   resource_version=self.last_sync_resource_version or None,
                                   allow_bookmarks=True, timeout_seconds=random.randint(*self.watch_timeout))
        async with contextlib.aclosing(events):
            async for event in events:
                got = True
                self._handle(event)
        return got

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            return
        rv = m.resource_version(obj)
        if kind == "BOOKMARK":
            if rv:
                self.last_sync_resource_version = rv
            return
        key = m.object_key(obj)
        if kind in ("ADDED", "MODIFIED"):
            old = self.store.put(key, obj)
            if old is None:
                self._dispatch_add(obj)
            else:
                self._dispatch_update(old, obj)
        elif kind == "DELETED":
            old = self.store.pop(key)
            self._dispatch_delete(obj if obj.get("metadata") else (old or obj))
        if rv:
            self.last_sync_resource_version = rv

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(jittered(self.resync_period, 0.1))
            if not self.has_synced:
                continue
            for obj in self.store.list():
                self._dispatch_update(obj, obj)

    # ------------------------------------------------------------------ handlers

    @staticmethod
    def _call(fn: Callable[..., None], *args: Obj) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001
            log.exception("informer handler %r failed", fn)

    def _dispatch_add(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _dispatch_update(self, old: Obj, new: Obj) -> None:
        for h in self._handlers:
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _dispatch_delete(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)
