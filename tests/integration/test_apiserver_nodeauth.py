"""The Node authorizer: a kubelet touches only its own Node, its own Lease and pods bound to it."""

from __future__ import annotations

import time

import pytest

from tests.harness.apicluster import APICluster


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory):
    cluster = APICluster(tmp_path_factory.mktemp("nodeauth"),
                         users={"system:node:n1": ["system:nodes"], "system:node:n2": ["system:nodes"]})
    cluster.start_or_close()
    yield cluster
    cluster.close()


def node(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def lease(name: str) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}}


def test_nodes_write_only_themselves(nodes: APICluster) -> None:
    n1 = nodes.tokens["system:node:n1"]
    assert nodes.request("POST", "/api/v1/nodes", node("n1"), token=n1)[0] == 201
    assert nodes.request("POST", "/api/v1/nodes", node("n2"), token=nodes.tokens["system:node:n2"])[0] == 201
    code, status, _ = nodes.request("PATCH", "/api/v1/nodes/n2", {"metadata": {"labels": {"x": "y"}}}, token=n1,
                                    content_type="application/merge-patch+json")
    assert code == 403 and "cannot modify node 'n2'" in status["message"]
    assert nodes.request("PATCH", "/api/v1/nodes/n1", {"metadata": {"labels": {"x": "y"}}}, token=n1,
                         content_type="application/merge-patch+json")[0] == 200
    assert nodes.request("GET", "/api/v1/nodes/n2", token=n1)[0] == 200  # reading others is fine
    assert nodes.request("DELETE", "/api/v1/nodes/n2", token=n1)[0] == 403


def test_leases_only_their_own(nodes: APICluster) -> None:
    n1 = nodes.tokens["system:node:n1"]
    base = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    assert nodes.request("POST", base, lease("n1"), token=n1)[0] == 201
    assert nodes.request("POST", base, lease("n2"), token=nodes.tokens["system:node:n2"])[0] == 201
    code, own, _ = nodes.request("GET", f"{base}/n1", token=n1)
    assert nodes.request("PUT", f"{base}/n1", own, token=n1)[0] == 200
    code, other, _ = nodes.request("GET", f"{base}/n2", token=n1)
    assert nodes.request("PUT", f"{base}/n2", other, token=n1)[0] == 403


def test_pods_only_when_bound_to_them(nodes: APICluster) -> None:
    n1 = nodes.tokens["system:node:n1"]
    for name, bound in (("on-n1", "n1"), ("on-n2", "n2")):
        nodes.request("POST", "/api/v1/namespaces/default/pods", {
            "metadata": {"name": name}, "spec": {"nodeName": bound, "containers": [{"name": "c", "image": "i"}]}})
    deadline = time.monotonic() + 10  # the authorizer reads pods from the watch cache
    while time.monotonic() < deadline and nodes.request("PATCH", "/api/v1/namespaces/default/pods/on-n1/status",
                                                        {"status": {"phase": "Running"}}, token=n1,
                                                        content_type="application/merge-patch+json")[0] != 200:
        time.sleep(0.1)
    code, status, _ = nodes.request("PATCH", "/api/v1/namespaces/default/pods/on-n2/status",
                                    {"status": {"phase": "Running"}}, token=n1,
                                    content_type="application/merge-patch+json")
    assert code == 403 and "pods bound to it" in status["message"]
    assert nodes.request("DELETE", "/api/v1/namespaces/default/pods/on-n2", token=n1)[0] == 403
    assert nodes.request("POST", "/api/v1/namespaces/default/pods", {
        "metadata": {"name": "sneaky"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}},
        token=n1)[0] == 403
    assert nodes.request("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", token=n1)[0] == 200
