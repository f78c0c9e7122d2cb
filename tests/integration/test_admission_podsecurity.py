"""PodSecurity against a real API server: enforce, warn, workloads, namespace labels."""

from __future__ import annotations

import pytest

from tests.harness.apicluster import KUBECTL, APICluster

RESTRICTED_NGINX = (
    'pods "root" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
    '(container "nginx" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
    '(container "nginx" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container '
    '"nginx" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "nginx" must set '
    'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')


def make_ns(api: APICluster, name: str, labels: dict | None = None) -> str:
    code, body, _ = api.request("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels or {}}})
    assert code == 201, body
    return f"/api/v1/namespaces/{name}"


def pod(name: str, **container: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25", **container}]}}


def compliant(name: str) -> dict:
    p = pod(name, securityContext={"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}})
    p["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000,
                                    "seccompProfile": {"type": "RuntimeDefault"}}
    return p


def test_restricted_rejects_a_root_pod_and_accepts_a_compliant_one(api: APICluster) -> None:
    ns = make_ns(api, "ps-restricted", {"pod-security.kubernetes.io/enforce": "restricted",
                                        "pod-security.kubernetes.io/enforce-version": "v1.32"})
    code, body, _ = api.request("POST", ns + "/pods", pod("root"))
    assert code == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"] == RESTRICTED_NGINX
    code, body, _ = api.request("POST", ns + "/pods", compliant("good"))
    assert code == 201, body
    # runAsUser 0 is refused even with the rest in order; hostPath is a restricted volume type.
    bad = compliant("uid0")
    bad["spec"]["securityContext"]["runAsUser"] = 0
    bad["spec"]["volumes"] = [{"name": "host", "hostPath": {"path": "/etc"}}]
    code, body, _ = api.request("POST", ns + "/pods", bad)
    assert code == 403
    assert body["message"] == ('pods "uid0" is forbidden: violates PodSecurity "restricted:latest": restricted volume '
                               'types (volume "host" uses restricted volume type "hostPath"), runAsUser=0 (pod must '
                               'not set runAsUser=0)')
    # Status writes (the kubelet's) are never blocked.
    code, good, _ = api.request("GET", ns + "/pods/good")
    good["status"]["phase"] = "Running"
    assert api.request("PUT", ns + "/pods/good/status", good)[0] == 200


def test_baseline_allows_plain_pods_but_not_privileged_ones(api: APICluster) -> None:
    ns = make_ns(api, "ps-baseline", {"pod-security.kubernetes.io/enforce": "baseline"})
    assert api.request("POST", ns + "/pods", pod("plain"))[0] == 201
    priv = pod("priv", securityContext={"privileged": True, "capabilities": {"add": ["NET_ADMIN", "CHOWN"]}},
               ports=[{"containerPort": 80, "hostPort": 8080}])
    priv["spec"]["hostNetwork"] = True
    priv["spec"]["securityContext"] = {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}
    code, body, _ = api.request("POST", ns + "/pods", priv)
    assert code == 403
    assert body["message"] == (
        'pods "priv" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container '
        '"nginx" must not include "NET_ADMIN" in securityContext.capabilities.add), host namespaces (hostNetwork), '
        'hostPort (container "nginx" uses hostPort 8080), privileged (container "nginx" must not set '
        'securityContext.privileged=true), forbidden sysctls (kernel.msgmax)')


def test_warn_level_and_workloads_only_warn(api: APICluster) -> None:
    ns = make_ns(api, "ps-warn", {"pod-security.kubernetes.io/warn": "restricted"})
    code, body, headers = api.request("POST", ns + "/pods", pod("warned"))
    assert code == 201, body
    assert 'would violate PodSecurity \\"restricted:latest\\": allowPrivilegeEscalation != false' in headers["Warning"]
    ns = make_ns(api, "ps-workloads", {"pod-security.kubernetes.io/enforce": "restricted"})
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}}}
    code, body, headers = api.request("POST", "/apis/apps/v1/namespaces/ps-workloads/deployments", deploy)
    assert code == 201, body
    assert headers["Warning"].startswith('299 - "would violate PodSecurity \\"restricted:latest\\": '
                                         'allowPrivilegeEscalation != false')
    # Scaling changes no template: no new warning.
    code, body, headers = api.request("PATCH", "/apis/apps/v1/namespaces/ps-workloads/deployments/web",
                                      {"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
    assert code == 200 and "Warning" not in headers


def test_namespace_labels_are_validated_and_tightening_warns(api: APICluster) -> None:
    code, body, _ = api.request("POST", "/api/v1/namespaces", {"metadata": {
        "name": "ps-bad", "labels": {"pod-security.kubernetes.io/enforce": "strict"}}})
    assert code == 422, body
    assert body["message"] == ('Namespace "ps-bad" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
                               'Invalid value: "strict": must be one of privileged, baseline, restricted')
    ns = make_ns(api, "ps-tighten")
    assert api.request("POST", ns + "/pods", pod("legacy"))[0] == 201
    code, body, headers = api.request("PATCH", ns, {"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}}, content_type="application/merge-patch+json")
    assert code == 200, body
    assert 'existing pods in namespace \\"ps-tighten\\" violate the new PodSecurity enforce level' in headers["Warning"]
    assert "legacy: allowPrivilegeEscalation != false, unrestricted capabilities" in headers["Warning"]
    # The existing pod stays and its image can't be changed into a violation silently: updates re-check.
    code, legacy, _ = api.request("GET", ns + "/pods/legacy")
    legacy["spec"]["containers"][0]["image"] = "nginx:1.26"
    code, body, _ = api.request("PUT", ns + "/pods/legacy", legacy)
    assert code == 403 and 'violates PodSecurity "restricted:latest"' in body["message"]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_run_shows_the_reason(api: APICluster) -> None:
    make_ns(api, "ps-kubectl", {"pod-security.kubernetes.io/enforce": "restricted"})
    result = api.kubectl("run", "nginx", "--image=nginx:1.25", "-n", "ps-kubectl", check=False)
    assert result.returncode != 0
    assert 'Error from server (Forbidden): pods "nginx" is forbidden: violates PodSecurity "restricted:latest"' \
        in result.stderr
