"""The ingress controller as a real process (``python -m proxy ingress``) in front of backend processes.

Routing by host and path, the IngressClass, status, TLS from a Secret by SNI, streaming bodies, and
a bounded request loop while every backend is replaced and the old one killed with SIGKILL —
with zero failed requests.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from proxy.tls import self_signed
from tests.harness.apicluster import APICluster
from tests.integration.test_proxy_support import api, backend, root  # noqa: F401 - fixtures
from tests.integration.test_proxy_support import (Backend, Component, create_service, endpoint, ensure_namespace,
                                                  free_port_on, get_json, loopback_net, must, pod_ip, put_slice,
                                                  wait_for)

CIDR, NODE_IP, POD = loopback_net()
HTTP = [{"name": "http", "port": 8080, "protocol": "TCP"}]
ING = "/apis/networking.k8s.io/v1"


class Ingress:
    def __init__(self, comp: Component, http_port: int, https_port: int) -> None:
        self.comp, self.http_port, self.https_port = comp, http_port, https_port

    def url(self, path: str = "/") -> str:
        return f"http://{NODE_IP}:{self.http_port}{path}"

    def get(self, host: str, path: str = "/", headers: dict[str, str] | None = None) -> dict[str, Any]:
        return get_json(self.url(path), headers={"Host": host, **(headers or {})})

    def who(self, host: str, path: str = "/") -> str:
        return str(self.get(host, path)["name"])


@pytest.fixture(scope="module")
def ingress(api: APICluster, root: Path) -> Iterator[Ingress]:
    http_port, https_port = free_port_on(NODE_IP), free_port_on(NODE_IP)
    comp = Component(api, root, "ingress", "--bind", f"{NODE_IP}:{http_port}", "--tls-bind", f"{NODE_IP}:{https_port}",
                     "--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
                     "--leader-elect-retry-period", "0.5", health=f"{NODE_IP}:{free_port_on(NODE_IP)}")
    comp.wait_ready()
    yield Ingress(comp, http_port, https_port)
    comp.stop()
    print(comp.logs()[-3000:])


def service_with(api: APICluster, ns: str, name: str, *backends: Backend) -> None:
    """A Service ``name`` (port 80 named http → 8080) whose EndpointSlice lists ``backends``."""
    create_service(api, ns, name, [{"name": "http", "port": 80, "targetPort": 8080}])
    put_slice(api, ns, name, [endpoint(b.ip) for b in backends], HTTP)


def host_route(api: APICluster, ingress: Ingress, ns: str, host: str, backends: list[Backend], **spec: Any) -> None:
    """Namespace ``ns``, Service ``web`` over ``backends``, an Ingress ``ns`` sending ``host`` there; waits for all."""
    ensure_namespace(api, ns)
    for b in backends:
        b.wait_ready()
    service_with(api, ns, "web", *backends)
    make_ingress(api, ns, ns, {"rules": [{"host": host, "http": {"paths": [path("/", "web")]}}], **spec})
    names = {b.name for b in backends}
    wait_for(lambda: {ingress.who(host) for _ in range(3 * len(names))} == names, 20, f"{host} served")


def svc_backend(name: str, port: int | str = 80) -> dict[str, Any]:
    return {"service": {"name": name, "port": {"number": port} if isinstance(port, int) else {"name": port}}}


def path(p: str, svc: str, kind: str = "Prefix", port: int | str = 80) -> dict[str, Any]:
    return {"path": p, "pathType": kind, "backend": svc_backend(svc, port)}


def make_ingress(api: APICluster, ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": ns},
            "spec": spec}
    return must(api.request("POST", f"{ING}/namespaces/{ns}/ingresses", body))


def ingress_status(api: APICluster, ns: str, name: str) -> list[Any]:
    ing = must(api.request("GET", f"{ING}/namespaces/{ns}/ingresses/{name}"))
    return ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []


def test_ingress_class_is_created_as_default(api: APICluster, ingress: Ingress) -> None:
    cls = wait_for(lambda: api.request("GET", f"{ING}/ingressclasses/pilot")[0] == 200
                   and api.request("GET", f"{ING}/ingressclasses/pilot")[1], 20, "IngressClass pilot")
    assert cls["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    assert cls["spec"]["controller"] == "pilothouse.dev/ingress-controller"


def test_routing_by_host_and_path_default_backend_status_and_headers(api: APICluster, ingress: Ingress,
                                                                     backend: Any) -> None:
    ns = "routes"
    ensure_namespace(api, ns)
    a, b, c, d, e = (backend(n, wait=False) for n in "abcde")
    for bk in (a, b, c, d, e):
        bk.wait_ready()
        service_with(api, ns, f"svc-{bk.name}", bk)
    make_ingress(api, ns, "main", {
        "ingressClassName": "pilot", "defaultBackend": svc_backend("svc-d"),
        "rules": [{"host": "app.example", "http": {"paths": [path("/api", "svc-b"),
                                                             path("/api/v2/exact", "svc-a", "Exact"),
                                                             path("/", "svc-e", port="http")]}},
                  {"host": "*.wild.example", "http": {"paths": [path("/", "svc-c", "ImplementationSpecific")]}}]})
    make_ingress(api, ns, "classless", {"rules": [{"host": "other.example", "http": {"paths": [path("/", "svc-a")]}}]})
    make_ingress(api, ns, "foreign", {"ingressClassName": "nginx",
                                      "rules": [{"host": "foreign.example", "http": {"paths": [path("/", "svc-b")]}}]})

    wait_for(lambda: ingress.who("app.example", "/api") == "b", 20, "routes in place")
    expected = {
        ("app.example", "/api"): "b", ("app.example", "/api/"): "b", ("app.example", "/api/users?x=1"): "b",
        ("APP.example:1234", "/api/users"): "b",
        ("app.example", "/apiary"): "e",  # Prefix matches whole path elements only
        ("app.example", "/api/v2/exact"): "a", ("app.example", "/api/v2/exact/more"): "b",
        ("app.example", "/"): "e", ("x.wild.example", "/anything"): "c",
        ("a.b.wild.example", "/"): "d", ("wild.example", "/"): "d",  # a wildcard covers exactly one label
        ("other.example", "/"): "a",  # no class: served by the default class
        ("unknown.example", "/"): "d", ("foreign.example", "/"): "d",  # another class's Ingress is not ours
    }
    got = {(host, p): ingress.who(host, p) for host, p in expected}
    assert got == expected

    conn = http.client.HTTPConnection(NODE_IP, ingress.http_port, timeout=5)  # urllib would rewrite Connection
    conn.request("GET", "/api/echo?q=1", headers={
        "Host": "app.example", "Connection": "keep-alive, X-Hop", "X-Hop": "secret", "Keep-Alive": "timeout=5",
        "X-Forwarded-For": "10.1.2.3", "X-End-To-End": "kept"})
    seen = json.loads(conn.getresponse().read())
    conn.close()
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert seen["path"] == "/api/echo?q=1"
    assert headers["host"] == "app.example"
    assert headers["x-forwarded-host"] == "app.example"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == str(ingress.http_port)
    assert headers["x-forwarded-for"].startswith("10.1.2.3, 127.")
    assert headers["x-end-to-end"] == "kept"
    assert "x-hop" not in headers and "keep-alive" not in headers

    want = [{"ip": NODE_IP, "ports": [{"port": ingress.http_port, "protocol": "TCP"},
                                      {"port": ingress.https_port, "protocol": "TCP"}]}]
    wait_for(lambda: ingress_status(api, ns, "main") == want, 20, "status of main")
    wait_for(lambda: ingress_status(api, ns, "classless") == want, 20, "status of classless")
    assert ingress_status(api, ns, "foreign") == []

    # An Ingress that moves to another class is no longer served, and its status is taken back.
    ing = must(api.request("GET", f"{ING}/namespaces/{ns}/ingresses/classless"))
    ing["spec"]["ingressClassName"] = "nginx"
    must(api.request("PUT", f"{ING}/namespaces/{ns}/ingresses/classless", ing))
    wait_for(lambda: ingress.who("other.example") == "d", 20, "classless no longer served")
    wait_for(lambda: ingress_status(api, ns, "classless") == [], 20, "status cleared")

    status, text = ingress.comp.get("/metrics")
    assert status == 200 and 'pilot_ingress_requests_total{code="200",ingress="routes/main"}' in text


def https_get(port: int, server_name: str | None, ca: bytes | None, path: str = "/") -> tuple[dict[str, Any], dict]:
    """GET over TLS with this SNI name; returns (JSON body, peer certificate)."""
    ctx = ssl.create_default_context(cadata=ca.decode()) if ca else ssl._create_unverified_context()
    with socket.create_connection((NODE_IP, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            cert = tls.getpeercert(binary_form=not ca) if not ca else tls.getpeercert()
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name or 'none'}\r\nConnection: close\r\n\r\n".encode())
            resp = http.client.HTTPResponse(tls)
            resp.begin()
            body = resp.read()
    return (json.loads(body) if resp.status == 200 else {"status": resp.status}), cert


def test_tls_from_secret_by_sni(api: APICluster, ingress: Ingress, backend: Any) -> None:
    ns = "tls"
    ensure_namespace(api, ns)
    cert, key = self_signed("secure.example", ("secure.example",))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "secure-tls", "namespace": ns},
              "type": "kubernetes.io/tls",
              "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}}
    must(api.request("POST", f"/api/v1/namespaces/{ns}/secrets", secret))
    host_route(api, ingress, ns, "secure.example", [backend("secure", wait=False)],
               tls=[{"hosts": ["secure.example"], "secretName": "secure-tls"}])

    def served_with(ca: bytes) -> bool:
        try:
            return https_get(ingress.https_port, "secure.example", ca)[0].get("name") == "secure"
        except (OSError, ssl.SSLError):
            return False

    wait_for(lambda: served_with(cert), 20, "TLS with the secret's certificate")
    body, peer = https_get(ingress.https_port, "secure.example", cert, "/x")
    headers = {k.lower(): v for k, v in body["headers"].items()}
    assert headers["x-forwarded-proto"] == "https" and headers["host"] == "secure.example"
    assert ("commonName", "secure.example") in [pair for rdn in peer["subject"] for pair in rdn]

    # A name nobody has a certificate for gets the controller's default certificate.
    _, der = https_get(ingress.https_port, "unknown.example", None)
    default = x509.load_der_x509_certificate(der)
    assert "Pilothouse Ingress Default Certificate" in default.subject.rfc4514_string()

    # A renewed secret is served from the next handshake on.
    cert2, key2 = self_signed("secure.example", ("secure.example",))
    current = must(api.request("GET", f"/api/v1/namespaces/{ns}/secrets/secure-tls"))
    current["data"] = {"tls.crt": base64.b64encode(cert2).decode(), "tls.key": base64.b64encode(key2).decode()}
    must(api.request("PUT", f"/api/v1/namespaces/{ns}/secrets/secure-tls", current))
    wait_for(lambda: served_with(cert2), 20, "the renewed certificate")


def test_streaming_bodies_both_ways(api: APICluster, ingress: Ingress, backend: Any) -> None:
    host_route(api, ingress, "stream", "stream.example", [backend("streamer", wait=False)])

    chunks = [bytes([i % 251]) * 65536 for i in range(80)]  # 5 MiB, sent chunked (no Content-Length)
    req = urllib.request.Request(ingress.url("/upload"), data=iter(chunks), method="POST",
                                 headers={"Host": "stream.example", "Transfer-Encoding": "chunked"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        echoed = json.loads(resp.read())
    assert echoed["size"] == sum(len(c) for c in chunks)
    assert echoed["sum"] == sum(sum(c) for c in chunks) % (1 << 32)

    req = urllib.request.Request(ingress.url("/stream?chunks=80"), headers={"Host": "stream.example"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        size = 0
        while block := resp.read(1 << 16):
            size += len(block)
    assert size == 80 * 65536


def test_killed_replica_is_invisible(api: APICluster, ingress: Ingress, backend: Any) -> None:
    alive, doomed = backend("alive", wait=False), backend("doomed", wait=False)
    host_route(api, ingress, "kill", "kill.example", [alive, doomed])
    doomed.kill()  # the EndpointSlice still lists it
    assert {ingress.who("kill.example") for _ in range(30)} == {"alive"}
    post = urllib.request.Request(ingress.url("/form"), data=b"x=1", method="POST", headers={"Host": "kill.example"})
    for _ in range(6):  # a refused connect is retried whatever the method
        with urllib.request.urlopen(post, timeout=10) as resp:
            assert json.loads(resp.read())["name"] == "alive"


class Hangup:
    """An endpoint that accepts, reads the request and closes without answering (a replica dying mid-request)."""

    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.sock = socket.socket()
        self.sock.bind((ip, 8080))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_reset_before_response_is_retried_for_idempotent_requests_only(api: APICluster, ingress: Ingress,
                                                                       backend: Any) -> None:
    ns = "hangup"
    good = backend("good")
    rude = Hangup(pod_ip(POD))
    try:
        ensure_namespace(api, ns)
        create_service(api, ns, "web", [{"name": "http", "port": 80, "targetPort": 8080}])
        put_slice(api, ns, "web", [endpoint(good.ip), endpoint(rude.ip)], HTTP)
        make_ingress(api, ns, ns, {"rules": [{"host": "hangup.example", "http": {"paths": [path("/", "web")]}}]})
        wait_for(lambda: ingress.who("hangup.example") == "good", 20, "route in place")
        assert [ingress.who("hangup.example", f"/get/{i}") for i in range(10)] == ["good"] * 10
        statuses = []
        for i in range(4):
            req = urllib.request.Request(ingress.url(f"/post/{i}"), data=b"x", method="POST",
                                         headers={"Host": "hangup.example"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    statuses.append(resp.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        # The POSTs that reached the endpoint that hung up may have been seen there: not sent again.
        assert 502 in statuses and 200 in statuses and set(statuses) == {200, 502}
    finally:
        rude.close()
    text = ingress.comp.get("/metrics")[1]
    assert 'pilot_ingress_upstream_retries_total{reason="reset"}' in text


def test_zero_failed_requests_while_backends_are_replaced(api: APICluster, ingress: Ingress, backend: Any) -> None:
    ns = "rolling"
    old = [backend(f"old{i}", wait=False) for i in range(3)]
    new = [backend(f"new{i}", wait=False) for i in range(3)]
    host_route(api, ingress, ns, "roll.example", old)
    for b in new:
        b.wait_ready()

    total, workers, swap_at = 2000, 8, (300, 800, 1300)
    done = [0]
    lock = threading.Lock()
    answers: list[str] = []
    failures: list[str] = []

    def one(i: int) -> None:
        try:
            name = ingress.who("roll.example", f"/req/{i}")
            with lock:
                answers.append(name)
        except Exception as exc:  # noqa: BLE001 - every failure is a finding
            with lock:
                failures.append(f"{i}: {exc!r}")
        with lock:
            done[0] += 1

    def swapper() -> None:
        """Replace old[i] by new[i]. Rounds 0 and 2: update the slice, then SIGKILL old[i] at once (before
        the ingress may know); round 1: SIGKILL first (a crash), update the slice 100 requests later."""
        for i, at in enumerate(swap_at):
            wait_for(lambda: done[0] >= at, 120, f"{at} requests done")
            endpoints = [*new[: i + 1], *old[i + 1:]]
            if i == 1:
                old[i].kill()
                wait_for(lambda: done[0] >= at + 100, 120, f"{at + 100} requests done")
                put_slice(api, ns, "web", [endpoint(b.ip) for b in endpoints], HTTP)
            else:
                put_slice(api, ns, "web", [endpoint(b.ip) for b in endpoints], HTTP)
                old[i].kill()

    swap = threading.Thread(target=swapper, daemon=True)
    swap.start()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(total)))
    swap.join(60)
    assert not swap.is_alive()
    assert failures == []
    assert len(answers) == total
    assert {"new0", "new1", "new2"} <= set(answers)
    retried = [line for line in ingress.comp.get("/metrics")[1].splitlines()
               if line.startswith("pilot_ingress_upstream_retries_total")]
    print("\n".join(retried))
    assert retried  # the crashed replica was tried, and the failure hidden by a retry
    wait_for(lambda: {ingress.who("roll.example") for _ in range(9)} == {"new0", "new1", "new2"}, 20,
             "only new backends serve")
