"""Endpoints and EndpointSlice controllers: which pod addresses serve each Service, for proxies and DNS.

For a Service with a selector, the backends are the pods of its namespace that match it and have an
IP (pods that finished are left out; terminating pods only count for slices, flagged ``terminating``).
Each Service port is resolved per pod: a numeric ``targetPort`` is used as is, a named one is looked
up among the pod's container ports (name and protocol), and a pod without that port is not a backend
for it. A Ready pod is a ready address; a not-ready one is listed as not ready — unless
``publishNotReadyAddresses`` asks to publish every address as ready (headless services of stateful
sets use that for peer discovery).

* ``Endpoints`` (core/v1, one object named like the Service): pods grouped into subsets by their
  resolved ports, ``addresses`` / ``notReadyAddresses`` with ip, nodeName, targetRef (and hostname
  when the pod's subdomain is the Service); at most 1000 addresses, then the over-capacity annotation.
* ``EndpointSlices`` (discovery.k8s.io/v1, IPv4): up to 100 endpoints per slice, one group of slices
  per distinct port set, labelled ``kubernetes.io/service-name`` and owned by the Service; slices are
  updated in place where possible, missing ones created, surplus ones deleted.

Services without a selector are left alone (their endpoints are managed by hand).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apimachinery.selectors import LabelSelector
from apiclient.informer import INDEX_NAMESPACE, Informer
from apiclient.rest import ENDPOINTS, PODS, SERVICES, RESTClient, resource

from . import podutil as pu
from .context import BaseController, ControllerContext

log = logging.getLogger("controllers.endpoints")

Obj = dict[str, Any]
ENDPOINT_SLICES = resource("endpointslices", "discovery.k8s.io")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
MAX_ENDPOINTS_ADDRESSES = 1000
MAX_ENDPOINTS_PER_SLICE = 100
WRITE_TRACKING_TTL = 10.0


# ---------------------------------------------------------------------- pure: backends of a service

def service_selector(svc: Mapping[str, Any]) -> LabelSelector | None:
    sel = (svc.get("spec") or {}).get("selector")
    if not isinstance(sel, Mapping) or not sel:
        return None
    return LabelSelector.from_set({str(k): str(v) for k, v in sel.items()})


def resolve_port(pod: Mapping[str, Any], svc_port: Mapping[str, Any]) -> int | None:
    """``FindPort``: the container port a service port reaches on ``pod``, or None."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    protocol = svc_port.get("protocol") or "TCP"
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str):
        if target.isdigit():
            return int(target)
        for c in (pod.get("spec") or {}).get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                    return int(p.get("containerPort") or 0) or None
    return None


def pod_ip(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("podIP") or "")


def is_backend(pod: Mapping[str, Any], *, include_terminating: bool) -> bool:
    if not pod_ip(pod) or pu.phase(pod) in ("Succeeded", "Failed"):
        return False
    return include_terminating or not pu.is_terminating(pod)


def endpoint_ports(svc: Mapping[str, Any], pod: Mapping[str, Any]) -> tuple[tuple[str, int, str, str], ...]:
    """(name, port, protocol, appProtocol) for every service port the pod serves."""
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        port = resolve_port(pod, sp)
        if port is None:
            continue
        out.append((str(sp.get("name") or ""), port, str(sp.get("protocol") or "TCP"), str(sp.get("appProtocol") or "")))
    return tuple(sorted(out))


def _port_dict(p: tuple[str, int, str, str], *, slice_: bool) -> Obj:
    out: Obj = {"port": p[1], "protocol": p[2]}
    if p[0] or slice_:
        out["name"] = p[0]
    if p[3]:
        out["appProtocol"] = p[3]
    return out


def target_ref(pod: Mapping[str, Any]) -> Obj:
    return {"kind": "Pod", "namespace": m.namespace(pod), "name": m.name(pod), "uid": m.uid(pod)}


def _hostname(pod: Mapping[str, Any], svc: Mapping[str, Any]) -> str:
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == m.name(svc):
        return str(spec["hostname"])
    return ""


Ports = tuple[tuple[str, int, str, str], ...]


def backends(svc: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], *, include_terminating: bool
             ) -> Iterator[tuple[Mapping[str, Any], Ports, Obj]]:
    """(pod, its resolved ports, the identity fields every kind of endpoint carries), in a stable order."""
    has_ports = bool((svc.get("spec") or {}).get("ports"))
    for pod in sorted(pods, key=lambda p: (pod_ip(p), m.name(p))):
        if not is_backend(pod, include_terminating=include_terminating):
            continue
        ports = endpoint_ports(svc, pod)
        if has_ports and not ports:
            continue
        ident: Obj = {"targetRef": target_ref(pod)}
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            ident["nodeName"] = node
        host = _hostname(pod, svc)
        if host:
            ident["hostname"] = host
        yield pod, ports, ident


def build_endpoints(svc: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> Obj:
    """The Endpoints object for ``svc`` (``subsets`` grouped by port set, sorted for stable comparison)."""
    publish_all = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    groups: dict[Ports, tuple[list[Obj], list[Obj]]] = {}
    total = 0
    truncated = False
    for pod, ports, ident in backends(svc, pods, include_terminating=False):
        if total >= MAX_ENDPOINTS_ADDRESSES:
            truncated = True
            break
        addr: Obj = {"ip": pod_ip(pod), **ident}
        ready, not_ready = groups.setdefault(ports, ([], []))
        (ready if publish_all or pu.is_pod_ready(pod) else not_ready).append(addr)
        total += 1
    subsets = []
    for ports, (ready, not_ready) in sorted(groups.items()):
        subset: Obj = {}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        if ports:
            subset["ports"] = [_port_dict(p, slice_=False) for p in ports]
        subsets.append(subset)
    labels = dict(m.labels(svc))
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    meta: Obj = {"name": m.name(svc), "namespace": m.namespace(svc)}
    if labels:
        meta["labels"] = labels
    if truncated:
        meta["annotations"] = {OVER_CAPACITY: "truncated"}
    out: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
    if subsets:
        out["subsets"] = subsets
    return out


def build_slice_endpoints(svc: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]
                          ) -> dict[Ports, list[Obj]]:
    """EndpointSlice endpoints grouped by port set (terminating pods included, flagged)."""
    publish_all = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    groups: dict[Ports, list[Obj]] = {}
    for pod, ports, ident in backends(svc, pods, include_terminating=True):
        terminating = pu.is_terminating(pod)
        serving = pu.is_pod_ready(pod)
        ready = (serving and not terminating) or publish_all
        ep: Obj = {"addresses": [pod_ip(pod)],
                   "conditions": {"ready": ready, "serving": serving or publish_all, "terminating": terminating},
                   **ident}
        groups.setdefault(ports, []).append(ep)
    return groups


def _owned_by_selector(svc: Mapping[str, Any], pods: list[Obj]) -> list[Obj]:
    sel = service_selector(svc)
    if sel is None:
        return []
    return [p for p in pods if sel.matches(m.labels(p))]


# ---------------------------------------------------------------------- controllers

class _ServiceBackends(BaseController):
    """Services and pods → the keys of the services whose backends may have changed."""

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.services = ctx.informer(SERVICES)
        self.pods = ctx.informer(PODS)
        self.on(self.services, add=self._svc, update=lambda _o, n: self._svc(n), delete=self._svc)
        self.on(self.pods, add=self._pod, update=self._pod_updated, delete=self._pod)

    def _svc(self, svc: Obj) -> None:
        self.queue.add(m.object_key(svc))

    def _services_of(self, pod: Mapping[str, Any]) -> list[Obj]:
        labels = m.labels(pod)
        out = []
        for svc in self.services.by_index(INDEX_NAMESPACE, m.namespace(pod)):
            sel = service_selector(svc)
            if sel is not None and sel.matches(labels):
                out.append(svc)
        return out

    def _pod(self, pod: Obj) -> None:
        for svc in self._services_of(pod):
            self.queue.add(m.object_key(svc))

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        if m.resource_version(old) == m.resource_version(cur):
            return
        keys = {m.object_key(s) for s in self._services_of(cur)}
        if m.labels(old) != m.labels(cur):
            keys |= {m.object_key(s) for s in self._services_of(old)}
        for key in keys:
            self.queue.add(key)

    def backends(self, svc: Mapping[str, Any]) -> list[Obj]:
        return _owned_by_selector(svc, self.pods.by_index(INDEX_NAMESPACE, m.namespace(svc)))


class EndpointsController(_ServiceBackends):
    name: ClassVar[str] = "endpoints"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.endpoints = ctx.informer(ENDPOINTS)
        self.on(self.endpoints, update=lambda _o, n: self._svc(n), delete=self._svc)

    async def sync(self, key: str) -> None:
        ns, name = m.split_object_key(key)
        svc = self.services.get(key)
        current = self.endpoints.get(key)
        if svc is None:
            if current is not None:
                try:
                    await self.client.delete(ENDPOINTS, name, namespace=ns, preconditions={"uid": m.uid(current)})
                except StatusError as err:
                    if err.code not in (404, 409):
                        raise
            return
        if service_selector(svc) is None:
            return
        want = build_endpoints(svc, self.backends(svc))
        if current is None:
            try:
                await self.client.create(ENDPOINTS, want, namespace=ns)
            except StatusError as err:
                if err.code == 409:  # exists already (our cache is behind): update it on the next event
                    self.queue.add_after(key, 0.2)
                    return
                if err.code == 403 and "being terminated" in err.message:
                    return
                raise
            return
        meta = m.get_metadata(current)
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != OVER_CAPACITY}
        annotations.update((want["metadata"].get("annotations") or {}))
        if (current.get("subsets") or []) == (want.get("subsets") or []) and \
                (meta.get("labels") or {}) == (want["metadata"].get("labels") or {}) and \
                annotations == (meta.get("annotations") or {}):
            return
        body = dict(current)
        body["metadata"] = {**meta, "labels": want["metadata"].get("labels") or {}, "annotations": annotations}
        body.pop("subsets", None)
        if want.get("subsets"):
            body["subsets"] = want["subsets"]
        await self.client.update(ENDPOINTS, body, namespace=ns)


class SliceWrites:
    """The EndpointSlices a controller wrote that its informer has not shown yet, per Service key.

    Acting on a cache without our own last writes would create duplicates, so a sync waits while
    ``pending(key)``. An entry the cache cannot show any more (written, then changed by someone and
    relisted) is given up after WRITE_TRACKING_TTL. Shared by the slice and the mirroring controllers.
    """

    def __init__(self, client: RESTClient, slices: Informer) -> None:
        self.client = client
        self.slices = slices
        self._written: dict[str, dict[str, tuple[str, float]]] = {}  # key -> name -> (rv, "" = deleted; when)

    def pending(self, key: str) -> bool:
        pending = self._written.get(key)
        if not pending:
            return False
        ns = m.split_object_key(key)[0]
        now = time.monotonic()
        for name, (rv, when) in list(pending.items()):
            cached = self.slices.get_by_name(ns, name)
            seen = (cached is None) if rv == "" else (cached is not None and
                                                      int(m.resource_version(cached) or 0) >= int(rv or 0))
            if seen or now - when > WRITE_TRACKING_TTL:
                del pending[name]
        if not pending:
            self._written.pop(key, None)
            return False
        return True

    def wrote(self, key: str, obj: Mapping[str, Any]) -> None:
        self._written.setdefault(key, {})[m.name(obj)] = (m.resource_version(obj), time.monotonic())

    async def delete(self, key: str, sl: Obj) -> None:
        """Delete ``sl`` if it is still the same object; gone or replaced already is fine."""
        try:
            await self.client.delete(ENDPOINT_SLICES, m.name(sl), namespace=m.namespace(sl),
                                     preconditions={"uid": m.uid(sl)})
        except StatusError as err:
            if err.code not in (404, 409):
                raise
            return
        self._written.setdefault(key, {})[m.name(sl)] = ("", time.monotonic())


class EndpointSliceController(_ServiceBackends):
    name: ClassVar[str] = "endpointslice"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.slices = ctx.informer(ENDPOINT_SLICES, label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
        self.on(self.slices, add=self._slice, update=lambda _o, n: self._slice(n), delete=self._slice)
        self.writes = SliceWrites(self.client, self.slices)

    def _slice(self, sl: Obj) -> None:
        svc = m.labels(sl).get(SERVICE_NAME_LABEL)
        if svc:
            self.queue.add(f"{m.namespace(sl)}/{svc}")

    def _existing(self, ns: str, name: str) -> list[Obj]:
        return [sl for sl in self.slices.by_index(INDEX_NAMESPACE, ns)
                if m.labels(sl).get(SERVICE_NAME_LABEL) == name and not pu.is_terminating(sl)]

    async def sync(self, key: str) -> None:
        ns, name = m.split_object_key(key)
        if self.writes.pending(key):
            self.queue.add_after(key, 0.05)  # our last writes have not reached the cache yet
            return
        svc = self.services.get(key)
        existing = self._existing(ns, name)
        if svc is None or service_selector(svc) is None:
            # Gone or unmanaged: our slices go (the garbage collector would also remove them as dependents).
            for sl in existing:
                await self.writes.delete(key, sl)
            return
        groups = build_slice_endpoints(svc, self.backends(svc))
        if not groups:
            groups = {(): []}  # one empty slice says "no endpoints" (no slice at all would say "not yet known")
        labels = {**m.labels(svc), SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY}
        if (svc.get("spec") or {}).get("clusterIP") == "None":
            labels[HEADLESS_LABEL] = ""
        desired: list[Obj] = []
        for ports, endpoints in sorted(groups.items()):
            chunks = [endpoints[i:i + MAX_ENDPOINTS_PER_SLICE]
                      for i in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE)] or [[]]
            for chunk in chunks:
                desired.append({"addressType": "IPv4", "endpoints": chunk,
                                "ports": [_port_dict(p, slice_=True) for p in ports]})
        owner_ref = m.new_controller_ref(svc, api_version="v1", kind="Service")
        # Reuse existing slices with the same ports first, then any other, then create; delete the rest.
        unused = sorted(existing, key=lambda sl: m.name(sl))
        plan: list[tuple[Obj | None, Obj]] = []
        for want in desired:
            match = next((sl for sl in unused if (sl.get("ports") or []) == want["ports"]), None)
            if match is not None:
                unused.remove(match)
            plan.append((match, want))
        for i, (match, want) in enumerate(plan):
            if match is None and unused:
                plan[i] = (unused.pop(0), want)
        for current, want in plan:
            if current is None:
                body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"generateName": f"{name}-", "namespace": ns, "labels": labels,
                                     "ownerReferences": [owner_ref]}, **want}
                try:
                    self.writes.wrote(key, await self.client.create(ENDPOINT_SLICES, body, namespace=ns))
                except StatusError as err:
                    if err.code == 403 and "being terminated" in err.message:
                        return
                    raise
                continue
            if (current.get("endpoints") or []) == want["endpoints"] and (current.get("ports") or []) == want["ports"] \
                    and m.labels(current) == labels and current.get("addressType") == "IPv4":
                continue
            body = {**current, **want}
            body["metadata"] = {**m.get_metadata(current), "labels": labels}
            self.writes.wrote(key, await self.client.update(ENDPOINT_SLICES, body, namespace=ns))
        for sl in unused:
            await self.writes.delete(key, sl)
