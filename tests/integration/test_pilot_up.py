"""`pilot up` / `status` / `down`: a supervised local cluster that heals and keeps its data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness.apicluster import KUBECTL

pytestmark = pytest.mark.slow

COMPONENTS = ["kvstore-1", "kvstore-2", "kvstore-3", "apiserver-1", "scheduler-1", "scheduler-2",
              "controller-manager-1", "controller-manager-2", "kubelet-n1", "kubelet-n2", "proxy-n1", "proxy-n2",
              "dns", "ingress"]


def pilot(*args: str, cwd: Path, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pilot", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"pilot {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def kubectl(state: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([KUBECTL, "--kubeconfig", str(state / "kubeconfig"), "--cache-dir", str(state / "kc"),
                             *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_up_status_heal_restart_down(tmp_path: Path) -> None:
    state = tmp_path / ".pilot"
    try:
        out = pilot("up", "--detach", "--api-port", "0", "--store-port", "0", "--apiservers", "1", cwd=tmp_path).stdout
        # not a terminal: one plain line per component as it became healthy, then the nodes, then ready
        components = [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["healthy"]]
        assert sorted(components) == sorted(COMPONENTS), out
        assert "Pilothouse is ready" in out and "\x1b[" not in out, out
        assert (state / "kubeconfig").exists()
        assert oct((state / "tokens.csv").stat().st_mode)[-3:] == "600"
        out = pilot("status", cwd=tmp_path).stdout  # exit code 0: every component answers its health check
        assert "kvstore-1" in out and "apiserver-1" in out and "*" in out
        kubectl(state, "create", "configmap", "keep", "--from-literal=a=b")
        nodes = kubectl(state, "get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}")
        assert nodes.stdout.split() == ["True", "True"]
        # components are named in ps (they are forked by the supervisor's fork server)
        pid = int((state / "pids" / "scheduler-1.pid").read_text())
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "scheduler-1"

        # kill -9 the API server: the supervisor restarts it
        pid = int((state / "pids" / "apiserver-1.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if kubectl(state, "get", "configmap", "keep", check=False).returncode == 0:
                new_pid = (state / "pids" / "apiserver-1.pid").read_text().strip()
                if new_pid != str(pid):
                    break
            time.sleep(0.3)
        else:
            raise AssertionError("API server was not restarted")

        # the fork server killed too: the next restart starts a new one
        supervisor = int((state / "pids" / "supervisor.pid").read_text())
        forkserver = next(int(p) for p in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
                          if b"forkserver_main" in Path(f"/proc/{p}/cmdline").read_bytes())
        os.kill(forkserver, signal.SIGKILL)
        pid = int((state / "pids" / "scheduler-1.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (state / "pids" / "scheduler-1.pid").read_text().strip() != str(pid) \
                    and pilot("status", cwd=tmp_path, check=False).returncode == 0:
                break
            time.sleep(0.3)
        else:
            raise AssertionError("scheduler-1 was not restarted after the fork server died")

        # a full restart on the same state dir keeps every object; nothing is left running after down
        pids = [int(p.read_text()) for p in (state / "pids").glob("*.pid")]
        pilot("down", cwd=tmp_path)
        assert not list((state / "pids").glob("*.pid"))
        assert not [p for p in pids if Path(f"/proc/{p}").exists()
                    and Path(f"/proc/{p}/stat").read_text().split(")")[1].split()[0] != "Z"]
        pilot("up", "--detach", cwd=tmp_path)
        assert kubectl(state, "get", "configmap", "keep", "-o", "jsonpath={.data.a}").stdout == "b"
    finally:
        pilot("down", "--purge", cwd=tmp_path, check=False)
    assert not state.exists()


def test_up_demo_prints_a_url_that_answers(tmp_path: Path) -> None:
    import re
    import urllib.request

    try:
        out = pilot("up", "--detach", "--demo", "--api-port", "0", "--store-port", "0", cwd=tmp_path).stdout
        match = re.search(r"demo answers at\s+(http://\S+)", out)
        assert match, out
        with urllib.request.urlopen(match.group(1), timeout=10) as resp:
            assert resp.read().startswith(b"hello from demo-")
        # process pods are told where the cluster DNS is, and it resolves the demo Service
        state = tmp_path / ".pilot"
        pod = kubectl(state, "get", "pods", "-l", "app=demo", "-o", "jsonpath={.items[0].metadata.name}").stdout
        dns = kubectl(state, "exec", pod, "--", "printenv", "PILOT_DNS").stdout.strip()
        host, port = dns.rsplit(":", 1)
        from dnslib import DNSRecord

        answer = DNSRecord.parse(DNSRecord.question("demo.default.svc.cluster.local").send(host, int(port), timeout=5))
        cluster_ip = kubectl(state, "get", "svc", "demo", "-o", "jsonpath={.spec.clusterIP}").stdout
        assert [str(r.rdata) for r in answer.rr] == [cluster_ip]
    finally:
        pilot("down", "--purge", cwd=tmp_path, check=False)
