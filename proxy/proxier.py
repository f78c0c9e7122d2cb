"""The service proxy of one node: keeps one listener per Service address and port, and balancers fed by slices.

Two kinds of change, handled differently:

* Endpoints (EndpointSlice events) only touch balancers: the affected Service's balancers get the
  new endpoint list synchronously, inside the informer's event handler. No listener is opened
  or closed, and open connections are left alone.
* Services (and this node's address) decide the listener set. A change wakes the sync task,
  which computes the desired listeners (``model.desired_listeners``), opens the new ones,
  re-targets those whose Service port changed and closes those no longer wanted (closing stops
  accepting; established connections continue). A listener that cannot be opened (address in
  use, address not local) is retried every ``retry_period`` seconds and counted in
  ``pilot_proxy_listen_errors_total``.
* ClusterIPs (and external IPs) are the same on every node, and with the process runtime several
  nodes' proxies may run on one host: their listeners on those addresses are opened with
  SO_REUSEPORT, so all proxies serve them (the kernel spreads new connections) and any one of them
  may die without the address going dark. Two *clusters* on one host therefore need different
  service ranges. Node addresses (NodePort, LoadBalancer) are never shared.
* Pods with network namespaces of their own (Docker containers) do not see the node's loopback:
  the loopback Service addresses are also served inside each pod namespace handed to
  ``set_pod_namespaces`` (see ``netns``), by listeners that share the node's balancers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

from .balancer import Addr, Balancers
from .catalog import ServiceCatalog
from .metrics import ProxyMetrics
from .model import ListenKey, ServicePort, ServicePortKey, desired_listeners
from .tcp import TCPListener
from .udp import UDPListener

log = logging.getLogger(__name__)


class Listener(Protocol):
    key: ListenKey
    target: ServicePortKey

    async def start(self, *, reuse_port: bool = False, sock: socket.socket | None = None) -> None: ...

    def close(self) -> None: ...

    def abort_all(self) -> None: ...

    @property
    def active(self) -> int: ...


class ServiceProxy:
    def __init__(self, catalog: ServiceCatalog, *, node_ips: list[str], metrics: ProxyMetrics,
                 connect_timeout: float = 3.0, udp_idle_timeout: float = 30.0, fail_timeout: float = 2.0,
                 retry_period: float = 5.0, share_cluster_ips: bool = True) -> None:
        self.catalog = catalog
        self.node_ips = node_ips
        self.metrics = metrics
        self.connect_timeout = connect_timeout
        self.udp_idle_timeout = udp_idle_timeout
        self.retry_period = retry_period
        self.share_cluster_ips = share_cluster_ips
        self.balancers = Balancers(catalog.balancer_lookup, fail_timeout=fail_timeout)
        self.balancers.on_endpoints_gone.append(self._endpoints_gone)
        self.listeners: dict[ListenKey, Listener] = {}
        self.failed: dict[ListenKey, str] = {}  # listeners we could not open, with the error
        self.conflicts: list[tuple[ListenKey, ServicePort]] = []
        # Pod network namespaces (name -> namespace file) and their listeners, opened by ``open_in_namespace``.
        self.pod_namespaces: dict[str, str] = {}
        self.pod_listeners: dict[str, dict[ListenKey, Listener]] = {}
        self.pod_failed: dict[tuple[str, ListenKey], str] = {}
        self.open_in_namespace: Callable[[str, ListenKey], Awaitable[socket.socket]] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()  # set after the first sync with synced informers
        catalog.on_service.append(lambda _key: self._wake.set())
        catalog.on_endpoints.append(self._endpoints_changed)
        metrics.endpoints.set_function(self.balancers.endpoint_count)
        for proto in ("TCP", "UDP"):
            metrics.listeners.labels(proto.lower()).set_function(
                lambda p=proto: sum(1 for k in self.listeners if k.protocol == p))

    # ------------------------------------------------------------------ events

    def _endpoints_changed(self, service_key: str) -> None:
        self.balancers.refresh(service_key)
        self.metrics.endpoint_updates.inc()

    def _endpoints_gone(self, key: ServicePortKey, gone: set[Addr]) -> None:
        for lst in self._all_listeners():
            if lst.target == key and isinstance(lst, UDPListener):
                lst.endpoints_gone(gone)

    def _all_listeners(self) -> list[Listener]:
        return [*self.listeners.values(), *(lst for per_ns in self.pod_listeners.values() for lst in per_ns.values())]

    def set_pod_namespaces(self, namespaces: dict[str, str]) -> None:
        """The pod network namespaces to serve loopback Service addresses in (name -> namespace file)."""
        if namespaces != self.pod_namespaces:
            self.pod_namespaces = dict(namespaces)
            self._wake.set()

    # ------------------------------------------------------------------ sync loop

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="proxy-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for lst in self._all_listeners():
            lst.close()
            lst.abort_all()
        self.listeners.clear()
        self.pod_listeners.clear()

    async def run(self) -> None:
        await self.catalog.wait_for_sync()
        while True:
            self._wake.clear()
            try:
                await self.sync()
            except Exception:  # noqa: BLE001 - one bad sync must not stop the proxy
                log.exception("sync failed")
            self.synced.set()
            try:
                await asyncio.wait_for(self._wake.wait(), self.retry_period if self.failed or self.pod_failed else None)
            except asyncio.TimeoutError:
                pass

    async def sync(self) -> None:
        self.metrics.syncs.inc()
        desired, conflicts = desired_listeners(self.catalog.all_services(), self.node_ips)
        for lk, sp in conflicts:
            if (lk, sp) not in self.conflicts:
                log.warning("address already served by another service", extra={
                    "event": "listen_conflict", "listen": str(lk), "service": str(sp.key),
                    "owner": str(desired[lk].key)})
        self.conflicts = conflicts
        for lk in [k for k in self.listeners if k not in desired]:
            lst = self.listeners.pop(lk)
            lst.close()
            log.info("stopped listening", extra={"event": "unlisten", "listen": str(lk), "service": str(lst.target)})
        self.failed = {k: v for k, v in self.failed.items() if k in desired}
        for lk, sp in desired.items():
            lst = self.listeners.get(lk)
            if lst is not None:
                if lst.target != sp.key:
                    lst.target = sp.key  # the address moved to another Service port
                continue
            lst = self._new_listener(lk, sp.key)
            try:
                # Cluster addresses are the same on every node: proxies of several nodes on one host
                # share them (SO_REUSEPORT, the kernel spreads connections); node addresses are ours alone.
                await lst.start(reuse_port=self.share_cluster_ips and lk.ip not in self.node_ips)
            except OSError as exc:
                self.metrics.listen_errors.inc()
                if self.failed.get(lk) != str(exc):
                    log.warning("cannot listen", extra={"event": "listen_failed", "listen": str(lk),
                                                        "service": str(sp.key), "error": str(exc)})
                self.failed[lk] = str(exc)
                continue
            self.failed.pop(lk, None)
            self.listeners[lk] = lst
            log.info("listening", extra={"event": "listen", "listen": str(lk), "service": str(sp.key)})
        await self._sync_pod_namespaces(desired)
        in_use = {lst.target for lst in self._all_listeners()}
        self.balancers.retain(in_use)
        for key in in_use:
            self.balancers.get(key)
        # Affinity settings live on the Service: re-read them for every port in use.
        for service_key in {k.service_key for k in in_use}:
            self.balancers.refresh(service_key)

    async def _sync_pod_namespaces(self, desired: dict[ListenKey, ServicePort]) -> None:
        """Inside every pod namespace, the listeners of the loopback Service addresses."""
        wanted = {lk: sp for lk, sp in desired.items() if _is_loopback(lk.ip)}
        for ns in [ns for ns in self.pod_listeners if ns not in self.pod_namespaces]:
            for lst in self.pod_listeners.pop(ns).values():
                lst.close()  # the pod is gone: its connections went with its namespace
                lst.abort_all()
        self.pod_failed = {k: v for k, v in self.pod_failed.items() if k[0] in self.pod_namespaces and k[1] in wanted}
        if self.open_in_namespace is None:
            return
        for ns, path in self.pod_namespaces.items():
            current = self.pod_listeners.setdefault(ns, {})
            for lk in [k for k in current if k not in wanted]:
                current.pop(lk).close()
            for lk, sp in wanted.items():
                lst = current.get(lk)
                if lst is not None:
                    lst.target = sp.key
                    continue
                lst = self._new_listener(lk, sp.key)
                try:
                    await lst.start(sock=await self.open_in_namespace(path, lk))
                except OSError as exc:
                    self.metrics.listen_errors.inc()
                    if self.pod_failed.get((ns, lk)) != str(exc):
                        log.warning("cannot listen in a pod's namespace", extra={
                            "event": "listen_failed", "listen": str(lk), "namespace": ns, "error": str(exc)})
                    self.pod_failed[(ns, lk)] = str(exc)
                    continue
                self.pod_failed.pop((ns, lk), None)
                current[lk] = lst

    def _new_listener(self, lk: ListenKey, target: ServicePortKey) -> Listener:
        if lk.protocol == "UDP":
            return UDPListener(lk, target, balancers=self.balancers, metrics=self.metrics,
                               idle_timeout=self.udp_idle_timeout)
        return TCPListener(lk, target, balancers=self.balancers, metrics=self.metrics,
                           connect_timeout=self.connect_timeout)


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False
