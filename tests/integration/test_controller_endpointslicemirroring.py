"""EndpointSliceMirroring: a selector-less Service backed by a hand-made Endpoints gets mirrored
EndpointSlices, and the service proxy routes its ClusterIP to the Endpoints' address.

Real processes: a store and API server (HTTPS), a controller-manager running ``endpointslicemirroring``
next to ``endpoints`` and ``endpointslice``, and a service proxy; objects are written through the official
``kubernetes`` client; the "external" backend is a TCP socket this test serves.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.harness.apicluster import APICluster
from tests.integration.test_controller_support import ControllerManagerProcess
from tests.integration import test_proxy_support as support
from tests.integration.test_proxy_support import Component, free_port_on, loopback_net, pod_ip, wait_for

api, root = support.api, support.root  # fixtures: the API server (with this module's CIDR) and a work directory

CIDR, NODE_IP, POD = loopback_net()
NS = "mirror"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MIRROR = "endpointslicemirroring-controller.k8s.io"


class Echo:
    """A TCP server on ``ip`` that answers every connection with its name."""

    def __init__(self, name: str, ip: str) -> None:
        answer = name.encode()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.sendall(answer)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer((ip, 0), Handler)
        self.ip, self.port = ip, self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reach(ip: str, port: int) -> str:
    try:
        with socket.create_connection((ip, port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(64).decode()
    except OSError:
        return ""


@pytest.fixture(scope="module")
def env(api: APICluster, root: Path) -> Iterator[tuple[k8s.CoreV1Api, k8s.DiscoveryV1Api]]:
    cm = ControllerManagerProcess(api, root, "cm-mirror", "--controllers",
                                  "endpoints,endpointslice,endpointslicemirroring")
    proxy = Component(api, root, "proxy", "--node-name", "n1", "--node-ip", NODE_IP,
                      health=f"{NODE_IP}:{free_port_on(NODE_IP)}")
    try:
        cm.wait_ready()
        proxy.wait_ready()
        c = k8s_config.new_client_from_config(config_file=str(api.kubeconfig))
        core = k8s.CoreV1Api(c)
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NS)))
        yield core, k8s.DiscoveryV1Api(c)
        assert not cm.errors(), cm.errors()
    finally:
        cm.stop()
        proxy.stop()


def mirrored(disc: k8s.DiscoveryV1Api, svc: str) -> list[k8s.V1EndpointSlice]:
    return disc.list_namespaced_endpoint_slice(
        NS, label_selector=f"kubernetes.io/service-name={svc},{MANAGED_BY}={MIRROR}").items


def all_slices(disc: k8s.DiscoveryV1Api, svc: str) -> list[k8s.V1EndpointSlice]:
    return disc.list_namespaced_endpoint_slice(NS, label_selector=f"kubernetes.io/service-name={svc}").items


def endpoints_body(name: str, ready: list[tuple[str, str]], not_ready: list[str], port: int,
                   labels: dict[str, str] | None = None) -> k8s.V1Endpoints:
    return k8s.V1Endpoints(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels or {"team": "ext"}),
        subsets=[k8s.V1EndpointSubset(
            addresses=[k8s.V1EndpointAddress(ip=ip, node_name="n1", hostname=host) for ip, host in ready],
            not_ready_addresses=[k8s.V1EndpointAddress(ip=ip) for ip in not_ready] or None,
            ports=[k8s.CoreV1EndpointPort(name="tcp", port=port, protocol="TCP")])])


def test_selectorless_service_is_mirrored_and_routed(env: tuple[k8s.CoreV1Api, k8s.DiscoveryV1Api]) -> None:
    core, disc = env
    first = Echo("first", "127.0.0.1")
    second = Echo("second", pod_ip(POD))
    try:
        svc = core.create_namespaced_service(NS, k8s.V1Service(
            metadata=k8s.V1ObjectMeta(name="ext"),
            spec=k8s.V1ServiceSpec(ports=[k8s.V1ServicePort(name="tcp", port=80, target_port=first.port)])))
        cluster_ip = svc.spec.cluster_ip
        ep = core.create_namespaced_endpoints(NS, endpoints_body(
            "ext", [("127.0.0.1", "h1")], ["2001:db8::7"], first.port))

        def shaped() -> bool:
            got = sorted(mirrored(disc, "ext"), key=lambda s: s.address_type)
            return len(got) == 2 and got[0].endpoints is not None and got[1].endpoints is not None
        wait_for(shaped, 30, "two mirrored slices")
        v4, v6 = sorted(mirrored(disc, "ext"), key=lambda s: s.address_type)
        assert v4.address_type == "IPv4" and v6.address_type == "IPv6"
        for sl in (v4, v6):
            assert sl.metadata.name.startswith("ext-")
            assert sl.metadata.labels == {"team": "ext", "kubernetes.io/service-name": "ext", MANAGED_BY: MIRROR}
            (owner,) = sl.metadata.owner_references
            assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Endpoints", "ext", ep.metadata.uid, True)
            assert [(p.name, p.port, p.protocol) for p in sl.ports] == [("tcp", first.port, "TCP")]
        (e4,) = v4.endpoints
        assert e4.addresses == ["127.0.0.1"] and e4.conditions.ready is True
        assert (e4.node_name, e4.hostname) == ("n1", "h1")
        (e6,) = v6.endpoints
        assert e6.addresses == ["2001:db8::7"] and e6.conditions.ready is False
        # The endpoints controller leaves the hand-made Endpoints alone; the slice controller adds nothing.
        assert core.read_namespaced_endpoints("ext", NS).subsets[0].addresses[0].ip == "127.0.0.1"
        assert len(all_slices(disc, "ext")) == 2

        # Through the real proxy: ClusterIP:80 reaches our socket.
        wait_for(lambda: reach(cluster_ip, 80) == "first", 30, "ClusterIP reaches the first socket")

        # Address change: the slice follows and so does the traffic.
        core.replace_namespaced_endpoints("ext", NS, endpoints_body("ext", [(second.ip, "h2")], [], second.port))
        wait_for(lambda: [(s.address_type, [e.addresses[0] for e in s.endpoints or []], s.ports[0].port)
                          for s in mirrored(disc, "ext")] == [("IPv4", [second.ip], second.port)],
                 30, "slice follows the address change")
        wait_for(lambda: reach(cluster_ip, 80) == "second", 30, "ClusterIP reaches the second socket")

        # skip-mirror removes the mirrored slices; removing the label brings them back.
        core.patch_namespaced_endpoints("ext", NS, {"metadata": {"labels": {
            "endpointslice.kubernetes.io/skip-mirror": "true"}}})
        wait_for(lambda: not mirrored(disc, "ext"), 30, "skip-mirror removes the slices")
        core.patch_namespaced_endpoints("ext", NS, {"metadata": {"labels": {
            "endpointslice.kubernetes.io/skip-mirror": None}}})
        wait_for(lambda: len(mirrored(disc, "ext")) == 1, 30, "slices back without skip-mirror")

        # Deleting the Endpoints deletes the slices.
        core.delete_namespaced_endpoints("ext", NS)
        wait_for(lambda: not all_slices(disc, "ext"), 30, "slices gone with the Endpoints")
        wait_for(lambda: reach(cluster_ip, 80) == "", 30, "no backend any more")
    finally:
        first.close()
        second.close()


def test_service_gaining_a_selector_stops_mirroring(env: tuple[k8s.CoreV1Api, k8s.DiscoveryV1Api]) -> None:
    core, disc = env
    core.create_namespaced_service(NS, k8s.V1Service(
        metadata=k8s.V1ObjectMeta(name="gain"), spec=k8s.V1ServiceSpec(ports=[k8s.V1ServicePort(port=80)])))
    core.create_namespaced_endpoints(NS, endpoints_body("gain", [("10.9.0.1", "")], [], 80))
    wait_for(lambda: len(mirrored(disc, "gain")) == 1, 30, "mirrored")
    core.patch_namespaced_service("gain", NS, {"spec": {"selector": {"app": "gain"}}})
    # The mirrored slice goes; the endpointslice controller's own (empty) slice replaces it.
    wait_for(lambda: not mirrored(disc, "gain"), 30, "mirrored slice removed")
    wait_for(lambda: [s.metadata.labels[MANAGED_BY] for s in all_slices(disc, "gain")] ==
             ["endpointslice-controller.k8s.io"], 30, "the slice controller's slice")

    # An Endpoints without any Service is not mirrored; creating the Service starts it.
    core.create_namespaced_endpoints(NS, endpoints_body("late", [("10.9.0.2", "")], [], 81))
    core.create_namespaced_service(NS, k8s.V1Service(
        metadata=k8s.V1ObjectMeta(name="late"), spec=k8s.V1ServiceSpec(ports=[k8s.V1ServicePort(port=81)])))
    wait_for(lambda: len(mirrored(disc, "late")) == 1, 30, "mirrored once the Service exists")
    core.delete_namespaced_service("late", NS)
    wait_for(lambda: not mirrored(disc, "late"), 30, "slices removed with the Service")
