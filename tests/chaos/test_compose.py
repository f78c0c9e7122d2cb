"""docker compose: the same topology as containers; kill -9 a member and an API server, nothing is lost.

Runs where a Docker engine and compose v2 answer (`.ci/run` sets them up through
scripts/ensure-docker.sh); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness.kvcluster import REPO, free_ports

# Building the image (pip install inside it) takes minutes: more than the suite's default timeout.
pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(1500)]


def _docker_ok() -> str | None:
    if shutil.which("docker") is None:
        return "docker CLI not installed"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        return "no Docker engine answers"
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode != 0:
        return "docker compose v2 is not installed"
    base = os.environ.get("BASE_IMAGE", "python:3.11-slim")
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True, timeout=30).returncode != 0:
        return f"base image {base} is not available (run scripts/ensure-docker.sh)"
    return None


SKIP = _docker_ok()


@pytest.fixture
def compose(tmp_path: Path):
    if SKIP:
        pytest.skip(SKIP)
    project = f"pilothouse-test-{os.getpid()}"
    port, port2 = free_ports(2)
    port3 = free_ports(1)[0]
    env = {**os.environ, "PILOT_STATE_DIR": str(tmp_path / "state"), "PILOT_API_PORT": str(port),
           "PILOT_API_PORT_2": str(port2), "PILOT_INGRESS_PORT": str(port3),
           "PILOT_KUBELET_DIR": str(tmp_path / "kubelets")}

    def run(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["docker", "compose", "-p", project, "-f", str(REPO / "docker-compose.yml"), *args],
                                capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)}: {result.stdout}\n{result.stderr}")
        return result

    run("build")
    try:
        yield run, tmp_path / "state", project
    finally:
        logs = run("logs", "--no-color", "--tail", "30", check=False).stdout
        run("down", "-v", "--remove-orphans", timeout=300, check=False)
        print(logs[-6000:])


def kubectl(state: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["kubectl", "--kubeconfig", str(state / "kubeconfig"), "--cache-dir", str(state / "kc"),
                             *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result


def wait_for(check, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError("condition not reached in time")


def kill9(project: str, service: str) -> None:
    cid = subprocess.run(["docker", "ps", "-q", "-f", f"label=com.docker.compose.project={project}",
                          "-f", f"label=com.docker.compose.service={service}"], capture_output=True, text=True).stdout.split()[0]
    pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", cid], capture_output=True, text=True).stdout.strip()
    os.kill(int(pid), 9)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_compose_cluster_survives_kill9(compose) -> None:
    run, state, project = compose
    run("up", "-d", "--wait", timeout=600)
    wait_for(lambda: kubectl(state, "get", "ns", check=False).returncode == 0)
    kubectl(state, "create", "configmap", "survivor", "--from-literal=k=v")
    kill9(project, "kvstore-1")
    kill9(project, "apiserver-2")
    wait_for(lambda: kubectl(state, "get", "configmap", "survivor", "-o", "jsonpath={.data.k}", check=False).stdout == "v")
    # both killed containers come back (restart policy), and the data is still there
    wait_for(lambda: "kvstore-1" in run("ps", "--status", "running", "--services", check=False).stdout
             and "apiserver-2" in run("ps", "--status", "running", "--services", check=False).stdout)
    kubectl(state, "create", "configmap", "after", "--from-literal=k=w")
    assert kubectl(state, "get", "configmap", "after", "-o", "jsonpath={.data.k}").stdout == "w"

