"""The kubelet's pure logic: pod status and phase, env resolution, backoff, IPAM, flags, CRI logs, atomic volumes."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import pytest
from kubernetes.client import ApiClient, V1Pod

from kubelet import podstatus
from kubelet.backoff import Backoff, go_duration
from kubelet.config import ConfigError, parse_capacity, parse_taints
from kubelet.envvars import EnvError, container_argv, container_env, expand
from kubelet.ipam import IPAM, IPAMExhausted, choose_loopback_index, fake_cidr, loopback_cidr
from kubelet.logs import LogOptions, read_log
from kubelet.node import node_info, pod_requests
from kubelet.runtime.base import ContainerStatus
from kubelet.volumes import VolumeError, object_files, write_atomic

NOW = "2026-01-01T00:00:00Z"


def pod(**spec: object) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "img"}], **spec},
            "status": {"phase": "Pending", "qosClass": "BestEffort"}}


def inst(name: str = "c", state: str = "running", code: int | None = None, attempt: int = 0) -> ContainerStatus:
    return ContainerStatus(id=f"id-{name}-{attempt}", pod_uid="u1", name=name, attempt=attempt, state=state,
                           image="img", image_id="sha256:x", created_at=100.0, started_at=100.0,
                           finished_at=200.0 if state == "exited" else 0.0, exit_code=code,
                           reason=("Completed" if code == 0 else "Error") if state == "exited" else "")


def status_of(p: dict, init: list, regular: list, **kw: object) -> dict:
    return podstatus.pod_status(p, scheme="process", init=init, regular=regular, host_ip="127.0.0.1",
                                pod_ip="127.5.0.9", start_time=NOW, sandbox_ready=True, now=NOW, **kw)


def conditions(status: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


# ---------------------------------------------------------------------- pod status

def test_running_and_ready_status_has_every_field_the_python_client_needs() -> None:
    p = pod()
    v = podstatus.ContainerView("c", "img", current=inst(), ready=True, started=True)
    st = status_of(p, [], [v])
    assert st["phase"] == "Running"
    assert conditions(st) == {"PodReadyToStartContainers": "True", "Initialized": "True", "ContainersReady": "True",
                              "Ready": "True", "PodScheduled": "True"}
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"running": {"startedAt": "1970-01-01T00:01:40Z"}} and cs["lastState"] == {}
    assert cs["containerID"] == "process://id-c-0" and cs["ready"] and cs["started"] and cs["restartCount"] == 0
    assert st["podIPs"] == [{"ip": "127.5.0.9"}] and st["hostIPs"] == [{"ip": "127.0.0.1"}]
    obj = ApiClient()._ApiClient__deserialize({**p, "status": st}, V1Pod)  # raises on a missing required field
    assert obj.status.container_statuses[0].image_id == "sha256:x"
    waiting = status_of(pod(), [], [podstatus.ContainerView("c", "img")])
    ApiClient()._ApiClient__deserialize({**pod(), "status": waiting}, V1Pod)


def test_crash_loop_status() -> None:
    dead = inst(state="exited", code=2, attempt=3)
    v = podstatus.ContainerView("c", "img", current=dead, waiting_reason="CrashLoopBackOff",
                                waiting_message="back-off 40s restarting failed container=c", will_restart=True)
    st = status_of(pod(), [], [v])
    cs = st["containerStatuses"][0]
    assert st["phase"] == "Running"
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 2 and cs["restartCount"] == 3
    assert conditions(st)["Ready"] == "False"
    ready = next(c for c in st["conditions"] if c["type"] == "ContainersReady")
    assert ready["reason"] == "ContainersNotReady" and ready["message"] == "containers with unready status: [c]"


@pytest.mark.parametrize("policy,codes,phase", [
    ("Never", [0, 0], "Succeeded"), ("Never", [0, 1], "Failed"), ("OnFailure", [0, 0], "Succeeded"),
])
def test_terminal_phases(policy: str, codes: list[int], phase: str) -> None:
    p = pod(restartPolicy=policy, containers=[{"name": "a", "image": "i"}, {"name": "b", "image": "i"}])
    views = [podstatus.ContainerView(n, "i", current=inst(n, "exited", c)) for n, c in zip("ab", codes)]
    st = status_of(p, [], views)
    assert st["phase"] == phase
    if phase == "Succeeded":
        assert next(c for c in st["conditions"] if c["type"] == "Ready")["reason"] == "PodCompleted"


def test_pending_while_init_containers_run() -> None:
    p = pod(initContainers=[{"name": "i1", "image": "i"}, {"name": "i2", "image": "i"}])
    init = [podstatus.ContainerView("i1", "i", current=inst("i1", "exited", 0)),
            podstatus.ContainerView("i2", "i", current=inst("i2"))]
    st = status_of(p, init, [podstatus.ContainerView("c", "img", waiting_reason="PodInitializing")])
    assert st["phase"] == "Pending"
    init_cond = next(c for c in st["conditions"] if c["type"] == "Initialized")
    assert init_cond["status"] == "False" and init_cond["message"] == "containers with incomplete status: [i2]"
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert [s["name"] for s in st["initContainerStatuses"]] == ["i1", "i2"]
    failed = [podstatus.ContainerView("i1", "i", current=inst("i1", "exited", 1))]
    assert status_of(pod(restartPolicy="Never", initContainers=[{"name": "i1"}]), failed, [])["phase"] == "Failed"


def test_transition_times_are_kept_and_foreign_conditions_survive() -> None:
    p = pod()
    p["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
                                 {"type": "DisruptionTarget", "status": "True"}]
    v = podstatus.ContainerView("c", "img", current=inst(), ready=True, started=True)
    st = status_of(p, [], [v])
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert any(c["type"] == "DisruptionTarget" for c in st["conditions"])


def test_readiness_gates() -> None:
    p = pod(readinessGates=[{"conditionType": "example.com/gate"}])
    v = podstatus.ContainerView("c", "img", current=inst(), ready=True, started=True)
    ready = next(c for c in status_of(p, [], [v])["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ReadinessGatesNotReady"


# ---------------------------------------------------------------------- env

def lookup_from(objs: dict) -> object:
    return lambda kind, ns, name: objs.get((kind, ns, name))


def test_env_resolution_in_kubernetes_order() -> None:
    objs = {("configmaps", "ns", "cm"): {"data": {"A": "from-cm", "bad-key!": "x", "K": "v"}},
            ("secrets", "ns", "s"): {"data": {"PASS": base64.b64encode(b"hunter2").decode()}}}
    container = {"name": "c", "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
                 "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
                 "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                         {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                         {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "K"}}},
                         {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "PASS"}}},
                         {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "x", "optional": True}}},
                         {"name": "GREETING", "value": "hi $(POD) $$(POD) $(NOPE)"}],
                 "command": ["echo", "$(GREETING)"], "args": ["$(K)"]}
    env, warnings = container_env(pod(), container, lookup=lookup_from(objs), pod_ip="127.1.2.3", host_ip="127.0.0.1",
                                  node_name="n1", allocatable={"cpu": "4"}, base={"POD_IP": "127.1.2.3", "POD": "x"})
    assert env["CM_A"] == "from-cm" and "CM_bad-key!" not in env and warnings
    assert (env["POD"], env["APP"], env["IP"], env["MEM"], env["CPU"]) == ("p", "web", "127.1.2.3", "64", "1")
    assert (env["K"], env["PASS"]) == ("v", "hunter2") and "OPT" not in env
    assert env["GREETING"] == "hi p $(POD) $(NOPE)"
    assert container_argv(container, env) == ["echo", "hi p $(POD) $(NOPE)", "v"]


def test_missing_references_are_config_errors() -> None:
    c = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}
    with pytest.raises(EnvError, match='configmap "cm" not found'):
        container_env(pod(), c, lookup=lookup_from({}), pod_ip="", host_ip="", node_name="n", allocatable={})
    objs = {("configmaps", "ns", "cm"): {"data": {}}}
    with pytest.raises(EnvError, match="couldn't find key k in ConfigMap ns/cm"):
        container_env(pod(), c, lookup=lookup_from(objs), pod_ip="", host_ip="", node_name="n", allocatable={})


def test_expand_edge_cases() -> None:
    assert expand("$(A)$(B", {"A": "1"}) == "1$(B"
    assert expand("$$$(A)", {"A": "x"}) == "$x"
    assert expand("plain $ text", {}) == "plain $ text"


# ---------------------------------------------------------------------- backoff, IPAM, flags, node

def test_backoff_doubles_caps_and_resets() -> None:
    b = Backoff(10, 40, 600)
    key = ("u", "c")
    assert b.remaining(key, started_at=0, finished_at=1, now=1) == 0  # first restart: at once
    b.next(key, now=1)
    assert b.remaining(key, started_at=1, finished_at=2, now=3) == pytest.approx(9)
    delays = [b.next(key, now=t) for t in (20, 50, 100, 150)]
    assert delays == [20, 40, 40, 40]
    assert b.remaining(key, started_at=0, finished_at=700, now=701) == 0  # ran 10 minutes: starts over
    assert go_duration(10) == "10s" and go_duration(300) == "5m0s" and go_duration(80) == "1m20s"


def test_ipam_is_deterministic_and_unique() -> None:
    a, b = IPAM("127.9.0.0/16"), IPAM("127.9.0.0/16")
    ips = [a.allocate(f"uid-{i}") for i in range(500)]
    assert len(set(ips)) == 500 and ips == [b.allocate(f"uid-{i}") for i in range(500)]
    assert all(ip.startswith("127.9.") and not ip.endswith((".0", ".255")) for ip in ips)
    assert "127.9.0.1" not in ips
    a.release("uid-0")
    assert a.allocate("uid-0") == ips[0]
    small = IPAM("10.64.0.0/30")  # .1 .2 .3
    assert sorted(small.allocate(u) for u in "xyz") == ["10.64.0.1", "10.64.0.2", "10.64.0.3"]
    with pytest.raises(IPAMExhausted):
        small.allocate("w")
    idx = choose_loopback_index("n1", [])
    assert choose_loopback_index("n1", [loopback_cidr(idx)]) != idx
    assert fake_cidr(0) == "10.64.0.0/24" and fake_cidr(257) == "10.65.1.0/24"


def test_flags() -> None:
    assert parse_capacity("cpu=2,memory=1Gi") == {"cpu": "2", "memory": "1Gi", "pods": "110"}
    assert parse_taints("gpu=yes:NoSchedule,dedicated:NoExecute") == [
        {"key": "gpu", "value": "yes", "effect": "NoSchedule"}, {"key": "dedicated", "effect": "NoExecute"}]
    with pytest.raises(ConfigError):
        parse_taints("a=b:Sometimes")
    with pytest.raises(ConfigError):
        parse_capacity("cpu=lots")


def test_node_info_and_requests() -> None:
    info = node_info("n1", "process://0.1.0", fake=True)
    assert len(info) == 10 and all(isinstance(v, str) and v for v in info.values())
    p = pod(containers=[{"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}},
                        {"name": "b", "resources": {"limits": {"cpu": "1"}}}],
            initContainers=[{"name": "i", "resources": {"requests": {"cpu": "2"}}}])
    assert pod_requests(p) == {"cpu": 2000, "memory": 1024 ** 3}


# ---------------------------------------------------------------------- logs

def write_records(path: Path, records: list[tuple[str, str, str, str]]) -> None:
    path.write_text("".join(f"{ts} {stream} {tag} {text}\n" for ts, stream, tag, text in records))


async def collect(path: Path, opts: LogOptions) -> bytes:
    return b"".join([chunk async for chunk in read_log(path, opts)])


async def test_log_options(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    write_records(log.with_name("0.log.1"), [("2026-01-01T00:00:01.000000000Z", "stdout", "F", "one")])
    write_records(log, [("2026-01-01T00:00:02.000000000Z", "stdout", "P", "tw"),
                        ("2026-01-01T00:00:02.100000000Z", "stdout", "F", "o"),
                        ("2026-01-01T00:00:03.500000000Z", "stderr", "F", "three")])
    assert await collect(log, LogOptions()) == b"one\ntwo\nthree\n"
    assert await collect(log, LogOptions(tail_lines=2)) == b"two\nthree\n"
    assert await collect(log, LogOptions(tail_lines=1, timestamps=True)) == b"2026-01-01T00:00:03.500000000Z three\n"
    from kubelet.logs import parse_time

    since = parse_time("2026-01-01T00:00:02.050000000Z")
    assert await collect(log, LogOptions(since=since)) == b"three\n"
    assert await collect(log, LogOptions(limit_bytes=6)) == b"one\ntw"


async def test_log_follow_sees_appends_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    write_records(log, [("2026-01-01T00:00:01Z", "stdout", "F", "a")])
    running = True
    got: list[bytes] = []

    async def follow() -> None:
        async for chunk in read_log(log, LogOptions(follow=True), running=lambda: running, poll=0.02):
            got.append(chunk)

    task = asyncio.ensure_future(follow())
    await asyncio.sleep(0.1)
    with open(log, "a") as f:
        f.write("2026-01-01T00:00:02Z stdout F b\n")
    await asyncio.sleep(0.1)
    os.replace(log, log.with_name("0.log.1"))
    write_records(log, [("2026-01-01T00:00:03Z", "stdout", "F", "c")])
    await asyncio.sleep(0.2)
    running = False
    await asyncio.wait_for(task, 5)
    assert b"".join(got) == b"a\nb\nc\n"


# ---------------------------------------------------------------------- volumes

def test_atomic_writer_swaps_and_prunes(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").read_bytes() == b"1" and (target / "dir" / "b").read_bytes() == b"2"
    assert os.readlink(target / "a") == "..data/a"
    assert not write_atomic(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert write_atomic(target, {"a": (b"new", 0o644)})
    assert (target / "a").read_bytes() == b"new" and not (target / "dir").exists()
    assert len([p for p in target.iterdir() if p.name.startswith("..20")]) == 1


def test_configmap_items_and_optional() -> None:
    cm = {"data": {"k": "v", "other": "x"}}
    assert object_files(cm, "configmaps", {"name": "cm", "items": [{"key": "k", "path": "sub/file", "mode": 0o600}]},
                        what="configmap") == {"sub/file": (b"v", 0o600)}
    assert object_files(None, "configmaps", {"name": "cm", "optional": True}, what="configmap") == {}
    with pytest.raises(VolumeError, match='configmap "cm" not found'):
        object_files(None, "configmaps", {"name": "cm"}, what="configmap")
    secret = {"data": {"token": base64.b64encode(b"s3cret").decode()}}
    assert object_files(secret, "secrets", {"secretName": "s", "defaultMode": 0o400}, what="secret") == {
        "token": (b"s3cret", 0o400)}


def test_service_link_variables_are_upstreams() -> None:
    from kubelet.envvars import service_link_env

    services = [{"metadata": {"name": "redis-master"},
                 "spec": {"clusterIP": "10.0.0.11", "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"},
                                                               {"name": "admin-ui", "port": 8080}]}},
                {"metadata": {"name": "headless"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}},
                {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.com"}}]
    assert service_link_env(services) == {
        "REDIS_MASTER_SERVICE_HOST": "10.0.0.11", "REDIS_MASTER_SERVICE_PORT": "6379",
        "REDIS_MASTER_SERVICE_PORT_REDIS": "6379", "REDIS_MASTER_SERVICE_PORT_ADMIN_UI": "8080",
        "REDIS_MASTER_PORT": "tcp://10.0.0.11:6379",
        "REDIS_MASTER_PORT_6379_TCP": "tcp://10.0.0.11:6379", "REDIS_MASTER_PORT_6379_TCP_PROTO": "tcp",
        "REDIS_MASTER_PORT_6379_TCP_PORT": "6379", "REDIS_MASTER_PORT_6379_TCP_ADDR": "10.0.0.11",
        "REDIS_MASTER_PORT_8080_TCP": "tcp://10.0.0.11:8080", "REDIS_MASTER_PORT_8080_TCP_PROTO": "tcp",
        "REDIS_MASTER_PORT_8080_TCP_PORT": "8080", "REDIS_MASTER_PORT_8080_TCP_ADDR": "10.0.0.11"}
