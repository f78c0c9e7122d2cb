"""LoopHandoff: the Raft thread's calls reach the loop in order, in one wake-up per flush."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from kvstore.threadsafe import LoopHandoff


def on_thread(fn: Any) -> None:
    t = threading.Thread(target=fn)
    t.start()
    t.join(5)


@pytest.mark.asyncio
async def test_calls_from_the_flushing_thread_wait_for_flush_and_keep_their_order() -> None:
    loop = asyncio.get_running_loop()
    handoff = LoopHandoff(loop)
    got: list[int] = []
    wakeups = 0
    original = loop.call_soon_threadsafe

    def counting(*args: Any) -> Any:
        nonlocal wakeups
        wakeups += 1
        return original(*args)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    try:
        def tick() -> None:
            handoff.flush()  # the first flush makes this thread the owner
            for i in range(5):
                handoff.call(got.append, i)
            assert got == []  # queued, not sent yet
            handoff.flush()

        on_thread(tick)
        await asyncio.sleep(0.05)
    finally:
        del loop.call_soon_threadsafe
    assert got == [0, 1, 2, 3, 4]
    assert wakeups == 1


@pytest.mark.asyncio
async def test_other_threads_and_the_loop_are_served_at_once() -> None:
    loop = asyncio.get_running_loop()
    handoff = LoopHandoff(loop)
    owned, release = threading.Event(), threading.Event()

    def raft_thread() -> None:  # owns the queue and stays alive (thread ids are reused)
        handoff.flush()
        owned.set()
        release.wait(5)

    owner = threading.Thread(target=raft_thread)
    owner.start()
    try:
        owned.wait(5)
        fut: asyncio.Future[str] = loop.create_future()
        handoff.resolve(fut, "now")  # from the loop thread itself: no flush needed
        assert await asyncio.wait_for(fut, 1) == "now"
        other: asyncio.Future[str] = loop.create_future()
        on_thread(lambda: handoff.resolve(other, "also"))
        assert await asyncio.wait_for(other, 1) == "also"
    finally:
        release.set()
        owner.join(5)


@pytest.mark.asyncio
async def test_done_futures_and_failing_callbacks_do_not_stop_the_batch() -> None:
    loop = asyncio.get_running_loop()
    handoff = LoopHandoff(loop)
    cancelled: asyncio.Future[int] = loop.create_future()
    cancelled.cancel()
    later: asyncio.Future[int] = loop.create_future()

    def boom() -> None:
        raise RuntimeError("callback bug")

    def tick() -> None:
        handoff.flush()
        handoff.resolve(cancelled, 1)
        handoff.call(boom)
        handoff.resolve(later, 2)
        handoff.flush()

    on_thread(tick)
    assert await asyncio.wait_for(later, 1) == 2


def test_a_closed_loop_is_ignored() -> None:
    loop = asyncio.new_event_loop()
    handoff = LoopHandoff(loop)
    loop.close()
    handoff.call(print, "never")  # no exception: the member is shutting down
