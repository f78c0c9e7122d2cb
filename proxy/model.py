"""Pure data logic shared by the service proxy, cluster DNS and the ingress controller.

Everything here reads plain API dicts (Services, EndpointSlices) and returns small frozen values;
nothing does I/O, so the rules can be unit-tested on dicts:

* a Service port is identified by ``ServicePortKey`` (namespace, service, port *name*, protocol),
  the key kube-proxy uses too: EndpointSlices carry the target port under the Service port's
  name, never its number;
* EndpointSlices belong to a Service through the label ``kubernetes.io/service-name``; one
  Service may have several slices and an address may appear in more than one (during a
  controller's rebalancing), so endpoints are de-duplicated, keeping the "most ready" copy;
* an endpoint whose ``conditions.ready`` is absent is ready (the API says nil means true);
  when a Service has no ready endpoint at all, endpoints that are still ``serving`` while
  ``terminating`` are used instead (kube-proxy's terminating-endpoint fallback), so a rolling
  update whose new pods are not ready yet still gets answers from the old ones;
* what to listen on follows the Service type: ClusterIP → ``clusterIPs × port``; NodePort adds
  ``node IP × nodePort``; LoadBalancer adds ``node IP × port`` once the allocator published it
  (``status.loadBalancer.ingress`` non-empty), as k3s's ServiceLB does; ``spec.externalIPs``
  are listened on as given. Headless (``clusterIP: None``) and ExternalName Services get no
  listener at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from apimachinery import meta as m

Obj = Mapping[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = ("TCP", "UDP")


@dataclass(frozen=True, slots=True, order=True)
class ServicePortKey:
    namespace: str
    name: str
    port_name: str
    protocol: str = "TCP"

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        suffix = f":{self.port_name}" if self.port_name else ""
        return f"{self.namespace}/{self.name}{suffix}/{self.protocol}"


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    hostname: str = ""
    node_name: str = ""
    target: str = ""  # "namespace/pod" of the targetRef, if any

    @property
    def addr(self) -> tuple[str, int]:
        return (self.ip, self.port)


@dataclass(frozen=True, slots=True)
class ServicePort:
    key: ServicePortKey
    type: str
    port: int
    node_port: int
    cluster_ips: tuple[str, ...]
    external_ips: tuple[str, ...]
    lb_ips: tuple[str, ...]  # status.loadBalancer.ingress[].ip
    affinity_timeout: float | None  # seconds; None: no session affinity
    created: str


@dataclass(frozen=True, slots=True, order=True)
class ListenKey:
    ip: str
    port: int
    protocol: str

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}/{self.protocol}"


DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, the API default of sessionAffinityConfig.clientIP.timeoutSeconds


def service_key_of_slice(slice_: Obj) -> str | None:
    """``namespace/service`` the EndpointSlice belongs to, or None."""
    svc = m.labels(slice_).get(SERVICE_NAME_LABEL)
    return f"{m.namespace(slice_)}/{svc}" if svc else None


def is_ipv4(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False


def is_headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def cluster_ips(svc: Obj) -> tuple[str, ...]:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return tuple(ip for ip in ips if ip != "None" and is_ipv4(ip))


def lb_ingress_ips(svc: Obj) -> tuple[str, ...]:
    ingress = (((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
    return tuple(str(i["ip"]) for i in ingress if isinstance(i, dict) and i.get("ip"))


def affinity_timeout(svc: Obj) -> float | None:
    spec = svc.get("spec") or {}
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
    try:
        timeout = int(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    except (TypeError, ValueError):
        timeout = DEFAULT_AFFINITY_TIMEOUT
    return float(max(1, timeout))


def service_ports(svc: Obj) -> list[ServicePort]:
    """One ``ServicePort`` per entry of ``spec.ports`` with a TCP or UDP protocol."""
    spec = svc.get("spec") or {}
    stype = spec.get("type") or "ClusterIP"
    if stype == "ExternalName":
        return []
    ns, name = m.namespace(svc), m.name(svc)
    ips, lb = cluster_ips(svc), (lb_ingress_ips(svc) if stype == "LoadBalancer" else ())
    ext = tuple(ip for ip in spec.get("externalIPs") or [] if is_ipv4(str(ip)))
    timeout = affinity_timeout(svc)
    out = []
    for p in spec.get("ports") or []:
        proto = str(p.get("protocol") or "TCP").upper()
        try:
            port = int(p.get("port") or 0)
        except (TypeError, ValueError):
            continue
        if proto not in PROTOCOLS or not 0 < port < 65536:
            continue
        try:
            node_port = int(p.get("nodePort") or 0) if stype in ("NodePort", "LoadBalancer") else 0
        except (TypeError, ValueError):
            node_port = 0
        out.append(ServicePort(key=ServicePortKey(ns, name, str(p.get("name") or ""), proto), type=stype, port=port,
                               node_port=node_port, cluster_ips=ips, external_ips=ext, lb_ips=lb,
                               affinity_timeout=timeout, created=m.creation_timestamp(svc)))
    return out


def listen_keys(sp: ServicePort, node_ips: Iterable[str]) -> list[ListenKey]:
    """Where one Service port is served on this node."""
    nodes = [ip for ip in node_ips if ip]
    out = [ListenKey(ip, sp.port, sp.key.protocol) for ip in sp.cluster_ips]
    out += [ListenKey(ip, sp.port, sp.key.protocol) for ip in sp.external_ips]
    if sp.node_port:
        out += [ListenKey(ip, sp.node_port, sp.key.protocol) for ip in nodes]
    if sp.type == "LoadBalancer" and sp.lb_ips:
        out += [ListenKey(ip, sp.port, sp.key.protocol) for ip in nodes]
    return out


def desired_listeners(services: Iterable[Obj], node_ips: Iterable[str]) -> tuple[dict[ListenKey, ServicePort],
                                                                                 list[tuple[ListenKey, ServicePort]]]:
    """Every listener this node should have, and the ports that lost a conflict for one.

    Two Services may want the same address (two LoadBalancers on one port of the node IP, an
    external IP given twice): the oldest Service keeps it, as ServiceLB leaves the newer pending.
    """
    nodes = list(node_ips)
    ports = sorted((sp for svc in services for sp in service_ports(svc)), key=lambda sp: (sp.created, sp.key))
    out: dict[ListenKey, ServicePort] = {}
    conflicts: list[tuple[ListenKey, ServicePort]] = []
    for sp in ports:
        for lk in listen_keys(sp, nodes):
            owner = out.get(lk)
            if owner is None:
                out[lk] = sp
            elif owner.key != sp.key:
                conflicts.append((lk, sp))
    return out, conflicts


# ---------------------------------------------------------------------- endpoints

def _bool(value: Any, default: bool) -> bool:
    return default if value is None else bool(value)


def slice_endpoints(slices: Iterable[Obj], port_name: str, protocol: str = "TCP") -> list[Endpoint]:
    """All endpoints of ``slices`` for the Service port named ``port_name`` (IPv4 slices only)."""
    best: dict[tuple[str, int], Endpoint] = {}
    for sl in slices:
        if (sl.get("addressType") or "IPv4") != "IPv4":
            continue
        port = None
        for p in sl.get("ports") or []:
            if str(p.get("name") or "") == port_name and str(p.get("protocol") or "TCP").upper() == protocol:
                port = p.get("port")
                break
        try:
            port_num = int(port) if port is not None else 0
        except (TypeError, ValueError):
            port_num = 0
        if not 0 < port_num < 65536:
            continue
        for ep in sl.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            ready = _bool(cond.get("ready"), True)
            terminating = _bool(cond.get("terminating"), False)
            serving = _bool(cond.get("serving"), ready)
            ref = ep.get("targetRef") or {}
            target = f"{ref.get('namespace') or m.namespace(sl)}/{ref['name']}" if ref.get("name") else ""
            for ip in ep.get("addresses") or []:
                if not is_ipv4(str(ip)):
                    continue
                cand = Endpoint(str(ip), port_num, ready, serving, terminating, str(ep.get("hostname") or ""),
                                str(ep.get("nodeName") or ""), target)
                old = best.get(cand.addr)
                if old is None or (cand.ready, cand.serving) > (old.ready, old.serving):
                    best[cand.addr] = cand
    return sorted(best.values())


def usable_endpoints(endpoints: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    """Ready endpoints; if there are none, the serving-but-terminating ones (kube-proxy's fallback)."""
    eps = list(endpoints)
    ready = tuple(e for e in eps if e.ready and not e.terminating)
    if ready:
        return ready
    return tuple(e for e in eps if e.serving and e.terminating)


def ready_addresses(slices: Iterable[Obj], *, include_not_ready: bool = False) -> list[Endpoint]:
    """Endpoints by address whatever their port (what DNS publishes for a headless Service)."""
    seen: dict[str, Endpoint] = {}
    for sl in slices:
        if (sl.get("addressType") or "IPv4") != "IPv4":
            continue
        for ep in sl.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            if not include_not_ready and not _bool(cond.get("ready"), True):
                continue
            for ip in ep.get("addresses") or []:
                if is_ipv4(str(ip)) and str(ip) not in seen:
                    seen[str(ip)] = Endpoint(str(ip), 0, hostname=str(ep.get("hostname") or ""))
    return sorted(seen.values())


def find_service_port(svc: Obj, port: int | str) -> Mapping[str, Any] | None:
    """The ``spec.ports`` entry a reference (number or name, as an Ingress backend gives it) names."""
    for p in (svc.get("spec") or {}).get("ports") or []:
        if isinstance(port, int) and p.get("port") == port:
            return p
        if isinstance(port, str) and port and p.get("name") == port:
            return p
    return None
