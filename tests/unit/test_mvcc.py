"""MVCC state machine: revisions, history, txn planning, leases, compaction, snapshots."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import codec
from kvstore.mvcc import DELETE, PUT, MVCCStore

KEYS = [b"a", b"b", b"c", b"d/1", b"d/2"]


def apply(store: MVCCStore, *reqs: dict[str, Any], seq: list[int] = [0]) -> list[Any]:  # noqa: B006
    seq[0] += 1
    return store.apply_batch(b"t", seq[0], list(reqs))


def put(key: bytes, value: bytes = b"v", **kw: Any) -> dict[str, Any]:
    return {"op": "put", "key": key, "value": value, **kw}


def test_revision_counts_write_transactions_only() -> None:
    s = MVCCStore()
    assert s.revision == 1
    apply(s, put(b"a"), put(b"b"))
    assert s.revision == 3
    apply(s, {"op": "delete", "key": b"zzz"}, {"op": "txn"}, {"op": "range", "key": b"a"})
    assert s.revision == 3
    apply(s, {"op": "txn", "success": [put(b"a", b"1"), put(b"b", b"2")]})
    assert s.revision == 4
    assert s.range({"key": b"a"})["kvs"][0].mod_revision == s.range({"key": b"b"})["kvs"][0].mod_revision == 4


def test_dedup_returns_the_first_results_for_a_retried_entry() -> None:
    s = MVCCStore()
    first = s.apply_batch(b"client", 7, [put(b"k", b"1")])
    again = s.apply_batch(b"client", 7, [put(b"k", b"1")])
    assert first == again and s.revision == 2
    assert s.range({"key": b"k"})["kvs"][0].version == 1


def test_lease_expire_is_cancelled_by_a_later_keepalive() -> None:
    s = MVCCStore()
    apply(s, {"op": "lease_grant", "id": 5, "ttl": 10}, put(b"l", lease=5))
    seq = s.leases[5].seq
    apply(s, {"op": "lease_keepalive", "id": 5})
    apply(s, {"op": "lease_expire", "leases": [[5, seq]]})
    assert 5 in s.leases and s.range({"key": b"l"})["kvs"]
    apply(s, {"op": "lease_expire", "leases": [[5, s.leases[5].seq]]})
    assert 5 not in s.leases and not s.range({"key": b"l"})["kvs"]


def test_lease_revoke_deletes_keys_in_one_revision() -> None:
    s = MVCCStore()
    apply(s, {"op": "lease_grant", "id": 1, "ttl": 10}, put(b"x", lease=1), put(b"y", lease=1))
    before = s.revision
    apply(s, {"op": "lease_revoke", "id": 1})
    assert s.revision == before + 1
    events = s.events_since(s.revision, b"\x00", b"\x00")
    assert [(e.type, e.kv.key) for e in events[0][1]] == [(DELETE, b"x"), (DELETE, b"y")]


def test_compaction_keeps_the_visible_version() -> None:
    s = MVCCStore()
    apply(s, put(b"a", b"1"))
    apply(s, put(b"a", b"2"))
    apply(s, put(b"b", b"1"))
    apply(s, {"op": "delete", "key": b"b"})
    rev = s.revision
    apply(s, {"op": "compact", "revision": rev})
    assert s.range({"key": b"a", "revision": rev})["kvs"][0].value == b"2"
    assert s.range({"key": b"b", "revision": rev})["kvs"] == []
    res = apply(s, {"op": "range", "key": b"a", "revision": rev - 1})
    assert res[0]["error"][0] == 11


@st.composite
def operations(draw: st.DrawFn) -> list[dict[str, Any]]:
    ops = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["put", "put", "delete", "range_delete", "txn"]))
        key = draw(st.sampled_from(KEYS))
        if kind == "put":
            ops.append(put(key, draw(st.binary(max_size=4))))
        elif kind == "delete":
            ops.append({"op": "delete", "key": key})
        elif kind == "range_delete":
            ops.append({"op": "delete", "key": b"d/", "range_end": b"d0"})
        else:
            ops.append({"op": "txn",
                        "compare": [{"key": key, "target": 0, "result": draw(st.sampled_from([0, 3])), "version": 0}],
                        "success": [put(key, b"s")], "failure": [{"op": "delete", "key": key}]})
    return ops


def model_apply(model: dict[bytes, bytes], op: dict[str, Any]) -> None:
    if op["op"] == "put":
        model[op["key"]] = op["value"]
    elif op["op"] == "delete":
        end = op.get("range_end", b"")
        for k in [k for k in model if (k == op["key"] if not end else op["key"] <= k < end)]:
            del model[k]
    else:
        exists = op["compare"][0]["key"] in model
        cmp = op["compare"][0]
        ok = (not exists) if cmp["result"] == 0 else exists
        for sub in op["success" if ok else "failure"]:
            model_apply(model, sub)


@settings(max_examples=60, deadline=None)
@given(operations())
def test_matches_a_dict_model_and_history_replays(ops: list[dict[str, Any]]) -> None:
    s = MVCCStore()
    model: dict[bytes, bytes] = {}
    snapshots: list[tuple[int, dict[bytes, bytes]]] = []
    for op in ops:
        apply(s, op)
        model_apply(model, op)
        snapshots.append((s.revision, dict(model)))
    got = {kv.key: kv.value for kv in s.range({"key": b"\x00", "range_end": b"\x00"})["kvs"]}
    assert got == model
    # every past revision reads as it was
    for rev, state in snapshots:
        at = {kv.key: kv.value for kv in s.range({"key": b"\x00", "range_end": b"\x00", "revision": rev})["kvs"]}
        assert at == state
    # replaying the event log from the start rebuilds the final state
    replay: dict[bytes, bytes] = {}
    last = 0
    for rev, events in s.events_since(1, b"\x00", b"\x00"):
        assert rev > last
        last = rev
        for ev in events:
            if ev.type == PUT:
                replay[ev.kv.key] = ev.kv.value
            else:
                replay.pop(ev.kv.key, None)
    assert replay == model
    # a snapshot (through msgpack) restores the same state, history and event log
    t = MVCCStore()
    t.restore(codec.unpack(codec.pack(s.snapshot())))
    assert t.revision == s.revision
    assert t.events_since(1, b"\x00", b"\x00") == s.events_since(1, b"\x00", b"\x00")
    assert t.range({"key": b"\x00", "range_end": b"\x00"}) == s.range({"key": b"\x00", "range_end": b"\x00"})


def test_batch_codec_roundtrip_has_no_pickle() -> None:
    payload = codec.encode_batch(b"id", 3, [put(b"k", b"\x80\x02binary")])
    assert codec.decode_batch(payload) == (b"id", 3, [put(b"k", b"\x80\x02binary")])
