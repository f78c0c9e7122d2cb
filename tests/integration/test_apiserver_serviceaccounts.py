"""Service-account tokens: TokenRequest, RBAC for service accounts, and every forged variant → 401."""

from __future__ import annotations

import base64
import json

import time

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.harness.apicluster import KUBECTL, APICluster

NS = "/api/v1/namespaces/default"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict, dict, str]:
    h, c, s = token.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(h))), json.loads(base64.urlsafe_b64decode(pad(c))), s


def make(header: dict, claims: dict, sig: str = "") -> str:
    return f"{b64u(json.dumps(header).encode())}.{b64u(json.dumps(claims).encode())}.{sig}"


@pytest.fixture(scope="module")
def sa_token(api: APICluster) -> str:
    code, sa, _ = api.request("POST", NS + "/serviceaccounts", {"metadata": {"name": "robot"}})
    assert code == 201
    api.request("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", {
        "metadata": {"name": "robot-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]})
    code, tr, _ = api.request("POST", NS + "/serviceaccounts/robot/token",
                              {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                               "spec": {"expirationSeconds": 3600}})
    assert code == 201 and tr["status"]["token"] and tr["status"]["expirationTimestamp"].endswith("Z")
    return tr["status"]["token"]


def test_service_account_token_authenticates_with_view_rights(api: APICluster, sa_token: str) -> None:
    assert api.request("GET", NS + "/configmaps", token=sa_token)[0] == 200
    code, status, _ = api.request("POST", NS + "/configmaps", {"metadata": {"name": "nope"}}, token=sa_token)
    assert code == 403 and 'User "system:serviceaccount:default:robot"' in status["message"]
    assert api.request("GET", NS + "/secrets", token=sa_token)[0] == 403
    assert api.request("GET", "/api/v1/namespaces/kube-system/configmaps", token=sa_token)[0] == 403
    code, review, _ = api.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                  {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token=sa_token)
    assert review["status"]["userInfo"]["username"] == "system:serviceaccount:default:robot"
    assert "system:serviceaccounts:default" in review["status"]["userInfo"]["groups"]


def test_forged_tokens_are_rejected(api: APICluster, sa_token: str) -> None:
    header, claims, sig = parts(sa_token)
    other_key = ec.generate_private_key(ec.SECP256R1())
    resigned_input = f"{b64u(json.dumps(header).encode())}.{b64u(json.dumps(claims).encode())}"
    r, s = decode_dss_signature(other_key.sign(resigned_input.encode(), ec.ECDSA(hashes.SHA256())))
    mac = hmac.HMAC(b"secret", hashes.SHA256())
    hs_input = f"{b64u(json.dumps(dict(header, alg='HS256')).encode())}.{b64u(json.dumps(claims).encode())}"
    mac.update(hs_input.encode())
    forged = {
        "unsigned alg none": make(dict(header, alg="none"), claims),
        "unsigned, empty signature": make(header, claims),
        "re-signed with another key": f"{resigned_input}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}",
        "HS256 with a guessed secret": f"{hs_input}.{b64u(mac.finalize())}",
        "claims changed (admin)": make(header, dict(claims, sub="system:admin"), sig),
        "expired": make(header, dict(claims, exp=int(time.time()) - 3600), sig),
        "wrong audience": make(header, dict(claims, aud=["someone-else"]), sig),
        "garbage": "a.b.c",
        "truncated": sa_token[:-10],
    }
    for name, token in forged.items():
        code, status, _ = api.request("GET", NS + "/configmaps", token=token)
        assert code == 401, name
        assert status["reason"] == "Unauthorized"


def test_token_dies_with_its_service_account_and_bound_pod(api: APICluster) -> None:
    api.request("POST", NS + "/serviceaccounts", {"metadata": {"name": "shortlived"}})
    api.request("POST", NS + "/pods", {"metadata": {"name": "holder"}, "spec": {
        "serviceAccountName": "shortlived", "containers": [{"name": "c", "image": "busybox"}]}})
    code, pod, _ = api.request("GET", NS + "/pods/holder")
    code, tr, _ = api.request("POST", NS + "/serviceaccounts/shortlived/token", {
        "spec": {"boundObjectRef": {"kind": "Pod", "name": "holder", "uid": pod["metadata"]["uid"]}}})
    token = tr["status"]["token"]
    code, review, _ = api.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                  {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                   "spec": {"token": token}})
    assert review["status"]["authenticated"] is True
    assert api.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                       {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1"}, token=token)[0] == 201
    api.request("DELETE", NS + "/pods/holder")
    assert api.request("GET", "/api/v1/namespaces", token=token)[0] == 401
    code, review, _ = api.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                  {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                   "spec": {"token": token}})
    assert review["status"]["authenticated"] is False


def test_short_expiry_is_invalid(api: APICluster) -> None:
    api.request("POST", NS + "/serviceaccounts", {"metadata": {"name": "brief"}})
    code, status, _ = api.request("POST", NS + "/serviceaccounts/brief/token", {"spec": {"expirationSeconds": 60}})
    assert code == 422


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_create_token(api: APICluster) -> None:
    api.request("POST", NS + "/serviceaccounts", {"metadata": {"name": "cli"}})
    token = api.kubectl("create", "token", "cli").stdout.strip()
    assert token.count(".") == 2
    code, review, _ = api.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                  {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1"}, token=token)
    assert code == 201 and review["status"]["userInfo"]["username"] == "system:serviceaccount:default:cli"

