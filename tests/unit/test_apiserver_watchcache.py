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
