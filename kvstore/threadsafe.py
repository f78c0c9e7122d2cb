"""Handing outcomes from the Raft thread to the asyncio loop: ``LoopHandoff``.

pysyncobj calls back on its own thread; the awaiting side lives on the loop. Every
``call_soon_threadsafe`` wakes the loop thread, which then competes with the Raft thread for the
GIL. Woken in the middle of a tick, the loop thread took the GIL as soon as the Raft thread sent a
message (socket calls release it) and kept it while it answered clients: on the leader, the commit
notice to the second follower left ~0.6 ms late, and watchers on that follower saw writes that much
later. So the Raft thread queues its calls here and ``flush()``es them once per tick, after the
tick's messages have left and just before it syncs its log and polls, which release the GIL anyway:
one wake-up per tick, and the loop runs while the Raft thread waits on the disk.

A call made on any other thread (the loop itself, when pysyncobj refuses a command at once) goes
straight to the loop. A future that is already done by the time its result arrives (a waiter that
timed out or was cancelled) is left alone, and so is a loop that has closed (shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)

Call = tuple[Callable[..., None], tuple[Any, ...]]


class LoopHandoff:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[Call] = []
        self._owner: int | None = None  # the thread that flushes (the Raft thread), once it has

    def call(self, fn: Callable[..., None], *args: Any) -> None:
        """From any thread: run ``fn(*args)`` on the loop (queued until ``flush`` on the Raft thread)."""
        if threading.get_ident() == self._owner:
            self._pending.append((fn, args))
        else:
            self._send([(fn, args)])

    def resolve(self, fut: asyncio.Future[Any], value: Any) -> None:
        """From any thread: set ``fut``'s result to ``value`` on the loop unless it is done by then."""
        self.call(_set_if_pending, fut, value)

    def flush(self) -> None:
        """On the Raft thread, once per tick: deliver everything queued, in order, in one wake-up."""
        self._owner = threading.get_ident()
        if self._pending:
            batch, self._pending = self._pending, []
            self._send(batch)

    def _send(self, batch: list[Call]) -> None:
        try:
            self._loop.call_soon_threadsafe(_run_all, batch)
        except RuntimeError:  # loop closed during shutdown
            pass


def _run_all(batch: list[Call]) -> None:
    for fn, args in batch:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - one failing callback must not drop the others
            log.exception("callback from the Raft thread failed")


def _set_if_pending(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)
