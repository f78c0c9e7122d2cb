"""pods/portforward and pods/attach through the API server to a process-runtime kubelet.

kubectl 1.32 port-forwards with SPDY/3.1 tunnelled in a WebSocket; the official Python client with the
WebSocket channel protocol. Both reach <pod IP>:port through the kubelet. ``kubectl attach`` streams
the running container's output.
"""

from __future__ import annotations

import re
import socket
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.stream import portforward

from tests.harness.apicluster import KUBECTL, APICluster
from tests.integration.test_kubelet import NODE, Env, KubeletProcess, running_ready, shell

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")

SERVER = ("mkdir -p www && cd www && echo 'hello from the pod' > index.html && "
          "exec python3 -m http.server 8000 --bind $POD_IP")


@pytest.fixture(scope="module")
def kubelet(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletProcess]:
    root = tmp_path_factory.mktemp("kubelet") / "root"
    k = KubeletProcess(api, root, NODE, "--capacity", "cpu=8,memory=16Gi,pods=20", "--lease-interval", "2")
    try:
        k.wait_ready()
        yield k
    finally:
        k.cleanup()


@pytest.fixture(scope="module")
def env(api: APICluster, kubelet: KubeletProcess) -> Env:
    e = Env(api, "streams")
    e.pod("web", [shell("c", SERVER, readinessProbe={"tcpSocket": {"port": 8000}, "periodSeconds": 1})])
    e.wait_pod("web", running_ready, 60)
    return e


def _port_forward(api: APICluster, ns: str, target: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(api.kubeconfig), "port-forward", "-n", ns, target,
                             ":8000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:NNNNN -> 8000"
    match = re.search(r"127\.0\.0\.1:(\d+) -> 8000", line)
    if match is None:
        proc.kill()
        raise AssertionError(f"kubectl port-forward did not start: {line!r} {proc.communicate(timeout=10)}")
    return proc, int(match.group(1))


def test_kubectl_port_forward_fetches_a_page(api: APICluster, env: Env) -> None:
    proc, port = _port_forward(api, env.ns, "pod/web")
    try:
        for _ in range(3):  # each request is a new connection: a new pair of SPDY streams
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=20) as resp:
                assert resp.status == 200 and resp.read() == b"hello from the pod\n"
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:  # raw bytes, closed by the pod
            s.sendall(b"GET /missing HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.0 404")
    finally:
        proc.terminate()
        proc.wait(10)


def test_kubectl_port_forward_to_a_closed_port_reports_the_error(api: APICluster, env: Env) -> None:
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(api.kubeconfig), "port-forward", "-n", env.ns, "pod/web",
                             ":8001"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(re.search(r"127\.0\.0\.1:(\d+) -> 8001", proc.stdout.readline()).group(1))  # type: ignore[union-attr]
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.settimeout(20)
            assert s.recv(100) == b""  # nothing listens there: kubectl closes the connection
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "failed to connect to" in err and ":8001" in err


def test_python_client_port_forward(api: APICluster, env: Env) -> None:
    core = k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=str(api.kubeconfig)))
    pf = portforward(core.connect_get_namespaced_pod_portforward, "web", env.ns, ports="8000")
    sock = pf.socket(8000)
    sock.settimeout(20)
    sock.sendall(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"hello from the pod\n")
    assert pf.error(8000) is None


def test_kubectl_attach_streams_the_output(api: APICluster, env: Env) -> None:
    env.pod("ticker", [shell("c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done")])
    env.wait_pod("ticker", running_ready, 30)
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(api.kubeconfig), "attach", "-n", env.ns, "ticker"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        numbers = [int(line.split()[1]) for line in lines]
        assert numbers == list(range(numbers[0], numbers[0] + 4))  # live output, in order
    finally:
        proc.kill()
        proc.wait(10)
    # attach ends when the container does, with kubectl's success
    env.pod("brief", [shell("c", "sleep 2; echo done; echo bye >&2")])
    env.wait_pod("brief", lambda p: (p.get("status") or {}).get("phase") == "Running", 30)
    out = api.kubectl("attach", "-n", env.ns, "brief", check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "done" in out.stdout and "bye" in out.stderr


def test_kubectl_attach_stdin_is_refused_clearly(api: APICluster, env: Env) -> None:
    env.pod("nostdin", [shell("c", "sleep 3600")])
    # stdin: true is refused until a runtime keeps a container's stdin open (the process shim gives /dev/null)
    env.pod("withstdin", [shell("c", "sleep 3600", stdin=True)])
    env.wait_pod("nostdin", running_ready, 30)
    env.wait_pod("withstdin", running_ready, 30)
    out = api.kubectl("attach", "-i", "-n", env.ns, "nostdin", input="x\n", check=False, timeout=60)
    assert out.returncode != 0 and "has no stdin" in out.stderr
    out = api.kubectl("attach", "-i", "-n", env.ns, "withstdin", input="x\n", check=False, timeout=60)
    assert out.returncode != 0 and "not supported by this runtime" in out.stderr
