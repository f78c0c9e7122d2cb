"""The service proxy process: ``pilot proxy --kubeconfig F --node-name n1 [--node-ip 127.0.0.1]`` (or ``python -m proxy``).

Watches Services and EndpointSlices and forwards TCP and UDP from every Service address to ready
endpoints (``proxier``); with the process runtime, ClusterIPs are loopback addresses, so the API
server must allocate them from a loopback range (``--service-cluster-ip-range 127.96.0.0/16``)
for this process to be able to listen on them. NodePorts and published LoadBalancer ports are
listened on at ``--node-ip``. Unless ``--no-lb-allocator``, the process also campaigns for the
Lease ``kube-system/pilot-lb-allocator`` and, while it holds it, publishes LoadBalancer Services
on its node address (``lballoc``). ``/healthz``, ``/readyz`` and ``/metrics`` on ``--bind-health``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Awaitable

from apiclient import component
from apiclient.events import EventRecorder
from apiclient.leaderelection import default_identity

from . import runtime
from .catalog import ServiceCatalog
from .lballoc import LEASE_NAME, LoadBalancerAllocator
from .metrics import ProxyMetrics
from .proxier import ServiceProxy

log = logging.getLogger("proxy")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pilot proxy",
                                description="Service proxy of one node: ClusterIP, NodePort and LoadBalancer "
                                            "forwarding (TCP and UDP) to ready endpoints.")
    runtime.add_client_args(p)
    p.add_argument("--node-name", default=socket.gethostname(), help="this node's name (events, lease identity)")
    p.add_argument("--node-ip", default="127.0.0.1",
                   help="address(es) of this node, comma-separated: NodePorts and LoadBalancer ports listen there")
    p.add_argument("--bind-health", default="127.0.0.1:10256", help="HOST:PORT for /healthz, /readyz, /metrics")
    p.add_argument("--connect-timeout", type=float, default=3.0, metavar="SECONDS",
                   help="give up connecting to one endpoint after this long and try the next")
    p.add_argument("--udp-idle-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="end a UDP session after this long without datagrams")
    p.add_argument("--endpoint-fail-timeout", type=float, default=2.0, metavar="SECONDS",
                   help="skip an endpoint that refused a connection for this long (while others are left)")
    p.add_argument("--no-share-cluster-ips", action="store_true",
                   help="open ClusterIP listeners without SO_REUSEPORT (by default every proxy on a host "
                        "serves the cluster addresses together)")
    p.add_argument("--no-lb-allocator", action="store_true",
                   help="do not publish LoadBalancer Services (another allocator does it)")
    p.add_argument("--pod-netns", choices=("none", "docker"), default="none",
                   help="docker: also serve the loopback Service addresses inside the network namespace of "
                        "each of this node's pod sandboxes (the docker runtime; needs the Docker socket, the "
                        "host PID namespace and CAP_SYS_ADMIN)")
    p.add_argument("--pod-netns-root-dir", default="", metavar="DIR",
                   help="with --pod-netns=docker: only the sandboxes of the kubelet with this --root-dir")
    p.add_argument("--docker-host", default=None, help="Docker engine URL (default: $DOCKER_HOST or the local socket)")
    p.add_argument("--exit-on-node-ip-loss", action="store_true",
                   help="exit (status 1) when a --node-ip is no longer an address of this host: a proxy in a "
                        "node container's network namespace (docker compose) is restarted into the new one")
    component.add_leader_election_flags(p, resource_name=LEASE_NAME)
    return p


class NodeAddressLost(RuntimeError):
    pass


def _is_local(ip: str) -> bool:
    try:
        with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((ip, 0))
    except OSError:
        return False
    return True


async def watch_node_ips(node_ips: list[str], *, period: float = 1.0, misses: int = 3) -> None:
    """Runs while every node address stays local; raises NodeAddressLost once one has been missing
    ``misses`` checks in a row (the network namespace this proxy is in lost its interface, as when
    the node container it shares it with was restarted)."""
    missing = 0
    while True:
        await asyncio.sleep(period)
        gone = [ip for ip in node_ips if not _is_local(ip)]
        missing = missing + 1 if gone else 0
        if missing >= misses:
            raise NodeAddressLost(f"node address {', '.join(gone)} is no longer local")


async def _until_either(work: Awaitable[None], guard: Awaitable[None]) -> None:
    tasks = [asyncio.ensure_future(work), asyncio.ensure_future(guard)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve(args: argparse.Namespace) -> None:
    node_ips = [ip.strip() for ip in args.node_ip.split(",") if ip.strip()]
    client = runtime.make_client(args, f"pilot-proxy/{args.node_name}")
    metrics = ProxyMetrics()
    catalog = ServiceCatalog(client)
    proxy = ServiceProxy(catalog, node_ips=node_ips, metrics=metrics, connect_timeout=args.connect_timeout,
                         udp_idle_timeout=args.udp_idle_timeout, fail_timeout=args.endpoint_fail_timeout,
                         share_cluster_ips=not args.no_share_cluster_ips)
    sandboxes = None
    if args.pod_netns == "docker":
        from .netns import DockerSandboxes, open_in_namespace  # Docker's client: only when asked for

        sandboxes = DockerSandboxes(node_name=args.node_name, root_dir=args.pod_netns_root_dir,
                                    docker_host=args.docker_host)
        proxy.open_in_namespace = open_in_namespace
        sandboxes.on_change.append(lambda: proxy.set_pod_namespaces(
            {cid: ns.path for cid, ns in sandboxes.namespaces.items()}))
    recorder = EventRecorder(client, component="pilot-lb-allocator", host=args.node_name)
    runner = await runtime.start_http(args.bind_health, metrics, lambda: catalog.synced and proxy.synced.is_set())
    catalog.start()
    proxy.start()
    if sandboxes is not None:
        sandboxes.start()
    recorder.start()
    if not args.no_lb_allocator and node_ips:
        allocator = LoadBalancerAllocator(client, catalog.services, ip=node_ips[0], metrics=metrics, recorder=recorder)
        work: Awaitable[None] = component.campaign(runtime.leader_elector(client, args, metrics, allocator.lead))
    else:
        work = asyncio.Event().wait()  # forever: listeners and balancers run on their own
    if args.exit_on_node_ip_loss:
        work = _until_either(work, watch_node_ips(node_ips))
    log.info("proxy started", extra={"event": "started", "node": args.node_name, "node_ips": node_ips,
                                     "identity": default_identity(args.replica_name),
                                     "servers": list(client.config.servers), "health": args.bind_health})
    try:
        failure = await component.run_until_signal(work, name="lb-allocator")
    finally:
        if sandboxes is not None:
            await sandboxes.stop()
        await proxy.stop()
        await catalog.stop()
        await recorder.stop(1.0)
        await runner.cleanup()
        await client.close()
        log.info("stopped", extra={"event": "stopped"})
    if isinstance(failure, NodeAddressLost):
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    runtime.run(serve, build_parser().parse_args(sys.argv[1:] if argv is None else argv))
