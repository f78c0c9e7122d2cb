"""Garbage collector and namespace controller in a real controller-manager against a real API server:
cascading deletes (background, foreground with blockOwnerDeletion, orphan), custom resources as owners,
and a namespace deleted with its content (a restart is in test_controller_gc_restart.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.apicluster import KUBECTL, APICluster
from tests.integration.test_controller_deployment import deployment, rolled_out
from tests.integration.test_controller_support import Rest, SimKubelet, controller_env, wait_for

NS = "gc-test"
NODES = ["gc-n1", "gc-n2"]
CONTROLLERS = "replicaset,deployment,garbagecollector,namespace"
D_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments"
RS_PATH = f"/apis/apps/v1/namespaces/{NS}/replicasets"
PODS_PATH = f"/api/v1/namespaces/{NS}/pods"
CM_PATH = f"/api/v1/namespaces/{NS}/configmaps"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.gc.example.com"},
    "spec": {"group": "gc.example.com", "scope": "Namespaced",
             "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture(scope="module")
def env(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rest, SimKubelet, Path]]:
    root = tmp_path_factory.mktemp("cm")
    with controller_env(api, root, namespace=NS, nodes=NODES, controllers=CONTROLLERS,
                        cm_args=("--discovery-period", "2")) as (rest, kubelet, _):
        yield rest, kubelet, root


def ref(obj: dict, *, block: bool = False, controller: bool = False) -> dict:
    out = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
           "uid": obj["metadata"]["uid"]}
    if block:
        out["blockOwnerDeletion"] = True
    if controller:
        out["controller"] = True
    return out


def configmap(rest: Rest, name: str, owners: list[dict] | None = None, finalizers: list[str] | None = None,
              ns: str = NS) -> dict:
    meta: dict = {"name": name}
    if owners:
        meta["ownerReferences"] = owners
    if finalizers:
        meta["finalizers"] = finalizers
    return rest.call("POST", f"/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                                      "metadata": meta, "data": {"k": "v"}})


def exists(rest: Rest, path: str) -> bool:
    return rest.get(path) is not None


def app_pods(rest: Rest, app: str) -> list[dict]:
    return [p for p in rest.items(PODS_PATH) if p["metadata"].get("labels", {}).get("app") == app]


def delete(rest: Rest, path: str, policy: str | None = None) -> dict:
    body = {"kind": "DeleteOptions", "apiVersion": "v1", **({"propagationPolicy": policy} if policy else {})}
    return rest.call("DELETE", path, body, ok=(200, 202))


def test_background_cascade_deletes_replica_sets_and_pods(env: tuple[Rest, SimKubelet, Path]) -> None:
    rest, _, _ = env
    rest.call("POST", D_PATH, deployment("bg", 3, ns=NS))
    wait_for(lambda: rolled_out(rest, "bg", NS), 60, "rollout")
    assert len(app_pods(rest, "bg")) == 3
    delete(rest, f"{D_PATH}/bg")  # Background is the default
    wait_for(lambda: not exists(rest, f"{D_PATH}/bg"), 30, "the deployment gone")
    wait_for(lambda: not [rs for rs in rest.items(RS_PATH) if rs["metadata"]["labels"].get("app") == "bg"], 30,
             "its ReplicaSet collected")
    wait_for(lambda: not app_pods(rest, "bg"), 30, "its pods collected")


def test_foreground_deletes_dependents_first(env: tuple[Rest, SimKubelet, Path]) -> None:
    rest, _, _ = env
    rest.call("POST", D_PATH, deployment("fg", 2, ns=NS))
    wait_for(lambda: rolled_out(rest, "fg", NS), 60, "rollout")
    marked = delete(rest, f"{D_PATH}/fg", "Foreground")
    assert "foregroundDeletion" in marked["metadata"]["finalizers"] and marked["metadata"]["deletionTimestamp"]
    deadline = time.monotonic() + 60
    while exists(rest, f"{D_PATH}/fg"):
        assert time.monotonic() < deadline, "the deployment was never deleted"
        time.sleep(0.02)
    # Once the owner is gone, its dependents (which block it) are gone too: they went first.
    assert not app_pods(rest, "fg")
    assert not [rs for rs in rest.items(RS_PATH) if rs["metadata"]["labels"].get("app") == "fg"]


def test_foreground_waits_for_blocking_dependents_only(env: tuple[Rest, SimKubelet, Path]) -> None:
    rest, _, _ = env
    owner = configmap(rest, "fg-owner")
    configmap(rest, "fg-blocker", [ref(owner, block=True)], finalizers=["example.com/hold"])
    configmap(rest, "fg-other", [ref(owner)])
    delete(rest, f"{CM_PATH}/fg-owner", "Foreground")
    # The non-blocking dependent is deleted; the blocking one is being deleted but held by its finalizer.
    wait_for(lambda: not exists(rest, f"{CM_PATH}/fg-other"), 30, "the non-blocking dependent deleted")
    wait_for(lambda: (rest.get(f"{CM_PATH}/fg-blocker") or {}).get("metadata", {}).get("deletionTimestamp"), 30,
             "the blocking dependent marked for deletion")
    time.sleep(1.0)
    owner_now = rest.get(f"{CM_PATH}/fg-owner")
    assert owner_now is not None and "foregroundDeletion" in owner_now["metadata"]["finalizers"]
    rest.merge(f"{CM_PATH}/fg-blocker", {"metadata": {"finalizers": None}})
    wait_for(lambda: not exists(rest, f"{CM_PATH}/fg-owner"), 30, "the owner deleted after its blocker")


def test_orphan_keeps_dependents_without_the_owner_reference(env: tuple[Rest, SimKubelet, Path]) -> None:
    rest, _, _ = env
    rest.call("POST", D_PATH, deployment("orph", 2, ns=NS))
    wait_for(lambda: rolled_out(rest, "orph", NS), 60, "rollout")
    (rs,) = [rs for rs in rest.items(RS_PATH) if rs["metadata"]["labels"].get("app") == "orph"]
    delete(rest, f"{D_PATH}/orph", "Orphan")
    wait_for(lambda: not exists(rest, f"{D_PATH}/orph"), 30, "the deployment gone")
    kept = rest.get(f"{RS_PATH}/{rs['metadata']['name']}")
    assert kept is not None and kept["metadata"]["uid"] == rs["metadata"]["uid"]
    assert not kept["metadata"].get("ownerReferences")
    assert len([p for p in app_pods(rest, "orph") if not p["metadata"].get("deletionTimestamp")]) == 2
    # The orphaned ReplicaSet still owns and keeps its pods.
    time.sleep(1.0)
    assert len([p for p in app_pods(rest, "orph") if not p["metadata"].get("deletionTimestamp")]) == 2
    delete(rest, f"{RS_PATH}/{rs['metadata']['name']}")
    wait_for(lambda: not app_pods(rest, "orph"), 30, "pods collected with the ReplicaSet")


def test_an_owner_left_standing_keeps_a_shared_dependent(env: tuple[Rest, SimKubelet, Path]) -> None:
    rest, _, _ = env
    a, b = configmap(rest, "own-a"), configmap(rest, "own-b")
    configmap(rest, "shared", [ref(a), ref(b)])
    delete(rest, f"{CM_PATH}/own-a")
    wait_for(lambda: [r["name"] for r in (rest.get(f"{CM_PATH}/shared") or {}).get("metadata", {})
                      .get("ownerReferences", [])] == ["own-b"], 30, "the dangling reference removed")
    delete(rest, f"{CM_PATH}/own-b")
    wait_for(lambda: not exists(rest, f"{CM_PATH}/shared"), 30, "collected once no owner is left")


def test_custom_resources_own_and_are_owned(env: tuple[Rest, SimKubelet, Path]) -> None:
    rest, _, _ = env
    rest.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD, ok=(201, 409))
    path = f"/apis/gc.example.com/v1/namespaces/{NS}/gadgets"
    wait_for(lambda: rest.api.request("GET", path)[0] == 200, 30, "the CRD served")
    gadget = rest.call("POST", path, {"apiVersion": "gc.example.com/v1", "kind": "Gadget",
                                      "metadata": {"name": "g1"}, "spec": {"size": 1}})
    configmap(rest, "owned-by-gadget", [ref(gadget, controller=True)])
    # The garbage collector must discover the new type (it re-reads discovery periodically).
    delete(rest, f"{path}/g1")
    wait_for(lambda: not exists(rest, f"{CM_PATH}/owned-by-gadget"), 60, "the dependent of a custom resource")
    holder = configmap(rest, "gadget-owner")
    rest.call("POST", path, {"apiVersion": "gc.example.com/v1", "kind": "Gadget",
                             "metadata": {"name": "g2", "ownerReferences": [ref(holder)]}, "spec": {}})
    delete(rest, f"{CM_PATH}/gadget-owner")
    wait_for(lambda: not exists(rest, f"{path}/g2"), 60, "a custom resource collected")


def test_namespace_deletion_removes_its_content(env: tuple[Rest, SimKubelet, Path]) -> None:
    rest, _, _ = env
    ns = "doomed"
    rest.namespace(ns)
    rest.call("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("web", 2, ns=ns))
    wait_for(lambda: rolled_out(rest, "web", ns), 60, "rollout in the doomed namespace")
    configmap(rest, "settings", ns=ns)
    configmap(rest, "held", ns=ns, finalizers=["example.com/hold"])
    rest.call("POST", f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "s"}, "stringData": {"a": "b"}})
    rest.call("POST", f"/api/v1/namespaces/{ns}/services", {"metadata": {"name": "svc"},
                                                            "spec": {"ports": [{"port": 80}]}})
    rest.call("DELETE", f"/api/v1/namespaces/{ns}")
    # The object held by a finalizer keeps the namespace, and the conditions say why.

    def finalizers_reported() -> bool:
        conds = {c["type"]: c for c in ((rest.get(f"/api/v1/namespaces/{ns}") or {}).get("status") or {})
                 .get("conditions") or []}
        c = conds.get("NamespaceFinalizersRemaining")
        return c is not None and c["status"] == "True" and "configmaps in 1 resource instances" in c["message"]

    wait_for(finalizers_reported, 30, "NamespaceFinalizersRemaining")
    ns_obj = rest.get(f"/api/v1/namespaces/{ns}")
    assert ns_obj["status"]["phase"] == "Terminating"
    conds = {c["type"]: c for c in ns_obj["status"]["conditions"]}
    assert conds["NamespaceContentRemaining"]["status"] == "True"
    assert "configmaps has 1 resource instances" in conds["NamespaceContentRemaining"]["message"]
    for kind in ("pods", "secrets", "services"):
        assert rest.items(f"/api/v1/namespaces/{ns}/{kind}") == [], kind
    assert rest.items(f"/apis/apps/v1/namespaces/{ns}/deployments") == []
    rest.merge(f"/api/v1/namespaces/{ns}/configmaps/held", {"metadata": {"finalizers": None}})
    wait_for(lambda: not exists(rest, f"/api/v1/namespaces/{ns}"), 30, "the namespace deleted")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_delete_namespace_and_cascade_flags(env: tuple[Rest, SimKubelet, Path], api: APICluster) -> None:
    rest, _, _ = env
    ns = "kdoomed"
    rest.namespace(ns)
    rest.call("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("web", 1, ns=ns))
    wait_for(lambda: rolled_out(rest, "web", ns), 60, "rollout")
    rest.call("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("orphaned", 1, ns=ns))
    wait_for(lambda: rolled_out(rest, "orphaned", ns), 60, "rollout")
    api.kubectl("-n", ns, "delete", "deployment", "orphaned", "--cascade=orphan")
    rs = [r for r in rest.items(f"/apis/apps/v1/namespaces/{ns}/replicasets")
          if r["metadata"]["labels"]["app"] == "orphaned"]
    assert len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences")
    api.kubectl("-n", ns, "delete", "deployment", "web", "--cascade=foreground", "--timeout=60s")
    assert not [r for r in rest.items(f"/apis/apps/v1/namespaces/{ns}/replicasets")
                if r["metadata"]["labels"]["app"] == "web"]
    out = api.kubectl("delete", "namespace", ns, "--timeout=60s")
    assert f'namespace "{ns}" deleted' in out.stdout
    assert not exists(rest, f"/api/v1/namespaces/{ns}")
