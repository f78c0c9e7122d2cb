"""Two API server replicas on one 3-member store: one state, unique allocations, shared watches."""

from __future__ import annotations

import concurrent.futures
import json
import ssl
import threading
import time
import urllib.request

import pytest

from tests.harness.apicluster import APICluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory):
    cluster = APICluster(tmp_path_factory.mktemp("two"), store_size=3, replicas=2)
    cluster.start_or_close()
    yield cluster
    cluster.close()


def svc(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80}]}}


def test_concurrent_creates_on_both_replicas_never_share_an_ip_or_port(two: APICluster) -> None:
    def create(n: int) -> dict:
        code, body, _ = two.request("POST", "/api/v1/namespaces/default/services", svc(f"race-{n}"), i=n % 2)
        assert code == 201, body
        return body

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        services = list(pool.map(create, range(24)))
    ips = [s["spec"]["clusterIP"] for s in services]
    ports = [s["spec"]["ports"][0]["nodePort"] for s in services]
    assert len(set(ips)) == len(ips) and len(set(ports)) == len(ports)


def test_write_on_one_replica_is_seen_by_a_watch_on_the_other(two: APICluster) -> None:
    code, lst, _ = two.request("GET", "/api/v1/namespaces/default/configmaps", i=1)
    rv = lst["metadata"]["resourceVersion"]
    events: list[dict] = []

    def watch() -> None:
        req = urllib.request.Request(two.url(1) + f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}",
                                     headers={"Authorization": f"Bearer {two.token}"})
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=str(two.certs.ca_cert)),
                                    timeout=20) as resp:
            events.append(json.loads(resp.readline()))

    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.5)
    code, _, _ = two.request("POST", "/api/v1/namespaces/default/configmaps",
                             {"metadata": {"name": "cross"}, "data": {"a": "b"}}, i=0)
    assert code == 201
    t.join(timeout=20)
    assert events and events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "cross"


def test_conflict_across_replicas(two: APICluster) -> None:
    code, obj, _ = two.request("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "occ"}}, i=0)
    obj["data"] = {"v": "1"}
    assert two.request("PUT", "/api/v1/namespaces/default/configmaps/occ", obj, i=0)[0] == 200
    code, status, _ = two.request("PUT", "/api/v1/namespaces/default/configmaps/occ", obj, i=1)
    assert code == 409 and status["reason"] == "Conflict"


def test_a_killed_replica_leaves_the_other_serving(two: APICluster) -> None:
    two.kill(0)
    code, _, _ = two.request("GET", "/api/v1/namespaces", i=1)
    assert code == 200
    two.start_replica(0)
    two.wait_ready(0)
