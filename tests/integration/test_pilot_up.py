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
        pilot("up", "--detach", "--api-port", "0", "--store-port", "0", "--apiservers", "1", cwd=tmp_path)
        assert (state / "kubeconfig").exists()
        assert oct((state / "tokens.csv").stat().st_mode)[-3:] == "600"
        out = pilot("status", cwd=tmp_path).stdout
        assert "kvstore-1" in out and "apiserver-1" in out and "*" in out
        kubectl(state, "create", "configmap", "keep", "--from-literal=a=b")

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

        # a full restart on the same state dir keeps every object
        pilot("down", cwd=tmp_path)
        assert not list((state / "pids").glob("*.pid"))
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
