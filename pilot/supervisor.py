"""A small process supervisor: start components, restart the ones that die, stop them all.

Each component runs as a child process with its log in ``<state>/logs/<name>.log`` and its pid in
``<state>/pids/<name>.pid``. A component that exits (``kill -9`` included) is restarted with
exponential backoff (0.2 s doubling to 10 s, reset after 30 s of running). SIGTERM to the
supervisor stops every child: SIGTERM first, SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("pilot.supervisor")

BACKOFF_START = 0.2
BACKOFF_MAX = 10.0
STABLE_AFTER = 30.0


@dataclass
class Component:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""  # where its health can be probed (informational)


@dataclass
class _Running:
    component: Component
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    backoff: float = BACKOFF_START
    restarts: int = 0


class Supervisor:
    def __init__(self, state_dir: Path, components: list[Component]) -> None:
        self.state_dir = state_dir
        self.logs = state_dir / "logs"
        self.pids = state_dir / "pids"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        self._running = {c.name: _Running(c) for c in components}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _spawn(self, r: _Running) -> None:
        c = r.component
        with open(self.logs / f"{c.name}.log", "ab") as logf:
            r.proc = await asyncio.create_subprocess_exec(
                *c.argv, stdout=logf, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **c.env}, start_new_session=True)
        r.started_at = time.monotonic()
        (self.pids / f"{c.name}.pid").write_text(f"{r.proc.pid}\n")
        log.info("started %s (pid %d)", c.name, r.proc.pid)

    async def _watch(self, r: _Running) -> None:
        while not self._stopping.is_set():
            await self._spawn(r)
            assert r.proc is not None
            code = await r.proc.wait()
            if self._stopping.is_set():
                return
            ran = time.monotonic() - r.started_at
            if ran >= STABLE_AFTER:
                r.backoff = BACKOFF_START
            r.restarts += 1
            log.warning("%s exited with %s after %.1fs; restarting in %.1fs", r.component.name, code, ran, r.backoff)
            try:
                await asyncio.wait_for(self._stopping.wait(), r.backoff)
                return
            except asyncio.TimeoutError:
                pass
            r.backoff = min(r.backoff * 2, BACKOFF_MAX)

    async def start(self) -> None:
        for r in self._running.values():
            self._tasks.append(asyncio.get_running_loop().create_task(self._watch(r)))
        # let every child be spawned before returning
        while any(r.proc is None for r in self._running.values()):
            await asyncio.sleep(0.01)

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping.set()
        procs = [r.proc for r in self._running.values() if r.proc is not None and r.proc.returncode is None]
        for proc in procs:
            try:
                proc.terminate()
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), max(0.1, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
                await proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for r in self._running.values():
            (self.pids / f"{r.component.name}.pid").unlink(missing_ok=True)

    def restarts(self) -> dict[str, int]:
        return {name: r.restarts for name, r in self._running.items()}


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
