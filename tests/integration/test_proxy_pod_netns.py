"""ClusterIPs inside pods that are Docker containers: the node's proxy listens in each sandbox's namespace.

A real API server and a real proxy process (``--pod-netns=docker``); "pods" are containers labelled
as the docker runtime labels its sandboxes (node name, kubelet root dir), one serving HTTP on its
pod IP, one acting as the client. The client reaches the Service's loopback ClusterIP from inside its
own network namespace. Sandboxes of another node (or another kubelet root dir) are left alone.

Needs root (the proxy enters other namespaces), a Docker engine and a local image (``BASE_IMAGE``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from apimachinery.containerlabels import LABEL_NODE_NAME, LABEL_POD_UID, LABEL_ROOT, LABEL_TYPE
from tests.harness.apicluster import APICluster
from tests.integration.test_proxy_support import api, root  # noqa: F401 - fixtures
from tests.integration.test_proxy_support import (Component, create_service, endpoint, ensure_namespace, free_port_on,
                                                  loopback_net, must, put_slice, wait_for)

CIDR, NODE_IP, POD = loopback_net()
IMAGE = os.environ.get("BASE_IMAGE") or "python:3.11-slim"
NODE = f"netns-{os.getpid()}"


def _docker(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout)


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "entering other network namespaces needs root"
    if shutil.which("docker") is None:
        return "no docker CLI"
    try:
        if _docker("version", check=False, timeout=10).returncode != 0:
            return "no Docker engine answers"
        if _docker("image", "inspect", IMAGE, check=False, timeout=10).returncode != 0:
            return f"image {IMAGE} is not present (set BASE_IMAGE to a local image)"
    except subprocess.TimeoutExpired:
        return "the Docker engine does not answer"
    return None


class Sandboxes:
    """Containers labelled as pod sandboxes; all removed at the end."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def run(self, *argv: str, node: str = NODE, root_dir: str = "/kubelet-root") -> str:
        cid = _docker("run", "-d", "--label", f"{LABEL_TYPE}=podsandbox", "--label", f"{LABEL_NODE_NAME}={node}",
                      "--label", f"{LABEL_ROOT}={root_dir}", "--label", f"{LABEL_POD_UID}={uuid.uuid4()}",
                      IMAGE, *argv).stdout.strip()
        self.ids.append(cid)
        return cid

    def ip(self, cid: str) -> str:
        return _docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid).stdout.strip()

    def remove_all(self) -> None:
        if self.ids:
            _docker("rm", "-f", *self.ids, check=False)


@pytest.fixture
def sandboxes() -> Iterator[Sandboxes]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    sb = Sandboxes()
    try:
        yield sb
    finally:
        sb.remove_all()


def _fetch(cid: str, url: str) -> str:
    """What a request from inside the container ``cid`` gets: the first body line, or the error."""
    out = _docker("exec", cid, "python3", "-c",
                  "import urllib.request, sys\n"
                  f"try: print(urllib.request.urlopen({url!r}, timeout=3).read().decode().splitlines()[0])\n"
                  "except Exception as exc: print('error', exc)", check=False, timeout=30)
    return (out.stdout or out.stderr).strip()


def test_a_pod_container_reaches_a_cluster_ip_through_the_node_proxy(api: APICluster, root: Path,  # noqa: F811
                                                                      sandboxes: Sandboxes) -> None:
    ns = "netns"
    ensure_namespace(api, ns)
    server = sandboxes.run("sh", "-c", "mkdir -p /srv && echo served-by-pod > /srv/index.html && "
                                       "cd /srv && exec python3 -m http.server 8000")
    svc = create_service(api, ns, "web", [{"name": "http", "port": 80, "targetPort": 8000, "protocol": "TCP"}],
                         selector=None)
    cluster_ip = svc["spec"]["clusterIP"]
    put_slice(api, ns, "web", [endpoint(sandboxes.ip(server))], [{"name": "http", "port": 8000, "protocol": "TCP"}])

    proxy = Component(api, root, "proxy", "--node-name", NODE, "--node-ip", NODE_IP, "--pod-netns=docker",
                      "--pod-netns-root-dir=/kubelet-root", "--no-lb-allocator",
                      health=f"{NODE_IP}:{free_port_on(NODE_IP)}")
    try:
        proxy.wait_ready()
        # A pod started after the proxy: Docker's start event brings its namespace in.
        client = sandboxes.run("sleep", "600")
        url = f"http://{cluster_ip}/"
        try:
            wait_for(lambda: _fetch(client, url) == "served-by-pod", 60, "the ClusterIP answering inside the pod",
                     interval=0.5)
        except AssertionError:
            print(_fetch(client, url), proxy.logs())
            raise
        # The server pod (there before the proxy) has the listener too: it reaches itself through the Service.
        assert _fetch(server, url) == "served-by-pod"

        # Another node's pod and a pod of another kubelet (root dir) on this node name are not entered.
        other_node = sandboxes.run("sleep", "600", node=f"{NODE}-other")
        other_root = sandboxes.run("sleep", "600", root_dir="/another-kubelet")
        for cid in (other_node, other_root):
            assert _fetch(cid, url).startswith("error"), cid

        # A Service created later is served in the running pods' namespaces as well.
        later = create_service(api, ns, "later", [{"name": "http", "port": 8081, "targetPort": 8000,
                                                   "protocol": "TCP"}], selector=None)
        put_slice(api, ns, "later", [endpoint(sandboxes.ip(server))], [{"name": "http", "port": 8000,
                                                                        "protocol": "TCP"}])
        wait_for(lambda: _fetch(client, f"http://{later['spec']['clusterIP']}:8081/") == "served-by-pod", 30,
                 "the later Service inside the pod", interval=0.5)

        # The Service deleted: its address stops answering inside the pod.
        must(api.request("DELETE", f"/api/v1/namespaces/{ns}/services/later"))
        wait_for(lambda: _fetch(client, f"http://{later['spec']['clusterIP']}:8081/").startswith("error"), 30,
                 "the deleted Service gone from the pod", interval=0.5)
        assert proxy.proc is not None and proxy.proc.poll() is None
    finally:
        proxy.stop()
