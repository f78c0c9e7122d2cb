"""The replicated state machine that the Raft node drives: msgpack batches in, MVCC results out.

Runs on the Raft thread. The lock is shared with readers on the asyncio thread (ranges, watches);
``on_applied`` tells the asyncio side that the revision moved (it must not block).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from . import codec
from .errors import INTERNAL
from .mvcc import MVCCStore

log = logging.getLogger(__name__)


class KVStateMachine:
    def __init__(self, store: MVCCStore, lock: threading.Lock, on_applied: Callable[[int], None]) -> None:
        self.store = store
        self.lock = lock
        self._on_applied = on_applied
        self.applied_entries = 0

    def apply(self, payload: bytes) -> Any:
        """Results of the entry's own requests, then one result list per forwarded batch."""
        try:
            client, seq, requests, forwarded = codec.decode_entry(payload)
        except Exception:  # noqa: BLE001 - a malformed entry must never stop the Raft thread
            log.exception("undecodable log entry skipped")
            return None
        with self.lock:
            results = self._apply_batch(client, seq, requests)
            for f_client, f_seq, f_requests in forwarded:
                results.append(self._apply_batch(f_client, f_seq, f_requests))
            revision = self.store.revision
        self.applied_entries += 1
        self._on_applied(revision)
        return results

    def _apply_batch(self, client: bytes, seq: int, requests: list[dict[str, Any]]) -> list[Any]:
        try:
            return list(self.store.apply_batch(client, seq, requests))
        except Exception:  # noqa: BLE001
            # A bug, not bad input (input is validated before it is proposed). Keep the member
            # alive; every member hits the same bug on the same entry, so state stays equal.
            log.exception("apply failed for a log entry")
            return [{"error": [INTERNAL, "etcdserver: internal error"]} for _ in requests]

    def snapshot(self) -> bytes:
        with self.lock:
            return codec.pack(self.store.snapshot())

    def restore(self, data: bytes) -> None:
        state = codec.unpack(data)
        with self.lock:
            self.store.restore(state)
            revision = self.store.revision
        self._on_applied(revision)
