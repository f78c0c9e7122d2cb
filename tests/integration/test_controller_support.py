"""Helpers for the controller-manager tests (no tests here): the process, a simulated kubelet, REST helpers.

``SimKubelet`` plays the kubelets of a few fake nodes through the API only: it binds pending pods
to its nodes round-robin (standing in for the scheduler), marks them Running and Ready (unless told
to hold some back), renews the nodes' Leases, and finishes the deletion of terminating pods on its
nodes (a real kubelet stops the containers, then deletes the pod with grace 0). It runs on its own
event loop in a thread, so synchronous tests can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from apiclient.config import load_config
from apiclient.informer import Informer
from apiclient.rest import LEASES, NODES, PODS, RESTClient
from apimachinery import meta as m
from apimachinery.errors import StatusError
from tests.harness.apicluster import APICluster
from tests.harness.kvcluster import REPO, free_ports
from tests.integration.test_scheduler import SchedulerProcess, wait_for

Obj = dict[str, Any]


class ControllerManagerProcess(SchedulerProcess):
    """``python -m controllers`` with its log in a file (the scheduler test's process helpers)."""

    def __init__(self, api: APICluster, root: Path, name: str, *args: str) -> None:  # noqa: super not called
        self.port = free_ports(1)[0]
        self.name = name
        self.log_path = root / f"{name}.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controllers", "--kubeconfig", str(api.kubeconfig),
             "--bind", f"127.0.0.1:{self.port}", "--replica-name", name, *args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()

    @property
    def identity(self) -> str:
        return f"{self.name}_{self.pid}"

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(lambda: self.get("/readyz")[0] == 200 or self.proc.poll() is not None, timeout,
                 f"controller-manager ready ({self.log_path})")
        assert self.proc.poll() is None, self.log_path.read_text()[-3000:]

    def errors(self) -> list[Obj]:
        return [r for r in self.records() if r.get("level") == "error"]


class Rest:
    """Synchronous JSON calls to the API server of an ``APICluster`` that fail loudly."""

    def __init__(self, api: APICluster) -> None:
        self.api = api

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201),
             content_type: str = "application/json") -> Any:
        code, out, _ = self.api.request(method, path, body, content_type=content_type)
        assert code in ok, f"{method} {path}: {code} {out}"
        return out

    def get(self, path: str) -> Obj | None:
        code, out, _ = self.api.request("GET", path)
        if code == 404:
            return None
        assert code == 200, f"GET {path}: {code} {out}"
        return out

    def items(self, path: str) -> list[Obj]:
        return self.call("GET", path)["items"]

    def merge(self, path: str, patch: Obj) -> Obj:
        return self.call("PATCH", path, patch, content_type="application/merge-patch+json")

    def namespace(self, name: str) -> None:
        self.call("POST", "/api/v1/namespaces", {"metadata": {"name": name}}, ok=(201, 409))

    def node(self, name: str, *, labels: Obj | None = None, taints: list[Obj] | None = None,
             cpu: str = "64", memory: str = "256Gi", pods: str = "500") -> Obj:
        lbl = {"kubernetes.io/hostname": name, **(labels or {})}
        self.call("POST", "/api/v1/nodes", {"metadata": {"name": name, "labels": lbl},
                                            "spec": {"taints": taints or []}}, ok=(201, 409))
        alloc = {"cpu": cpu, "memory": memory, "pods": pods}
        now = m.now_rfc3339()
        status = {"capacity": alloc, "allocatable": alloc,
                  "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                  "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                                  "lastTransitionTime": now}]}
        return self.merge(f"/api/v1/nodes/{name}/status", {"status": status})


def pod_template(labels: Obj, *, image: str = "nginx:1", ports: list[Obj] | None = None, **spec: Any) -> Obj:
    container: Obj = {"name": "app", "image": image}
    if ports:
        container["ports"] = ports
    return {"metadata": {"labels": labels},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 30, **spec}}


class SimKubelet:
    """Fake kubelets for ``nodes`` (see the module docstring). ``start()``/``stop()``; thread-safe knobs."""

    def __init__(self, api: APICluster, nodes: list[str], *, renew_leases: bool = True, bind: bool = True,
                 lease_interval: float = 1.0, ready_delay: float = 0.0, serve_stats: bool = False) -> None:
        self.api = api
        # Serve /stats/summary over HTTPS and advertise it on the Nodes (InternalIP 127.0.0.1 and the
        # kubelet port), so the API server's metrics.k8s.io answers with what ``usage`` says.
        self.serve_stats = serve_stats
        self.ready_delay = ready_delay  # a new pod runs this long before it is Ready
        self._first_seen: dict[str, float] = {}
        self.nodes = list(nodes)
        self.renew_leases = renew_leases
        self.bind = bind
        self.lease_interval = lease_interval
        self.hold: Callable[[Obj], bool] = lambda pod: False  # pods that must not become Ready
        # Running pods end with the phase this returns ("Succeeded"/"Failed"; None: they keep running).
        self.outcome: Callable[[Obj], str | None] = lambda pod: None
        # With serve_stats: (CPU nanocores, memory bytes) a running pod uses, or None for no stats.
        self.usage: Callable[[Obj], tuple[int, int] | None] = lambda pod: None
        self.dead: set[str] = set()  # nodes whose kubelet is "down": no status, no leases, no deletions
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._next = 0
        self._ips = 0
        self._leases_held: dict[str, Obj] = {}
        self._revived: set[str] = set()
        self.errors: list[str] = []

    def start(self) -> SimKubelet:
        self._thread = threading.Thread(target=self._main, name="sim-kubelet", daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "sim kubelet did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)

    def kill_node(self, name: str) -> None:
        self.dead.add(name)

    def revive_node(self, name: str) -> None:
        self._revived.add(name)
        self.dead.discard(name)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._resync)

    def resync(self) -> None:
        """Look at every pod again (e.g. after changing ``hold``)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._resync)

    # ------------------------------------------------------------------ the loop thread

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        async with RESTClient(load_config(self.api.kubeconfig), max_connections=64) as client:
            self.client = client
            self.pods = Informer(client, PODS)
            self.pods.add_event_handler(on_add=self._put, on_update=lambda _o, n: self._put(n), on_delete=None)
            self.pods.start()
            await self.pods.wait_for_sync(30)
            workers = [asyncio.create_task(self._worker()) for _ in range(16)]
            leases = asyncio.create_task(self._leases())
            runner = await self._start_stats() if self.serve_stats else None
            self._ready.set()
            await self._stop.wait()
            if runner is not None:
                await runner.cleanup()
            for t in [*workers, leases]:
                t.cancel()
            await asyncio.gather(*workers, leases, return_exceptions=True)
            await self.pods.stop()

    async def _start_stats(self) -> Any:
        import ssl

        from aiohttp import web

        async def summary(request: web.Request) -> web.Response:
            node = request.query.get("node", "")
            now = m.now_rfc3339()
            pods = []
            for pod in self.pods.list():
                if (pod.get("spec") or {}).get("nodeName") != node or (pod.get("status") or {}).get("phase") != "Running":
                    continue
                use = self.usage(pod)
                if use is None:
                    continue
                cpu, mem = use
                containers = (pod.get("spec") or {}).get("containers") or []
                share = max(len(containers), 1)
                pods.append({"podRef": {"name": m.name(pod), "namespace": m.namespace(pod), "uid": m.uid(pod)},
                             "cpu": {"time": now, "usageNanoCores": cpu}, "memory": {"workingSetBytes": mem},
                             "containers": [{"name": c.get("name"), "cpu": {"usageNanoCores": cpu // share},
                                             "memory": {"workingSetBytes": mem // share}} for c in containers]})
            return web.json_response({"node": {"nodeName": node, "cpu": {"time": now, "usageNanoCores": 0},
                                               "memory": {"workingSetBytes": 0}}, "pods": pods})

        app = web.Application()
        app.router.add_get("/stats/summary", summary)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.api.certs.server_cert), str(self.api.certs.server_key))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_ports(1)[0]
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx).start()
        for node in self.nodes:
            await self.client.patch(NODES, node, {"status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": node}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}, subresource="status")
        return runner

    def _resync(self) -> None:
        for pod in self.pods.list():
            self._put(pod)

    def _put(self, pod: Obj) -> None:
        key = m.object_key(pod)
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            pod = self.pods.get(key)
            if pod is None:
                continue
            try:
                await self._handle(pod)
            except (StatusError, ConnectionError) as exc:
                if not (isinstance(exc, StatusError) and exc.code in (404, 409)):
                    self.errors.append(f"{key}: {exc!r}")
                    await asyncio.sleep(0.2)
                    self._put(pod)

    async def _handle(self, pod: Obj) -> None:
        ns, name = m.namespace(pod), m.name(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            if self.bind and not m.deletion_timestamp(pod) and self.nodes:
                alive = [n for n in self.nodes if n not in self.dead]
                if not alive:
                    return
                target = alive[self._next % len(alive)]
                self._next += 1
                await self.client.create(PODS, {"apiVersion": "v1", "kind": "Binding",
                                                "metadata": {"name": name, "namespace": ns},
                                                "target": {"apiVersion": "v1", "kind": "Node", "name": target}},
                                         namespace=ns, name=name, subresource="binding")
            return
        if node not in self.nodes or node in self.dead:
            return
        if m.deletion_timestamp(pod):
            await self.client.delete(PODS, name, namespace=ns, grace_period_seconds=0,
                                     preconditions={"uid": m.uid(pod)})
            return
        status = pod.get("status") or {}
        want_ready = not self.hold(pod)
        if want_ready and self.ready_delay > 0:
            first = self._first_seen.setdefault(m.uid(pod), time.monotonic())
            left = first + self.ready_delay - time.monotonic()
            if left > 0:
                want_ready = False
                asyncio.get_running_loop().call_later(left, self._put, pod)
        is_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if status.get("phase") == "Running" and (end := self.outcome(pod)):
            await self._finish(pod, end)
            return
        if status.get("phase") == "Running" and is_ready == want_ready:
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        now = m.now_rfc3339()
        flag = "True" if want_ready else "False"
        ip = status.get("podIP") or self._ip()
        containers = (pod.get("spec") or {}).get("containers") or []
        new_status = {
            "phase": "Running", "hostIP": "127.0.0.1", "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": status.get("startTime") or now,
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                           {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                           {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                           {"type": "Ready", "status": flag, "lastTransitionTime": now}],
            "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "imageID": "", "ready": want_ready,
                                   "restartCount": 0, "started": True,
                                   "state": {"running": {"startedAt": now}}} for c in containers],
        }
        await self.client.patch(PODS, name, {"status": new_status}, namespace=ns, subresource="status")

    async def _finish(self, pod: Obj, phase: str) -> None:
        now = m.now_rfc3339()
        code = 0 if phase == "Succeeded" else 1
        status = pod.get("status") or {}
        conditions = [{**c, "status": "False", "lastTransitionTime": now} if c.get("type") in ("Ready", "ContainersReady")
                      else c for c in status.get("conditions") or []]
        statuses = [{**cs, "ready": False, "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0
                                                                   else "Error", "finishedAt": now,
                                                                   "startedAt": status.get("startTime") or now}}}
                    for cs in status.get("containerStatuses") or []]
        await self.client.patch(PODS, m.name(pod), {"status": {"phase": phase, "conditions": conditions,
                                                               "containerStatuses": statuses}},
                                namespace=m.namespace(pod), subresource="status")

    def _ip(self) -> str:
        self._ips += 1
        return f"127.10.{self._ips // 250}.{self._ips % 250 + 1}"

    async def _leases(self) -> None:
        slots = asyncio.Semaphore(16)

        async def renew(node: str) -> None:
            async with slots:
                try:
                    await self._renew(node)
                except (StatusError, ConnectionError) as exc:
                    self._leases_held.pop(node, None)
                    self.errors.append(f"lease {node}: {exc!r}")

        while True:
            if self.renew_leases:
                await asyncio.gather(*(renew(n) for n in self.nodes if n not in self.dead))
            await asyncio.sleep(self.lease_interval)

    async def _renew(self, node: str) -> None:
        now = m.now_rfc3339_micro()
        lease = self._leases_held.get(node)
        if lease is None:
            try:
                lease = await self.client.get(LEASES, node, namespace="kube-node-lease")
            except StatusError as err:
                if err.code != 404:
                    raise
                self._leases_held[node] = await self.client.create(
                    LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                             "metadata": {"name": node, "namespace": "kube-node-lease"},
                             "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now}},
                    namespace="kube-node-lease")
                return
        lease["spec"]["renewTime"] = now
        self._leases_held[node] = await self.client.update(LEASES, lease, namespace="kube-node-lease")
        if node not in self._revived:
            return
        # Back from the dead: the kubelet reports Ready again (the controller had marked it Unknown).
        self._revived.discard(node)
        stamp = m.now_rfc3339()
        conds = [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": stamp,
                  "lastTransitionTime": stamp, "message": "kubelet is posting ready status"}]
        await self.client.patch(NODES, node, {"status": {"conditions": conds}}, subresource="status")


class PodWatch:
    """Watches the pods of a namespace (its own thread and informer) and, after every event, records how
    many matching pods exist (not terminating) and how many are Ready: the extremes over the run are
    what a rollout must respect at every step, as a watch sees the cluster change one event at a time.
    Counts are kept incrementally, so thousands of pods cost O(1) per event."""

    def __init__(self, api: APICluster, namespace: str, labels: dict[str, str]) -> None:
        self.api = api
        self.namespace = namespace
        self.labels = labels
        self.added: set[str] = set()  # uids of every matching pod seen
        self.armed = False  # record extremes only once armed (after the initial rollout)
        self.max_pods = 0
        self.min_ready: int | None = None
        self.max_templates = 0  # most pod-template-hash values at once (terminating pods included)
        self.existing = 0  # matching pods not being deleted, now
        self.ready = 0  # ... of which Ready
        self.events = 0
        self.bound = 0  # ... of which bound to a node
        self._state: dict[str, tuple[bool, bool, str, bool]] = {}  # key -> (alive, ready, template hash, bound)
        self._templates: dict[str, int] = {}
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True, name="pod-watch")

    def start(self) -> PodWatch:
        self._thread.start()
        assert self._ready.wait(30)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def arm(self) -> None:
        self.armed = True
        self.max_pods = self.existing
        self.min_ready = self.ready
        self.max_templates = len(self._templates)

    def _matches(self, pod: Obj) -> bool:
        labels = m.labels(pod)
        return all(labels.get(k) == v for k, v in self.labels.items())

    def _set(self, key: str, state: tuple[bool, bool, str, bool] | None) -> None:
        old = self._state.pop(key, None)
        if old is not None:
            self.existing -= old[0]
            self.ready -= old[0] and old[1]
            self.bound -= old[0] and old[3]
            self._templates[old[2]] -= 1
            if not self._templates[old[2]]:
                del self._templates[old[2]]
        if state is not None:
            self._state[key] = state
            self.existing += state[0]
            self.ready += state[0] and state[1]
            self.bound += state[0] and state[3]
            self._templates[state[2]] = self._templates.get(state[2], 0) + 1
        self.events += 1
        if self.armed:
            self.max_templates = max(self.max_templates, len(self._templates))
            self.max_pods = max(self.max_pods, self.existing)
            self.min_ready = self.ready if self.min_ready is None else min(self.min_ready, self.ready)

    def _changed(self, pod: Obj) -> None:
        if not self._matches(pod):
            self._set(m.object_key(pod), None)
            return
        self.added.add(m.uid(pod))
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or [])
        self._set(m.object_key(pod), (not m.deletion_timestamp(pod), ready, m.labels(pod).get("pod-template-hash", ""),
                                      bool((pod.get("spec") or {}).get("nodeName"))))

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with RESTClient(load_config(self.api.kubeconfig)) as client:
            self.informer = Informer(client, PODS, namespace=self.namespace)
            self.informer.add_event_handler(on_add=self._changed, on_update=lambda _o, n: self._changed(n),
                                            on_delete=lambda o: self._set(m.object_key(o), None))
            self.informer.start()
            await self.informer.wait_for_sync(30)
            self._ready.set()
            await self._stop.wait()
            await self.informer.stop()


@contextlib.contextmanager
def controller_env(api: APICluster, root: Path, *, namespace: str, nodes: list[str], controllers: str,
                   cm_args: tuple[str, ...] = (), **kubelet_kw: Any) -> Iterator[tuple[Rest, SimKubelet,
                                                                                  ControllerManagerProcess]]:
    """A namespace, Ready nodes with simulated kubelets and a controller-manager running ``controllers``;
    on exit the controller-manager must have logged no error."""
    rest = Rest(api)
    rest.namespace(namespace)
    for n in nodes:
        rest.node(n)
    kubelet = SimKubelet(api, nodes, **kubelet_kw).start()
    cm = ControllerManagerProcess(api, root, f"cm-{namespace}", "--controllers", controllers, *cm_args)
    try:
        cm.wait_ready()
        yield rest, kubelet, cm
        assert not cm.errors(), cm.errors()
    finally:
        cm.stop()
        kubelet.stop()
