"""Linearizable reads without a log entry: Raft's ReadIndex (Raft thesis §6.4), as etcd does it.

A read is linearizable when it sees every write acknowledged before it began. The leader knows the
commit index, so it may answer from its state once it has applied that index, provided it was
still the leader at some moment after the read arrived (no newer leader can have committed
anything it lacks). One heartbeat round proves that: the leader records its commit index as the
*read index*, starts a new round, and tags every AppendEntries it sends from then on with
``(term, round)``; each follower echoes the highest tag it has accepted in its replies. When a
majority (the leader included) has echoed the round, leadership after the read arrived is proven.
The leader must first have committed an entry of its own term (its no-op): before that, its commit
index may lag what earlier leaders committed.

A follower asks the leader for a read index over the peer connection, then waits until it has
applied that index itself. Reads that arrive together share one round (and one request), so a
round costs one heartbeat per follower however many reads it carries, and no fsync at all: the
barrier through the log this replaces cost an entry, hence an fsync on every member, per batch of
reads.

``ReadRounds`` (leader) and ``RemoteReads`` (follower) are bookkeeping on the Raft thread;
raft.RaftNode wires them into pysyncobj's messages. Their callbacks receive the read index, or None
when none can be had (leadership lost, leader unknown, no answer): ``LinearizableReads``, on the
asyncio loop, then asks again until its deadline. ``AppliedIndex`` carries the Raft thread's last
applied index to the loop.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Callable, Protocol

from . import errors
from .threadsafe import LoopHandoff

ReadCallback = Callable[[int | None], None]


def _fire(callbacks: list[ReadCallback], index: int | None) -> None:
    for callback in callbacks:
        callback(index)


@dataclass(slots=True)
class _Round:
    number: int
    index: int
    callbacks: list[ReadCallback]


class ReadRounds:
    """The leader's read rounds: which round AppendEntries carry, and which rounds a quorum echoed.

    One round is out at a time; reads arriving meanwhile wait for the next (as etcd's read loop
    does), which keeps the forced heartbeats to one per round trip under any read load.
    """

    def __init__(self, others: int) -> None:
        self._needed = (others + 1) // 2  # echoes besides the leader's own vote that make a majority
        self.number = 0  # the tag of AppendEntries sent now; never reused, across terms too
        self._echoed: dict[Hashable, int] = {}
        self._rounds: deque[_Round] = deque()

    def idle(self) -> bool:
        return not self._rounds

    def start(self, read_index: int, callbacks: list[ReadCallback]) -> None:
        """Open a round for reads that arrived before now; the caller then sends a heartbeat."""
        self.number += 1
        self._rounds.append(_Round(self.number, read_index, callbacks))
        self._complete()

    def echoed(self, node: Hashable, number: int) -> None:
        """``node`` has accepted an AppendEntries of this leader's term tagged ``number``."""
        if number > self._echoed.get(node, 0):
            self._echoed[node] = number
            self._complete()

    def fail_all(self) -> None:
        """Leadership is lost (or never proven): nothing pending can be answered here."""
        self._echoed.clear()
        rounds, self._rounds = self._rounds, deque()
        for r in rounds:
            _fire(r.callbacks, None)

    def _complete(self) -> None:
        while self._rounds:
            head = self._rounds[0]
            if sum(1 for n in self._echoed.values() if n >= head.number) < self._needed:
                return
            self._rounds.popleft()
            _fire(head.callbacks, head.index)


class RemoteReads:
    """A follower's read-index requests to the leader, by request id; one out at a time."""

    def __init__(self, max_age: float = 1.0) -> None:
        self._ids = itertools.count(1)
        self._max_age = max_age
        self._out: dict[int, tuple[float, list[ReadCallback]]] = {}

    def idle(self) -> bool:
        return not self._out

    def request(self, callbacks: list[ReadCallback], now: float) -> int:
        rid = next(self._ids)
        self._out[rid] = (now, callbacks)
        return rid

    def answered(self, rid: int, index: int | None) -> None:
        entry = self._out.pop(rid, None)
        if entry is not None:
            _fire(entry[1], index)

    def expire(self, now: float) -> None:
        """Give up on requests unanswered for ``max_age`` (the message or the leader was lost)."""
        for rid in [r for r, (sent, _) in self._out.items() if now - sent > self._max_age]:
            self.answered(rid, None)

    def fail_all(self) -> None:
        for rid in list(self._out):
            self.answered(rid, None)


class AppliedIndex:
    """The Raft thread's last applied log index, awaitable on the asyncio loop."""

    def __init__(self, handoff: LoopHandoff) -> None:
        self.handoff = handoff  # the one channel from the Raft thread, shared with LinearizableReads
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self.value = 0

    def advance(self, index: int) -> None:
        """Raft thread: everything up to ``index`` is applied to the state machine."""
        self.value = index
        if not self._waiters:
            return
        ready: list[asyncio.Future[None]] = []
        with self._lock:
            while self._waiters and self._waiters[0][0] <= index:
                ready.append(heapq.heappop(self._waiters)[2])
        for fut in ready:
            self.handoff.resolve(fut, None)

    async def wait(self, index: int, timeout: float) -> bool:
        """True once ``index`` is applied; False after ``timeout``."""
        if self.value >= index:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self.value >= index:
                return True
            heapq.heappush(self._waiters, (index, next(self._ids), fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except asyncio.TimeoutError:
            return False


class ReadIndexSource(Protocol):
    def read_index(self, callback: ReadCallback) -> None:
        """Thread-safe: ``callback`` gets a read index (or None) later, on the Raft thread."""


class LinearizableReads:
    """``await reads.wait()`` returns once this member's state holds every write acknowledged
    before the call: it obtains a read index and waits until this member has applied it."""

    def __init__(self, raft: ReadIndexSource, applied: AppliedIndex, *, deadline: float,
                 attempt: float = 1.0, retry_delay: float = 0.02) -> None:
        self._raft = raft
        self._applied = applied
        self._deadline = deadline
        self._attempt = attempt
        self._retry_delay = retry_delay
        self._gathering: asyncio.Future[int | None] | None = None

    async def wait(self) -> None:
        deadline = time.monotonic() + self._deadline
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.request_timed_out()
            try:
                index = await asyncio.wait_for(asyncio.shield(self._next_request()), min(remaining, self._attempt))
            except asyncio.TimeoutError:
                continue
            if index is None:
                await asyncio.sleep(self._retry_delay)
                continue
            if not await self._applied.wait(index, deadline - time.monotonic()):
                raise errors.request_timed_out()
            return

    def _next_request(self) -> asyncio.Future[int | None]:
        """The request reads arriving now share; it leaves for the Raft thread on the next loop
        turn, so it is asked strictly after every read that joined it had begun."""
        if self._gathering is None:
            loop = asyncio.get_running_loop()
            self._gathering = loop.create_future()
            loop.call_soon(self._send)
        return self._gathering

    def _send(self) -> None:
        fut, self._gathering = self._gathering, None
        assert fut is not None
        self._raft.read_index(functools.partial(self._applied.handoff.resolve, fut))
