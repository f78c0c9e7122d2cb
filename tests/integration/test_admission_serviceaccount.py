"""ServiceAccount admission against a real API server: default account, lookup, token volume."""

from __future__ import annotations

import re

from tests.harness.apicluster import APICluster

MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def make_ns(api: APICluster, name: str) -> str:
    code, body, _ = api.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201, body
    return f"/api/v1/namespaces/{name}"


def pod(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}], **spec}}


def test_pod_gets_default_account_and_projected_token(api: APICluster) -> None:
    ns = make_ns(api, "sa-default")
    code, _, _ = api.request("GET", ns + "/serviceaccounts/default")
    assert code == 404  # no ServiceAccount controller: created on demand below
    p = pod("p1", initContainers=[{"name": "init", "image": "busybox:1.36"}])
    code, created, _ = api.request("POST", ns + "/pods", p)
    assert code == 201, created
    spec = created["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    code, sa, _ = api.request("GET", ns + "/serviceaccounts/default")
    assert code == 200 and sa["metadata"]["uid"]
    volumes = [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
    assert len(volumes) == 1 and re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", volumes[0]["name"])
    sources = volumes[0]["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1] == {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    for c in spec["containers"] + spec["initContainers"]:
        assert {"name": volumes[0]["name"], "readOnly": True, "mountPath": MOUNT} in c["volumeMounts"]


def test_missing_service_account_is_forbidden(api: APICluster) -> None:
    ns = make_ns(api, "sa-missing")
    code, body, _ = api.request("POST", ns + "/pods", pod("p2", serviceAccountName="foo"))
    assert code == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('pods "p2" is forbidden: error looking up service account sa-missing/foo: '
                               'serviceaccount "foo" not found')
    code, _, _ = api.request("POST", ns + "/serviceaccounts", {"metadata": {"name": "foo"}})
    assert code == 201
    code, created, _ = api.request("POST", ns + "/pods", pod("p2", serviceAccountName="foo"))
    assert code == 201, created
    assert created["spec"]["serviceAccountName"] == "foo"


def test_automount_opt_outs_and_pull_secrets(api: APICluster) -> None:
    ns = make_ns(api, "sa-automount")
    code, _, _ = api.request("POST", ns + "/serviceaccounts", {
        "metadata": {"name": "quiet"}, "automountServiceAccountToken": False,
        "imagePullSecrets": [{"name": "regcred"}]})
    assert code == 201
    code, p, _ = api.request("POST", ns + "/pods", pod("off", automountServiceAccountToken=False))
    assert code == 201 and not p["spec"].get("volumes")
    code, p, _ = api.request("POST", ns + "/pods", pod("sa-off", serviceAccountName="quiet"))
    assert code == 201 and not p["spec"].get("volumes")
    assert p["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    code, p, _ = api.request("POST", ns + "/pods", pod("pod-wins", serviceAccountName="quiet",
                                                       automountServiceAccountToken=True))
    assert code == 201 and any(v["name"].startswith("kube-api-access-") for v in p["spec"]["volumes"])


def test_explicit_mount_at_token_path_is_kept(api: APICluster) -> None:
    ns = make_ns(api, "sa-explicit")
    p = pod("own", volumes=[{"name": "mine", "emptyDir": {}}])
    p["spec"]["containers"][0]["volumeMounts"] = [{"name": "mine", "mountPath": MOUNT}]
    p["spec"]["containers"].append({"name": "other", "image": "busybox:1.36"})
    code, created, _ = api.request("POST", ns + "/pods", p)
    assert code == 201, created
    first, second = created["spec"]["containers"]
    assert first["volumeMounts"] == [{"name": "mine", "mountPath": MOUNT}]
    assert second["volumeMounts"][0]["name"].startswith("kube-api-access-")


def test_dry_run_does_not_create_the_default_account(api: APICluster) -> None:
    ns = make_ns(api, "sa-dryrun")
    code, created, _ = api.request("POST", ns + "/pods?dryRun=All", pod("dry"))
    assert code == 201 and created["spec"]["serviceAccountName"] == "default"
    code, _, _ = api.request("GET", ns + "/serviceaccounts/default")
    assert code == 404
