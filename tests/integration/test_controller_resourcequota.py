"""The ResourceQuota controller against a real API server and controller-manager: ``status.used`` is
recounted from the objects in the namespace, so a ledger that drifted (edited by hand, a quota over
objects the admission plugin never charged) is corrected, and quotas still hold under concurrent
creates while it runs."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import pytest

from tests.harness.apicluster import APICluster
from tests.integration.test_controller_support import Rest, controller_env, wait_for

NS = "rqc"
BASE = f"/api/v1/namespaces/{NS}"


@pytest.fixture(scope="module")
def rest(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rest]:
    with controller_env(api, tmp_path_factory.mktemp("cm"), namespace=NS, nodes=[], bind=False,
                        controllers="resourcequota", cm_args=("--resource-quota-sync-period", "2")) as (r, _, _):
        yield r


def pod(name: str, cpu: str = "") -> dict:
    c: dict = {"name": "app", "image": "busybox:1.36"}
    if cpu:
        c["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [c]}}


def used(rest: Rest, name: str, base: str = BASE) -> dict:
    return ((rest.get(f"{base}/resourcequotas/{name}") or {}).get("status") or {}).get("used") or {}


def set_used(rest: Rest, name: str, values: dict, base: str = BASE) -> None:
    """What a crash between a commit and its ledger update (or a stray client) leaves: wrong numbers."""
    q = rest.call("GET", f"{base}/resourcequotas/{name}")
    q["status"]["used"] = values
    rest.call("PUT", f"{base}/resourcequotas/{name}/status", q)


def test_drifted_usage_is_corrected(rest: Rest) -> None:
    rest.call("POST", f"{BASE}/resourcequotas", {"metadata": {"name": "drift"},
                                                 "spec": {"hard": {"pods": "10", "requests.cpu": "4",
                                                                   "configmaps": "10"}}})
    for i in range(2):
        rest.call("POST", f"{BASE}/pods", pod(f"d{i}", "250m"))
    rest.call("POST", f"{BASE}/configmaps", {"metadata": {"name": "cm0"}})
    want = {"pods": "2", "requests.cpu": "500m", "configmaps": "1"}
    wait_for(lambda: used(rest, "drift") == want, 30, f"used {want}")
    # Too high (a kept reservation whose create never happened): lowered back.
    set_used(rest, "drift", {"pods": "7", "requests.cpu": "3", "configmaps": "5"})
    wait_for(lambda: used(rest, "drift") == want, 60, f"used back to {want}")
    # Too low (a lost ledger update): raised back.
    set_used(rest, "drift", {"pods": "0", "requests.cpu": "0", "configmaps": "0"})
    wait_for(lambda: used(rest, "drift") == want, 60, f"used back to {want}")


def test_quota_created_over_existing_objects_shows_their_usage(rest: Rest) -> None:
    rest.namespace("rqc-late")
    base = "/api/v1/namespaces/rqc-late"
    for i in range(3):
        rest.call("POST", f"{base}/pods", pod(f"p{i}"))
    rest.call("POST", f"{base}/secrets", {"metadata": {"name": "s0"}})
    rest.call("POST", f"{base}/serviceaccounts", {"metadata": {"name": "sa0"}})
    rest.call("POST", f"{base}/resourcequotas", {"metadata": {"name": "late"},
                                                 "spec": {"hard": {"pods": "10", "count/secrets": "10",
                                                                   "count/serviceaccounts": "10"}}})
    # A drift on a kind no informer watches (count/serviceaccounts) is recounted by a list.
    set_used(rest, "late", {"pods": "0", "count/secrets": "0", "count/serviceaccounts": "0"}, base)
    sas = len(rest.items(f"{base}/serviceaccounts"))
    want = {"pods": "3", "count/secrets": "1", "count/serviceaccounts": str(sas)}
    wait_for(lambda: used(rest, "late", base) == want, 60, f"used {want}")


def test_deleted_and_finished_pods_free_usage(rest: Rest) -> None:
    rest.namespace("rqc-free")
    base = "/api/v1/namespaces/rqc-free"
    rest.call("POST", f"{base}/resourcequotas", {"metadata": {"name": "free"},
                                                 "spec": {"hard": {"pods": "10", "count/pods": "10"}}})
    for i in range(4):
        rest.call("POST", f"{base}/pods", pod(f"p{i}"))
    wait_for(lambda: used(rest, "free", base) == {"pods": "4", "count/pods": "4"}, 30, "4 pods counted")
    # The ledger says more than is real, then pods go away and finish: the controller counts the truth.
    set_used(rest, "free", {"pods": "9", "count/pods": "9"}, base)
    rest.call("DELETE", f"{base}/pods/p0?gracePeriodSeconds=0")
    p1 = rest.call("GET", f"{base}/pods/p1")
    p1["status"]["phase"] = "Succeeded"
    rest.call("PUT", f"{base}/pods/p1/status", p1)
    # p1 finished: it keeps its object count (count/pods) but not its `pods`.
    wait_for(lambda: used(rest, "free", base) == {"pods": "2", "count/pods": "3"}, 60, "pods=2 count/pods=3")


def test_quota_holds_under_concurrent_creates_with_the_controller_running(rest: Rest) -> None:
    rest.namespace("rqc-race")
    base = "/api/v1/namespaces/rqc-race"
    hard = 6
    rest.call("POST", f"{base}/resourcequotas", {"metadata": {"name": "race"},
                                                 "spec": {"hard": {"pods": str(hard), "count/configmaps": str(hard)}}})
    api = rest.api

    def create(n: int) -> int:
        path, body = ((f"{base}/pods", pod(f"p{n}")) if n % 2 == 0
                      else (f"{base}/configmaps", {"metadata": {"name": f"c{n}"}}))
        code, out, _ = api.request("POST", path, body)
        assert code in (201, 403), out
        return code

    for round_ in range(3):  # create, free some, create again: the controller syncs all along
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            list(pool.map(create, range(round_ * 100, round_ * 100 + 48)))
        pods = rest.items(f"{base}/pods")
        cms = rest.items(f"{base}/configmaps")
        assert len(pods) <= hard and len(cms) <= hard, (len(pods), len(cms))
        for p in pods[:2]:
            rest.call("DELETE", f"{base}/pods/{p['metadata']['name']}?gracePeriodSeconds=0")
    pods = rest.items(f"{base}/pods")
    cms = rest.items(f"{base}/configmaps")
    assert len(cms) == hard
    want = {"pods": str(len(pods)), "count/configmaps": str(hard)}
    wait_for(lambda: used(rest, "race", base) == want, 60, f"used {want}")
