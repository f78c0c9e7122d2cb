"""Forwarded write batches: one log entry carries the leader's and the followers' batches, each
applied once under its own (proposer id, sequence), and a follower's proposer goes over HTTP only
for plain write batches, retrying with the same identity."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from kvstore import codec
from kvstore.forward import ForwardSigner, ReplayGuard, max_revision, valid_requests
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
        self.url: str | None = "http://leader"

    def target(self) -> str | None:
        return self.url

    async def forward(self, url: str, client: bytes, seq: int, requests: list[dict[str, Any]], timeout: float) -> list[Any]:
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
async def test_batches_go_through_raft_while_the_leader_url_is_unknown() -> None:
    local, leader = FakeRaft(), FakeRaft()
    fwd = FakeForwarder(leader, [])
    fwd.url = None  # leader here, or its client URL not published yet
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


def test_forward_endpoint_helpers() -> None:
    assert valid_requests([put(b"k"), {"op": "lease_grant", "id": 1, "ttl": 5}])
    assert not valid_requests([{"op": "lease_expire", "leases": [[1, 0]]}])
    assert not valid_requests({"op": "put"}) and not valid_requests(["put"])
    a, b = ForwardSigner("a" * 32), ForwardSigner("b" * 32)
    sig = a.sign_request(b"batch")
    assert a.request_ok(sig, b"batch") and not a.request_ok(sig, b"batch!") and not b.request_ok(sig, b"batch")
    answer = a.sign_answer(sig, 200, b"ok")
    assert a.answer_ok(answer, sig, 200, b"ok")
    assert not a.answer_ok(answer, sig, 503, b"ok") and not a.answer_ok(answer, sig, 200, b"ko")
    assert not a.answer_ok(answer, a.sign_request(b"other"), 200, b"ok")  # bound to its request
    assert max_revision([{"revision": 4}, {"error": [3, "x"]}, {"revision": 7}]) == 7


def test_forwarding_starts_once_every_member_published_its_client_url() -> None:
    from kvstore.forward import Forwarder

    members: dict[str, str] = {}
    leader = ["10.0.0.1:2380"]
    fwd = Forwarder(self_addr="10.0.0.2:2380",
                    peer_names={"10.0.0.1:2380": "m1", "10.0.0.2:2380": "m2", "10.0.0.3:2380": "m3"},
                    leader=lambda: leader[0], members=lambda: members, secret="s" * 32,
                    wait_revision=lambda rev, timeout: asyncio.sleep(0))
    members.update(m1="http://10.0.0.1:2379", m2="http://10.0.0.2:2379")
    assert fwd.target() is None  # m3 may still run code whose state machine skips forwarded batches
    members["m3"] = "http://10.0.0.3:2379"
    assert fwd.target() == "http://10.0.0.1:2379"
    leader[0] = "10.0.0.2:2380"
    assert fwd.target() is None  # leading here: propose directly
    leader[0] = None  # type: ignore[assignment]
    assert fwd.target() is None


def test_replay_guard_admits_a_batch_once_within_the_window() -> None:
    guard = ReplayGuard(window=30.0)
    assert guard.admit("s1", sent_at=1000.0, now=1000.5)
    assert not guard.admit("s1", sent_at=1000.0, now=1001.0)  # replayed
    assert not guard.admit("s2", sent_at=960.0, now=1001.0)  # stale
    assert not guard.admit("s3", sent_at=1040.0, now=1001.0)  # from the future
    assert guard.admit("s4", sent_at=1029.0, now=1001.0)  # ahead, but within the skew
    # Long after the window the memory is pruned, and the old batch is refused as stale anyway.
    assert not guard.admit("s1", sent_at=1000.0, now=1200.0)
    assert "s1" not in guard._seen and "s4" not in guard._seen
