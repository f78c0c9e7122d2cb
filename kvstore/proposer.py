"""Group commit: many concurrent client requests become one Raft log entry.

pysyncobj commits a few thousand entries per second at best, and each costs an fsync. The proposer
collects the requests that arrive while earlier entries are in flight and proposes them together
(each still gets its own revision when applied). A linearizable read joins the same stream as a
*barrier*: it waits until an entry proposed after the read arrived has been applied on this member,
so the local state it then reads includes every write acknowledged before the read began.

Outcomes (pysyncobj-notes §1.3): "not applied" outcomes are retried; "unknown" outcomes
(leader changed, timeout) are retried *with the same (proposer id, sequence)*, which the state
machine deduplicates, so a retry never applies a batch twice. Every batch has a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from . import codec, errors
from .errors import EtcdError

log = logging.getLogger(__name__)


class Proposing(Protocol):
    def propose(self, payload: bytes, callback: Callable[[Any, int], None]) -> None: ...


@dataclass(slots=True)
class _Batch:
    seq: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)
    readers: list[asyncio.Future[None]] = field(default_factory=list)


def request_size(req: dict[str, Any]) -> int:
    return len(req.get("key", b"")) + len(req.get("value", b"")) + 64


class Proposer:
    def __init__(self, raft: Proposing, *, success: int, not_applied: frozenset[int], unknown: frozenset[int],
                 max_batch: int = 512, max_bytes: int = 4 * 1024 * 1024, max_inflight: int = 2,
                 deadline: float = 5.0, on_batch: Callable[[int], None] | None = None) -> None:
        self._raft = raft
        self._success = success
        self._not_applied = not_applied
        self._unknown = unknown
        self._max_batch = max_batch
        self._max_bytes = max_bytes
        self._max_inflight = max_inflight
        self._deadline = deadline
        self._on_batch = on_batch
        self._client_id = os.urandom(12)
        self._seq = 0
        self._pending = _Batch(0)
        self._pending_bytes = 0
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        """Propose one request; returns its result dict or raises EtcdError."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.requests.append(request)
        self._pending.waiters.append(fut)
        self._pending_bytes += request_size(request)
        self._kick()
        result = await fut
        if isinstance(result, dict) and "error" in result:
            code, message = result["error"]
            raise EtcdError(code, message)
        return result

    async def barrier(self) -> None:
        """Return once this member has applied an entry proposed after the call began."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.readers.append(fut)
        self._kick()
        await fut

    def _kick(self) -> None:
        while self._inflight < self._max_inflight and (self._pending.requests or self._pending.readers):
            batch = self._take()
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> _Batch:
        pending = self._pending
        if len(pending.requests) <= self._max_batch and self._pending_bytes <= self._max_bytes:
            self._pending = _Batch(0)
            self._pending_bytes = 0
            batch = pending
        else:
            batch = _Batch(0, readers=pending.readers)
            pending.readers = []
            size = 0
            n = 0
            while n < len(pending.requests) and n < self._max_batch:
                size += request_size(pending.requests[n])
                if n and size > self._max_bytes:
                    break
                n += 1
            batch.requests, pending.requests = pending.requests[:n], pending.requests[n:]
            batch.waiters, pending.waiters = pending.waiters[:n], pending.waiters[n:]
            self._pending_bytes = sum(request_size(r) for r in pending.requests)
        self._seq += 1
        batch.seq = self._seq
        return batch

    async def _run(self, batch: _Batch) -> None:
        try:
            results = await self._propose_until_done(batch)
            for fut, result in zip(batch.waiters, results):
                if not fut.done():
                    fut.set_result(result)
            for fut in batch.readers:
                if not fut.done():
                    fut.set_result(None)
            if self._on_batch:
                self._on_batch(len(batch.requests))
        except EtcdError as err:
            for fut in batch.waiters:
                if not fut.done():
                    fut.set_exception(err)
            read_err = errors.request_timed_out()
            for fut in batch.readers:
                if not fut.done():
                    fut.set_exception(read_err)
        finally:
            self._inflight -= 1
            self._kick()

    async def _propose_until_done(self, batch: _Batch) -> list[Any]:
        loop = asyncio.get_running_loop()
        payload = codec.encode_batch(self._client_id, batch.seq, batch.requests)
        deadline = time.monotonic() + self._deadline
        uncertain = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # Unknown outcome: it may still commit. etcd answers the same way.
                raise errors.deadline_exceeded() if batch.requests else errors.request_timed_out()
            outcome: asyncio.Future[tuple[Any, int]] = loop.create_future()

            def callback(result: Any, err: int, _fut: asyncio.Future[tuple[Any, int]] = outcome) -> None:
                loop.call_soon_threadsafe(_set_if_pending, _fut, (result, err))

            self._raft.propose(payload, callback)
            try:
                # A callback can be lost without any error (pysyncobj-notes §1.3): propose again
                # after a while; the same (id, seq) makes the repeat harmless.
                result, err = await asyncio.wait_for(asyncio.shield(outcome), min(remaining, 1.0))
            except asyncio.TimeoutError:
                continue
            if err == self._success:
                if result is None:
                    raise EtcdError(errors.INTERNAL, "etcdserver: entry could not be applied")
                return list(result)
            uncertain = uncertain or err in self._unknown
            log.debug("batch %d outcome %d (uncertain=%s); retrying", batch.seq, err, uncertain)
            await asyncio.sleep(0.02 if err in self._unknown else 0.05)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _set_if_pending(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)
