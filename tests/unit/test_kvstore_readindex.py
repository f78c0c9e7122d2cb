"""The ReadIndex bookkeeping of kvstore/readindex.py, without a cluster (the integration test runs one)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from kvstore.errors import EtcdError
from kvstore.readindex import AppliedIndex, LinearizableReads, ReadCallback, ReadRounds, RemoteReads
from kvstore.threadsafe import LoopHandoff


def recorder() -> tuple[list[int | None], ReadCallback]:
    got: list[int | None] = []
    return got, got.append


def test_a_round_completes_once_a_majority_echoed_it() -> None:
    rounds = ReadRounds(others=2)  # 3 members: the leader and one follower make a majority
    got, cb = recorder()
    rounds.start(7, [cb])
    assert got == [] and not rounds.idle()
    rounds.echoed("f1", rounds.number - 1)  # an echo of a tag sent before the round: proves nothing
    assert got == []
    rounds.echoed("f1", rounds.number)
    assert got == [7] and rounds.idle()


def test_five_members_need_two_echoes() -> None:
    rounds = ReadRounds(others=4)
    got, cb = recorder()
    rounds.start(3, [cb])
    rounds.echoed("f1", rounds.number)
    rounds.echoed("f1", rounds.number)  # the same follower twice is still one
    assert got == []
    rounds.echoed("f2", rounds.number + 5)
    assert got == [3]


def test_a_lone_member_needs_no_echo() -> None:
    rounds = ReadRounds(others=0)
    got, cb = recorder()
    rounds.start(4, [cb, cb])
    assert got == [4, 4]


def test_rounds_complete_in_order_and_leadership_loss_fails_the_rest() -> None:
    rounds = ReadRounds(others=2)
    first, cb1 = recorder()
    second, cb2 = recorder()
    rounds.start(10, [cb1])
    rounds.start(12, [cb2])
    rounds.echoed("f2", rounds.number - 1)
    assert first == [10] and second == []
    rounds.fail_all()
    assert second == [None] and rounds.idle()
    # Echoes from before the loss count for nothing afterwards.
    third, cb3 = recorder()
    rounds.start(20, [cb3])
    assert third == []


def test_remote_reads_are_answered_once_and_expire() -> None:
    remote = RemoteReads(max_age=1.0)
    got, cb = recorder()
    rid = remote.request([cb], now=100.0)
    assert not remote.idle()
    remote.answered(rid, 9)
    remote.answered(rid, 11)  # a duplicate answer is ignored
    assert got == [9] and remote.idle()
    lost, cb2 = recorder()
    remote.request([cb2], now=100.0)
    remote.expire(100.5)
    assert lost == []
    remote.expire(101.5)
    assert lost == [None] and remote.idle()
    gone, cb3 = recorder()
    remote.request([cb3], now=200.0)
    remote.fail_all()
    assert gone == [None]


class FakeRaft:
    """Answers read-index requests from another thread, like the Raft thread does."""

    def __init__(self, answers: list[int | None]) -> None:
        self.answers = answers
        self.requests = 0

    def read_index(self, callback: ReadCallback) -> None:
        self.requests += 1
        answer = self.answers.pop(0) if self.answers else None
        threading.Timer(0.01, callback, (answer,)).start()


@pytest.mark.asyncio
async def test_reads_that_arrive_together_share_one_request_and_wait_for_the_apply() -> None:
    loop = asyncio.get_running_loop()
    applied = AppliedIndex(LoopHandoff(loop))
    applied.advance(4)
    raft = FakeRaft([6])
    reads = LinearizableReads(raft, applied, deadline=5.0)
    tasks = [asyncio.create_task(reads.wait()) for _ in range(5)]
    await asyncio.sleep(0.1)
    assert raft.requests == 1
    assert not any(t.done() for t in tasks)  # index 6 is not applied here yet
    threading.Thread(target=applied.advance, args=(6,)).start()
    await asyncio.wait_for(asyncio.gather(*tasks), 2.0)


@pytest.mark.asyncio
async def test_a_read_asks_again_after_a_refusal() -> None:
    applied = AppliedIndex(LoopHandoff(asyncio.get_running_loop()))
    applied.advance(3)
    raft = FakeRaft([None, None, 2])
    reads = LinearizableReads(raft, applied, deadline=5.0, retry_delay=0.01)
    await asyncio.wait_for(reads.wait(), 2.0)
    assert raft.requests == 3


@pytest.mark.asyncio
async def test_a_read_without_an_index_fails_at_its_deadline() -> None:
    applied = AppliedIndex(LoopHandoff(asyncio.get_running_loop()))
    raft: Any = FakeRaft([])
    reads = LinearizableReads(raft, applied, deadline=0.3, attempt=0.1, retry_delay=0.01)
    with pytest.raises(EtcdError) as err:
        await reads.wait()
    assert "timed out" in err.value.message


@pytest.mark.asyncio
async def test_a_read_whose_index_is_never_applied_fails_at_its_deadline() -> None:
    applied = AppliedIndex(LoopHandoff(asyncio.get_running_loop()))
    reads = LinearizableReads(FakeRaft([50]), applied, deadline=0.3)
    with pytest.raises(EtcdError):
        await reads.wait()
