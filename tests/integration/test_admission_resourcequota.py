"""ResourceQuota against real API servers: the ledger in status.used, releases, and concurrency
across two replicas (never more objects than ``hard``)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import pytest

from tests.harness.apicluster import KUBECTL, APICluster


def make_ns(api: APICluster, name: str) -> str:
    code, body, _ = api.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201, body
    return f"/api/v1/namespaces/{name}"


def quota(api: APICluster, ns: str, name: str, hard: dict, **spec: object) -> dict:
    code, body, _ = api.request("POST", ns + "/resourcequotas", {"metadata": {"name": name},
                                                                 "spec": {"hard": hard, **spec}})
    assert code == 201, body
    return body


def used(api: APICluster, ns: str, name: str) -> dict:
    code, body, _ = api.request("GET", f"{ns}/resourcequotas/{name}")
    assert code == 200, body
    return body["status"]["used"]


def pod(name: str, requests: dict | None = None, limits: dict | None = None) -> dict:
    c: dict = {"name": "app", "image": "busybox:1.36"}
    if requests or limits:
        c["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [c]}}


def test_pod_count_is_enforced_and_released(api: APICluster) -> None:
    ns = make_ns(api, "rq-pods")
    q = quota(api, ns, "pods", {"pods": "2"})
    assert q["status"] == {"hard": {"pods": "2"}, "used": {"pods": "0"}}
    for name in ("p1", "p2"):
        code, body, _ = api.request("POST", ns + "/pods", pod(name))
        assert code == 201, body
    assert used(api, ns, "pods") == {"pods": "2"}
    code, body, _ = api.request("POST", ns + "/pods", pod("p3"))
    assert code == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('pods "p3" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, '
                               'limited: pods=2')
    # Deleting a pod frees its share at once.
    code, _, _ = api.request("DELETE", ns + "/pods/p1")
    assert code == 200
    assert used(api, ns, "pods") == {"pods": "1"}
    code, body, _ = api.request("POST", ns + "/pods", pod("p3"))
    assert code == 201, body
    # A pod that finished (Succeeded/Failed) no longer counts.
    code, p2, _ = api.request("GET", ns + "/pods/p2")
    p2["status"]["phase"] = "Succeeded"
    code, body, _ = api.request("PUT", ns + "/pods/p2/status", p2)
    assert code == 200, body
    assert used(api, ns, "pods") == {"pods": "1"}
    code, body, _ = api.request("POST", ns + "/pods", pod("p4"))
    assert code == 201, body
    # ... and deleting it later does not free anything twice.
    code, _, _ = api.request("DELETE", ns + "/pods/p2")
    assert code == 200
    assert used(api, ns, "pods") == {"pods": "2"}


def test_compute_resources_and_required_requests(api: APICluster) -> None:
    ns = make_ns(api, "rq-compute")
    quota(api, ns, "compute", {"requests.cpu": "1", "limits.memory": "1Gi", "cpu": "1"})
    code, body, _ = api.request("POST", ns + "/pods", pod("bare"))
    assert code == 403
    assert body["message"] == ('pods "bare" is forbidden: failed quota: compute: must specify cpu for: app; '
                               'limits.memory for: app; requests.cpu for: app')
    code, body, _ = api.request("POST", ns + "/pods", pod("a", {"cpu": "600m"}, {"memory": "512Mi"}))
    assert code == 201, body
    assert used(api, ns, "compute") == {"requests.cpu": "600m", "limits.memory": "512Mi", "cpu": "600m"}
    code, body, _ = api.request("POST", ns + "/pods", pod("b", {"cpu": "500m"}, {"memory": "256Mi"}))
    assert code == 403
    assert body["message"] == ('pods "b" is forbidden: exceeded quota: compute, requested: cpu=500m,requests.cpu=500m, '
                               'used: cpu=600m,requests.cpu=600m, limited: cpu=1,requests.cpu=1')
    code, body, _ = api.request("POST", ns + "/pods", pod("c", {"cpu": "400m"}, {"memory": "256Mi"}))
    assert code == 201, body
    assert used(api, ns, "compute") == {"requests.cpu": "1", "limits.memory": "768Mi", "cpu": "1"}


def test_object_counts_services_and_storage(api: APICluster) -> None:
    ns = make_ns(api, "rq-objects")
    quota(api, ns, "objects", {"configmaps": "1", "count/secrets": "1", "services.nodeports": "1",
                               "requests.storage": "3Gi", "persistentvolumeclaims": "2"})
    assert api.request("POST", ns + "/configmaps", {"metadata": {"name": "c1"}})[0] == 201
    code, body, _ = api.request("POST", ns + "/configmaps", {"metadata": {"name": "c2"}})
    assert code == 403 and "exceeded quota: objects, requested: configmaps=1, used: configmaps=1, limited: configmaps=1" \
        in body["message"]
    assert api.request("POST", ns + "/secrets", {"metadata": {"name": "s1"}})[0] == 201
    assert api.request("POST", ns + "/secrets", {"metadata": {"name": "s2"}})[0] == 403
    np = {"metadata": {"name": "np"}, "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80}]}}
    assert api.request("POST", ns + "/services", np)[0] == 201
    np2 = {"metadata": {"name": "np2"}, "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80}]}}
    code, body, _ = api.request("POST", ns + "/services", np2)
    assert code == 403 and "services.nodeports=1" in body["message"]
    cluster_ip = {"metadata": {"name": "plain"}, "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}}
    assert api.request("POST", ns + "/services", cluster_ip)[0] == 201

    def claim(name: str, size: str) -> dict:
        return {"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                     "resources": {"requests": {"storage": size}}}}

    assert api.request("POST", ns + "/persistentvolumeclaims", claim("d1", "2Gi"))[0] == 201
    code, body, _ = api.request("POST", ns + "/persistentvolumeclaims", claim("d2", "2Gi"))
    assert code == 403 and "requested: requests.storage=2Gi, used: requests.storage=2Gi, limited: requests.storage=3Gi" \
        in body["message"]
    # Growing a claim on update is checked too.
    code, d1, _ = api.request("GET", ns + "/persistentvolumeclaims/d1")
    d1["spec"]["resources"]["requests"]["storage"] = "4Gi"
    code, body, _ = api.request("PUT", ns + "/persistentvolumeclaims/d1", d1)
    assert code == 403 and "exceeded quota: objects" in body["message"]
    assert used(api, ns, "objects") == {"configmaps": "1", "count/secrets": "1", "services.nodeports": "1",
                                        "requests.storage": "2Gi", "persistentvolumeclaims": "1"}


def test_usage_is_counted_when_the_quota_is_created_and_rolled_back_on_failed_writes(api: APICluster) -> None:
    ns = make_ns(api, "rq-existing")
    for i in range(3):
        assert api.request("POST", ns + "/configmaps", {"metadata": {"name": f"c{i}"}})[0] == 201
    q = quota(api, ns, "late", {"count/configmaps": "5", "resourcequotas": "3"})
    assert q["status"]["used"] == {"count/configmaps": "3", "resourcequotas": "1"}
    # A create that fails after admission (already exists, invalid) hands its reservation back.
    code, _, _ = api.request("POST", ns + "/configmaps", {"metadata": {"name": "c0"}})
    assert code == 409
    code, _, _ = api.request("POST", ns + "/configmaps", {"metadata": {"name": "Not_Valid"}})
    assert code == 422
    # Dry runs are checked but not charged.
    code, _, _ = api.request("POST", ns + "/configmaps?dryRun=All", {"metadata": {"name": "dry"}})
    assert code == 201
    assert used(api, ns, "late")["count/configmaps"] == "3"
    # Raising hard keeps the ledger; a new entry is computed from what exists.
    code, q, _ = api.request("GET", ns + "/resourcequotas/late")
    q["spec"]["hard"]["count/configmaps"] = "10"
    q["spec"]["hard"]["count/secrets"] = "4"
    code, body, _ = api.request("PUT", ns + "/resourcequotas/late", q)
    assert code == 200, body
    assert body["status"]["hard"]["count/configmaps"] == "10"
    assert body["status"]["used"]["count/configmaps"] == "3"
    assert body["status"]["used"]["count/secrets"] == "0"


def test_scoped_quota_counts_only_matching_pods(api: APICluster) -> None:
    ns = make_ns(api, "rq-scopes")
    quota(api, ns, "besteffort", {"pods": "1"}, scopes=["BestEffort"])
    assert api.request("POST", ns + "/pods", pod("be1"))[0] == 201
    assert api.request("POST", ns + "/pods", pod("be2"))[0] == 403
    assert api.request("POST", ns + "/pods", pod("burstable", {"cpu": "100m"}))[0] == 201
    assert used(api, ns, "besteffort") == {"pods": "1"}


def test_malformed_quotas_are_invalid(api: APICluster) -> None:
    ns = make_ns(api, "rq-bad")
    for spec, text in [({"hard": {"pods": "lots"}}, 'spec.hard[pods]: Invalid value: "lots": quantities must match'),
                       ({"hard": {"pods": "-1"}}, 'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0'),
                       ({"hard": {"pods": "1"}, "scopes": ["Sometimes"]}, 'spec.scopes[0]: Unsupported value: "Sometimes"')]:
        code, body, _ = api.request("POST", ns + "/resourcequotas", {"metadata": {"name": "bad"}, "spec": spec})
        assert code == 422, body
        assert text in body["message"], body["message"]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_describe_quota_shows_usage(api: APICluster) -> None:
    ns = make_ns(api, "rq-describe")
    quota(api, ns, "shown", {"pods": "4", "requests.cpu": "2"})
    assert api.request("POST", ns + "/pods", pod("x", {"cpu": "250m"}))[0] == 201
    out = api.kubectl("describe", "quota", "shown", "-n", "rq-describe").stdout
    lines = {tuple(line.split()) for line in out.splitlines()}
    assert ("pods", "1", "4") in lines and ("requests.cpu", "250m", "2") in lines, out


# ---------------------------------------------------------------------- two replicas, many clients

@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APICluster]:
    cluster = APICluster(tmp_path_factory.mktemp("quota-two"), store_size=3, replicas=2)
    cluster.start_or_close()
    yield cluster
    cluster.close()


@pytest.mark.slow
def test_concurrent_creates_on_two_replicas_never_exceed_hard(two: APICluster) -> None:
    ns = make_ns(two, "rq-race")
    hard = 7
    quota(two, ns, "race", {"pods": str(hard), "count/configmaps": str(hard)})
    time.sleep(0.5)  # let both replicas' caches see the quota (the live fallback covers only "none yet")

    def create(n: int) -> int:
        path, body = ((ns + "/pods", pod(f"p{n}")) if n % 2 == 0
                      else (ns + "/configmaps", {"metadata": {"name": f"c{n}"}}))
        code, out, _ = two.request("POST", path, body, i=n % 4 // 2)
        assert code in (201, 403), out
        if code == 403:
            assert "exceeded quota: race" in out["message"], out
        return code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(create, range(64)))
    code, pods, _ = two.request("GET", ns + "/pods")
    code, cms, _ = two.request("GET", ns + "/configmaps", i=1)
    assert len(pods["items"]) == hard, [p["metadata"]["name"] for p in pods["items"]]
    assert len(cms["items"]) == hard
    assert codes.count(201) == 2 * hard
    assert used(two, ns, "race") == {"pods": str(hard), "count/configmaps": str(hard)}
    # Freed capacity is usable from either replica.
    victims = [p["metadata"]["name"] for p in pods["items"][:3]]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda v: two.request("DELETE", f"{ns}/pods/{v[1]}", i=v[0] % 2), enumerate(victims)))
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda n: two.request("POST", ns + "/pods", pod(f"again{n}"), i=n % 2)[0], range(16)))
    assert codes.count(201) == 3
    code, pods, _ = two.request("GET", ns + "/pods")
    assert len(pods["items"]) == hard
