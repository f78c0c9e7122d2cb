"""DaemonSets: one pod per eligible node (selectors, affinity, taints and tolerations), nodes joining and
leaving, and a rolling update that keeps at most maxUnavailable nodes without an available pod."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.apicluster import KUBECTL, APICluster
from tests.integration.test_controller_support import (PodWatch, Rest, SimKubelet, controller_env, pod_template,
                                                       wait_for)

NS = "ds-test"
NODES = ["ds-n1", "ds-n2", "ds-n3"]
LATE = "ds-n4"
DS = f"/apis/apps/v1/namespaces/{NS}/daemonsets"


@pytest.fixture(scope="module")
def env(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rest, SimKubelet]]:
    with controller_env(api, tmp_path_factory.mktemp("cm"), namespace=NS, nodes=NODES,
                        controllers="daemonset", ready_delay=0.3) as (rest, kubelet, _):
        kubelet.nodes.append(LATE)  # its Node object comes later
        rest.merge("/api/v1/nodes/ds-n2", {"metadata": {"labels": {"role": "edge"}}})
        rest.merge("/api/v1/nodes/ds-n3", {"spec": {"taints": [{"key": "dedicated", "value": "db",
                                                                 "effect": "NoSchedule"}]}})
        yield rest, kubelet


def daemonset(rest: Rest, name: str, **pod_spec: object) -> dict:
    return rest.call("POST", DS, {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
                                  "spec": {"selector": {"matchLabels": {"ds": name}},
                                           "template": pod_template({"ds": name}, **pod_spec)}})


def placement(rest: Rest, name: str) -> dict[str, str]:
    return {p["spec"]["nodeName"]: p["metadata"]["name"]
            for p in rest.items(f"/api/v1/namespaces/{NS}/pods")
            if (p["metadata"].get("labels") or {}).get("ds") == name and not p["metadata"].get("deletionTimestamp")}


def status(rest: Rest, name: str) -> dict:
    return (rest.get(f"{DS}/{name}") or {}).get("status") or {}


def test_one_pod_per_eligible_node(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    daemonset(rest, "agent")
    wait_for(lambda: set(placement(rest, "agent")) == {"ds-n1", "ds-n2"}, 30, "pods on the untainted nodes")
    wait_for(lambda: status(rest, "agent").get("numberReady") == 2, 30, "2 ready")
    st = status(rest, "agent")
    assert st["desiredNumberScheduled"] == 2 and st["currentNumberScheduled"] == 2
    assert st["numberMisscheduled"] == 0 and st["updatedNumberScheduled"] == 2
    pod = rest.get(f"/api/v1/namespaces/{NS}/pods/{placement(rest, 'agent')['ds-n1']}")
    tolerated = {t["key"] for t in pod["spec"]["tolerations"]}
    assert {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable",
            "node.kubernetes.io/unschedulable"} <= tolerated
    assert pod["metadata"]["labels"]["controller-revision-hash"]
    # Tolerating the taint adds the third node.
    rest.call("PATCH", f"{DS}/agent", {"spec": {"template": {"spec": {"tolerations": [
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]}}}},
        content_type="application/merge-patch+json")
    wait_for(lambda: set(placement(rest, "agent")) == set(NODES), 60, "a pod on every node")
    # A node joins: it gets a pod; it leaves: its pod goes.
    rest.node(LATE)
    wait_for(lambda: LATE in placement(rest, "agent"), 30, "a pod on the new node")
    rest.call("DELETE", f"/api/v1/nodes/{LATE}")
    wait_for(lambda: LATE not in placement(rest, "agent"), 30, "the pod of the removed node deleted")


def test_node_selector_limits_the_nodes(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    daemonset(rest, "edge", nodeSelector={"role": "edge"})
    wait_for(lambda: set(placement(rest, "edge")) == {"ds-n2"}, 30, "only the edge node")
    rest.merge("/api/v1/nodes/ds-n1", {"metadata": {"labels": {"role": "edge"}}})
    wait_for(lambda: set(placement(rest, "edge")) == {"ds-n1", "ds-n2"}, 30, "a relabelled node joins")
    rest.merge("/api/v1/nodes/ds-n1", {"metadata": {"labels": {"role": None}}})
    wait_for(lambda: set(placement(rest, "edge")) == {"ds-n2"}, 30, "and leaves again")


def test_rolling_update_one_node_at_a_time(env: tuple[Rest, SimKubelet], api: APICluster) -> None:
    rest, _ = env
    daemonset(rest, "roll", tolerations=[{"operator": "Exists"}])
    wait_for(lambda: status(rest, "roll").get("numberAvailable") == 3, 30, "3 available")
    watch = PodWatch(api, NS, {"ds": "roll"}).start()
    try:
        watch.arm()
        before = placement(rest, "roll")
        rest.call("PATCH", f"{DS}/roll", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "nginx:2"}]}}}}, content_type="application/strategic-merge-patch+json")

        def done() -> bool:
            st, d = status(rest, "roll"), rest.get(f"{DS}/roll")
            return (st.get("observedGeneration") == d["metadata"]["generation"] and st.get("updatedNumberScheduled") == 3
                    and st.get("numberAvailable") == 3)

        wait_for(done, 60, "the rollout")
        after = placement(rest, "roll")
        assert set(after) == set(before) and not set(after.values()) & set(before.values())
        assert watch.min_ready is not None and watch.min_ready >= 2, watch.min_ready  # maxUnavailable 1 of 3
        assert watch.max_pods <= 3
    finally:
        watch.stop()
    if KUBECTL is not None:
        out = api.kubectl("-n", NS, "rollout", "status", "daemonset/roll", "--timeout=30s").stdout
        assert "successfully rolled out" in out
        history = api.kubectl("-n", NS, "rollout", "history", "daemonset/roll").stdout
        assert "1 " in history and "2 " in history
