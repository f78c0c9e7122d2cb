"""TLS for the ingress: certificates from ``kubernetes.io/tls`` Secrets, chosen per connection by SNI.

Python's ``ssl`` can only load a certificate chain from files, so a Secret's ``tls.crt`` and
``tls.key`` are written to a private temporary directory, loaded into an ``SSLContext`` and deleted
at once; contexts are cached by the Secret's resourceVersion. The listening context's
``sni_callback`` swaps in the context of the Secret the route table names for the server name.
A client that sends no server name, or one no Ingress has a certificate for, gets the default
certificate: a Secret from a ``tls`` entry without hosts, else a self-signed one made at startup
(like ingress-nginx's "Fake Certificate").
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
import ssl
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apimachinery import meta as m

log = logging.getLogger(__name__)


def self_signed(common_name: str = "Pilothouse Ingress Default Certificate",
                hosts: tuple[str, ...] = ("ingress.local",)) -> tuple[bytes, bytes]:
    """A self-signed P-256 certificate (PEM, valid for a year, usable as its own trust anchor) and key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A TLS server context for one certificate (raises ``ssl.SSLError``/``ValueError`` if unusable)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    with tempfile.TemporaryDirectory(prefix="pilot-ingress-tls-") as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        for path, data in ((cert, cert_pem), (key, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def secret_pem(secret: Mapping[str, Any]) -> tuple[bytes, bytes] | None:
    data = secret.get("data") or {}
    try:
        cert, key = base64.b64decode(data.get("tls.crt") or ""), base64.b64decode(data.get("tls.key") or "")
    except ValueError:
        return None
    return (cert, key) if cert and key else None


class CertStore:
    """SSL contexts of TLS Secrets, looked up in a cache of Secrets (``get(namespace/name)``)."""

    def __init__(self, get_secret: Callable[[str], Mapping[str, Any] | None],
                 choose: Callable[[str], tuple[str, str] | None]) -> None:
        self.get_secret = get_secret
        self.choose = choose  # server name -> (namespace, secret) from the route table
        self._cache: dict[str, tuple[str, ssl.SSLContext | None]] = {}  # key -> (resourceVersion, context)
        self.default = server_context(*self_signed())
        self.default.sni_callback = self._sni

    def context(self, namespace: str, name: str) -> ssl.SSLContext | None:
        key = f"{namespace}/{name}"
        secret = self.get_secret(key)
        if secret is None:
            self._cache.pop(key, None)
            return None
        rv = m.resource_version(secret)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == rv:
            return cached[1]
        ctx: ssl.SSLContext | None = None
        pem = secret_pem(secret)
        if pem is not None:
            try:
                ctx = server_context(*pem)
            except (ssl.SSLError, ValueError, OSError) as exc:
                log.warning("unusable TLS secret", extra={"event": "bad_tls_secret", "secret": key, "error": str(exc)})
        self._cache[key] = (rv, ctx)
        return ctx

    def _sni(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        choice = self.choose(server_name or "")
        if choice is None:
            return None
        ctx = self.context(*choice)
        if ctx is not None:
            sslobj.context = ctx
        return None
