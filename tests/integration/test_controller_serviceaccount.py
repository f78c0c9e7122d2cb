"""The ServiceAccount controller and the root CA publisher: every namespace gets a ``default``
ServiceAccount and a ``kube-root-ca.crt`` ConfigMap holding the cluster CA, and gets them back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.apicluster import APICluster
from tests.integration.test_controller_support import Rest, controller_env, wait_for


@pytest.fixture(scope="module")
def rest(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rest]:
    with controller_env(api, tmp_path_factory.mktemp("cm"), namespace="sa-test", nodes=[],
                        controllers="serviceaccount,root-ca-cert-publisher") as (r, _, _):
        yield r


def sa(rest: Rest, ns: str) -> dict | None:
    return rest.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default")


def ca(rest: Rest, ns: str) -> dict | None:
    return rest.get(f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt")


def test_every_namespace_gets_a_default_account_and_the_ca(rest: Rest, api: APICluster) -> None:
    pem = api.certs.ca_cert.read_text()
    for ns in ("default", "kube-system", "sa-test"):
        wait_for(lambda: sa(rest, ns), 30, f"default ServiceAccount in {ns}")
        cm = wait_for(lambda: ca(rest, ns), 30, f"kube-root-ca.crt in {ns}")
        assert cm["data"] == {"ca.crt": pem}
        assert "kube-apiserver" in cm["metadata"]["annotations"]["kubernetes.io/description"]
    rest.namespace("sa-new")
    wait_for(lambda: sa(rest, "sa-new") and ca(rest, "sa-new"), 30, "both in a new namespace")


def test_they_come_back_when_deleted_or_edited(rest: Rest, api: APICluster) -> None:
    rest.namespace("sa-heal")
    first = wait_for(lambda: sa(rest, "sa-heal"), 30, "default ServiceAccount")
    rest.call("DELETE", "/api/v1/namespaces/sa-heal/serviceaccounts/default")
    again = wait_for(lambda: (s := sa(rest, "sa-heal")) and s["metadata"]["uid"] != first["metadata"]["uid"] and s,
                     30, "a new default ServiceAccount")
    assert again["metadata"]["name"] == "default"
    wait_for(lambda: ca(rest, "sa-heal"), 30, "kube-root-ca.crt")
    rest.merge("/api/v1/namespaces/sa-heal/configmaps/kube-root-ca.crt", {"data": {"ca.crt": "forged"}})
    pem = api.certs.ca_cert.read_text()
    wait_for(lambda: (ca(rest, "sa-heal") or {}).get("data") == {"ca.crt": pem}, 30, "the CA restored")
    rest.call("DELETE", "/api/v1/namespaces/sa-heal/configmaps/kube-root-ca.crt")
    wait_for(lambda: (ca(rest, "sa-heal") or {}).get("data") == {"ca.crt": pem}, 30, "the ConfigMap recreated")
