"""pods/portforward and pods/attach through the API server to a process-runtime kubelet.

kubectl 1.32 port-forwards with SPDY/3.1 tunnelled in a WebSocket; the official Python client with the
WebSocket channel protocol. Both reach <pod IP>:port through the kubelet. ``kubectl attach`` streams
the running container's output, and with ``-i`` (or the Python client's ``stream()`` with stdin) writes
to the stdin of a container started with ``stdin: true`` (``stdinOnce``, ``tty`` and a kubelet restart
in between included).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.stream import portforward, stream

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


def test_kubectl_attach_stdin_needs_stdin_in_the_spec(api: APICluster, env: Env) -> None:
    env.pod("nostdin", [shell("c", "sleep 3600")])
    env.wait_pod("nostdin", running_ready, 30)
    out = api.kubectl("attach", "-i", "-n", env.ns, "nostdin", input="x\n", check=False, timeout=60)
    assert out.returncode != 0 and "has no stdin" in out.stderr


def test_kubectl_attach_i_writes_to_the_container(api: APICluster, env: Env) -> None:
    env.pod("reader", [shell("c", "read line; echo got:$line", stdin=True)], restartPolicy="Never")
    env.wait_pod("reader", running_ready, 30)
    out = api.kubectl("attach", "-i", "-n", env.ns, "reader", input="hello\n", check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "got:hello" in out.stdout
    env.wait_pod("reader", lambda p: (p.get("status") or {}).get("phase") == "Succeeded", 30)


def test_kubectl_attach_i_stdin_once_ends_the_input(api: APICluster, env: Env) -> None:
    # kubectl's end of input (v5 close of channel 0) closes a stdinOnce container's stdin: cat ends
    env.pod("once", [shell("c", "cat; echo stdin-closed", stdin=True, stdinOnce=True)], restartPolicy="Never")
    env.wait_pod("once", running_ready, 30)
    out = api.kubectl("attach", "-i", "-n", env.ns, "once", input="one\ntwo\n", check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-3:] == ["one", "two", "stdin-closed"]
    env.wait_pod("once", lambda p: (p.get("status") or {}).get("phase") == "Succeeded", 30)


def test_kubectl_run_i_rm(api: APICluster, env: Env) -> None:
    # kubectl run -i makes the pod with stdin and stdinOnce, attaches once it runs, deletes it after (--rm);
    # these tests run no scheduler: the pod names its node itself
    out = api.kubectl("run", "-n", env.ns, "runner", "-i", "--rm", "--restart=Never", "--image=busybox:1.36",
                      f"--overrides={json.dumps({'spec': {'nodeName': NODE}})}", "--command", "--", "sh", "-c", "read line; echo got:$line", input="hi\n", check=False,
                      timeout=90)
    assert out.returncode == 0, out.stderr
    assert "got:hi" in out.stdout
    code, pod, _ = api.request("GET", f"/api/v1/namespaces/{env.ns}/pods/runner")
    assert code == 404 or pod["metadata"].get("deletionTimestamp")  # gone, or going


def _attach(api: APICluster, ns: str, name: str, *, tty: bool = False) -> Any:
    core = k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=str(api.kubeconfig)))
    return stream(core.connect_get_namespaced_pod_attach, name, ns, stdin=True, stdout=True, stderr=True, tty=tty,
                  _preload_content=False)


def _read_until(resp: Any, text: str, rounds: int = 200) -> str:
    """stdout of an attach until ``text`` shows up (each round waits at most 0.2 s for data)."""
    seen = ""
    for _ in range(rounds):
        resp.update(timeout=0.2)
        seen += resp.read_stdout() if resp.peek_stdout() else ""
        if text in seen or not resp.is_open():
            break
    return seen


def test_python_client_attach_stdin_once_closes_when_the_session_ends(api: APICluster, env: Env) -> None:
    env.pod("pyonce", [shell("c", "while read line; do echo got:$line; done; echo stdin-closed", stdin=True,
                             stdinOnce=True)], restartPolicy="Never")
    env.wait_pod("pyonce", running_ready, 30)
    resp = _attach(api, env.ns, "pyonce")
    try:
        resp.write_stdin("hi\n")
        assert "got:hi" in _read_until(resp, "got:hi")
    finally:
        resp.close()  # the first session ends: the container reads EOF
    env.wait_pod("pyonce", lambda p: (p.get("status") or {}).get("phase") == "Succeeded", 30)
    assert "stdin-closed" in api.kubectl("logs", "-n", env.ns, "pyonce").stdout


def test_python_client_attach_with_a_tty_and_resize(api: APICluster, env: Env) -> None:
    env.pod("pytty", [shell("c", "test -t 0 && echo is-a-tty; read line; stty size; printf 'prompt> '; read line; "
                                 "echo got:$line", stdin=True, tty=True)], restartPolicy="Never")
    env.wait_pod("pytty", running_ready, 30)
    resp = _attach(api, env.ns, "pytty", tty=True)
    try:
        resp.write_channel(4, json.dumps({"Width": 123, "Height": 45}))
        resp.write_stdin("size\n")
        seen = _read_until(resp, "prompt> ")  # a prompt shows before any newline follows it
        assert "45 123" in seen and seen.endswith("prompt> ")
        resp.write_stdin("x\n")
        assert "got:x" in _read_until(resp, "got:x")
    finally:
        resp.close()
    assert "is-a-tty" in api.kubectl("logs", "-n", env.ns, "pytty").stdout


def test_attach_again_after_the_kubelet_was_killed(api: APICluster, env: Env, kubelet: KubeletProcess) -> None:
    """Last in this module: the kubelet is killed with -9 and started again; the container's stdin,
    kept by its shim, is reached by the new kubelet as by the old one."""
    env.pod("keeper", [shell("c", "while read line; do echo got:$line; done; echo stdin-closed; sleep 3600",
                             stdin=True)])
    env.wait_pod("keeper", running_ready, 30)
    resp = _attach(api, env.ns, "keeper")
    try:
        resp.write_stdin("before\n")
        assert "got:before" in _read_until(resp, "got:before")
    finally:
        resp.close()  # no stdinOnce: the stdin stays open for the next session
    kubelet.kill()
    kubelet.start()
    kubelet.wait_ready()
    out = ""
    for _ in range(20):  # the API server reaches the kubelet again once it serves (bounded retries)
        try:
            resp = _attach(api, env.ns, "keeper")
        except Exception:  # noqa: BLE001 - not serving yet
            time.sleep(0.5)
            continue
        try:
            resp.write_stdin("after\n")
            out = _read_until(resp, "got:after")
        finally:
            resp.close()
        if "got:after" in out:
            break
        time.sleep(0.5)
    assert "got:after" in out and "stdin-closed" not in out


def test_kubectl_exec_errors_are_upstreams(api: APICluster, env: Env) -> None:
    # the pod, container and node are checked before the WebSocket is required: kubectl's WebSocket
    # attempt and its SPDY fallback both print the real reason
    env.pod("errs", [shell("c", "sleep 600")])
    env.wait_pod("errs", running_ready, 30)
    out = api.kubectl("exec", "-n", env.ns, "errs", "-c", "nope", "--", "true", check=False, timeout=60)
    assert out.returncode != 0
    assert "container nope is not valid for pod errs" in out.stderr, out.stderr
    assert "unsupported upgrade" not in out.stderr


# ------------------------------------------------------------------ ephemeral containers (kubectl debug)

def _ephemeral_status(api: APICluster, ns: str, pod: str, name: str) -> dict[str, Any]:
    _, obj, _ = api.request("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")
    return next((s for s in (obj.get("status") or {}).get("ephemeralContainerStatuses") or [] if s["name"] == name), {})


def test_kubectl_debug_runs_an_ephemeral_container_once(api: APICluster, env: Env) -> None:
    env.pod("target", [shell("c", "sleep 3600")])
    env.wait_pod("target", running_ready, 30)
    out = api.kubectl("debug", "-n", env.ns, "target", "--image=busybox:1.36", "--container=dbg", "--",
                      "sh", "-c", "echo debug-in:$POD_NAME; exit 3", check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 30
    while "terminated" not in (_ephemeral_status(api, env.ns, "target", "dbg").get("state") or {}):
        assert time.monotonic() < deadline, _ephemeral_status(api, env.ns, "target", "dbg")
        time.sleep(0.3)
    logs = api.kubectl("logs", "-n", env.ns, "target", "-c", "dbg")
    assert logs.stdout.strip() == "debug-in:target"
    time.sleep(3)  # an ephemeral container is never restarted, whatever its exit code
    status = _ephemeral_status(api, env.ns, "target", "dbg")
    assert status["state"]["terminated"]["exitCode"] == 3 and status["restartCount"] == 0
    _, pod, _ = api.request("GET", f"/api/v1/namespaces/{env.ns}/pods/target")
    assert pod["status"]["phase"] == "Running" and running_ready(pod)  # the pod itself is untouched


def test_kubectl_debug_i_attaches_to_the_new_container(api: APICluster, env: Env) -> None:
    env.pod("target2", [shell("c", "sleep 3600")])
    env.wait_pod("target2", running_ready, 30)
    out = api.kubectl("debug", "-i", "-n", env.ns, "target2", "--image=busybox:1.36", "--container=shell", "--",
                      "sh", "-c", "read line; echo got:$line", input="hello\n", check=False, timeout=90)
    assert out.returncode == 0, out.stderr
    assert "got:hello" in out.stdout
