"""Credentials for the docker compose topology (the ``init`` service runs ``pilot compose-init``).

Inside the compose network components reach the API servers by service name; people on the host
reach ``apiserver-1`` through its published port on 127.0.0.1. The serving certificate names both.
The store's client port is TLS with client certificates, as under ``pilot up``: its certificate
names the store services (``kvstore-1..3``), and only the API servers and the members (a follower
forwards writes to the leader's client port) hold a client certificate.
"""

from __future__ import annotations

from pathlib import Path

from .certs import ensure_cluster_secrets, ensure_identities
from .local import IDENTITIES, KUBERNETES_SERVICE_IP, node_identity

STORE_HOSTS = ("kvstore-1", "kvstore-2", "kvstore-3")


def init(state_dir: Path, *, api_hosts: list[str], published: str, nodes: list[str],
         store_hosts: list[str] | None = None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    hosts = ["127.0.0.1", "localhost", *api_hosts]
    ensure_cluster_secrets(state_dir, hosts=hosts, api_hosts=[KUBERNETES_SERVICE_IP],
                           store_hosts=["127.0.0.1", "localhost", *(store_hosts or STORE_HOSTS)])
    identities = dict(IDENTITIES)
    for node in nodes:
        name, identity = node_identity(node)
        identities[name] = identity
    ensure_identities(state_dir, identities, admin_server=f"https://{published}",
                      component_server=f"https://{api_hosts[0]}:6443")
