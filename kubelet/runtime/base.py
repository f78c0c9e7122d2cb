"""The container runtime interface the kubelet drives: pod sandboxes and containers, nothing Kubernetes-shaped.

The pod worker decides *what* should run (init order, restart policy, backoff, probes); a runtime only
knows *how*: start a container from a ``ContainerConfig``, stop it with a grace period, report what it
observed as ``ContainerStatus`` records, run a command beside it (probes, hooks, ``kubectl exec``) and
say where its output is. Three implementations, one module each, checked by one contract test suite
(``tests/unit/test_kubelet_runtime_contract.py``):

* ``process`` — a container is a host process group under a small supervisor (``kubelet/shim.py``);
* ``fake`` — nothing runs (like KWOK): containers are records that become running after a delay;
* ``docker`` — real containers through the Docker Engine API (aiodocker).

Re-adoption is part of the contract: a runtime started over the state a previous instance left (the
same root directory, or Docker's labels) lists the containers that are still running, with the labels
the kubelet gave them (pod uid, container name, restart count), so a restarted kubelet neither starts
duplicates nor leaves orphans. Container exits are pushed to ``on_exit`` as they happen.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

# Labels the kubelet puts on every container (Docker's names; the process runtime stores them in a
# file), re-exported for the runtimes.
from apimachinery.containerlabels import (LABEL_CONTAINER_HASH, LABEL_CONTAINER_KIND,  # noqa: F401
                                          LABEL_CONTAINER_NAME, LABEL_NODE_NAME, LABEL_POD_NAME,
                                          LABEL_POD_NAMESPACE, LABEL_POD_UID, LABEL_RESTART_COUNT)

RUNNING = "running"
EXITED = "exited"
CREATED = "created"


class RuntimeError_(Exception):
    """A runtime operation failed; ``reason`` is the Kubernetes waiting reason to show (e.g. ``StartError``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class NotSupported(RuntimeError_):
    def __init__(self, what: str) -> None:
        super().__init__("NotSupported", f"{what} is not supported by this runtime")


@dataclass(frozen=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False
    sub_path: str = ""


@dataclass(frozen=True)
class SandboxConfig:
    """One pod's shared context: its identity, directory and (process runtime) its loopback IP."""

    pod_uid: str
    name: str
    namespace: str
    node_name: str
    pod_dir: Path
    hostname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    host_network: bool = False
    dns_policy: str = "ClusterFirst"  # spec.dnsPolicy and spec.dnsConfig (docker runtime: the pod's resolv.conf)
    dns_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class SandboxStatus:
    pod_uid: str
    ip: str
    ready: bool = True


@dataclass(frozen=True)
class ContainerConfig:
    """Everything needed to start one container instance (attempt = its restart count)."""

    pod_uid: str
    pod_name: str
    pod_namespace: str
    name: str
    attempt: int
    image: str
    argv: tuple[str, ...]  # command + args, $(VAR) references already expanded
    env: dict[str, str]
    working_dir: str = ""
    mounts: tuple[Mount, ...] = ()
    memory_limit: int | None = None  # bytes
    cpu_limit_milli: int | None = None
    kind: str = "regular"
    tty: bool = False  # a terminal for the container (pty / Docker's Tty)
    stdin: bool = False  # spec.stdin: its stdin stays open for attach sessions
    stdin_once: bool = False  # spec.stdinOnce: closed (EOF) once the first attach session ends
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    image_pull_policy: str = "IfNotPresent"
    log_path: Path | None = None
    # An ephemeral container's targetContainerName, running: share its process namespace (docker).
    target_container_id: str = ""

    def all_labels(self) -> dict[str, str]:
        return {**self.labels, LABEL_POD_UID: self.pod_uid, LABEL_POD_NAME: self.pod_name,
                LABEL_POD_NAMESPACE: self.pod_namespace, LABEL_CONTAINER_NAME: self.name,
                LABEL_RESTART_COUNT: str(self.attempt), LABEL_CONTAINER_KIND: self.kind}


@dataclass
class ContainerStatus:
    """What the runtime observed about one container instance. Times are Unix seconds."""

    id: str  # without the scheme
    pod_uid: str
    name: str
    attempt: int
    state: str  # created | running | exited
    image: str = ""
    image_id: str = ""
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int | None = None
    reason: str = ""  # Completed | Error | OOMKilled | StartError | ContainerStatusUnknown
    message: str = ""
    pid: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def kind(self) -> str:
        return self.labels.get(LABEL_CONTAINER_KIND, "regular")

    @property
    def running(self) -> bool:
        return self.state == RUNNING


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False


@dataclass
class ContainerStats:
    timestamp: float
    cpu_usage_core_nanoseconds: int  # cumulative
    memory_working_set_bytes: int
    memory_usage_bytes: int = 0
    memory_rss_bytes: int = 0


class ExecSession(abc.ABC):
    """A command running beside a container for ``kubectl exec``: streams in and out, resize, exit code."""

    @abc.abstractmethod
    async def write_stdin(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def close_stdin(self) -> None: ...

    @abc.abstractmethod
    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """``(1 | 2, chunk)`` for stdout/stderr until both end."""

    @abc.abstractmethod
    async def resize(self, width: int, height: int) -> None: ...

    @abc.abstractmethod
    async def wait(self) -> int: ...

    @abc.abstractmethod
    async def kill(self) -> None: ...


class AttachedStdin(abc.ABC):
    """One attach session's way into a container's stdin (``kubectl attach -i``).

    ``close_stdin``: the client's stdin ended (v5 close frame); the container's stdin is closed only
    if it was started with ``stdinOnce``. ``detach``: the session is over (with ``stdinOnce`` that too
    closes the container's stdin); always called once, last.
    """

    @abc.abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None:
        """Channel 4 for a container with ``tty: true``; ignored otherwise."""

    def output(self) -> AsyncIterator[tuple[int, bytes]] | None:
        """The container's output for this session as it is written (``tty: true``: a prompt shows
        before its newline), or None: the kubelet follows the log instead (``Runtime.attach_output``)."""
        return None

    @abc.abstractmethod
    async def detach(self) -> None: ...


ExitCallback = Callable[[ContainerStatus], None]


class Runtime(abc.ABC):
    """One node's container runtime. ``start`` re-adopts what a previous instance left running."""

    name: ClassVar[str]
    scheme: ClassVar[str]  # containerID prefix, e.g. "process" → process://<id>

    def __init__(self) -> None:
        self.on_exit: ExitCallback | None = None

    def _notify_exit(self, status: ContainerStatus) -> None:
        if self.on_exit is not None:
            try:
                self.on_exit(status)
            except Exception:  # noqa: BLE001 - a broken listener must not break the runtime
                import logging

                logging.getLogger(__name__).exception("on_exit callback failed")

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load persisted state and re-adopt running containers."""

    async def close(self) -> None:
        """Stop watching; containers keep running (a restarted kubelet adopts them)."""

    async def release_stopped_pods(self) -> None:
        """``--stop-pods-on-exit``, after every container was stopped: free what the pods still hold
        outside the kubelet. Nothing by default; docker removes the pods' containers and sandboxes,
        which would otherwise keep their network busy (``docker compose down`` could not remove it)."""

    def version(self) -> str:
        return f"{self.name}://0.1.0"

    # ---------------------------------------------------------------- sandboxes

    @abc.abstractmethod
    async def run_pod_sandbox(self, config: SandboxConfig) -> SandboxStatus: ...

    @abc.abstractmethod
    async def remove_pod_sandbox(self, pod_uid: str) -> None:
        """Forget the pod: every container of it must already be stopped; removes them and the sandbox."""

    @abc.abstractmethod
    def sandboxes(self) -> dict[str, SandboxStatus]:
        """pod uid → sandbox, for every pod the runtime knows (adopted ones included)."""

    # ---------------------------------------------------------------- containers

    @abc.abstractmethod
    async def start_container(self, sandbox: SandboxStatus, config: ContainerConfig) -> ContainerStatus:
        """Create and start; raises ``RuntimeError_`` (reason StartError, ErrImagePull, ...) on failure."""

    @abc.abstractmethod
    async def stop_container(self, container_id: str, grace: float) -> ContainerStatus:
        """SIGTERM (or the image's stop signal), wait ``grace`` seconds, SIGKILL; returns the exited status."""

    @abc.abstractmethod
    async def remove_container(self, container_id: str) -> None: ...

    @abc.abstractmethod
    def statuses(self) -> dict[str, ContainerStatus]:
        """Container id → status of every known container (running and exited, not removed)."""

    def list_containers(self, pod_uid: str | None = None) -> list[ContainerStatus]:
        """Known containers (of one pod, or all), oldest first."""
        out = [c for c in self.statuses().values() if pod_uid is None or c.pod_uid == pod_uid]
        out.sort(key=lambda s: (s.created_at, s.attempt))
        return out

    def container(self, container_id: str) -> ContainerStatus | None:
        return self.statuses().get(container_id)

    # ---------------------------------------------------------------- beside a container

    @abc.abstractmethod
    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        """Run a command in the container's context, collect its output (probes, hooks)."""

    async def exec_stream(self, container_id: str, argv: list[str], *, tty: bool, stdin: bool) -> ExecSession:
        raise NotSupported("exec")

    def attach_output(self, container_id: str) -> AsyncIterator[tuple[int, bytes]]:
        """``kubectl attach``: ``(1 | 2, line)`` of what the container writes from now on, until it stops.

        The container's stdout and stderr are exactly what its CRI log records (the process shim and
        the docker log forwarder write every line there), so following the log from its current end
        is attaching to its output, for any runtime that keeps one. "Now" is this call, not the first
        iteration: a caller that then writes to the container's stdin sees every answer.
        """
        from ..logs import LogOptions  # the kubelet's log reader; no cycle at import time

        path = self.log_path(container_id)
        if path is None:
            raise NotSupported("attach")
        try:
            st = os.stat(path)
            start = (st.st_ino, st.st_size)
        except OSError:
            start = (0, 0)  # not written yet: everything it will hold is "from now on"
        return self._follow_output(container_id, path, LogOptions(follow=True, start=start))

    async def _follow_output(self, container_id: str, path: Path, base: Any) -> AsyncIterator[tuple[int, bytes]]:
        from dataclasses import replace

        from ..logs import read_log

        def running() -> bool:
            c = self.container(container_id)
            return bool(c is not None and c.running)

        streams = {"stdout": 1, "stderr": 2}
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=256)

        async def follow(stream: str) -> None:
            try:
                opts = replace(base, streams=(stream,))
                async for line in read_log(path, opts, running=running):
                    await queue.put((streams[stream], line))
            finally:
                await queue.put(None)

        tasks = [asyncio.ensure_future(follow(s)) for s in streams]
        try:
            ended = 0
            while ended < len(tasks):
                item = await queue.get()
                if item is None:
                    ended += 1
                    continue
                yield item
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def attach_stdin(self, container_id: str) -> AttachedStdin:
        """The stdin of a running container started with ``stdin: true``, for one attach session.

        The process runtime reaches it through its shim's ``attach.sock``, docker through the
        engine's attach endpoint. A runtime that runs nothing (fake) refuses with this error, which
        the kubelet reports to the client instead of silently dropping what is typed.
        """
        raise NotSupported("attaching to a container's stdin")

    def log_path(self, container_id: str) -> Path | None:
        """The container's log in CRI format (``<RFC3339Nano> stdout|stderr F|P <text>``), if it has one."""
        c = self.container(container_id)
        return c.log_path if c is not None else None

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        return None

    async def all_stats(self) -> dict[str, ContainerStats]:
        """Usage of every running container (one pass: runtimes that scan /proc do it once)."""
        out: dict[str, ContainerStats] = {}
        for c in self.list_containers():
            if c.running:
                stats = await self.container_stats(c.id)
                if stats is not None:
                    out[c.id] = stats
        return out

    def probe_address(self, sandbox: SandboxStatus) -> str:
        return sandbox.ip


async def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed (a bound, not a schedule)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(interval)
    return True


def image_digest(image: str) -> str:
    """A stable image ID for runtimes that pull nothing: ``sha256:<hex digest of the image name>``."""
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()
