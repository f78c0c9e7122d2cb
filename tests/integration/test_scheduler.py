"""The scheduler process against a real store and API server, with Node objects made through the API.

One scheduler serves the module; every test works in its own namespace and removes its nodes and
pods afterwards, so "0/N nodes" messages count exactly the test's nodes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from scheduler.framework import Resources, pod_requests
from tests.harness.apicluster import APICluster
from tests.harness.kvcluster import REPO, free_ports

Obj = dict[str, Any]


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until ``cond()`` is truthy; fail after ``timeout`` seconds (a bound, not a performance claim)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class SchedulerProcess:
    """``python -m scheduler`` with its log in a file, stopped by SIGTERM (then SIGKILL)."""

    def __init__(self, api: APICluster, root: Path, name: str, *args: str) -> None:
        self.port = free_ports(1)[0]
        self.log_path = root / f"{name}.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler", "--kubeconfig", str(api.kubeconfig), "--bind", f"127.0.0.1:{self.port}",
             "--replica-name", name, *args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(lambda: self.get("/readyz")[0] == 200, timeout, f"scheduler ready ({self.log_path})")

    def records(self) -> list[Obj]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Env:
    """One test's namespace and nodes, with helpers over the API server's REST API."""

    def __init__(self, api: APICluster, namespace: str) -> None:
        self.api = api
        self.ns = namespace
        self.nodes: list[str] = []
        self.cluster_objects: list[str] = []
        self.call("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}}, ok=(201, 409))

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201),
             content_type: str = "application/json") -> Any:
        code, out, _ = self.api.request(method, path, body, content_type=content_type)
        assert code in ok, f"{method} {path}: {code} {out}"
        return out

    def add_node(self, name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110", *, zone: str = "",
                 labels: dict | None = None, taints: list | None = None, ready: str = "True") -> Obj:
        lbl = {"kubernetes.io/hostname": name, **(labels or {})}
        if zone:
            lbl["topology.kubernetes.io/zone"] = zone
        alloc = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
        self.nodes.append(name)
        self.call("POST", "/api/v1/nodes", {"metadata": {"name": name, "labels": lbl}, "spec": {"taints": taints or []}})
        status = {"capacity": alloc, "allocatable": alloc,
                  "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady"}]}
        return self.call("PATCH", f"/api/v1/nodes/{name}/status", {"status": status},
                         content_type="application/merge-patch+json")

    def pod_body(self, name: str, cpu: str = "", memory: str = "", *, labels: dict | None = None,
                 priority_class: str = "", grace: int = 0, **spec: Any) -> Obj:
        requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
        body: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
                     "spec": {"containers": [{"name": "c", "image": "pause", "resources": {"requests": requests}}],
                              "terminationGracePeriodSeconds": grace, **spec}}
        if priority_class:
            body["spec"]["priorityClassName"] = priority_class
        return body

    def add_pod(self, name: str, cpu: str = "", memory: str = "", **kw: Any) -> Obj:
        return self.call("POST", f"/api/v1/namespaces/{self.ns}/pods", self.pod_body(name, cpu, memory, **kw))

    def add_pods(self, bodies: list[Obj], workers: int = 16) -> None:
        """Create many pods at once (concurrent requests)."""
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda b: self.call("POST", f"/api/v1/namespaces/{self.ns}/pods", b), bodies))

    def pod(self, name: str) -> Obj:
        return self.call("GET", f"/api/v1/namespaces/{self.ns}/pods/{name}", ok=(200, 404))

    def pods(self) -> list[Obj]:
        return self.call("GET", f"/api/v1/namespaces/{self.ns}/pods")["items"]

    def bound(self) -> dict[str, str]:
        return {p["metadata"]["name"]: p["spec"]["nodeName"] for p in self.pods() if p["spec"].get("nodeName")}

    def condition(self, name: str) -> Obj | None:
        pod = self.pod(name)
        return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] == "PodScheduled"), None)

    def unschedulable(self, name: str) -> Obj | None:
        cond = self.condition(name)
        return cond if cond and cond["status"] == "False" and cond.get("reason") == "Unschedulable" else None

    def events(self, name: str, reason: str | None = None) -> list[Obj]:
        items = self.call("GET", f"/api/v1/namespaces/{self.ns}/events?fieldSelector=involvedObject.name%3D{name}")["items"]
        return [e for e in items if reason is None or e["reason"] == reason]

    def cleanup(self) -> None:
        for pod in self.pods():
            self.call("DELETE", f"/api/v1/namespaces/{self.ns}/pods/{pod['metadata']['name']}",
                      {"gracePeriodSeconds": 0}, ok=(200, 404))
        for name in self.nodes:
            self.call("DELETE", f"/api/v1/nodes/{name}", ok=(200, 404))
        for path in self.cluster_objects:
            self.call("DELETE", path, ok=(200, 404))


def assert_no_overcommit(env: Env) -> None:
    """Every node's bound pods fit its allocatable resources."""
    nodes = {n: env.call("GET", f"/api/v1/nodes/{n}") for n in env.nodes}
    used: dict[str, Resources] = {n: Resources() for n in nodes}
    count: dict[str, int] = {n: 0 for n in nodes}
    for pod in env.pods():
        node = pod["spec"].get("nodeName")
        if node in used:
            used[node].add(pod_requests(pod["spec"]))
            count[node] += 1
    for name, node in nodes.items():
        alloc = Resources.from_list(node["status"]["allocatable"])
        assert used[name].cpu <= alloc.cpu and used[name].memory <= alloc.memory, (name, used[name], alloc)
        assert count[name] <= alloc.pods


# ---------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def scheduler(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchedulerProcess]:
    proc = SchedulerProcess(api, tmp_path_factory.mktemp("sched"), "scheduler-1", "--pod-initial-backoff-seconds",
                            "0.2", "--pod-max-backoff-seconds", "1")
    try:
        proc.wait_ready()
        yield proc
    finally:
        code = proc.stop()
    assert code == 0, f"scheduler did not exit cleanly on SIGTERM:\n{proc.log_path.read_text()[-3000:]}"


@pytest.fixture
def env(api: APICluster, scheduler: SchedulerProcess, request: pytest.FixtureRequest) -> Iterator[Env]:
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    e = Env(api, name)
    yield e
    e.cleanup()


# ---------------------------------------------------------------------- tests

def test_many_pods_at_once_never_overcommit_a_node(env: Env) -> None:
    for i in range(4):
        env.add_node(f"fit-{i}", cpu="4", memory="8Gi")
    env.add_pods([env.pod_body(f"p{i:02d}", "500m", "1Gi") for i in range(48)])
    # 4 nodes x 8 pods of 500m/1Gi fill them exactly; the other 16 must wait.
    wait_for(lambda: len(env.bound()) == 32 and sum(1 for p in env.pods() if not p["spec"].get("nodeName")
                                                    and env.unschedulable(p["metadata"]["name"])) == 16,
             60, "32 bound and 16 unschedulable")
    assert_no_overcommit(env)
    assert sorted(env.bound().values()).count("fit-0") == 8
    waiting = next(p["metadata"]["name"] for p in env.pods() if not p["spec"].get("nodeName"))
    cond = env.unschedulable(waiting)
    assert cond is not None
    assert cond["message"].startswith("0/4 nodes are available: 4 Insufficient cpu, 4 Insufficient memory.")
    events = env.events(waiting, "FailedScheduling")
    assert events and events[0]["type"] == "Warning" and events[0]["source"]["component"] == "default-scheduler"
    time.sleep(1)
    assert len(env.bound()) == 32  # and nothing more, later


def test_taints_and_tolerations(env: Env) -> None:
    env.add_node("taint-gpu", taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}], labels={"kind": "gpu"})
    env.add_node("taint-plain", labels={"kind": "plain"})
    env.add_node("taint-down", ready="False", labels={"kind": "down"})
    env.add_pod("plain")
    env.add_pod("tolerant", nodeSelector={"kind": "gpu"},
                tolerations=[{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}])
    env.add_pod("intolerant", nodeSelector={"kind": "gpu"})
    wait_for(lambda: {"plain", "tolerant"} <= set(env.bound()) and env.unschedulable("intolerant"), 30)
    assert env.bound() == {"plain": "taint-plain", "tolerant": "taint-gpu"}
    message = env.unschedulable("intolerant")["message"]
    # Taints are checked before node affinity; a node that is not Ready carries the not-ready taint.
    assert message.startswith("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                              "1 node(s) had untolerated taint {gpu: yes}, "
                              "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.")


def test_required_and_preferred_node_affinity(env: Env) -> None:
    env.add_node("aff-a", labels={"gen": "3", "disk": "hdd"})
    env.add_node("aff-b", labels={"gen": "5", "disk": "ssd"})
    env.add_node("aff-c", labels={"gen": "7", "disk": "hdd"})

    def required(*exprs: Obj) -> Obj:
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": list(exprs)}]}}}

    env.add_pod("newer", affinity=required({"key": "gen", "operator": "Gt", "values": ["4"]},
                                           {"key": "disk", "operator": "NotIn", "values": ["ssd"]}))
    env.add_pod("older", affinity=required({"key": "gen", "operator": "Lt", "values": ["4"]}))
    env.add_pod("by-name", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["aff-b"]}]}]}}})
    env.add_pod("prefers-ssd", affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}})
    env.add_pod("nowhere", affinity=required({"key": "gen", "operator": "Gt", "values": ["9"]}))
    wait_for(lambda: len(env.bound()) == 4 and env.unschedulable("nowhere"), 30)
    assert env.bound() == {"newer": "aff-c", "older": "aff-a", "by-name": "aff-b", "prefers-ssd": "aff-b"}
    assert env.unschedulable("nowhere")["message"].startswith(
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")


def test_pod_anti_affinity_and_zone_spread(env: Env) -> None:
    env.add_node("spread-a1", zone="a")
    env.add_node("spread-a2", zone="a")
    env.add_node("spread-b1", zone="b")
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    env.add_pods([env.pod_body(f"web-{i}", labels={"app": "web"}, affinity=anti) for i in range(4)])
    wait_for(lambda: len(env.bound()) == 3 and sum(1 for i in range(4) if env.unschedulable(f"web-{i}")) == 1, 30)
    assert sorted(env.bound().values()) == ["spread-a1", "spread-a2", "spread-b1"]
    left = next(f"web-{i}" for i in range(4) if env.unschedulable(f"web-{i}"))
    assert env.unschedulable(left)["message"].startswith(
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.")
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "db"}}}]
    env.add_pods([env.pod_body(f"db-{i}", labels={"app": "db"}, topologySpreadConstraints=spread) for i in range(6)],
                 workers=6)
    wait_for(lambda: sum(1 for n in env.bound() if n.startswith("db-")) == 6, 30)
    zones = {"spread-a1": "a", "spread-a2": "a", "spread-b1": "b"}
    per_zone = {"a": 0, "b": 0}
    for name, node in env.bound().items():
        if name.startswith("db-"):
            per_zone[zones[node]] += 1
    assert per_zone == {"a": 3, "b": 3}


def test_unschedulable_until_a_node_is_added(env: Env) -> None:
    env.add_node("grow-1", cpu="2")
    env.add_pod("big", "3")
    cond = wait_for(lambda: env.unschedulable("big"), 30, "PodScheduled=False")
    assert cond["message"].startswith("0/1 nodes are available: 1 Insufficient cpu.")
    event = wait_for(lambda: env.events("big", "FailedScheduling"), 10, "FailedScheduling event")[0]
    assert event["type"] == "Warning" and event["message"] == cond["message"]
    assert event["involvedObject"]["kind"] == "Pod" and event["involvedObject"]["name"] == "big"
    time.sleep(1.5)  # retries after backoff do not pile up events: the same one is counted
    assert len(env.events("big", "FailedScheduling")) == 1
    env.add_node("grow-2", cpu="4")
    wait_for(lambda: env.bound().get("big") == "grow-2", 30, "binding after the node was added")
    cond = env.condition("big")
    assert cond is not None and cond["status"] == "True"
    scheduled = wait_for(lambda: env.events("big", "Scheduled"), 10, "Scheduled event")[0]
    assert scheduled["message"] == f"Successfully assigned {env.ns}/big to grow-2"


def test_preemption_evicts_the_minimal_set_of_lower_priority_pods(env: Env) -> None:
    for name, value in (("pt-low", 10), ("pt-mid", 100), ("pt-high", 1000)):
        env.call("POST", "/apis/scheduling.k8s.io/v1/priorityclasses",
                 {"metadata": {"name": name}, "value": value}, ok=(201, 409))
        env.cluster_objects.append(f"/apis/scheduling.k8s.io/v1/priorityclasses/{name}")
    env.add_node("prio-1", cpu="3")
    env.add_node("prio-2", cpu="3")

    def on(node: str, name: str, pc: str) -> Obj:
        return env.pod_body(name, "1", priority_class=pc, nodeSelector={"kubernetes.io/hostname": node})

    env.add_pods([on("prio-1", "low-1", "pt-low"), on("prio-1", "mid-1", "pt-mid"), on("prio-1", "mid-2", "pt-mid"),
                  on("prio-2", "low-2", "pt-low"), on("prio-2", "low-3", "pt-low"), on("prio-2", "mid-3", "pt-mid")])
    wait_for(lambda: len(env.bound()) == 6, 30)
    before = env.bound()
    env.add_pod("vip", "2", priority_class="pt-high")
    wait_for(lambda: env.bound().get("vip"), 30, "the preemptor bound")
    after = env.bound()
    gone = sorted(set(before) - set(after))
    # Two CPUs are needed: on prio-1 a mid-priority pod would have to go, on prio-2 two low ones suffice.
    assert gone == ["low-2", "low-3"], gone
    assert after["vip"] == "prio-2"
    assert env.pod("vip")["status"].get("nominatedNodeName") == "prio-2"
    preempted = env.events("low-2", "Preempted")
    assert preempted and preempted[0]["message"] == f"Preempted by {env.ns}/vip on node prio-2"
    assert_no_overcommit(env)


def test_local_persistent_volumes_pin_pods_to_their_node(env: Env) -> None:
    env.add_node("pv-1")
    env.add_node("pv-2")
    pv = {"metadata": {"name": f"{env.ns}-local"},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                   "local": {"path": "/data"},
                   "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                       {"key": "kubernetes.io/hostname", "operator": "In", "values": ["pv-2"]}]}]}}}}
    env.call("POST", "/api/v1/persistentvolumes", pv)
    env.cluster_objects.append(f"/api/v1/persistentvolumes/{env.ns}-local")
    env.call("POST", f"/api/v1/namespaces/{env.ns}/persistentvolumeclaims",
             {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local",
                                                     "volumeName": f"{env.ns}-local",
                                                     "resources": {"requests": {"storage": "1Gi"}}}})
    for i in range(3):
        env.add_pod(f"db-{i}", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}])
    env.add_pod("lost", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "nope"}}])
    wait_for(lambda: len(env.bound()) == 3 and env.unschedulable("lost"), 30)
    assert set(env.bound().values()) == {"pv-2"}
    assert env.unschedulable("lost")["message"].startswith(
        '0/2 nodes are available: 2 persistentvolumeclaim "nope" not found.')


def test_pods_for_other_schedulers_are_left_alone(env: Env) -> None:
    env.add_node("other-1")
    env.add_pod("mine")
    env.add_pod("theirs", schedulerName="someone-else")
    wait_for(lambda: "mine" in env.bound(), 30)
    time.sleep(0.5)
    assert "theirs" not in env.bound() and env.condition("theirs") is None


def test_health_and_metrics(scheduler: SchedulerProcess) -> None:
    assert scheduler.get("/healthz") == (200, "ok")
    code, text = scheduler.get("/metrics")
    assert code == 200
    for name in ("scheduler_schedule_attempts_total", "scheduler_pending_pods", "scheduler_pod_scheduling_duration_seconds",
                 "scheduler_scheduling_attempt_duration_seconds", "scheduler_cache_size"):
        assert name in text
    assert re.search(r'scheduler_schedule_attempts_total\{result="scheduled"\} [1-9]', text)
    bound = [r for r in scheduler.records() if r.get("event") == "bound"]
    assert bound and {"pod", "node", "uid"} <= set(bound[0]) and bound[0]["level"] == "info"
