"""Server-side apply: field managers, conflicts, --force-conflicts, removal of dropped fields, shared ownership."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.harness.apicluster import KUBECTL, APICluster

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def deployment(name: str, ns: str, *, replicas: int | None = 1, labels: dict[str, str] | None = None,
               image: str = "nginx:1.27", env: list[dict[str, str]] | None = None) -> str:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "web", "image": image, **({"env": env} if env else {})}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": name, "namespace": ns, **({"labels": labels} if labels else {})},
                       "spec": spec})


@pytest.fixture
def ns(api: APICluster) -> str:
    name = f"ssa-{uuid.uuid4().hex[:6]}"
    api.kubectl("create", "namespace", name)
    return name


def get(api: APICluster, ns: str, name: str) -> dict[str, Any]:
    return json.loads(api.kubectl("get", "deploy", name, "-n", ns, "-o", "json", "--show-managed-fields").stdout)


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e.get("fieldsV1") or {} for e in obj["metadata"].get("managedFields") or []}


def test_apply_records_the_fields_it_owns(api: APICluster, ns: str) -> None:
    api.kubectl("apply", "--server-side", "-f", "-", input=deployment("own", ns, labels={"tier": "web"}))
    owned = managers(get(api, ns, "own"))[("kubectl", "Apply")]
    assert owned["f:metadata"] == {"f:labels": {"f:tier": {}}}
    assert "f:replicas" in owned["f:spec"]
    container = owned["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert {".", "f:image", "f:name"} <= set(container)


def test_a_second_manager_conflicts_until_it_forces(api: APICluster, ns: str) -> None:
    api.kubectl("apply", "--server-side", "-f", "-", input=deployment("conf", ns, replicas=2))
    before = get(api, ns, "conf")
    out = api.kubectl("apply", "--server-side", "--field-manager=autoscaler", "-f", "-",
                      input=deployment("conf", ns, replicas=5), check=False)
    assert out.returncode != 0
    assert 'conflict with "kubectl"' in out.stderr and ".spec.replicas" in out.stderr
    after = get(api, ns, "conf")
    assert after["spec"]["replicas"] == 2 and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    # The same value is no conflict: both managers own the image.
    api.kubectl("apply", "--server-side", "--field-manager=autoscaler", "-f", "-",
                input=deployment("conf", ns, replicas=2))
    api.kubectl("apply", "--server-side", "--field-manager=autoscaler", "--force-conflicts", "-f", "-",
                input=deployment("conf", ns, replicas=5))
    obj = get(api, ns, "conf")
    assert obj["spec"]["replicas"] == 5
    owners = managers(obj)
    assert "f:replicas" in owners[("autoscaler", "Apply")]["f:spec"]
    assert "f:replicas" not in owners[("kubectl", "Apply")]["f:spec"]  # taken away by the forced apply
    assert "f:template" in owners[("kubectl", "Apply")]["f:spec"]  # shared, not taken


def test_dropped_fields_are_removed_unless_someone_else_owns_them(api: APICluster, ns: str) -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    api.kubectl("apply", "--server-side", "-f", "-",
                input=deployment("drop", ns, labels={"keep": "1", "gone": "1"}, env=env))
    api.kubectl("label", "deploy", "drop", "-n", ns, "other=1")
    api.kubectl("apply", "--server-side", "-f", "-", input=deployment("drop", ns, labels={"keep": "1"}, env=env[:1]))
    obj = get(api, ns, "drop")
    assert obj["metadata"]["labels"] == {"keep": "1", "other": "1"}  # "other" belongs to kubectl label
    assert [e["name"] for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]] == ["A"]


def test_an_update_takes_the_fields_it_changes(api: APICluster, ns: str) -> None:
    api.kubectl("apply", "--server-side", "-f", "-", input=deployment("upd", ns, replicas=1))
    api.kubectl("patch", "deploy", "upd", "-n", ns, "--type=merge", "-p", '{"spec":{"replicas":4}}')
    owners = managers(get(api, ns, "upd"))
    patchers = [m for (m, op), f in owners.items() if op == "Update" and "f:replicas" in (f.get("f:spec") or {})]
    assert patchers, owners
    assert "f:replicas" not in owners[("kubectl", "Apply")]["f:spec"]
    # Re-applying the old value now conflicts with the patcher.
    out = api.kubectl("apply", "--server-side", "-f", "-", input=deployment("upd", ns, replicas=1), check=False)
    assert out.returncode != 0 and f'conflict with "{patchers[0]}"' in out.stderr


def test_conflict_status_over_rest(api: APICluster, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/rest"
    body = json.loads(deployment("rest", ns, replicas=1))
    code, _, _ = api.request("PATCH", path + "?fieldManager=one", body, content_type="application/apply-patch+yaml")
    assert code == 201
    body["spec"]["replicas"] = 2
    code, status, _ = api.request("PATCH", path + "?fieldManager=two", body, content_type="application/apply-patch+yaml")
    assert code == 409 and status["reason"] == "Conflict"
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "one" using apps/v1',
                                            "field": ".spec.replicas"}]
    code, status, _ = api.request("PATCH", path + "?fieldManager=two&force=true", {"spec": {"replicas": 3}},
                                  content_type="application/merge-patch+json")
    assert code == 422 and "force" in status["message"]
    code, obj, _ = api.request("PATCH", path + "?fieldManager=two&force=true", body,
                               content_type="application/apply-patch+yaml")
    assert code == 200 and obj["spec"]["replicas"] == 2


def test_scale_records_its_subresource_and_conflicts_name_it(api: APICluster, ns: str) -> None:
    api.kubectl("apply", "--server-side", "-f", "-", input=deployment("scaled", ns, replicas=1))
    api.kubectl("scale", "deploy", "scaled", "-n", ns, "--replicas=3")
    entries = get(api, ns, "scaled")["metadata"]["managedFields"]
    scale = [e for e in entries if e.get("subresource") == "scale"]
    assert len(scale) == 1 and scale[0]["operation"] == "Update" and scale[0]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    out = api.kubectl("apply", "--server-side", "-f", "-", input=deployment("scaled", ns, replicas=1), check=False)
    assert out.returncode != 0
    assert f'conflict with "{scale[0]["manager"]}" with subresource "scale" using apps/v1' in out.stderr, out.stderr
