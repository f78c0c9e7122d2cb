"""Answers of the cluster DNS zone (``cluster.local``), computed from Services and EndpointSlices.

The names, as the Kubernetes DNS specification (and CoreDNS's ``kubernetes`` plugin) define them:

* ``<svc>.<ns>.svc.<zone>``: A → the ClusterIP; for a headless Service (``clusterIP: None``) one
  A per ready endpoint address (all addresses with ``publishNotReadyAddresses``); for an
  ExternalName Service a CNAME to ``spec.externalName``.
* ``<hostname>.<svc>.<ns>.svc.<zone>`` (endpoints with ``hostname``, e.g. StatefulSet pods) and
  ``<a-b-c-d>.<svc>.<ns>.svc.<zone>`` (any endpoint address, dashed): A → that endpoint (headless).
* ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` for named ports: SRV → ``<svc>.<ns>.svc.<zone>`` and the
  Service port; for a headless Service one SRV per endpoint (its target port, its own name), with
  the A records in the additional section. ``<svc>.<ns>.svc.<zone>`` itself answers SRV for all
  named ports.
* ``<a-b-c-d>.<ns>.pod.<zone>``: A → a.b.c.d (the "pods insecure" mode of kube-dns).
* A name that exists but has no record of the asked type gets NOERROR with no answer (NODATA),
  intermediate names (``svc.<zone>``, ``<ns>.svc.<zone>`` of a namespace with Services) exist,
  anything else in the zone is NXDOMAIN; both carry the zone's SOA for negative caching.
* ``d.c.b.a.in-addr.arpa``: PTR, as CoreDNS's ``kubernetes`` plugin answers reverse lookups: a
  ClusterIP → ``<svc>.<ns>.svc.<zone>``; else a ready endpoint address of any Service →
  ``<hostname or a-b-c-d>.<svc>.<ns>.svc.<zone>`` (one per Service listing it). An address nobody
  has is NXDOMAIN (or forwarded by the server when it has an upstream, like CoreDNS's fallthrough).
* Other names outside the zone are not ours: REFUSED (or forwarded by the server when it has an upstream).

Pure: reads a catalog through ``ServiceSource`` and builds ``dnslib`` records, no sockets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from dnslib import CNAME, PTR, QTYPE, RCODE, RR, SOA, SRV, A, DNSRecord

from apimachinery import meta as m

from .model import (Endpoint, cluster_ips, is_headless, is_ipv4, ready_addresses, service_key_of_slice,
                    slice_endpoints)

Obj = Mapping[str, Any]


class ServiceSource(Protocol):
    def service(self, key: str) -> Obj | None: ...

    def slices_of(self, service_key: str) -> list[Obj]: ...

    def namespace_has_services(self, namespace: str) -> bool: ...

    def services_with_ip(self, ip: str) -> list[Obj]: ...

    def slices_with_address(self, ip: str) -> list[Obj]: ...


def dashed(ip: str) -> str:
    return ip.replace(".", "-")


def undashed(label: str) -> str | None:
    ip = label.replace("-", ".")
    return ip if label.count("-") == 3 and is_ipv4(ip) else None


REVERSE_ZONE = "in-addr.arpa"


def reverse_ip(qname: str) -> str | None:
    """The IPv4 address a ``d.c.b.a.in-addr.arpa`` name stands for (None for other names)."""
    labels = qname.lower().rstrip(".").split(".")
    if len(labels) != 6 or labels[-2:] != ["in-addr", "arpa"]:
        return None
    ip = ".".join(reversed(labels[:4]))
    return ip if is_ipv4(ip) and all(p == str(int(p)) for p in labels[:4]) else None


class ClusterZone:
    def __init__(self, source: ServiceSource, *, domain: str = "cluster.local", ttl: int = 5) -> None:
        self.source = source
        self.domain = domain.strip(".").lower()
        self.ttl = ttl
        self._labels = tuple(self.domain.split("."))
        self.soa = RR(self.domain + ".", QTYPE.SOA, ttl=ttl,
                      rdata=SOA(f"ns.dns.{self.domain}.", f"hostmaster.{self.domain}.",
                                (1, 7200, 1800, 86400, ttl)))
        self.reverse_soa = RR(REVERSE_ZONE + ".", QTYPE.SOA, ttl=ttl,
                              rdata=SOA(f"ns.dns.{self.domain}.", f"hostmaster.{self.domain}.",
                                        (1, 7200, 1800, 86400, ttl)))

    # ------------------------------------------------------------------ entry point

    def in_zone(self, qname: str) -> bool:
        labels = tuple(qname.lower().rstrip(".").split("."))
        return labels[-len(self._labels):] == self._labels

    @staticmethod
    def is_reverse(qname: str) -> bool:
        return qname.lower().rstrip(".").endswith("." + REVERSE_ZONE)

    def ptr_targets(self, ip: str) -> list[str]:
        """The names a reverse lookup of ``ip`` answers (see the module docstring)."""
        for svc in self.source.services_with_ip(ip):
            return [self._fqdn(m.name(svc), m.namespace(svc), "svc")]
        targets: list[str] = []
        for sl in self.source.slices_with_address(ip):
            svc_key = service_key_of_slice(sl)
            if not svc_key:
                continue
            namespace, _, name = svc_key.partition("/")
            for e in ready_addresses([sl]):
                if e.ip == ip:
                    target = self._fqdn(e.hostname or dashed(ip), name, namespace, "svc")
                    if target not in targets:
                        targets.append(target)
        return targets

    def answer(self, request: DNSRecord) -> DNSRecord:
        """The reply to ``request`` (one question; REFUSED for names outside the zone)."""
        reply = request.reply()
        reply.header.ra = 0
        if request.header.opcode != 0 or len(request.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP if request.header.opcode != 0 else RCODE.FORMERR
            reply.header.aa = 0
            return reply
        q = request.q
        qname = str(q.qname).lower().rstrip(".")
        if self.is_reverse(qname):
            return self._reverse(qname, q.qtype, reply)
        if not self.in_zone(qname):
            reply.header.aa = 0
            reply.header.rcode = RCODE.REFUSED
            return reply
        rel = qname.split(".")[: -len(self._labels)] if qname != self.domain else []
        found = self._lookup(rel, q.qtype, reply)
        if found is None:
            reply.header.rcode = RCODE.NXDOMAIN
        if not reply.rr:
            reply.add_auth(self.soa)  # negative answers carry the SOA (its minimum is the negative TTL)
        return reply

    def _reverse(self, qname: str, qtype: int, reply: DNSRecord) -> DNSRecord:
        ip = reverse_ip(qname)
        targets = self.ptr_targets(ip) if ip is not None else []
        if not targets:
            reply.header.rcode = RCODE.NXDOMAIN
        elif qtype in (QTYPE.PTR, QTYPE.ANY):
            for target in targets:
                reply.add_answer(RR(qname + ".", QTYPE.PTR, ttl=self.ttl, rdata=PTR(target)))
        if not reply.rr:
            reply.add_auth(self.reverse_soa)
        return reply

    # ------------------------------------------------------------------ names

    def _fqdn(self, *labels: str) -> str:
        return ".".join((*labels, self.domain)) + "."

    def _lookup(self, rel: list[str], qtype: int, reply: DNSRecord) -> bool | None:
        """Fill ``reply``; True/False: the name exists (with/without records of the type); None: NXDOMAIN."""
        if not rel:
            if qtype in (QTYPE.SOA, QTYPE.ANY):
                reply.add_answer(self.soa)
            return True
        if rel[-1] == "pod":
            return self._pod(rel[:-1], qtype, reply)
        if rel[-1] != "svc":
            return None
        rel = rel[:-1]
        if not rel:
            return True  # svc.<zone>
        ns = rel[-1]
        if len(rel) == 1:
            return True if self.source.namespace_has_services(ns) else None
        svc = self.source.service(f"{ns}/{rel[-2]}")
        if svc is None:
            return None
        rest = rel[:-2]
        if not rest:
            return self._service(svc, qtype, reply)
        if len(rest) == 1 and not rest[0].startswith("_"):
            return self._endpoint(svc, rest[0], qtype, reply)
        if len(rest) == 1:  # _<proto>.<svc>...: exists when a named port has that protocol
            return True if self._srv_ports(svc, None, rest[0]) else None
        if len(rest) == 2 and rest[0].startswith("_") and rest[1].startswith("_"):
            ports = self._srv_ports(svc, rest[0], rest[1])
            if not ports:
                return None
            if qtype in (QTYPE.SRV, QTYPE.ANY):
                self._add_srv(svc, ports, reply)
            return True
        return None

    def _pod(self, rel: list[str], qtype: int, reply: DNSRecord) -> bool | None:
        if not rel:
            return True  # pod.<zone>
        if len(rel) == 1:
            return True  # <ns>.pod.<zone>: any namespace may hold pods
        if len(rel) != 2:
            return None
        ip = undashed(rel[0])
        if ip is None:
            return None
        if qtype in (QTYPE.A, QTYPE.ANY):
            reply.add_answer(RR(self._fqdn(*rel, "pod"), QTYPE.A, ttl=self.ttl, rdata=A(ip)))
        return True

    def _addresses(self, svc: Obj) -> list[Endpoint]:
        include = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
        return ready_addresses(self.source.slices_of(m.object_key(svc)), include_not_ready=include)

    def _service(self, svc: Obj, qtype: int, reply: DNSRecord) -> bool:
        spec = svc.get("spec") or {}
        name = self._fqdn(m.name(svc), m.namespace(svc), "svc")
        if spec.get("type") == "ExternalName":
            target = str(spec.get("externalName") or "").rstrip(".")
            if target:
                reply.add_answer(RR(name, QTYPE.CNAME, ttl=self.ttl, rdata=CNAME(target + ".")))
            return True
        if qtype in (QTYPE.A, QTYPE.ANY):
            ips = [e.ip for e in self._addresses(svc)] if is_headless(svc) else list(cluster_ips(svc))
            for ip in ips:
                reply.add_answer(RR(name, QTYPE.A, ttl=self.ttl, rdata=A(ip)))
        if qtype == QTYPE.SRV:
            ports = self._srv_ports(svc, None, None)
            if ports:
                self._add_srv(svc, ports, reply)
        return True

    def _endpoint(self, svc: Obj, label: str, qtype: int, reply: DNSRecord) -> bool | None:
        if not is_headless(svc):
            return None
        ip = undashed(label)
        for e in self._addresses(svc):
            if e.hostname.lower() == label or e.ip == ip:
                if qtype in (QTYPE.A, QTYPE.ANY):
                    reply.add_answer(RR(self._fqdn(label, m.name(svc), m.namespace(svc), "svc"), QTYPE.A,
                                        ttl=self.ttl, rdata=A(e.ip)))
                return True
        return None

    @staticmethod
    def _srv_ports(svc: Obj, port_label: str | None, proto_label: str | None) -> list[Mapping[str, Any]]:
        """Named ports matching ``_<name>`` and ``_<proto>`` (None: any)."""
        out = []
        for p in (svc.get("spec") or {}).get("ports") or []:
            name = str(p.get("name") or "").lower()
            proto = str(p.get("protocol") or "TCP").lower()
            if not name:
                continue
            if port_label is not None and port_label != f"_{name}":
                continue
            if proto_label is not None and proto_label != f"_{proto}":
                continue
            out.append(p)
        return out

    def _add_srv(self, svc: Obj, ports: list[Mapping[str, Any]], reply: DNSRecord) -> None:
        ns, name = m.namespace(svc), m.name(svc)
        for p in ports:
            owner = self._fqdn(f"_{str(p.get('name')).lower()}", f"_{str(p.get('protocol') or 'TCP').lower()}",
                               name, ns, "svc")
            if not is_headless(svc):
                ips = cluster_ips(svc)
                if not ips:
                    continue
                target = self._fqdn(name, ns, "svc")
                reply.add_answer(RR(owner, QTYPE.SRV, ttl=self.ttl, rdata=SRV(0, 100, int(p.get("port") or 0), target)))
                for ip in ips:
                    reply.add_ar(RR(target, QTYPE.A, ttl=self.ttl, rdata=A(ip)))
                continue
            include = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
            eps = [e for e in slice_endpoints(self.source.slices_of(m.object_key(svc)), str(p.get("name") or ""),
                                              str(p.get("protocol") or "TCP").upper()) if e.ready or include]
            weight = max(1, 100 // max(1, len(eps)))
            for e in eps:
                target = self._fqdn(e.hostname.lower() or dashed(e.ip), name, ns, "svc")
                reply.add_answer(RR(owner, QTYPE.SRV, ttl=self.ttl, rdata=SRV(0, weight, e.port, target)))
                reply.add_ar(RR(target, QTYPE.A, ttl=self.ttl, rdata=A(e.ip)))
