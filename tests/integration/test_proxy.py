"""The service proxy as a real process: ClusterIP, NodePort and LoadBalancer (TCP and UDP), against a real API server.

The API server allocates ClusterIPs from a loopback /16 (``--service-cluster-ip-range``), the
proxy listens there and on its node address; "pods" are backend processes on other loopback
addresses, and EndpointSlices are written by the test (the endpoints controller is not involved).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.apicluster import APICluster
from tests.integration.test_proxy_support import api, backend, root  # noqa: F401 - fixtures
from tests.integration.test_proxy_support import (Component, create_service, endpoint, ensure_namespace, free_port_on,
                                                  loopback_net, must, pod_ip, put_slice, wait_for, who)

CIDR, NODE_IP, POD = loopback_net()
HTTP = [{"name": "http", "port": 8080, "protocol": "TCP"}]


@pytest.fixture(scope="module")
def proxy(api: APICluster, root: Path) -> Iterator[Component]:
    comp = Component(api, root, "proxy", "--node-name", "n1", "--node-ip", NODE_IP,
                     "--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
                     "--leader-elect-retry-period", "0.5", health=f"{NODE_IP}:{free_port_on(NODE_IP)}")
    comp.wait_ready()
    yield comp
    comp.stop()
    print(comp.logs()[-3000:])


def lb_ip(api: APICluster, ns: str, name: str) -> str | None:
    svc = must(api.request("GET", f"/api/v1/namespaces/{ns}/services/{name}"))
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ingress[0]["ip"] if ingress else None


class RequestLoop:
    """New connections to ``urls`` in turn from a thread, until stopped (at most ``limit`` requests / ``seconds``)."""

    def __init__(self, urls: list[str], *, limit: int = 20000, seconds: float = 120.0) -> None:
        self.urls, self.limit, self.seconds = urls, limit, seconds
        self.answers: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        i = 0
        while not self._stop.is_set() and i < self.limit and time.monotonic() < deadline:
            url = self.urls[i % len(self.urls)]
            i += 1
            try:
                self.answers.append(who(url))
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                self.failures.append(f"{url}: {exc!r}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def test_service_reachable_through_cluster_ip_node_port_and_load_balancer_while_endpoints_replaced(
        api: APICluster, proxy: Component, backend: Any) -> None:
    ns = "swap"
    ensure_namespace(api, ns)
    old = backend("old")
    svc = create_service(api, ns, "web", [{"name": "http", "port": 80, "targetPort": 8080}], type="LoadBalancer")
    cluster_ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    assert cluster_ip.startswith(CIDR.split(".0.0/")[0] + ".")
    put_slice(api, ns, "web", [endpoint(old.ip)], HTTP)
    published = wait_for(lambda: lb_ip(api, ns, "web"), 20, "load balancer status")
    assert published == NODE_IP
    urls = [f"http://{cluster_ip}:80/", f"http://{NODE_IP}:{node_port}/", f"http://{published}:80/"]
    for url in urls:
        wait_for(lambda: who(url) == "old", 20, f"{url} served by old")

    established = http.client.HTTPConnection(cluster_ip, 80, timeout=5)
    established.request("GET", "/before")
    assert json.loads(established.getresponse().read())["name"] == "old"

    loop = RequestLoop(urls)
    try:
        new = backend("new")
        put_slice(api, ns, "web", [endpoint(new.ip)], HTTP)
        for url in urls:
            wait_for(lambda: who(url) == "new", 20, f"{url} served by new")
        # The connection opened before the change still reaches the old endpoint.
        established.request("GET", "/after")
        assert json.loads(established.getresponse().read())["name"] == "old"
        established.close()
        old.stop()
        for url in urls:
            assert who(url) == "new"
        wait_for(lambda: loop.answers.count("new") >= 30, 30, "traffic after the swap")
    finally:
        loop.stop()
    assert loop.failures == []
    assert set(loop.answers) <= {"old", "new"} and "new" in loop.answers


def test_refused_endpoint_is_retried_on_the_next_and_no_endpoint_resets(api: APICluster, proxy: Component,
                                                                      backend: Any) -> None:
    ns = "retry"
    ensure_namespace(api, ns)
    live = backend("live")
    dead_ip = pod_ip(POD)  # nothing listens there: connects are refused
    svc = create_service(api, ns, "web", [{"name": "http", "port": 80, "targetPort": 8080}])
    url = f"http://{svc['spec']['clusterIP']}:80/"
    put_slice(api, ns, "web", [endpoint(dead_ip), endpoint(live.ip)], HTTP)
    wait_for(lambda: who(url) == "live", 20, "service served")
    assert [who(url) for _ in range(20)] == ["live"] * 20
    wait_for(lambda: "pilot_proxy_endpoint_connect_errors_total{service=\"retry/web:http/TCP\"}"
             in proxy.get("/metrics")[1], 10, "connect errors counted")

    put_slice(api, ns, "web", [], HTTP)

    def refused() -> bool:
        try:
            who(url, timeout=2)
        except (ConnectionError, http.client.RemoteDisconnected):
            return True
        except OSError as exc:
            return "reset" in str(exc).lower() or "refused" in str(exc).lower()
        return False

    wait_for(refused, 20, "connections refused without endpoints")


def test_udp_through_cluster_ip(api: APICluster, proxy: Component, backend: Any) -> None:
    ns = "udp"
    ensure_namespace(api, ns)
    first = backend("u1", udp_port=5353)
    svc = create_service(api, ns, "dns", [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}])
    addr = (svc["spec"]["clusterIP"], 53)
    ports = [{"name": "dns", "port": 5353, "protocol": "UDP"}]
    put_slice(api, ns, "dns", [endpoint(first.ip)], ports)

    def ask(sock: socket.socket, text: bytes) -> bytes | None:
        sock.sendto(text, addr)
        try:
            data, source = sock.recvfrom(2048)
        except OSError:
            return None
        assert source == addr  # answers come from the address the client talked to
        return data

    kept = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    kept.settimeout(0.5)
    try:
        wait_for(lambda: ask(kept, b"ping") == b"u1:ping", 20, "udp answer from u1")
        assert [ask(kept, f"n{i}".encode()) for i in range(5)] == [f"u1:n{i}".encode() for i in range(5)]
        second = backend("u2", udp_port=5353)
        put_slice(api, ns, "dns", [endpoint(second.ip)], ports)

        def fresh() -> bytes | None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.5)
                return ask(s, b"hello")

        wait_for(lambda: fresh() == b"u2:hello", 20, "new sessions go to u2")
        # The old session's endpoint left the service: its next datagram goes to the new endpoint.
        wait_for(lambda: ask(kept, b"again") == b"u2:again", 20, "the old session moves to u2")
    finally:
        kept.close()


def test_session_affinity_client_ip(api: APICluster, proxy: Component, backend: Any) -> None:
    ns = "affinity"
    ensure_namespace(api, ns)
    a, b = backend("a"), backend("b")
    svc = create_service(api, ns, "web", [{"name": "http", "port": 80, "targetPort": 8080}],
                         sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})
    url = f"http://{svc['spec']['clusterIP']}:80/"
    put_slice(api, ns, "web", [endpoint(a.ip), endpoint(b.ip)], HTTP)
    wait_for(lambda: who(url) in ("a", "b"), 20, "service served")
    answers = {who(url) for _ in range(20)}
    assert len(answers) == 1

    svc = must(api.request("GET", f"/api/v1/namespaces/{ns}/services/web"))
    svc["spec"]["sessionAffinity"] = "None"
    svc["spec"].pop("sessionAffinityConfig", None)
    must(api.request("PUT", f"/api/v1/namespaces/{ns}/services/web", svc))
    wait_for(lambda: {who(url) for _ in range(10)} == {"a", "b"}, 20, "round robin once affinity is off")


def test_load_balancer_ports_conflict_and_type_change(api: APICluster, proxy: Component, backend: Any) -> None:
    ns = "lb"
    ensure_namespace(api, ns)
    web = backend("lbweb")
    ports = [{"name": "http", "port": 8181, "targetPort": 8080}]
    create_service(api, ns, "first", ports, type="LoadBalancer")
    put_slice(api, ns, "first", [endpoint(web.ip)], HTTP)
    assert wait_for(lambda: lb_ip(api, ns, "first"), 20, "first published") == NODE_IP
    wait_for(lambda: who(f"http://{NODE_IP}:8181/") == "lbweb", 20, "first served on the node address")
    create_service(api, ns, "second", ports, type="LoadBalancer")
    wait_for(lambda: any(r.get("event") == "lb_pending" and r.get("service") == f"{ns}/second"
                         for r in proxy.records()), 20, "second left pending")
    assert lb_ip(api, ns, "second") is None

    must(api.request("DELETE", f"/api/v1/namespaces/{ns}/services/first"))
    assert wait_for(lambda: lb_ip(api, ns, "second"), 20, "second published once the port is free") == NODE_IP

    svc = must(api.request("GET", f"/api/v1/namespaces/{ns}/services/second"))
    svc["spec"]["type"] = "ClusterIP"
    for port in svc["spec"]["ports"]:
        port.pop("nodePort", None)
    svc["spec"].pop("allocateLoadBalancerNodePorts", None)
    svc["spec"].pop("externalTrafficPolicy", None)
    must(api.request("PUT", f"/api/v1/namespaces/{ns}/services/second", svc))
    wait_for(lambda: lb_ip(api, ns, "second") is None, 20, "status cleared when no longer a LoadBalancer")


def test_health_and_metrics(proxy: Component) -> None:
    assert proxy.get("/healthz") == (200, "ok")
    status, text = proxy.get("/metrics")
    assert status == 200
    for name in ("pilot_proxy_connections_total", "pilot_proxy_listeners", "pilot_proxy_endpoints",
                 "leader_election_master_status"):
        assert name in text


def test_two_proxies_on_one_host_share_cluster_ips(api: APICluster, proxy: Component, root: Path,
                                                   backend: Any) -> None:
    ns = "shared"
    ensure_namespace(api, ns)
    web = backend("s1")
    other_ip = NODE_IP.rsplit(".", 1)[0] + "." + str(int(NODE_IP.rsplit(".", 1)[1]) % 250 + 1)
    second = Component(api, root, "proxy", "--node-name", "n2", "--node-ip", other_ip, "--no-lb-allocator",
                       health=f"{other_ip}:{free_port_on(other_ip)}")
    try:
        second.wait_ready()
        svc = create_service(api, ns, "web", [{"name": "http", "port": 80, "targetPort": 8080}], type="NodePort")
        put_slice(api, ns, "web", [endpoint(web.ip)], HTTP)
        node_port = svc["spec"]["ports"][0]["nodePort"]
        urls = [f"http://{svc['spec']['clusterIP']}:80/", f"http://{NODE_IP}:{node_port}/",
                f"http://{other_ip}:{node_port}/"]
        for url in urls:
            wait_for(lambda: who(url) == "s1", 20, f"{url} served")
        for comp in (proxy, second):
            wait_for(lambda: any(r.get("event") == "listen" and r.get("listen") == f"{svc['spec']['clusterIP']}:80/TCP"
                                 for r in comp.records()), 10, "both proxies listen on the ClusterIP")
            assert not any(r.get("event") == "listen_failed" for r in comp.records())
        second.kill()  # the first proxy still serves the cluster address
        assert [who(urls[0]) for _ in range(10)] == ["s1"] * 10
    finally:
        second.stop()


def test_proxy_comes_back_after_kill_9(api: APICluster, proxy: Component, backend: Any) -> None:
    ns = "restart"
    ensure_namespace(api, ns)
    web = backend("r1")
    svc = create_service(api, ns, "web", [{"name": "http", "port": 80, "targetPort": 8080}], type="NodePort")
    put_slice(api, ns, "web", [endpoint(web.ip)], HTTP)
    urls = [f"http://{svc['spec']['clusterIP']}:80/", f"http://{NODE_IP}:{svc['spec']['ports'][0]['nodePort']}/"]
    for url in urls:
        wait_for(lambda: who(url) == "r1", 20, "served before the kill")
    proxy.kill()
    proxy.start()
    proxy.wait_ready()
    for url in urls:
        wait_for(lambda: who(url) == "r1", 20, "served after the restart")
