"""Real store members as child processes on 127.0.0.1, for tests, chaos and benchmarks.

Members are started with ``python -m kvstore`` (the same entry point as ``pilot kvstore``) and
really killed: ``kill(i)`` is SIGKILL, ``pause(i)`` is SIGSTOP. Ports are taken free from the OS.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilot.local import free_ports  # noqa: F401 (re-exported for the tests)

REPO = Path(__file__).resolve().parents[2]


def post_json(url: str, body: dict[str, Any] | None = None, timeout: float = 2.0) -> tuple[int, Any]:
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer(self) -> str:
        return f"127.0.0.1:{self.peer_port}"


class MemberProcesses:
    """Process control shared by the store and etcd harnesses (``members[i].proc``/``log_path``).

    ``kill`` is SIGKILL, ``pause`` SIGSTOP, ``stop`` SIGTERM with a bounded wait. Subclasses provide
    ``start(i=None)``.
    """

    members: list[Any]
    size: int

    def signal(self, i: int, sig: int) -> None:
        proc = self.members[i].proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, sig)

    def kill(self, i: int) -> None:
        self.signal(i, signal.SIGKILL)
        proc = self.members[i].proc
        if proc is not None:
            proc.wait(timeout=10)

    def pause(self, i: int) -> None:
        self.signal(i, signal.SIGSTOP)

    def resume(self, i: int) -> None:
        self.signal(i, signal.SIGCONT)

    def stop(self, i: int, timeout: float = 10.0) -> None:
        proc = self.members[i].proc
        if proc is None or proc.poll() is not None:
            return
        self.resume(i)
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def restart(self, i: int) -> None:
        self.kill(i)
        self.start(i)

    def alive(self, i: int) -> bool:
        proc = self.members[i].proc
        return proc is not None and proc.poll() is None

    def pid(self, i: int) -> int | None:
        proc = self.members[i].proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def logs(self) -> str:
        out = []
        for m in self.members:
            if m.log_path.exists():
                out.append(f"==== {m.name} ====\n" + m.log_path.read_text(errors="replace")[-4000:])
        return "\n".join(out)

    def close(self) -> None:
        for i in range(self.size):
            self.resume(i)
            proc = self.members[i].proc
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    def __enter__(self):  # type: ignore[no-untyped-def]
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class KVCluster(MemberProcesses):
    root: Path
    size: int = 3
    extra_args: tuple[str, ...] = ()
    members: list[Member] = field(default_factory=list)
    secret_file: Path | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        ports = free_ports(self.size * 2)
        for i in range(self.size):
            name = f"m{i + 1}"
            self.members.append(Member(name, ports[2 * i], ports[2 * i + 1], self.root / name,
                                       self.root / f"{name}.log"))
        self.secret_file = self.root / "peer-secret"
        self.secret_file.write_text(secrets.token_hex(32))
        self.secret_file.chmod(0o600)

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer}" for m in self.members)

    @property
    def endpoints(self) -> list[str]:
        return [m.url for m in self.members]

    def command(self, i: int) -> list[str]:
        m = self.members[i]
        return [sys.executable, "-m", "kvstore", "--name", m.name, "--data-dir", str(m.data_dir),
                "--listen-client", m.url, "--listen-peer", m.peer, "--initial-cluster", self.initial_cluster,
                "--peer-secret-file", str(self.secret_file), *self.extra_args]

    def start(self, i: int | None = None) -> None:
        for j in ([i] if i is not None else range(self.size)):
            m = self.members[j]
            if m.proc is not None and m.proc.poll() is None:
                continue
            log = open(m.log_path, "ab")
            m.proc = subprocess.Popen(self.command(j), stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                      env={**os.environ, "PYTHONUNBUFFERED": "1"})
            log.close()

    def status(self, i: int, timeout: float = 1.0) -> dict[str, Any] | None:
        try:
            code, body = post_json(self.members[i].url + "/v3/maintenance/status", {}, timeout)
        except (OSError, ValueError):
            return None
        return body if code == 200 and isinstance(body, dict) else None

    def leader(self, timeout: float = 40.0) -> int:
        """Index of the member every live member agrees leads, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        ids = {}
        while time.monotonic() < deadline:
            leaders = set()
            for i in range(self.size):
                if not self.alive(i):
                    continue
                st = self.status(i, 0.5)
                if st is None:
                    continue
                ids[int(st["header"]["member_id"])] = i
                leaders.add(st.get("leader"))
            if len(leaders) == 1 and None not in leaders:
                leader_id = int(leaders.pop())
                if leader_id in ids:
                    return ids[leader_id]
            time.sleep(0.1)
        raise TimeoutError(f"no agreed leader within {timeout}s; logs in {self.root}")

    def wait_ready(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        leader = self.leader(timeout)
        # A linearizable read needs a leader that has committed an entry of its term and a quorum
        # that answers its heartbeats (kvstore/readindex.py).
        while time.monotonic() < deadline:
            try:
                code, _ = post_json(self.members[leader].url + "/v3/kv/range", {"key": "X19yZWFkeV9f"}, 5.0)
                if code == 200:
                    return leader
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("cluster never answered a linearizable read")
