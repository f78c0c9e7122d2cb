"""``pilot chaos``: break a running local cluster on a bounded schedule and check it heals.

While faults run, a workload is under load the whole time:

* a Deployment ``chaos-web`` (4 replicas, process runtime) behind a Service and an Ingress; a prober
  sends requests through the Service's ClusterIP and through the ingress, and counts every failure;
* writers create ConfigMaps (fresh names) and update others (server-side apply) through any API
  server, remembering what was acknowledged;
* one watcher per API server follows the ConfigMaps and checks resourceVersions only ever grow.

Faults are real, on the local processes found by their pid files:

``kill``          ``kill -9`` of a component; the supervisor restarts it.
``stop``          SIGSTOP, then SIGCONT after a while (a hung process: its sockets stay open).
``partition``     a store member cut from its peers with iptables rules on 127.0.0.1 (needs root):
                  packets to and from its peer port are dropped, and so are the connections it
                  opens to the other members' peer ports. pysyncobj keeps one connection per pair,
                  opened by the member with the larger address, so a member's *outgoing* peer
                  connections cannot be told apart by port: the member is moved into its own
                  cgroup (v2) and its new connections are matched with ``-m cgroup``; the ones it
                  already had are matched by their exact ports. Its client port stays reachable,
                  as for a real partitioned etcd member. Healing removes the rules and the cgroup.
``restart-all``   ``kill -9`` of every component at once; the supervisor brings them all back.
``kubelet-down``  (scenario only) ``kill -9`` of a kubelet *held down*: the supervisor is paused
                  with SIGSTOP so it cannot restart the kubelet (every other component keeps
                  running), the node goes NotReady and its pods are replaced on another node;
                  then the supervisor resumes, restarts the kubelet, and the node is Ready again.

The time to recover from a fault is measured from its end (the kill, the SIGCONT, the healed
partition) until everything is back: every component healthy, every node Ready, every Deployment
at its desired ready replicas, a write acknowledged and a request answered both through the
Service and through the ingress. The report then says whether:

* every acknowledged write is readable (created ConfigMaps exist, updated ones hold their last
  acknowledged value);
* every watch delivered resourceVersions in increasing order;
* Deployments are back at their desired ready replicas and every node is Ready;
* how many requests through the Service and the ingress failed, overall and per fault.

``pilot chaos --duration --seed`` draws faults at random; tests run named scenarios through
:func:`run_scenarios` on one cluster.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import shlex
import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from .demo import SERVER
from .local import ELECTION_LEASES, Layout, component_health, nodes, read_pid, store_status

log = logging.getLogger(__name__)

NAMESPACE = "default"
PREFIX = "chaos-"
APP = "chaos-web"
REPLICAS = 4
INGRESS_HOST = "chaos-web.pilot.test"
RECOVERY_TIMEOUT = 120.0
CGROUP_ROOT = Path("/sys/fs/cgroup/unified")

SCENARIOS = ("store-leader-kill", "apiserver-kill", "active-controllers-kill", "kubelet-down",
             "store-member-stop", "store-partition", "restart-all")


@dataclass
class Report:
    faults: list[dict[str, Any]] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # configmap name -> last acknowledged value
    created: set[str] = field(default_factory=set)  # configmaps whose creation was acknowledged
    acked_writes: int = 0
    write_errors: int = 0
    watch_violations: list[str] = field(default_factory=list)
    watch_events: int = 0
    lost: list[str] = field(default_factory=list)
    unhealthy: list[str] = field(default_factory=list)
    deployments_short: list[str] = field(default_factory=list)
    service: dict[str, dict[str, int]] = field(default_factory=dict)  # path -> {"requests", "failed"}
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.watch_violations or self.unhealthy or self.deployments_short
                    or any(f.get("recovered_after_s") is None or f.get("problems") for f in self.faults))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "faults": self.faults, "acked_writes": self.acked_writes,
                "acked_creates": len(self.created), "write_errors": self.write_errors,
                "lost_writes": self.lost, "watch_events": self.watch_events,
                "watch_violations": self.watch_violations, "unhealthy_after": self.unhealthy,
                "deployments_short": self.deployments_short, "service_requests": self.service,
                "skipped": self.skipped}


class _API:
    def __init__(self, layout: Layout) -> None:
        config = yaml.safe_load((layout.state_dir / "kubeconfig").read_text())
        self.token = config["users"][0]["user"]["token"]
        self.urls = layout.api_urls
        self.ssl = ssl.create_default_context(cafile=str(layout.state_dir / "pki" / "ca.crt"))
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"})

    async def call(self, method: str, path: str, body: Any = None, *, timeout: float = 5.0,
                   content_type: str = "application/json") -> tuple[int, Any]:
        last: tuple[int, Any] = (0, None)
        for url in random.sample(self.urls, len(self.urls)):
            try:
                async with self.session.request(method, url + path, data=json.dumps(body) if body is not None else None,
                                                ssl=self.ssl, timeout=aiohttp.ClientTimeout(total=timeout),
                                                headers={"Content-Type": content_type}) as resp:
                    data = await resp.read()
                    return resp.status, json.loads(data) if data else None
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                last = (0, repr(exc))
        return last

    async def close(self) -> None:
        await self.session.close()


def _workload() -> list[tuple[str, dict[str, Any]]]:
    labels = {"app": APP}
    return [
        (f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{APP}",
         {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": APP, "namespace": NAMESPACE},
          "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels},
                   "template": {"metadata": {"labels": labels}, "spec": {
                       "terminationGracePeriodSeconds": 2,
                       "containers": [{
                           "name": "web", "image": "python:3.11-slim", "command": ["python3", "-c", SERVER],
                           "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                           "ports": [{"containerPort": 8080}],
                           "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}}}}),
        (f"/api/v1/namespaces/{NAMESPACE}/services/{APP}",
         {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "namespace": NAMESPACE},
          "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}}),
        (f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/ingresses/{APP}",
         {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": APP, "namespace": NAMESPACE},
          "spec": {"ingressClassName": "pilot", "rules": [{"host": INGRESS_HOST, "http": {"paths": [
              {"path": "/", "pathType": "Prefix",
               "backend": {"service": {"name": APP, "port": {"number": 80}}}}]}}]}}),
    ]


# ---------------------------------------------------------------------- store partition (iptables)

def partition_supported() -> str:
    """Empty when a store member can be partitioned here, else why not."""
    if os.geteuid() != 0:
        return "partition needs root (iptables)"
    if shutil.which("iptables") is None:
        return "partition needs iptables"
    if not (CGROUP_ROOT / "cgroup.procs").exists():
        return f"partition needs a cgroup v2 hierarchy at {CGROUP_ROOT}"
    return ""


def _iptables(*args: str) -> None:
    subprocess.run(["iptables", "-w", *args], check=True, capture_output=True, timeout=30)


def _established_ports(pid: int, remote_ports: set[int]) -> list[tuple[int, int]]:
    """(local port, remote port) of ``pid``'s TCP connections to 127.0.0.1:<remote_ports>."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if len(cols) > 9 and cols[9] in inodes:
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            remote_port = int(cols[2].rsplit(":", 1)[1], 16)
            if remote_port in remote_ports:
                out.append((local_port, remote_port))
    return out


class Partition:
    """Cut one store member from its peers (see the module docstring); ``heal()`` undoes it all."""

    def __init__(self, layout: Layout, member: str) -> None:
        self.member = member
        self.tag = f"pilot-chaos:{os.getpid()}:{member}:{layout.state_dir}"[:250]
        self.peer = next(m["peer"] for m in layout.store if m["name"] == member)
        self.others = {m["peer"] for m in layout.store if m["name"] != member}
        self.pid = read_pid(layout.state_dir / "pids" / f"{member}.pid")
        self.cgroup = CGROUP_ROOT / f"pilot-chaos-{os.getpid()}-{member}"
        self.rules: list[list[str]] = []

    def _add(self, *rule: str) -> None:
        spec = ["OUTPUT", "-p", "tcp", *rule, "-m", "comment", "--comment", self.tag, "-j", "DROP"]
        _iptables("-I", *spec)
        self.rules.append(spec)

    def apply(self) -> None:
        if self.pid is None:
            raise RuntimeError(f"{self.member} is not running")
        self.cgroup.mkdir(exist_ok=True)
        (self.cgroup / "cgroup.procs").write_text(f"{self.pid}\n")
        # Every packet on the loopback interface passes OUTPUT once, so OUTPUT alone is enough.
        self._add("--dport", str(self.peer))
        self._add("--sport", str(self.peer))
        for port in sorted(self.others):
            self._add("-m", "cgroup", "--path", self.cgroup.name, "--dport", str(port))
        # A socket keeps the cgroup it was created in: the member's existing outgoing peer
        # connections are cut by their ports (both directions).
        for local, remote in _established_ports(self.pid, self.others):
            self._add("--sport", str(local), "--dport", str(remote))
            self._add("--sport", str(remote), "--dport", str(local))

    def heal(self) -> None:
        for spec in reversed(self.rules):
            try:
                _iptables("-D", *spec)
            except subprocess.CalledProcessError:
                pass
        self.rules.clear()
        if self.pid is not None and read_pid_alive(self.pid):
            try:
                (CGROUP_ROOT / "cgroup.procs").write_text(f"{self.pid}\n")
            except OSError:
                pass
        try:
            self.cgroup.rmdir()
        except OSError:
            pass


def heal_leftovers(layout: Layout) -> int:
    """Remove partition rules a crashed earlier run left for this cluster; how many were removed."""
    if partition_supported():
        return 0
    out = subprocess.run(["iptables", "-w", "-S", "OUTPUT"], capture_output=True, text=True, timeout=30).stdout
    removed = 0
    for line in out.splitlines():
        if "pilot-chaos:" in line and f":{layout.state_dir}" in line and line.startswith("-A "):
            try:
                _iptables("-D", *shlex.split(line)[1:])
                removed += 1
            except subprocess.CalledProcessError:
                pass
    return removed


def read_pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


# ---------------------------------------------------------------------- the run


class Chaos:
    """Workload, load and probes around a running cluster; faults are methods returning a record."""

    def __init__(self, layout: Layout, *, seed: int = 1) -> None:
        self.layout = layout
        self.rnd = random.Random(seed)
        self.report = Report()
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.last_ack = 0.0
        self.last_ok: dict[str, float] = {}
        self.cluster_ip = ""
        self.api: _API | None = None
        self.plain: aiohttp.ClientSession | None = None
        self.waiting_on: list[str] = []  # what the last recovery wait saw missing before it was over

    # -------------------------------------------------------------- setup and load

    async def __aenter__(self) -> Chaos:
        await self._in_thread(heal_leftovers, self.layout)
        self.api = _API(self.layout)
        self.plain = aiohttp.ClientSession()
        try:
            await self._deploy()
        except BaseException:
            await self.api.close()
            await self.plain.close()
            raise
        self.report.service = {"service": {"requests": 0, "failed": 0}, "ingress": {"requests": 0, "failed": 0}}
        for n in range(2):
            self.tasks.append(asyncio.create_task(self._writer(n)))
        for url in self.layout.api_urls:
            self.tasks.append(asyncio.create_task(self._watcher(url)))
        self.tasks.append(asyncio.create_task(self._prober()))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        assert self.api is not None and self.plain is not None
        await self.api.close()
        await self.plain.close()

    async def _deploy(self) -> None:
        assert self.api is not None
        for path, manifest in _workload():
            deadline = time.monotonic() + 60
            while True:
                code, body = await self.api.call("PATCH", path + "?fieldManager=pilot-chaos&force=true", manifest,
                                                 content_type="application/apply-patch+yaml", timeout=10)
                if code in (200, 201):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"applying the chaos workload {manifest['kind']} failed ({code}): {body}")
                await asyncio.sleep(1)
        code, svc = await self.api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/services/{APP}")
        self.cluster_ip = (svc or {}).get("spec", {}).get("clusterIP", "") if code == 200 else ""
        if not self.cluster_ip:
            raise RuntimeError(f"the chaos Service has no ClusterIP ({code}: {svc})")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if await self._deployments_short() == [] and all(await asyncio.gather(
                    self._probe("service"), self._probe("ingress"))):
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"the chaos workload did not serve within 120 s (deployments short: "
                           f"{await self._deployments_short()})")

    async def _writer(self, n: int) -> None:
        assert self.api is not None
        i = 0
        while not self.stop.is_set():
            i += 1
            if i % 4 == 0:
                name = f"{PREFIX}c{n}-{int(time.time() * 1000)}-{i}"
                code, _ = await self.api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps",
                                              {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": name, "labels": {"pilot-chaos": "create"}},
                                               "data": {"v": name}})
                if code == 201:
                    self.report.created.add(name)
                    self._acked()
                else:
                    self.report.write_errors += 1
            else:
                name = f"{PREFIX}{n}-{i % 20}"
                value = f"{n}-{i}"
                code, _ = await self.api.call(
                    "PATCH", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}?fieldManager=chaos",
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name,
                                                                           "labels": {"pilot-chaos": "update"}},
                     "data": {"v": value}}, content_type="application/apply-patch+yaml")
                if code in (200, 201):
                    self.report.acked[name] = value
                    self._acked()
                else:
                    # Unknown outcome: the object may hold this value or the previous acked one.
                    self.report.write_errors += 1
                    self.report.acked.pop(name, None)
            await asyncio.sleep(0.05)

    def _acked(self) -> None:
        self.report.acked_writes += 1
        self.last_ack = time.monotonic()

    async def _watcher(self, url: str) -> None:
        """Follow ConfigMaps through one API server; resume from the last resourceVersion seen."""
        assert self.api is not None
        last = 0
        while not self.stop.is_set():
            if not last:
                # Start (or restart after 410 Gone) from a list's resourceVersion: a watch without
                # one would begin with the current objects as ADDED events, in no order.
                try:
                    async with self.api.session.get(url + f"/api/v1/namespaces/{NAMESPACE}/configmaps?limit=1",
                                                    ssl=self.api.ssl, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                        if resp.status == 200:
                            last = int((await resp.json())["metadata"]["resourceVersion"])
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError):
                    pass
                if not last:
                    await asyncio.sleep(0.5)
                    continue
            q = f"?watch=1&allowWatchBookmarks=true&timeoutSeconds=30&resourceVersion={last}"
            try:
                async with self.api.session.get(url + f"/api/v1/namespaces/{NAMESPACE}/configmaps{q}",
                                                ssl=self.api.ssl,
                                                timeout=aiohttp.ClientTimeout(total=40, sock_read=35)) as resp:
                    if resp.status != 200:
                        await asyncio.sleep(0.5)
                        continue
                    buf = b""
                    # Watch events can exceed aiohttp's line limit: read chunks, split on newlines.
                    async for chunk in resp.content.iter_any():
                        buf += chunk
                        while b"\n" in buf:
                            line, buf = buf.split(b"\n", 1)
                            if not line.strip():
                                continue
                            ev = json.loads(line)
                            if ev["type"] == "ERROR":
                                last = 0  # 410 Gone: list again
                                break
                            rv = int(ev["object"]["metadata"]["resourceVersion"])
                            if ev["type"] != "BOOKMARK":
                                self.report.watch_events += 1
                                if rv <= last:
                                    self.report.watch_violations.append(
                                        f"{url}: {ev['type']} {ev['object']['metadata'].get('name')} rv {rv} after {last}")
                            last = max(last, rv)
                        if self.stop.is_set():
                            return
                        if not last:
                            break
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                await asyncio.sleep(0.2)

    async def _probe(self, path: str) -> bool:
        assert self.plain is not None
        if path == "service":
            url, headers = f"http://{self.cluster_ip}:80/", {}
        else:
            url, headers = f"http://127.0.0.1:{self.layout.ingress_port}/", {"Host": INGRESS_HOST}
        try:
            async with self.plain.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                body = await resp.read()
                ok = resp.status == 200 and body.startswith(b"hello from " + APP.encode())
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            ok = False
        if ok:
            self.last_ok[path] = time.monotonic()
        return ok

    async def _prober(self) -> None:
        while not self.stop.is_set():
            for path in ("service", "ingress"):
                ok = await self._probe(path)
                counts = self.report.service[path]
                counts["requests"] += 1
                counts["failed"] += 0 if ok else 1
            await asyncio.sleep(0.1)

    # -------------------------------------------------------------- observing the cluster

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def pid(self, name: str) -> int | None:
        return read_pid(self.layout.state_dir / "pids" / f"{name}.pid")

    async def _deployments_short(self) -> list[str] | None:
        assert self.api is not None
        code, lst = await self.api.call("GET", "/apis/apps/v1/deployments", timeout=5)
        if code != 200:
            return None
        return [f"{d['metadata']['namespace']}/{d['metadata']['name']}"
                for d in lst.get("items", [])
                if (d.get("status") or {}).get("readyReplicas", 0) < (d.get("spec") or {}).get("replicas", 1)
                or (d.get("status") or {}).get("updatedReplicas", 0) < (d.get("spec") or {}).get("replicas", 1)]

    async def problems(self, since: float) -> list[str]:
        """What is not yet back (empty: recovered). ``since``: the fault's end."""
        out = []
        rows = await self._in_thread(component_health, self.layout)
        out += [f"{r['name']}: {r['health']}" for r in rows if r["health"] != "ok"]
        node_rows = await self._in_thread(nodes, self.layout)
        ready = {n["name"] for n in node_rows if n["ready"] == "True"}
        out += [f"node {n} not Ready" for n in self.layout.nodes if n not in ready]
        short = await self._deployments_short()
        out += ["deployments unknown"] if short is None else [f"deployment {d} short" for d in short]
        if self.last_ack < since:
            out.append("no write acknowledged yet")
        out += [f"no answer through the {p} yet" for p in ("service", "ingress") if self.last_ok.get(p, 0) < since]
        return out

    async def wait_recovered(self, since: float, timeout: float = RECOVERY_TIMEOUT,
                             extra: Any = None) -> tuple[float | None, list[str]]:
        """Seconds from ``since`` until :meth:`problems` (and ``await extra()``) list nothing."""
        deadline = time.monotonic() + timeout
        left: list[str] = []
        while time.monotonic() < deadline:
            left = await self.problems(since) + (await extra() if extra is not None else [])
            if not left:
                return round(time.monotonic() - since, 2), []
            self.waiting_on = left
            await asyncio.sleep(0.25)
        return None, left

    async def store_leader(self) -> str | None:
        ctx = self.layout.store_tls()
        ids: dict[str, str] = {}
        leader = None
        for m in self.layout.store:
            st = await self._in_thread(lambda url: store_status(url, context=ctx), f"https://127.0.0.1:{m['client']}")
            if st:
                ids[st["header"]["member_id"]] = m["name"]
                leader = st.get("leader") or leader
        return ids.get(leader) if leader else None

    async def lease_holder(self, component: str) -> tuple[str, int | None]:
        """(replica name, pid) holding the election Lease of ``component`` (scheduler, controller-manager)."""
        assert self.api is not None
        code, obj = await self.api.call(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{ELECTION_LEASES[component]}")
        holder = ((obj or {}).get("spec") or {}).get("holderIdentity") or "" if code == 200 else ""
        name, _, pid = holder.partition("_")
        return name, int(pid) if pid.isdigit() else None

    async def pods(self) -> list[dict[str, Any]]:
        assert self.api is not None
        code, lst = await self.api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3D{APP}")
        return (lst or {}).get("items", []) if code == 200 else []

    # -------------------------------------------------------------- faults

    def _window(self) -> dict[str, Any]:
        return {"failed": {p: c["failed"] for p, c in self.report.service.items()},
                "requests": {p: c["requests"] for p, c in self.report.service.items()},
                "write_errors": self.report.write_errors}

    def _record(self, record: dict[str, Any], before: dict[str, Any], injected: float, ended: float,
                recovered: float | None, left: list[str]) -> dict[str, Any]:
        after = self._window()
        if recovered is not None and self.waiting_on:
            record["last_waited_for"] = self.waiting_on
        self.waiting_on = []
        record.update({
            "fault_s": round(ended - injected, 2),
            "recovered_after_s": recovered,
            "service_failed": {p: after["failed"][p] - before["failed"][p] for p in after["failed"]},
            "service_requests": {p: after["requests"][p] - before["requests"][p] for p in after["requests"]},
            "write_errors": after["write_errors"] - before["write_errors"],
        })
        if left:
            record["not_recovered"] = left
        self.report.faults.append(record)
        print(json.dumps({"chaos_fault": record}), flush=True)
        return record

    def _signal(self, name: str, sig: int) -> int:
        pid = self.pid(name)
        if pid is None:
            raise ProcessLookupError(name)
        os.kill(pid, sig)
        return pid

    async def kill(self, names: list[str], role: str = "") -> dict[str, Any]:
        before, t0 = self._window(), time.monotonic()
        pids = {}
        for name in names:
            try:
                pids[name] = self._signal(name, signal.SIGKILL)
            except ProcessLookupError:
                pass
        recovered, left = await self.wait_recovered(t0)
        record: dict[str, Any] = {"fault": "kill -9", "components": names, "role": role, "pids": pids}
        if not pids:
            record["problems"] = [f"nothing was running to kill ({role or names})"]
        return self._record(record, before, t0, t0, recovered, left)

    async def pause(self, name: str, seconds: float, role: str = "") -> dict[str, Any]:
        before, t0 = self._window(), time.monotonic()
        self._signal(name, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            try:
                self._signal(name, signal.SIGCONT)
            except ProcessLookupError:
                pass
        ended = time.monotonic()
        recovered, left = await self.wait_recovered(ended)
        return self._record({"fault": "SIGSTOP", "components": [name], "role": role}, before, t0, ended,
                            recovered, left)

    async def partition(self, member: str, seconds: float, role: str = "") -> dict[str, Any]:
        before, t0 = self._window(), time.monotonic()
        part = Partition(self.layout, member)
        detail: dict[str, Any] = {}
        try:
            await self._in_thread(part.apply)
            detail["rules"] = len(part.rules)
            acked_before = self.report.acked_writes
            deadline = t0 + seconds
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                leader = await self.store_leader()
                if leader and leader != member:
                    detail.setdefault("new_leader", leader)
                    detail.setdefault("new_leader_after_s", round(time.monotonic() - t0, 2))
            detail["acked_writes_during"] = self.report.acked_writes - acked_before
        finally:
            await self._in_thread(part.heal)
        ended = time.monotonic()
        recovered, left = await self.wait_recovered(ended)
        return self._record({"fault": "partition", "components": [member], "role": role, **detail},
                            before, t0, ended, recovered, left)

    async def restart_all(self) -> dict[str, Any]:
        names = [c.name for c in self.layout.components()]
        record = await self.kill(names, role="everything")
        record["fault"] = "restart-all (kill -9 of every component)"
        return record

    async def kubelet_down(self, node: str | None = None) -> dict[str, Any]:
        """kill -9 a kubelet and keep it down (supervisor paused) until its pods run elsewhere."""
        before, t0 = self._window(), time.monotonic()
        pods = await self.pods()
        if node is None:
            counts = {n: sum(1 for p in pods if p["spec"].get("nodeName") == n) for n in self.layout.nodes}
            node = max(counts, key=lambda n: counts[n])
        old = {p["metadata"]["name"]: p.get("status", {}).get("podIP")
               for p in pods if p["spec"].get("nodeName") == node}
        supervisor = read_pid(self.layout.state_dir / "pids" / "supervisor.pid")
        if supervisor is None:
            raise RuntimeError("no supervisor to hold the kubelet down")
        detail: dict[str, Any] = {"node": node, "pods_on_node": len(old)}
        problems = []
        os.kill(supervisor, signal.SIGSTOP)
        try:
            self._signal(f"kubelet-{node}", signal.SIGKILL)
            deadline = t0 + RECOVERY_TIMEOUT + 60
            while time.monotonic() < deadline:
                ready = {n["name"]: n["ready"] for n in await self._in_thread(nodes, self.layout)}
                if "not_ready_after_s" not in detail and ready.get(node) not in (None, "True"):
                    detail["not_ready_after_s"] = round(time.monotonic() - t0, 2)
                live = [p for p in await self.pods() if not p["metadata"].get("deletionTimestamp")]
                elsewhere = [p for p in live if p["spec"].get("nodeName") not in (None, "", node)
                             and any(c.get("type") == "Ready" and c.get("status") == "True"
                                     for c in (p.get("status") or {}).get("conditions") or [])]
                if "not_ready_after_s" in detail and len(live) == len(elsewhere) >= REPLICAS:
                    detail["replaced_after_s"] = round(time.monotonic() - t0, 2)
                    break
                await asyncio.sleep(0.5)
            else:
                problems.append(f"pods of {node} not replaced on another node")
        finally:
            os.kill(supervisor, signal.SIGCONT)
        ended = time.monotonic()
        recovered, left = await self.wait_recovered(ended)
        # The restarted kubelet must stop the pods that were replaced (their objects were deleted).
        stale = []
        deadline = time.monotonic() + 60
        while old and time.monotonic() < deadline:
            names = {p["metadata"]["name"] for p in await self.pods()}
            stale = [n for n in old if n in names]
            answering = [n for n, ip in old.items() if ip and await self._answers(ip)]
            if not stale and not answering:
                break
            stale = stale + [f"{n} still answers" for n in answering]
            await asyncio.sleep(0.5)
        if stale:
            problems.append(f"replaced pods not cleaned up: {stale}")
        if problems:
            detail["problems"] = problems
        return self._record({"fault": "kill -9, held down", "components": [f"kubelet-{node}"], "role": "kubelet",
                             **detail}, before, t0, ended, recovered, left)

    async def _answers(self, ip: str) -> bool:
        assert self.plain is not None
        try:
            async with self.plain.get(f"http://{ip}:8080/", timeout=aiohttp.ClientTimeout(total=1)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    async def scenario(self, name: str) -> dict[str, Any]:
        if name == "store-leader-kill":
            leader = await self.store_leader()
            return await self.kill([leader] if leader else [], role="store leader")
        if name == "apiserver-kill":
            return await self.kill([self.rnd.choice([f"apiserver-{i}" for i in range(1, len(self.layout.api_ports) + 1)])],
                                   role="API server")
        if name == "active-controllers-kill":
            sched, _ = await self.lease_holder("scheduler")
            cm, _ = await self.lease_holder("controller-manager")
            # One pod deleted at the same moment: only a new active pair can replace it.
            existing = {p["metadata"]["name"] for p in await self.pods()}
            victim = sorted(existing)[0] if existing else None
            before, t0 = self._window(), time.monotonic()
            pids = {n: self._signal(n, signal.SIGKILL) for n in (sched, cm) if n}
            if victim is not None:
                assert self.api is not None
                await self.api.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{victim}")

            async def taken_over_and_replaced() -> list[str]:
                out = []
                for c in ELECTION_LEASES:
                    holder, pid = await self.lease_holder(c)
                    if pid is None or pid in pids.values() or not read_pid_alive(pid):
                        out.append(f"{c} Lease held by no live process ({holder or 'nobody'})")
                fresh = [p for p in await self.pods() if p["metadata"]["name"] not in existing
                         and any(c.get("type") == "Ready" and c.get("status") == "True"
                                 for c in (p.get("status") or {}).get("conditions") or [])]
                if victim is not None and not fresh:
                    out.append(f"no Ready replacement for the deleted pod {victim}")
                return out

            recovered, left = await self.wait_recovered(t0, extra=taken_over_and_replaced)
            detail: dict[str, Any] = {"new_holders": {c: (await self.lease_holder(c))[0] for c in ELECTION_LEASES}}
            if not pids:
                detail["problems"] = ["no Lease holder found to kill"]
            return self._record({"fault": "kill -9", "components": [n for n in (sched, cm) if n],
                                 "role": "active scheduler + active controller-manager", "pids": pids,
                                 "deleted_pod": victim, **detail},
                                before, t0, t0, recovered, left)
        if name == "kubelet-down":
            return await self.kubelet_down()
        if name == "store-member-stop":
            leader = await self.store_leader()
            return await self.pause(leader or "kvstore-1", 20.0, role="store leader")
        if name == "store-partition":
            why = partition_supported()
            if why:
                self.report.skipped.append({"fault": "store-partition", "why": why})
                return {"fault": "partition", "skipped": why}
            leader = await self.store_leader()
            return await self.partition(leader or "kvstore-1", 15.0, role="store leader")
        if name == "restart-all":
            return await self.restart_all()
        raise ValueError(f"unknown scenario {name!r} (one of {', '.join(SCENARIOS)})")

    async def random_fault(self) -> None:
        names = [c.name for c in self.layout.components()]
        kinds = ["kill"] * 4 + ["stop"] * 2 + ["restart-all"]
        if not partition_supported():
            kinds.append("partition")
        kind = self.rnd.choice(kinds)
        if kind == "kill":
            await self.kill([self.rnd.choice(names)])
        elif kind == "stop":
            target = self.rnd.choice(names)
            if self.pid(target) is not None:
                await self.pause(target, self.rnd.uniform(2.0, 6.0))
        elif kind == "partition":
            await self.partition(self.rnd.choice([m["name"] for m in self.layout.store]), self.rnd.uniform(4.0, 10.0))
        else:
            await self.restart_all()

    # -------------------------------------------------------------- final invariants

    async def remove_workload(self) -> None:
        """Delete what the run created (the Deployment, its Service and Ingress, the writers' ConfigMaps).
        Best effort: a failure is reported in the log, the run's verdict stands."""
        assert self.api is not None
        calls = [(path, "?propagationPolicy=Background") for path, _ in _workload()]
        calls.append((f"/api/v1/namespaces/{NAMESPACE}/configmaps", "?labelSelector=pilot-chaos"))
        for path, query in calls:
            code, body = await self.api.call("DELETE", path + query, timeout=30)
            if code not in (200, 202, 404):
                log.warning("could not remove the chaos workload", extra={"path": path, "code": code, "body": body})

    async def finish(self) -> Report:
        assert self.api is not None
        report = self.report
        now = time.monotonic()
        # Let the load run on until everything is back, then stop it and check what was acked.
        _, left = await self.wait_recovered(now)
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        report.unhealthy = [p for p in left if not p.startswith("deployment")]
        stored: dict[str, dict[str, str]] | None = None
        deadline = time.monotonic() + 60
        while stored is None and time.monotonic() < deadline:
            code, lst = await self.api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps"
                                            "?labelSelector=pilot-chaos", timeout=20)
            if code == 200:
                stored = {o["metadata"]["name"]: (o.get("data") or {}) for o in lst.get("items", [])}
            else:
                await asyncio.sleep(1)
        if stored is None:
            report.unhealthy.append("ConfigMaps could not be listed")
            stored = {}
        report.lost = sorted(n for n in report.created if n not in stored)
        report.lost += sorted(f"{n}={v}" for n, v in report.acked.items() if stored.get(n, {}).get("v") != v)
        short = await self._deployments_short()
        report.deployments_short = ["unknown"] if short is None else short
        return report


async def run(layout: Layout, *, duration: float, seed: int, keep_workload: bool = False) -> Report:
    """Random faults for ``duration`` seconds (same seed, same schedule), then the invariants; the
    workload is removed afterwards unless ``keep_workload``."""
    async with Chaos(layout, seed=seed) as chaos:
        deadline = time.monotonic() + duration
        while True:
            await asyncio.sleep(chaos.rnd.uniform(2.0, 5.0))
            if time.monotonic() >= deadline:
                break
            await chaos.random_fault()
        report = await chaos.finish()
        if not keep_workload:
            await chaos.remove_workload()
        return report


async def run_scenarios(layout: Layout, scenarios: list[str] | tuple[str, ...] = SCENARIOS, *, seed: int = 1,
                        settle: float = 2.0, keep_workload: bool = False) -> Report:
    """Named faults one after another (each waits for full recovery), then the invariants."""
    async with Chaos(layout, seed=seed) as chaos:
        for name in scenarios:
            await asyncio.sleep(settle)
            await chaos.scenario(name)
        report = await chaos.finish()
        if not keep_workload:
            await chaos.remove_workload()
        return report
