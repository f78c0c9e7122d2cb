"""Cluster DNS as a real process (``python -m proxy dns``), queried with dnslib's client over UDP and TCP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from tests.harness.apicluster import APICluster
from tests.integration.test_proxy_support import api  # noqa: F401 - fixture
from tests.integration.test_proxy_support import (Component, create_service, endpoint, ensure_namespace, free_port_on,
                                                  loopback_net, put_slice, wait_for)

CIDR, NODE_IP, POD = loopback_net()
ZONE = "cluster.local"


@pytest.fixture(scope="module")
def dns(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port_on(NODE_IP)
    comp = Component(api, tmp_path_factory.mktemp("dns"), "dns", "--bind", f"{NODE_IP}:{port}",
                     health=f"{NODE_IP}:{free_port_on(NODE_IP)}")
    comp.wait_ready()
    yield NODE_IP, port
    comp.stop()
    print(comp.logs()[-3000:])


def query(server: tuple[str, int], name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    raw = DNSRecord.question(name, qtype).send(server[0], server[1], tcp=tcp, timeout=2)
    return DNSRecord.parse(raw)


def answers(reply: DNSRecord, qtype: str = "A") -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == getattr(QTYPE, qtype))


def test_service_a_record_and_srv_for_named_ports(api: APICluster, dns: tuple[str, int]) -> None:
    ensure_namespace(api, "shop")
    svc = create_service(api, "shop", "web", [{"name": "http", "port": 80, "targetPort": 8080},
                                              {"name": "metrics", "port": 9100, "protocol": "UDP"}])
    ip = svc["spec"]["clusterIP"]
    name = f"web.shop.svc.{ZONE}"
    wait_for(lambda: answers(query(dns, name)) == [ip], 20, "A record of the service")
    over_tcp = query(dns, name, tcp=True)
    assert answers(over_tcp) == [ip] and over_tcp.header.aa == 1

    srv = query(dns, f"_http._tcp.{name}", "SRV")
    assert srv.header.rcode == RCODE.NOERROR
    [record] = [rr.rdata for rr in srv.rr]
    assert (record.port, str(record.target)) == (80, f"{name}.")
    assert [str(rr.rdata) for rr in srv.ar] == [ip]
    udp_srv = query(dns, f"_metrics._udp.{name}", "SRV")
    assert [rr.rdata.port for rr in udp_srv.rr] == [9100]
    # The service name itself answers SRV for every named port.
    assert sorted(rr.rdata.port for rr in query(dns, name, "SRV").rr) == [80, 9100]
    # A port name with the wrong protocol, and an unknown port name, do not exist.
    assert query(dns, f"_http._udp.{name}", "SRV").header.rcode == RCODE.NXDOMAIN
    assert query(dns, f"_nope._tcp.{name}", "SRV").header.rcode == RCODE.NXDOMAIN
    # The name exists but has no AAAA: NOERROR, no answer, the SOA for negative caching.
    aaaa = query(dns, name, "AAAA")
    assert aaaa.header.rcode == RCODE.NOERROR and not aaaa.rr and aaaa.auth[0].rtype == QTYPE.SOA
    # Reverse: the ClusterIP names the Service.
    reverse = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    assert [str(rr.rdata) for rr in query(dns, reverse, "PTR").rr] == [f"{name}."]


def test_headless_service_answers_ready_pod_ips(api: APICluster, dns: tuple[str, int]) -> None:
    ensure_namespace(api, "db")
    create_service(api, "db", "pg", [{"name": "pg", "port": 5432}], clusterIP="None")
    ready_a, ready_b, not_ready = f"{POD}1", f"{POD}2", f"{POD}3"
    put_slice(api, "db", "pg", [endpoint(ready_a, hostname="pg-0"), endpoint(ready_b, hostname="pg-1"),
                                endpoint(not_ready, ready=False, hostname="pg-2")],
              [{"name": "pg", "port": 5432, "protocol": "TCP"}])
    name = f"pg.db.svc.{ZONE}"
    wait_for(lambda: answers(query(dns, name)) == sorted([ready_a, ready_b]), 20, "headless A records")

    assert answers(query(dns, f"pg-0.{name}")) == [ready_a]
    assert answers(query(dns, f"{ready_b.replace('.', '-')}.{name}")) == [ready_b]
    assert query(dns, f"pg-2.{name}").header.rcode == RCODE.NXDOMAIN  # not ready: not published

    srv = query(dns, f"_pg._tcp.{name}", "SRV")
    targets = sorted((str(rr.rdata.target), rr.rdata.port) for rr in srv.rr)
    assert targets == [(f"pg-0.{name}.", 5432), (f"pg-1.{name}.", 5432)]
    assert sorted(str(rr.rdata) for rr in srv.ar) == sorted([ready_a, ready_b])

    # Reverse: a ready endpoint's address names its hostname under the Service.
    ptr = lambda ip: query(dns, ".".join(reversed(ip.split("."))) + ".in-addr.arpa", "PTR")  # noqa: E731
    assert [str(rr.rdata) for rr in ptr(ready_b).rr] == [f"pg-1.{name}."]
    assert ptr(not_ready).header.rcode == RCODE.NXDOMAIN

    # Endpoints change: DNS follows.
    put_slice(api, "db", "pg", [endpoint(ready_a, hostname="pg-0")], [{"name": "pg", "port": 5432, "protocol": "TCP"}])
    wait_for(lambda: answers(query(dns, name)) == [ready_a], 20, "headless A records after the change")
    wait_for(lambda: ptr(ready_b).header.rcode == RCODE.NXDOMAIN, 20, "no PTR for a removed endpoint")


def test_unknown_names_external_names_and_other_zones(api: APICluster, dns: tuple[str, int]) -> None:
    ensure_namespace(api, "misc")
    create_service(api, "misc", "ext", [], type="ExternalName", externalName="example.org")
    wait_for(lambda: query(dns, f"ext.misc.svc.{ZONE}").rr, 20, "ExternalName answered")
    reply = query(dns, f"ext.misc.svc.{ZONE}")
    assert [(rr.rtype, str(rr.rdata)) for rr in reply.rr] == [(QTYPE.CNAME, "example.org.")]

    missing = query(dns, f"nothing.misc.svc.{ZONE}")
    assert missing.header.rcode == RCODE.NXDOMAIN and missing.auth[0].rtype == QTYPE.SOA
    assert query(dns, f"nothing.nowhere.svc.{ZONE}").header.rcode == RCODE.NXDOMAIN
    assert query(dns, f"misc.svc.{ZONE}").header.rcode == RCODE.NOERROR  # a namespace with services exists
    assert query(dns, f"www.example.{ZONE}").header.rcode == RCODE.NXDOMAIN
    assert query(dns, "example.com").header.rcode == RCODE.REFUSED  # not our zone, no upstream
    assert answers(query(dns, f"{POD.replace('.', '-')}9.misc.pod.{ZONE}")) == [f"{POD}9"]
    soa = query(dns, ZONE, "SOA")
    assert [rr.rtype for rr in soa.rr] == [QTYPE.SOA]


async def test_names_outside_the_zone_are_forwarded_to_the_upstream() -> None:
    """The server's forwarding path, with another in-process server (zone ``corp.internal``) as upstream."""
    import asyncio

    from proxy.dns import DNSServer
    from proxy.dnszone import ClusterZone
    from proxy.metrics import DNSMetrics
    from tests.unit.test_proxy_dns import SOURCE

    upstream_port, port = free_port_on(NODE_IP), free_port_on(NODE_IP)
    upstream = DNSServer(ClusterZone(SOURCE, domain="corp.internal"), DNSMetrics())
    cluster = DNSServer(ClusterZone(SOURCE), DNSMetrics(), upstream=(NODE_IP, upstream_port), upstream_timeout=1.0)
    await upstream.start(NODE_IP, upstream_port)
    await cluster.start(NODE_IP, port)
    try:
        forwarded = await asyncio.to_thread(query, (NODE_IP, port), "web.default.svc.corp.internal")
        assert answers(forwarded) == ["127.96.0.10"] and forwarded.header.aa == 1
        local = await asyncio.to_thread(query, (NODE_IP, port), "web.default.svc.cluster.local", "A", True)
        assert answers(local) == ["127.96.0.10"]
        await upstream.stop()
        lost = await asyncio.to_thread(query, (NODE_IP, port), "web.default.svc.corp.internal")
        assert lost.header.rcode == RCODE.SERVFAIL  # the upstream does not answer any more
    finally:
        await cluster.stop()
        await upstream.stop()
