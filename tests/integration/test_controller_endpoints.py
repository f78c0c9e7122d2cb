"""Endpoints and EndpointSlices from Services and pods, through a real controller-manager and API server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.apicluster import APICluster
from tests.integration.test_controller_support import Rest, SimKubelet, controller_env, pod_template, wait_for

NS = "ep-test"
NODES = ["ep-n1", "ep-n2"]
SVC = f"/api/v1/namespaces/{NS}/services"
EP = f"/api/v1/namespaces/{NS}/endpoints"
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"
RS = f"/apis/apps/v1/namespaces/{NS}/replicasets"
PODS = f"/api/v1/namespaces/{NS}/pods"


@pytest.fixture(scope="module")
def env(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rest, SimKubelet]]:
    with controller_env(api, tmp_path_factory.mktemp("cm"), namespace=NS, nodes=NODES,
                        controllers="replicaset,endpoints,endpointslice") as (rest, kubelet, _):
        yield rest, kubelet


def service(rest: Rest, name: str, selector: dict | None, ports: list[dict], **spec: object) -> dict:
    body: dict = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"team": "t"}},
                  "spec": {"ports": ports, **spec}}
    if selector is not None:
        body["spec"]["selector"] = selector
    return rest.call("POST", SVC, body)


def replicas(rest: Rest, name: str, n: int, labels: dict, ports: list[dict] | None = None) -> None:
    rest.call("POST", RS, {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
                           "spec": {"replicas": n, "selector": {"matchLabels": labels},
                                    "template": pod_template(labels, ports=ports)}})


def endpoints(rest: Rest, name: str) -> dict | None:
    return rest.get(f"{EP}/{name}")


def slices(rest: Rest, name: str) -> list[dict]:
    return [s for s in rest.items(f"{SLICES}?labelSelector=kubernetes.io/service-name%3D{name}")]


def addresses(ep: dict | None, key: str = "addresses") -> list[dict]:
    return [a for s in (ep or {}).get("subsets") or [] for a in s.get(key) or []]


def test_endpoints_follow_ready_pods_with_named_target_ports(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    service(rest, "web", {"app": "web"}, [{"name": "http", "port": 80, "targetPort": "web"},
                                          {"name": "metrics", "port": 9090, "targetPort": 9100}])
    replicas(rest, "web", 3, {"app": "web", "tier": "rs"}, ports=[{"name": "web", "containerPort": 8080}])
    wait_for(lambda: len(addresses(endpoints(rest, "web"))) == 3, 30, "3 ready addresses")
    ep = endpoints(rest, "web")
    assert ep["metadata"]["labels"] == {"team": "t"}
    (subset,) = ep["subsets"]
    assert sorted((p["name"], p["port"], p["protocol"]) for p in subset["ports"]) == \
        [("http", 8080, "TCP"), ("metrics", 9100, "TCP")]
    pods = {p["metadata"]["name"]: p for p in rest.items(PODS) if p["metadata"]["labels"].get("app") == "web"}
    for a in subset["addresses"]:
        pod = pods[a["targetRef"]["name"]]
        assert a["ip"] == pod["status"]["podIP"] and a["nodeName"] == pod["spec"]["nodeName"]
        assert a["targetRef"] == {"kind": "Pod", "namespace": NS, "name": pod["metadata"]["name"],
                                  "uid": pod["metadata"]["uid"]}
    # The same backends as one EndpointSlice, owned by the Service.
    wait_for(lambda: sum(len(s["endpoints"]) for s in slices(rest, "web")) == 3, 30, "3 slice endpoints")
    (sl,) = slices(rest, "web")
    assert sl["addressType"] == "IPv4" and sl["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert sorted((p["name"], p["port"]) for p in sl["ports"]) == [("http", 8080), ("metrics", 9100)]
    assert all(e["conditions"] == {"ready": True, "serving": True, "terminating": False} for e in sl["endpoints"])
    # A pod without the named port (not one of the ReplicaSet's) serves only the numeric one: a subset of its own.
    rest.call("POST", PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "no-web-port",
                                                                              "labels": {"app": "web"}},
                             "spec": pod_template({})["spec"]})
    wait_for(lambda: len(endpoints(rest, "web").get("subsets") or []) == 2, 30, "a second subset")
    other = next(s for s in endpoints(rest, "web")["subsets"] if len(s["ports"]) == 1)
    assert other["ports"][0]["port"] == 9100 and other["addresses"][0]["targetRef"]["name"] == "no-web-port"
    wait_for(lambda: len(slices(rest, "web")) == 2, 30, "a second slice for the other port set")
    # Scaled to zero: no addresses, and one empty slice.
    rest.call("DELETE", f"{PODS}/no-web-port", {"gracePeriodSeconds": 0})
    rest.merge(f"{RS}/web", {"spec": {"replicas": 0}})
    wait_for(lambda: not addresses(endpoints(rest, "web")) and not addresses(endpoints(rest, "web"),
                                                                              "notReadyAddresses"), 30, "no addresses")
    wait_for(lambda: [len(s["endpoints"] or []) for s in slices(rest, "web")] == [0], 30, "an empty slice")
    # The Service goes: so do its Endpoints and slices.
    rest.call("DELETE", f"{SVC}/web")
    wait_for(lambda: endpoints(rest, "web") is None and not slices(rest, "web"), 30, "endpoints removed")


def test_not_ready_pods_and_publish_not_ready_addresses(env: tuple[Rest, SimKubelet]) -> None:
    rest, kubelet = env
    kubelet.hold = lambda pod: pod["metadata"]["labels"].get("app") == "cold"
    try:
        service(rest, "cold", {"app": "cold"}, [{"port": 80}])
        service(rest, "cold-all", {"app": "cold"}, [{"port": 80}], publishNotReadyAddresses=True, clusterIP="None")
        replicas(rest, "cold", 2, {"app": "cold"})
        wait_for(lambda: len(addresses(endpoints(rest, "cold"), "notReadyAddresses")) == 2, 30, "2 not ready")
        assert not addresses(endpoints(rest, "cold"))
        wait_for(lambda: len(addresses(endpoints(rest, "cold-all"))) == 2, 30, "published although not ready")
        assert endpoints(rest, "cold-all")["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
        (sl,) = wait_for(lambda: [s for s in slices(rest, "cold") if len(s["endpoints"] or []) == 2], 30, "slice")
        assert all(e["conditions"]["ready"] is False for e in sl["endpoints"])
    finally:
        kubelet.hold = lambda pod: False
        kubelet.resync()
    wait_for(lambda: len(addresses(endpoints(rest, "cold"))) == 2, 30, "ready once the pods are")


def test_many_backends_are_split_into_slices_of_100(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    service(rest, "big", {"app": "big"}, [{"port": 80}])
    replicas(rest, "big", 130, {"app": "big"})
    wait_for(lambda: sorted(len(s["endpoints"] or []) for s in slices(rest, "big")) == [30, 100], 60,
             "130 endpoints in two slices")
    assert len(addresses(endpoints(rest, "big"))) == 130
    rest.merge(f"{RS}/big", {"spec": {"replicas": 20}})
    wait_for(lambda: [len(s["endpoints"] or []) for s in slices(rest, "big")] == [20], 60, "one slice again")


def test_services_without_selector_are_left_alone(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    service(rest, "external", None, [{"port": 5432}])
    manual = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external"},
              "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 5432}]}]}
    rest.call("POST", EP, manual)
    rest.merge(f"{SVC}/external", {"metadata": {"labels": {"touched": "yes"}}})
    import time

    time.sleep(1.0)
    assert addresses(endpoints(rest, "external")) == [{"ip": "10.1.2.3"}]
    assert not slices(rest, "external")
