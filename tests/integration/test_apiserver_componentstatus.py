"""``kubectl get componentstatuses``: the elected components by their Leases, the store members by status."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from tests.harness.apicluster import KUBECTL, APICluster

CS = "/api/v1/componentstatuses"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APICluster]:
    c = APICluster(Path(tmp_path_factory.mktemp("cs")), store_size=3)
    c.start_or_close()
    yield c
    c.close()


def lease(name: str, renewed: datetime, duration: int = 15) -> dict:
    return {"metadata": {"name": name}, "spec": {
        "holderIdentity": f"{name}-replica-1", "leaseDurationSeconds": duration,
        "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}


def health(cluster: APICluster) -> dict[str, dict]:
    code, body, headers = cluster.request("GET", CS)
    assert code == 200 and body["kind"] == "ComponentStatusList", body
    assert "ComponentStatus is deprecated" in headers.get("Warning", "")
    return {i["metadata"]["name"]: i["conditions"][0] for i in body["items"]}


def test_elected_components_follow_their_leases_and_members_their_status(cluster: APICluster) -> None:
    before = health(cluster)
    assert set(before) == {"scheduler", "controller-manager", "etcd-0", "etcd-1", "etcd-2"}
    assert before["scheduler"]["status"] == "False" and "kube-scheduler" in before["scheduler"]["error"]
    assert all(before[f"etcd-{i}"] == {"type": "Healthy", "status": "True", "message": "ok"} for i in range(3))
    now = datetime.now(timezone.utc)
    assert cluster.request("POST", LEASES, lease("kube-scheduler", now))[0] == 201
    assert cluster.request("POST", LEASES, lease("kube-controller-manager", now - timedelta(minutes=5)))[0] == 201
    after = health(cluster)
    assert after["scheduler"] == {"type": "Healthy", "status": "True", "message": "ok"}
    assert after["controller-manager"]["status"] == "False" and "expired" in after["controller-manager"]["error"]
    cluster.store.kill(2)
    try:
        down = health(cluster)
        assert down["etcd-2"]["status"] == "False" and down["etcd-2"]["error"]
        assert down["etcd-0"]["status"] == "True" and down["etcd-1"]["status"] == "True"
    finally:
        cluster.store.start(2)
        cluster.store.wait_ready()


def test_get_one_and_read_only(cluster: APICluster) -> None:
    code, one, _ = cluster.request("GET", f"{CS}/etcd-0")
    assert code == 200 and one["kind"] == "ComponentStatus" and one["metadata"]["name"] == "etcd-0"
    code, status, _ = cluster.request("GET", f"{CS}/nope")
    assert code == 404 and status["reason"] == "NotFound"
    code, status, _ = cluster.request("POST", CS, {"metadata": {"name": "x"}})
    assert code == 405 and status["reason"] == "MethodNotAllowed"
    assert cluster.request("GET", CS, token="")[0] == 401


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_get_cs(cluster: APICluster) -> None:
    out = cluster.kubectl("get", "cs")
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "MESSAGE", "ERROR"]
    assert any(line.split()[:3] == ["etcd-0", "Healthy", "ok"] for line in lines[1:])
    assert "v1 ComponentStatus is deprecated in v1.19+" in out.stderr
