"""The pure part of apiserver/kubernetes_service.py, and how the proxy and the cluster DNS read its objects."""

from __future__ import annotations

from typing import Any

from dnslib import QTYPE, DNSRecord

from apiserver.kubernetes_service import (ADDRESS_ANNOTATION, IDENTITY_LABEL, advertised_address, desired_service,
                                          desired_slices, desired_subsets, lease_address, lease_name,
                                          repaired_service)
from proxy.dnszone import ClusterZone
from proxy.model import ServicePortKey, service_ports, slice_endpoints

LIVE = [("127.0.0.1", 6444), ("127.0.0.1", 6443), ("10.0.0.2", 6443)]


def test_one_subset_and_one_slice_per_port() -> None:
    assert desired_subsets(LIVE) == [
        {"addresses": [{"ip": "10.0.0.2"}, {"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
        {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": 6444, "protocol": "TCP"}]}]
    slices = desired_slices(LIVE)
    assert list(slices) == ["kubernetes", "kubernetes-6444"]
    assert [e["addresses"] for e in slices["kubernetes"]["endpoints"]] == [["10.0.0.2"], ["127.0.0.1"]]
    # Upstream's usual case: one port, one subset, one slice named like the Service.
    assert list(desired_slices([("10.0.0.1", 6443), ("10.0.0.2", 6443)])) == ["kubernetes"]
    assert len(desired_subsets([("10.0.0.1", 6443), ("10.0.0.2", 6443)])) == 1


def test_the_proxy_sees_every_api_server_of_the_service_port() -> None:
    svc = desired_service("127.96.0.1", 6443)
    svc["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    [port] = service_ports(svc)
    assert port.key == ServicePortKey("default", "kubernetes", "https", "TCP") and port.cluster_ips == ("127.96.0.1",)
    slices = [dict(body, metadata={"name": name, "namespace": "default",
                                   "labels": {"kubernetes.io/service-name": "kubernetes"}})
              for name, body in desired_slices(LIVE).items()]
    got = {(e.ip, e.port) for e in slice_endpoints(slices, "https")}
    assert got == set(LIVE)


def test_the_cluster_dns_answers_kubernetes_default_svc() -> None:
    svc = desired_service("127.96.0.1", 6443)

    class Source:
        def service(self, key: str) -> Any:
            return svc if key == "default/kubernetes" else None

        def slices_of(self, key: str) -> list[Any]:
            return []

        def namespace_has_services(self, ns: str) -> bool:
            return ns == "default"

    zone = ClusterZone(Source())
    reply = zone.answer(DNSRecord.question("kubernetes.default.svc.cluster.local", "A"))
    assert [str(rr.rdata) for rr in reply.rr] == ["127.96.0.1"]
    srv = zone.answer(DNSRecord.question("_https._tcp.kubernetes.default.svc.cluster.local", "SRV"))
    assert [(QTYPE[rr.rtype], rr.rdata.port) for rr in srv.rr] == [("SRV", 443)]


def test_repair_keeps_a_live_target_port_and_fixes_the_rest() -> None:
    good = desired_service("127.96.0.1", 6444)
    assert repaired_service(good, [6443, 6444], 6443) is None  # another live replica's port: left alone
    broken = desired_service("127.96.0.1", 1)
    broken["spec"]["selector"] = {"app": "x"}
    broken["spec"]["type"] = "NodePort"
    broken["metadata"]["labels"] = {"provider": "me", "extra": "kept"}
    fixed = repaired_service(broken, [6444], 6443)
    assert fixed is not None
    assert fixed["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]
    assert fixed["spec"]["type"] == "ClusterIP" and "selector" not in fixed["spec"]
    assert fixed["metadata"]["labels"] == {"provider": "kubernetes", "extra": "kept", "component": "apiserver"}


def test_addresses_and_lease_names() -> None:
    assert advertised_address("127.0.0.1:6443") == ("127.0.0.1", 6443)
    assert advertised_address("localhost:6443") == ("127.0.0.1", 6443)
    assert advertised_address("[::1]:6443") is None  # slices and proxy are IPv4-only
    assert advertised_address("127.0.0.1:0") is None and advertised_address("nonsense") is None
    wildcard = advertised_address("0.0.0.0:6443")
    assert wildcard is None or (wildcard[1] == 6443 and wildcard[0] != "0.0.0.0")
    name = lease_name(("127.0.0.1", 6443))
    assert name.startswith("kube-apiserver-") and name != lease_name(("127.0.0.1", 6444))
    lease = {"metadata": {"labels": {IDENTITY_LABEL: "kube-apiserver"},
                          "annotations": {ADDRESS_ANNOTATION: "127.0.0.1:6443"}}}
    assert lease_address(lease) == ("127.0.0.1", 6443)
    assert lease_address({"metadata": {"annotations": {ADDRESS_ANNOTATION: "127.0.0.1:6443"}}}) is None
