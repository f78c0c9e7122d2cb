"""EndpointSliceMirroring controller: EndpointSlices for Services without a selector, from their Endpoints.

The proxy and DNS read EndpointSlices only; a selector-less Service is backed by a hand-made
``Endpoints`` object (an address outside the cluster, a fixed pod IP). As upstream's
``endpointslicemirroring`` controller, for every Endpoints whose Service exists, has no selector, and
which is not labelled ``endpointslice.kubernetes.io/skip-mirror: "true"``:

* each subset becomes slices per address family (``IPv4`` / ``IPv6``; invalid addresses are skipped),
  with the subset's ports, at most 1000 addresses per subset and 100 endpoints per slice;
* ``addresses`` are ``conditions.ready: true``, ``notReadyAddresses`` ``ready: false``; ``targetRef``,
  ``nodeName`` and ``hostname`` are carried over;
* slices are labelled ``endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io``
  and ``kubernetes.io/service-name: <name>`` (plus the Endpoints' own labels), are named
  ``<endpoints>-<random>`` and owned (controller reference) by the Endpoints object;
* when the Endpoints goes, is labelled skip-mirror, or its Service goes or gains a selector, the
  mirrored slices are deleted.

The EndpointSlice controller (``controllers.endpoints``) only looks at slices with its own managed-by
value, and this one only at slices with its own, so neither touches the other's.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.informer import INDEX_NAMESPACE
from apiclient.rest import ENDPOINTS, SERVICES

from . import podutil as pu
from .context import BaseController, ControllerContext
from .endpoints import ENDPOINT_SLICES, MANAGED_BY_LABEL, MAX_ENDPOINTS_PER_SLICE, SERVICE_NAME_LABEL, \
    SliceWrites, service_selector

log = logging.getLogger("controllers.endpointslicemirroring")

Obj = dict[str, Any]
MIRROR_MANAGED_BY = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LAST_CHANGE_TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"
MAX_ADDRESSES_PER_SUBSET = 1000


def address_type(ip: str) -> str | None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return "IPv6" if addr.version == 6 else "IPv4"


def _slice_port(p: Mapping[str, Any]) -> Obj:
    out: Obj = {"name": str(p.get("name") or ""), "port": int(p.get("port") or 0),
                "protocol": str(p.get("protocol") or "TCP")}
    if p.get("appProtocol"):
        out["appProtocol"] = p["appProtocol"]
    return out


def _endpoint(addr: Mapping[str, Any], ready: bool) -> Obj:
    ep: Obj = {"addresses": [str(addr.get("ip"))], "conditions": {"ready": ready}}
    for field in ("hostname", "nodeName", "targetRef"):
        if addr.get(field):
            ep[field] = addr[field]
    return ep


def desired_slices(endpoints: Mapping[str, Any]) -> list[Obj]:
    """The (addressType, ports, endpoints) of every slice mirroring ``endpoints``, in a stable order."""
    groups: dict[tuple[str, str], tuple[list[Obj], list[Obj]]] = {}
    for subset in endpoints.get("subsets") or []:
        ports = [_slice_port(p) for p in subset.get("ports") or []]
        key_ports = repr(sorted(sorted(p.items()) for p in ports))
        count = 0
        for field, ready in (("addresses", True), ("notReadyAddresses", False)):
            for addr in subset.get(field) or []:
                if count >= MAX_ADDRESSES_PER_SUBSET:
                    break
                family = address_type(str(addr.get("ip") or ""))
                if family is None:
                    continue
                count += 1
                _, eps = groups.setdefault((family, key_ports), (ports, []))
                ep = _endpoint(addr, ready)
                if ep not in eps:
                    eps.append(ep)
    out: list[Obj] = []
    for (family, _), (ports, eps) in sorted(groups.items()):
        for i in range(0, len(eps), MAX_ENDPOINTS_PER_SLICE):
            out.append({"addressType": family, "ports": ports, "endpoints": eps[i:i + MAX_ENDPOINTS_PER_SLICE]})
    return out


def should_mirror(endpoints: Mapping[str, Any] | None, svc: Mapping[str, Any] | None) -> bool:
    if endpoints is None or svc is None or pu.is_terminating(endpoints):
        return False
    if m.labels(endpoints).get(SKIP_MIRROR_LABEL) == "true":
        return False
    return service_selector(svc) is None


class EndpointSliceMirroringController(BaseController):
    name: ClassVar[str] = "endpointslicemirroring"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.services = ctx.informer(SERVICES)
        self.endpoints = ctx.informer(ENDPOINTS)
        self.slices = ctx.informer(ENDPOINT_SLICES, label_selector=f"{MANAGED_BY_LABEL}={MIRROR_MANAGED_BY}")
        enqueue = self._enqueue
        self.on(self.services, add=enqueue, update=lambda _o, n: enqueue(n), delete=enqueue)
        self.on(self.endpoints, add=enqueue, update=lambda _o, n: enqueue(n), delete=enqueue)
        self.on(self.slices, add=self._slice, update=lambda _o, n: self._slice(n), delete=self._slice)
        self.writes = SliceWrites(self.client, self.slices)

    def _enqueue(self, obj: Obj) -> None:
        self.queue.add(m.object_key(obj))

    def _slice(self, sl: Obj) -> None:
        svc = m.labels(sl).get(SERVICE_NAME_LABEL)
        if svc:
            self.queue.add(f"{m.namespace(sl)}/{svc}")

    def _existing(self, ns: str, name: str) -> list[Obj]:
        return sorted((sl for sl in self.slices.by_index(INDEX_NAMESPACE, ns)
                       if m.labels(sl).get(SERVICE_NAME_LABEL) == name and not pu.is_terminating(sl)),
                      key=m.name)

    async def sync(self, key: str) -> None:
        if self.writes.pending(key):
            self.queue.add_after(key, 0.05)
            return
        ns, name = m.split_object_key(key)
        endpoints = self.endpoints.get(key)
        existing = self._existing(ns, name)
        if endpoints is None or not should_mirror(endpoints, self.services.get(key)):
            for sl in existing:
                await self.writes.delete(key, sl)
            return
        assert endpoints is not None
        labels = {k: v for k, v in m.labels(endpoints).items() if k != SKIP_MIRROR_LABEL}
        labels.update({SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MIRROR_MANAGED_BY})
        annotations = {k: v for k, v in (m.get_metadata(endpoints).get("annotations") or {}).items()
                       if k != LAST_CHANGE_TRIGGER}
        owner = m.new_controller_ref(endpoints, api_version="v1", kind="Endpoints")
        unused = list(existing)
        plan: list[tuple[Obj | None, Obj]] = []
        for want in desired_slices(endpoints):
            match = next((sl for sl in unused if sl.get("addressType") == want["addressType"]
                          and (sl.get("ports") or []) == want["ports"]), None)
            if match is not None:
                unused.remove(match)
            plan.append((match, want))
        for current, want in plan:
            if current is None:
                body: Obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                             "metadata": {"generateName": f"{name[:62]}-", "namespace": ns, "labels": labels,
                                          "annotations": annotations, "ownerReferences": [owner]}, **want}
                try:
                    made = await self.client.create(ENDPOINT_SLICES, body, namespace=ns)
                except StatusError as err:
                    if err.code == 403 and "being terminated" in err.message:
                        return
                    raise
                self.writes.wrote(key, made)
                continue
            meta = m.get_metadata(current)
            if (current.get("endpoints") or []) == want["endpoints"] and m.labels(current) == labels \
                    and (meta.get("annotations") or {}) == annotations \
                    and (meta.get("ownerReferences") or []) == [owner]:
                continue
            body = {**current, **want}
            body["metadata"] = {**meta, "labels": labels, "annotations": annotations, "ownerReferences": [owner]}
            self.writes.wrote(key, await self.client.update(ENDPOINT_SLICES, body, namespace=ns))
        for sl in unused:
            await self.writes.delete(key, sl)
