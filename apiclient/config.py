"""Where the API server is and how to prove who we are: kubeconfig files and in-cluster credentials.

A component is started either with ``--kubeconfig F`` (a file ``pilot up`` or ``kubectl`` wrote) or
inside the cluster, where the kubelet mounts a service-account token, the cluster CA and the
namespace under ``/var/run/secrets/kubernetes.io/serviceaccount`` and sets
``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``. Both become one ``ClientConfig``.

Several API server URLs may be given (``servers``); the REST client fails over between them.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(ValueError):
    """The kubeconfig or the in-cluster environment does not describe a usable API server."""


@dataclass(frozen=True)
class ClientConfig:
    servers: tuple[str, ...]
    ca_data: bytes | None = None  # PEM
    token: str | None = None
    token_file: Path | None = None  # re-read on every new connection pool (rotated service-account tokens)
    namespace: str = "default"
    insecure: bool = False
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    user_agent: str = "pilothouse"

    def with_servers(self, servers: list[str] | tuple[str, ...]) -> ClientConfig:
        return replace(self, servers=tuple(s.rstrip("/") for s in servers))

    def with_user_agent(self, user_agent: str) -> ClientConfig:
        return replace(self, user_agent=user_agent)

    def bearer_token(self) -> str | None:
        if self.token_file is not None:
            try:
                return self.token_file.read_text().strip() or self.token
            except OSError:
                return self.token
        return self.token

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context for https servers: our CA, optional client certificate (build it once per client)."""
        if not any(s.startswith("https://") for s in self.servers):
            return None
        ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_data:
            ctx.load_verify_locations(cadata=self.ca_data.decode())
        if self.client_cert_data and self.client_key_data:
            # ssl can only load a certificate chain from files: write both to a private temp dir.
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
                for path, data in ((cert, self.client_cert_data), (key, self.client_key_data)):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                ctx.load_cert_chain(str(cert), str(key))
        return ctx


def _read_data(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    """``<key>-data`` (base64) or ``<key>`` (a file path relative to the kubeconfig)."""
    data = entry.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(data)
        except ValueError as exc:
            raise ConfigError(f"{key}-data is not valid base64") from exc
    path = entry.get(key)
    if path:
        p = Path(path).expanduser()
        return (p if p.is_absolute() else base / p).read_bytes()
    return None


def _named(items: Any, name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get(what) or {}
    raise ConfigError(f"kubeconfig has no {what} named {name!r}")


def from_kubeconfig(path: str | Path, *, context: str | None = None) -> ClientConfig:
    """Read a kubeconfig (``server`` may list several URLs separated by commas)."""
    path = Path(path).expanduser()
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {path} is not a mapping")
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise ConfigError(f"kubeconfig {path} has no current-context")
    ctx = _named(doc.get("contexts"), ctx_name, "context")
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster")
    user = _named(doc.get("users"), ctx.get("user", ""), "user") if ctx.get("user") else {}
    servers = tuple(s.strip().rstrip("/") for s in str(cluster.get("server", "")).split(",") if s.strip())
    if not servers:
        raise ConfigError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server")
    base = path.parent
    token_file = Path(user["tokenFile"]) if user.get("tokenFile") else None
    if token_file is not None and not token_file.is_absolute():
        token_file = base / token_file
    return ClientConfig(
        servers=servers,
        ca_data=_read_data(cluster, "certificate-authority", base),
        token=user.get("token") or None,
        token_file=token_file,
        namespace=ctx.get("namespace") or "default",
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        client_cert_data=_read_data(user, "client-certificate", base),
        client_key_data=_read_data(user, "client-key", base),
    )


def in_cluster(*, root: Path = SERVICE_ACCOUNT_DIR, env: dict[str, str] | None = None) -> ClientConfig:
    """The service-account credentials a pod gets (``rest.InClusterConfig``)."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
    token_path = root / "token"
    try:
        token = token_path.read_text().strip()
        ca = (root / "ca.crt").read_bytes()
    except OSError as exc:
        raise ConfigError(f"service-account credentials missing: {exc}") from exc
    ns_path = root / "namespace"
    namespace = ns_path.read_text().strip() if ns_path.exists() else "default"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    return ClientConfig(servers=(f"https://{host}:{port}",), ca_data=ca, token=token, token_file=token_path,
                        namespace=namespace or "default")


def load_config(kubeconfig: str | Path | None = None, *, context: str | None = None,
                servers: list[str] | None = None) -> ClientConfig:
    """``--kubeconfig`` if given, else ``$KUBECONFIG``, else in-cluster, else ``~/.kube/config``.

    ``servers`` overrides the URLs (endpoint failover across API server replicas).
    """
    if kubeconfig:
        cfg = from_kubeconfig(kubeconfig, context=context)
    elif os.environ.get("KUBECONFIG"):
        cfg = from_kubeconfig(os.environ["KUBECONFIG"].split(os.pathsep)[0], context=context)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        cfg = in_cluster()
    else:
        cfg = from_kubeconfig(Path.home() / ".kube" / "config", context=context)
    return cfg.with_servers(servers) if servers else cfg
