"""End to end: a Deployment's rolling update behind the ingress, with zero failed requests.

Everything is real: store and API server, scheduler, controller-manager (Deployment, ReplicaSet,
EndpointSlice, ServiceAccount controllers), a kubelet with the process runtime (each pod a Python
HTTP server on its own loopback address, readiness-probed), and the ingress controller. A bounded
request loop runs through the ingress while the Deployment's template changes; old pods are
SIGTERMed by the kubelet (Python's http.server dies at once, connections and all), new ones join
the EndpointSlice when ready. Waits are bounded polls; nothing asserts on how long anything took.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelet.runtime.process import kill_all
from tests.harness.apicluster import APICluster
from tests.integration.test_proxy_support import api, root  # noqa: F401 - fixtures
from tests.integration.test_proxy_support import (Component, create_service, ensure_namespace, free_port_on, get_json,
                                                  loopback_net, must, wait_for)

CIDR, NODE_IP, POD = loopback_net()
POD_CIDR = f"127.{int(POD.split('.')[1])}.0.0/16"  # the kubelet's pods get addresses there
NS = "rollout"
SERVER = """
import http.server, json, os
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        body = json.dumps({"name": os.environ["POD_NAME"], "version": os.environ["VERSION"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
"""


@pytest.fixture(scope="module")
def cluster(api: APICluster, root: Path) -> Iterator[dict[str, Any]]:
    procs: list[Component] = []
    kubelet_root = root / "kubelet"
    try:
        procs.append(Component(api, root, "scheduler", health=f"127.0.0.1:{free_port_on('127.0.0.1')}",
                               module="scheduler"))
        procs.append(Component(api, root, "controllers", "--controllers",
                               "deployment,replicaset,endpointslice,endpoints,serviceaccount",
                               health=f"127.0.0.1:{free_port_on('127.0.0.1')}", module="controllers"))
        procs.append(Component(api, root, "kubelet", "--node-name", "ro-1", "--runtime", "process",
                               "--root-dir", str(kubelet_root), "--pod-cidr", POD_CIDR,
                               "--capacity", "cpu=8,memory=16Gi,pods=50",
                               health=f"127.0.0.1:{free_port_on('127.0.0.1')}", module="kubelet"))
        port = free_port_on(NODE_IP)
        ingress = Component(api, root, "ingress", "--bind", f"{NODE_IP}:{port}",
                            health=f"{NODE_IP}:{free_port_on(NODE_IP)}")
        procs.append(ingress)
        ingress.wait_ready()
        wait_for(lambda: api.request("GET", "/api/v1/nodes/ro-1")[0] == 200, 60, "the node registered")
        yield {"url": f"http://{NODE_IP}:{port}/", "ingress": ingress, "procs": procs}
    finally:
        for p in procs:
            p.stop()
        kill_all(kubelet_root)
        for p in procs:
            print(f"==== {p.command}\n{p.logs()[-2000:]}")


def deployment(version: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NS},
            "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "terminationGracePeriodSeconds": 5,
                         "containers": [{
                             "name": "web", "image": "python:3.12", "command": [sys.executable, "-c", SERVER],
                             "env": [{"name": "VERSION", "value": version},
                                     {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                             "ports": [{"name": "http", "containerPort": 8080}],
                             "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}]}}}}


def rolled_out(api: APICluster) -> bool:
    dep = must(api.request("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/web"))
    st = dep.get("status") or {}
    return (st.get("observedGeneration", 0) >= dep["metadata"]["generation"] and st.get("updatedReplicas") == 3
            and st.get("readyReplicas") == 3 and st.get("replicas") == 3)


def test_rolling_update_behind_the_ingress_without_failed_requests(api: APICluster, cluster: dict[str, Any]) -> None:
    ensure_namespace(api, NS)
    create_service(api, NS, "web", [{"name": "http", "port": 80, "targetPort": "http"}])
    must(api.request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", deployment("v1")))
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": NS},
            "spec": {"rules": [{"host": "app.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}
    must(api.request("POST", f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses", body))
    url, headers = cluster["url"], {"Host": "app.example"}
    wait_for(lambda: rolled_out(api), 120, "v1 rolled out")
    wait_for(lambda: len({get_json(url, headers=headers)["name"] for _ in range(12)}) == 3, 60, "3 pods behind it")

    versions: list[str] = []
    failures: list[str] = []
    done = threading.Event()
    lock = threading.Lock()
    minimum, cap, deadline = 2000, 30000, time.monotonic() + 240

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                if len(versions) + len(failures) >= cap or (done.is_set() and len(versions) + len(failures) >= minimum):
                    return
            try:
                answer = get_json(url, headers=headers)["version"]
                with lock:
                    versions.append(answer)
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                with lock:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(versions) + len(failures) >= 200, 60, "requests before the update")
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "VERSION", "value": "v2"}]}]}}}}
    must(api.request("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/web", patch,
                     content_type="application/strategic-merge-patch+json"))
    try:
        wait_for(lambda: rolled_out(api), 180, "v2 rolled out")
        wait_for(lambda: versions[-30:] == ["v2"] * 30 if len(versions) >= 30 else False, 60, "traffic on v2 only")
    finally:
        done.set()
        for t in threads:
            t.join(60)
    retries = [line for line in cluster["ingress"].get("/metrics")[1].splitlines()
               if line.startswith("pilot_ingress_upstream_retries_total")]
    print(json.dumps({"requests": len(versions) + len(failures), "failures": len(failures),
                      "v1": versions.count("v1"), "v2": versions.count("v2"), "retries": retries}))
    assert failures == []
    assert len(versions) >= minimum
    assert {"v1", "v2"} <= set(versions)
