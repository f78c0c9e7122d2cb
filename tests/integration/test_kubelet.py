"""The kubelet as a real process against a real store and API server (process runtime; pods bound by spec.nodeName).

One kubelet (node ``kt-1``) serves the module; the kill -9 test restarts it on the same root directory.
Every pod process the kubelet started is killed at the end (``kill_all`` over its state files).
Waits are bounded polls; nothing asserts on how long something took.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelet.runtime.process import alive, kill_all
from tests.harness.apicluster import KUBECTL, APICluster
from tests.harness.kvcluster import REPO, free_ports

Obj = dict[str, Any]
PY = sys.executable
NODE = "kt-1"


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition", interval: float = 0.1) -> Any:
    """Poll until ``cond()`` is truthy; fail after ``timeout`` seconds (a bound, not a performance claim)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class KubeletProcess:
    """``python -m kubelet`` with its log in a file; ``kill()`` is kill -9, ``stop()`` SIGTERM."""

    def __init__(self, api: APICluster, root: Path, name: str, *args: str, runtime: str = "process") -> None:
        self.api = api
        self.root = root
        self.name = name
        self.runtime = runtime
        self.args = args
        self.port = free_ports(1)[0]
        self.log_path = root.parent / f"{root.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.readies = self._count("ready") if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PY, "-m", "kubelet", "--node-name", self.name, "--runtime", self.runtime, "--kubeconfig",
             str(self.api.kubeconfig), "--root-dir", str(self.root), "--bind", f"127.0.0.1:{self.port}", *self.args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    def _count(self, event: str) -> int:
        return sum(1 for r in self.records() if r.get("event") == event)

    def records(self) -> list[Obj]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait_ready(self, timeout: float = 60) -> None:
        """Until this run of the kubelet logged ``ready`` (its pods listed, orphans removed)."""
        wait_for(lambda: self._count("ready") > self.readies, timeout, f"kubelet ready ({self.log_path})")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def get(self, path: str, token: str | None) -> tuple[int, bytes]:
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def cleanup(self) -> None:
        self.kill()
        kill_all(self.root)


class Env:
    """A namespace and REST helpers."""

    def __init__(self, api: APICluster, ns: str, node: str = NODE) -> None:
        self.api = api
        self.ns = ns
        self.node = node
        self.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}, ok=(201, 409))

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201),
             content_type: str = "application/json") -> Any:
        code, out, _ = self.api.request(method, path, body, content_type=content_type)
        assert code in ok, f"{method} {path}: {code} {out}"
        return out

    def create(self, plural: str, body: Obj) -> Obj:
        return self.call("POST", f"/api/v1/namespaces/{self.ns}/{plural}", body)

    def pod(self, name: str, containers: list[Obj], **spec: Any) -> Obj:
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": self.node, "containers": containers, **spec}}
        return self.create("pods", body)

    def get_pod(self, name: str) -> Obj | None:
        code, out, _ = self.api.request("GET", f"/api/v1/namespaces/{self.ns}/pods/{name}")
        return out if code == 200 else None

    def wait_pod(self, name: str, cond: Callable[[Obj], Any], timeout: float = 30.0, what: str = "") -> Obj:
        def check() -> Any:
            pod = self.get_pod(name)
            return pod if pod is not None and cond(pod) else None
        return wait_for(check, timeout, what or f"pod {name}")

    def wait_gone(self, name: str, timeout: float = 30.0) -> None:
        wait_for(lambda: self.get_pod(name) is None, timeout, f"pod {name} to be deleted")

    def delete(self, name: str, **options: Any) -> None:
        self.call("DELETE", f"/api/v1/namespaces/{self.ns}/pods/{name}", options or None, ok=(200, 202, 404))


def cond_true(pod: Obj, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def running_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and cond_true(pod, "Ready")


def cstatus(pod: Obj, name: str = "c") -> Obj:
    return next((c for c in (pod.get("status") or {}).get("containerStatuses") or [] if c.get("name") == name), {})


def shell(name: str, script: str, **extra: Any) -> Obj:
    return {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", script], **extra}


@pytest.fixture(scope="module")
def kubelet(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletProcess]:
    root = tmp_path_factory.mktemp("kubelet") / "root"
    k = KubeletProcess(api, root, NODE, "--capacity", "cpu=8,memory=16Gi,pods=50", "--labels", "tier=test,zone=a",
                       "--taints", "dedicated=tests:PreferNoSchedule", "--restart-backoff-base", "1",
                       "--restart-backoff-max", "16", "--lease-interval", "2", "--data-dir", str(root.parent / "pv"))
    try:
        k.wait_ready()
        yield k
    finally:
        k.cleanup()


@pytest.fixture
def env(api: APICluster, kubelet: KubeletProcess) -> Env:
    return Env(api, f"kt-{uuid.uuid4().hex[:8]}")


# ---------------------------------------------------------------------- node

def test_node_registration_lease_and_status(api: APICluster, kubelet: KubeletProcess) -> None:
    from kubernetes import client as k8s, config as kcfg

    node = wait_for(lambda: api.request("GET", f"/api/v1/nodes/{NODE}")[1], 10, "node")
    meta, spec, status = node["metadata"], node["spec"], node["status"]
    assert meta["labels"]["kubernetes.io/hostname"] == NODE and meta["labels"]["tier"] == "test"
    assert spec["taints"] == [{"key": "dedicated", "value": "tests", "effect": "PreferNoSchedule"}]
    assert re.fullmatch(r"127\.\d+\.0\.0/16", spec["podCIDR"]) and spec["podCIDRs"] == [spec["podCIDR"]]
    assert status["capacity"] == {"cpu": "8", "memory": "16Gi", "pods": "50"} == status["allocatable"]
    assert {a["type"]: a["address"] for a in status["addresses"]} == {"InternalIP": "127.0.0.1", "Hostname": NODE}
    conds = {c["type"]: c for c in status["conditions"]}
    assert set(conds) == {"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == kubelet.port
    assert len(status["nodeInfo"]) == 10 and all(status["nodeInfo"].values())
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}"
    lease = wait_for(lambda: (lambda r: r[1] if r[0] == 200 else None)(api.request("GET", lease_path)), 10, "lease")
    assert lease["spec"]["holderIdentity"] == NODE and lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["uid"] == meta["uid"]
    first = lease["spec"]["renewTime"]
    wait_for(lambda: api.request("GET", lease_path)[1]["spec"]["renewTime"] != first, 15, "lease renewal")
    # The official client accepts the Node as the kubelet wrote it.
    v1 = k8s.CoreV1Api(kcfg.new_client_from_config(config_file=str(api.kubeconfig)))
    assert v1.read_node(NODE).status.node_info.kubelet_version


def test_node_events_show_in_kubectl_describe_node(api: APICluster, kubelet: KubeletProcess) -> None:
    """The kubelet's node events (Starting, the conditions, NodeReady), with the node's name as the
    involvedObject's uid as upstream's kubelet writes them, where kubectl describe node finds them."""
    path = f"/api/v1/namespaces/default/events?fieldSelector=involvedObject.kind=Node,involvedObject.uid={NODE}"

    def reasons() -> set[str]:
        return {e["reason"] for e in api.request("GET", path)[1]["items"] if e["source"]["component"] == "kubelet"}

    wait_for(lambda: {"Starting", "NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID",
                      "NodeReady"} <= reasons() or None, 15, "the kubelet's node events")
    described = api.kubectl("describe", "node", NODE).stdout
    assert "Starting kubelet." in described and f"Node {NODE} status is now: NodeReady" in described, described


def test_kubelet_endpoint_authenticates(api: APICluster, kubelet: KubeletProcess) -> None:
    assert kubelet.get("/healthz", None) == (200, b"ok")
    assert kubelet.get("/stats/summary", None)[0] == 401
    assert kubelet.get("/stats/summary", "not-a-token")[0] == 401
    code, body = kubelet.get("/stats/summary", api.token)
    assert code == 200 and json.loads(body)["node"]["nodeName"] == NODE
    code, body = kubelet.get("/metrics", api.token)
    assert code == 200 and b"kubelet_pod_workers" in body


# ---------------------------------------------------------------------- pods

def test_python_pod_becomes_running_and_ready_through_its_readiness_probe(env: Env, api: APICluster) -> None:
    from kubernetes import client as k8s, config as kcfg

    server = ("import http.server, os\n"
              "h = type('H', (http.server.SimpleHTTPRequestHandler,), {'log_message': lambda *a: None})\n"
              "http.server.HTTPServer((os.environ['POD_IP'], 8080), h).serve_forever()\n")
    env.pod("web", [{"name": "c", "image": "python:3.12", "command": [PY, "-c", server],
                     "ports": [{"name": "http", "containerPort": 8080}],
                     "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}])
    pod = env.wait_pod("web", running_ready, 60, "web Running and Ready")
    status = pod["status"]
    node = api.request("GET", f"/api/v1/nodes/{NODE}")[1]
    prefix = node["spec"]["podCIDR"].split(".0.0/")[0] + "."
    assert status["podIP"].startswith(prefix) and status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"] == "127.0.0.1" and status["startTime"]
    cs = cstatus(pod)
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and cs["containerID"].startswith("process://")
    assert {c["type"] for c in status["conditions"]} >= {"PodScheduled", "Initialized", "ContainersReady", "Ready"}
    with urllib.request.urlopen(f"http://{status['podIP']}:8080/", timeout=5) as resp:
        assert resp.status == 200
    v1 = k8s.CoreV1Api(kcfg.new_client_from_config(config_file=str(api.kubeconfig)))
    typed = v1.read_namespaced_pod("web", env.ns)
    assert typed.status.container_statuses[0].ready is True


def test_python_servers_binding_every_address_get_their_pod_ip(env: Env, tmp_path: Path) -> None:
    """Two pods on one node run a server on the same wildcard port, as pods with their own network do."""
    # A host socket on that port's wildcard would make any further wildcard bind fail.
    host = socket.socket()
    host.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    host.bind(("127.0.0.1", 0))
    host.listen()
    port = host.getsockname()[1]
    dual = ("import http.server, socket\n"
            "class S(http.server.ThreadingHTTPServer):\n"
            "    address_family = socket.AF_INET6\n"
            "    def server_bind(self):\n"
            "        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
            "        super().server_bind()\n"
            f"S(('::', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()\n")
    try:
        for name in ("wild-1", "wild-2"):
            env.pod(name, [{"name": "c", "image": "python:3.12", "command": [PY, "-m", "http.server", str(port)],
                            "workingDir": str(tmp_path)}])
        env.pod("wild-v6", [{"name": "c", "image": "python:3.12", "command": [PY, "-c", dual],
                             "workingDir": str(tmp_path)}])
        for name in ("wild-1", "wild-2", "wild-v6"):
            pod = env.wait_pod(name, running_ready, 60, f"{name} Running")
            ip = pod["status"]["podIP"]
            ok = wait_for(lambda: _http_ok(f"http://{ip}:{port}/"), 20, f"{name} answering on {ip}:{port}")
            assert ok and cstatus(pod)["restartCount"] == 0
    finally:
        host.close()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_env_from_downward_api_configmaps_and_secrets(env: Env, api: APICluster) -> None:
    env.create("configmaps", {"metadata": {"name": "cfg"}, "data": {"COLOR": "blue", "SIZE": "xl"}})
    env.create("secrets", {"metadata": {"name": "sec"}, "stringData": {"password": "hunter2"}})
    script = "echo POD=$POD_NAME NS=$POD_NAMESPACE NODE=$NODE_NAME IP=$MY_IP COLOR=$COLOR PW=$PW CFG_SIZE=$CFG_SIZE; sleep 300"
    env.pod("envs", [shell("c", script, envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
                           env=[{"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "COLOR"}}},
                                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}}])])
    pod = env.wait_pod("envs", running_ready, 30)
    out = wait_for(lambda: api.kubectl("logs", "-n", env.ns, "envs").stdout.strip(), 10, "log line")
    assert out == f"POD=envs NS={env.ns} NODE={NODE} IP={pod['status']['podIP']} COLOR=blue PW=hunter2 CFG_SIZE=xl"
    # A missing ConfigMap keeps the container waiting with CreateContainerConfigError.
    env.pod("broken", [shell("c", "sleep 1", env=[{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}])])
    pod = env.wait_pod("broken", lambda p: (cstatus(p).get("state") or {}).get("waiting", {}).get("reason")
                       == "CreateContainerConfigError", 20)
    assert cstatus(pod)["state"]["waiting"]["message"] == 'configmap "nope" not found'


def test_services_of_the_namespace_are_in_the_environment(env: Env, api: APICluster) -> None:
    """enableServiceLinks (the default): <NAME>_SERVICE_HOST and the Docker-link variables of every
    Service of the pod's namespace that has a ClusterIP; none with enableServiceLinks: false."""
    code, svc, _ = api.request("POST", f"/api/v1/namespaces/{env.ns}/services", {
        "metadata": {"name": "redis-master"}, "spec": {"ports": [{"name": "redis", "port": 6379}]}})
    assert code == 201, svc
    assert api.request("POST", f"/api/v1/namespaces/{env.ns}/services", {
        "metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}})[0] == 201
    ip = svc["spec"]["clusterIP"]
    script = ("echo HOST=$REDIS_MASTER_SERVICE_HOST PORT=$REDIS_MASTER_SERVICE_PORT "
              "NAMED=$REDIS_MASTER_SERVICE_PORT_REDIS LINK=$REDIS_MASTER_PORT ADDR=$REDIS_MASTER_PORT_6379_TCP_ADDR "
              "HEADLESS=${HEADLESS_SERVICE_HOST:-none}; sleep 300")
    time.sleep(1)  # the kubelet learns Services from its own watch; give it that event first
    env.pod("links", [shell("c", script)])
    env.pod("nolinks", [shell("c", script)], enableServiceLinks=False)
    env.wait_pod("links", running_ready, 30)
    env.wait_pod("nolinks", running_ready, 30)
    out = wait_for(lambda: api.kubectl("logs", "-n", env.ns, "links").stdout.strip(), 10, "log line")
    assert out == f"HOST={ip} PORT=6379 NAMED=6379 LINK=tcp://{ip}:6379 ADDR={ip} HEADLESS=none"
    out = wait_for(lambda: api.kubectl("logs", "-n", env.ns, "nolinks").stdout.strip(), 10, "log line")
    assert out == "HOST= PORT= NAMED= LINK= ADDR= HEADLESS=none"


def test_active_deadline_fails_the_pod_and_stops_its_containers(env: Env) -> None:
    env.pod("deadline", [shell("c", "sleep 300")], activeDeadlineSeconds=2)
    pod = env.wait_pod("deadline", lambda p: p["status"].get("phase") == "Failed", 30, "Failed")
    assert pod["status"]["reason"] == "DeadlineExceeded"
    assert pod["status"]["message"] == "Pod was active on the node longer than the specified deadline"
    pod = env.wait_pod("deadline", lambda p: "terminated" in (cstatus(p).get("state") or {}), 30, "container stopped")
    assert cstatus(pod)["restartCount"] == 0
    # The failure stays: later status writes keep the phase and its reason.
    time.sleep(1)
    pod = env.get_pod("deadline")
    assert pod is not None and pod["status"]["phase"] == "Failed" and pod["status"]["reason"] == "DeadlineExceeded"


def test_fallback_to_logs_on_error_gives_the_log_tail_as_termination_message(env: Env) -> None:
    failing = "for i in $(seq 1 100); do echo line-$i; done; exit 3"
    env.pod("fallback", [shell("c", failing, terminationMessagePolicy="FallbackToLogsOnError")], restartPolicy="Never")
    env.pod("file-policy", [shell("c", failing)], restartPolicy="Never")
    env.pod("fallback-ok", [shell("c", "echo fine", terminationMessagePolicy="FallbackToLogsOnError")],
            restartPolicy="Never")
    pod = env.wait_pod("fallback", lambda p: "terminated" in (cstatus(p).get("state") or {}), 30, "terminated")
    terminated = cstatus(pod)["state"]["terminated"]
    assert terminated["exitCode"] == 3
    # The last 80 lines of its log.
    assert terminated["message"] == "".join(f"line-{i}\n" for i in range(21, 101)), terminated
    pod = env.wait_pod("file-policy", lambda p: "terminated" in (cstatus(p).get("state") or {}), 30, "terminated")
    assert "message" not in cstatus(pod)["state"]["terminated"]  # the default policy reads no log
    pod = env.wait_pod("fallback-ok", lambda p: "terminated" in (cstatus(p).get("state") or {}), 30, "terminated")
    assert "message" not in cstatus(pod)["state"]["terminated"]  # only a failure falls back to the log


def test_termination_message_file_is_the_message(env: Env) -> None:
    """What a container writes to its terminationMessagePath (under $PILOT_ROOT on this runtime)."""
    env.pod("msg-default", [shell("c", "printf 'bye from c' > $PILOT_ROOT/dev/termination-log; exit 2")],
            restartPolicy="Never")
    env.pod("msg-custom", [shell("c", "echo done > $PILOT_ROOT/tmp/why", terminationMessagePath="/tmp/why")],
            restartPolicy="Never")
    env.pod("msg-wins", [shell("c", "echo noise; echo mine > $PILOT_ROOT/dev/termination-log; exit 1",
                               terminationMessagePolicy="FallbackToLogsOnError")], restartPolicy="Never")
    env.pod("msg-big", [shell("c", "head -c 10000 /dev/zero | tr '\\0' x > $PILOT_ROOT/dev/termination-log")],
            restartPolicy="Never")
    expected = {"msg-default": "bye from c", "msg-custom": "done\n", "msg-wins": "mine\n", "msg-big": "x" * 4096}
    for name, message in expected.items():
        pod = env.wait_pod(name, lambda p: "terminated" in (cstatus(p).get("state") or {}), 30, f"{name} terminated")
        assert cstatus(pod)["state"]["terminated"].get("message") == message, name


def test_init_containers_run_in_order_then_the_pod_succeeds(env: Env, api: APICluster) -> None:
    volume_mount = [{"name": "work", "mountPath": "/work"}]
    env.pod("init", [shell("c", "cat work/log", volumeMounts=volume_mount)], restartPolicy="Never",
            volumes=[{"name": "work", "emptyDir": {}}],
            initContainers=[shell("first", "echo one >> work/log", volumeMounts=volume_mount),
                            shell("second", "echo two >> work/log", volumeMounts=volume_mount)])
    pod = env.wait_pod("init", lambda p: p["status"].get("phase") == "Succeeded", 30)
    assert [s["state"]["terminated"]["reason"] for s in pod["status"]["initContainerStatuses"]] == ["Completed"] * 2
    assert cstatus(pod)["state"]["terminated"]["exitCode"] == 0
    assert api.kubectl("logs", "-n", env.ns, "init").stdout == "one\ntwo\n"
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "PodCompleted"


@pytest.mark.parametrize("policy,script,phase,restarts", [
    ("Never", "exit 3", "Failed", False), ("OnFailure", "test -f data/once && exit 0; touch data/once; exit 1",
                                           "Succeeded", True)])
def test_restart_policies(env: Env, policy: str, script: str, phase: str, restarts: bool) -> None:
    name = policy.lower()
    env.pod(name, [shell("c", script, volumeMounts=[{"name": "data", "mountPath": "/data"}])], restartPolicy=policy,
            volumes=[{"name": "data", "emptyDir": {}}])
    pod = env.wait_pod(name, lambda p: p["status"].get("phase") == phase, 30)
    assert (cstatus(pod)["restartCount"] > 0) == restarts
    if phase == "Failed":
        assert cstatus(pod)["state"]["terminated"] == {**cstatus(pod)["state"]["terminated"], "exitCode": 3,
                                                      "reason": "Error"}


def test_failing_liveness_probe_restarts_with_growing_backoff(env: Env, kubelet: KubeletProcess) -> None:
    """A liveness probe that always fails: restarts, CrashLoopBackOff, and the back-off doubles each time."""
    env.pod("unhealthy", [shell("c", "echo started; sleep 300", livenessProbe={
        "exec": {"command": ["sh", "-c", "exit 1"]}, "periodSeconds": 1, "failureThreshold": 1})],
        terminationGracePeriodSeconds=1)
    backoffs: list[int] = []
    restart_counts: list[int] = []

    def observe() -> bool:
        pod = env.get_pod("unhealthy") or {}
        cs = cstatus(pod)
        restart_counts.append(cs.get("restartCount", 0))
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            found = re.match(r"back-off (\d+)s", waiting.get("message", ""))
            if found and (not backoffs or backoffs[-1] != int(found.group(1))):
                backoffs.append(int(found.group(1)))
        return len(backoffs) >= 2 and restart_counts[-1] >= 4

    # The kubelet runs with base 1 s and cap 16 s: 1, 2, 4, 8, 16. On a busy machine the short periods
    # may be over before a status carrying them is written, so two distinct periods are asked for.
    try:
        wait_for(observe, 240, "two CrashLoopBackOff periods and four restarts", interval=0.05)
    except AssertionError as exc:
        if kubelet.proc is not None:  # ask the kubelet where its coroutines wait
            kubelet.proc.send_signal(signal.SIGUSR1)
            time.sleep(1)
        lines = [r for r in kubelet.records() if "unhealthy" in json.dumps(r) or r.get("event") == "task_dump"][-60:]
        raise AssertionError(f"{exc}: backoffs={backoffs} restarts={sorted(set(restart_counts))} "
                             f"status={(env.get_pod('unhealthy') or {}).get('status')} kubelet log={lines}") from None
    assert backoffs == sorted(backoffs) and len(set(backoffs)) == len(backoffs)
    assert all(b in (1, 2, 4, 8, 16) for b in backoffs), backoffs
    assert restart_counts == sorted(restart_counts)
    pod = env.get_pod("unhealthy") or {}
    assert cstatus(pod)["lastState"]["terminated"]["exitCode"] in (137, 143)
    events = env.call("GET", f"/api/v1/namespaces/{env.ns}/events")["items"]
    assert any(e["reason"] == "Unhealthy" and e["message"].startswith("Liveness probe failed") for e in events)
    env.delete("unhealthy", gracePeriodSeconds=0)


def test_startup_probe_holds_liveness_until_it_succeeds(env: Env) -> None:
    env.pod("slowstart", [shell("c", "sleep 1; touch started; sleep 300", startupProbe={
        "exec": {"command": ["test", "-f", "started"]}, "periodSeconds": 1, "failureThreshold": 30},
        livenessProbe={"exec": {"command": ["test", "-f", "started"]}, "periodSeconds": 1, "failureThreshold": 1})])
    pod = env.wait_pod("slowstart", running_ready, 30)
    assert cstatus(pod)["started"] is True and cstatus(pod)["restartCount"] == 0


def test_graceful_termination_prestop_sigterm_then_delete(env: Env, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    trap = ("trap 'echo term >> marks/order; sleep 0.5; echo exit >> marks/order; exit 0' TERM; "
            "echo up >> marks/order; while true; do sleep 0.1; done")
    env.pod("graceful", [shell("c", trap, volumeMounts=[{"name": "marks", "mountPath": "/marks"}],
                               lifecycle={"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> marks/order"]}}})],
            terminationGracePeriodSeconds=20, volumes=[{"name": "marks", "hostPath": {"path": str(marks)}}])
    env.wait_pod("graceful", running_ready, 30)
    env.delete("graceful")
    # The API server keeps the pod (deletionTimestamp set) until the kubelet has stopped it.
    env.wait_gone("graceful", 40)
    assert (marks / "order").read_text().split() == ["up", "prestop", "term", "exit"]


def test_sigkill_after_the_grace_period(env: Env, tmp_path: Path) -> None:
    env.pod("stubborn", [shell("c", "trap '' TERM; echo $$$$ > pid/pid; while true; do sleep 0.1; done",
                               volumeMounts=[{"name": "pid", "mountPath": "/pid"}])],
            terminationGracePeriodSeconds=1, volumes=[{"name": "pid", "hostPath": {"path": str(tmp_path)}}])
    env.wait_pod("stubborn", running_ready, 30)
    pid = int(wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip(), 10))
    env.delete("stubborn")
    env.wait_gone("stubborn", 30)
    wait_for(lambda: not alive(pid, None), 10, "the stubborn process to be killed")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_logs_follow_and_exec(env: Env, api: APICluster) -> None:
    env.pod("talker", [shell("c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done")])
    env.wait_pod("talker", running_ready, 30)
    wait_for(lambda: "line 3" in api.kubectl("logs", "-n", env.ns, "talker").stdout, 20, "some lines")
    follow = subprocess.Popen([KUBECTL, "--kubeconfig", str(api.kubeconfig), "logs", "-f", "-n", env.ns, "talker",
                               "--tail", "1"], stdout=subprocess.PIPE, text=True)
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()
        later = [follow.stdout.readline() for _ in range(5)]
        numbers = [int(line.split()[1]) for line in [first, *later]]
        assert numbers == list(range(numbers[0], numbers[0] + 6))  # new lines arrive while following
    finally:
        follow.kill()
        follow.wait(10)
    out = api.kubectl("exec", "-n", env.ns, "talker", "--", "sh", "-c", "echo pod ip $POD_IP; echo oops >&2; exit 3",
                      check=False)
    pod = env.get_pod("talker") or {}
    assert out.returncode == 3 and out.stdout == f"pod ip {pod['status']['podIP']}\n" and "oops" in out.stderr
    piped = api.kubectl("exec", "-i", "-n", env.ns, "talker", "--", "sh", "-c", "tr a-z A-Z", input="hello\n")
    assert piped.stdout == "HELLO\n"
    bad = api.kubectl("logs", "-n", env.ns, "talker", "-c", "nope", check=False)
    assert bad.returncode != 0 and "container nope is not valid for pod talker" in bad.stderr


def test_configmap_and_secret_volumes_follow_their_objects(env: Env, api: APICluster) -> None:
    env.create("configmaps", {"metadata": {"name": "files"}, "data": {"greeting": "hello"}})
    env.create("secrets", {"metadata": {"name": "creds"}, "stringData": {"user": "admin"}})
    mounts = [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "sec", "mountPath": "/etc/sec"},
              {"name": "info", "mountPath": "/etc/info"}, {"name": "token", "mountPath": "/var/run/secrets/sa"}]
    env.pod("files", [shell("c", "sleep 300", volumeMounts=mounts)], volumes=[
        {"name": "cfg", "configMap": {"name": "files"}}, {"name": "sec", "secret": {"secretName": "creds"}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}],
        serviceAccountName="default")
    env.call("POST", f"/api/v1/namespaces/{env.ns}/serviceaccounts", {"metadata": {"name": "default"}}, ok=(201, 409))
    env.wait_pod("files", running_ready, 60)

    def cat(path: str) -> str:
        return api.kubectl("exec", "-n", env.ns, "files", "--", "sh", "-c", f"cat $PILOT_ROOT{path}").stdout

    assert cat("/etc/cfg/greeting") == "hello" and cat("/etc/sec/user") == "admin"
    assert cat("/var/run/secrets/sa/namespace") == env.ns and "BEGIN CERTIFICATE" in cat("/var/run/secrets/sa/ca.crt")
    token = cat("/var/run/secrets/sa/token")
    review = env.call("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                      {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
    assert review["status"]["user"]["username"] == f"system:serviceaccount:{env.ns}:default"
    env.call("PATCH", f"/api/v1/namespaces/{env.ns}/configmaps/files", {"data": {"greeting": "bonjour"}},
             content_type="application/merge-patch+json")
    wait_for(lambda: cat("/etc/cfg/greeting") == "bonjour", 30, "the ConfigMap change in the volume")


def test_persistent_volume_claim_data_outlives_its_pods(env: Env, api: APICluster, kubelet: KubeletProcess) -> None:
    env.create("persistentvolumeclaims", {"metadata": {"name": "data"}, "spec": {
        "storageClassName": "local", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    mount = [{"name": "data", "mountPath": "/data"}]
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    env.pod("writer", [shell("c", "echo persisted > data/file", volumeMounts=mount)], restartPolicy="Never",
            volumes=volumes)
    env.wait_pod("writer", lambda p: p["status"].get("phase") == "Succeeded", 40)
    pvc = env.call("GET", f"/api/v1/namespaces/{env.ns}/persistentvolumeclaims/data")
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["volumeName"] == f"pvc-{pvc['metadata']['uid']}"
    pv = env.call("GET", f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
    assert pv["spec"]["hostPath"]["path"].startswith(str(kubelet.root.parent / "pv"))
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [NODE]
    env.delete("writer")
    env.wait_gone("writer")
    env.pod("reader", [shell("c", "cat data/file", volumeMounts=mount)], restartPolicy="Never", volumes=volumes)
    env.wait_pod("reader", lambda p: p["status"].get("phase") == "Succeeded", 40)
    assert api.kubectl("logs", "-n", env.ns, "reader").stdout == "persisted\n"
    # Deleting the claim releases the volume: the PV and its directory go (reclaimPolicy Delete).
    env.delete("reader")
    env.wait_gone("reader")
    env.call("DELETE", f"/api/v1/namespaces/{env.ns}/persistentvolumeclaims/data")
    wait_for(lambda: api.request("GET", f"/api/v1/persistentvolumes/{pv['metadata']['name']}")[0] == 404, 60,
             "the PV to be reclaimed")
    assert not Path(pv["spec"]["hostPath"]["path"]).exists()


def test_pods_that_do_not_fit_are_rejected(env: Env) -> None:
    env.pod("huge", [shell("c", "sleep 1", resources={"requests": {"cpu": "64"}})])
    pod = env.wait_pod("huge", lambda p: p["status"].get("phase") == "Failed", 20)
    assert pod["status"]["reason"] == "OutOfcpu" and "Node didn't have enough resource: cpu" in pod["status"]["message"]


def test_stats_summary_reports_pod_usage(env: Env, api: APICluster, kubelet: KubeletProcess) -> None:
    env.pod("busy", [{"name": "c", "image": "python", "command": [PY, "-c", "x = bytearray(40 * 2**20)\nwhile True: pass"]}])
    env.wait_pod("busy", running_ready, 30)

    def usage() -> Obj | None:
        code, body = kubelet.get("/stats/summary", api.token)
        pods = [p for p in json.loads(body)["pods"] if p["podRef"]["namespace"] == env.ns] if code == 200 else []
        return pods[0] if pods and pods[0]["containers"][0]["cpu"]["usageNanoCores"] > 0 \
            and pods[0]["memory"]["workingSetBytes"] > 40 * 2**20 else None

    pod = wait_for(usage, 40, "CPU and memory usage of the busy pod")
    assert pod["containers"][0]["name"] == "c"
    if KUBECTL is not None:
        # metrics.k8s.io, aggregated by the API server from this summary: kubectl top prints real numbers.
        def top() -> list[str] | None:
            out = api.kubectl("top", "pods", "-n", env.ns, "--no-headers", check=False).stdout.split()
            return out if len(out) == 3 and out[1].endswith("m") and int(out[1][:-1]) > 0 else None

        name, _cpu, memory = wait_for(top, 40, "kubectl top pods")
        assert name == "busy" and memory.endswith("Mi") and int(memory[:-2]) >= 40
        nodes = api.kubectl("top", "node", NODE, "--no-headers").stdout.split()
        assert nodes[0] == NODE and nodes[1].endswith("m")
    env.delete("busy", gracePeriodSeconds=0)


# ---------------------------------------------------------------------- kubelet restarts

def test_kill_9_then_restart_adopts_running_containers(env: Env, api: APICluster, kubelet: KubeletProcess) -> None:
    marker = f"adopt-{uuid.uuid4().hex[:6]}"
    env.pod("survivor", [shell("c", f"echo {marker}; sleep 300")])
    pod = env.wait_pod("survivor", running_ready, 30)
    before = cstatus(pod)["containerID"]
    env.pod("doomed", [shell("c", "sleep 300")], terminationGracePeriodSeconds=0)
    doomed = env.wait_pod("doomed", running_ready, 30)

    def pids_of(pattern: str) -> list[int]:
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out if int(p) != os.getpid()]

    procs = pids_of(f"echo {marker}; sleep 300")
    assert len(procs) == 1
    kubelet.kill()
    assert alive(procs[0], None)  # containers outlive their kubelet
    # While it is down, "doomed" is force-deleted: its container must not survive the restart.
    env.delete("doomed", gracePeriodSeconds=0)
    env.wait_gone("doomed")
    kubelet.start()
    kubelet.wait_ready()
    pod = env.wait_pod("survivor", running_ready, 30)
    assert cstatus(pod)["containerID"] == before and cstatus(pod)["restartCount"] == 0
    assert pids_of(f"echo {marker}; sleep 300") == procs  # no duplicate
    assert any(r.get("event") == "orphan_removed" and r.get("uid") == doomed["metadata"]["uid"] for r in kubelet.records())
    env.delete("survivor", gracePeriodSeconds=1)
    env.wait_gone("survivor")
    wait_for(lambda: not pids_of(f"echo {marker}; sleep 300"), 10, "the survivor's process to stop")
