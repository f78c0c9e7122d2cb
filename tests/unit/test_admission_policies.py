"""Pure parts of the admission plugins: image references, Pod Security checks, quota usage, webhook rules."""

from __future__ import annotations

import pytest

from apimachinery.quantity import Quantity
from apimachinery.quota import applies, pod_usage, service_usage, usage
from apimachinery.registry import Registry
from apiserver.admission_plugins.imagepolicy import allowed, parse_allowed, parse_image
from apiserver.admission_plugins.podsecurity import evaluate, forbidden_detail, policy_of
from apiserver.admission_plugins.resourcequota import missing_constraints
from apiserver.admission_plugins.webhooks import rule_matches
from apiserver.auth import UserInfo
from apiserver.handlers import Operation
from apiserver.requestinfo import RequestInfo

REG = Registry()


@pytest.mark.parametrize("image,registry,repository,tag,digest", [
    ("nginx", "docker.io", "library/nginx", None, None),
    ("library/nginx:1.25", "docker.io", "library/nginx", "1.25", None),
    ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
    ("index.docker.io/library/nginx", "docker.io", "library/nginx", None, None),
    ("quay.io/org/app:1", "quay.io", "org/app", "1", None),
    ("localhost:5000/app", "localhost:5000", "app", None, None),
    ("registry.example.com:443/a/b/c:v2", "registry.example.com:443", "a/b/c", "v2", None),
    ("nginx@sha256:" + "0" * 64, "docker.io", "library/nginx", None, "sha256:" + "0" * 64),
])
def test_image_references_normalize_like_docker(image: str, registry: str, repository: str, tag: str | None,
                                                digest: str | None) -> None:
    ref = parse_image(image)
    assert ref is not None
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_invalid_references_and_prefix_boundaries() -> None:
    assert parse_image("Nginx") is None and parse_image("") is None and parse_image(None) is None
    entries = parse_allowed("docker.io/library, quay.io/org ,, registry.example.com/")
    assert entries == ["docker.io/library", "quay.io/org", "registry.example.com"]
    assert allowed(parse_image("nginx"), entries)  # type: ignore[arg-type]
    assert allowed(parse_image("quay.io/org/x/y:1"), entries)  # type: ignore[arg-type]
    assert not allowed(parse_image("quay.io/organization/x"), entries)  # type: ignore[arg-type]
    assert allowed(parse_image("nginx:1"), parse_allowed("docker.io/nginx"))  # type: ignore[arg-type]
    assert not allowed(parse_image("nginx:1"), parse_allowed("docker.io/ngin"))  # type: ignore[arg-type]


def test_pod_security_levels() -> None:
    spec = {"containers": [{"name": "c", "image": "x"}], "securityContext": {}}
    assert evaluate("privileged", {}, {"hostPID": True, **spec}) == []
    assert evaluate("baseline", {}, spec) == []
    assert [r for r, _ in evaluate("restricted", {}, spec)] == [
        "allowPrivilegeEscalation != false", "unrestricted capabilities", "runAsNonRoot != true", "seccompProfile"]
    ok = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Localhost"}},
          "containers": [{"name": "c", "image": "x", "securityContext": {
              "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
          "volumes": [{"name": "t", "projected": {"sources": []}}, {"name": "e", "emptyDir": {}}]}
    assert evaluate("restricted", {}, ok) == []
    explicit = {"securityContext": {"runAsNonRoot": False, "seccompProfile": {"type": "Unconfined"}},
                "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x",
                                                           "securityContext": {"procMount": "Unmasked"}}]}
    detail = forbidden_detail(evaluate("baseline", {}, explicit))
    assert detail == ('procMount (container "b" must not set securityContext.procMount to "Unmasked"), seccompProfile '
                      '(pod must not set securityContext.seccompProfile.type to "Unconfined")')
    restricted = forbidden_detail(evaluate("restricted", {}, explicit))
    assert "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)" in restricted
    assert 'hostPort (containers "a", "b" use hostPorts 443, 80)' == forbidden_detail(evaluate("baseline", {}, {
        "containers": [{"name": "a", "ports": [{"hostPort": 80}]}, {"name": "b", "ports": [{"hostPort": 443}]}]}))


def test_unknown_levels_are_restricted() -> None:
    ns = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "bogus",
                                  "pod-security.kubernetes.io/warn": "baseline"}}}
    assert (policy_of(ns).enforce, policy_of(ns).warn, policy_of(None).enforce) == ("restricted", "baseline", "privileged")


def test_quota_usage_and_constraints() -> None:
    pod = {"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}},
                                   {"name": "b", "resources": {"requests": {"cpu": "200m", "memory": "1Gi"}}}],
                    "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
                    "overhead": {"cpu": "10m"}}}
    used = pod_usage(pod)
    assert used["requests.cpu"] == Quantity("2010m") and used["memory"] == Quantity("1Gi")
    assert used["limits.cpu"] == Quantity("1010m") and used["pods"] == Quantity(1)
    assert pod_usage({"spec": {}, "status": {"phase": "Failed"}}) == {"count/pods": Quantity(1)}
    assert missing_constraints({"limits.memory": Quantity("1Gi"), "cpu": Quantity(1)}, pod) == \
        "must specify limits.memory for: a,b,i"
    lb = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}}
    assert service_usage(lb) == {"count/services": Quantity(1), "services": Quantity(1),
                                 "services.nodeports": Quantity(2), "services.loadbalancers": Quantity(1)}
    deployments = REG.get("apps", "v1", "deployments")
    assert usage(deployments, {"metadata": {}}) == {"count/deployments.apps": Quantity(1)}  # type: ignore[arg-type]
    pods = REG.get("", "v1", "pods")
    scoped = {"spec": {"scopes": ["NotBestEffort"]}}
    assert applies(scoped, pods, pod) and not applies(scoped, pods, {"spec": {"containers": [{"name": "x"}]}})  # type: ignore[arg-type]
    assert not applies(scoped, deployments, {"metadata": {}})  # type: ignore[arg-type]


def test_webhook_rule_matching() -> None:
    pods = REG.get("", "v1", "pods")
    assert pods is not None
    user = UserInfo("u", "", ())

    def op(verb: str, sub: str = "", ns: str = "default") -> Operation:
        return Operation(verb, RequestInfo(pods, ns, "p", sub), user, {}, None)

    rule = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"}
    assert rule_matches(rule, op("create")) and not rule_matches(rule, op("update"))
    assert not rule_matches(rule, op("create", "status"))
    assert rule_matches(dict(rule, resources=["pods/status"]), op("create", "status"))
    assert rule_matches(dict(rule, resources=["*/*"]), op("create", "status"))
    assert not rule_matches(dict(rule, resources=["*"]), op("create", "status"))
    assert not rule_matches(dict(rule, scope="Cluster"), op("create"))
    assert not rule_matches(dict(rule, apiGroups=["apps"]), op("create"))
    assert rule_matches(dict(rule, operations=["*"], apiVersions=["*"]), op("delete"))
