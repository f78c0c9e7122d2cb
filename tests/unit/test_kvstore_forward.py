"""Forwarded write batches: one log entry carries the leader's and the followers' batches, each
applied once under its own (proposer id, sequence); a follower's proposer forwards plain write
batches, retrying with the same identity; the pieces on both ends map every answer to its outcome."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from kvstore import codec
from kvstore.forward import (NOT_APPLIED, REFUSED, RESULTS, UNKNOWN, Forwarder, ForwardIntake, OutstandingForwards,
                             max_revision, parse_forward, valid_requests)
from kvstore.machine import KVStateMachine
from kvstore.mvcc import MVCCStore
from kvstore.proposer import ForwardNotApplied, ForwardUnknown, Proposer

SUCCESS, NOT_LEADER, LEADER_CHANGED = 0, 3, 4


def put(key: bytes, value: bytes = b"v") -> dict[str, Any]:
    return {"op": "put", "key": key, "value": value, "lease": 0, "prev_kv": False,
            "ignore_value": False, "ignore_lease": False}


def machine() -> KVStateMachine:
    return KVStateMachine(MVCCStore(), threading.Lock(), lambda rev: None)


class FakeRaft:
    """Applies every proposal at once on one state machine (a single-member log)."""

    def __init__(self) -> None:
        self.machine = machine()
        self.payloads: list[bytes] = []
        self.hold = False
        self.held: list[tuple[bytes, Any]] = []

    def propose(self, payload: bytes, callback: Any) -> None:
        self.payloads.append(payload)
        if self.hold:
            self.held.append((payload, callback))
            return
        callback(self.machine.apply(payload), SUCCESS)

    def release(self) -> None:
        held, self.held = self.held, []
        for payload, callback in held:
            callback(self.machine.apply(payload), SUCCESS)


def proposer(raft: FakeRaft, **kw: Any) -> Proposer:
    return Proposer(raft, success=SUCCESS, not_applied=frozenset({NOT_LEADER}),
                    unknown=frozenset({LEADER_CHANGED}), **kw)


def test_forwarded_batches_apply_once_under_their_own_identity() -> None:
    m = machine()
    entry = codec.encode_batch(b"leader", 1, [put(b"a")], [(b"f1", 7, [put(b"b"), put(b"c")]), (b"f2", 3, [put(b"d")])])
    results = m.apply(entry)
    assert len(results) == 3
    assert results[0]["revision"] == 2  # the entry's own requests first, then one list per forwarded batch
    assert [r["revision"] for r in results[1]] == [3, 4] and results[2][0]["revision"] == 5
    # The follower retried f1/7 (unknown outcome) and it landed in another entry: not applied twice.
    again = m.apply(codec.encode_batch(b"leader", 2, [put(b"e")], [(b"f1", 7, [put(b"b"), put(b"c")])]))
    assert again[1] == results[1]
    assert m.store.revision == 6
    # Entries without forwarded batches decode as before.
    assert codec.decode_batch(codec.encode_batch(b"x", 1, [put(b"k")])) == (b"x", 1, [put(b"k")])


def test_publish_records_client_urls_without_a_revision() -> None:
    m = machine()
    m.apply(codec.encode_batch(b"p", 1, [{"op": "publish", "name": "m2", "client_url": "http://10.0.0.2:2379"}]))
    assert m.store.members == {"m2": "http://10.0.0.2:2379"} and m.store.revision == 1
    restored = machine()
    restored.restore(m.snapshot())
    assert restored.store.members == {"m2": "http://10.0.0.2:2379"}


@pytest.mark.asyncio
async def test_leader_puts_its_own_and_forwarded_requests_in_one_entry() -> None:
    raft = FakeRaft()
    raft.hold = True
    p = proposer(raft)
    first = asyncio.ensure_future(p.submit(put(b"warm")))
    await asyncio.sleep(0)
    # While the first entry is in flight, a local write and a follower's batch arrive.
    own = asyncio.ensure_future(p.submit(put(b"own")))
    fwd = asyncio.ensure_future(p.submit_forwarded(b"follower", 9, [put(b"f1"), put(b"f2")]))
    await asyncio.sleep(0)
    raft.release()
    await first
    for _ in range(10):
        await asyncio.sleep(0)
        raft.release()
    own_result, fwd_result = await own, await fwd
    assert len(raft.payloads) == 2
    _c, _s, requests, forwarded = codec.decode_entry(raft.payloads[1])
    assert requests == [put(b"own")] and forwarded == [(b"follower", 9, [put(b"f1"), put(b"f2")])]
    assert own_result["revision"] == 3 and [r["revision"] for r in fwd_result] == [4, 5]
    await p.close()


class FakeForwarder:
    def __init__(self, leader: FakeRaft, outcomes: list[str]) -> None:
        self.leader = leader
        self.outcomes = outcomes
        self.calls: list[tuple[bytes, int]] = []
        self.waited: list[int] = []
        self.up = True

    def available(self) -> bool:
        return self.up

    async def forward(self, client: bytes, seq: int, requests: list[dict[str, Any]], timeout: float) -> list[Any]:
        self.calls.append((client, seq))
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if outcome == "refused":
            raise ForwardNotApplied("connection refused")
        applied = self.leader.machine.apply(codec.encode_batch(b"leader", len(self.calls), [], [(client, seq, requests)]))
        if outcome == "lost":  # applied, but the answer never came back
            raise ForwardUnknown("server disconnected")
        return applied[0]

    async def wait_applied(self, results: list[Any], timeout: float) -> None:
        self.waited.append(max_revision(results))


@pytest.mark.asyncio
async def test_follower_forwards_and_retries_with_the_same_identity() -> None:
    local, leader = FakeRaft(), FakeRaft()
    fwd = FakeForwarder(leader, ["refused", "lost", "ok"])
    p = proposer(local, forwarder=fwd)
    result = await p.submit(put(b"k"))
    assert result["revision"] == 2  # applied once although the answer was lost once
    assert leader.machine.store.revision == 2
    assert len({c for c in fwd.calls}) == 1 and len(fwd.calls) == 3
    assert fwd.waited == [2] and local.payloads == []
    await p.close()


@pytest.mark.asyncio
async def test_batches_go_through_raft_while_forwarding_is_unavailable() -> None:
    local, leader = FakeRaft(), FakeRaft()
    fwd = FakeForwarder(leader, [])
    fwd.up = False  # leader here, no leader known, or forwarding refused lately
    p = proposer(local, forwarder=fwd)
    await p.submit(put(b"k"))
    assert len(local.payloads) == 1 and fwd.calls == []
    await p.close()


@pytest.mark.asyncio
async def test_a_stalled_batch_lets_a_second_one_start() -> None:
    raft = FakeRaft()
    raft.hold = True
    p = proposer(raft, stall=0.01)
    first = asyncio.ensure_future(p.submit(put(b"a")))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(p.submit(put(b"b")))
    await asyncio.sleep(0)
    assert len(raft.payloads) == 1  # one batch in flight at a time...
    for _ in range(200):
        if len(raft.payloads) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(raft.payloads) == 2  # ...until it has been out for `stall`
    raft.release()
    await asyncio.gather(first, second)
    await p.close()


def test_forwardable_requests_and_revisions() -> None:
    assert valid_requests([put(b"k"), {"op": "lease_grant", "id": 1, "ttl": 5}])
    assert not valid_requests([{"op": "lease_expire", "leases": [[1, 0]]}])
    assert not valid_requests({"op": "put"}) and not valid_requests(["put"])
    assert max_revision([{"revision": 4}, {"error": [3, "x"]}, {"revision": 7}]) == 7


def test_the_leader_refuses_what_a_proposer_never_forwards() -> None:
    answers: list[dict[str, Any]] = []
    good = {"c": b"f", "s": 3, "r": [put(b"k")], "t": 1.0}
    batch = parse_forward(good, answers.append)
    assert batch is not None and (batch.client, batch.seq, batch.requests, batch.timeout) == (b"f", 3, [put(b"k")], 1.0)
    for bad in ({**good, "r": [{"op": "lease_expire", "leases": [[1, 0]]}]}, {**good, "c": "text"},
                {**good, "s": True}, {**good, "t": None}, {"c": b"f"}):
        assert parse_forward(bad, answers.append) is None
    assert len(answers) == 5 and all(REFUSED in a for a in answers)


def test_outstanding_batches_are_answered_once_and_never_forgotten_silently() -> None:
    out = OutstandingForwards(max_age=10.0)
    got: dict[str, list[dict[str, Any]]] = {"a": [], "b": [], "c": []}
    leader_a, leader_b = object(), object()
    ra = out.add(leader_a, got["a"].append, now=0.0)
    rb = out.add(leader_a, got["b"].append, now=5.0)
    out.answered(ra, {RESULTS: [1]})
    out.answered(ra, {RESULTS: [2]})  # a duplicate answer is ignored
    out.answered("not an id", {RESULTS: []})
    assert got["a"] == [{RESULTS: [1]}] and len(out) == 1
    rc = out.add(leader_b, got["c"].append, now=6.0)
    out.leader_is(leader_b)  # the batch sent to leader_a is out of reach: unknown
    assert list(got["b"][0]) == [UNKNOWN] and len(out) == 1
    out.expire(now=15.0)
    assert got["c"] == [] and len(out) == 1
    out.expire(now=16.5)
    assert list(got["c"][0]) == [UNKNOWN] and len(out) == 0
    out.answered(rb, {RESULTS: []})
    out.answered(rc, {RESULTS: []})
    assert len(got["b"]) == 1 and len(got["c"]) == 1


class FakePeer:
    """The follower's Raft node: answers each forwarded batch with the next scripted answer."""

    def __init__(self, answers: list[dict[str, Any] | None]) -> None:
        self.answers = answers
        self.leader: str | None = "10.0.0.1:2380"
        self.sent: list[dict[str, Any]] = []

    def leader_address(self) -> str | None:
        return self.leader

    def forward(self, batch: dict[str, Any], callback: Any) -> None:
        self.sent.append(batch)
        answer = self.answers.pop(0)
        if answer is not None:  # None: the answer never comes
            threading.Thread(target=callback, args=(answer,)).start()


@pytest.mark.asyncio
async def test_forwarder_maps_answers_to_outcomes() -> None:
    from kvstore.threadsafe import LoopHandoff

    peer = FakePeer([{RESULTS: [{"revision": 5}]}, {NOT_APPLIED: "not the leader"}, {UNKNOWN: "leader changed"},
                     None, {RESULTS: []}, {REFUSED: "malformed"}])
    fwd = Forwarder(self_addr="10.0.0.2:2380", raft=peer, handoff=LoopHandoff(asyncio.get_running_loop()),
                    wait_revision=lambda rev, timeout: asyncio.sleep(0))
    assert fwd.available()
    assert await fwd.forward(b"me", 1, [put(b"k")], 2.0) == [{"revision": 5}]
    assert peer.sent[0] == {"c": b"me", "s": 1, "r": [put(b"k")], "t": 2.0}
    with pytest.raises(ForwardNotApplied):
        await fwd.forward(b"me", 2, [put(b"k")], 2.0)
    with pytest.raises(ForwardUnknown):
        await fwd.forward(b"me", 3, [put(b"k")], 2.0)
    with pytest.raises(ForwardUnknown):  # no answer in time
        await fwd.forward(b"me", 4, [put(b"k")], 0.05)
    with pytest.raises(ForwardUnknown):  # results that do not match the batch
        await fwd.forward(b"me", 5, [put(b"k")], 2.0)
    assert fwd.available()
    with pytest.raises(ForwardNotApplied):
        await fwd.forward(b"me", 6, [put(b"k")], 2.0)
    assert not fwd.available()  # refused: writes go through Raft for a while
    peer.leader = "10.0.0.2:2380"
    fwd._disabled_until = 0.0
    assert not fwd.available()  # leading here
    peer.leader = None
    assert not fwd.available()


@pytest.mark.asyncio
async def test_the_leader_proposes_a_forwarded_batch_in_its_own_entry_and_answers_it() -> None:
    raft = FakeRaft()
    p = proposer(raft)
    leading = [True]
    outcomes: list[str] = []
    intake = ForwardIntake(p, lambda: leading[0], on_outcome=outcomes.append)
    answers: list[dict[str, Any]] = []
    batch = parse_forward({"c": b"f", "s": 1, "r": [put(b"a"), put(b"b")], "t": 1.0}, answers.append)
    assert batch is not None
    intake.take(batch)
    for _ in range(100):
        if answers:
            break
        await asyncio.sleep(0.01)
    assert answers == [{RESULTS: [{"revision": 2}, {"revision": 3}]}] and outcomes == ["committed"]
    _c, _s, requests, forwarded = codec.decode_entry(raft.payloads[0])
    assert requests == [] and forwarded == [(b"f", 1, [put(b"a"), put(b"b")])]
    leading[0] = False
    intake.take(batch)
    for _ in range(100):
        if len(answers) == 2:
            break
        await asyncio.sleep(0.01)
    assert list(answers[1]) == [NOT_APPLIED] and outcomes[-1] == "not_leader"
    await intake.close()
    await p.close()
