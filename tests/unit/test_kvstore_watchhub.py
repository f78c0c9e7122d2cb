"""WatchHub wake-ups: only while somebody waits, and never lost to the race with a new waiter."""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any

import pytest

from kvstore import jsonapi
from kvstore.mvcc import MVCCStore
from kvstore.threadsafe import LoopHandoff
from kvstore.watch import WatchHub


class CountingHandoff(LoopHandoff):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.calls = 0

    def call(self, fn: Any, *args: Any) -> None:
        self.calls += 1
        super().call(fn, *args)


def apply_put(store: MVCCStore, hub: WatchHub, key: bytes) -> None:
    """What the Raft thread does: move the revision, then notify."""
    put = jsonapi.parse_put(jsonapi.Reader({"key": base64.b64encode(key).decode(), "value": "dg=="}))
    store.apply_batch(b"c", store.revision, [put])
    hub.notify_threadsafe(store.revision)


@pytest.mark.asyncio
async def test_no_wake_up_while_nobody_waits_and_one_for_a_waiter() -> None:
    loop = asyncio.get_running_loop()
    store, handoff = MVCCStore(), CountingHandoff(loop)
    hub = WatchHub(store, threading.Lock(), handoff)
    apply_put(store, hub, b"a")
    assert handoff.calls == 0
    start = store.revision
    waiter = asyncio.create_task(hub.wait_after(start, timeout=5))
    await asyncio.sleep(0.01)
    threading.Thread(target=apply_put, args=(store, hub, b"b")).start()
    await asyncio.wait_for(waiter, 2)
    assert store.revision > start and handoff.calls == 1


@pytest.mark.asyncio
async def test_a_waiter_arriving_with_the_write_is_not_stranded() -> None:
    loop = asyncio.get_running_loop()
    store = MVCCStore()
    hub = WatchHub(store, threading.Lock(), LoopHandoff(loop))
    for i in range(200):
        before = store.revision
        writer = threading.Thread(target=apply_put, args=(store, hub, b"k%d" % i))
        writer.start()
        # Returns either because it saw the new revision at once or because it was woken: a
        # lost wake-up would hang here until the timeout.
        await asyncio.wait_for(hub.wait_after(before, timeout=10), 2)
        writer.join()
