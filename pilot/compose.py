"""Credentials for the docker compose topology (the ``init`` service runs ``pilot compose-init``).

Inside the compose network components reach the API servers by service name; people on the host
reach ``apiserver-1`` through its published port on 127.0.0.1. The serving certificate names both.
"""

from __future__ import annotations

from pathlib import Path

from .certs import ensure_cluster_secrets, ensure_identities
from .local import IDENTITIES, node_identity


def init(state_dir: Path, *, api_hosts: list[str], published: str, nodes: list[str]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    ensure_cluster_secrets(state_dir, hosts=["127.0.0.1", "localhost", *api_hosts])
    identities = dict(IDENTITIES)
    for node in nodes:
        name, identity = node_identity(node)
        identities[name] = identity
    ensure_identities(state_dir, identities, admin_server=f"https://{published}",
                      component_server=f"https://{api_hosts[0]}:6443")
    # Files are read by the other containers' processes: keep them private to the owner, but the
    # whole state dir belongs to the container user that runs every component.
