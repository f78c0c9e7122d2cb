"""The cluster's certificates: names the API servers answer to, and re-issue for state dirs that miss one."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from pilot.certs import certificate_names, ensure_certificates, ensure_cluster_secrets, issue_certificate
from pilot.local import KUBERNETES_SERVICE_IP


def test_serving_certificate_names_the_kubernetes_service(tmp_path: Path) -> None:
    ensure_cluster_secrets(tmp_path, hosts=["127.0.0.1", "localhost"], api_hosts=[KUBERNETES_SERVICE_IP])
    api = certificate_names(tmp_path / "pki" / "apiserver.crt")
    assert {"kubernetes.default.svc", "kubernetes", "127.0.0.1", KUBERNETES_SERVICE_IP} <= api
    # Only the API servers answer on the Service's address: the store's certificate does not name it.
    assert KUBERNETES_SERVICE_IP not in certificate_names(tmp_path / "pki" / "kvstore.crt")


def test_a_certificate_missing_a_name_is_issued_again_by_the_same_ca(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    paths = ensure_certificates(pki, hosts=["127.0.0.1"])
    ca = paths.ca_cert.read_bytes()
    first = paths.server_cert.read_bytes()
    assert ensure_certificates(pki, hosts=["127.0.0.1"]).server_cert.read_bytes() == first  # nothing missing
    ensure_certificates(pki, hosts=["127.0.0.1", "10.0.0.7", "api.example"])
    assert paths.ca_cert.read_bytes() == ca
    assert paths.server_cert.read_bytes() != first
    assert {"10.0.0.7", "api.example", "127.0.0.1"} <= certificate_names(paths.server_cert)
    server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    server.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))  # still signed by the cluster CA


def test_the_store_certificate_serves_both_ends_and_an_older_one_is_replaced(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    ensure_certificates(pki, hosts=["127.0.0.1"])
    issue_certificate(pki, "kvstore", hosts=["127.0.0.1", "localhost"])  # as older versions made it: serving only
    ensure_cluster_secrets(tmp_path, hosts=["127.0.0.1", "localhost"])
    usages = x509.load_pem_x509_certificate((pki / "kvstore.crt").read_bytes()).extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages and ExtendedKeyUsageOID.SERVER_AUTH in usages
