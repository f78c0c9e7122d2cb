"""Group commit: many concurrent client requests become one Raft log entry.

pysyncobj commits a few thousand entries per second at best, and each costs an fsync. The proposer
collects the requests that arrive while earlier entries are in flight and proposes them together
(each still gets its own revision when applied). Linearizable reads do not come here: they take a
read index (readindex.py), which needs no log entry.

Outcomes (pysyncobj-notes §1.3): "not applied" outcomes are retried; "unknown" outcomes
(leader changed, timeout) are retried *with the same (proposer id, sequence)*, which the state
machine deduplicates, so a retry never applies a batch twice. Every batch has a deadline.

One batch is in flight at a time: on a busy member the cost of an entry (fsyncs, AppendEntries to
every follower, wake-ups) dominates, and fewer, larger entries carry more writes per second than
overlapping small ones (measured: 1 in flight beat 2, 4 and 8). A second batch starts only when the
one in flight has been out for ``stall`` seconds, so one stuck batch (a lost callback waits a
second before it is proposed again) does not hold everything behind it.

On a follower, write batches go to the leader over the peer connection (``forwarder``, see
forward.py) and join the leader's own group commit as a forwarded batch, with this proposer's
(id, sequence): one log entry per round carries the writes that arrived at every member. While
forwarding is not available (no leader known, or the leader refused a batch), batches go through
pysyncobj, whose forwarding makes each follower batch an entry of its own.
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
from .threadsafe import LoopHandoff

log = logging.getLogger(__name__)


class Proposing(Protocol):
    def propose(self, payload: bytes, callback: Callable[[Any, int], None]) -> None: ...


class ForwardNotApplied(Exception):
    """The leader did not take the batch (not leader, connection refused, ...): retry freely."""


class ForwardUnknown(Exception):
    """The batch may or may not have been applied: retry with the same (id, sequence)."""


class Forwarding(Protocol):
    def available(self) -> bool: ...

    async def forward(self, client: bytes, seq: int, requests: list[dict[str, Any]], timeout: float) -> list[Any]: ...

    async def wait_applied(self, results: list[Any], timeout: float) -> None: ...


@dataclass(slots=True)
class _Forwarded:
    client: bytes
    seq: int
    requests: list[dict[str, Any]]
    future: asyncio.Future[list[Any]]


@dataclass(slots=True)
class _Batch:
    seq: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)
    forwarded: list[_Forwarded] = field(default_factory=list)
    started: float = 0.0

    def empty(self) -> bool:
        return not (self.requests or self.forwarded)


def request_size(req: dict[str, Any]) -> int:
    return len(req.get("key", b"")) + len(req.get("value", b"")) + 64


class Proposer:
    def __init__(self, raft: Proposing, *, success: int, not_applied: frozenset[int], unknown: frozenset[int],
                 max_batch: int = 512, max_bytes: int = 4 * 1024 * 1024, max_inflight: int = 2,
                 eager_inflight: int = 1, stall: float = 0.1, deadline: float = 5.0,
                 on_batch: Callable[[int], None] | None = None, forwarder: Forwarding | None = None,
                 handoff: LoopHandoff | None = None) -> None:
        self._raft = raft
        self._handoff = handoff  # None: outcomes go straight to the running loop
        self._success = success
        self._not_applied = not_applied
        self._unknown = unknown
        self._max_batch = max_batch
        self._max_bytes = max_bytes
        self._max_inflight = max_inflight
        self._eager_inflight = min(eager_inflight, max_inflight)
        self._stall = stall
        self._deadline = deadline
        self._on_batch = on_batch
        self.forwarder = forwarder
        self._client_id = os.urandom(12)
        self._seq = 0
        self._pending = _Batch(0)
        self._pending_bytes = 0
        self._inflight: list[_Batch] = []
        self._stall_timer: asyncio.TimerHandle | None = None
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

    @property
    def deadline(self) -> float:
        return self._deadline

    async def submit_forwarded(self, client: bytes, seq: int, requests: list[dict[str, Any]]) -> list[Any]:
        """Propose a batch a follower forwarded, inside this member's next entry; its results."""
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.forwarded.append(_Forwarded(client, seq, requests, fut))
        self._pending_bytes += sum(request_size(r) for r in requests)
        self._kick()
        return await fut

    def _kick(self) -> None:
        loop = asyncio.get_running_loop()
        while len(self._inflight) < self._max_inflight and not self._pending.empty():
            if len(self._inflight) >= self._eager_inflight:
                wait = self._inflight[0].started + self._stall - time.monotonic()
                if wait > 0:
                    if self._stall_timer is None:
                        self._stall_timer = loop.call_later(wait, self._on_stall)
                    return
            batch = self._take()
            batch.started = time.monotonic()
            self._inflight.append(batch)
            task = loop.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_stall(self) -> None:
        self._stall_timer = None
        self._kick()

    def _take(self) -> _Batch:
        pending = self._pending
        if len(pending.requests) <= self._max_batch and self._pending_bytes <= self._max_bytes:
            self._pending = _Batch(0)
            self._pending_bytes = 0
            batch = pending
        else:
            batch = _Batch(0, forwarded=pending.forwarded)
            pending.forwarded = []
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
            for fwd, result in zip(batch.forwarded, results[len(batch.requests):]):
                if not fwd.future.done():
                    fwd.future.set_result(result)
            if self._on_batch:
                self._on_batch(len(batch.requests))
        except EtcdError as err:
            for fut in batch.waiters:
                if not fut.done():
                    fut.set_exception(err)
            for fwd in batch.forwarded:
                if not fwd.future.done():
                    fwd.future.set_exception(err)
        finally:
            self._inflight.remove(batch)
            self._kick()

    async def _propose_until_done(self, batch: _Batch) -> list[Any]:
        loop = asyncio.get_running_loop()
        handoff = self._handoff or LoopHandoff(loop)
        payload: bytes | None = None
        deadline = time.monotonic() + self._deadline
        uncertain = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # Unknown outcome: it may still commit. etcd answers the same way.
                raise errors.deadline_exceeded()
            forwarder = self.forwarder
            if forwarder is not None and batch.requests and not batch.forwarded and forwarder.available():
                try:
                    # At most a second per attempt, as for proposals below: a leader that stopped
                    # answering (paused, cut off) is given up and the next one asked, same identity.
                    results = await forwarder.forward(self._client_id, batch.seq, batch.requests, min(remaining, 1.0))
                except ForwardNotApplied as exc:
                    log.debug("forwarded batch %d not taken (%s); retrying", batch.seq, exc)
                    await asyncio.sleep(0.02)
                    continue
                except ForwardUnknown as exc:
                    uncertain = True
                    log.debug("forwarded batch %d has an unknown outcome (%s); retrying", batch.seq, exc)
                    await asyncio.sleep(0.02)
                    continue
                # Committed. Answer once this member has applied it too, as a write proposed here
                # would be (a serializable read here right after sees it), within the deadline.
                await forwarder.wait_applied(results, deadline - time.monotonic())
                return results
            if payload is None:
                payload = codec.encode_batch(self._client_id, batch.seq, batch.requests,
                                             [(f.client, f.seq, f.requests) for f in batch.forwarded])
            outcome: asyncio.Future[tuple[Any, int]] = loop.create_future()

            def callback(result: Any, err: int, _fut: asyncio.Future[tuple[Any, int]] = outcome) -> None:
                handoff.resolve(_fut, (result, err))

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
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
