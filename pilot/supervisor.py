"""A small process supervisor: start components, restart the ones that die, stop them all.

Each component runs as a child process with its log in ``<state>/logs/<name>.log`` and its pid in
``<state>/pids/<name>.pid``. A component that exits (``kill -9`` included) is restarted with
exponential backoff (0.2 s doubling to 10 s, reset after 30 s of running). SIGTERM to the
supervisor stops every child: SIGTERM first, SIGKILL after a grace period.

Fork server. A Python component spends most of its start importing (aiohttp, the API machinery:
0.35-0.55 s of CPU each); ``pilot up`` starts 15 of them, which is 6-7 s of CPU before any of them
does useful work — on a 2-core machine that alone was most of the start time. So a component whose
argv is ``[sys.executable, "-m", MODULE, *args]`` is started by a fork server: one helper process
(``python -c ...`` running :func:`forkserver_main`) imports each component's modules once (its
``preload``, when the first component that needs them starts) and forks a child per start, which
runs MODULE as ``__main__`` with ``args`` — what ``python -m MODULE args`` does — in its own session,
with its own pid, log file and environment (module-level code of the preloaded modules ran once,
in the fork server: it must not depend on a component's environment or start threads — none does).
Restarts are forks too. Other argv are exec'd.
The supervisor tracks forked children through pidfds (they are the fork server's children, not
its own), so a fork server that dies loses nothing: the next start begins a new one.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import io
import json
import logging
import os
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("pilot.supervisor")

BACKOFF_START = 0.2
BACKOFF_MAX = 10.0
STABLE_AFTER = 30.0


@dataclass
class Component:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""  # where it serves (informational)
    health: str = ""  # URL of its health endpoint (http(s)://.../healthz), "" when it has none
    preload: tuple[str, ...] = ()  # modules the fork server imports before forking it


# ---------------------------------------------------------------------- child handles

class _Exec:
    """A component started with exec (asyncio subprocess)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    async def wait(self) -> int | None:
        return await self.proc.wait()

    def send(self, sig: int) -> None:
        try:
            self.proc.send_signal(sig)
        except ProcessLookupError:
            pass


class _Forked:
    """A component forked by the fork server; watched and signalled through a pidfd (no pid reuse race)."""

    def __init__(self, pid: int, server: ForkServer) -> None:
        self.pid = pid
        self._server = server
        self._generation = server.generation
        self._done = asyncio.get_running_loop().create_future()
        try:
            self._fd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone
            self._fd = None
            self._done.set_result(None)
            return
        asyncio.get_running_loop().add_reader(self._fd, self._exited)

    def _exited(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._fd is not None
        loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = None
        if not self._done.done():
            self._done.set_result(None)

    @property
    def running(self) -> bool:
        return not self._done.done()

    async def wait(self) -> int | None:
        await asyncio.shield(self._done)
        # The exit status comes from the fork server (the parent); None if that one is gone.
        return await self._server.exit_code(self.pid, self._generation)

    def send(self, sig: int) -> None:
        if self._fd is None:
            return
        try:
            signal.pidfd_send_signal(self._fd, sig)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------- fork server, supervisor side

class ForkServer:
    """Client of the fork server process: newline-delimited JSON over a socketpair."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._codes: dict[int, int] = {}
        self._code_waiters: dict[int, asyncio.Future[int | None]] = {}
        self._lock = asyncio.Lock()
        self.generation = 0  # counts fork servers started: a child's exit is reported by its own

    @staticmethod
    def supported() -> bool:
        return hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal") and hasattr(os, "fork")

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and self._writer is not None \
            and not self._writer.is_closing()

    async def _ensure(self) -> asyncio.StreamWriter:
        async with self._lock:
            if self.alive:
                assert self._writer is not None
                return self._writer
            await self._close()
            ours, theirs = socket.socketpair()
            with open(self.log_path, "ab") as logf:
                self._proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", "from pilot.supervisor import forkserver_main; forkserver_main()",
                    str(theirs.fileno()), pass_fds=[theirs.fileno()], stdout=logf, stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    start_new_session=True)
            theirs.close()
            self.generation += 1
            self._codes.clear()
            reader, self._writer = await asyncio.open_connection(sock=ours)
            self._reader_task = asyncio.get_running_loop().create_task(self._read(reader, self._writer))
            log.info("fork server started (pid %d)", self._proc.pid)
            return self._writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                msg = json.loads(line)
                if "exit" in msg:
                    pid, code = msg["exit"], msg["code"]
                    waiter = self._code_waiters.pop(pid, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(code)
                    else:
                        self._codes[pid] = code
                else:
                    fut = self._pending.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        if "pid" in msg:
                            fut.set_result(msg["pid"])
                        else:
                            fut.set_exception(OSError(msg.get("error", "fork failed")))
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(OSError("the fork server exited"))
            self._pending.clear()
            for waiter in self._code_waiters.values():
                if not waiter.done():
                    waiter.set_result(None)
            self._code_waiters.clear()
            writer.close()  # marks this fork server dead (``alive``): the next spawn starts another

    async def spawn(self, c: Component, log_path: Path, env: dict[str, str]) -> _Forked:
        writer = await self._ensure()
        self._next_id += 1
        req_id = self._next_id
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        writer.write(json.dumps({"id": req_id, "name": c.name, "module": c.argv[2], "args": c.argv[3:], "env": env,
                                 "log": str(log_path), "preload": list(c.preload)}).encode() + b"\n")
        await writer.drain()
        pid = await fut
        return _Forked(pid, self)

    async def exit_code(self, pid: int, generation: int, timeout: float = 2.0) -> int | None:
        if generation != self.generation:
            return None
        if pid in self._codes:
            return self._codes.pop(pid)
        if not self.alive:
            return None
        waiter = self._code_waiters.setdefault(pid, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._code_waiters.pop(pid, None)

    async def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)
            self._reader_task = None
        if self._proc is not None and self._proc.returncode is None:
            try:
                await asyncio.wait_for(self._proc.wait(), 5.0)
            except asyncio.TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        self._proc = None

    async def close(self) -> None:
        async with self._lock:
            await self._close()


# ---------------------------------------------------------------------- fork server process

def forkserver_main() -> None:
    """The fork server: ``python -c "...forkserver_main()" FD``; FD is its end of the socketpair.

    Requests ``{"id", "name", "module", "args", "env", "log", "preload"}`` are answered ``{"id", "pid"}``;
    every child that exits is reported as ``{"exit": pid, "code": returncode}`` (negative: signal).
    It exits when the supervisor closes the socket.
    """
    import ctypes  # noqa: F401 - imported once here for the children's process names (prctl)

    sock = socket.socket(fileno=int(sys.argv[1]))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler (not SIG_IGN) so the wakeup fd is written
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    imported: set[str] = set()
    buf = b""

    def send(msg: dict[str, Any]) -> None:
        sock.setblocking(True)
        sock.sendall(json.dumps(msg).encode() + b"\n")

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    while True:
        try:
            ready, _, _ = select.select([sock, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        reap()
        if sock not in ready:
            continue
        data = sock.recv(1 << 16)
        if not data:
            return  # the supervisor is gone (its children were stopped, or live on in their sessions)
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            req = json.loads(line)
            for module in req.get("preload", []):
                if module not in imported:
                    imported.add(module)
                    try:
                        importlib.import_module(module)
                    except BaseException:  # noqa: BLE001 - the child fails the same way, in its own log
                        traceback.print_exc()
                    gc.collect()
                    gc.freeze()  # keep imported objects out of the children's collections (pages stay shared)
            try:
                pid = os.fork()
            except OSError as exc:
                send({"id": req["id"], "error": repr(exc)})
                continue
            if pid == 0:
                sock.close()
                os.close(wake_r)
                os.close(wake_w)
                _run_child(req)  # never returns
            send({"id": req["id"], "pid": pid})


def _set_process_name(name: str) -> None:
    """The name ps/top show (``ps -o pid,comm``; Linux keeps 15 bytes): the command line stays the
    fork server's, so this is what tells the children apart besides their pid files."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def _run_child(req: dict[str, Any]) -> None:
    """In a forked child: become ``python -m MODULE ARGS`` with its own session, log and environment."""
    code: int = 1
    try:
        os.setsid()
        _set_process_name(req.get("name") or req["module"])
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        logfd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        nullfd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(nullfd, 0)
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        os.close(logfd)
        os.close(nullfd)
        # As PYTHONUNBUFFERED would make them at interpreter start.
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True, write_through=True,
                                      errors="backslashreplace")
        os.environ.update(req["env"])
        sys.argv = [req["module"], *req["args"]]
        import runpy

        runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - report like the interpreter would
        traceback.print_exc()
        code = 1
    # What the interpreter does at exit: wait for non-daemon threads, run atexit handlers, flush.
    try:
        import threading

        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            shutdown()
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xFF if code >= 0 else 1)


# ---------------------------------------------------------------------- supervisor

@dataclass
class _Running:
    component: Component
    child: _Exec | _Forked | None = None
    started_at: float = 0.0
    backoff: float = BACKOFF_START
    restarts: int = 0
    spawned: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    def __init__(self, state_dir: Path, components: list[Component], *, fork_server: bool = True) -> None:
        self.state_dir = state_dir
        self.logs = state_dir / "logs"
        self.pids = state_dir / "pids"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        self._running = {c.name: _Running(c) for c in components}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._forks = ForkServer(self.logs / "supervisor.log") if fork_server and ForkServer.supported() else None
        self.on_spawn: Any = None  # callback(name, pid), e.g. for progress reports

    @staticmethod
    def _forkable(c: Component) -> bool:
        return len(c.argv) >= 3 and c.argv[0] == sys.executable and c.argv[1] == "-m"

    async def _spawn(self, r: _Running) -> None:
        c = r.component
        env = {"PYTHONUNBUFFERED": "1", **c.env}
        child: _Exec | _Forked | None = None
        if self._forks is not None and self._forkable(c):
            try:
                child = await self._forks.spawn(c, self.logs / f"{c.name}.log", env)
            except OSError as exc:
                log.warning("fork server could not start %s (%s); starting it with exec", c.name, exc)
        if child is None:
            with open(self.logs / f"{c.name}.log", "ab") as logf:
                child = _Exec(await asyncio.create_subprocess_exec(
                    *c.argv, stdout=logf, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
                    env={**os.environ, **env}, start_new_session=True))
        r.child = child
        r.started_at = time.monotonic()
        (self.pids / f"{c.name}.pid").write_text(f"{child.pid}\n")
        r.spawned.set()
        log.info("started %s (pid %d)", c.name, child.pid)
        if self.on_spawn is not None:
            self.on_spawn(c.name, child.pid)

    async def _watch(self, r: _Running) -> None:
        while not self._stopping.is_set():
            await self._spawn(r)
            assert r.child is not None
            code = await r.child.wait()
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
        await asyncio.gather(*(r.spawned.wait() for r in self._running.values()))

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping.set()
        children = [r.child for r in self._running.values() if r.child is not None and r.child.running]
        for child in children:
            child.send(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in children:
            try:
                await asyncio.wait_for(child.wait(), max(0.1, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                child.send(signal.SIGKILL)
                await child.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._forks is not None:
            await self._forks.close()
        for r in self._running.values():
            (self.pids / f"{r.component.name}.pid").unlink(missing_ok=True)

    def restarts(self) -> dict[str, int]:
        return {name: r.restarts for name, r in self._running.items()}


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
