"""Handing outcomes from the Raft thread to futures on the asyncio loop.

pysyncobj calls back on its own thread; the awaiting side lives on the loop. ``resolve_threadsafe``
is the one way across: it schedules the result on the loop, ignores a future that is already done
(a waiter that timed out or was cancelled) and a loop that has closed (shutdown).
"""

from __future__ import annotations

import asyncio
from typing import Any


def resolve_threadsafe(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], value: Any) -> None:
    """From any thread: set ``fut``'s result to ``value`` on ``loop`` unless it is done by then."""
    try:
        loop.call_soon_threadsafe(_set_if_pending, fut, value)
    except RuntimeError:  # loop closed during shutdown
        pass


def _set_if_pending(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)
