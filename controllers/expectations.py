"""Expectations: what a controller has asked the API server to create or delete and not yet seen.

A ReplicaSet sync that creates 10 pods returns long before the pod informer delivers them; a
second sync in between would count too few pods and create 10 more. So the sync records "expect
10 creations" and later syncs leave the pods alone (only status is updated) until the informer has
observed all 10 or a create failed (each failure lowers the expectation) — client-go's
``UIDTrackingControllerExpectations``. Deletions are tracked by pod key, so a delete event seen
twice, or an update that shows the pod terminating followed by its delete, counts once.

Expectations expire after ``ttl`` (5 min upstream) so a lost watch event cannot wedge a controller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

EXPECTATIONS_TTL = 300.0


@dataclass
class _Record:
    add: int = 0
    deletes: set[str] = field(default_factory=set)
    timestamp: float = field(default_factory=time.monotonic)

    def fulfilled(self) -> bool:
        return self.add <= 0 and not self.deletes


class Expectations:
    def __init__(self, ttl: float = EXPECTATIONS_TTL) -> None:
        self.ttl = ttl
        self._records: dict[str, _Record] = {}

    def satisfied(self, key: str) -> bool:
        """True when nothing is pending for ``key`` (or never recorded, or expired): sync may act."""
        rec = self._records.get(key)
        if rec is None:
            return True
        if rec.fulfilled():
            return True
        return time.monotonic() - rec.timestamp > self.ttl

    def expect_creations(self, key: str, count: int) -> None:
        self._records[key] = _Record(add=count)

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._records[key] = _Record(deletes=set(pod_keys))

    def creation_observed(self, key: str) -> None:
        rec = self._records.get(key)
        if rec is not None and rec.add > 0:
            rec.add -= 1

    def lower_creations(self, key: str, count: int = 1) -> None:
        """Creations that will never be observed (the create failed or was skipped)."""
        rec = self._records.get(key)
        if rec is not None:
            rec.add = max(0, rec.add - count)

    def deletion_observed(self, key: str, pod_key: str) -> None:
        rec = self._records.get(key)
        if rec is not None:
            rec.deletes.discard(pod_key)

    def pending(self, key: str) -> tuple[int, int]:
        rec = self._records.get(key)
        return (rec.add, len(rec.deletes)) if rec is not None else (0, 0)

    def forget(self, key: str) -> None:
        self._records.pop(key, None)
