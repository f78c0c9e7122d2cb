"""DefaultStorageClass and DefaultIngressClass admission against a real API server."""

from __future__ import annotations

import time
import uuid

from tests.harness.apicluster import APICluster

DEFAULT_SC = "storageclass.kubernetes.io/is-default-class"
DEFAULT_IC = "ingressclass.kubernetes.io/is-default-class"


def pvc(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}}


def ingress(name: str, annotations: dict[str, str] | None = None, **spec: object) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}, **spec}}


def test_claims_and_ingresses_without_a_class_get_the_default(api: APICluster) -> None:
    ns = f"dc-{uuid.uuid4().hex[:6]}"
    assert api.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})[0] == 201
    claims = f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
    ingresses = f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"
    suffix = uuid.uuid4().hex[:6]
    older, newer = f"older-{suffix}", f"newer-{suffix}"
    try:
        for name in (older, newer):
            sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "example.com/x",
                  "metadata": {"name": name, "annotations": {DEFAULT_SC: "true"}}}
            assert api.request("POST", "/apis/storage.k8s.io/v1/storageclasses", sc)[0] == 201
            time.sleep(1.1)  # creationTimestamp has a resolution of seconds
        code, claim, _ = api.request("POST", claims, pvc("plain"))
        assert code == 201 and claim["spec"]["storageClassName"] == newer  # the newest default
        code, claim, _ = api.request("POST", claims, pvc("none", storageClassName=""))
        assert code == 201 and claim["spec"]["storageClassName"] == ""  # "" asks for no class
        code, claim, _ = api.request("POST", claims, pvc("named", storageClassName=older))
        assert code == 201 and claim["spec"]["storageClassName"] == older

        ic = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
              "metadata": {"name": f"ic-{suffix}", "annotations": {DEFAULT_IC: "true"}},
              "spec": {"controller": "example.com/ingress"}}
        time.sleep(1.1)  # newer than any default class made before this test
        assert api.request("POST", "/apis/networking.k8s.io/v1/ingressclasses", ic)[0] == 201
        code, ing, _ = api.request("POST", ingresses, ingress("plain"))
        assert code == 201 and ing["spec"]["ingressClassName"] == f"ic-{suffix}", ing["spec"]
        code, ing, _ = api.request("POST", ingresses, ingress("legacy", {"kubernetes.io/ingress.class": "other"}))
        assert code == 201 and "ingressClassName" not in ing["spec"]
        # Only creates are defaulted: an update without a class keeps none.
        code, ing, _ = api.request("PATCH", f"{ingresses}/legacy", {"metadata": {"annotations": {"x": "y"}}},
                                   content_type="application/merge-patch+json")
        assert code == 200 and "ingressClassName" not in ing["spec"]
    finally:
        for name in (older, newer):
            api.request("DELETE", f"/apis/storage.k8s.io/v1/storageclasses/{name}")
        api.request("DELETE", f"/apis/networking.k8s.io/v1/ingressclasses/ic-{suffix}")
