"""The controller pattern, written once: informers → work queue of keys → ``sync(key)`` in N workers.

A controller provides an idempotent ``async def sync(key)`` that reads the desired and observed
state from informer caches and acts through the API. ``Controller`` wires informer events to the
queue (``watch``), waits for the caches to fill before the first sync, runs the workers, retries a
failing key with per-item exponential backoff (then gives up after ``max_retries``, as client-go
controllers do, until the next event), and forgets a key's failures once it succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from apimachinery import meta as m

from .informer import Informer
from .workqueue import RateLimiter, ShutDown, WorkQueue

log = logging.getLogger(__name__)

KeyFunc = Callable[[Mapping[str, Any]], str | None]


class Controller:
    def __init__(self, name: str, sync: Callable[[str], Awaitable[None]], *, workers: int = 1,
                 rate_limiter: RateLimiter | None = None, max_retries: int | None = 15) -> None:
        self.name = name
        self.sync = sync
        self.workers = workers
        self.max_retries = max_retries
        self.queue: WorkQueue[str] = WorkQueue(rate_limiter=rate_limiter, name=name)
        self.informers: list[Informer] = []

    def enqueue(self, obj: Mapping[str, Any]) -> None:
        self.queue.add(m.object_key(obj))

    def watch(self, informer: Informer, key_fn: KeyFunc | None = None) -> None:
        """Queue ``key_fn(obj)`` (default: the object's own key) on every add, update and delete."""
        key_of = key_fn or m.object_key
        self.informers.append(informer)

        def put(obj: Mapping[str, Any]) -> None:
            key = key_of(obj)
            if key:
                self.queue.add(key)

        informer.add_event_handler(on_add=put, on_update=lambda _old, new: put(new), on_delete=put)

    async def run(self, *, informers: Iterable[Informer] = (), sync_timeout: float | None = None) -> None:
        """Wait for the informers' first list, then process keys until cancelled."""
        for inf in [*self.informers, *informers]:
            if not await inf.wait_for_sync(sync_timeout):
                raise TimeoutError(f"{self.name}: informer {inf.name} did not sync")
        workers = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}") for i in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            self.queue.shutdown()
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.sync(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a failing key is retried, the worker goes on
                if self.max_retries is None or self.queue.num_requeues(key) < self.max_retries:
                    log.warning("%s: sync %s failed; retrying", self.name, key, exc_info=True)
                    self.queue.add_rate_limited(key)
                else:
                    log.error("%s: dropping %s after %d retries", self.name, key, self.max_retries, exc_info=True)
                    self.queue.forget(key)
            else:
                self.queue.forget(key)
            finally:
                self.queue.done(key)
