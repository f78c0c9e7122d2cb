"""The ``fake`` runtime (like KWOK): containers are records; nothing runs.

A started container becomes running after ``start_delay`` seconds (``--fake-start-delay``) and stays
running until it is stopped — unless the pod asks otherwise through annotations, which lets scale
tests run Jobs and exercise autoscaling on fake nodes:

* ``kubelet.pilothouse.io/fake-exit-after: "<seconds>"`` — each container exits after that long,
  with ``kubelet.pilothouse.io/fake-exit-code`` (default 0);
* ``kubelet.pilothouse.io/fake-cpu-usage: "250m"`` and ``.../fake-memory-usage: "64Mi"`` — the usage
  each container reports in ``/stats/summary`` (and so in ``kubectl top``); 0 otherwise.

Probes and hooks succeed at once (``exec_sync`` exits 0); ``kubectl exec`` and ``attach -i`` are
refused (``NotSupported``): there is no process to talk to. State is kept in memory and, when a
directory is given, in one small JSON file per container, so a restarted kubelet re-adopts its fake
containers like any other runtime's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from apimachinery.quantity import Quantity

from .base import (EXITED, RUNNING, AttachedStdin, ContainerConfig, ContainerStats, ContainerStatus, ExecResult,
                   NotSupported, Runtime, RuntimeError_, SandboxConfig, SandboxStatus, image_digest)

ANNOTATION_EXIT_AFTER = "kubelet.pilothouse.io/fake-exit-after"
ANNOTATION_EXIT_CODE = "kubelet.pilothouse.io/fake-exit-code"
ANNOTATION_CPU = "kubelet.pilothouse.io/fake-cpu-usage"
ANNOTATION_MEMORY = "kubelet.pilothouse.io/fake-memory-usage"


def _quantity(text: str | None, *, milli: bool) -> int:
    if not text:
        return 0
    try:
        q = Quantity(text)
    except ValueError:
        return 0
    return q.milli_value() if milli else q.value()


class FakeRuntime(Runtime):
    name = "fake"
    scheme = "fake"

    def __init__(self, *, ipam: Any = None, state_dir: Path | None = None, start_delay: float = 0.0) -> None:
        super().__init__()
        self.ipam = ipam
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.start_delay = start_delay
        self._containers: dict[str, ContainerStatus] = {}
        self._usage: dict[str, tuple[int, int]] = {}  # id -> (cpu millicores, memory bytes)
        self._sandboxes: dict[str, SandboxStatus] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._exit_codes: dict[str, int] = {}
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)

    def version(self) -> str:
        return "fake://0.1.0"

    # ------------------------------------------------------------------ persistence

    def _save(self, kind: str, key: str, doc: dict[str, Any] | None) -> None:
        if self.state_dir is None:
            return
        path = self.state_dir / f"{kind}-{key}.json"
        if doc is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)

    def _save_container(self, c: ContainerStatus) -> None:
        cpu, mem = self._usage.get(c.id, (0, 0))
        self._save("c", c.id, {"id": c.id, "pod_uid": c.pod_uid, "name": c.name, "attempt": c.attempt, "state": c.state,
                               "image": c.image, "image_id": c.image_id, "created_at": c.created_at,
                               "started_at": c.started_at, "finished_at": c.finished_at, "exit_code": c.exit_code,
                               "reason": c.reason, "labels": c.labels, "cpu": cpu, "mem": mem})

    async def start(self) -> None:
        if self.state_dir is None:
            return
        for path in sorted(self.state_dir.glob("s-*.json")):
            with contextlib.suppress(OSError, ValueError):
                doc = json.loads(path.read_text())
                self._sandboxes[doc["pod_uid"]] = SandboxStatus(doc["pod_uid"], doc.get("ip", ""))
                if self.ipam is not None and doc.get("ip"):
                    self.ipam.restore(doc["pod_uid"], doc["ip"])
        for path in sorted(self.state_dir.glob("c-*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError):
                d = json.loads(path.read_text())
                c = ContainerStatus(id=d["id"], pod_uid=d["pod_uid"], name=d["name"], attempt=d["attempt"],
                                    state=d["state"], image=d["image"], image_id=d["image_id"],
                                    created_at=d["created_at"], started_at=d["started_at"],
                                    finished_at=d["finished_at"], exit_code=d["exit_code"], reason=d["reason"],
                                    labels=d["labels"])
                self._containers[c.id] = c
                self._usage[c.id] = (d.get("cpu", 0), d.get("mem", 0))

    async def close(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()

    # ------------------------------------------------------------------ sandboxes

    async def run_pod_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        sb = self._sandboxes.get(config.pod_uid)
        if sb is None:
            ip = self.ipam.allocate(config.pod_uid) if self.ipam is not None else ""
            sb = SandboxStatus(config.pod_uid, ip)
            self._sandboxes[config.pod_uid] = sb
            self._save("s", config.pod_uid, {"pod_uid": config.pod_uid, "ip": ip})
        return sb

    async def remove_pod_sandbox(self, pod_uid: str) -> None:
        for c in self.list_containers(pod_uid):
            await self.remove_container(c.id)
        if self._sandboxes.pop(pod_uid, None) is not None:
            self._save("s", pod_uid, None)
        if self.ipam is not None:
            self.ipam.release(pod_uid)

    def sandboxes(self) -> dict[str, SandboxStatus]:
        return dict(self._sandboxes)

    # ------------------------------------------------------------------ containers

    async def start_container(self, sandbox: SandboxStatus, config: ContainerConfig) -> ContainerStatus:
        if sandbox.pod_uid not in self._sandboxes:
            raise RuntimeError_("CreateContainerError", "no sandbox for the pod")
        if self.start_delay > 0:
            await asyncio.sleep(self.start_delay)
        now = time.time()
        c = ContainerStatus(id=secrets.token_hex(32), pod_uid=config.pod_uid, name=config.name,
                            attempt=config.attempt, state=RUNNING, image=config.image,
                            image_id=image_digest(config.image), created_at=now, started_at=now,
                            labels=config.all_labels())
        ann = config.annotations
        self._usage[c.id] = (_quantity(ann.get(ANNOTATION_CPU), milli=True),
                             _quantity(ann.get(ANNOTATION_MEMORY), milli=False))
        self._containers[c.id] = c
        self._save_container(c)
        exit_after = ann.get(ANNOTATION_EXIT_AFTER)
        if exit_after:
            with contextlib.suppress(ValueError):
                code = int(ann.get(ANNOTATION_EXIT_CODE) or 0)
                self._timers[c.id] = asyncio.get_running_loop().call_later(
                    max(0.0, float(exit_after)), self._exit, c.id, code)
        return c

    def _exit(self, container_id: str, code: int) -> None:
        self._timers.pop(container_id, None)
        c = self._containers.get(container_id)
        if c is None or c.state != RUNNING:
            return
        c.state = EXITED
        c.exit_code = code
        c.reason = "Completed" if code == 0 else "Error"
        c.finished_at = time.time()
        self._save_container(c)
        self._notify_exit(c)

    async def stop_container(self, container_id: str, grace: float) -> ContainerStatus:
        c = self._containers.get(container_id)
        if c is None:
            raise RuntimeError_("NotFound", f"no container {container_id}")
        timer = self._timers.pop(container_id, None)
        if timer is not None:
            timer.cancel()
        if c.state == RUNNING:
            # As a real process that handles SIGTERM and exits cleanly would.
            self._exit(container_id, 0)
        return c

    async def remove_container(self, container_id: str) -> None:
        timer = self._timers.pop(container_id, None)
        if timer is not None:
            timer.cancel()
        if self._containers.pop(container_id, None) is not None:
            self._usage.pop(container_id, None)
            self._save("c", container_id, None)

    def statuses(self) -> dict[str, ContainerStatus]:
        return self._containers

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        c = self._containers.get(container_id)
        if c is None or c.state != RUNNING:
            raise RuntimeError_("NotRunning", "container is not running")
        return ExecResult(0)

    async def attach_stdin(self, container_id: str) -> AttachedStdin:
        raise NotSupported("attaching to a container's stdin (the fake runtime runs no process to read it)")

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        c = self._containers.get(container_id)
        if c is None or c.state != RUNNING:
            return None
        now = time.time()
        cpu_milli, mem = self._usage.get(container_id, (0, 0))
        return ContainerStats(now, int(cpu_milli * 1_000_000 * max(0.0, now - c.started_at)), mem, mem, mem)

