"""``--runtime fake --fake-nodes N``: N nodes in one kubelet process (KWOK-like), against a real API server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kubelet.runtime.fake import ANNOTATION_EXIT_AFTER
from tests.harness.apicluster import APICluster
from tests.integration.test_kubelet import Env, KubeletProcess, cstatus, running_ready, wait_for

NODES = 5


@pytest.fixture(scope="module")
def fake(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletProcess]:
    k = KubeletProcess(api, tmp_path_factory.mktemp("fake") / "root", "fk", "--fake-nodes", str(NODES),
                       "--fake-start-delay", "0.3", "--lease-interval", "2", "--capacity", "cpu=2,memory=4Gi,pods=20",
                       runtime="fake")
    try:
        k.wait_ready()
        yield k
    finally:
        k.cleanup()


def test_fake_nodes_register_with_leases(api: APICluster, fake: KubeletProcess) -> None:
    names = [f"fk-{i}" for i in range(NODES)]
    nodes = {n["metadata"]["name"]: n for n in api.request("GET", "/api/v1/nodes?labelSelector=type%3Dkwok")[1]["items"]}
    assert set(names) <= set(nodes)
    cidrs = {nodes[n]["spec"]["podCIDR"] for n in names}
    assert len(cidrs) == NODES
    for n in names:
        assert nodes[n]["status"]["nodeInfo"]["containerRuntimeVersion"] == "fake://0.1.0"
        assert {c["type"]: c["status"] for c in nodes[n]["status"]["conditions"]}["Ready"] == "True"
    leases = api.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")[1]["items"]
    wait_for(lambda: {lz["spec"]["holderIdentity"] for lz in api.request(
        "GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")[1]["items"]} >= set(names), 10, "leases")
    assert leases is not None


def test_fake_pods_run_become_ready_and_are_deleted(api: APICluster, fake: KubeletProcess) -> None:
    env = Env(api, f"fk-{uuid.uuid4().hex[:6]}")
    for i in range(NODES * 2):
        env.node = f"fk-{i % NODES}"
        env.pod(f"p{i}", [{"name": "c", "image": "nginx"}])
    pods = [env.wait_pod(f"p{i}", running_ready, 30) for i in range(NODES * 2)]
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == len(pods) and all(ip.startswith("10.") for ip in ips)
    assert all(cstatus(p)["containerID"].startswith("fake://") for p in pods)
    for i in range(NODES * 2):
        env.delete(f"p{i}")
    for i in range(NODES * 2):
        env.wait_gone(f"p{i}")


def test_fake_job_like_pod_completes(api: APICluster, fake: KubeletProcess) -> None:
    env = Env(api, f"fk-{uuid.uuid4().hex[:6]}", node="fk-0")
    env.create("pods", {"metadata": {"name": "job", "annotations": {ANNOTATION_EXIT_AFTER: "0.5"}},
                        "spec": {"nodeName": "fk-0", "restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}})
    pod = env.wait_pod("job", lambda p: p["status"].get("phase") == "Succeeded", 30)
    assert cstatus(pod)["state"]["terminated"]["reason"] == "Completed"


def test_fake_kubelet_restart_keeps_pods(api: APICluster, fake: KubeletProcess) -> None:
    env = Env(api, f"fk-{uuid.uuid4().hex[:6]}", node="fk-1")
    env.pod("keep", [{"name": "c", "image": "nginx"}])
    before = cstatus(env.wait_pod("keep", running_ready, 30))["containerID"]
    fake.kill()
    fake.start()
    fake.wait_ready()
    pod = env.wait_pod("keep", running_ready, 30)
    assert cstatus(pod)["containerID"] == before and cstatus(pod)["restartCount"] == 0
    code, summary = fake.get("/stats/summary?node=fk-1", api.token)
    assert code == 200 and b'"keep"' in summary


def test_kubectl_drain_reports_a_disruption_budget_and_gives_up_at_its_timeout(api: APICluster, fake: KubeletProcess) -> None:
    """kubectl drain retries an eviction a budget refuses every 5 s, saying why, until --timeout.

    It can do so only if the 429 carries no Retry-After: client-go would otherwise retry it itself
    (ten times the advertised delay per call) and drain would hang without a word.
    """
    ns = f"fk-{uuid.uuid4().hex[:6]}"
    env = Env(api, ns, node="fk-4")
    env.create("pods", {"metadata": {"name": "guarded", "labels": {"app": "guarded"}},
                        "spec": {"nodeName": "fk-4", "containers": [{"name": "c", "image": "nginx"}]}})
    env.wait_pod("guarded", running_ready, 30)
    pdbs = f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets"
    code, pdb, _ = api.request("POST", pdbs, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                             "metadata": {"name": "keep-one"},
                                             "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}})
    assert code == 201, pdb
    pdb_path = f"{pdbs}/keep-one"
    pdb["status"] = {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}
    assert api.request("PUT", pdb_path + "/status", pdb)[0] == 200
    try:
        result = api.kubectl("drain", "fk-4", "--force", "--ignore-daemonsets", "--timeout=6s", check=False, timeout=60)
        assert result.returncode != 0
        assert "Cannot evict pod as it would violate the pod's disruption budget." in result.stdout + result.stderr
        assert env.get_pod("guarded") is not None
    finally:
        api.kubectl("uncordon", "fk-4", check=False)
