"""Cluster credentials: a CA, a serving certificate, tokens and a kubeconfig.

kubectl sends bearer tokens only over HTTPS and verifies the server against the kubeconfig's CA,
so every cluster gets its own CA whose certificate is embedded in the kubeconfig.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, slots=True)
class CertPaths:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


API_SERVER_NAMES = ("localhost", "127.0.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc")


def ensure_certificates(directory: Path, *, hosts: list[str]) -> CertPaths:
    """The cluster CA (created once) and the API servers' serving certificate for ``hosts`` (IPs or DNS
    names) and the in-cluster names of the ``kubernetes`` Service; a serving certificate that misses
    one of them (a state dir from an older version) is issued again by the same CA."""
    paths = CertPaths(directory / "ca.crt", directory / "ca.key", directory / "apiserver.crt",
                      directory / "apiserver.key")
    if not (paths.ca_cert.exists() and paths.ca_key.exists()):
        now = dt.datetime.now(dt.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pilothouse-ca")])
        ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                   .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, encipher_only=False,
                                                decipher_only=False), critical=True)
                   .sign(ca_key, hashes.SHA256()))
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(paths.ca_key, _key_pem(ca_key))
        paths.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        paths.server_cert.unlink(missing_ok=True)  # signed by a CA that is gone
    ensure_server_certificate(directory, "apiserver", [*API_SERVER_NAMES, *hosts])
    return paths


def certificate_names(cert_path: Path) -> set[str]:
    """The DNS names and IP addresses a certificate's subjectAltName lists."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in sans.get_values_for_type(x509.DNSName)} | \
        {str(n) for n in sans.get_values_for_type(x509.IPAddress)}


def _canonical(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _client_usable(cert_path: Path) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages


def ensure_server_certificate(pki: Path, name: str, hosts: list[str], *, peer: bool = False) -> None:
    """``name``'s serving certificate for ``hosts`` (``peer``: usable as a client certificate too);
    one that misses a host or that use is issued again."""
    cert_path, key_path = pki / f"{name}.crt", pki / f"{name}.key"
    if cert_path.exists() and key_path.exists() and (
            not {_canonical(h) for h in hosts} <= certificate_names(cert_path)
            or (peer and not _client_usable(cert_path))):
        cert_path.unlink()
        key_path.unlink()
    issue_certificate(pki, name, hosts=hosts, peer=peer)


def issue_certificate(pki: Path, name: str, *, hosts: list[str], client: bool = False,
                      peer: bool = False, organizations: Sequence[str] = ()) -> tuple[Path, Path]:
    """A certificate signed by the cluster CA in ``pki`` (created by ensure_certificates), unless present.

    ``client`` makes it a client certificate (CN = name, one O per entry of ``organizations``: the
    user and groups an API server with ``--client-ca-file`` reads from it), else a server
    certificate for ``hosts``; ``peer`` a certificate for both ends of a connection between members
    (server and client use).
    """
    cert_path, key_path = pki / f"{name}.crt", pki / f"{name}.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                                        *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825)))
    if client:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    else:
        sans: list[x509.GeneralName] = []
        for host in dict.fromkeys(hosts):
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, *([ExtendedKeyUsageOID.CLIENT_AUTH] if peer else [])]
        builder = (builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def new_token() -> str:
    return secrets.token_urlsafe(32)


def write_token_file(path: Path, entries: list[tuple[str, str, str, list[str]]]) -> None:
    lines = [f'{token},{user},{uid},"{",".join(groups)}"' for token, user, uid, groups in entries]
    _write_private(path, ("\n".join(lines) + "\n").encode())


def write_kubeconfig(path: Path, *, server: str, ca_cert: Path, token: str, user: str = "admin",
                     cluster: str = "pilothouse") -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_cert.read_bytes()).decode(),
        }}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user, "namespace": "default"}}],
        "current-context": cluster,
        "preferences": {},
    }
    _write_private(path, yaml.safe_dump(config, sort_keys=False).encode())


def _ensure_private(path: Path, make: Callable[[], bytes]) -> None:
    if not path.exists():
        _write_private(path, make())


def ensure_cluster_secrets(state_dir: Path, *, hosts: list[str], api_hosts: Sequence[str] = (),
                           store_hosts: Sequence[str] | None = None) -> None:
    """CA and serving certificates, service-account signing key, encryption config, peer secret.

    ``hosts`` are the names of every server (API servers, store members); ``api_hosts`` are further
    names only the API servers' certificate carries (the ``kubernetes`` Service's ClusterIP);
    ``store_hosts``, when given, are the store members' names instead of ``hosts``."""
    def sa_key() -> bytes:
        from apiserver.serviceaccounts import generate_private_key_pem

        return generate_private_key_pem()

    def encryption_config() -> bytes:
        # Imported only when needed: it pulls in the API server's storage (and aiohttp), 0.2 s that
        # every later `pilot up` (and the supervisor it starts) would pay for a file that exists.
        from apiserver.encryption import new_config

        return new_config().encode()

    ensure_certificates(state_dir / "pki", hosts=[*hosts, *api_hosts])
    # The store's client port is TLS with client certificates: only the API servers get in. The
    # members' certificate also serves their peer connections (mutual TLS), so it is made for both ends.
    ensure_server_certificate(state_dir / "pki", "kvstore", list(hosts if store_hosts is None else store_hosts),
                              peer=True)
    issue_certificate(state_dir / "pki", "apiserver-kvstore-client", hosts=[], client=True)
    _ensure_private(state_dir / "pki" / "sa.key", sa_key)
    _ensure_private(state_dir / "encryption.yaml", encryption_config)
    _ensure_private(state_dir / "peer-secret", lambda: (new_token() + new_token()).encode())


def component_kubeconfig(state_dir: Path, identity: str) -> Path:
    return state_dir / "kubeconfigs" / f"{identity}.kubeconfig"


def ensure_identities(state_dir: Path, identities: dict[str, tuple[str, list[str]]], *, admin_server: str,
                      component_server: str) -> None:
    """A token and a kubeconfig per identity; existing tokens are kept (tokens.csv only grows).

    ``admin`` gets ``<state>/kubeconfig`` (for people, pointing at ``admin_server``); every other
    identity gets ``<state>/kubeconfigs/<identity>.kubeconfig`` pointing at ``component_server``.
    """
    import csv

    tokens_file = state_dir / "tokens.csv"
    known: dict[str, tuple[str, str, str, list[str]]] = {}
    if tokens_file.exists():
        for row in csv.reader(tokens_file.read_text().splitlines()):
            if len(row) >= 3:
                known[row[1]] = (row[0], row[1], row[2], [g for g in (row[3] if len(row) > 3 else "").split(",") if g])
    changed = False
    for identity, (user, groups) in identities.items():
        if user not in known:
            known[user] = (new_token(), user, identity, groups)
            changed = True
    if changed or not tokens_file.exists():
        write_token_file(tokens_file, list(known.values()))
    ca = state_dir / "pki" / "ca.crt"
    for identity, (user, _groups) in identities.items():
        admin = identity == "admin"
        path = state_dir / "kubeconfig" if admin else component_kubeconfig(state_dir, identity)
        if changed or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_kubeconfig(path, server=admin_server if admin else component_server, ca_cert=ca,
                             token=known[user][0], user=user)
