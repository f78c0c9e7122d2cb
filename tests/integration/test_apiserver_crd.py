"""CustomResourceDefinitions served dynamically: discovery, schema validation/defaulting/pruning,
status subresource, printer columns, and cleanup."""

from __future__ import annotations

import time

import pytest

from tests.harness.apicluster import KUBECTL, APICluster

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                                         {"name": "Color", "type": "string", "jsonPath": ".spec.color"}],
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                    "color": {"type": "string", "enum": ["red", "blue"], "default": "red"}}},
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}},
        }],
    },
}
BASE = "/apis/example.com/v1/namespaces/default/widgets"


def widget(name: str, **spec) -> dict:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


@pytest.fixture(scope="module")
def crd(api: APICluster) -> APICluster:
    code, body, _ = api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    assert code == 201, body
    assert {c["type"] for c in body["status"]["conditions"]} >= {"Established", "NamesAccepted"}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and api.request("GET", BASE)[0] != 200:
        time.sleep(0.1)
    return api


def test_discovery_lists_the_new_type(crd: APICluster) -> None:
    code, group, _ = crd.request("GET", "/apis/example.com/v1")
    assert code == 200 and any(r["name"] == "widgets" and r["kind"] == "Widget" for r in group["resources"])
    code, root, _ = crd.request("GET", "/openapi/v3")
    assert "apis/example.com/v1" in root["paths"]


def test_validation_defaulting_pruning(crd: APICluster) -> None:
    code, w, _ = crd.request("POST", BASE, widget("w1", size=3, unknownField=1))
    assert code == 201, w
    assert w["spec"] == {"size": 3, "color": "red"}  # defaulted, unknown field pruned
    code, status, _ = crd.request("POST", BASE, widget("w2", size=11))
    assert code == 422 and "spec.size" in status["message"]
    code, status, _ = crd.request("POST", BASE, widget("w3", color="green", size=1))
    assert code == 422 and "spec.color" in status["message"]
    code, status, _ = crd.request("POST", BASE, widget("w4"))
    assert code == 422 and "spec.size: Required value" in status["message"]
    code, status, _ = crd.request("POST", BASE, widget("w5", size="three"))
    assert code == 422


def test_status_subresource_and_generation(crd: APICluster) -> None:
    code, w, _ = crd.request("POST", BASE, widget("st", size=2))
    w["status"] = {"ready": True}
    code, w2, _ = crd.request("PUT", BASE + "/st", w)
    assert code == 200 and "status" not in w2 or w2.get("status") != {"ready": True}
    code, w3, _ = crd.request("PUT", BASE + "/st/status", dict(w2, status={"ready": True}))
    assert code == 200 and w3["status"] == {"ready": True} and w3["metadata"]["generation"] == 1
    code, w4, _ = crd.request("PATCH", BASE + "/st", {"spec": {"size": 5}}, content_type="application/merge-patch+json")
    assert w4["metadata"]["generation"] == 2 and w4["status"] == {"ready": True}
    code, status, _ = crd.request("PATCH", BASE + "/st", {"spec": {"size": 5}},
                                  content_type="application/strategic-merge-patch+json")
    assert code == 415


def test_watch_and_table(crd: APICluster) -> None:
    code, table, _ = crd.request("GET", BASE, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    names = [c["name"] for c in table["columnDefinitions"]]
    assert "Size" in names and "Color" in names


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_uses_custom_resources(crd: APICluster) -> None:
    crd.kubectl("apply", "-f", "-", input="apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: kw}\nspec: {size: 4}\n")
    out = crd.kubectl("get", "wd").stdout
    assert "kw" in out and "SIZE" in out and "4" in out
    assert crd.kubectl("get", "widgets", "kw", "-o", "jsonpath={.spec.color}").stdout == "red"


def test_deleting_the_crd_removes_the_type_and_objects(api: APICluster) -> None:
    gadget = dict(CRD, metadata={"name": "gadgets.example.org"})
    gadget["spec"] = dict(CRD["spec"], group="example.org", names={"plural": "gadgets", "kind": "Gadget"})
    code, _, _ = api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", gadget)
    assert code == 201
    base = "/apis/example.org/v1/namespaces/default/gadgets"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and api.request("GET", base)[0] != 200:
        time.sleep(0.1)
    assert api.request("POST", base, {"apiVersion": "example.org/v1", "kind": "Gadget", "metadata": {"name": "g"},
                                      "spec": {"size": 1}})[0] == 201
    assert api.request("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.org")[0] == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and api.request("GET", base)[0] != 404:
        time.sleep(0.1)
    assert api.request("GET", base)[0] == 404


def test_invalid_crds_are_rejected(api: APICluster) -> None:
    bad = dict(CRD, metadata={"name": "wrong.example.com"})
    code, status, _ = api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", bad)
    assert code == 422 and "spec.names.plural" in status["message"]
