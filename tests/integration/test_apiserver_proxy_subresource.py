"""pods/proxy, services/proxy and nodes/proxy: HTTP through the API server to a backend.

A real API server; the backend is an HTTP server this test runs on 127.0.0.1, named as a pod's IP,
a service's EndpointSlice endpoint and a node's InternalIP. Driven with kubectl 1.32 (`get --raw`
and `kubectl proxy`, as the Kubernetes Basics tutorial browses a pod) and raw requests.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.harness.apicluster import KUBECTL, APICluster


class Echo(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.dumps({"method": self.command, "path": self.path,
                           "body": self.rfile.read(length).decode() if length else "",
                           "authorization": self.headers.get("Authorization", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Backend", "echo")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_pod_service_and_node_proxy(api: APICluster, backend: int) -> None:
    ns = f"px-{uuid.uuid4().hex[:6]}"
    assert api.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})[0] == 201
    base = f"/api/v1/namespaces/{ns}"

    # A pod with an IP: its port, the path and the query go through; the caller's token does not.
    code, pod, _ = api.request("POST", base + "/pods", {"metadata": {"name": "web"},
                                                       "spec": {"containers": [{"name": "c", "image": "x"}]}})
    assert code == 201
    pod["status"] = {"phase": "Running", "podIP": "127.0.0.1"}
    assert api.request("PUT", base + "/pods/web/status", pod)[0] == 200
    code, got, headers = api.request("GET", base + f"/pods/web:{backend}/proxy/hello/there?x=1&y=2")
    assert code == 200 and got["method"] == "GET" and got["path"] == "/hello/there?x=1&y=2"
    assert got["authorization"] == "" and headers.get("X-Backend") == "echo"
    code, got, _ = api.request("POST", base + f"/pods/http:web:{backend}/proxy/submit", {"a": 1})
    assert code == 200 and got["method"] == "POST" and json.loads(got["body"]) == {"a": 1}
    # Without a path the backend gets "/".
    assert api.request("GET", base + f"/pods/web:{backend}/proxy")[1]["path"] == "/"

    # A service: a ready endpoint of the named (or numbered) port, from its EndpointSlices.
    svc = {"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend}]}}
    assert api.request("POST", base + "/services", svc)[0] == 201
    code, status, _ = api.request("GET", base + "/services/web:http/proxy/")
    assert code == 503 and "no endpoints available" in status["message"]
    eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
           "addressType": "IPv4", "ports": [{"name": "http", "port": backend, "protocol": "TCP"}],
           "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}
    assert api.request("POST", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", eps)[0] == 201
    for ident in ("web:http", "web:80", "web"):
        code, got, _ = api.request("GET", base + f"/services/{ident}/proxy/index.html")
        assert code == 200 and got["path"] == "/index.html", ident
    assert api.request("GET", base + "/services/web:nope/proxy/")[0] == 503
    assert api.request("GET", base + "/services/absent/proxy/")[0] == 404

    # A node: the caller's token is forwarded (a kubelet authorizes the caller itself).
    code, node, _ = api.request("POST", "/api/v1/nodes", {"metadata": {"name": f"{ns}-node"}})
    assert code == 201
    try:
        node["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}
        assert api.request("PUT", f"/api/v1/nodes/{ns}-node/status", node)[0] == 200
        code, got, _ = api.request("GET", f"/api/v1/nodes/http:{ns}-node:{backend}/proxy/metrics")
        assert code == 200 and got["path"] == "/metrics" and got["authorization"].startswith("Bearer ")
    finally:
        api.request("DELETE", f"/api/v1/nodes/{ns}-node")

    # Discovery lists the subresources, as upstream.
    resources = {r["name"]: r for r in api.request("GET", "/api/v1")[1]["resources"]}
    assert {"pods/proxy", "services/proxy", "nodes/proxy"} <= set(resources)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_get_raw_and_kubectl_proxy(api: APICluster, backend: int) -> None:
    ns = f"px-{uuid.uuid4().hex[:6]}"
    api.kubectl("create", "namespace", ns)
    code, pod, _ = api.request("POST", f"/api/v1/namespaces/{ns}/pods",
                               {"metadata": {"name": "app"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
    pod["status"] = {"phase": "Running", "podIP": "127.0.0.1"}
    assert api.request("PUT", f"/api/v1/namespaces/{ns}/pods/app/status", pod)[0] == 200
    raw = api.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/pods/app:{backend}/proxy/raw").stdout
    assert json.loads(raw)["path"] == "/raw"

    assert KUBECTL is not None
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(api.kubeconfig), "proxy", "--port=0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}/api/v1/namespaces/{ns}/pods/app:{backend}/proxy/through"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert json.loads(resp.read())["path"] == "/through"
    finally:
        proc.kill()
        proc.wait(timeout=10)
