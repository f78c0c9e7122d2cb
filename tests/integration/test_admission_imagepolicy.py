"""Image policy (namespace annotations) against a real API server: registries, :latest, root, workloads."""

from __future__ import annotations

import pytest

from tests.harness.apicluster import KUBECTL, APICluster

DIGEST = "sha256:" + "ab" * 32


def make_ns(api: APICluster, name: str, annotations: dict) -> str:
    code, body, _ = api.request("POST", "/api/v1/namespaces", {"metadata": {"name": name, "annotations": annotations}})
    assert code == 201, body
    return f"/api/v1/namespaces/{name}"


def pod(name: str, image: str, *, run_as: dict | None = None) -> dict:
    c: dict = {"name": "app", "image": image}
    if run_as is not None:
        c["securityContext"] = run_as
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [c]}}


def test_forbidden_registry_is_rejected_with_a_clear_message(api: APICluster) -> None:
    ns = make_ns(api, "img-registries", {"images.pilothouse.io/allowed-registries":
                                         "docker.io/library, registry.example.com/team"})
    code, body, _ = api.request("POST", ns + "/pods", pod("evil", "quay.io/evil/miner:1.0"))
    assert code == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'pods "evil" is forbidden: image policy of namespace "img-registries": container "app" image '
        '"quay.io/evil/miner:1.0" is not from an allowed registry (images.pilothouse.io/allowed-registries: '
        'docker.io/library, registry.example.com/team)')
    for i, image in enumerate(["nginx:1.25", "library/nginx:1.25", "docker.io/nginx:1.25",
                               "index.docker.io/library/redis:7", "registry.example.com/team/app:2"]):
        code, body, _ = api.request("POST", ns + "/pods", pod(f"ok{i}", image))
        assert code == 201, (image, body)
    for i, image in enumerate(["bitnami/redis:7", "registry.example.com/teammate/app:1",
                               "registry.example.com/app:1", "docker.io/libraryx/nginx:1"]):
        code, body, _ = api.request("POST", ns + "/pods", pod(f"no{i}", image))
        assert code == 403, (image, body)
        assert f'image "{image}" is not from an allowed registry' in body["message"]


def test_latest_and_untagged_images_unless_pinned(api: APICluster) -> None:
    ns = make_ns(api, "img-latest", {"images.pilothouse.io/forbid-latest": "true"})
    code, body, _ = api.request("POST", ns + "/pods", pod("untagged", "nginx"))
    assert code == 403
    assert body["message"] == ('pods "untagged" is forbidden: image policy of namespace "img-latest": container "app" '
                               'image "nginx" has no tag (which means :latest); use a version tag or pin a digest '
                               '(images.pilothouse.io/forbid-latest)')
    code, body, _ = api.request("POST", ns + "/pods", pod("latest", "nginx:latest"))
    assert code == 403 and 'image "nginx:latest" uses the :latest tag' in body["message"]
    for i, image in enumerate(["nginx:1.25", f"nginx@{DIGEST}", f"nginx:latest@{DIGEST}", "localhost:5000/app:v1"]):
        code, body, _ = api.request("POST", ns + "/pods", pod(f"ok{i}", image))
        assert code == 201, (image, body)


def test_containers_that_may_run_as_root(api: APICluster) -> None:
    ns = make_ns(api, "img-root", {"images.pilothouse.io/forbid-root": "true"})
    code, body, _ = api.request("POST", ns + "/pods", pod("maybe", "nginx:1.25"))
    assert code == 403
    assert body["message"].endswith('container "app" may run as root: set securityContext.runAsNonRoot=true or a '
                                    'non-zero runAsUser (images.pilothouse.io/forbid-root)')
    code, body, _ = api.request("POST", ns + "/pods", pod("root", "nginx:1.25", run_as={"runAsUser": 0,
                                                                                        "runAsNonRoot": True}))
    assert code == 403 and 'container "app" runs as root (runAsUser=0)' in body["message"]
    assert api.request("POST", ns + "/pods", pod("nonroot", "nginx:1.25", run_as={"runAsNonRoot": True}))[0] == 201
    assert api.request("POST", ns + "/pods", pod("uid", "nginx:1.25", run_as={"runAsUser": 1000}))[0] == 201
    # Pod-level settings count for every container; a container may override them back to root.
    p = pod("podlevel", "nginx:1.25")
    p["spec"]["securityContext"] = {"runAsUser": 1000}
    p["spec"]["initContainers"] = [{"name": "init", "image": "busybox:1.36", "securityContext": {"runAsUser": 0}}]
    code, body, _ = api.request("POST", ns + "/pods", p)
    assert code == 403 and 'container "init" runs as root' in body["message"] and '"app"' not in body["message"]


def test_workloads_are_rejected_before_any_pod_exists(api: APICluster) -> None:
    make_ns(api, "img-workloads", {"images.pilothouse.io/allowed-registries": "registry.example.com",
                                   "images.pilothouse.io/forbid-latest": "true"})
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}
    code, body, _ = api.request("POST", "/apis/apps/v1/namespaces/img-workloads/deployments", deploy)
    assert code == 403, body
    assert body["message"].startswith('deployments.apps "web" is forbidden: image policy of namespace "img-workloads": '
                                      'container "web" image "nginx" is not from an allowed registry')
    assert "has no tag (which means :latest)" in body["message"]
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "tick", "image": "registry.example.com/tick:1"}]}}}}}}
    code, body, _ = api.request("POST", "/apis/batch/v1/namespaces/img-workloads/cronjobs", cron)
    assert code == 201, body
    cron_bad = dict(cron, metadata={"name": "tock"})
    cron_bad["spec"] = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "tock", "image": "registry.example.com/tock:latest"}]}}}}}
    code, body, _ = api.request("POST", "/apis/batch/v1/namespaces/img-workloads/cronjobs", cron_bad)
    assert code == 403 and 'cronjobs.batch "tock" is forbidden' in body["message"]
    # Changing the image of an allowed workload to a forbidden one is refused too.
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.com/web:1"
    assert api.request("POST", "/apis/apps/v1/namespaces/img-workloads/deployments", deploy)[0] == 201
    code, body, _ = api.request("PATCH", "/apis/apps/v1/namespaces/img-workloads/deployments/web",
                                {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "quay.io/x/web:1"}]}}}},
                                content_type="application/strategic-merge-patch+json")
    assert code == 403 and 'image "quay.io/x/web:1" is not from an allowed registry' in body["message"]
    # PodTemplates (core/v1) are held to the same rule.
    template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "tpl"},
                "template": {"metadata": {"labels": {"app": "tpl"}},
                             "spec": {"containers": [{"name": "c", "image": "docker.io/library/nginx:1.27"}]}}}
    code, body, _ = api.request("POST", "/api/v1/namespaces/img-workloads/podtemplates", template)
    assert code == 403 and 'podtemplates "tpl" is forbidden' in body["message"], body
    template["template"]["spec"]["containers"][0]["image"] = "registry.example.com/tpl:1"
    code, body, _ = api.request("POST", "/api/v1/namespaces/img-workloads/podtemplates", template)
    assert code == 201, body
    assert body["template"]["spec"]["containers"][0]["image"] == "registry.example.com/tpl:1"


def test_malformed_annotations_are_invalid(api: APICluster) -> None:
    for notes, text in [
        ({"images.pilothouse.io/forbid-latest": "yes"},
         'metadata.annotations[images.pilothouse.io/forbid-latest]: Invalid value: "yes": must be "true" or "false"'),
        ({"images.pilothouse.io/allowed-registries": " , "},
         "metadata.annotations[images.pilothouse.io/allowed-registries]: Invalid value: \" , \": must be a "
         "comma-separated list"),
        ({"images.pilothouse.io/allowed-registries": "docker.io, https://quay.io"},
         "not a registry or registry/repository prefix: https://quay.io"),
    ]:
        code, body, _ = api.request("POST", "/api/v1/namespaces", {"metadata": {"name": "img-bad",
                                                                                "annotations": notes}})
        assert code == 422, body
        assert text in body["message"], body["message"]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_apply_shows_the_rule(api: APICluster) -> None:
    make_ns(api, "img-kubectl", {"images.pilothouse.io/allowed-registries": "registry.example.com"})
    manifest = """apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: img-kubectl}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: "ghcr.io/acme/api:2"}]}
"""
    result = api.kubectl("apply", "-f", "-", input=manifest, check=False)
    assert result.returncode != 0
    assert 'deployments.apps "api" is forbidden: image policy of namespace "img-kubectl": container "api" image ' \
           '"ghcr.io/acme/api:2" is not from an allowed registry' in result.stderr
