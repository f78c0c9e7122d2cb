"""Lease expiry clocks: when a lease runs out is decided by the leader, outside the state machine.

Every member applies grants and keepalives to the replicated lease table (mvcc.py) and, as it does,
records a local deadline here from its own monotonic clock. Only the leader acts on deadlines: it
proposes ``lease_expire`` entries carrying each lease's keepalive sequence number, so a keepalive
that commits after the decision cancels the expiry deterministically on every member.

A member that becomes leader restarts every deadline at the full TTL (as etcd's lessor promotes),
so a leader change can only lengthen a lease, never cut it short.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

Clock = Callable[[], float]


class LeaseClock:
    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._deadlines: dict[int, float] = {}
        self._ttls: dict[int, int] = {}

    def observe(self, lease_id: int, ttl: int | None) -> None:
        """The apply path saw a grant/keepalive (ttl) or a revoke/expiry (None)."""
        with self._lock:
            if ttl is None:
                self._deadlines.pop(lease_id, None)
                self._ttls.pop(lease_id, None)
            else:
                self._ttls[lease_id] = ttl
                self._deadlines[lease_id] = self._clock() + ttl

    def promote(self) -> None:
        """This member just became leader: give every lease its full TTL again."""
        now = self._clock()
        with self._lock:
            for lease_id, ttl in self._ttls.items():
                self._deadlines[lease_id] = now + ttl

    def expired(self) -> list[int]:
        now = self._clock()
        with self._lock:
            return [i for i, d in self._deadlines.items() if d <= now]

    def remaining(self, lease_id: int) -> int:
        """Seconds left, rounded up like etcd; -1 when the lease is unknown here."""
        with self._lock:
            deadline = self._deadlines.get(lease_id)
        if deadline is None:
            return -1
        return max(0, math.ceil(deadline - self._clock()))
