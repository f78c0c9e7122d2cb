"""The built-in LoadBalancer allocator (what k3s's ServiceLB or MetalLB's layer-2 mode do on bare metal).

A Service of type LoadBalancer without ``spec.loadBalancerClass`` is published on the node
address of the proxy that holds the Lease ``kube-system/pilot-lb-allocator``: that proxy writes
``status.loadBalancer.ingress = [{ip: <its node IP>, ports: [...]}]`` through the ``/status``
subresource, and every proxy listens on ``<its node IP>:<port>`` for each published Service
(``model.listen_keys``). Like MetalLB's layer-2 mode, one node announces the address; if that
proxy goes away, the next leader rewrites every status with its own address.

Two LoadBalancer Services asking for the same port and protocol cannot share a node address: the
older one (creationTimestamp, then name) gets it, the newer stays pending (empty status, a
Warning event) until the port frees up, as ServiceLB leaves it. A Service that stops being a
LoadBalancer gets its status cleared.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from apiclient.controller import Controller
from apiclient.events import WARNING, EventRecorder
from apiclient.informer import Informer
from apiclient.rest import SERVICES, RESTClient
from apiclient.workqueue import WorkQueue
from apimachinery import meta as m
from apimachinery.errors import StatusError

from .metrics import ProxyMetrics

log = logging.getLogger(__name__)

LEASE_NAME = "pilot-lb-allocator"

Obj = Mapping[str, Any]


def _ours(svc: Obj) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def _ports(svc: Obj) -> list[tuple[int, str]]:
    out = []
    for p in (svc.get("spec") or {}).get("ports") or []:
        proto = str(p.get("protocol") or "TCP").upper()
        if isinstance(p.get("port"), int) and proto in ("TCP", "UDP"):
            out.append((p["port"], proto))
    return out


def desired_ingress(svc: Obj, services: Iterable[Obj], ip: str) -> tuple[list[dict[str, Any]] | None, str]:
    """``(ingress list, why pending)`` for ``svc``; ``None`` when the Service is not ours to touch."""
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return [], ""
    if spec.get("loadBalancerClass"):
        return None, ""
    mine = set(_ports(svc))
    order = (m.creation_timestamp(svc), m.object_key(svc))
    for other in services:
        if other is svc or m.object_key(other) == m.object_key(svc) or not _ours(other):
            continue
        if (m.creation_timestamp(other), m.object_key(other)) < order:
            clash = mine & set(_ports(other))
            if clash:
                port, proto = sorted(clash)[0]
                return [], f"port {port}/{proto} of {ip} is used by service {m.object_key(other)}"
    if not mine:
        return [], ""
    return [{"ip": ip, "ports": [{"port": port, "protocol": proto} for port, proto in _ports(svc)]}], ""


def current_ingress(svc: Obj) -> list[Any]:
    return list((((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or [])


class LoadBalancerAllocator:
    def __init__(self, client: RESTClient, services: Informer, *, ip: str, metrics: ProxyMetrics,
                 recorder: EventRecorder | None = None) -> None:
        self.client = client
        self.services = services
        self.ip = ip
        self.metrics = metrics
        self.recorder = recorder
        self._pending_reported: dict[str, str] = {}
        self.controller = Controller("lb-allocator", self.sync, workers=2)
        self.controller.informers.append(services)
        services.add_event_handler(on_add=self._changed, on_update=lambda old, new: self._changed(new, old),
                                   on_delete=self._changed)

    def _changed(self, svc: Obj, old: Obj | None = None) -> None:
        if _ours(svc) or (old is not None and _ours(old)):
            # A LoadBalancer came, went or changed its ports: pending ones may now fit.
            for other in self.services.list():
                if _ours(other):
                    self.controller.enqueue(other)
        if current_ingress(svc) or _ours(svc):
            self.controller.enqueue(svc)

    async def lead(self) -> None:
        """Allocate while leading (the leader elector cancels this when the lease is lost)."""
        if self.controller.queue.shutting_down:  # a previous term ended: start with a fresh queue
            self.controller.queue = WorkQueue(name="lb-allocator")
        for svc in self.services.list():
            self.controller.enqueue(svc)
        await self.controller.run()

    async def sync(self, key: str) -> None:
        svc = self.services.get(key)
        if svc is None:
            self._pending_reported.pop(key, None)
            return
        desired, pending = desired_ingress(svc, self.services.list(), self.ip)
        if desired is None:
            return
        if pending and self._pending_reported.get(key) != pending:
            self._pending_reported[key] = pending
            log.warning("load balancer pending", extra={"event": "lb_pending", "service": key, "reason": pending})
            if self.recorder is not None:
                self.recorder.event(svc, WARNING, "AllocationFailed", pending)
        elif not pending:
            self._pending_reported.pop(key, None)
        if desired == current_ingress(svc):
            return
        ns, name = m.split_object_key(key)
        patch = {"status": {"loadBalancer": {"ingress": desired or None}}}
        try:
            await self.client.patch(SERVICES, name, patch, namespace=ns, subresource="status")
        except StatusError as err:
            self.metrics.lb_status_writes.labels("error").inc()
            if err.code == 404:
                return
            raise
        self.metrics.lb_status_writes.labels("ok").inc()
        log.info("load balancer status written", extra={"event": "lb_status", "service": key,
                                                        "ingress": desired or []})
