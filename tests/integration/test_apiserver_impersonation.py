"""User impersonation (Impersonate-* headers, kubectl --as/--as-group) against a real API server."""

from __future__ import annotations

import json
import time

import pytest

from tests.harness.apicluster import KUBECTL, APICluster

RBAC = "/apis/rbac.authorization.k8s.io/v1"
BOT = "system:serviceaccount:t1:bot"

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    c = APICluster(tmp_path_factory.mktemp("imp"), users={"alice": []})
    c.start_or_close()
    assert c.request("POST", "/api/v1/namespaces", {"metadata": {"name": "t1"}})[0] == 201
    assert c.request("POST", "/api/v1/namespaces/t1/secrets", {"metadata": {"name": "s1"}})[0] == 201
    assert c.request("POST", f"{RBAC}/namespaces/t1/roles", {
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})[0] == 201
    assert c.request("POST", f"{RBAC}/namespaces/t1/rolebindings", {
        "metadata": {"name": "bot-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "t1"}]})[0] == 201
    yield c
    c.close()


def test_whoami_as_service_account(cluster: APICluster) -> None:
    out = cluster.kubectl("auth", "whoami", "--as", BOT, "-o", "json").stdout
    info = json.loads(out)["status"]["userInfo"]
    assert info["username"] == BOT
    assert set(info["groups"]) == {"system:serviceaccounts", "system:serviceaccounts:t1", "system:authenticated"}


def test_get_allowed_and_denied_per_rbac(cluster: APICluster) -> None:
    cluster.kubectl("get", "pods", "-n", "t1", "--as", BOT)
    r = cluster.kubectl("get", "secrets", "-n", "t1", "--as", BOT, check=False)
    assert r.returncode != 0
    assert f'User "{BOT}" cannot list resource "secrets"' in r.stderr


def test_can_i_as(cluster: APICluster) -> None:
    assert cluster.kubectl("auth", "can-i", "list", "pods", "-n", "t1", "--as", BOT).stdout.strip() == "yes"
    r = cluster.kubectl("auth", "can-i", "delete", "pods", "-n", "t1", "--as", BOT, check=False)
    assert r.stdout.strip() == "no"


def test_as_group(cluster: APICluster) -> None:
    out = cluster.kubectl("auth", "whoami", "--as", "bob", "--as-group", "devs", "-o", "json").stdout
    info = json.loads(out)["status"]["userInfo"]
    assert info["username"] == "bob" and set(info["groups"]) == {"devs", "system:authenticated"}
    # bob in group system:masters is admin
    assert cluster.kubectl("auth", "can-i", "delete", "secrets", "-n", "t1", "--as", "bob",
                           "--as-group", "system:masters").stdout.strip() == "yes"


def test_unprivileged_user_cannot_impersonate(cluster: APICluster) -> None:
    code, status, _ = cluster.request("GET", "/api/v1/namespaces/t1/pods", token=cluster.tokens["alice"],
                                      headers={"Impersonate-User": "bob"})
    assert code == 403 and status["reason"] == "Forbidden"
    assert status["message"] == ('users "bob" is forbidden: User "alice" cannot impersonate resource "users" '
                                 'in API group "" at the cluster scope')
    code, status, _ = cluster.request("GET", "/api/v1/namespaces/t1/pods", token=cluster.tokens["alice"],
                                      headers={"Impersonate-User": BOT})
    assert code == 403
    assert status["message"].startswith('serviceaccounts "bot" is forbidden: User "alice" cannot impersonate '
                                        'resource "serviceaccounts" in API group "" in the namespace "t1"')


def test_group_without_user_is_bad_request(cluster: APICluster) -> None:
    code, status, _ = cluster.request("GET", "/api/v1/namespaces", headers={"Impersonate-Group": "devs"})
    assert code == 400 and status["reason"] == "BadRequest"
    assert "without impersonating a user" in status["message"]


def test_uid_and_extras_are_impersonated_and_each_authorized(cluster: APICluster) -> None:
    out = cluster.kubectl("auth", "whoami", "--as", "carol", "--as-uid", "uid-42", "-o", "json").stdout
    info = json.loads(out)["status"]["userInfo"]
    assert info["username"] == "carol" and info["uid"] == "uid-42"
    code, review, _ = cluster.request(
        "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={"Impersonate-User": "carol", "Impersonate-Extra-Scopes": "view",
                 "Impersonate-Extra-Reason%2Fwhy": "audit"})
    assert code == 201, review
    assert review["status"]["userInfo"]["extra"] == {"scopes": ["view"], "reason/why": ["audit"]}
    # alice may impersonate users, and nothing else: a uid or an extra is refused on its own.
    assert cluster.request("POST", f"{RBAC}/clusterroles", {
        "metadata": {"name": "impersonate-users"},
        "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]})[0] == 201
    assert cluster.request("POST", f"{RBAC}/clusterrolebindings", {
        "metadata": {"name": "alice-impersonates-users"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "impersonate-users"},
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]})[0] == 201
    whoami = ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
              {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    deadline = time.monotonic() + 10  # the binding reaches the authorizer through a watch
    while True:
        code, review, _ = cluster.request(*whoami, token=cluster.tokens["alice"], headers={"Impersonate-User": "carol"})
        if code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 201 and review["status"]["userInfo"]["username"] == "carol"
    code, status, _ = cluster.request(*whoami, token=cluster.tokens["alice"],
                                      headers={"Impersonate-User": "carol", "Impersonate-Uid": "uid-42"})
    assert code == 403 and status["message"].startswith(
        'uids.authentication.k8s.io "uid-42" is forbidden: User "alice" cannot impersonate resource "uids" '
        'in API group "authentication.k8s.io"')
    code, status, _ = cluster.request(*whoami, token=cluster.tokens["alice"],
                                      headers={"Impersonate-User": "carol", "Impersonate-Extra-Scopes": "view"})
    assert code == 403 and status["message"].startswith(
        'userextras.authentication.k8s.io "view" is forbidden: User "alice" cannot impersonate resource '
        '"userextras/scopes" in API group "authentication.k8s.io"')
