"""Answers of the cluster DNS zone (proxy/dnszone.py) and the server's packet handling, without sockets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from proxy.dns import DNSServer
from proxy.dnszone import ClusterZone
from proxy.metrics import DNSMetrics

Obj = Mapping[str, Any]


class Source:
    def __init__(self, services: list[Obj], slices: list[Obj]) -> None:
        self.services = {f"{s['metadata']['namespace']}/{s['metadata']['name']}": s for s in services}
        self.slices = slices

    def service(self, key: str) -> Obj | None:
        return self.services.get(key)

    def slices_of(self, service_key: str) -> list[Obj]:
        ns, name = service_key.split("/")
        return [s for s in self.slices if s["metadata"]["namespace"] == ns
                and s["metadata"]["labels"]["kubernetes.io/service-name"] == name]

    def namespace_has_services(self, namespace: str) -> bool:
        return any(k.startswith(namespace + "/") for k in self.services)

    def services_with_ip(self, ip: str) -> list[Obj]:
        return [s for s in self.services.values() if s["spec"].get("clusterIP") == ip]

    def slices_with_address(self, ip: str) -> list[Obj]:
        return [s for s in self.slices if any(ip in e["addresses"] for e in s["endpoints"])]


def service(name: str, ns: str = "default", **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def slice_(service_name: str, endpoints: list[Obj], ports: list[Obj], ns: str = "default") -> Obj:
    return {"metadata": {"name": f"{service_name}-a", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports}


SOURCE = Source(
    [service("web", clusterIP="127.96.0.10", ports=[{"name": "http", "port": 80, "protocol": "TCP"}]),
     service("db", clusterIP="None", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]),
     service("late", clusterIP="None", publishNotReadyAddresses=True, ports=[{"name": "x", "port": 1}]),
     service("ext", type="ExternalName", externalName="example.org"),
     service("big", clusterIP="None", ports=[{"name": "p", "port": 1}])],
    [slice_("db", [{"addresses": ["127.3.0.1"], "hostname": "db-0"},
                   {"addresses": ["127.3.0.2"], "conditions": {"ready": False}, "hostname": "db-1"}],
            [{"name": "pg", "port": 15432, "protocol": "TCP"}]),
     slice_("late", [{"addresses": ["127.3.0.5"], "conditions": {"ready": False}}], [{"name": "x", "port": 1}]),
     slice_("big", [{"addresses": [f"127.4.0.{i}"]} for i in range(1, 60)], [{"name": "p", "port": 1}])])
ZONE = ClusterZone(SOURCE)


def ask(name: str, qtype: str = "A") -> DNSRecord:
    return ZONE.answer(DNSRecord.question(name, qtype))


def rdata(reply: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr)


def test_cluster_ip_service() -> None:
    reply = ask("web.default.svc.cluster.local")
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 1
    assert rdata(reply) == ["127.96.0.10"] and reply.rr[0].ttl == 5
    assert rdata(ask("WEB.Default.svc.cluster.local.")) == ["127.96.0.10"]  # case-insensitive


def test_headless_ready_addresses_hostnames_and_srv() -> None:
    assert rdata(ask("db.default.svc.cluster.local")) == ["127.3.0.1"]
    assert rdata(ask("db-0.db.default.svc.cluster.local")) == ["127.3.0.1"]
    assert rdata(ask("127-3-0-1.db.default.svc.cluster.local")) == ["127.3.0.1"]
    assert ask("db-1.db.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    srv = ask("_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert [(r.rdata.port, str(r.rdata.target)) for r in srv.rr] == [(15432, "db-0.db.default.svc.cluster.local.")]
    assert [str(r.rdata) for r in srv.ar] == ["127.3.0.1"]
    assert rdata(ask("late.default.svc.cluster.local")) == ["127.3.0.5"]  # publishNotReadyAddresses


def test_srv_of_cluster_ip_service() -> None:
    srv = ask("_http._tcp.web.default.svc.cluster.local", "SRV")
    assert [(r.rdata.port, str(r.rdata.target)) for r in srv.rr] == [(80, "web.default.svc.cluster.local.")]
    assert ask("_tcp.web.default.svc.cluster.local").header.rcode == RCODE.NOERROR  # empty non-terminal
    assert ask("_udp.web.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_negative_answers_carry_the_soa() -> None:
    for name, rcode in [("nope.default.svc.cluster.local", RCODE.NXDOMAIN), ("x.cluster.local", RCODE.NXDOMAIN),
                        ("a.b.web.default.svc.cluster.local", RCODE.NXDOMAIN),
                        ("x.web.default.svc.cluster.local", RCODE.NXDOMAIN),  # not headless: no endpoint names
                        ("nowhere.svc.cluster.local", RCODE.NXDOMAIN)]:
        reply = ask(name)
        assert reply.header.rcode == rcode, name
        assert [rr.rtype for rr in reply.auth] == [QTYPE.SOA], name
    nodata = ask("web.default.svc.cluster.local", "AAAA")
    assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr and nodata.auth
    assert ask("default.svc.cluster.local").header.rcode == RCODE.NOERROR
    assert ask("svc.cluster.local").header.rcode == RCODE.NOERROR


def test_external_name_pods_and_other_zones() -> None:
    reply = ask("ext.default.svc.cluster.local", "A")
    assert [(rr.rtype, str(rr.rdata)) for rr in reply.rr] == [(QTYPE.CNAME, "example.org.")]
    assert rdata(ask("127-3-0-9.any.pod.cluster.local")) == ["127.3.0.9"]
    assert ask("not-an-ip.any.pod.cluster.local").header.rcode == RCODE.NXDOMAIN
    outside = ask("example.com")
    assert outside.header.rcode == RCODE.REFUSED and outside.header.aa == 0
    assert ClusterZone(SOURCE, domain="corp.internal").answer(
        DNSRecord.question("web.default.svc.corp.internal")).rr[0].rdata.__str__() == "127.96.0.10"


def test_reverse_lookups_of_cluster_ips_and_endpoints() -> None:
    reply = ask("10.0.96.127.in-addr.arpa", "PTR")
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 1
    assert [(rr.rtype, str(rr.rname), str(rr.rdata)) for rr in reply.rr] == [
        (QTYPE.PTR, "10.0.96.127.in-addr.arpa.", "web.default.svc.cluster.local.")]
    assert rdata(ask("1.0.3.127.in-addr.arpa", "PTR")) == ["db-0.db.default.svc.cluster.local."]  # its hostname
    assert rdata(ask("7.0.4.127.in-addr.arpa", "PTR")) == ["127-4-0-7.big.default.svc.cluster.local."]  # dashed
    for unknown in ("2.0.3.127.in-addr.arpa",  # not ready
                    "9.9.9.127.in-addr.arpa", "0.96.127.in-addr.arpa", "x.0.96.127.in-addr.arpa"):
        miss = ask(unknown, "PTR")
        assert miss.header.rcode == RCODE.NXDOMAIN and not miss.rr and str(miss.auth[0].rname) == "in-addr.arpa."
    nodata = ask("10.0.96.127.in-addr.arpa", "A")
    assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr


def test_reverse_lookups_of_other_addresses_go_upstream() -> None:
    server = DNSServer(ZONE, DNSMetrics(), upstream=("127.0.0.1", 53))
    ours = server.answer(DNSRecord.question("10.0.96.127.in-addr.arpa", "PTR").pack(), "udp")
    assert isinstance(ours, bytes) and rdata(DNSRecord.parse(ours)) == ["web.default.svc.cluster.local."]
    theirs = server.answer(DNSRecord.question("8.8.8.8.in-addr.arpa", "PTR").pack(), "udp")
    assert isinstance(theirs, DNSRecord)  # to be forwarded


def test_server_truncates_big_udp_answers_and_answers_garbage_with_formerr() -> None:
    server = DNSServer(ZONE, DNSMetrics())
    query = DNSRecord.question("big.default.svc.cluster.local")
    udp = DNSRecord.parse(server.answer(query.pack(), "udp"))  # type: ignore[arg-type]
    assert udp.header.tc == 1 and not udp.rr
    tcp = DNSRecord.parse(server.answer(query.pack(), "tcp"))  # type: ignore[arg-type]
    assert tcp.header.tc == 0 and len(tcp.rr) == 59
    query.add_ar(EDNS0(udp_len=4096))
    edns = DNSRecord.parse(server.answer(query.pack(), "udp"))  # type: ignore[arg-type]
    assert edns.header.tc == 0 and len(edns.rr) == 59
    bad = server.answer(b"\x12\x34" + b"\xff" * 14, "udp")
    assert isinstance(bad, bytes) and DNSRecord.parse(bad).header.rcode == RCODE.FORMERR
    assert server.answer(b"\x00", "udp") is None


def test_server_answers_servfail_until_synced() -> None:
    server = DNSServer(ZONE, DNSMetrics(), ready=lambda: False)
    reply = DNSRecord.parse(server.answer(DNSRecord.question("web.default.svc.cluster.local").pack(), "udp"))  # type: ignore[arg-type]
    assert reply.header.rcode == RCODE.SERVFAIL
