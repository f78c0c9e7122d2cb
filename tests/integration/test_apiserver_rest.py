"""The Kubernetes REST API over real processes: semantics clients depend on, and bad input."""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request
import uuid

import pytest

from tests.harness.apicluster import APICluster


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.27") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


NS = "/api/v1/namespaces/default"


def test_unauthenticated_and_bad_tokens_get_401(api: APICluster) -> None:
    for token in ("", "wrong"):
        code, body, _ = api.request("GET", NS + "/configmaps", token=token)
        assert code == 401 and body["kind"] == "Status" and body["reason"] == "Unauthorized"
    code, body, _ = api.request("GET", "/healthz", token="")
    assert code == 200


def test_health_endpoints_list_their_checks(api: APICluster) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        assert api.request("GET", path, token="")[:2] == (200, b"ok")
    code, body, headers = api.request("GET", "/readyz?verbose")
    assert code == 200 and headers["Content-Type"].startswith("text/plain")
    lines = body.decode().splitlines()
    assert lines[0] == "[+]ping ok" and lines[-1] == "readyz check passed"
    for check in ("etcd", "etcd-readiness", "informer-sync", "poststarthook/rbac/bootstrap-roles", "shutdown"):
        assert f"[+]{check} ok" in lines
    code, body, _ = api.request("GET", "/livez?verbose&exclude=etcd")
    assert code == 200 and "[+]etcd excluded: ok" in body.decode() and "[+]etcd ok" not in body.decode()
    assert api.request("GET", "/readyz/etcd")[:2] == (200, b"ok")
    assert api.request("GET", "/livez/shutdown")[0] == 404  # a readiness check only
    assert api.request("GET", "/readyz/etcd", token="")[0] == 401  # only the bare endpoints are public


def test_create_get_update_conflict_delete(api: APICluster) -> None:
    code, created, _ = api.request("POST", NS + "/configmaps", cm("c1", a="1"))
    assert code == 201
    meta = created["metadata"]
    assert meta["uid"] and meta["resourceVersion"].isdigit() and meta["creationTimestamp"].endswith("Z")
    code, dup, _ = api.request("POST", NS + "/configmaps", cm("c1"))
    assert code == 409 and dup["reason"] == "AlreadyExists" and dup["message"] == 'configmaps "c1" already exists'
    stale = dict(created, data={"a": "2"})
    code, updated, _ = api.request("PUT", NS + "/configmaps/c1", stale)
    assert code == 200 and int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    code, conflict, _ = api.request("PUT", NS + "/configmaps/c1", stale)
    assert code == 409 and conflict["reason"] == "Conflict"
    assert "the object has been modified" in conflict["message"]
    code, got, _ = api.request("GET", NS + "/configmaps/c1")
    assert got["data"] == {"a": "2"} and got["metadata"]["uid"] == meta["uid"]
    code, _, _ = api.request("DELETE", NS + "/configmaps/c1")
    assert code == 200
    code, missing, _ = api.request("GET", NS + "/configmaps/c1")
    assert code == 404 and missing["message"] == 'configmaps "c1" not found' and missing["details"]["kind"] == "configmaps"


def test_generate_name_and_generation(api: APICluster) -> None:
    code, obj, _ = api.request("POST", NS + "/configmaps", {"metadata": {"generateName": "gen-"}, "data": {}})
    assert code == 201 and obj["metadata"]["name"].startswith("gen-") and len(obj["metadata"]["name"]) == 9
    code, d, _ = api.request("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("gen"))
    assert d["metadata"]["generation"] == 1
    d["spec"]["replicas"] = 3
    code, d2, _ = api.request("PUT", "/apis/apps/v1/namespaces/default/deployments/gen", d)
    assert d2["metadata"]["generation"] == 2
    d2["metadata"]["labels"]["x"] = "y"
    code, d3, _ = api.request("PUT", "/apis/apps/v1/namespaces/default/deployments/gen", d2)
    assert d3["metadata"]["generation"] == 2  # metadata-only changes do not bump generation
    # status is a subresource: a PUT of the main resource cannot change it
    d3["status"] = {"replicas": 99}
    code, d4, _ = api.request("PUT", "/apis/apps/v1/namespaces/default/deployments/gen", d3)
    assert d4.get("status", {}).get("replicas") != 99
    code, d5, _ = api.request("PUT", "/apis/apps/v1/namespaces/default/deployments/gen/status", dict(d4, status={"replicas": 3}))
    assert code == 200 and d5["status"]["replicas"] == 3 and d5["metadata"]["generation"] == 2


@pytest.mark.parametrize("body,code,reason", [
    (b"{not json", 400, "BadRequest"),
    (b"[1,2]", 400, "BadRequest"),
    (json.dumps({"metadata": {"name": "Bad_Name"}}).encode(), 422, "Invalid"),
    (json.dumps({"metadata": {}}).encode(), 422, "Invalid"),
    (json.dumps({"kind": "Secret", "metadata": {"name": "x"}}).encode(), 400, "BadRequest"),
    (json.dumps({"metadata": {"name": "x", "namespace": "other"}}).encode(), 400, "BadRequest"),
    (json.dumps({"metadata": {"name": "x", "labels": {"bad key!": "v"}}}).encode(), 422, "Invalid"),
    (json.dumps({"metadata": {"name": "x"}, "bogus": 1}).encode() , 400, "BadRequest"),
])
def test_bad_creates_are_rejected_and_store_nothing(api: APICluster, body: bytes, code: int, reason: str) -> None:
    _, before, _ = api.request("GET", NS + "/configmaps")
    got, status, _ = api.request("POST", NS + "/configmaps?fieldValidation=Strict", body)
    assert got == code and status["kind"] == "Status" and status["reason"] == reason, status
    _, after, _ = api.request("GET", NS + "/configmaps")
    assert [i["metadata"]["name"] for i in after["items"]] == [i["metadata"]["name"] for i in before["items"]]


def test_invalid_has_causes(api: APICluster) -> None:
    code, status, _ = api.request("POST", NS + "/configmaps", {"metadata": {"name": "UPPER"}})
    assert code == 422
    assert status["message"].startswith('ConfigMap "UPPER" is invalid: metadata.name: Invalid value: "UPPER"')
    assert status["details"]["causes"][0]["field"] == "metadata.name"


def test_huge_body_is_413(api: APICluster) -> None:
    big = cm("big", x="y" * (4 * 1024 * 1024))
    code, status, _ = api.request("POST", NS + "/configmaps", big)
    assert code == 413 and status["reason"] == "RequestEntityTooLarge"


def test_missing_namespace_is_404(api: APICluster) -> None:
    code, status, _ = api.request("POST", "/api/v1/namespaces/nope/configmaps", cm("x"))
    assert code == 404 and status["message"] == 'namespaces "nope" not found'


def test_unknown_paths_and_methods(api: APICluster) -> None:
    assert api.request("GET", "/api/v1/nothings")[0] == 404
    assert api.request("GET", "/apis/nope/v1")[0] == 404
    code, status, _ = api.request("PUT", NS + "/configmaps", cm("x"))
    assert code == 405 and status["reason"] == "MethodNotAllowed"


def test_list_selectors_and_pagination(api: APICluster) -> None:
    for i in range(7):
        body = cm(f"page-{i}")
        body["metadata"]["labels"] = {"tier": "a" if i % 2 else "b", "page": "yes"}
        assert api.request("POST", NS + "/configmaps", body)[0] == 201
    code, lst, _ = api.request("GET", NS + "/configmaps?labelSelector=page%3Dyes,tier%20in%20(a)")
    assert sorted(i["metadata"]["name"] for i in lst["items"]) == ["page-1", "page-3", "page-5"]
    assert lst["kind"] == "ConfigMapList" and lst["metadata"]["resourceVersion"].isdigit()
    code, lst, _ = api.request("GET", NS + "/configmaps?fieldSelector=metadata.name%3Dpage-2")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["page-2"]
    names, token = [], ""
    while True:
        q = "labelSelector=page%3Dyes&limit=3" + (f"&continue={token}" if token else "")
        code, page, _ = api.request("GET", NS + "/configmaps?" + q)
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == [f"page-{i}" for i in range(7)]
    code, status, _ = api.request("GET", NS + "/configmaps?labelSelector=a%20in%20(")
    assert code == 400
    code, status, _ = api.request("GET", NS + "/configmaps?fieldSelector=spec.bogus%3Dx")
    assert code == 400 and "field label not supported" in status["message"]
    code, status, _ = api.request("GET", NS + "/configmaps?continue=garbage")
    assert code == 400
    code, empty, _ = api.request("GET", NS + "/configmaps?labelSelector=none%3Dsuch")
    assert empty["items"] == []


def test_patch_types(api: APICluster) -> None:
    api.request("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("patchme"))
    path = "/apis/apps/v1/namespaces/default/deployments/patchme"
    code, d, _ = api.request("PATCH", path, {"metadata": {"labels": {"m": "1"}}},
                             content_type="application/merge-patch+json")
    assert code == 200 and d["metadata"]["labels"]["m"] == "1"
    code, d, _ = api.request("PATCH", path, [{"op": "replace", "path": "/spec/replicas", "value": 4}],
                             content_type="application/json-patch+json")
    assert d["spec"]["replicas"] == 4
    smp = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}}
    code, d, _ = api.request("PATCH", path, smp, content_type="application/strategic-merge-patch+json")
    assert sorted(c["name"] for c in d["spec"]["template"]["spec"]["containers"]) == ["c", "side"]
    code, status, _ = api.request("PATCH", path, {"x": 1}, content_type="application/xml")
    assert code == 415
    code, status, _ = api.request("PATCH", path, [{"op": "test", "path": "/spec/replicas", "value": 99}],
                                  content_type="application/json-patch+json")
    assert code in (422, 409) and status["kind"] == "Status"
    code, status, _ = api.request("PATCH", path, {"spec": {"replicas": -1}}, content_type="application/merge-patch+json")
    assert code == 422
    code, d, _ = api.request("GET", path)
    assert d["spec"]["replicas"] == 4


def test_server_side_apply_creates_and_merges(api: APICluster) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments/ssa"
    intent = deployment("ssa", replicas=2)
    code, status, _ = api.request("PATCH", path, intent, content_type="application/apply-patch+yaml")
    assert code == 422 and "fieldManager" in status["message"]
    code, d, _ = api.request("PATCH", path + "?fieldManager=test", intent, content_type="application/apply-patch+yaml")
    assert code == 201 and d["spec"]["replicas"] == 2
    assert any(e["manager"] == "test" and e["operation"] == "Apply" for e in d["metadata"]["managedFields"])
    intent["spec"]["replicas"] = 5
    code, d, _ = api.request("PATCH", path + "?fieldManager=test", intent, content_type="application/apply-patch+yaml")
    assert code == 200 and d["spec"]["replicas"] == 5


def test_scale_subresource(api: APICluster) -> None:
    api.request("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("scaled", 1))
    path = "/apis/apps/v1/namespaces/default/deployments/scaled/scale"
    code, scale, _ = api.request("GET", path)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1 and scale["status"]["replicas"] == 0
    assert scale["status"]["selector"] == "app=scaled"
    code, scale, _ = api.request("PATCH", path, {"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
    assert code == 200 and scale["spec"]["replicas"] == 3
    code, d, _ = api.request("GET", "/apis/apps/v1/namespaces/default/deployments/scaled")
    assert d["spec"]["replicas"] == 3


def test_dry_run_stores_nothing(api: APICluster) -> None:
    code, obj, _ = api.request("POST", NS + "/configmaps?dryRun=All", cm("dry"))
    assert code == 201 and obj["metadata"]["name"] == "dry"
    assert api.request("GET", NS + "/configmaps/dry")[0] == 404


def test_services_get_unique_cluster_ips_and_node_ports(api: APICluster) -> None:
    ips, ports = set(), set()
    for i in range(5):
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}"},
               "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}}
        code, s, _ = api.request("POST", NS + "/services", svc)
        assert code == 201, s
        ips.add(s["spec"]["clusterIP"])
        ports.add(s["spec"]["ports"][0]["nodePort"])
        assert s["spec"]["ports"][0]["targetPort"] == 80 and s["spec"]["ports"][0]["protocol"] == "TCP"
    assert len(ips) == 5 and len(ports) == 5


def _watch_lines(api: APICluster, path: str, n: int, timeout: float = 15) -> list[dict]:
    req = urllib.request.Request(api.url() + path, headers={"Authorization": f"Bearer {api.token}"})
    ctx = ssl.create_default_context(cafile=str(api.certs.ca_cert))
    out: list[dict] = []
    with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
        while len(out) < n:
            line = resp.readline()
            if not line:
                break
            out.append(json.loads(line))
    return out


def test_watch_from_resource_version_and_zero(api: APICluster) -> None:
    code, lst, _ = api.request("GET", NS + "/configmaps")
    rv = lst["metadata"]["resourceVersion"]
    result: list[list[dict]] = []
    t = threading.Thread(target=lambda: result.append(_watch_lines(
        api, NS + f"/configmaps?watch=true&resourceVersion={rv}&labelSelector=w%3D1", 3)))
    t.start()
    time.sleep(0.5)
    body = cm("watched")
    body["metadata"]["labels"] = {"w": "1"}
    _, created, _ = api.request("POST", NS + "/configmaps", body)
    created["data"] = {"k": "v"}
    api.request("PUT", NS + "/configmaps/watched", created)
    api.request("DELETE", NS + "/configmaps/watched")
    t.join(timeout=20)
    events = result[0]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    # resourceVersion=0: synthetic ADDED for what exists
    api.request("POST", NS + "/configmaps", dict(cm("present"), metadata={"name": "present", "labels": {"z": "1"}}))
    first = _watch_lines(api, NS + "/configmaps?watch=1&resourceVersion=0&labelSelector=z%3D1", 1)
    assert first[0]["type"] == "ADDED" and first[0]["object"]["metadata"]["name"] == "present"


def test_watch_too_old_resource_version_is_410_event(api: APICluster) -> None:
    events = _watch_lines(api, NS + "/configmaps?watch=true&resourceVersion=1", 1)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


def test_watch_timeout_and_bookmarks(api: APICluster) -> None:
    _, lst, _ = api.request("GET", NS + "/configmaps")
    started = time.monotonic()
    events = _watch_lines(api, NS + f"/configmaps?watch=true&resourceVersion={lst['metadata']['resourceVersion']}"
                               "&allowWatchBookmarks=true&timeoutSeconds=7", 10)
    assert time.monotonic() - started < 30  # the server ended the stream (a hang would hit the test timeout)
    assert any(e["type"] == "BOOKMARK" and e["object"]["metadata"]["resourceVersion"].isdigit() for e in events)


def test_discovery(api: APICluster) -> None:
    code, agg, headers = api.request("GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    apps = next(g for g in agg["items"] if g["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["shortNames"] == ["deploy"] and "all" in deploy["categories"]
    for path in ("/api", "/api/", "/api/v1", "/api/v1/", "/apis", "/apis/apps", "/apis/apps/", "/apis/apps/v1",
                 "/version", "/version/"):
        code, body, _ = api.request("GET", path)
        assert code == 200, path
    code, v1, _ = api.request("GET", "/api/v1")
    pods = next(r for r in v1["resources"] if r["name"] == "pods")
    assert pods["singularName"] == "pod" and pods["namespaced"] is True
    assert any(r["name"] == "pods/status" and r["singularName"] == "" for r in v1["resources"])
    assert api.request("GET", "/openapi/v2")[0] == 404
    code, root, _ = api.request("GET", "/openapi/v3")
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    code, doc, _ = api.request("GET", url)
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert any(p["name"] == "fieldValidation" for p in op["parameters"])


def test_namespace_deletion_marks_terminating(api: APICluster) -> None:
    api.request("POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    code, ns, _ = api.request("DELETE", "/api/v1/namespaces/doomed")
    assert code == 200 and ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    code, status, _ = api.request("POST", "/api/v1/namespaces/doomed/configmaps", cm("late"))
    assert code == 403 and "being terminated" in status["message"]
    # the namespace controller would empty it, then finalize:
    ns["spec"]["finalizers"] = []
    code, _, _ = api.request("PUT", "/api/v1/namespaces/doomed/finalize", ns)
    assert code == 200
    assert api.request("GET", "/api/v1/namespaces/doomed")[0] == 404


def test_finalizers_hold_deletion(api: APICluster) -> None:
    body = cm("held")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    api.request("POST", NS + "/configmaps", body)
    code, obj, _ = api.request("DELETE", NS + "/configmaps/held")
    assert code == 200 and obj["metadata"]["deletionTimestamp"]
    assert api.request("GET", NS + "/configmaps/held")[0] == 200
    code, _, _ = api.request("PATCH", NS + "/configmaps/held", {"metadata": {"finalizers": None}},
                             content_type="application/merge-patch+json")
    assert code == 200
    assert api.request("GET", NS + "/configmaps/held")[0] == 404


def test_pod_binding_once(api: APICluster) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bindme"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    code, created, _ = api.request("POST", NS + "/pods", pod)
    assert code == 201 and created["spec"]["restartPolicy"] == "Always" and created["status"]["phase"] == "Pending"
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bindme"}, "target": {"kind": "Node", "name": "n1"}}
    assert api.request("POST", NS + "/pods/bindme/binding", binding)[0] == 201
    code, status, _ = api.request("POST", NS + "/pods/bindme/binding", dict(binding, target={"name": "n2"}))
    assert code == 409
    code, got, _ = api.request("GET", NS + "/pods/bindme")
    assert got["spec"]["nodeName"] == "n1"
    code, lst, _ = api.request("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")
    assert [p["metadata"]["name"] for p in lst["items"]] == ["bindme"]
    # graceful deletion of a bound pod waits for its kubelet; grace 0 deletes at once
    code, marked, _ = api.request("DELETE", NS + "/pods/bindme")
    assert code == 200 and marked["metadata"]["deletionTimestamp"] and marked["metadata"]["deletionGracePeriodSeconds"] == 30
    code, _, _ = api.request("DELETE", NS + "/pods/bindme", {"gracePeriodSeconds": 0})
    assert code == 200
    assert api.request("GET", NS + "/pods/bindme")[0] == 404
    # A bound pod that has ended (Failed or Succeeded) has nothing left to stop: deleted at once.
    for phase in ("Failed", "Succeeded"):
        name = f"ended-{phase.lower()}"
        code, ended, _ = api.request("POST", NS + "/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                                           "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}})
        assert code == 201
        ended["status"] = {"phase": phase}
        assert api.request("PUT", NS + f"/pods/{name}/status", ended)[0] == 200
        assert api.request("DELETE", NS + f"/pods/{name}")[0] == 200
        assert api.request("GET", NS + f"/pods/{name}")[0] == 404


def test_eviction_respects_disruption_budgets(api: APICluster) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "evictme", "labels": {"pdb": "yes"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    code, created_pod, _ = api.request("POST", NS + "/pods", pod)
    created_pod["status"] = {"phase": "Running"}
    assert api.request("PUT", NS + "/pods/evictme/status", created_pod)[0] == 200
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "guard"},
           "spec": {"minAvailable": 1, "selector": {"matchLabels": {"pdb": "yes"}}}}
    code, created, _ = api.request("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", pdb)
    assert code == 201
    created["status"] = {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}
    code, created, _ = api.request("PUT", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/guard/status", created)
    assert code == 200
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "evictme"}}
    code, status, headers = api.request("POST", NS + "/pods/evictme/eviction", eviction)
    assert code == 429 and status["reason"] == "TooManyRequests"
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert status["details"]["causes"] == [{"reason": "DisruptionBudget",
                                            "message": "The disruption budget guard needs 1 healthy pods and has 1 currently"}]
    # No Retry-After: client-go would retry the 429 itself and `kubectl drain` would hang silently.
    assert "retry-after" not in {k.lower() for k in headers} and "retryAfterSeconds" not in status["details"]
    assert api.request("GET", NS + "/pods/evictme")[0] == 200
    created["status"] = {"disruptionsAllowed": 1, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}
    api.request("PUT", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/guard/status", created)
    code, _, _ = api.request("POST", NS + "/pods/evictme/eviction", eviction)
    assert code == 201
    assert api.request("GET", NS + "/pods/evictme")[0] == 404
    # A pod that is not running disrupts nothing by leaving: evicted whatever the budget says.
    pod["metadata"]["name"] = "pending"
    assert api.request("POST", NS + "/pods", pod)[0] == 201
    code, created, _ = api.request("GET", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/guard")
    created["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 1, "expectedPods": 1}
    assert api.request("PUT", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/guard/status", created)[0] == 200
    eviction["metadata"]["name"] = "pending"
    assert api.request("POST", NS + "/pods/pending/eviction", eviction)[0] == 201


def test_metrics_endpoint(api: APICluster) -> None:
    code, body, _ = api.request("GET", "/metrics")
    text = body.decode() if isinstance(body, bytes) else str(body)
    assert code == 200 and "apiserver_request_total" in text and "apiserver_request_duration_seconds" in text
    assert "etcd_request_duration_seconds" in text and "apiserver_registered_watchers" in text


def test_audit_log_records_who_did_what(api: APICluster) -> None:
    api.request("POST", NS + "/configmaps", cm("audited", secret="not-in-the-log"))
    api.request("GET", NS + "/configmaps/audited", token="bad")
    deadline = time.monotonic() + 5
    events: list[dict] = []
    while time.monotonic() < deadline:
        events = [json.loads(line) for line in (api.root / "audit-0.log").read_text().splitlines()]
        if any(e.get("objectRef", {}).get("name") == "audited" and e["verb"] == "create" for e in events):
            break
        time.sleep(0.1)
    create = next(e for e in events if e.get("objectRef", {}).get("name") == "audited" and e["verb"] == "create")
    assert create["kind"] == "Event" and create["apiVersion"] == "audit.k8s.io/v1" and create["level"] == "Metadata"
    assert create["user"]["username"] == "admin" and create["responseStatus"]["code"] == 201
    assert create["objectRef"] == {"resource": "configmaps", "apiVersion": "v1", "namespace": "default", "name": "audited"}
    assert any(e["responseStatus"]["code"] == 401 for e in events)
    assert "not-in-the-log" not in (api.root / "audit-0.log").read_text()


def test_service_allocation_refusals_name_the_field(api: APICluster) -> None:
    def svc(name: str, **spec: object) -> dict:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"ports": [{"name": "a", "port": 80}], **spec}}

    code, first, _ = api.request("POST", NS + "/services", svc(
        "alloc-a", type="NodePort", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30777}]))
    assert code == 201, first
    code, status, _ = api.request("POST", NS + "/services", svc(
        "alloc-b", type="NodePort", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30777}]))
    assert code == 422 and status["reason"] == "Invalid"
    assert status["message"] == ('Service "alloc-b" is invalid: spec.ports[1].nodePort: Invalid value: 30777: '
                                 "provided port is already allocated")
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.ports[1].nodePort",
                                            "message": "Invalid value: 30777: provided port is already allocated"}]
    code, status, _ = api.request("POST", NS + "/services", svc("alloc-c", type="NodePort",
                                                                ports=[{"port": 80, "nodePort": 80}]))
    assert code == 422 and status["message"].startswith(
        'Service "alloc-c" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range.')
    taken = first["spec"]["clusterIP"]
    code, status, _ = api.request("POST", NS + "/services", svc("alloc-d", clusterIP=taken))
    assert code == 422 and status["message"] == (
        f'Service "alloc-d" is invalid: spec.clusterIPs: Invalid value: "{taken}": '
        f"failed to allocate IP {taken}: provided IP is already allocated")
    # Nothing of the refused Services was stored, and their allocations were handed back.
    assert all(api.request("GET", NS + f"/services/alloc-{n}")[0] == 404 for n in "bcd")
    assert api.request("DELETE", NS + "/services/alloc-a")[0] == 200


def test_list_options_are_validated_and_pages_count_what_remains(api: APICluster) -> None:
    ns = f"lo-{uuid.uuid4().hex[:6]}"
    assert api.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})[0] == 201
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(5):
        assert api.request("POST", cms, {"metadata": {"name": f"cm{i}", "labels": {"n": str(i)}}})[0] == 201

    code, page, _ = api.request("GET", cms + "?limit=2")
    assert code == 200 and page["metadata"]["remainingItemCount"] == 3
    code, page, _ = api.request("GET", cms + f"?limit=2&continue={page['metadata']['continue']}")
    assert code == 200 and page["metadata"]["remainingItemCount"] == 1
    code, page, _ = api.request("GET", cms + f"?limit=2&continue={page['metadata']['continue']}")
    assert code == 200 and [c["metadata"]["name"] for c in page["items"]] == ["cm4"]
    assert "remainingItemCount" not in page["metadata"] and "continue" not in page["metadata"]
    code, page, _ = api.request("GET", cms + "?limit=2&labelSelector=n")  # selectors: no count, as upstream
    assert code == 200 and "continue" in page["metadata"] and "remainingItemCount" not in page["metadata"]

    for query, message in [
        ("resourceVersionMatch=NotOlderThan", "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden "
                                              "unless resourceVersion is provided"),
        ("resourceVersion=5&resourceVersionMatch=Bogus",
         'resourceVersionMatch: Unsupported value: "Bogus": supported values: "Exact", "NotOlderThan", ""'),
        ("resourceVersion=0&resourceVersionMatch=Exact",
         'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"'),
    ]:
        code, status, _ = api.request("GET", cms + "?" + query)
        assert code == 422 and status["reason"] == "Invalid", (query, status)
        assert status["message"] == f'ListOptions.meta.k8s.io "" is invalid: {message}', status["message"]

    # A resourceVersion the store has not reached: upstream's 504 (after waiting), never older data.
    current = int(page["metadata"]["resourceVersion"])
    code, status, _ = api.request("GET", cms + f"?resourceVersion={current + 10_000}")
    assert code == 504 and status["reason"] == "Timeout", status
    assert status["message"].startswith(f"Timeout: Too large resource version: {current + 10_000}, current: ")
    assert status["details"]["causes"] == [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
    # One it has reached is served, from the newest state (NotOlderThan) or exactly (Exact).
    code, got, _ = api.request("GET", cms + f"?resourceVersion={current}&resourceVersionMatch=Exact")
    assert code == 200 and len(got["items"]) == 5
    # A delete whose resourceVersion precondition fails says so, as upstream.
    rv = next(c for c in got["items"] if c["metadata"]["name"] == "cm0")["metadata"]["resourceVersion"]
    code, status, _ = api.request("DELETE", cms + "/cm0", {"preconditions": {"resourceVersion": "1"}})
    assert code == 409 and status["message"] == (
        'Operation cannot be fulfilled on configmaps "cm0": Precondition failed: ResourceVersion in precondition: 1, '
        f"ResourceVersion in object meta: {rv}")
