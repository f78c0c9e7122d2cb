"""The kubelet's self-signed serving certificate (as ``kubelet --tls-cert-file`` unset does upstream).

Generated once under ``<root dir>/pki`` (EC P-256, one year, SANs: the node IP, the node names,
127.0.0.1 and localhost) and reused while it covers the same names. The API server does not verify
it (upstream's default without ``--kubelet-certificate-authority``); clients that want to can pin it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _sans(ips: list[str], names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for ip in sorted(set(ips) | {"127.0.0.1"}):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            names.append(ip)
    for name in sorted(set(names) | {"localhost"}):
        out.append(x509.DNSName(name))
    return out


def ensure_serving_cert(pki: Path, *, ips: list[str], names: list[str]) -> tuple[Path, Path]:
    pki.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = pki / "kubelet.crt", pki / "kubelet.key"
    wanted = _sans(ips, list(names))
    if cert_path.exists() and key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            fresh = cert.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
            if fresh and set(map(str, have)) == set(map(str, wanted)):
                return cert_path, key_path
        except (ValueError, x509.ExtensionNotFound):
            pass
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{names[0] if names else 'kubelet'}@pilothouse")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
