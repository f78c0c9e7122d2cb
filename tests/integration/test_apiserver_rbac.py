"""RBAC: roles and bindings enforced on every request; no privilege escalation."""

from __future__ import annotations

import pytest

from tests.harness.apicluster import KUBECTL, APICluster

NS = "/api/v1/namespaces/default"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture(scope="module")
def rbac(tmp_path_factory: pytest.TempPathFactory):
    cluster = APICluster(tmp_path_factory.mktemp("rbac"), users={"viewer": [], "editor": [], "nsadmin": [],
                                                                  "nobody": []})
    cluster.start_or_close()
    for user, role in (("viewer", "view"), ("editor", "edit"), ("nsadmin", "admin")):
        code, body, _ = cluster.request("POST", f"{RBAC}/namespaces/default/rolebindings", {
            "metadata": {"name": f"{user}-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
        assert code == 201, body
    cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    cluster.request("POST", NS + "/secrets", {"metadata": {"name": "s1"}, "stringData": {"k": "v"}})
    cluster.request("POST", NS + "/configmaps", {"metadata": {"name": "c1"}})
    yield cluster
    cluster.close()


def as_user(c: APICluster, user: str, method: str, path: str, body=None, **kw):
    return c.request(method, path, body, token=c.tokens[user], **kw)


def test_view_reads_but_cannot_write_or_read_secrets(rbac: APICluster) -> None:
    assert as_user(rbac, "viewer", "GET", NS + "/configmaps")[0] == 200
    assert as_user(rbac, "viewer", "GET", NS + "/pods")[0] == 200
    code, status, _ = as_user(rbac, "viewer", "POST", NS + "/configmaps", {"metadata": {"name": "x"}})
    assert code == 403 and status["reason"] == "Forbidden"
    assert status["message"] == ('configmaps is forbidden: User "viewer" cannot create resource "configmaps" '
                                 'in API group "" in the namespace "default"')
    code, status, _ = as_user(rbac, "viewer", "GET", NS + "/secrets/s1")
    assert code == 403 and 'cannot get resource "secrets"' in status["message"]
    assert as_user(rbac, "viewer", "GET", NS + "/secrets")[0] == 403
    assert as_user(rbac, "viewer", "GET", NS + "/configmaps?watch=1&timeoutSeconds=1")[0] == 200


def test_cross_namespace_and_cluster_scope_denied(rbac: APICluster) -> None:
    assert as_user(rbac, "viewer", "GET", "/api/v1/namespaces/other/configmaps")[0] == 403
    assert as_user(rbac, "editor", "GET", "/api/v1/nodes")[0] == 403
    assert as_user(rbac, "viewer", "GET", "/api/v1/configmaps")[0] == 403  # all namespaces


def test_nobody_can_discover_but_not_read(rbac: APICluster) -> None:
    assert as_user(rbac, "nobody", "GET", "/api/v1")[0] == 200
    assert as_user(rbac, "nobody", "GET", "/apis")[0] == 200
    assert as_user(rbac, "nobody", "GET", NS + "/pods")[0] == 403
    code, status, _ = as_user(rbac, "nobody", "GET", "/metrics")
    assert code == 403 and status["message"].startswith('forbidden: User "nobody" cannot get path "/metrics"')


def test_editor_writes_subresources_per_rules(rbac: APICluster) -> None:
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ed"},
         "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    assert as_user(rbac, "editor", "POST", "/apis/apps/v1/namespaces/default/deployments", d)[0] == 201
    assert as_user(rbac, "editor", "PATCH", "/apis/apps/v1/namespaces/default/deployments/ed/scale",
                   {"spec": {"replicas": 2}}, content_type="application/merge-patch+json")[0] == 200
    # status belongs to controllers, not to editors
    assert as_user(rbac, "editor", "PATCH", "/apis/apps/v1/namespaces/default/deployments/ed/status",
                   {"status": {"replicas": 9}}, content_type="application/merge-patch+json")[0] == 403
    # editors cannot touch RBAC at all
    assert as_user(rbac, "editor", "POST", f"{RBAC}/namespaces/default/roles",
                   {"metadata": {"name": "r"}, "rules": []})[0] == 403


def test_namespace_admin_cannot_escalate(rbac: APICluster) -> None:
    binding = {"metadata": {"name": "grab-admin"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "nsadmin"}]}
    code, status, _ = as_user(rbac, "nsadmin", "POST", f"{RBAC}/namespaces/default/rolebindings", binding)
    assert code == 403 and "attempting to grant RBAC permissions not currently held" in status["message"]
    role = {"metadata": {"name": "nodes-too"}, "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}
    code, status, _ = as_user(rbac, "nsadmin", "POST", f"{RBAC}/namespaces/default/roles", role)
    assert code == 403
    # what it holds, it may grant
    ok_role = {"metadata": {"name": "cm-reader"},
               "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}
    assert as_user(rbac, "nsadmin", "POST", f"{RBAC}/namespaces/default/roles", ok_role)[0] == 201
    grant = {"metadata": {"name": "nobody-reads"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "nobody"}]}
    assert as_user(rbac, "nsadmin", "POST", f"{RBAC}/namespaces/default/rolebindings", grant)[0] == 201
    assert as_user(rbac, "nobody", "GET", NS + "/configmaps/c1")[0] == 200
    assert as_user(rbac, "nobody", "DELETE", NS + "/configmaps/c1")[0] == 403


def test_access_reviews(rbac: APICluster) -> None:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "configmaps"}}}
    code, out, _ = as_user(rbac, "viewer", "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
    assert code == 201 and out["status"]["allowed"] is False
    code, out, _ = as_user(rbac, "editor", "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
    assert out["status"]["allowed"] is True
    rules = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "default"}}
    code, out, _ = as_user(rbac, "viewer", "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", rules)
    flat = {(r, v) for rule in out["status"]["resourceRules"] for r in rule["resources"] for v in rule["verbs"]}
    assert ("pods", "list") in flat and ("secrets", "get") not in flat


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_auth_can_i(rbac: APICluster, tmp_path) -> None:
    from pilot.certs import write_kubeconfig

    kc = tmp_path / "viewer.kubeconfig"
    write_kubeconfig(kc, server=rbac.url(), ca_cert=rbac.certs.ca_cert, token=rbac.tokens["viewer"], user="viewer")
    import subprocess

    def can_i(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL, "--kubeconfig", str(kc), "auth", "can-i", *args], capture_output=True,
                              text=True, timeout=30)

    assert can_i("list", "pods").stdout.strip() == "yes"
    assert can_i("create", "pods").stdout.strip() == "no"
    listing = can_i("--list")
    assert listing.returncode == 0 and "pods" in listing.stdout
    denied = subprocess.run([KUBECTL, "--kubeconfig", str(kc), "create", "configmap", "x"], capture_output=True,
                            text=True, timeout=30)
    assert denied.returncode != 0 and "forbidden" in denied.stderr


def test_default_roles_are_reconciled_additively(rbac: APICluster) -> None:
    path = f"{RBAC}/clusterroles/system:node-proxier"
    code, role, _ = rbac.request("GET", path)
    assert any("leases" in r.get("resources", []) for r in role["rules"])
    # an administrator's extra rule survives, a removed default rule comes back after a restart
    role["rules"] = [r for r in role["rules"] if "leases" not in r.get("resources", [])]
    role["rules"].append({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]})
    assert rbac.request("PUT", path, role)[0] == 200
    rbac.kill(0)
    rbac.start_replica(0)
    rbac.wait_ready(0)
    code, role, _ = rbac.request("GET", path)
    assert any("leases" in r.get("resources", []) for r in role["rules"])
    assert {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]} in role["rules"]
