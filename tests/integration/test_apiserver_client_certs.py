"""Client-certificate authentication (``--client-ca-file``), as Kubernetes does it.

A client certificate signed by the client CA authenticates its subject: CN is the user name, each O
a group. RBAC then decides as for any user. A certificate from another CA fails the TLS handshake;
clients without a certificate still use tokens.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from apiserver.auth import user_from_certificate
from pilot.certs import ensure_certificates, issue_certificate
from tests.harness.apicluster import KUBECTL, APICluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[APICluster]:
    root = tmp_path_factory.mktemp("client-certs")
    c = APICluster(root, extra_args=("--client-ca-file", str(root / "pki" / "ca.crt")))
    c.start_or_close()
    yield c
    c.close()


def _call(c: APICluster, method: str, path: str, cert: tuple[Path, Path] | None, token: str = "",
          body: dict | None = None) -> tuple[int, dict]:
    """One request with a client certificate and/or a bearer token (either may be absent)."""
    ctx = c.ssl_context()
    if cert is not None:
        ctx.load_cert_chain(*map(str, cert))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(c.url(0) + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _get(c: APICluster, path: str, cert: tuple[Path, Path] | None, token: str = "") -> tuple[int, dict]:
    return _call(c, "GET", path, cert, token)


def _whoami(c: APICluster, cert: tuple[Path, Path] | None, token: str = "") -> tuple[int, dict]:
    return _call(c, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", cert, token,
                 {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})


def test_the_certificate_names_the_user_and_groups(cluster: APICluster) -> None:
    alice = issue_certificate(cluster.root / "pki", "alice", hosts=[], client=True, organizations=("devs", "qa"))
    code, review = _whoami(cluster, alice)
    assert code == 201, review
    assert review["status"]["userInfo"] == {"username": "alice", "groups": ["devs", "qa", "system:authenticated"]}
    # RBAC decides as for any user: alice is bound to nothing.
    code, body = _get(cluster, "/api/v1/namespaces/default/pods", alice)
    assert code == 403 and 'User "alice" cannot list resource "pods"' in body["message"], body


def test_a_system_masters_certificate_may_do_anything(cluster: APICluster) -> None:
    root = issue_certificate(cluster.root / "pki", "root-admin", hosts=[], client=True,
                             organizations=("system:masters",))
    code, body = _get(cluster, "/api/v1/namespaces/default/pods", root)
    assert code == 200 and body["kind"] == "PodList"


def test_a_certificate_of_another_ca_is_refused_in_the_handshake(cluster: APICluster, tmp_path: Path) -> None:
    other = tmp_path / "other-pki"
    ensure_certificates(other, hosts=["127.0.0.1"])
    mallory = issue_certificate(other, "mallory", hosts=[], client=True, organizations=("system:masters",))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        _get(cluster, "/api/v1/namespaces/default/pods", mallory)


def test_tokens_still_work_and_no_credentials_is_anonymous(cluster: APICluster) -> None:
    code, review = _whoami(cluster, None, cluster.token)
    assert code == 201 and review["status"]["userInfo"]["username"] == "admin"
    code, _ = _get(cluster, "/api/v1/namespaces/default/pods", None)
    assert code == 401


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_with_a_client_certificate_kubeconfig(cluster: APICluster, tmp_path: Path) -> None:
    cert, key = issue_certificate(cluster.root / "pki", "carol", hosts=[], client=True,
                                  organizations=("system:masters",))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": cluster.url(0),
                                               "certificate-authority": str(cluster.certs.ca_cert)}}],
        "users": [{"name": "carol", "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "carol"}}]}))
    out = cluster.kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "json", check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"]["userInfo"]["username"] == "carol"
    out = cluster.kubectl("--kubeconfig", str(kubeconfig), "create", "namespace", "by-cert", check=False)
    assert out.returncode == 0, out.stderr


def test_only_a_named_subject_is_a_user() -> None:
    assert user_from_certificate(None) is None
    assert user_from_certificate({}) is None
    assert user_from_certificate({"subject": ((("organizationName", "devs"),),)}) is None
    user = user_from_certificate({"subject": ((("commonName", "bob"),), (("organizationName", "g"),))})
    assert user is not None and user.name == "bob" and user.groups == ("g", "system:authenticated")
