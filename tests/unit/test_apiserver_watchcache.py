"""The watch cache's per-watcher queue: a watcher that falls behind is closed without a gap."""

from __future__ import annotations

import asyncio

from apiserver.watchcache import Event, Watcher


def _event(rev: int) -> Event:
    return Event("ADDED", {"metadata": {"name": f"cm-{rev}", "namespace": "default",
                                        "resourceVersion": str(rev)}}, rev, None)


async def _drain(w: Watcher) -> list[int]:
    got = []
    while True:
        ev = await asyncio.wait_for(w.queue.get(), 1)
        if ev is None:
            return got
        got.append(ev.revision)


async def test_a_watcher_that_falls_behind_is_closed_after_what_it_received() -> None:
    """Its client resumes from the last resourceVersion it received, so the stream may stop early but
    never skip: what it receives is a run of the offered events from the first, then the end."""
    w = Watcher("default", lambda o: True, asyncio.Queue(maxsize=3))
    for rev in range(1, 6):
        w.offer(_event(rev))
    assert w.closed
    got = await _drain(w)
    assert got == list(range(1, len(got) + 1))


async def test_closing_keeps_what_is_queued() -> None:
    w = Watcher("default", lambda o: True, asyncio.Queue(maxsize=10))
    for rev in range(1, 4):
        w.offer(_event(rev))
    w.close()
    assert await _drain(w) == [1, 2, 3]
    w.offer(_event(4))  # closed: nothing more
    assert w.queue.empty()


async def test_events_at_or_before_the_clients_resource_version_are_skipped() -> None:
    w = Watcher("default", lambda o: True, asyncio.Queue(), after=2)
    for rev in range(1, 5):
        w.offer(_event(rev))
    w.close()
    assert await _drain(w) == [3, 4]


async def test_no_bookmark_overtakes_a_queued_event() -> None:
    """A bookmark promises every event up to its revision: while an event waits in the queue (a
    ``wait_for(queue.get())`` that timed out as it arrived leaves it there) no bookmark is due."""
    w = Watcher("default", lambda o: True, asyncio.Queue())
    assert w.bookmark(cache_revision=7, sent=5) == 7
    w.offer(_event(8))
    assert w.bookmark(cache_revision=8, sent=7) is None
    assert (await _drain_one(w)) == 8
    assert w.bookmark(cache_revision=8, sent=8) == 8


async def test_a_get_cancelled_as_an_event_arrives_leaves_it_queued() -> None:
    """The race behind the rule above, step by step: the event is queued and the waiting get is
    cancelled (what wait_for does when its timeout fires) before the get ran again."""
    w = Watcher("default", lambda o: True, asyncio.Queue())
    get = asyncio.ensure_future(w.queue.get())
    await asyncio.sleep(0)  # the get waits on the empty queue
    w.offer(_event(3))
    get.cancel()
    try:
        await get
    except asyncio.CancelledError:
        pass
    assert get.cancelled()
    assert not w.queue.empty() and w.bookmark(cache_revision=3, sent=2) is None


async def _drain_one(w: Watcher) -> int:
    ev = await asyncio.wait_for(w.queue.get(), 1)
    assert ev is not None
    return ev.revision
