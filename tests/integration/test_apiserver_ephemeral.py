"""pods/ephemeralcontainers: the only way to add an ephemeral container, which may then never change.

A write to the subresource changes ``spec.ephemeralContainers`` and nothing else; a pod create or
update may not touch it; containers may be added, not changed or removed, and get no ports, probes,
hooks or resources. (The kubelet side, ``kubectl debug``, is in test_kubelet_streams.py.)
"""

from __future__ import annotations

from typing import Any

from tests.harness.apicluster import APICluster

NS = "default"
SMP = "application/strategic-merge-patch+json"


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": "nowhere", "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "9"]}],
                     **spec}}


def _dbg(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "command": ["sh"], **extra}


def _causes(body: dict[str, Any]) -> list[str]:
    return [f"{c.get('field')}: {c.get('message')}" for c in (body.get("details") or {}).get("causes") or []]


def test_a_pod_create_may_not_carry_ephemeral_containers(api: APICluster) -> None:
    code, body, _ = api.request("POST", f"/api/v1/namespaces/{NS}/pods", _pod("eph-create", ephemeralContainers=[_dbg("d")]))
    assert code == 422, body
    assert "spec.ephemeralContainers: Forbidden: cannot be set on create" in body["message"]


def test_the_subresource_adds_containers_and_nothing_else(api: APICluster) -> None:
    base = f"/api/v1/namespaces/{NS}/pods/eph-add"
    code, _, _ = api.request("POST", f"/api/v1/namespaces/{NS}/pods", _pod("eph-add"))
    assert code == 201
    code, got, _ = api.request("GET", base + "/ephemeralcontainers")
    assert code == 200 and got["kind"] == "Pod" and not got["spec"].get("ephemeralContainers")
    patch = {"metadata": {"labels": {"sneaky": "yes"}},
             "spec": {"ephemeralContainers": [_dbg("debugger", targetContainerName="app")],
                      "activeDeadlineSeconds": 5}}
    code, pod, _ = api.request("PATCH", base + "/ephemeralcontainers", patch, content_type=SMP)
    assert code == 200, pod
    [eph] = pod["spec"]["ephemeralContainers"]
    assert eph["name"] == "debugger" and eph["targetContainerName"] == "app"
    assert eph["terminationMessagePath"] == "/dev/termination-log"  # defaulted like any container
    assert "sneaky" not in (pod["metadata"].get("labels") or {}) and "activeDeadlineSeconds" not in pod["spec"]
    # A second one is added beside the first (strategic merge on the name), with PUT this time.
    pod["spec"]["ephemeralContainers"].append(_dbg("second"))
    code, pod, _ = api.request("PUT", base + "/ephemeralcontainers", pod)
    assert code == 200, pod
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["debugger", "second"]


def test_ephemeral_containers_are_never_changed_or_removed(api: APICluster) -> None:
    base = f"/api/v1/namespaces/{NS}/pods/eph-fixed"
    code, _, _ = api.request("POST", f"/api/v1/namespaces/{NS}/pods", _pod("eph-fixed"))
    assert code == 201
    code, pod, _ = api.request("PATCH", base + "/ephemeralcontainers", {"spec": {"ephemeralContainers": [_dbg("d")]}},
                               content_type=SMP)
    assert code == 200, pod
    rv = pod["metadata"]["resourceVersion"]

    removed = {**pod, "spec": {**pod["spec"], "ephemeralContainers": []}}
    code, body, _ = api.request("PUT", base + "/ephemeralcontainers", removed)
    assert code == 422 and 'existing ephemeral containers "d" may not be removed' in body["message"], body

    changed = [{**pod["spec"]["ephemeralContainers"][0], "command": ["other"]}]
    code, body, _ = api.request("PUT", base + "/ephemeralcontainers",
                                {**pod, "spec": {**pod["spec"], "ephemeralContainers": changed}})
    assert code == 422 and 'existing ephemeral containers "d" may not be changed' in body["message"], body

    # The pod itself may not change them either.
    code, body, _ = api.request("PUT", base, {**pod, "spec": {**pod["spec"], "ephemeralContainers": []}})
    assert code == 422 and "pod updates may not change fields" in body["message"], body

    _, after, _ = api.request("GET", base)
    assert after["metadata"]["resourceVersion"] == rv and [c["name"] for c in after["spec"]["ephemeralContainers"]] == ["d"]


def test_ephemeral_containers_get_no_ports_probes_or_resources(api: APICluster) -> None:
    base = f"/api/v1/namespaces/{NS}/pods/eph-bad"
    code, _, _ = api.request("POST", f"/api/v1/namespaces/{NS}/pods", _pod("eph-bad"))
    assert code == 201
    bad = [_dbg("p", ports=[{"containerPort": 80}], readinessProbe={"tcpSocket": {"port": 80}},
                resources={"limits": {"cpu": "1"}}),
           _dbg("app"), _dbg("Bad_Name"), {"name": "noimage"}, _dbg("t", targetContainerName="missing")]
    code, body, _ = api.request("PATCH", base + "/ephemeralcontainers", {"spec": {"ephemeralContainers": bad}},
                                content_type=SMP)
    assert code == 422, body
    causes = _causes(body)
    for expected in ("spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
                     "spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
                     "spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container",
                     'spec.ephemeralContainers[1].name: Duplicate value: "app"',
                     "spec.ephemeralContainers[3].image: Required value",
                     'spec.ephemeralContainers[4].targetContainerName: Not found: "missing"'):
        assert any(c.startswith(expected) for c in causes), (expected, causes)
    assert any(c.startswith("spec.ephemeralContainers[2].name: Invalid value") for c in causes), causes
    _, after, _ = api.request("GET", base)
    assert not after["spec"].get("ephemeralContainers")


def test_unknown_pods_and_other_kinds_have_no_ephemeralcontainers(api: APICluster) -> None:
    code, _, _ = api.request("GET", f"/api/v1/namespaces/{NS}/pods/none-such/ephemeralcontainers")
    assert code == 404
    code, _, _ = api.request("GET", f"/api/v1/namespaces/{NS}/services/kubernetes/ephemeralcontainers")
    assert code == 404
