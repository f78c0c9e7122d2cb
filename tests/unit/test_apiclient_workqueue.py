"""The work queue's client-go semantics: de-duplication, one worker per item, rate limiting, delays."""

from __future__ import annotations

import asyncio

import pytest

from apiclient.workqueue import (BucketRateLimiter, ItemExponentialFailureRateLimiter, MaxOfRateLimiter, ShutDown,
                                 WorkQueue, default_controller_rate_limiter)


async def test_add_deduplicates_and_keeps_order() -> None:
    q: WorkQueue[str] = WorkQueue()
    for item in ("a", "b", "a", "c", "b"):
        q.add(item)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_item_being_processed_is_not_handed_out_twice() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")  # changed while a worker has it: remembered, not queued
    assert len(q) == 0
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(q.get(), 0.05)
    q.done("a")  # now it comes back, once
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0 and q.processing == 0


async def test_concurrent_workers_never_share_an_item() -> None:
    q: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    overlaps = []
    handled = []

    async def worker() -> None:
        while True:
            try:
                item = await q.get()
            except ShutDown:
                return
            if item in active:
                overlaps.append(item)
            active.add(item)
            await asyncio.sleep(0.001)
            handled.append(item)
            active.discard(item)
            q.done(item)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for round_ in range(20):
        for item in range(5):
            q.add(item)
        await asyncio.sleep(0.0005)
    await asyncio.sleep(0.05)
    q.shutdown()
    await asyncio.wait_for(asyncio.gather(*workers), 5)
    assert overlaps == []
    assert set(handled) == set(range(5))


async def test_waiting_get_wakes_on_add() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


async def test_cancelled_get_does_not_lose_items() -> None:
    q: WorkQueue[str] = WorkQueue()
    g1 = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    g1.cancel()
    await asyncio.gather(g1, return_exceptions=True)
    q.add("x")
    assert await asyncio.wait_for(q.get(), 1) == "x"


async def test_add_after_delays_and_keeps_the_earliest_time() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 10)
    q.add_after("a", 0.02)  # earlier: replaces
    q.add_after("a", 5)  # later: ignored
    assert len(q) == 0 and q.delayed == 1
    assert await asyncio.wait_for(q.get(), 2) == "a"
    assert q.delayed == 0


def test_item_exponential_backoff_and_forget() -> None:
    rl = ItemExponentialFailureRateLimiter(0.005, 1000.0)
    delays = [rl.when("k") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000.0 and max(delays) == 1000.0
    assert rl.num_requeues("k") == 20
    assert rl.when("other") == 0.005  # per item
    rl.forget("k")
    assert rl.num_requeues("k") == 0 and rl.when("k") == 0.005
    for _ in range(200):  # never overflows
        assert rl.when("big") <= 1000.0


def test_bucket_and_default_controller_limiter() -> None:
    bucket = BucketRateLimiter(qps=10, burst=3)
    assert [bucket.when(i) for i in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.when(99) > 0  # burst spent: wait for a token
    limiter = default_controller_rate_limiter()
    assert isinstance(limiter, MaxOfRateLimiter)
    assert limiter.when("a") == 0.005
    assert limiter.when("a") == 0.01
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


async def test_rate_limited_requeue_and_forget() -> None:
    q: WorkQueue[str] = WorkQueue(rate_limiter=ItemExponentialFailureRateLimiter(0.01, 1.0))
    q.add("k")
    item = await q.get()
    q.add_rate_limited(item)  # failed: back after 10 ms
    q.done(item)
    assert await asyncio.wait_for(q.get(), 2) == "k"
    assert q.num_requeues("k") == 1
    q.forget("k")
    q.done("k")
    assert q.num_requeues("k") == 0


async def test_shutdown_drains_then_raises() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add_after("later", 10)
    waiter = asyncio.create_task(q.get())
    assert await waiter == "a"
    q.shutdown()
    q.add("b")  # ignored once shutting down
    with pytest.raises(ShutDown):
        await asyncio.wait_for(q.get(), 1)
    assert q.shutting_down and q.delayed == 0
