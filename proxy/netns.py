"""Service addresses inside the pods' own network namespaces (pods that are Docker containers).

Under ``pilot up`` pods are host processes: a ClusterIP is a 127/8 address of the host, where the
node's proxy listens. Under docker compose every pod is a sandbox container with its own network
namespace, where 127/8 is the pod's *own* loopback: nothing of the node's proxy is there. So the
node's proxy (``--pod-netns=docker``) also listens inside each of its node's pod sandboxes:

* a short-lived thread enters the sandbox's namespace (``setns(2)`` moves only the calling thread),
  creates and binds the listening socket, and ends. The socket stays in that namespace while the
  proxy's event loop accepts on it; connections to endpoints are made from the proxy's own
  namespace (the compose network, where pod IPs are reachable). A fresh thread each time, never a
  pooled one: a pooled thread left in a pod's namespace would resolve and connect from there later.
* ``DockerSandboxes`` finds the sandboxes: running containers labelled as pod sandboxes of this
  node (and of this kubelet's root dir, since two compose projects both have a ``kubelet-1``),
  refreshed on Docker's container start/die events and every ``resync`` seconds. A namespace is
  named by ``/proc/<sandbox pid>/ns/net``, so the proxy needs the host's PID namespace and
  CAP_SYS_ADMIN (``pid: host`` and ``cap_add: [SYS_ADMIN]`` in docker-compose.yml).

Only loopback addresses are served in a pod's namespace (any other address is not local there and
the pod's packets to it leave through its default route): the service range must be in 127/8, as
``pilot up`` and docker-compose.yml configure it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apimachinery.containerlabels import LABEL_NODE_NAME, LABEL_POD_UID, LABEL_ROOT, LABEL_TYPE

from .model import ListenKey

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000


def _bind(key: ListenKey) -> socket.socket:
    kind = socket.SOCK_DGRAM if key.protocol == "UDP" else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((key.ip, key.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_in_namespace(netns: str, key: ListenKey) -> socket.socket:
    """A socket bound (and listening, for TCP) to ``key`` inside the network namespace file ``netns``."""
    result: dict[str, Any] = {}

    def enter_and_bind() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result["sock"] = _bind(key)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=enter_and_bind, name="netns-bind", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["sock"]


async def open_in_namespace(netns: str, key: ListenKey) -> socket.socket:
    # The thread is ours alone and lives for one bind (see the module docstring), so it is not
    # asyncio.to_thread's pool: the loop waits for it in a pool thread that never changes namespace.
    return await asyncio.get_running_loop().run_in_executor(None, bind_in_namespace, netns, key)


@dataclass(frozen=True)
class PodNamespace:
    pod_uid: str
    container_id: str
    path: str  # /proc/<pid>/ns/net


class DockerSandboxes:
    """The network namespaces of this node's running pod sandboxes, kept current from Docker."""

    def __init__(self, *, node_name: str, root_dir: str = "", docker_host: str | None = None,
                 resync: float = 10.0, proc: str = "/proc") -> None:
        self.node_name = node_name
        self.root_dir = root_dir
        self.docker_host = docker_host
        self.resync = resync
        self.proc = proc
        self.namespaces: dict[str, PodNamespace] = {}  # sandbox container id -> namespace
        self.on_change: list[Callable[[], None]] = []
        self._docker: Any = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _filters(self) -> dict[str, list[str]]:
        labels = [f"{LABEL_TYPE}=podsandbox", f"{LABEL_NODE_NAME}={self.node_name}"]
        if self.root_dir:
            labels.append(f"{LABEL_ROOT}={self.root_dir}")
        return {"label": labels}

    def start(self) -> None:
        import aiodocker

        self._docker = aiodocker.Docker(url=self.docker_host)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._refresh_loop(), name="sandboxes-refresh"),
                       loop.create_task(self._events_loop(), name="sandboxes-events")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._docker is not None:
            await self._docker.close()
            self._docker = None

    async def refresh(self) -> None:
        listed = await self._docker.containers.list(filters={**self._filters(), "status": ["running"]})
        found: dict[str, PodNamespace] = {}
        for item in listed:
            cid = item.id
            known = self.namespaces.get(cid)
            if known is not None and os.path.exists(known.path):
                found[cid] = known
                continue
            with contextlib.suppress(Exception):  # gone between the list and the inspect
                info = await item.show()
                pid = int((info.get("State") or {}).get("Pid") or 0)
                if pid > 0:
                    labels = (info.get("Config") or {}).get("Labels") or {}
                    found[cid] = PodNamespace(labels.get(LABEL_POD_UID, ""), cid,
                                              f"{self.proc}/{pid}/ns/net")
        if found != self.namespaces:
            added = found.keys() - self.namespaces.keys()
            removed = self.namespaces.keys() - found.keys()
            self.namespaces = found
            log.info("pod namespaces changed", extra={"event": "pod_namespaces", "count": len(found),
                                                       "added": len(added), "removed": len(removed)})
            for fn in self.on_change:
                fn()

    async def _refresh_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - the engine may be restarting: try again
                log.warning("cannot list pod sandboxes", extra={"event": "sandboxes_failed", "error": repr(exc)})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.resync)

    async def _events_loop(self) -> None:
        """Docker's start/die events of sandboxes wake the refresh at once (the periodic one is the fallback)."""
        while True:
            try:
                await self._docker.events.stop()  # a stream that ended is started again by subscribe
                subscriber = self._docker.events.subscribe(filters=json.dumps({
                    "type": ["container"], "event": ["start", "die", "destroy"], **self._filters()}))
                while True:
                    event = await subscriber.get()
                    if event is None:
                        break
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.info("docker events ended", extra={"event": "sandboxes_events_failed", "error": repr(exc)})
            self._wake.set()
            await asyncio.sleep(self.resync / 2)
