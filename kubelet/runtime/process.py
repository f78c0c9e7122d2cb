"""The ``process`` runtime: a container is a host process group supervised by ``kubelet/shim.py``.

Layout under the kubelet's root directory (``--root-dir``)::

    containers/<id>/spec.json     what the shim runs (argv, env, cwd, limits, log path)
    containers/<id>/state.json    labels, pids and times, written once the shim reported the pid
    containers/<id>/exit.json     written by the shim when the command exited (exit code, reason, OOM)
    containers/<id>/shim.log      the shim's own stderr
    containers/<id>/attach.sock   ``stdin: true``: the shim's socket into the container's stdin (attach)
    sandboxes/<pod uid>.json      the pod's loopback IP and identity
    logs/<ns>_<pod>_<uid>/<container>/<restartCount>.log   CRI-format log, rotated by the shim

Pod IPs are loopback addresses from the node's pod CIDR (``kubelet.ipam``); nothing has to be set up
for them because Linux answers on all of 127.0.0.0/8. A container that wants its own port space
binds ``$POD_IP``. Python programs get that for a wildcard bind too (``0.0.0.0``, ``::``): ``PYTHONPATH``
starts with ``kubelet/podnet``, whose ``sitecustomize`` turns it into a bind of ``$POD_IP``, so
replicas of ``python3 -m http.server`` on one node do not collide. Other programs that bind 0.0.0.0
share the host's port space.

``image`` is ignored (recorded in the status, with an ``imageID`` derived from its name): the
command runs from the host's filesystem. Exits are noticed through a pidfd on the shim (it is
readable once the shim exited, whether or not we are its parent), so adopted containers after a
kubelet restart are watched exactly like the ones we started.

Resource limits: when the memory (and cpu) cgroup hierarchy is writable (cgroup v2 with the
controllers delegated, or v1 ``/sys/fs/cgroup/memory``), each container gets a cgroup under
``pilothouse/<node>/`` with ``memory.max`` / ``memory.limit_in_bytes`` (the kernel OOM-kills it:
reported as ``OOMKilled``) and a CFS quota for its CPU limit; usage stats come from the same cgroup.
Otherwise (non-root, no delegation) the memory limit is ``RLIMIT_AS`` — a process that exceeds it
sees allocation failures instead of an OOM kill — and usage is summed from ``/proc`` over the
container's process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pty
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import (EXITED, RUNNING, AttachedStdin, ContainerConfig, ContainerStats, ContainerStatus, ExecResult,
                   ExecSession, Runtime, RuntimeError_, SandboxConfig, SandboxStatus, image_digest)

log = logging.getLogger(__name__)

SHIM = Path(__file__).resolve().parent.parent / "shim.py"
PODNET = Path(__file__).resolve().parent.parent / "podnet"  # its sitecustomize gives Python a pod's port space
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def proc_start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time since boot): tells a live process from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    if not rest or rest[0] == b"Z":
        return None  # a zombie has exited
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int | None, ticks: int | None) -> bool:
    if not pid:
        return False
    now = proc_start_ticks(pid)
    return now is not None and (ticks is None or now == ticks)


def _killpg(pgid: int | None, sig: int) -> None:
    if not pgid:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# ---------------------------------------------------------------------- cgroups

@dataclass
class Cgroups:
    """Where container cgroups go: a list of (version, controller, base dir); empty when not writable."""

    bases: list[tuple[int, str, Path]] = field(default_factory=list)

    @classmethod
    def detect(cls, node: str, *, root: Path = Path("/sys/fs/cgroup"), enabled: bool = True) -> Cgroups:
        if not enabled:
            return cls()
        unified = root / "cgroup.controllers"
        if unified.exists():
            base = root / "pilothouse" / node
            try:
                controllers = unified.read_text().split()
                if "memory" not in controllers:
                    return cls()
                for parent in (root, root / "pilothouse"):
                    parent.mkdir(exist_ok=True)
                    (parent / "cgroup.subtree_control").write_text(
                        " ".join(f"+{c}" for c in ("memory", "cpu") if c in controllers))
                base.mkdir(parents=True, exist_ok=True)
                (base / "cgroup.subtree_control").write_text(
                    " ".join(f"+{c}" for c in ("memory", "cpu") if c in controllers))
                return cls([(2, "unified", base)])
            except OSError:
                return cls()
        bases: list[tuple[int, str, Path]] = []
        for controller in ("memory", "cpu", "cpuacct"):
            mount = root / controller
            if not mount.is_dir():
                continue
            base = mount / "pilothouse" / node
            try:
                base.mkdir(parents=True, exist_ok=True)
                probe = base / f".probe-{os.getpid()}"
                probe.mkdir(exist_ok=True)
                probe.rmdir()
            except OSError:
                continue
            bases.append((1, controller, base))
        if not any(c == "memory" for _, c, _ in bases):
            return cls()
        return cls(bases)

    def for_container(self, cid: str) -> list[dict[str, Any]]:
        return [{"version": v, "controller": c, "path": str(base / cid)} for v, c, base in self.bases]


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_kv(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[k] = int(v)
    except OSError:
        pass
    return out


def cgroup_stats(entries: list[dict[str, Any]]) -> tuple[int, int, int] | None:
    """(cpu ns, working set bytes, usage bytes) from a container's cgroups, if it has them."""
    cpu = ws = usage = None
    for e in entries:
        path = Path(e["path"])
        if e["version"] == 2:
            stat = _read_kv(path / "cpu.stat")
            if "usage_usec" in stat:
                cpu = stat["usage_usec"] * 1000
            usage = _read_int(path / "memory.current")
            if usage is not None:
                inactive = _read_kv(path / "memory.stat").get("inactive_file", 0)
                ws = max(0, usage - inactive)
        elif e["controller"] == "cpuacct":
            cpu = _read_int(path / "cpuacct.usage")
        elif e["controller"] == "memory":
            usage = _read_int(path / "memory.usage_in_bytes")
            if usage is not None:
                inactive = _read_kv(path / "memory.stat").get("total_inactive_file", 0)
                ws = max(0, usage - inactive)
    if cpu is None or ws is None:
        return None
    return cpu, ws, usage or ws


def proc_group_stats() -> dict[int, tuple[int, int]]:
    """pgid → (cpu ns, rss bytes) summed over every process in /proc (one scan for all containers)."""
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2:].split()
        try:
            pgrp = int(rest[2])
            ticks = int(rest[11]) + int(rest[12])
            if int(entry.name) == pgrp:
                ticks += int(rest[13]) + int(rest[14])  # the leader's reaped children
            rss = int(rest[21]) * _PAGE
        except (IndexError, ValueError):
            continue
        acc = out.setdefault(pgrp, [0, 0])
        acc[0] += ticks
        acc[1] += rss
    return {k: (v[0] * 1_000_000_000 // _CLK_TCK, v[1]) for k, v in out.items()}


# ---------------------------------------------------------------------- helpers

async def _read_line(fd: int, timeout: float) -> bytes:
    """Read one line from a pipe without blocking the loop (the shim's pid report)."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    buf = bytearray()
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    try:
        deadline = loop.time() + timeout
        while b"\n" not in buf:
            ready.clear()
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise asyncio.TimeoutError from None
                await asyncio.wait_for(ready.wait(), remaining)
                continue
            if not chunk:
                break
            buf += chunk
    finally:
        loop.remove_reader(fd)
    return bytes(buf.split(b"\n", 1)[0])


@dataclass
class _Container:
    status: ContainerStatus
    dir: Path
    shim_pid: int | None = None
    shim_ticks: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    pidfd: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    cgroups: list[dict[str, Any]] = field(default_factory=list)
    stdin: bool = False  # the shim serves attach.sock
    stdin_once: bool = False
    tty: bool = False
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class ProcessRuntime(Runtime):
    name = "process"
    scheme = "process"

    def __init__(self, root: Path, *, node_name: str, ipam: Any, cgroups: bool = True,
                 log_max_bytes: int = 10 * 1024 * 1024, log_max_files: int = 5,
                 python: str = sys.executable) -> None:
        super().__init__()
        self.root = Path(root)
        self.node_name = node_name
        self.ipam = ipam
        self.log_max_bytes = log_max_bytes
        self.log_max_files = log_max_files
        self.python = python
        self.cgroups = Cgroups.detect(node_name, enabled=cgroups)
        self._containers: dict[str, _Container] = {}
        self._sandboxes: dict[str, SandboxStatus] = {}
        self._sandbox_meta: dict[str, dict[str, Any]] = {}
        (self.root / "containers").mkdir(parents=True, exist_ok=True)
        (self.root / "sandboxes").mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(parents=True, exist_ok=True)

    def version(self) -> str:
        return "process://0.1.0"

    @property
    def limits_mode(self) -> str:
        return f"cgroup-v{self.cgroups.bases[0][0]}" if self.cgroups.bases else "rlimit"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        for path in sorted((self.root / "sandboxes").glob("*.json")):
            try:
                meta = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            uid = meta["pod_uid"]
            self._sandboxes[uid] = SandboxStatus(uid, meta.get("ip", ""))
            self._sandbox_meta[uid] = meta
            if self.ipam is not None and meta.get("ip"):
                self.ipam.restore(uid, meta["ip"])
        for cdir in sorted((self.root / "containers").iterdir()):
            self._adopt(cdir)

    def _adopt(self, cdir: Path) -> None:
        state_path = cdir / "state.json"
        if not state_path.exists():
            # The kubelet died between starting a shim and recording it: the shim (if any) reported
            # its pid to a pipe nobody reads any more. Kill what the spec says could be there.
            with contextlib.suppress(OSError, ValueError):
                spec = json.loads((cdir / "spec.json").read_text())
                for e in spec.get("cgroups") or []:
                    for pid in (Path(e["path"]) / "cgroup.procs").read_text().split():
                        with contextlib.suppress(OSError):
                            os.kill(int(pid), signal.SIGKILL)
            shutil.rmtree(cdir, ignore_errors=True)
            return
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError):
            return
        status = ContainerStatus(
            id=cdir.name, pod_uid=state["pod_uid"], name=state["name"], attempt=int(state["attempt"]),
            state=RUNNING, image=state.get("image", ""), image_id=state.get("image_id", ""),
            created_at=state.get("created_at", 0.0), started_at=state.get("started_at", 0.0),
            pid=state.get("pid"), labels=state.get("labels") or {},
            log_path=Path(state["log_path"]) if state.get("log_path") else None)
        c = _Container(status, cdir, shim_pid=state.get("shim_pid"), shim_ticks=state.get("shim_ticks"),
                       env=state.get("env") or {}, cwd=state.get("cwd", ""), cgroups=state.get("cgroups") or [],
                       stdin=bool(state.get("stdin")), stdin_once=bool(state.get("stdin_once")),
                       tty=bool(state.get("tty")))
        self._containers[cdir.name] = c
        if (cdir / "exit.json").exists() or not alive(c.shim_pid, c.shim_ticks):
            self._finish(c, notify=False)
        else:
            self._watch(c)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for c in self._containers.values():
            if c.pidfd is not None:
                loop.remove_reader(c.pidfd)
                os.close(c.pidfd)
                c.pidfd = None

    # ------------------------------------------------------------------ sandboxes

    async def run_pod_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        existing = self._sandboxes.get(config.pod_uid)
        if existing is not None:
            return existing
        ip = self.ipam.allocate(config.pod_uid) if self.ipam is not None and not config.host_network else ""
        meta = {"pod_uid": config.pod_uid, "name": config.name, "namespace": config.namespace, "ip": ip,
                "created_at": time.time()}
        tmp = self.root / "sandboxes" / f"{config.pod_uid}.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self.root / "sandboxes" / f"{config.pod_uid}.json")
        sandbox = SandboxStatus(config.pod_uid, ip)
        self._sandboxes[config.pod_uid] = sandbox
        self._sandbox_meta[config.pod_uid] = meta
        return sandbox

    async def remove_pod_sandbox(self, pod_uid: str) -> None:
        for c in self.list_containers(pod_uid):
            if c.running:
                await self.stop_container(c.id, 0)
            await self.remove_container(c.id)
        meta = self._sandbox_meta.pop(pod_uid, None)
        self._sandboxes.pop(pod_uid, None)
        with contextlib.suppress(FileNotFoundError):
            (self.root / "sandboxes" / f"{pod_uid}.json").unlink()
        if meta is not None:
            shutil.rmtree(self.pod_log_dir(meta["namespace"], meta["name"], pod_uid), ignore_errors=True)
        if self.ipam is not None:
            self.ipam.release(pod_uid)

    def sandboxes(self) -> dict[str, SandboxStatus]:
        return dict(self._sandboxes)

    def pod_log_dir(self, namespace: str, name: str, uid: str) -> Path:
        return self.root / "logs" / f"{namespace}_{name}_{uid}"

    # ------------------------------------------------------------------ containers

    async def start_container(self, sandbox: SandboxStatus, config: ContainerConfig) -> ContainerStatus:
        cid = secrets.token_hex(32)
        cdir = self.root / "containers" / cid
        cdir.mkdir(parents=True)
        log_path = config.log_path or (self.pod_log_dir(config.pod_namespace, config.pod_name, config.pod_uid)
                                       / config.name / f"{config.attempt}.log")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            log_path.unlink()  # a leftover of an instance that was removed
        env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), **config.env}
        if sandbox.ip:  # not hostNetwork: a Python server's wildcard bind takes the pod IP (podnet/)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PODNET), env.get("PYTHONPATH", "")) if p)
        cwd = config.working_dir
        cgroups = self.cgroups.for_container(cid) if (config.memory_limit or config.cpu_limit_milli
                                                      or self.cgroups.bases) else []
        spec = {"argv": list(config.argv), "env": env, "cwd": cwd, "log_path": str(log_path),
                "log_max_bytes": self.log_max_bytes, "log_max_files": self.log_max_files,
                "exit_path": str(cdir / "exit.json"), "memory_limit": config.memory_limit,
                "cpu_limit_milli": config.cpu_limit_milli, "cgroups": cgroups,
                "stdin": config.stdin, "stdin_once": config.stdin_once, "tty": config.tty,
                "attach_socket": str(cdir / "attach.sock")}
        (cdir / "spec.json").write_text(json.dumps(spec))
        status = ContainerStatus(id=cid, pod_uid=config.pod_uid, name=config.name, attempt=config.attempt,
                                 state=RUNNING, image=config.image, image_id=image_digest(config.image),
                                 created_at=time.time(), labels=config.all_labels(), log_path=log_path)
        if not config.argv:
            raise RuntimeError_("CreateContainerError", "the process runtime needs a command: the image "
                                f"{config.image!r} is not run, set command/args")
        shim_log = open(cdir / "shim.log", "ab")
        try:
            popen = subprocess.Popen([self.python, "-I", "-S", str(SHIM), str(cdir / "spec.json")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=shim_log,
                                     start_new_session=True, close_fds=True, cwd="/")
        except OSError as exc:
            shutil.rmtree(cdir, ignore_errors=True)
            raise RuntimeError_("StartError", f"cannot start the shim: {exc}") from exc
        finally:
            shim_log.close()
        assert popen.stdout is not None
        try:
            line = await _read_line(popen.stdout.fileno(), 30.0)
            report = json.loads(line) if line else {"error": "the shim exited without reporting",
                                                    "reason": "StartError"}
        except (asyncio.TimeoutError, ValueError) as exc:
            popen.kill()
            report = {"error": f"the shim did not report a pid: {exc!r}", "reason": "StartError"}
        finally:
            popen.stdout.close()
        c = _Container(status, cdir, shim_pid=popen.pid, shim_ticks=proc_start_ticks(popen.pid), popen=popen,
                       env=env, cwd=cwd, cgroups=cgroups, stdin=config.stdin, stdin_once=config.stdin_once,
                       tty=config.tty)
        status.pid = report.get("pid")
        status.started_at = report.get("startedAt") or time.time()
        state = {"pod_uid": config.pod_uid, "name": config.name, "attempt": config.attempt, "image": config.image,
                 "image_id": status.image_id, "created_at": status.created_at, "started_at": status.started_at,
                 "pid": status.pid, "shim_pid": c.shim_pid, "shim_ticks": c.shim_ticks, "labels": status.labels,
                 "log_path": str(log_path), "env": env, "cwd": cwd, "cgroups": cgroups,
                 "stdin": config.stdin, "stdin_once": config.stdin_once, "tty": config.tty}
        tmp = cdir / "state.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, cdir / "state.json")
        self._containers[cid] = c
        if "error" in report:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.get_running_loop().run_in_executor(None, popen.wait, 5)
            if not (cdir / "exit.json").exists():
                (cdir / "exit.json").write_text(json.dumps({"exitCode": 128, "reason": "StartError",
                                                            "message": report["error"], "finishedAt": time.time()}))
            self._finish(c, notify=False)
            return status
        self._watch(c)
        return status

    def _watch(self, c: _Container) -> None:
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(c.shim_pid)  # type: ignore[arg-type]
        except (OSError, TypeError, AttributeError):
            loop.create_task(self._poll_exit(c))
            return
        c.pidfd = fd

        def readable() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            c.pidfd = None
            if c.popen is not None:
                c.popen.poll()  # reap our child
            self._finish(c, notify=True)

        loop.add_reader(fd, readable)

    async def _poll_exit(self, c: _Container) -> None:
        while alive(c.shim_pid, c.shim_ticks):
            await asyncio.sleep(0.5)
        self._finish(c, notify=True)

    def _finish(self, c: _Container, *, notify: bool) -> None:
        if c.status.state == EXITED:
            return
        st = c.status
        try:
            result = json.loads((c.dir / "exit.json").read_text())
        except (OSError, ValueError):
            # The shim vanished without writing an exit file (killed with -9): the container died with
            # it (PDEATHSIG); make sure of that and report what Kubernetes reports for lost containers.
            _killpg(st.pid, signal.SIGKILL)
            result = {"exitCode": 137, "reason": "ContainerStatusUnknown",
                      "message": "The container could not be located when the pod was terminated",
                      "finishedAt": time.time()}
        st.state = EXITED
        st.exit_code = int(result.get("exitCode", 137))
        st.reason = result.get("reason") or ("Completed" if st.exit_code == 0 else "Error")
        st.message = result.get("message", "")
        st.finished_at = float(result.get("finishedAt") or time.time())
        if result.get("startedAt") and not st.started_at:
            st.started_at = float(result["startedAt"])
        c.exited.set()
        if notify:
            self._notify_exit(st)

    async def stop_container(self, container_id: str, grace: float) -> ContainerStatus:
        c = self._containers.get(container_id)
        if c is None:
            raise RuntimeError_("NotFound", f"no container {container_id}")
        if c.status.state == RUNNING:
            _killpg(c.status.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(c.exited.wait(), max(grace, 0.0))
            for _ in range(3):
                if c.exited.is_set():
                    break
                _killpg(c.status.pid, signal.SIGKILL)
                for pid in self._cgroup_pids(c):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(c.exited.wait(), 5.0)
            if not c.exited.is_set():
                # The shim itself is stuck: kill it too (its container dies by PDEATHSIG).
                if c.shim_pid and alive(c.shim_pid, c.shim_ticks):
                    with contextlib.suppress(OSError):
                        os.kill(c.shim_pid, signal.SIGKILL)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(c.exited.wait(), 5.0)
                if not c.exited.is_set():
                    self._finish(c, notify=True)
        return c.status

    @staticmethod
    def _cgroup_pids(c: _Container) -> list[int]:
        pids: list[int] = []
        for e in c.cgroups:
            with contextlib.suppress(OSError, ValueError):
                pids += [int(p) for p in (Path(e["path"]) / "cgroup.procs").read_text().split()]
        return pids

    async def remove_container(self, container_id: str) -> None:
        c = self._containers.get(container_id)
        if c is None:
            return
        if c.status.state == RUNNING:
            await self.stop_container(container_id, 0)
        self._containers.pop(container_id, None)
        shutil.rmtree(c.dir, ignore_errors=True)
        if c.status.log_path is not None:
            for p in c.status.log_path.parent.glob(c.status.log_path.name + "*"):
                with contextlib.suppress(OSError):
                    p.unlink()

    def statuses(self) -> dict[str, ContainerStatus]:
        return {cid: c.status for cid, c in self._containers.items()}

    def container(self, container_id: str) -> ContainerStatus | None:
        c = self._containers.get(container_id)
        return c.status if c is not None else None

    # ------------------------------------------------------------------ beside a container

    def _context(self, container_id: str) -> _Container:
        c = self._containers.get(container_id)
        if c is None:
            raise RuntimeError_("NotFound", f"container {container_id} not found")
        if c.status.state != RUNNING:
            raise RuntimeError_("NotRunning", f"container {c.status.name} is not running")
        return c

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        c = self._context(container_id)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=c.env, cwd=c.cwd or None, start_new_session=True)
        except OSError as exc:
            return ExecResult(126 if isinstance(exc, PermissionError) else 127, b"", str(exc).encode())
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            _killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
            return ExecResult(-1, b"", b"", timed_out=True)
        _killpg(proc.pid, signal.SIGKILL)  # nothing it started outlives the probe
        return ExecResult(proc.returncode if proc.returncode is not None else -1, out, err)

    async def exec_stream(self, container_id: str, argv: list[str], *, tty: bool, stdin: bool) -> ExecSession:
        c = self._context(container_id)
        return await ProcessExec.start(argv, env=c.env, cwd=c.cwd or None, tty=tty, stdin=stdin)

    async def attach_stdin(self, container_id: str) -> AttachedStdin:
        c = self._context(container_id)
        name = c.status.name
        if not c.stdin:
            raise RuntimeError_("BadRequest", f"container {name} was started without stdin: set stdin: true in its "
                                              "spec to attach to it")
        try:
            reader, writer = await asyncio.wait_for(_open_unix(c.dir / "attach.sock"), 10)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if c.stdin_once:
                raise RuntimeError_("BadRequest", f"the stdin of container {name} is closed: it has stdinOnce set and "
                                                  "an attach session already ended") from exc
            raise RuntimeError_("BadRequest", f"the stdin of container {name} cannot be reached: {exc}") from exc
        except (OSError, asyncio.TimeoutError) as exc:
            raise RuntimeError_("InternalError", f"attaching to the stdin of container {name}: {exc!r}") from exc
        attached = ProcessStdin(reader, writer, raw=c.tty)
        if c.tty:
            await attached.subscribe_output()
        return attached

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        stats = await self.all_stats()
        return stats.get(container_id)

    async def all_stats(self) -> dict[str, ContainerStats]:
        now = time.time()
        out: dict[str, ContainerStats] = {}
        groups: dict[int, tuple[int, int]] | None = None
        for cid, c in self._containers.items():
            if c.status.state != RUNNING:
                continue
            cg = cgroup_stats(c.cgroups) if c.cgroups else None
            if cg is not None:
                out[cid] = ContainerStats(now, cg[0], cg[1], cg[2], cg[1])
                continue
            if groups is None:
                groups = proc_group_stats()
            cpu, rss = groups.get(c.status.pid or -1, (0, 0))
            out[cid] = ContainerStats(now, cpu, rss, rss, rss)
        return out

    # ------------------------------------------------------------------ tests and tooling

    def shim_pids(self) -> list[int]:
        return [c.shim_pid for c in self._containers.values() if c.shim_pid and c.status.state == RUNNING]


def kill_all(root: Path) -> int:
    """Kill every container process group (and shim) recorded under ``root``: for tests and ``--cleanup``."""
    killed = 0
    for state_path in Path(root).glob("containers/*/state.json"):
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError):
            continue
        if (state_path.parent / "exit.json").exists():
            continue
        if alive(state.get("pid"), None):
            _killpg(state.get("pid"), signal.SIGKILL)
            killed += 1
        if alive(state.get("shim_pid"), state.get("shim_ticks")):
            with contextlib.suppress(OSError):
                os.kill(state["shim_pid"], signal.SIGKILL)
    return killed


async def _open_unix(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a unix socket whose path may be longer than ``sun_path`` (107 bytes): then through
    ``/proc/self/fd/<fd of its directory>/<name>``, which the kernel resolves like the directory."""
    if len(os.fsencode(str(path))) < 100:
        return await asyncio.open_unix_connection(str(path))
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return await asyncio.open_unix_connection(f"/proc/self/fd/{dirfd}/{path.name}")
    finally:
        os.close(dirfd)


class ProcessStdin(AttachedStdin):
    """One attach session on a shim's ``attach.sock``: frames ``<type><length:4><payload>`` (0 data,
    1 the client's stdin ended, 2 send the pty's output here, 4 terminal size); closing the connection
    ends the session."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, raw: bool = False) -> None:
        self.reader = reader
        self.writer = writer
        self.raw = raw

    def output(self) -> AsyncIterator[tuple[int, bytes]] | None:
        return self._read() if self.raw else None

    async def subscribe_output(self) -> None:
        """Frame 2: the shim sends the pty's output on this connection from now on (sent before any
        input, so every answer to it arrives)."""
        await self._send(2, b"")

    async def _read(self) -> AsyncIterator[tuple[int, bytes]]:
        """What the pty prints, until the shim closes the connection (the container exited)."""
        with contextlib.suppress(OSError):
            while chunk := await self.reader.read(65536):
                yield 1, chunk

    async def _send(self, kind: int, payload: bytes) -> None:
        if self.writer.is_closing():
            return
        with contextlib.suppress(OSError):
            self.writer.write(bytes([kind]) + len(payload).to_bytes(4, "big") + payload)
            await self.writer.drain()

    async def write(self, data: bytes) -> None:
        for i in range(0, len(data), 1 << 20):
            await self._send(0, data[i:i + (1 << 20)])

    async def close_stdin(self) -> None:
        await self._send(1, b"")

    async def resize(self, width: int, height: int) -> None:
        cols, rows = (max(0, min(n, 65535)) for n in (width, height))
        await self._send(4, cols.to_bytes(2, "big") + rows.to_bytes(2, "big"))

    async def detach(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class ProcessExec(ExecSession):
    """``kubectl exec`` in the process runtime: a host process with the container's env and cwd."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int | None) -> None:
        self.proc = proc
        self.master = master
        self._stdin_closed = False

    @classmethod
    async def start(cls, argv: list[str], *, env: dict[str, str], cwd: str | None, tty: bool,
                    stdin: bool) -> ProcessExec:
        try:
            if tty:
                master, slave = pty.openpty()

                def ctty() -> None:
                    # New session, and the pty as its controlling terminal. Done here on the slave fd
                    # itself: uvloop runs this before the standard streams are in place.
                    import fcntl
                    import termios

                    with contextlib.suppress(OSError):
                        os.setsid()
                    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

                proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave,
                                                            env={"TERM": "xterm", **env}, cwd=cwd, preexec_fn=ctty)
                os.close(slave)
                os.set_blocking(master, False)
                return cls(proc, master)
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
                start_new_session=True)
            return cls(proc, None)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeError_("ExecError", f"exec {argv[0]!r}: {exc}") from exc

    async def write_stdin(self, data: bytes) -> None:
        if self.master is not None:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self.master, view)
                    view = view[n:]
                except BlockingIOError:
                    await asyncio.sleep(0.01)
                except OSError:
                    return
            del loop
            return
        if self.proc.stdin is not None and not self._stdin_closed:
            with contextlib.suppress(ConnectionError, BrokenPipeError):
                self.proc.stdin.write(data)
                await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.write(self.master, b"\x04")  # ^D: end of input on a terminal
            return
        if self.proc.stdin is not None and not self._stdin_closed:
            self._stdin_closed = True
            with contextlib.suppress(Exception):
                self.proc.stdin.close()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:  # type: ignore[override]
        if self.master is not None:
            loop = asyncio.get_running_loop()
            ready = asyncio.Event()
            loop.add_reader(self.master, ready.set)
            try:
                while True:
                    try:
                        data = os.read(self.master, 65536)
                    except BlockingIOError:
                        ready.clear()
                        waiter = asyncio.ensure_future(ready.wait())
                        exited = asyncio.ensure_future(self.proc.wait())
                        await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
                        waiter.cancel()
                        if exited.done() and not ready.is_set():
                            # Drain what is left, then stop.
                            with contextlib.suppress(OSError):
                                while data := os.read(self.master, 65536):
                                    yield 1, data
                            return
                        exited.cancel()
                        continue
                    except OSError:  # EIO: the other side closed
                        return
                    if not data:
                        return
                    yield 1, data
            finally:
                loop.remove_reader(self.master)
                with contextlib.suppress(OSError):
                    os.close(self.master)  # the terminal is done once its output is read
                self.master = None
            return
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()

        async def pump(stream: asyncio.StreamReader | None, channel: int) -> None:
            try:
                if stream is None:
                    return
                while chunk := await stream.read(65536):
                    await queue.put((channel, chunk))
            finally:
                await queue.put(None)

        tasks = [asyncio.ensure_future(pump(self.proc.stdout, 1)), asyncio.ensure_future(pump(self.proc.stderr, 2))]
        open_streams = 2
        try:
            while open_streams:
                item = await queue.get()
                if item is None:
                    open_streams -= 1
                    continue
                yield item
        finally:
            for t in tasks:
                t.cancel()

    async def resize(self, width: int, height: int) -> None:
        if self.master is None:
            return
        import fcntl
        import termios

        with contextlib.suppress(OSError):
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        code = await self.proc.wait()
        return 128 - code if code < 0 else code

    async def kill(self) -> None:
        _killpg(self.proc.pid, signal.SIGKILL)
