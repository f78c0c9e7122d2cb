"""Pure rules of proxy/: which addresses a Service is served on, usable endpoints, balancing, LB allocation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from proxy.app import NodeAddressLost, _is_local, watch_node_ips
from proxy.balancer import Balancer, Balancers
from proxy.lballoc import desired_ingress
from proxy.model import (Endpoint, ListenKey, ServicePortKey, desired_listeners, find_service_port, ready_addresses,
                         service_ports, slice_endpoints, usable_endpoints)

Obj = dict[str, Any]


def svc(name: str, *, ns: str = "default", type: str = "ClusterIP", ports: list[Obj] | None = None,
        created: str = "2024-01-01T00:00:00Z", status: Obj | None = None, **spec: Any) -> Obj:
    body: Obj = {"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
                 "spec": {"type": type, "clusterIP": spec.pop("clusterIP", "127.96.0.10"),
                          "ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}],
                          **spec}}
    if status:
        body["status"] = status
    return body


def eps(service: str, endpoints: list[Obj], ports: list[Obj], *, ns: str = "default", name: str = "",
        address_type: str = "IPv4") -> Obj:
    return {"metadata": {"name": name or f"{service}-x", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": address_type, "ports": ports, "endpoints": endpoints}


HTTP = [{"name": "http", "port": 8080, "protocol": "TCP"}]


# ---------------------------------------------------------------------- listeners

def test_listen_addresses_follow_the_service_type() -> None:
    node = ["127.0.0.9"]
    cluster = svc("a", clusterIP="127.96.0.1")
    node_port = svc("b", type="NodePort", clusterIP="127.96.0.2",
                    ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    pending_lb = svc("c", type="LoadBalancer", clusterIP="127.96.0.3",
                     ports=[{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}])
    lb = svc("d", type="LoadBalancer", clusterIP="127.96.0.4", ports=[{"name": "http", "port": 8443, "nodePort": 30443}],
             status={"loadBalancer": {"ingress": [{"ip": "127.0.0.9"}]}})
    headless = svc("e", clusterIP="None")
    external = svc("f", type="ExternalName", clusterIP="", externalName="example.org")
    sctp = svc("g", clusterIP="127.96.0.7", ports=[{"name": "s", "port": 9, "protocol": "SCTP"}])
    ext_ip = svc("h", clusterIP="127.96.0.8", externalIPs=["127.200.0.1"])
    listeners, conflicts = desired_listeners([cluster, node_port, pending_lb, lb, headless, external, sctp, ext_ip], node)
    assert conflicts == []
    got = {str(k): str(v.key) for k, v in listeners.items()}
    assert got == {
        "127.96.0.1:80/TCP": "default/a:http/TCP",
        "127.96.0.2:80/TCP": "default/b:http/TCP", "127.0.0.9:30080/TCP": "default/b:http/TCP",
        "127.96.0.3:53/UDP": "default/c:dns/UDP", "127.0.0.9:30053/UDP": "default/c:dns/UDP",
        "127.96.0.4:8443/TCP": "default/d:http/TCP", "127.0.0.9:30443/TCP": "default/d:http/TCP",
        "127.0.0.9:8443/TCP": "default/d:http/TCP",  # published LoadBalancer: service port on the node address
        "127.96.0.8:80/TCP": "default/h:http/TCP", "127.200.0.1:80/TCP": "default/h:http/TCP",
    }


def test_the_older_service_keeps_a_contested_address() -> None:
    status = {"loadBalancer": {"ingress": [{"ip": "127.0.0.9"}]}}
    new = svc("new", type="LoadBalancer", clusterIP="127.96.0.2", created="2024-02-01T00:00:00Z", status=status)
    old = svc("old", type="LoadBalancer", clusterIP="127.96.0.1", created="2024-01-01T00:00:00Z", status=status)
    listeners, conflicts = desired_listeners([new, old], ["127.0.0.9"])
    assert listeners[ListenKey("127.0.0.9", 80, "TCP")].key.name == "old"
    assert [(str(lk), sp.key.name) for lk, sp in conflicts] == [("127.0.0.9:80/TCP", "new")]


def test_session_affinity_timeout() -> None:
    [plain] = service_ports(svc("a"))
    [sticky] = service_ports(svc("b", sessionAffinity="ClientIP"))
    [custom] = service_ports(svc("c", sessionAffinity="ClientIP",
                                 sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}))
    assert (plain.affinity_timeout, sticky.affinity_timeout, custom.affinity_timeout) == (None, 10800.0, 60.0)


def test_find_service_port_by_number_or_name() -> None:
    s = svc("a", ports=[{"name": "http", "port": 80}, {"name": "admin", "port": 9000}])
    assert find_service_port(s, 9000)["name"] == "admin"  # type: ignore[index]
    assert find_service_port(s, "http")["port"] == 80  # type: ignore[index]
    assert find_service_port(s, 81) is None and find_service_port(s, "nope") is None


# ---------------------------------------------------------------------- endpoints

def test_slice_endpoints_by_port_name_deduplicated_most_ready_wins() -> None:
    slices = [
        eps("web", [{"addresses": ["127.3.0.1"]},  # no conditions: ready
                    {"addresses": ["127.3.0.2"], "conditions": {"ready": False}},
                    {"addresses": ["fe80::1"]}], HTTP, name="a"),
        eps("web", [{"addresses": ["127.3.0.2"], "conditions": {"ready": True}, "hostname": "w-2"}], HTTP, name="b"),
        eps("web", [{"addresses": ["127.3.0.9"]}], [{"name": "other", "port": 1, "protocol": "TCP"}], name="c"),
        eps("web", [{"addresses": ["fe80::2"]}], HTTP, name="d", address_type="IPv6"),
    ]
    got = slice_endpoints(slices, "http")
    assert [(e.ip, e.port, e.ready, e.hostname) for e in got] == [("127.3.0.1", 8080, True, ""),
                                                                  ("127.3.0.2", 8080, True, "w-2")]
    assert slice_endpoints(slices, "http", "UDP") == []


def test_terminating_endpoints_are_used_only_when_none_is_ready() -> None:
    ready = Endpoint("127.3.0.1", 80)
    leaving = Endpoint("127.3.0.2", 80, ready=False, serving=True, terminating=True)
    gone = Endpoint("127.3.0.3", 80, ready=False, serving=False, terminating=True)
    assert usable_endpoints([ready, leaving, gone]) == (ready,)
    assert usable_endpoints([leaving, gone]) == (leaving,)
    assert usable_endpoints([gone]) == ()


def test_ready_addresses_for_headless_dns() -> None:
    slices = [eps("db", [{"addresses": ["127.3.0.2"], "hostname": "db-1"},
                         {"addresses": ["127.3.0.1"], "conditions": {"ready": False}}], HTTP)]
    assert [(e.ip, e.hostname) for e in ready_addresses(slices)] == [("127.3.0.2", "db-1")]
    assert [e.ip for e in ready_addresses(slices, include_not_ready=True)] == ["127.3.0.1", "127.3.0.2"]


# ---------------------------------------------------------------------- balancing

class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


E1, E2, E3 = Endpoint("127.3.0.1", 80), Endpoint("127.3.0.2", 80), Endpoint("127.3.0.3", 80)


def test_round_robin_and_exclusion() -> None:
    bal = Balancer([E1, E2, E3])
    assert [bal.pick().ip for _ in range(6)] == ["127.3.0.1", "127.3.0.2", "127.3.0.3"] * 2  # type: ignore[union-attr]
    assert bal.pick(exclude={E1.addr, E2.addr, E3.addr}) is None
    assert bal.pick(exclude={E1.addr, E3.addr}) == E2
    assert Balancer([]).pick() is None


def test_failed_endpoint_is_skipped_until_its_timeout() -> None:
    clock = Clock()
    bal = Balancer([E1, E2], fail_timeout=2.0, clock=clock)
    bal.failed(E1)
    assert {bal.pick() for _ in range(4)} == {E2}
    clock.now += 2.5
    assert {bal.pick() for _ in range(4)} == {E1, E2}
    bal.failed(E1)
    bal.failed(E2)
    assert bal.pick() in (E1, E2)  # all failed: still try rather than refuse


def test_client_ip_affinity_sticks_until_idle_timeout_or_endpoint_gone() -> None:
    clock = Clock()
    bal = Balancer([E1, E2, E3], affinity_timeout=10.0, clock=clock)
    first = bal.pick("10.0.0.1")
    assert all(bal.pick("10.0.0.1") == first for _ in range(5))
    assert bal.pick("10.0.0.2") != first  # another client continues the round robin
    clock.now += 9
    assert bal.pick("10.0.0.1") == first  # used again: the idle time starts over
    clock.now += 11
    assert bal.pick("10.0.0.1") is not None
    sticky = bal.pick("10.0.0.3")
    assert sticky is not None
    gone = bal.set_endpoints([e for e in (E1, E2, E3) if e != sticky])
    assert gone == {sticky.addr}
    moved = bal.pick("10.0.0.3")
    assert moved not in (None, sticky) and all(bal.pick("10.0.0.3") == moved for _ in range(3))
    bal.failed(moved)  # type: ignore[arg-type]
    assert bal.pick("10.0.0.3") != moved


def test_affinity_table_is_bounded() -> None:
    bal = Balancer([E1, E2], affinity_timeout=100.0, max_affinity=3)
    for i in range(10):
        bal.pick(f"10.0.0.{i}")
    assert len(bal._affinity) == 3


def test_balancers_refresh_and_report_removed_endpoints() -> None:
    state: dict[ServicePortKey, tuple[tuple[Endpoint, ...], float | None]] = {}
    key = ServicePortKey("default", "web", "http")
    state[key] = ((E1, E2), None)
    bals = Balancers(lambda k: state[k])
    removed: list[tuple[ServicePortKey, set[tuple[str, int]]]] = []
    bals.on_endpoints_gone.append(lambda k, gone: removed.append((k, gone)))
    assert len(bals.get(key)) == 2
    state[key] = ((E2, E3), 30.0)
    bals.refresh("default/web")
    assert bals.get(key).endpoints == (E2, E3) and bals.get(key).affinity_timeout == 30.0
    assert removed == [(key, {E1.addr})]
    bals.retain(set())
    assert bals.keys() == []


# ---------------------------------------------------------------------- load balancer allocation

def test_load_balancer_allocation_conflicts_and_classes() -> None:
    ports = [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]
    first = svc("first", type="LoadBalancer", ports=ports, created="2024-01-01T00:00:00Z")
    second = svc("second", type="LoadBalancer", ports=[{"name": "x", "port": 53, "protocol": "UDP"}],
                 created="2024-01-02T00:00:00Z")
    tcp53 = svc("tcp53", type="LoadBalancer", ports=[{"name": "x", "port": 53, "protocol": "TCP"}],
                created="2024-01-03T00:00:00Z")
    foreign = svc("foreign", type="LoadBalancer", loadBalancerClass="example.com/lb", created="2023-01-01T00:00:00Z")
    plain = svc("plain")
    everything = [first, second, tcp53, foreign, plain]
    assert desired_ingress(first, everything, "127.0.0.9") == (
        [{"ip": "127.0.0.9", "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}], "")
    ingress, why = desired_ingress(second, everything, "127.0.0.9")
    assert ingress == [] and "53/UDP" in why and "default/first" in why
    assert desired_ingress(tcp53, everything, "127.0.0.9")[0] == [
        {"ip": "127.0.0.9", "ports": [{"port": 53, "protocol": "TCP"}]}]
    assert desired_ingress(foreign, everything, "127.0.0.9") == (None, "")  # another implementation's
    assert desired_ingress(plain, everything, "127.0.0.9") == ([], "")  # not a LoadBalancer: cleared


async def test_a_node_address_that_is_no_longer_local_ends_the_proxy() -> None:
    assert _is_local("127.0.0.1") and not _is_local("192.0.2.1")  # TEST-NET-1: never a local address
    with pytest.raises(NodeAddressLost, match="192.0.2.1"):
        await asyncio.wait_for(watch_node_ips(["127.0.0.1", "192.0.2.1"], period=0.01, misses=2), 5)
    watcher = asyncio.ensure_future(watch_node_ips(["127.0.0.1"], period=0.01))
    await asyncio.sleep(0.1)
    assert not watcher.done()  # local addresses: it keeps watching
    watcher.cancel()
