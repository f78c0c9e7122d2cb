"""Credentials for the docker compose topology (the ``init`` service runs ``pilot compose-init``).

Inside the compose network components reach the API servers by service name; people on the host
reach ``apiserver-1`` through its published port on 127.0.0.1. The serving certificate names both.
The store's client port is TLS with client certificates, as under ``pilot up``: its certificate
names the store services (``kvstore-1..3``), and only the API servers hold the client certificate.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from .certs import ensure_certificates, ensure_cluster_secrets, ensure_identities, issue_certificate
from .local import IDENTITIES, node_identity

STORE_HOSTS = ("kvstore-1", "kvstore-2", "kvstore-3")


def _names(cert_path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in sans.get_values_for_type(x509.DNSName)} | \
        {str(n) for n in sans.get_values_for_type(x509.IPAddress)}


def _ensure_server_certificate(pki: Path, name: str, hosts: list[str]) -> None:
    """``name``'s certificate for ``hosts``; one that misses a host (an older state dir) is re-issued."""
    cert_path, key_path = pki / f"{name}.crt", pki / f"{name}.key"
    wanted = {str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in hosts}
    if cert_path.exists() and key_path.exists() and not wanted <= _names(cert_path):
        cert_path.unlink()
        key_path.unlink()
    issue_certificate(pki, name, hosts=hosts)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def init(state_dir: Path, *, api_hosts: list[str], published: str, nodes: list[str],
         store_hosts: list[str] | None = None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    hosts = ["127.0.0.1", "localhost", *api_hosts]
    ensure_certificates(state_dir / "pki", hosts=hosts)
    # Before ensure_cluster_secrets, which would issue the store's certificate for the API hosts only.
    _ensure_server_certificate(state_dir / "pki", "kvstore", ["127.0.0.1", "localhost", *(store_hosts or STORE_HOSTS)])
    ensure_cluster_secrets(state_dir, hosts=hosts)
    identities = dict(IDENTITIES)
    for node in nodes:
        name, identity = node_identity(node)
        identities[name] = identity
    ensure_identities(state_dir, identities, admin_server=f"https://{published}",
                      component_server=f"https://{api_hosts[0]}:6443")
