"""Writes pod statuses to the API server: coalesced per pod, a bounded number in flight, retried.

Pod workers call ``set(pod, status)`` as often as they like; only the latest status of a pod is
sent (a pod that changes twice while a write is in flight costs one more write, not two), and a
status equal to the one last written — or to the one the API server already has — is not sent at
all. Writes are JSON merge patches of ``pods/<name>/status``: the kubelet computes every field it
owns (conditions of other owners are carried over by ``podstatus``), and fields it no longer sets
(``reason``, ``message``, ``initContainerStatuses``) are sent as ``null`` so they are removed.

A pod that is gone (404) is forgotten; other failures are retried with backoff, newest status first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from apiclient.rest import PODS, APIConnectionError, RESTClient, jittered
from apimachinery import meta as m
from apimachinery.errors import StatusError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
_NULLABLE = ("reason", "message", "initContainerStatuses", "nominatedNodeName", "podIP", "podIPs")


def normalized(value: Any) -> Any:
    """Drop None values and empty dicts inside dicts: how a status compares once stored and read back."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            nv = normalized(v)
            if nv is None or nv == {}:
                if k in ("state", "lastState"):
                    out[k] = nv if nv is not None else {}
                continue
            out[k] = nv
        return out
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


@dataclass
class _Pending:
    namespace: str
    name: str
    uid: str
    status: Obj
    done: asyncio.Event


class StatusManager:
    def __init__(self, client: RESTClient, *, concurrency: int = 32, on_written: Any = None) -> None:
        self.client = client
        self.concurrency = concurrency
        self.on_written = on_written  # callback(uid, status) after a successful write (metrics, benchmarks)
        self._pending: dict[str, _Pending] = {}
        self._last_sent: dict[str, Obj] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._inflight: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.writes = 0
        self.failures = 0

    def start(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._worker(), name=f"status-{i}") for i in range(self.concurrency)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def set(self, pod: Obj, status: Obj) -> asyncio.Event | None:
        """Queue ``status`` for ``pod``; returns an event set once it (or a newer one) is written, or None if unchanged."""
        uid = m.uid(pod)
        want = normalized(status)
        current = self._pending.get(uid)
        if current is None:
            if self._last_sent.get(uid) == want or normalized(pod.get("status") or {}) == want:
                self._last_sent[uid] = want
                return None
            current = _Pending(m.namespace(pod), m.name(pod), uid, status, asyncio.Event())
            self._pending[uid] = current
        elif normalized(current.status) != want:
            # Only a different status replaces the pending one: the worker writes again after an
            # in-flight write when the pending status is no longer the one it sent, and an equal
            # status (a pod worker re-syncing on the watch event of our own write) must not.
            current.status = status
        else:
            return current.done
        if uid not in self._queued and uid not in self._inflight:
            self._queued.add(uid)
            self._queue.put_nowait(uid)
        return current.done

    async def flush(self, pod: Obj, timeout: float = 10.0) -> bool:
        pending = self._pending.get(m.uid(pod))
        if pending is None:
            return True
        try:
            await asyncio.wait_for(pending.done.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def forget(self, uid: str) -> None:
        self._last_sent.pop(uid, None)
        pending = self._pending.pop(uid, None)
        if pending is not None:
            pending.done.set()

    def last_sent(self, uid: str) -> Obj | None:
        return self._last_sent.get(uid)

    async def _worker(self) -> None:
        while True:
            uid = await self._queue.get()
            self._queued.discard(uid)
            pending = self._pending.get(uid)
            if pending is None:
                continue
            self._inflight.add(uid)
            status = pending.status
            attempt = 0
            try:
                while True:
                    ok = await self._write(pending, status)
                    if ok or uid not in self._pending:
                        break
                    attempt += 1
                    await asyncio.sleep(jittered(min(10.0, 0.2 * 2 ** min(attempt, 6))))
                    status = pending.status
            finally:
                self._inflight.discard(uid)
            if self._pending.get(uid) is pending:
                if pending.status is status:
                    del self._pending[uid]
                    pending.done.set()
                else:  # a newer status arrived during the write
                    self._queued.add(uid)
                    self._queue.put_nowait(uid)

    async def _write(self, pending: _Pending, status: Obj) -> bool:
        body = dict(status)
        for key in _NULLABLE:
            body.setdefault(key, None)
        try:
            await self.client.patch(PODS, pending.name, {"status": body}, namespace=pending.namespace,
                                    subresource="status")
        except StatusError as err:
            if err.code == 404:
                self.forget(pending.uid)
                return True
            self.failures += 1
            log.warning("status of %s/%s not written: %s", pending.namespace, pending.name, err.message)
            return False
        except (APIConnectionError, asyncio.TimeoutError) as exc:
            self.failures += 1
            log.warning("status of %s/%s not written: %r", pending.namespace, pending.name, exc)
            return False
        self.writes += 1
        self._last_sent[pending.uid] = normalized(status)
        if self.on_written is not None:
            with contextlib.suppress(Exception):
                self.on_written(pending.uid, status)
        return True
