"""What the three processes of this package (proxy, dns, ingress) share on top of ``apiclient.component``.

Each process talks to the API server only through ``apiclient`` (HTTPS, the kubeconfig's CA and
token), serves ``/healthz``, ``/readyz`` and ``/metrics`` over plain HTTP on ``--bind-health``,
logs JSON lines, and stops cleanly on SIGTERM/SIGINT (a leader releases its Lease so a standby
takes over at once). Work that only one replica may do (publishing LoadBalancers, writing
Ingress status) always goes through Lease election: the processes run one per node, so several
replicas are the normal case (``--leader-elect`` is accepted and implied).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from apiclient import component
from apiclient.config import load_config
from apiclient.leaderelection import LeaderElector
from apiclient.logs import setup_logging
from apiclient.rest import RESTClient

from .metrics import _Registry


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` → ``("127.0.0.1", 8080)``; a bare host takes ``default_port``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"{text!r}: expected HOST:PORT")
        return text, default_port
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise ValueError(f"{text!r}: the port is not a number") from None


def add_client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    p.add_argument("--master", default="", help="comma-separated API server URLs (overrides the kubeconfig's; "
                                                "the client fails over between them)")
    p.add_argument("--log-level", default=os.environ.get("PILOT_LOG_LEVEL", "INFO"))


def make_client(args: argparse.Namespace, agent: str) -> RESTClient:
    servers = [s.strip() for s in args.master.split(",") if s.strip()] or None
    cfg = load_config(args.kubeconfig, servers=servers).with_user_agent(agent)
    return RESTClient(cfg)


async def start_http(bind: str, metrics: _Registry, ready: Callable[[], bool]) -> web.AppRunner:
    """``/healthz`` (alive), ``/readyz`` (caches synced), ``/metrics`` (Prometheus) on ``bind``."""
    return await component.start_http(component.health_app(ready=ready, metrics=metrics.render), bind)


def leader_elector(client: RESTClient, args: argparse.Namespace, metrics: _Registry,
                   on_started: Callable[[], Awaitable[None]]) -> LeaderElector:
    """An elector from ``component.add_leader_election_flags``' flags that keeps the leader gauge."""
    gauge = metrics.leader.labels(args.leader_elect_resource_name)

    async def started() -> None:
        gauge.set(1)
        await on_started()

    return component.elector_from_args(client, args, on_started_leading=started, on_stopped_leading=lambda: gauge.set(0))


def run(serve: Callable[[argparse.Namespace], Coroutine[Any, Any, None]], args: argparse.Namespace) -> None:
    setup_logging(args.log_level)
    component.run_async(serve(args))
