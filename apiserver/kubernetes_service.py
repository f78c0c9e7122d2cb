"""The ``default/kubernetes`` Service and its endpoints: how pods find the API server.

What upstream's API server does with its "bootstrap controller" and the lease endpoint reconciler,
run by every replica:

* **The Service** ``default/kubernetes``: no selector, type ClusterIP, ClusterIP = the first address
  of ``--service-cluster-ip-range``, one port ``{name: https, port: 443, protocol: TCP, targetPort:
  <an advertised port>}``, labels ``component=apiserver``, ``provider=kubernetes``. Created when
  missing, repaired when someone edits it (ports, type, selector, those labels). The ClusterIP is
  claimed in the allocator under the Service's own storage key, so every replica's claim is the same
  idempotent claim and nobody else can be given the address (``Allocator`` refuses it to any other
  owner). ``targetPort`` means nothing for a Service without selector (the endpoints carry the
  ports); a value that is the port of some live API server is left as it is, so replicas on
  different ports do not overwrite each other's choice.
* **Identity Leases** ``kube-system/kube-apiserver-<id>`` (label
  ``apiserver.kubernetes.io/identity=kube-apiserver``, as upstream), one per advertised address,
  renewed every ``renew_interval`` seconds with ``leaseDurationSeconds = lease_duration``. The
  advertised ``HOST:PORT`` is in the annotation ``pilothouse.dev/advertise-address`` (upstream keeps
  the endpoint leases elsewhere, under ``/masterleases/`` in etcd; one object that every replica can
  watch does both jobs here). A lease counts as live while its spec keeps changing: time is measured
  on our own monotonic clock from when we saw it change (client-go's leader-election rule, so skewed
  clocks do not matter), and a lease whose ``renewTime`` is already older than its duration when we
  first see it is dead from the start. Leases dead for another duration are deleted.
* **Endpoints** ``default/kubernetes`` (label ``endpointslice.kubernetes.io/skip-mirror=true``) and
  **EndpointSlices** listing the live advertised addresses. ``pilot up`` runs several API servers on
  one IP with different ports, which one address list with one port cannot say: the Endpoints get
  one subset per port, and there is one EndpointSlice per port, ``kubernetes`` for the lowest port
  and ``kubernetes-<port>`` for each other (labels ``kubernetes.io/service-name=kubernetes`` and
  ``endpointslice.kubernetes.io/managed-by=kube-apiserver``; upstream sets only the first — the
  second says who owns the slice, and keeps the endpointslice controller, which selects on its own
  value, away from it). With one port, as in upstream clusters, that is one subset and one slice
  named ``kubernetes``. On a clean shutdown a replica deletes its lease and removes itself.

Every write goes through ``Storage`` with the revision it read (compare-and-swap), so replicas that
disagree for a moment (one has seen a lease expire, the other not yet) converge instead of losing
writes; an unchanged object is never rewritten.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import socket
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apimachinery.registry import Registry, ResourceType

from .allocator import Allocator
from .storage import Storage, object_key

log = logging.getLogger("apiserver.kubernetes_service")

NAMESPACE = "default"
NAME = "kubernetes"
LEASE_NAMESPACE = "kube-system"
IDENTITY_LABEL = "apiserver.kubernetes.io/identity"
IDENTITY_VALUE = "kube-apiserver"
ADDRESS_ANNOTATION = "pilothouse.dev/advertise-address"
SERVICE_LABELS = {"component": "apiserver", "provider": "kubernetes"}
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "kube-apiserver"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
PORT_NAME = "https"
SERVICE_PORT = 443

Obj = dict[str, Any]
Address = tuple[str, int]


# ---------------------------------------------------------------------- pure

def advertised_address(advertise: str) -> Address | None:
    """``HOST:PORT`` as an (IPv4, port) endpoint; a wildcard or a name resolved as upstream does
    (the address of the default route's interface, or the name's address). None if that fails."""
    host, _, port_text = advertise.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        return None
    if not 0 < port < 65536:
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            ip = ipaddress.ip_address(socket.gethostbyname(host))
        except (OSError, ValueError):
            return None
    if ip.is_unspecified:
        found = _default_route_ip()
        if found is None:
            return None
        ip = ipaddress.ip_address(found)
    if not isinstance(ip, ipaddress.IPv4Address):
        return None  # the slices and the proxy are IPv4-only
    return str(ip), port


def _default_route_ip() -> str | None:
    # A UDP "connect" sends nothing; it only asks the kernel which source address it would use.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: any routable address will do
            return str(s.getsockname()[0])
    except OSError:
        try:
            return socket.gethostbyname(socket.gethostname())
        except OSError:
            return None


def lease_name(address: Address) -> str:
    digest = hashlib.sha256(f"{address[0]}:{address[1]}".encode()).hexdigest()[:16]
    return f"kube-apiserver-{digest}"


def lease_address(lease: Mapping[str, Any]) -> Address | None:
    if m.labels(lease).get(IDENTITY_LABEL) != IDENTITY_VALUE:
        return None
    text = str(m.annotations(lease).get(ADDRESS_ANNOTATION) or "")
    host, _, port = text.rpartition(":")
    try:
        ipaddress.IPv4Address(host)
        port_num = int(port)
    except ValueError:
        return None
    return (host, port_num) if 0 < port_num < 65536 else None


def parse_micro_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError):
        return None


def desired_service(cluster_ip: str, target_port: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(SERVICE_LABELS)},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                     "sessionAffinity": "None",
                     "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "protocol": "TCP",
                                "targetPort": target_port}]}}


def repaired_service(current: Mapping[str, Any], live_ports: Iterable[int], own_port: int) -> Obj | None:
    """``current`` brought back to the shape every replica wants, or None if it already has it."""
    svc = m.deep_copy(dict(current))
    spec = svc.setdefault("spec", {})
    changed = False
    ports = spec.get("ports") or []
    target = ports[0].get("targetPort") if len(ports) == 1 and isinstance(ports[0], dict) else None
    if target not in set(live_ports) | {own_port}:
        target = own_port
    want_ports = [{"name": PORT_NAME, "port": SERVICE_PORT, "protocol": "TCP", "targetPort": target}]
    if ports != want_ports:
        spec["ports"] = want_ports
        changed = True
    if spec.get("type") != "ClusterIP":
        spec["type"] = "ClusterIP"
        for key in ("externalName", "externalTrafficPolicy", "healthCheckNodePort", "loadBalancerClass",
                    "allocateLoadBalancerNodePorts"):
            spec.pop(key, None)
        changed = True
    if spec.get("selector"):
        spec.pop("selector")
        changed = True
    labels = svc.setdefault("metadata", {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in SERVICE_LABELS.items()):
        svc["metadata"]["labels"] = {**labels, **SERVICE_LABELS}
        changed = True
    return svc if changed else None


def _by_port(addresses: Iterable[Address]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for ip, port in sorted(set(addresses), key=lambda a: (a[1], ipaddress.IPv4Address(a[0]))):
        out.setdefault(port, []).append(ip)
    return out


def desired_subsets(addresses: Iterable[Address]) -> list[Obj]:
    """Endpoints subsets: one per port, its addresses sorted."""
    return [{"addresses": [{"ip": ip} for ip in ips],
             "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]}
            for port, ips in _by_port(addresses).items()]


def slice_name(port: int, first: bool) -> str:
    return NAME if first else f"{NAME}-{port}"


def desired_slices(addresses: Iterable[Address]) -> dict[str, Obj]:
    """EndpointSlices by name: one per port, ``kubernetes`` for the lowest."""
    out: dict[str, Obj] = {}
    for i, (port, ips) in enumerate(_by_port(addresses).items()):
        out[slice_name(port, i == 0)] = {
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False}}
                          for ip in ips],
            "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]}
    return out


SLICE_LABELS = {SERVICE_NAME_LABEL: NAME, MANAGED_BY_LABEL: MANAGED_BY}


# ---------------------------------------------------------------------- the controller

class KubernetesService:
    """One per API server process: keeps its identity lease and reconciles the Service and endpoints."""

    def __init__(self, *, storage: Storage, registry: Registry, caches: Mapping[tuple[str, str], Any],
                 strategy: Any, allocator: Allocator, advertise: str, lease_duration: float = 15.0,
                 renew_interval: float = 5.0, manage_endpoints: bool = True) -> None:
        self.storage = storage
        self.caches = caches
        self.strategy = strategy
        self.allocator = allocator
        self.lease_duration = max(1.0, float(lease_duration))
        self.renew_interval = max(0.1, min(float(renew_interval), self.lease_duration / 2))
        self.manage_endpoints = manage_endpoints
        self.advertise = advertise
        self.address = advertised_address(advertise)
        self.lease_name = lease_name(self.address) if self.address else ""
        self.holder = f"{self.lease_name or 'kube-apiserver'}_{uuid.uuid4()}"
        self.rt = {plural: self._rt(registry, group, version, plural) for group, version, plural in (
            ("", "v1", "services"), ("", "v1", "endpoints"), ("discovery.k8s.io", "v1", "endpointslices"),
            ("coordination.k8s.io", "v1", "leases"))}
        self.owner = object_key(self.rt["services"], NAMESPACE, NAME)
        # lease name -> (its spec as last seen, monotonic time we saw it change)
        self._observed: dict[str, tuple[Obj, float]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ip_taken = False
        self._lease_rv = ""

    @staticmethod
    def _rt(registry: Registry, group: str, version: str, plural: str) -> ResourceType:
        rt = registry.get(group, version, plural)
        assert rt is not None, plural
        return rt

    def _cached(self, plural: str, namespace: str, name: str) -> Obj | None:
        rt = self.rt[plural]
        cache = self.caches.get((rt.group, rt.plural))
        return None if cache is None else cache.objects.get(object_key(rt, namespace, name))

    def _cached_all(self, plural: str, namespace: str) -> list[Obj]:
        rt = self.rt[plural]
        cache = self.caches.get((rt.group, rt.plural))
        return [] if cache is None else [o for o in cache.objects.values() if m.namespace(o) == namespace]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self.manage_endpoints and self.address is None:
            log.error("cannot publish %r as an endpoint of the kubernetes Service (not an IPv4 HOST:PORT, "
                      "or the name does not resolve): only the Service is managed", self.advertise)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(), name="kubernetes-service")]
        watched = ("services", "endpoints", "endpointslices") if self.manage_endpoints else ("services",)
        self._tasks += [loop.create_task(self._watch(plural), name=f"kubernetes-service-watch-{plural}")
                        for plural in watched]

    def kick(self) -> None:
        """Reconcile now (a watched object changed, or a write found our view stale)."""
        self._wake.set()

    async def stop(self) -> None:
        if not self._tasks:
            return
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.manage_endpoints and self.address is not None:
            # Leave the endpoints at once instead of after the lease expires (upstream RemoveEndpoints).
            try:
                await asyncio.wait_for(self._leave(), timeout=max(2.0, self.renew_interval))
            except Exception as exc:  # noqa: BLE001 - the lease expires anyway
                log.warning("could not remove this API server from the endpoints: %r", exc)

    async def _watch(self, plural: str) -> None:
        """Kick a reconcile when the Service, its Endpoints or its slices change (someone deleted or
        edited them): repaired at once rather than at the next renewal."""
        rt = self.rt[plural]
        cache = self.caches.get((rt.group, rt.plural))
        if cache is None:
            return

        def ours(obj: dict[str, Any]) -> bool:
            return m.name(obj) == NAME or m.labels(obj).get(SERVICE_NAME_LABEL) == NAME

        while True:
            await cache.ready.wait()
            try:
                watcher, _ = cache.watch(NAMESPACE, ours, cache.revision or None)
            except StatusError:  # 410: the window moved on; start from the current state
                watcher, _ = cache.watch(NAMESPACE, ours, None)
            try:
                while await watcher.queue.get() is not None:
                    self.kick()
            finally:
                cache.unwatch(watcher)
            self.kick()  # the watcher was closed (it fell behind): something may have changed

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # Decide from complete caches only: a replica that has not yet seen the others' leases would
        # drop them from the endpoints for a moment.
        for rt in self.rt.values():
            cache = self.caches.get((rt.group, rt.plural))
            if cache is not None:
                await cache.ready.wait()
        renewed = -math.inf
        while True:
            self._wake.clear()
            renew = loop.time() - renewed >= self.renew_interval
            try:
                if renew:
                    renewed = loop.time()
                await self.reconcile_once(renew=renew)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the store may be electing a leader; next round
                log.warning("kubernetes Service reconcile failed: %r", exc)
            await asyncio.sleep(0.05)  # a burst of events (or a run of conflicts) is one more round, not a spin
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, renewed + self.renew_interval - loop.time()))
            except asyncio.TimeoutError:
                pass

    async def reconcile_once(self, *, renew: bool = True) -> None:
        if renew and self.manage_endpoints and self.address is not None:
            await self._renew_lease()
        live = self.live_addresses() if self.manage_endpoints else []
        await self._reconcile_service([port for _, port in live])
        if self.manage_endpoints:
            await self._reconcile_endpoints(live)
            await self._reconcile_slices(live)
            await self._collect_leases()

    # ------------------------------------------------------------------ leases

    async def _renew_lease(self) -> None:
        assert self.address is not None
        now = m.now_rfc3339_micro()
        rt = self.rt["leases"]
        spec = {"holderIdentity": self.holder, "leaseDurationSeconds": max(1, math.ceil(self.lease_duration)),
                "renewTime": now}
        annotations = {ADDRESS_ANNOTATION: f"{self.address[0]}:{self.address[1]}"}
        labels = {IDENTITY_LABEL: IDENTITY_VALUE}
        try:
            current = await self.storage.get(rt, LEASE_NAMESPACE, self.lease_name)
        except StatusError as err:
            if err.code != 404:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.lease_name, "namespace": LEASE_NAMESPACE, "labels": labels,
                                 "annotations": annotations},
                    "spec": {**spec, "acquireTime": now, "leaseTransitions": 0}}
            self.strategy(rt).prepare_create(body)
            try:
                created = await self.storage.create(rt, body)
            except StatusError as err2:
                if err2.code != 409:
                    raise
                return  # someone created it between our read and write: next round updates it
            self._lease_rv = m.resource_version(created)
            return
        old_spec = current.get("spec") or {}
        if old_spec.get("holderIdentity") != self.holder and m.resource_version(current) != self._lease_rv \
                and self._lease_rv:
            log.warning("identity lease %s was changed by %r: is another API server advertising %s?",
                        self.lease_name, old_spec.get("holderIdentity"), self.advertise)
        new = m.deep_copy(current)
        meta = new["metadata"]
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
        meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        transitions = int(old_spec.get("leaseTransitions") or 0)
        if old_spec.get("holderIdentity") != self.holder:
            spec = {**spec, "acquireTime": now, "leaseTransitions": transitions + (1 if old_spec.get("holderIdentity") else 0)}
        new["spec"] = {**old_spec, **spec}
        self.strategy(rt).prepare_update(new, current)
        updated = await self.storage.update(rt, new, int(m.resource_version(current)))
        self._lease_rv = m.resource_version(updated)

    def _lease_state(self, lease: Mapping[str, Any], now: float) -> float:
        """Seconds since the lease last changed, as we observed it (see the module docstring)."""
        name = m.name(lease)
        spec = dict(lease.get("spec") or {})
        seen = self._observed.get(name)
        if seen is None:
            renewed = parse_micro_time(str(spec.get("renewTime") or ""))
            age = 0.0
            if renewed is not None:
                age = max(0.0, datetime.now(timezone.utc).timestamp() - renewed)
            # First sight: believe the writer's clock only to date the lease back, never forward.
            self._observed[name] = (spec, now - age)
        elif seen[0] != spec:
            self._observed[name] = (spec, now)
        return now - self._observed[name][1]

    def _duration(self, lease: Mapping[str, Any]) -> float:
        try:
            return float((lease.get("spec") or {}).get("leaseDurationSeconds") or self.lease_duration)
        except (TypeError, ValueError):
            return self.lease_duration

    def _identity_leases(self) -> list[Obj]:
        return [lease for lease in self._cached_all("leases", LEASE_NAMESPACE)
                if m.labels(lease).get(IDENTITY_LABEL) == IDENTITY_VALUE]

    def live_addresses(self) -> list[Address]:
        now = asyncio.get_running_loop().time()
        leases = self._identity_leases()
        names = {m.name(lease) for lease in leases}
        for gone in set(self._observed) - names:
            del self._observed[gone]
        live: set[Address] = set()
        for lease in leases:
            address = lease_address(lease)
            if address is not None and self._lease_state(lease, now) < self._duration(lease):
                live.add(address)
        if self.address is not None:
            live.add(self.address)  # we are alive, whatever the cache has shown so far
        return sorted(live)

    async def _collect_leases(self) -> None:
        """Delete identity leases dead for another lease duration (upstream's apiserver lease GC)."""
        now = asyncio.get_running_loop().time()
        rt = self.rt["leases"]
        for lease in self._identity_leases():
            if m.name(lease) == self.lease_name:
                continue
            if self._lease_state(lease, now) < 2 * self._duration(lease):
                continue
            try:
                await self.storage.delete(rt, LEASE_NAMESPACE, m.name(lease), int(m.resource_version(lease)))
                log.info("deleted expired API server identity lease %s (%s)", m.name(lease),
                         m.annotations(lease).get(ADDRESS_ANNOTATION))
            except StatusError as err:
                if err.code not in (404, 409):
                    raise

    async def _leave(self) -> None:
        rt = self.rt["leases"]
        try:
            current = await self.storage.get(rt, LEASE_NAMESPACE, self.lease_name)
            if (current.get("spec") or {}).get("holderIdentity") == self.holder:
                await self.storage.delete(rt, LEASE_NAMESPACE, self.lease_name, int(m.resource_version(current)))
        except StatusError as err:
            if err.code not in (404, 409):
                raise
        live = [a for a in self.live_addresses() if a != self.address]
        await self._reconcile_endpoints(live, fresh=True)
        await self._reconcile_slices(live, fresh=True)

    # ------------------------------------------------------------------ the Service

    async def _reconcile_service(self, live_ports: list[int]) -> None:
        rt = self.rt["services"]
        own_port = self.address[1] if self.address else (live_ports[0] if live_ports else SERVICE_PORT)
        ip = self.allocator.first_ip
        current = self._cached("services", NAMESPACE, NAME)
        if current is None:
            try:
                current = await self.storage.get(rt, NAMESPACE, NAME)
            except StatusError as err:
                if err.code != 404:
                    raise
        # The claim is idempotent; repeating it also repairs a claim that a racing delete of the old
        # Service released after we had re-created the Service.
        claimed = await self._claim_ip(ip)
        if current is None:
            if not claimed:
                return
            body = desired_service(ip, own_port)
            self.strategy(rt).prepare_create(body)
            try:
                await self.storage.create(rt, body)
                log.info("created the kubernetes Service (%s:%d)", ip, SERVICE_PORT)
            except StatusError as err:
                if err.code != 409:
                    raise
            return
        want = repaired_service(current, live_ports, own_port)
        if want is None:
            return
        self.strategy(rt).prepare_update(want, current)
        try:
            await self.storage.update(rt, want, int(m.resource_version(current)))
            log.info("repaired the kubernetes Service")
        except StatusError as err:
            if err.code not in (404, 409):
                raise
            self.kick()

    async def _claim_ip(self, ip: str) -> bool:
        try:
            await self.allocator.allocate_ip(self.owner, ip)
        except StatusError as err:
            if err.code != 422:
                raise
            if not self._ip_taken:  # said once, not every round
                log.error("the kubernetes Service's ClusterIP %s is held by another Service (%s); it cannot be "
                          "created until that Service is deleted", ip, err.message)
            self._ip_taken = True
            return False
        self._ip_taken = False
        return True

    # ------------------------------------------------------------------ Endpoints and EndpointSlices

    async def _current(self, plural: str, name: str, fresh: bool) -> Obj | None:
        if not fresh:
            cached = self._cached(plural, NAMESPACE, name)
            if cached is not None:
                return cached
        try:
            return await self.storage.get(self.rt[plural], NAMESPACE, name)
        except StatusError as err:
            if err.code != 404:
                raise
            return None

    async def _reconcile_endpoints(self, live: list[Address], *, fresh: bool = False) -> None:
        rt = self.rt["endpoints"]
        subsets = desired_subsets(live)
        current = await self._current("endpoints", NAME, fresh)
        if current is None:
            body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {SKIP_MIRROR_LABEL: "true"}},
                         "subsets": subsets}
            self.strategy(rt).prepare_create(body)
            try:
                await self.storage.create(rt, body)
            except StatusError as err:
                if err.code != 409:
                    raise
                self.kick()
            return
        labels = m.labels(current)
        if (current.get("subsets") or []) == subsets and labels.get(SKIP_MIRROR_LABEL) == "true":
            return
        new = m.deep_copy(current)
        new["subsets"] = subsets
        new["metadata"]["labels"] = {**labels, SKIP_MIRROR_LABEL: "true"}
        self.strategy(rt).prepare_update(new, current)
        try:
            await self.storage.update(rt, new, int(m.resource_version(current)))
        except StatusError as err:
            if err.code not in (404, 409):
                raise
            self.kick()  # our view was stale: read again soon

    async def _reconcile_slices(self, live: list[Address], *, fresh: bool = False) -> None:
        rt = self.rt["endpointslices"]
        want = desired_slices(live)
        ours = {m.name(sl): sl for sl in self._cached_all("endpointslices", NAMESPACE)
                if m.labels(sl).get(MANAGED_BY_LABEL) == MANAGED_BY and m.labels(sl).get(SERVICE_NAME_LABEL) == NAME}
        for name, content in want.items():
            current = await self._current("endpointslices", name, fresh)
            try:
                if current is None:
                    body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                            "metadata": {"name": name, "namespace": NAMESPACE, "labels": dict(SLICE_LABELS)},
                            **m.deep_copy(content)}
                    self.strategy(rt).prepare_create(body)
                    await self.storage.create(rt, body)
                    continue
                labels = m.labels(current)
                if all(current.get(k) == v for k, v in content.items()) and \
                        all(labels.get(k) == v for k, v in SLICE_LABELS.items()):
                    continue
                new = {**m.deep_copy(current), **m.deep_copy(content)}
                new["metadata"]["labels"] = {**labels, **SLICE_LABELS}
                self.strategy(rt).prepare_update(new, current)
                await self.storage.update(rt, new, int(m.resource_version(current)))
            except StatusError as err:
                if err.code not in (404, 409):
                    raise
                self.kick()
        for name, sl in ours.items():
            if name in want:
                continue
            try:
                await self.storage.delete(rt, NAMESPACE, name, int(m.resource_version(sl)))
            except StatusError as err:
                if err.code not in (404, 409):
                    raise
                self.kick()
