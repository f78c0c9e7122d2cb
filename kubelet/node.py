"""One node: its Node object, Lease heartbeat, admission and the pod workers that run on it.

A ``NodeAgent`` per node name — one for a normal kubelet, ``--fake-nodes N`` of them in one process
sharing the pod informer, the status writer and the client:

* registration: ``POST /api/v1/nodes`` with labels (``kubernetes.io/hostname``, os, arch, and
  ``--labels``), ``--taints`` (only at creation, as ``--register-with-taints``), ``spec.podCIDR``;
  if the Node exists its labels are merged and its pod CIDR kept. Then the status: capacity and
  allocatable, addresses (InternalIP, Hostname), conditions (MemoryPressure, DiskPressure,
  PIDPressure measured on this host for real runtimes, Ready), ``daemonEndpoints.kubeletEndpoint``
  and all ten ``nodeInfo`` fields;
* heartbeat: the Lease ``kube-node-lease/<node>`` (holder = node name, 40 s) renewed every 10 s,
  owned by the Node so it goes away with it;
* status: recomputed every 10 s and written when a condition or address changed, and at least every
  5 minutes (``nodeStatusReportFrequency``) with a fresh ``lastHeartbeatTime``;
* admission: a pod whose requests do not fit next to the pods already admitted is Failed with
  ``OutOf<resource>`` as the kubelet does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import platform
import random
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apiclient.events import NORMAL
from apiclient.rest import LEASES, NODES, APIConnectionError, jittered
from apimachinery import meta as m
from apimachinery.errors import StatusError
from apimachinery.quantity import Quantity

from .backoff import Backoff
from .podworker import TERMINAL, PodWorker
from .runtime.base import ContainerStatus, Runtime

if TYPE_CHECKING:
    from .kubelet import Kubelet

log = logging.getLogger(__name__)

Obj = dict[str, Any]
KUBELET_VERSION = "v1.32.0"
NODE_LEASE_NAMESPACE = "kube-node-lease"


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine or "amd64")


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.platform()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def node_info(name: str, runtime_version: str, *, fake: bool) -> dict[str, str]:
    """``status.nodeInfo``: the ten fields of NodeSystemInfo."""
    stable = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"pilothouse-node-{name}"))
    return {
        "machineID": stable.replace("-", "") if fake else (_read("/etc/machine-id") or stable.replace("-", "")),
        "systemUUID": stable if fake else (_read("/sys/class/dmi/id/product_uuid") or stable),
        "bootID": _read("/proc/sys/kernel/random/boot_id") or stable,
        "kernelVersion": platform.release(),
        "osImage": _os_image(),
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": KUBELET_VERSION,
        "operatingSystem": "linux",
        "architecture": _arch(),
    }


# The event the kubelet records when one of its node conditions takes a status (upstream's names).
CONDITION_EVENTS: dict[tuple[str, str], str] = {
    ("MemoryPressure", "False"): "NodeHasSufficientMemory", ("MemoryPressure", "True"): "NodeHasInsufficientMemory",
    ("DiskPressure", "False"): "NodeHasNoDiskPressure", ("DiskPressure", "True"): "NodeHasDiskPressure",
    ("PIDPressure", "False"): "NodeHasSufficientPID", ("PIDPressure", "True"): "NodeHasInsufficientPID",
    ("Ready", "True"): "NodeReady", ("Ready", "False"): "NodeNotReady",
}


def pod_requests(pod: Obj) -> dict[str, int]:
    """Effective requests (milli-units for cpu, units otherwise): max(sum of containers + sidecars, any init)."""
    spec = pod.get("spec") or {}

    def req(c: Obj) -> dict[str, int]:
        out: dict[str, int] = {}
        resources = c.get("resources") or {}
        values = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for key, value in values.items():
            with contextlib.suppress(ValueError):
                q = Quantity(str(value))
                out[key] = q.milli_value() if key == "cpu" else q.value()
        return out

    total: dict[str, int] = {}
    for c in [*(spec.get("containers") or []), *[i for i in spec.get("initContainers") or []
                                                 if i.get("restartPolicy") == "Always"]]:
        for k, v in req(c).items():
            total[k] = total.get(k, 0) + v
    for c in spec.get("initContainers") or []:
        if c.get("restartPolicy") == "Always":
            continue
        for k, v in req(c).items():
            total[k] = max(total.get(k, 0), v)
    for k, v in ((spec.get("overhead") or {}).items()):
        with contextlib.suppress(ValueError):
            q = Quantity(str(v))
            total[k] = total.get(k, 0) + (q.milli_value() if k == "cpu" else q.value())
    return total


class NodeAgent:
    def __init__(self, kubelet: Kubelet, *, name: str, runtime: Runtime, pod_cidr: str, index: int = 0) -> None:
        cfg = kubelet.config
        self.kubelet = kubelet
        self.name = name
        self.index = index
        self.runtime = runtime
        self.pod_cidr = pod_cidr
        self.client = kubelet.client
        self.statuses = kubelet.statuses
        self.recorder = kubelet.recorder
        self.events_enabled = kubelet.events_enabled
        self.lookup = kubelet.lookup
        self.volumes = kubelet.volumes if runtime.name != "fake" else None
        self.host_ip = cfg.internal_ip
        self.capacity = dict(cfg.capacity)
        self.allocatable = dict(cfg.capacity)
        self.backoff = Backoff(cfg.restart_backoff_base, cfg.restart_backoff_max, cfg.backoff_reset_after)
        self.workers: dict[str, PodWorker] = {}
        self.node_uid = ""
        self.registered = asyncio.Event()
        self.lease_renewals = 0
        self.status_updates = 0
        self._lease: Obj | None = None
        self._reported: Obj | None = None
        self._reported_at = 0.0
        self._stored_checked_at = 0.0
        self._conditions: dict[str, Obj] = {}
        self._announced: dict[str, str] = {}  # condition type -> the status our last event about it told
        self._tasks: list[asyncio.Task[Any]] = []
        runtime.on_exit = self.on_container_exit

    # ------------------------------------------------------------------ helpers for workers

    def pod_dir(self, uid: str) -> Path:
        return self.kubelet.config.root_dir / "pods" / uid

    def service_links(self, pod: Obj) -> dict[str, str]:
        return self.kubelet.service_links(pod)

    def service_env(self) -> dict[str, str]:
        """KUBERNETES_SERVICE_HOST/PORT and friends, where this node's pods can reach that address: host
        processes always; containers unless it is a loopback address (which would be their own)."""
        env = self.kubelet.service_env()
        if self.runtime.name != "process" and _is_loopback(env["KUBERNETES_SERVICE_HOST"]):
            return {}
        return env

    def observe_status(self, worker: PodWorker, status: Obj) -> None:
        self.kubelet.observe_status(self, worker, status)

    def admit(self, pod: Obj) -> tuple[str, str] | None:
        wanted = pod_requests(pod)
        used: dict[str, int] = {}
        count = 0
        for w in self.workers.values():
            if w.uid == m.uid(pod) or w.rejected or w.done or w.terminal or w.sandbox is None:
                continue
            if (w.pod.get("status") or {}).get("phase") in TERMINAL:
                continue
            count += 1
            for k, v in pod_requests(w.pod).items():
                used[k] = used.get(k, 0) + v
        pods_cap = int(Quantity(self.allocatable.get("pods", "110")).value())
        if count + 1 > pods_cap:
            return "OutOfpods", (f"Pod was rejected: Node didn't have enough resource: pods, requested: 1, "
                                 f"used: {count}, capacity: {pods_cap}")
        for key in ("cpu", "memory", "ephemeral-storage"):
            if key not in wanted or key not in self.allocatable:
                continue
            q = Quantity(self.allocatable[key])
            cap = q.milli_value() if key == "cpu" else q.value()
            if wanted[key] + used.get(key, 0) > cap:
                return f"OutOf{key}", (f"Pod was rejected: Node didn't have enough resource: {key}, requested: "
                                       f"{wanted[key]}, used: {used.get(key, 0)}, capacity: {cap}")
        return None

    # ------------------------------------------------------------------ pods

    def pod_added(self, pod: Obj) -> None:
        uid = m.uid(pod)
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        worker = PodWorker(self, pod)
        self.workers[uid] = worker
        worker.start()
        asyncio.get_running_loop().create_task(self._reap(worker))

    async def _reap(self, worker: PodWorker) -> None:
        await worker.finished.wait()
        if self.workers.get(worker.uid) is worker and worker.done:
            del self.workers[worker.uid]

    def pod_updated(self, pod: Obj) -> None:
        worker = self.workers.get(m.uid(pod))
        if worker is None:
            self.pod_added(pod)
        else:
            worker.update(pod)

    def pod_deleted(self, pod: Obj) -> None:
        worker = self.workers.get(m.uid(pod))
        if worker is not None:
            worker.delete(pod)

    def on_container_exit(self, status: ContainerStatus) -> None:
        worker = self.workers.get(status.pod_uid)
        if worker is not None:
            worker.container_exited(status)

    async def cleanup_orphans(self, known: set[str]) -> int:
        """Containers and pod directories of pods that no longer exist (deleted while we were down)."""
        orphans = {c.pod_uid for c in self.runtime.list_containers()} | set(self.runtime.sandboxes())
        orphans -= known
        for uid in orphans:
            for c in self.runtime.list_containers(uid):
                if c.running:
                    with contextlib.suppress(Exception):
                        await self.runtime.stop_container(c.id, 2.0)
            with contextlib.suppress(Exception):
                await self.runtime.remove_pod_sandbox(uid)
            log.info("removed orphaned pod %s", uid, extra={"event": "orphan_removed", "uid": uid, "node": self.name})
        if self.volumes is not None:
            for uid in self.volumes.known_pod_dirs():
                if uid not in known:
                    self.volumes.teardown(uid)
        return len(orphans)

    # ------------------------------------------------------------------ Node object

    def _labels(self) -> dict[str, str]:
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": _arch(),
                  "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": _arch(),
                  "node.pilothouse.io/runtime": self.runtime.name}
        if self.runtime.name == "fake":
            labels["type"] = "kwok"
        labels.update(self.kubelet.config.labels)
        return labels

    def _condition(self, ctype: str, ok: bool, reason: str, message: str, now: str) -> Obj:
        status = "False" if ctype != "Ready" else "True"
        if not ok:
            status = "True" if ctype != "Ready" else "False"
        prev = self._conditions.get(ctype)
        cond = {"type": ctype, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": prev["lastTransitionTime"] if prev and prev["status"] == status else now}
        self._conditions[ctype] = cond
        return cond

    def _pressure(self) -> tuple[bool, bool, bool]:
        """(memory ok, disk ok, pids ok), measured on this host (fake nodes never have pressure)."""
        if self.runtime.name == "fake":
            return True, True, True
        mem_ok = disk_ok = pid_ok = True
        for line in _read("/proc/meminfo").splitlines():
            if line.startswith("MemAvailable:"):
                mem_ok = int(line.split()[1]) * 1024 >= 100 * 1024 * 1024  # eviction-hard memory.available<100Mi
        with contextlib.suppress(OSError):
            usage = shutil.disk_usage(self.kubelet.config.root_dir)
            disk_ok = usage.free >= 0.10 * usage.total  # nodefs.available<10%
        with contextlib.suppress(OSError, ValueError):
            pid_max = int(_read("/proc/sys/kernel/pid_max", "32768"))
            procs = sum(1 for p in os.scandir("/proc") if p.name.isdigit())
            pid_ok = procs < 0.9 * pid_max
        return mem_ok, disk_ok, pid_ok

    def node_status(self) -> Obj:
        now = m.now_rfc3339()
        mem_ok, disk_ok, pid_ok = self._pressure()
        conditions = [
            self._condition("MemoryPressure", mem_ok, "KubeletHasSufficientMemory" if mem_ok else "KubeletHasInsufficientMemory",
                            "kubelet has sufficient memory available" if mem_ok else "kubelet has insufficient memory available", now),
            self._condition("DiskPressure", disk_ok, "KubeletHasNoDiskPressure" if disk_ok else "KubeletHasDiskPressure",
                            "kubelet has no disk pressure" if disk_ok else "kubelet has disk pressure", now),
            self._condition("PIDPressure", pid_ok, "KubeletHasSufficientPID" if pid_ok else "KubeletHasInsufficientPID",
                            "kubelet has sufficient PID available" if pid_ok else "kubelet has insufficient PID available", now),
            self._condition("Ready", True, "KubeletReady", "kubelet is posting ready status", now),
        ]
        return {
            "capacity": dict(self.capacity), "allocatable": dict(self.allocatable), "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.host_ip}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet.port}},
            "nodeInfo": node_info(self.name, self.runtime.version(), fake=self.runtime.name == "fake"),
            "images": [],
        }

    @staticmethod
    def _comparable(status: Obj) -> Obj:
        out = dict(status)
        out["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status["conditions"]]
        return out

    async def register(self) -> None:
        """Create (or adopt) the Node, then write its status; retried until it works."""
        attempt = 0
        while True:
            try:
                await self._register_once()
                self.registered.set()
                return
            except (StatusError, APIConnectionError) as exc:
                attempt += 1
                log.warning("node %s: registration failed: %r", self.name, exc)
                # Upstream's kubelet: 100 ms doubling to 7 s. A 503 comes from an API server that is
                # starting (it answers so until its RBAC defaults are loaded) and is ready soon, so at
                # most 0.25 s then: a cluster that starts together registers its nodes at once.
                delay = min(7.0, 0.1 * 2 ** min(attempt - 1, 7))
                if isinstance(exc, StatusError) and exc.code == 503:
                    delay = min(delay, 0.25)
                await asyncio.sleep(jittered(delay))

    async def _register_once(self) -> None:
        body: Obj = {"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": self.name, "labels": self._labels(),
                                  "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                                  "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                     "spec": {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]} if self.pod_cidr else {}}
        if self.kubelet.config.taints:
            body["spec"]["taints"] = [dict(t) for t in self.kubelet.config.taints]
        try:
            node = await self.client.create(NODES, body)
            log.info("registered node %s", self.name, extra={"event": "node_registered", "node": self.name})
        except StatusError as err:
            if err.code != 409:
                raise
            node = await self.client.get(NODES, self.name)
            patch: Obj = {"metadata": {"labels": {k: v for k, v in self._labels().items()
                                                  if m.labels(node).get(k) != v}}}
            if self.pod_cidr and not (node.get("spec") or {}).get("podCIDR"):
                patch["spec"] = {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]}
            if patch["metadata"]["labels"] or "spec" in patch:
                node = await self.client.patch(NODES, self.name, patch)
        self.node_uid = m.uid(node)
        self._node_event("Starting", "Starting kubelet.")
        self._node_event("NodeAllocatableEnforced", "Updated Node Allocatable limit across pods")
        await self.report_status(force=True)

    def _node_event(self, reason: str, message: str) -> None:
        """An event about this node. As upstream's kubelet, its involvedObject has the node's name as uid
        (``kubectl describe node`` searches under both that and the real uid)."""
        if self.recorder is not None and self.events_enabled:
            self.recorder.event({"kind": "Node", "metadata": {"name": self.name, "uid": self.name}},
                                NORMAL, reason, message)

    def _announce_conditions(self, status: Obj) -> None:
        for c in status.get("conditions") or []:
            ctype, cstatus = str(c.get("type")), str(c.get("status"))
            if self._announced.get(ctype) != cstatus:
                self._announced[ctype] = cstatus
                reason = CONDITION_EVENTS.get((ctype, cstatus))
                if reason:
                    self._node_event(reason, f"Node {self.name} status is now: {reason}")

    async def report_status(self, *, force: bool = False) -> bool:
        status = self.node_status()
        comparable = self._comparable(status)
        loop_now = time.monotonic()
        due = loop_now - self._reported_at >= self.kubelet.config.status_report_interval
        if not force and not due and comparable == self._reported and not await self._stored_is_stale(loop_now):
            return False
        await self.client.patch(NODES, self.name, {"status": status}, subresource="status")
        self._announce_conditions(status)
        self._reported = comparable
        self._reported_at = loop_now
        self.status_updates += 1
        return True

    async def _stored_is_stale(self, now: float) -> bool:
        """Whether the stored Node disagrees with our Ready condition (the node lifecycle controller
        marks an unreachable node Unknown; once we are back we must say so at once, not in 5 min).

        Checked every 10 s on real runtimes; fake nodes (hundreds per process) skip it."""
        if self.runtime.name == "fake" or now - self._stored_checked_at < 10.0:
            return False
        self._stored_checked_at = now
        try:
            node = await self.client.get(NODES, self.name)
        except StatusError:
            return False
        stored = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []}
        ours = {c.get("type"): c.get("status") for c in (self._reported or {}).get("conditions") or []}
        if stored.get("Ready") == ours.get("Ready"):
            return False
        self._announced.pop("Ready", None)  # Ready again after the controller's Unknown: NodeReady, as upstream
        return True

    async def renew_lease(self) -> None:
        cfg = self.kubelet.config
        now = m.now_rfc3339_micro()
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": cfg.lease_duration, "renewTime": now}
        if self._lease is not None:
            lease = dict(self._lease)
            lease["spec"] = {**(lease.get("spec") or {}), **spec}
            try:
                self._lease = await self.client.update(LEASES, lease, namespace=NODE_LEASE_NAMESPACE, name=self.name)
                self.lease_renewals += 1
                return
            except StatusError as err:
                if err.code not in (404, 409):
                    raise
                self._lease = None
        try:
            current = await self.client.get(LEASES, self.name, namespace=NODE_LEASE_NAMESPACE)
        except StatusError as err:
            if err.code != 404:
                raise
            body: Obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": self.name, "namespace": NODE_LEASE_NAMESPACE},
                         "spec": {**spec, "acquireTime": now}}
            if self.node_uid:
                body["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.name,
                                                        "uid": self.node_uid}]
            self._lease = await self.client.create(LEASES, body, namespace=NODE_LEASE_NAMESPACE)
            self.lease_renewals += 1
            return
        current["spec"] = {**(current.get("spec") or {}), **spec}
        if self.node_uid and not (current.get("metadata") or {}).get("ownerReferences"):
            current["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.name,
                                                       "uid": self.node_uid}]
        self._lease = await self.client.update(LEASES, current, namespace=NODE_LEASE_NAMESPACE, name=self.name)
        self.lease_renewals += 1

    async def _lease_loop(self) -> None:
        cfg = self.kubelet.config
        await asyncio.sleep(random.random() * min(1.0, cfg.lease_interval))  # spread fake nodes out
        failures = 0
        while True:
            try:
                await self.renew_lease()
                failures = 0
                delay = cfg.lease_interval
            except (StatusError, APIConnectionError) as exc:
                failures += 1
                log.warning("node %s: lease renewal failed: %r", self.name, exc)
                delay = min(cfg.lease_interval, 0.2 * 2 ** min(failures, 6))
            await asyncio.sleep(jittered(delay, 0.04))

    async def _status_loop(self) -> None:
        cfg = self.kubelet.config
        while True:
            await asyncio.sleep(jittered(cfg.node_status_check_interval, 0.1))
            try:
                await self.report_status()
            except StatusError as err:
                if err.code == 404:  # somebody deleted our Node: register again
                    self._lease = None
                    await self.register()
                else:
                    log.warning("node %s: status update failed: %s", self.name, err.message)
            except APIConnectionError as exc:
                log.warning("node %s: status update failed: %r", self.name, exc)

    def start_loops(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._lease_loop(), name=f"lease-{self.name}"),
                       loop.create_task(self._status_loop(), name=f"node-status-{self.name}")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())), return_exceptions=True)

