"""The scheduling queue: which pending pod to try next, and when to try a failed one again.

Three places, as kube-scheduler's PriorityQueue:

* ``active``: pods to schedule now, highest priority first, then first come first served;
* ``backoff``: pods that failed recently, waiting ``initial * 2^(attempts-1)`` (1 s → 10 s);
* ``unschedulable``: pods nothing could place; they stay until a cluster event that could help
  them (a node added or changed, a pod deleted, a volume bound — matched against the plugins that
  rejected them) moves them back, or until they have waited ``max_unschedulable`` (5 min).

A pod popped for scheduling is *in flight*: events for it are remembered, and if something changed
while it was being scheduled, a failure sends it to backoff rather than to unschedulable, so the
event is not lost.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "in-flight"


@dataclass
class QueuedPod:
    key: str
    priority: int
    added: float  # when first queued (for end-to-end latency)
    timestamp: float = 0.0  # ordering among equal priorities
    attempts: int = 0
    backoff_until: float = 0.0
    unschedulable_since: float = 0.0
    plugins: set[str] = field(default_factory=set)  # what rejected it last time
    where: str = ""
    seq: int = 0
    moved_during_cycle: bool = False


class SchedulingQueue:
    def __init__(self, *, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 max_unschedulable: float = 300.0) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self.pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._unschedulable: dict[str, QueuedPod] = {}
        self._by_plugin: dict[str, set[str]] = {}  # rejecting plugin ("" = unknown) -> unschedulable keys
        self._in_flight: dict[str, QueuedPod] = {}
        self._next_expiry_check = 0.0
        self._counts = {ACTIVE: 0, BACKOFF: 0}
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._closed = False

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # ------------------------------------------------------------------ placing

    def _to_active(self, qp: QueuedPod) -> None:
        qp.where = ACTIVE
        qp.seq = next(self._seq)
        self._counts[ACTIVE] += 1
        heapq.heappush(self._active, (-qp.priority, qp.timestamp, qp.seq, qp.key))
        self._wakeup.set()

    def _to_backoff(self, qp: QueuedPod) -> None:
        qp.where = BACKOFF
        qp.seq = next(self._seq)
        self._counts[BACKOFF] += 1
        heapq.heappush(self._backoff, (qp.backoff_until, qp.seq, qp.key))
        self._arm_timer(qp.backoff_until)

    def _to_unschedulable(self, qp: QueuedPod) -> None:
        qp.where = UNSCHEDULABLE
        qp.unschedulable_since = self._now()
        self._unschedulable[qp.key] = qp
        for plugin in qp.plugins or {""}:
            self._by_plugin.setdefault(plugin, set()).add(qp.key)
        self._arm_timer(qp.unschedulable_since + self.max_unschedulable)

    def _detach(self, qp: QueuedPod) -> None:
        """Take ``qp`` out of where it is (heap entries are dropped lazily by seq)."""
        if qp.where in (ACTIVE, BACKOFF):
            self._counts[qp.where] -= 1
        elif qp.where == UNSCHEDULABLE:
            self._unschedulable.pop(qp.key, None)
            for plugin in qp.plugins or {""}:
                keys = self._by_plugin.get(plugin)
                if keys is not None:
                    keys.discard(qp.key)
                    if not keys:
                        del self._by_plugin[plugin]
        elif qp.where == IN_FLIGHT:
            self._in_flight.pop(qp.key, None)
        qp.seq = -1
        qp.where = ""

    def _activate_or_backoff(self, qp: QueuedPod) -> None:
        self._detach(qp)
        if qp.backoff_until > self._now():
            self._to_backoff(qp)
        else:
            self._to_active(qp)

    def add(self, key: str, priority: int) -> None:
        """A new pending pod (or one seen again): schedule it now unless it is already queued."""
        qp = self.pods.get(key)
        if qp is not None:
            self.update(key, priority)
            return
        now = self._now()
        qp = QueuedPod(key, priority, added=now, timestamp=now)
        self.pods[key] = qp
        self._to_active(qp)

    def update(self, key: str, priority: int) -> None:
        """The pending pod changed: an unschedulable pod gets another chance (after its backoff)."""
        qp = self.pods.get(key)
        if qp is None:
            self.add(key, priority)
            return
        changed_priority = qp.priority != priority
        qp.priority = priority
        if qp.where == IN_FLIGHT:
            qp.moved_during_cycle = True
        elif qp.where == UNSCHEDULABLE or (qp.where == ACTIVE and changed_priority):
            self._activate_or_backoff(qp)

    def delete(self, key: str) -> None:
        qp = self.pods.pop(key, None)
        if qp is not None:
            self._detach(qp)

    def move(self, plugins: Iterable[str] | None = None) -> int:
        """A cluster event: unschedulable pods rejected by one of ``plugins`` (None: all) retry."""
        for qp in self._in_flight.values():
            qp.moved_during_cycle = True
        if plugins is None:
            keys: set[str] = set(self._unschedulable)
        else:
            keys = set(self._by_plugin.get("", ()))
            for plugin in plugins:
                keys |= self._by_plugin.get(plugin, set())
        for key in keys:
            qp = self._unschedulable.get(key)
            if qp is not None:
                self._activate_or_backoff(qp)
        return len(keys)

    # ------------------------------------------------------------------ the cycle

    async def pop(self) -> QueuedPod:
        while True:
            self._flush()
            while self._active:
                _, _, seq, key = heapq.heappop(self._active)
                qp = self.pods.get(key)
                if qp is None or qp.seq != seq:
                    continue
                self._counts[ACTIVE] -= 1
                qp.where = IN_FLIGHT
                self._in_flight[key] = qp
                qp.seq = -1
                qp.attempts += 1
                qp.moved_during_cycle = False
                return qp
            if self._closed:
                raise asyncio.CancelledError
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, key: str) -> None:
        """The pod was scheduled (or is gone): forget it."""
        qp = self.pods.get(key)
        if qp is not None and qp.where == IN_FLIGHT:
            del self.pods[key]
            del self._in_flight[key]

    def requeue_unschedulable(self, qp: QueuedPod, plugins: set[str]) -> None:
        if self.pods.get(qp.key) is not qp:
            return  # deleted meanwhile
        self._detach(qp)
        qp.plugins = plugins
        qp.backoff_until = self._now() + self.backoff_duration(qp)
        qp.timestamp = self._now()
        if qp.moved_during_cycle:
            self._to_backoff(qp)
        else:
            self._to_unschedulable(qp)

    def requeue_backoff(self, qp: QueuedPod) -> None:
        """An error (not a verdict): try again after the backoff."""
        existing = self.pods.get(qp.key)
        if existing is not None and existing is not qp:
            return  # queued again meanwhile (the pod changed)
        self.pods[qp.key] = qp
        qp.backoff_until = self._now() + self.backoff_duration(qp)
        qp.timestamp = self._now()
        self._detach(qp)
        self._to_backoff(qp)

    def backoff_duration(self, qp: QueuedPod) -> float:
        return min(self.max_backoff, self.initial_backoff * (2 ** max(0, min(qp.attempts - 1, 30))))

    # ------------------------------------------------------------------ timers

    def _arm_timer(self, when: float) -> None:
        if self._timer is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = when
        self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._wakeup.set()
        self._flush()

    def _flush(self) -> None:
        """Move pods whose backoff ended to active, and pods unschedulable for too long."""
        now = self._now()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            qp = self.pods.get(key)
            if qp is not None and qp.seq == seq:
                self._counts[BACKOFF] -= 1
                self._to_active(qp)
        next_at = self._backoff[0][0] if self._backoff else None
        if now >= self._next_expiry_check:  # a scan of all unschedulable pods, at most once a second
            self._next_expiry_check = now + 1.0
            for qp in list(self._unschedulable.values()):
                expires = qp.unschedulable_since + self.max_unschedulable
                if expires <= now:
                    self._activate_or_backoff(qp)
                elif next_at is None or expires < next_at:
                    next_at = expires
        elif self._unschedulable and (next_at is None or self._next_expiry_check < next_at):
            next_at = self._next_expiry_check
        if next_at is not None:
            self._arm_timer(next_at)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wakeup.set()

    # ------------------------------------------------------------------ sizes

    @property
    def sizes(self) -> dict[str, int]:
        return {ACTIVE: self._counts[ACTIVE], BACKOFF: self._counts[BACKOFF], UNSCHEDULABLE: len(self._unschedulable)}
