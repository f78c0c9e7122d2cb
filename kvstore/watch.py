"""Watchers pull events from MVCC history; the hub only says "the revision moved".

Like etcd's watchable store, a watcher that is caught up is fed on every commit and one that is
behind catches up from history in bounded batches, so one slow watcher never blocks commits or
other watchers: nothing is buffered per watcher except its next revision. A watcher whose next
revision has been compacted away is cancelled with ``compact_revision``.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from .mvcc import Event, MVCCStore
from .threadsafe import LoopHandoff

CATCH_UP_REVISIONS = 1000


@dataclass(slots=True)
class WatchBatch:
    events: list[tuple[int, list[Event]]]
    next_revision: int
    current_revision: int
    compacted: int  # > 0: the watcher's start was compacted; cancel with this compact_revision


class WatchHub:
    """Revision notifications from the Raft thread to watchers on the asyncio loop."""

    def __init__(self, store: MVCCStore, lock: threading.Lock, handoff: LoopHandoff) -> None:
        self._store = store
        self._lock = lock
        self._handoff = handoff
        self._changed = asyncio.Event()
        self._scheduled = False
        self._waiting = 0  # coroutines inside wait_after
        self.watchers = 0

    def notify_threadsafe(self, revision: int) -> None:
        """Called on the Raft thread after each apply; coalesces wake-ups, and skips them while
        nobody waits (each one is a syscall the Raft thread makes holding the GIL).

        No wake-up is lost: the store's revision moves before ``_waiting`` is read here, and a
        waiter counts itself in ``_waiting`` before it reads the revision (the GIL orders both).
        """
        if self._waiting and not self._scheduled:
            self._scheduled = True
            self._handoff.call(self._fire)

    def _fire(self) -> None:
        self._scheduled = False
        self._changed.set()
        self._changed = asyncio.Event()

    def current_revision(self) -> int:
        return self._store.revision

    async def wait_after(self, revision: int, timeout: float | None) -> None:
        """Return once the store is past ``revision`` (or after ``timeout``)."""
        self._waiting += 1
        try:
            while self._store.revision <= revision:
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), timeout)
                except asyncio.TimeoutError:
                    return
        finally:
            self._waiting -= 1

    def read(self, next_revision: int, key: bytes, range_end: bytes) -> WatchBatch:
        with self._lock:
            store = self._store
            if next_revision < store.compact_revision:
                return WatchBatch([], next_revision, store.revision, store.compact_revision)
            upto = min(store.revision, next_revision + CATCH_UP_REVISIONS - 1)
            if upto < next_revision:
                # This member is behind the revision the watcher asked for (it resumed here after
                # another member, or this one is still replaying its log): wait, never go back.
                return WatchBatch([], next_revision, store.revision, 0)
            events = store.events_since(next_revision, key, range_end, upto=upto)
            return WatchBatch(events, upto + 1, store.revision, 0)


def filter_events(events: list[Event], filters: frozenset[int]) -> list[Event]:
    if not filters:
        return events
    return [e for e in events if e.type not in filters]

