"""Node death: a node whose kubelet stops renewing its Lease goes Ready=Unknown, gets the unreachable
taints, its pods are evicted after their toleration and replaced on live nodes; the taints go away when
the Lease is renewed again. Short grace periods through the controller-manager's flags. Also the pod
garbage collector: pods of deleted nodes and finished pods beyond the threshold."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.apicluster import APICluster
from tests.integration.test_controller_deployment import deployment, rolled_out
from tests.integration.test_controller_support import Rest, SimKubelet, controller_env, pod_template, wait_for

NS = "node-test"
NODES = ["nl-n1", "nl-n2", "nl-n3"]
FLAGS = ("--node-monitor-grace-period", "3", "--node-monitor-period", "0.5",
         "--default-unreachable-toleration-seconds", "2", "--pod-gc-period", "0.5", "--terminated-pod-gc-threshold", "2")


@pytest.fixture(scope="module")
def env(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rest, SimKubelet]]:
    with controller_env(api, tmp_path_factory.mktemp("cm"), namespace=NS, nodes=NODES,
                        controllers="replicaset,deployment,nodelifecycle,podgc", cm_args=FLAGS,
                        lease_interval=0.5) as (rest, kubelet, _):
        yield rest, kubelet


def node(rest: Rest, name: str) -> dict:
    n = rest.get(f"/api/v1/nodes/{name}")
    assert n is not None
    return n


def conditions(n: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (n.get("status") or {}).get("conditions") or []}


def taint_keys(n: dict) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (n.get("spec") or {}).get("taints") or []}


UNREACHABLE = {("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/unreachable", "NoSchedule")}


def test_dead_node_is_tainted_and_its_pods_replaced(env: tuple[Rest, SimKubelet]) -> None:
    rest, kubelet = env
    rest.call("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", deployment("web", 6, ns=NS))
    wait_for(lambda: rolled_out(rest, "web", NS), 60, "rollout")
    pods = rest.items(f"/api/v1/namespaces/{NS}/pods")
    victim = "nl-n1"
    on_victim = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == victim}
    assert on_victim, "the round-robin binding put pods on every node"
    # A pod that tolerates the unreachable taint forever stays where it is.
    rest.call("POST", f"/api/v1/namespaces/{NS}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stubborn"},
        "spec": {**pod_template({})["spec"], "nodeName": victim,
                 "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                  "effect": "NoExecute"}]}})
    wait_for(lambda: (rest.get(f"/api/v1/namespaces/{NS}/pods/stubborn") or {}).get("status", {}).get("phase")
             == "Running", 30, "the stubborn pod running")

    kubelet.kill_node(victim)
    wait_for(lambda: conditions(node(rest, victim))["Ready"]["status"] == "Unknown", 30, "Ready=Unknown")
    ready = conditions(node(rest, victim))["Ready"]
    assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
    wait_for(lambda: UNREACHABLE <= taint_keys(node(rest, victim)), 30, "the unreachable taints")
    noexec = next(t for t in node(rest, victim)["spec"]["taints"] if t["effect"] == "NoExecute")
    assert noexec.get("timeAdded")
    # Evicted after the (default) toleration of 2 s; the Deployment gets its 6 pods back on live nodes.

    def replaced() -> bool:
        live = [p for p in rest.items(f"/api/v1/namespaces/{NS}/pods")
                if p["metadata"].get("labels", {}).get("app") == "web" and not p["metadata"].get("deletionTimestamp")]
        return len(live) == 6 and all(p["spec"].get("nodeName") != victim for p in live) and \
            rolled_out(rest, "web", NS)

    wait_for(replaced, 60, "pods replaced on live nodes")
    for name in on_victim:
        gone = rest.get(f"/api/v1/namespaces/{NS}/pods/{name}")
        assert gone is None or gone["metadata"].get("deletionTimestamp"), name
    stubborn = rest.get(f"/api/v1/namespaces/{NS}/pods/stubborn")
    assert stubborn is not None and not stubborn["metadata"].get("deletionTimestamp")

    # The node controller's events about it, under the node's own uid (upstream's node controller).
    events = rest.items(f"/api/v1/namespaces/default/events?fieldSelector=involvedObject.name={victim}")
    by_reason = {e["reason"]: e for e in events if e["source"]["component"] == "node-controller"}
    assert by_reason["RegisteredNode"]["message"] == f"Node {victim} event: Registered Node {victim} in Controller"
    assert by_reason["NodeNotReady"]["message"] == f"Node {victim} status is now: NodeNotReady"
    assert by_reason["NodeNotReady"]["involvedObject"]["uid"] == node(rest, victim)["metadata"]["uid"]

    # The kubelet comes back: the lease is renewed, the taints go, the node is Ready again.
    kubelet.revive_node(victim)
    wait_for(lambda: not (UNREACHABLE & taint_keys(node(rest, victim))), 30, "the taints removed")
    wait_for(lambda: conditions(node(rest, victim))["Ready"]["status"] == "True", 30, "Ready again")
    rest.call("DELETE", f"/api/v1/namespaces/{NS}/pods/stubborn", {"gracePeriodSeconds": 0})


def test_user_no_execute_taints_evict_untolerating_pods(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    target = "nl-n3"
    for name, tolerations in (("plain", []), ("tolerant", [{"key": "maintenance", "operator": "Exists"}]),
                              ("brief", [{"key": "maintenance", "operator": "Exists", "effect": "NoExecute",
                                          "tolerationSeconds": 1}])):
        rest.call("POST", f"/api/v1/namespaces/{NS}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {**pod_template({})["spec"], "nodeName": target, "tolerations": tolerations}})
    n = node(rest, target)
    rest.merge(f"/api/v1/nodes/{target}", {"spec": {"taints": [*(n["spec"].get("taints") or []),
                                                               {"key": "maintenance", "effect": "NoExecute"}]},
                                           "metadata": {"resourceVersion": n["metadata"]["resourceVersion"]}})

    def terminating(name: str) -> bool:
        p = rest.get(f"/api/v1/namespaces/{NS}/pods/{name}")
        return p is None or bool(p["metadata"].get("deletionTimestamp"))

    wait_for(lambda: terminating("plain"), 30, "the untolerating pod evicted")
    wait_for(lambda: terminating("brief"), 30, "the pod with tolerationSeconds evicted after it")
    assert not terminating("tolerant")
    n = node(rest, target)
    rest.merge(f"/api/v1/nodes/{target}", {"spec": {"taints": [t for t in n["spec"]["taints"]
                                                               if t["key"] != "maintenance"] or None}})
    rest.call("DELETE", f"/api/v1/namespaces/{NS}/pods/tolerant", {"gracePeriodSeconds": 0})


def test_pod_gc_removes_pods_of_missing_nodes_and_old_finished_pods(env: tuple[Rest, SimKubelet]) -> None:
    rest, kubelet = env
    base = f"/api/v1/namespaces/{NS}/pods"
    rest.call("POST", base, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ghost-pod"},
                             "spec": {**pod_template({})["spec"], "nodeName": "no-such-node"}})
    wait_for(lambda: rest.get(f"{base}/ghost-pod") is None, 30, "the pod of a missing node deleted")
    kubelet.outcome = lambda pod: "Succeeded" if pod["metadata"]["name"].startswith("done-") else None
    try:
        for i in range(4):
            rest.call("POST", base, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"done-{i}"},
                                     "spec": {**pod_template({})["spec"], "nodeName": "nl-n2"}})

        def finished() -> list[str]:
            return [p["metadata"]["name"] for p in rest.items(base)
                    if p["metadata"]["name"].startswith("done-") and p["status"].get("phase") == "Succeeded"]

        wait_for(lambda: len(finished()) == 2 and len([p for p in rest.items(base)
                                                        if p["metadata"]["name"].startswith("done-")]) == 2,
                 30, "only the threshold of finished pods kept")
    finally:
        kubelet.outcome = lambda pod: None
