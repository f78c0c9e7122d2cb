"""The scheduling queue: priority order, backoff, unschedulable pods moved by relevant events only."""

from __future__ import annotations

import asyncio

import pytest

from scheduler.queue import SchedulingQueue


async def pop(q: SchedulingQueue, timeout: float = 1.0) -> str:
    return (await asyncio.wait_for(q.pop(), timeout)).key


async def test_priority_then_fifo() -> None:
    q = SchedulingQueue()
    q.add("low", 0)
    q.add("high", 100)
    q.add("low2", 0)
    q.add("mid", 50)
    assert [await pop(q) for _ in range(4)] == ["high", "mid", "low", "low2"]
    assert q.sizes == {"active": 0, "backoff": 0, "unschedulable": 0}


async def test_unschedulable_waits_for_a_relevant_event_then_its_backoff() -> None:
    q = SchedulingQueue(initial_backoff=0.05, max_backoff=0.2)
    q.add("p", 0)
    qp = await q.pop()
    q.requeue_unschedulable(qp, {"NodeResourcesFit"})
    assert q.sizes["unschedulable"] == 1
    assert q.move(("InterPodAffinity",)) == 0  # cannot help it
    with pytest.raises(asyncio.TimeoutError):
        await pop(q, 0.1)
    assert q.move(None) == 1
    assert await pop(q) == "p"  # after its (short) backoff
    assert q.pods["p"].attempts == 2


async def test_events_during_the_cycle_are_not_lost() -> None:
    q = SchedulingQueue(initial_backoff=0.01, max_backoff=0.01)
    q.add("p", 0)
    qp = await q.pop()
    q.move(None)  # a node was added while the pod was being scheduled
    q.requeue_unschedulable(qp, {"NodeResourcesFit"})
    assert q.sizes["unschedulable"] == 0
    assert await pop(q) == "p"


async def test_backoff_grows_and_is_capped() -> None:
    q = SchedulingQueue(initial_backoff=1, max_backoff=10)
    q.add("p", 0)
    qp = await q.pop()
    durations = []
    for attempts in range(1, 7):
        qp.attempts = attempts
        durations.append(q.backoff_duration(qp))
    assert durations == [1, 2, 4, 8, 10, 10]


async def test_update_delete_and_done() -> None:
    q = SchedulingQueue(initial_backoff=0.01)
    q.add("a", 0)
    q.add("b", 0)
    q.update("b", 10)  # priority raised while queued
    assert await pop(q) == "b"
    q.done("b")
    assert "b" not in q.pods
    q.delete("a")
    with pytest.raises(asyncio.TimeoutError):
        await pop(q, 0.05)
    q.add("c", 0)
    qp = await q.pop()
    q.requeue_unschedulable(qp, set())
    q.update("c", 0)  # the pod itself changed: try again
    assert await pop(q) == "c"


async def test_error_requeue_goes_through_backoff() -> None:
    q = SchedulingQueue(initial_backoff=0.05)
    q.add("p", 0)
    qp = await q.pop()
    q.done("p")
    q.requeue_backoff(qp)  # the binding failed
    assert q.sizes["backoff"] == 1
    assert await pop(q) == "p"


async def test_long_unschedulable_pods_are_retried() -> None:
    q = SchedulingQueue(initial_backoff=0.01, max_unschedulable=0.1)
    q.add("p", 0)
    qp = await q.pop()
    q.requeue_unschedulable(qp, {"NodeAffinity"})
    assert await pop(q, 3) == "p"
