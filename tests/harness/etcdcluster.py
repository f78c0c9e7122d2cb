"""Real etcd members (``/usr/bin/etcd``, 3.4) as child processes on 127.0.0.1, for compatibility tests.

The interface mirrors ``KVCluster`` (``start``, ``wait_ready``, ``endpoints``, ``kill``, ``leader``,
``close``) so a test can be parametrized over both systems: the built-in store and etcd speak the same
v3 JSON API (etcd's grpc-gateway), so the same client code talks to either.

Members listen on free ports taken from the OS, keep their data in a directory under ``root`` and log to
``root/<name>.log``. ``kill(i)`` is SIGKILL; ``start(i)`` after it restarts the member from its data
directory (etcd then ignores ``--initial-cluster-state``). Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.kvcluster import MemberProcesses, free_ports, post_json

ETCD = shutil.which("etcd")


@dataclass
class EtcdMember:
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
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


@dataclass
class EtcdCluster(MemberProcesses):
    root: Path
    size: int = 3
    binary: str | None = None
    extra_args: tuple[str, ...] = ()
    members: list[EtcdMember] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.binary = self.binary or ETCD
        if self.binary is None:
            raise RuntimeError("etcd is not installed")
        self.root.mkdir(parents=True, exist_ok=True)
        ports = free_ports(2 * self.size)
        for i in range(self.size):
            name = f"e{i + 1}"
            self.members.append(EtcdMember(name, ports[2 * i], ports[2 * i + 1], self.root / name,
                                           self.root / f"{name}.log"))
        # A token unique to this cluster, so members of another test's cluster can never join it.
        self.token = f"pilothouse-test-{os.getpid()}-{time.monotonic_ns()}"

    @property
    def endpoints(self) -> list[str]:
        return [m.url for m in self.members]

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def command(self, i: int) -> list[str]:
        m = self.members[i]
        assert self.binary is not None
        return [self.binary, "--name", m.name, "--data-dir", str(m.data_dir),
                "--listen-client-urls", m.url, "--advertise-client-urls", m.url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", self.initial_cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token, *self.extra_args]

    def start(self, i: int | None = None) -> None:
        # ETCD_* variables in the environment would override the flags; drop them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        for j in ([i] if i is not None else range(self.size)):
            m = self.members[j]
            if m.proc is not None and m.proc.poll() is None:
                continue
            with open(m.log_path, "ab") as log:
                m.proc = subprocess.Popen(self.command(j), stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=env)

    def status(self, i: int, timeout: float = 1.0) -> dict[str, Any] | None:
        try:
            code, body = post_json(self.members[i].url + "/v3/maintenance/status", {}, timeout)
        except (OSError, ValueError):
            return None
        return body if code == 200 and isinstance(body, dict) else None

    def leader(self, timeout: float = 20.0) -> int:
        """Index of the member every live member agrees leads, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids: dict[int, int] = {}
            leaders: set[Any] = set()
            for i in range(self.size):
                if not self.alive(i):
                    continue
                st = self.status(i, 0.5)
                if st is None:
                    leaders.add(None)
                    continue
                ids[int(st["header"]["member_id"])] = i
                leaders.add(st.get("leader"))
            if len(leaders) == 1 and None not in leaders:
                leader_id = int(leaders.pop())
                if leader_id in ids:
                    return ids[leader_id]
            time.sleep(0.1)
        raise TimeoutError(f"no agreed etcd leader within {timeout}s; logs in {self.root}")

    def wait_ready(self, timeout: float = 30.0) -> int:
        """Wait for an agreed leader and a linearizable read answered by every live member."""
        deadline = time.monotonic() + timeout
        leader = self.leader(timeout)
        for i in range(self.size):
            if not self.alive(i):
                continue
            while True:
                try:
                    code, _ = post_json(self.members[i].url + "/v3/kv/range", {"key": "X19yZWFkeV9f"}, 5.0)
                    if code == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"etcd member {i} never answered a linearizable read; logs in {self.root}")
                time.sleep(0.1)
        return leader
