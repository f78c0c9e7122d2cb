"""The MVCC state machine: etcd's data model, applied deterministically on every member.

One global revision counts write transactions. Every key keeps its history of versions (a
tombstone marks a delete) until compaction, so a range can read an old revision and a watch can
replay events from one. Leases are part of the replicated state; when a lease *expires* is decided
by the leader outside this module (see lease.py) and arrives here as a ``lease_expire`` request.

Requests are plain dicts (as decoded from the msgpack log entry, see codec.py); results are plain
dicts too. Nothing here reads a clock, a random source or the environment: given the same log,
every member reaches the same state. All methods run under the caller's lock.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from . import errors
from .errors import EtcdError

PUT = 0
DELETE = 1

# Compare results and targets, as numbered by etcd's protobuf enums.
EQUAL, GREATER, LESS, NOT_EQUAL = 0, 1, 2, 3
T_VERSION, T_CREATE, T_MOD, T_VALUE, T_LEASE = 0, 1, 2, 3, 4
# Range sort order and target.
SORT_NONE, SORT_ASCEND, SORT_DESCEND = 0, 1, 2
S_KEY, S_VERSION, S_CREATE, S_MOD, S_VALUE = 0, 1, 2, 3, 4

MAX_LEASE_TTL = 9_000_000_000
MIN_LEASE_TTL = 2
DEDUP_ENTRIES = 4096


@dataclass(slots=True, frozen=True)
class KeyValue:
    """One version of a key. ``version == 0`` marks a tombstone (the key was deleted at mod_revision)."""

    key: bytes
    create_revision: int
    mod_revision: int
    version: int
    value: bytes
    lease: int
    sub: int = 0

    @property
    def is_tombstone(self) -> bool:
        return self.version == 0

    def to_list(self) -> list[Any]:
        return [self.key, self.create_revision, self.mod_revision, self.version, self.value, self.lease, self.sub]

    @classmethod
    def from_list(cls, data: list[Any]) -> KeyValue:
        return cls(bytes(data[0]), data[1], data[2], data[3], bytes(data[4]), data[5], data[6])


@dataclass(slots=True, frozen=True)
class Event:
    type: int
    kv: KeyValue
    prev_kv: KeyValue | None


@dataclass(slots=True)
class Lease:
    id: int
    ttl: int
    keys: set[bytes] = field(default_factory=set)
    # Bumped by every keepalive; an expiry proposed for an older seq is ignored, so a keepalive that
    # commits between the leader's decision and the expiry entry wins.
    seq: int = 0


LeaseObserver = Callable[[int, int | None], None]


def in_range(key: bytes, start: bytes, end: bytes) -> bool:
    """etcd's range rule: empty end = the single key; end ``\\0`` = every key >= start."""
    if not end:
        return key == start
    if end == b"\x00":
        return key >= start
    return start <= key < end


class MVCCStore:
    """Key index + history + leases; see the module docstring."""

    def __init__(self, lease_observer: LeaseObserver | None = None) -> None:
        self.revision = 1
        self.compact_revision = 0
        self._history: dict[bytes, list[KeyValue]] = {}
        self._keys: list[bytes] = []  # sorted; every key that still has history
        self._live = 0
        # _events[i] holds the events of revision _events_base + i.
        self._events: list[list[Event]] = []
        self._events_base = 2
        self.leases: dict[int, Lease] = {}
        self._dedup: OrderedDict[tuple[bytes, int], list[Any]] = OrderedDict()
        self._lease_observer = lease_observer
        self.counters = {"put": 0, "range": 0, "txn": 0, "delete": 0}
        # member name -> client URL, published by each member through the log (as etcd publishes
        # its member attributes): the member list shows every member's.
        self.members: dict[str, str] = {}

    # ------------------------------------------------------------------ reads

    @property
    def key_count(self) -> int:
        return self._live

    def _latest(self, key: bytes) -> KeyValue | None:
        hist = self._history.get(key)
        if not hist:
            return None
        kv = hist[-1]
        return None if kv.is_tombstone else kv

    def _at(self, key: bytes, revision: int) -> KeyValue | None:
        hist = self._history.get(key)
        if not hist:
            return None
        if revision >= hist[-1].mod_revision:
            kv = hist[-1]
        else:
            i = bisect.bisect_right(hist, revision, key=lambda kv: kv.mod_revision)
            if i == 0:
                return None
            kv = hist[i - 1]
        return None if kv.is_tombstone else kv

    def _keys_in(self, start: bytes, end: bytes) -> Iterator[bytes]:
        keys = self._keys
        if not end:
            if start in self._history:
                yield start
            return
        i = bisect.bisect_left(keys, start)
        open_ended = end == b"\x00"
        n = len(keys)
        while i < n:
            k = keys[i]
            if not open_ended and k >= end:
                return
            yield k
            i += 1

    def check_revision(self, revision: int) -> None:
        if revision > self.revision:
            raise errors.future_revision()
        if 0 < revision < self.compact_revision:
            raise errors.compacted()

    def range(self, req: dict[str, Any], *, count_stats: bool = True) -> dict[str, Any]:
        """A RangeRequest against the current state (or ``revision``). Returns kvs/count/more."""
        if count_stats:
            self.counters["range"] += 1
        key: bytes = req.get("key", b"")
        end: bytes = req.get("range_end", b"")
        rev = req.get("revision", 0) or 0
        self.check_revision(rev)
        at_rev = rev if rev > 0 else self.revision
        limit = req.get("limit", 0) or 0
        sort_order = req.get("sort_order", 0) or 0
        sort_target = req.get("sort_target", 0) or 0
        min_mod, max_mod = req.get("min_mod_revision", 0) or 0, req.get("max_mod_revision", 0) or 0
        min_create, max_create = req.get("min_create_revision", 0) or 0, req.get("max_create_revision", 0) or 0
        filtered = bool(min_mod or max_mod or min_create or max_create)
        key_order = sort_order == SORT_NONE or (sort_target == S_KEY and sort_order == SORT_ASCEND)

        kvs: list[KeyValue] = []
        count = 0
        current = at_rev == self.revision
        for k in self._keys_in(key, end):
            kv = self._latest(k) if current else self._at(k, at_rev)
            if kv is None:
                continue
            count += 1
            if filtered and not _passes_filters(kv, min_mod, max_mod, min_create, max_create):
                continue
            if req.get("count_only"):
                continue
            if key_order and limit > 0 and len(kvs) > limit:
                continue  # keep counting, we already know there is more
            kvs.append(kv)
        if not key_order:
            kvs.sort(key=_SORT_KEYS[sort_target], reverse=sort_order == SORT_DESCEND)
        more = False
        if limit > 0 and len(kvs) > limit:
            kvs = kvs[:limit]
            more = True
        result: dict[str, Any] = {"count": count, "more": more}
        if not req.get("count_only"):
            result["kvs"] = kvs
            result["keys_only"] = bool(req.get("keys_only"))
        return result

    def events_since(self, start_revision: int, key: bytes, end: bytes,
                     upto: int | None = None) -> list[tuple[int, list[Event]]]:
        """Events with start_revision <= revision <= upto on keys in [key, end), grouped by revision."""
        out: list[tuple[int, list[Event]]] = []
        first = max(start_revision, self._events_base)
        last = self.revision if upto is None else min(upto, self.revision)
        for rev in range(first, last + 1):
            evs = self._events[rev - self._events_base]
            if not evs:
                continue
            picked = [e for e in evs if in_range(e.kv.key, key, end)]
            if picked:
                out.append((rev, picked))
        return out

    # ----------------------------------------------------------------- writes

    def apply_batch(self, client: bytes, seq: int, requests: list[dict[str, Any]]) -> list[Any]:
        """Apply one log entry: a group of client requests, each with its own revision.

        ``(client, seq)`` identifies the entry's proposer; a retried entry that was already applied
        returns the stored results instead of applying twice.
        """
        dedup_key = (client, seq)
        if client and dedup_key in self._dedup:
            return self._dedup[dedup_key]
        results: list[Any] = []
        for req in requests:
            try:
                results.append(self._apply_one(req))
            except EtcdError as err:
                results.append({"error": err.to_wire()})
        if client:
            self._dedup[dedup_key] = results
            while len(self._dedup) > DEDUP_ENTRIES:
                self._dedup.popitem(last=False)
        return results

    def _apply_one(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req["op"]
        if op == "put":
            self.counters["put"] += 1
            return self._txn({"success": [req]}, single=True)
        if op == "delete":
            self.counters["delete"] += 1
            return self._txn({"success": [req]}, single=True)
        if op == "txn":
            self.counters["txn"] += 1
            return self._txn(req)
        if op == "range":
            return {"revision": self.revision, **self.range(req)}
        if op == "compact":
            return self._compact(req["revision"])
        if op == "lease_grant":
            return self._lease_grant(req["id"], req["ttl"])
        if op == "lease_revoke":
            return self._lease_revoke(req["id"])
        if op == "lease_keepalive":
            return self._lease_keepalive(req["id"])
        if op == "lease_expire":
            return self._lease_expire(req["leases"])
        if op == "publish":
            # Membership metadata, not a key: the revision does not move.
            self.members[str(req["name"])] = str(req["client_url"])
            return {"revision": self.revision}
        raise EtcdError(errors.INVALID_ARGUMENT, f"unknown operation {op!r}")

    # txn: plan against the pre-state, validate, then execute ---------------------

    def _compare(self, cmp: dict[str, Any]) -> bool:
        key: bytes = cmp.get("key", b"")
        end: bytes = cmp.get("range_end", b"")
        target = cmp.get("target", T_VERSION)
        result = cmp.get("result", EQUAL)
        kvs: list[KeyValue | None] = [kv for kv in map(self._latest, self._keys_in(key, end)) if kv is not None]
        if not kvs:
            # etcd compares a missing key (or an empty range) as a zero KeyValue, except on VALUE,
            # which always fails: a missing value cannot be told from an empty one.
            if target == T_VALUE:
                return False
            kvs = [None]
        for kv in kvs:
            if target == T_VALUE:
                if kv is None or "value" not in cmp:
                    return False
                actual: Any = kv.value
                expected: Any = cmp["value"]
            else:
                field_name = {T_VERSION: "version", T_CREATE: "create_revision", T_MOD: "mod_revision", T_LEASE: "lease"}[target]
                actual = 0 if kv is None else getattr(kv, "version" if target == T_VERSION else field_name)
                expected = cmp.get(field_name, 0) or 0
            if result == EQUAL:
                ok = actual == expected
            elif result == NOT_EQUAL:
                ok = actual != expected
            elif result == GREATER:
                ok = actual > expected
            else:
                ok = actual < expected
            if not ok:
                return False
        return True

    def _plan(self, txn: dict[str, Any]) -> tuple[bool, list[tuple[dict[str, Any], Any]]]:
        """Choose the branch of this txn and of every nested txn, all against the pre-txn state."""
        succeeded = all(self._compare(c) for c in txn.get("compare", ()))
        ops = txn.get("success" if succeeded else "failure", ()) or ()
        planned: list[tuple[dict[str, Any], Any]] = []
        for op in ops:
            planned.append((op, self._plan(op) if op["op"] == "txn" else None))
        return succeeded, planned

    def _validate(self, planned: list[tuple[dict[str, Any], Any]]) -> None:
        for op, sub in planned:
            kind = op["op"]
            if kind == "put":
                lease = op.get("lease", 0) or 0
                if lease and lease not in self.leases:
                    raise errors.lease_not_found()
                if op.get("ignore_value") or op.get("ignore_lease"):
                    if self._latest(op["key"]) is None:
                        raise errors.key_not_found()
            elif kind == "range":
                self.check_revision(op.get("revision", 0) or 0)
            elif kind == "txn":
                self._validate(sub[1])

    def _txn(self, txn: dict[str, Any], *, single: bool = False) -> dict[str, Any]:
        succeeded, planned = self._plan(txn)
        self._validate(planned)
        writer = _TxnWriter(self)
        responses = writer.run(planned)
        writer.commit()
        _stamp_write_revisions(responses, self.revision)
        if single:
            body = responses[0][1]
            body["revision"] = self.revision
            return body
        return {"revision": self.revision, "succeeded": succeeded, "responses": responses}

    # leases ----------------------------------------------------------------------

    def _lease_grant(self, lease_id: int, ttl: int) -> dict[str, Any]:
        if ttl > MAX_LEASE_TTL:
            raise errors.lease_ttl_too_large()
        if lease_id in self.leases:
            raise errors.lease_exists()
        ttl = max(ttl, MIN_LEASE_TTL)
        self.leases[lease_id] = Lease(lease_id, ttl)
        if self._lease_observer:
            self._lease_observer(lease_id, ttl)
        return {"revision": self.revision, "id": lease_id, "ttl": ttl}

    def _lease_keepalive(self, lease_id: int) -> dict[str, Any]:
        lease = self.leases.get(lease_id)
        if lease is None:
            return {"revision": self.revision, "id": lease_id, "ttl": 0}
        lease.seq += 1
        if self._lease_observer:
            self._lease_observer(lease_id, lease.ttl)
        return {"revision": self.revision, "id": lease_id, "ttl": lease.ttl}

    def _lease_revoke(self, lease_id: int) -> dict[str, Any]:
        lease = self.leases.get(lease_id)
        if lease is None:
            raise errors.lease_not_found()
        self._drop_lease(lease)
        return {"revision": self.revision}

    def _lease_expire(self, leases: list[list[int]]) -> dict[str, Any]:
        expired = []
        for lease_id, seq in leases:
            lease = self.leases.get(lease_id)
            if lease is not None and lease.seq == seq:
                self._drop_lease(lease)
                expired.append(lease_id)
        return {"revision": self.revision, "expired": expired}

    def _drop_lease(self, lease: Lease) -> None:
        keys = sorted(lease.keys)
        if keys:
            writer = _TxnWriter(self)
            writer.run([({"op": "delete", "key": k}, None) for k in keys])
            writer.commit()
        self.leases.pop(lease.id, None)
        if self._lease_observer:
            self._lease_observer(lease.id, None)

    def lease_keys(self, lease_id: int) -> list[bytes]:
        lease = self.leases.get(lease_id)
        return sorted(lease.keys) if lease else []

    # compaction --------------------------------------------------------------------

    def _compact(self, revision: int) -> dict[str, Any]:
        if revision <= self.compact_revision:
            raise errors.compacted()
        if revision > self.revision:
            raise errors.future_revision()
        self.compact_revision = revision
        dead: list[bytes] = []
        for key, hist in self._history.items():
            if hist[0].mod_revision >= revision:
                continue
            i = bisect.bisect_right(hist, revision, key=lambda kv: kv.mod_revision)
            # hist[i-1] is the version visible at `revision`: keep it unless it is a tombstone.
            keep_from = i - 1 if not hist[i - 1].is_tombstone else i
            if keep_from > 0:
                del hist[:keep_from]
            if not hist:
                dead.append(key)
        if dead:
            for key in dead:
                del self._history[key]
            gone = set(dead)
            self._keys = [k for k in self._keys if k not in gone]
        drop = min(revision - self._events_base, len(self._events))
        if drop > 0:
            del self._events[:drop]
            self._events_base += drop
        return {"revision": self.revision}

    # snapshots -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Plain data (msgpack-able with codec.pack) that restore() turns back into this state."""
        return {
            "revision": self.revision,
            "compact_revision": self.compact_revision,
            "history": [[k, [kv.to_list() for kv in self._history[k]]] for k in self._keys],
            "leases": [[l.id, l.ttl, l.seq, sorted(l.keys)] for l in self.leases.values()],
            "dedup": [[c, s, r] for (c, s), r in self._dedup.items()],
            "members": dict(self.members),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.revision = data["revision"]
        self.compact_revision = data["compact_revision"]
        self._history = {bytes(k): [KeyValue.from_list(v) for v in versions] for k, versions in data["history"]}
        self._keys = sorted(self._history)
        self._live = sum(1 for h in self._history.values() if not h[-1].is_tombstone)
        self.leases = {i: Lease(i, ttl, {bytes(k) for k in keys}, seq) for i, ttl, seq, keys in data["leases"]}
        self._dedup = OrderedDict(((bytes(c), s), r) for c, s, r in data["dedup"])
        self.members = dict(data.get("members") or {})  # absent in snapshots from before it existed
        self._rebuild_events()
        if self._lease_observer:
            for lease in self.leases.values():
                self._lease_observer(lease.id, lease.ttl)

    def _rebuild_events(self) -> None:
        """Recreate the per-revision event log from the key histories (it is not snapshotted)."""
        base = max(self.compact_revision, 2)
        events: list[list[tuple[int, Event]]] = [[] for _ in range(self.revision - base + 1)]
        for hist in self._history.values():
            prev: KeyValue | None = None
            for kv in hist:
                if kv.mod_revision >= base:
                    ev = Event(DELETE if kv.is_tombstone else PUT, kv, prev)
                    events[kv.mod_revision - base].append((kv.sub, ev))
                prev = None if kv.is_tombstone else kv
        self._events_base = base
        self._events = [[e for _, e in sorted(evs, key=lambda p: p[0])] for evs in events]


class _TxnWriter:
    """Executes the planned ops of one transaction; all its writes share one new revision."""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.rev = store.revision + 1
        self.sub = 0
        self.events: list[Event] = []

    def run(self, planned: list[tuple[dict[str, Any], Any]]) -> list[list[Any]]:
        out: list[list[Any]] = []
        for op, sub in planned:
            kind = op["op"]
            if kind == "put":
                out.append(["put", self._put(op)])
            elif kind == "delete":
                out.append(["delete", self._delete(op)])
            elif kind == "range":
                # A range inside a txn sees the txn's earlier writes; its header revision is the
                # txn's revision once something was written, the pre-txn revision otherwise.
                rev_now = self.rev if self.events else self.store.revision
                if self.events:
                    self.store.revision = self.rev
                    try:
                        body = self.store.range(op)
                    finally:
                        self.store.revision = self.rev - 1
                else:
                    body = self.store.range(op)
                body["revision"] = rev_now
                out.append(["range", body])
            elif kind == "txn":
                succeeded, nested = sub
                responses = self.run(nested)
                # etcd leaves a nested txn's header empty.
                out.append(["txn", {"revision": 0, "succeeded": succeeded, "responses": responses}])
        return out

    def _put(self, op: dict[str, Any]) -> dict[str, Any]:
        store = self.store
        key: bytes = op["key"]
        prev = store._latest(key)
        value = prev.value if (op.get("ignore_value") and prev) else op.get("value", b"")
        lease = prev.lease if (op.get("ignore_lease") and prev) else (op.get("lease", 0) or 0)
        kv = KeyValue(key, prev.create_revision if prev else self.rev, self.rev,
                      prev.version + 1 if prev else 1, value, lease, self.sub)
        self.sub += 1
        hist = store._history.get(key)
        if hist is None:
            store._history[key] = [kv]
            bisect.insort(store._keys, key)
        else:
            hist.append(kv)
        if prev is None:
            store._live += 1
        if prev is not None and prev.lease and prev.lease != lease:
            old = store.leases.get(prev.lease)
            if old is not None:
                old.keys.discard(key)
        if lease:
            store.leases[lease].keys.add(key)
        self.events.append(Event(PUT, kv, prev))
        body: dict[str, Any] = {}
        if op.get("prev_kv") and prev is not None:
            body["prev_kv"] = prev
        return body

    def _delete(self, op: dict[str, Any]) -> dict[str, Any]:
        store = self.store
        deleted: list[KeyValue] = []
        for key in list(store._keys_in(op["key"], op.get("range_end", b""))):
            prev = store._latest(key)
            if prev is None:
                continue
            tomb = KeyValue(key, 0, self.rev, 0, b"", 0, self.sub)
            self.sub += 1
            store._history[key].append(tomb)
            store._live -= 1
            if prev.lease:
                lease = store.leases.get(prev.lease)
                if lease is not None:
                    lease.keys.discard(key)
            self.events.append(Event(DELETE, tomb, prev))
            deleted.append(prev)
        body: dict[str, Any] = {"deleted": len(deleted)}
        if op.get("prev_kv"):
            body["prev_kvs"] = deleted
        return body

    def commit(self) -> None:
        if not self.events:
            return
        store = self.store
        store.revision = self.rev
        # Pad for revisions the log has not seen (e.g. right after a restore at a later base).
        while store._events_base + len(store._events) < self.rev:
            store._events.append([])
        store._events.append(self.events)


def _stamp_write_revisions(responses: list[list[Any]], revision: int) -> None:
    """Put and delete responses inside a txn carry the txn's (final) revision in their header."""
    for kind, body in responses:
        if kind in ("put", "delete"):
            body["revision"] = revision
        elif kind == "txn":
            _stamp_write_revisions(body["responses"], revision)


def _passes_filters(kv: KeyValue, min_mod: int, max_mod: int, min_create: int, max_create: int) -> bool:
    if min_mod and kv.mod_revision < min_mod:
        return False
    if max_mod and kv.mod_revision > max_mod:
        return False
    if min_create and kv.create_revision < min_create:
        return False
    if max_create and kv.create_revision > max_create:
        return False
    return True


_SORT_KEYS: dict[int, Callable[[KeyValue], Any]] = {
    S_KEY: lambda kv: kv.key,
    S_VERSION: lambda kv: kv.version,
    S_CREATE: lambda kv: kv.create_revision,
    S_MOD: lambda kv: kv.mod_revision,
    S_VALUE: lambda kv: kv.value,
}
