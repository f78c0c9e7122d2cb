"""The kubelet process: ``pilot kubelet --node-name n1 --runtime process --kubeconfig F`` (or ``python -m kubelet``).

Talks to the API server only (HTTPS, the kubeconfig's CA and token). Serves its own HTTPS endpoint
on ``--bind`` (logs, exec, stats, /healthz, /metrics; see ``server``). SIGTERM stops the kubelet and
leaves containers running (a new kubelet adopts them), unless ``--stop-pods-on-exit``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from apiclient.config import load_config
from apiclient.logs import dump_tasks_on_signal, setup_logging
from apiclient.rest import RESTClient

from .certs import ensure_serving_cert
from .config import ConfigError, KubeletConfig, parse_capacity, parse_pairs, parse_taints
from .kubelet import Kubelet
from .server import KubeletServer

log = logging.getLogger("kubelet")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pilot kubelet", description="Run pods on a node (a kubelet for Pilothouse).")
    p.add_argument("--node-name", required=True, help="the Node's name (with --fake-nodes N: the prefix of N names)")
    p.add_argument("--runtime", default="process", choices=["process", "docker", "fake"],
                   help="process: host processes with loopback pod IPs; docker: aiodocker; fake: nothing runs (KWOK)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    p.add_argument("--master", default="", help="comma-separated API server URLs (override the kubeconfig's)")
    p.add_argument("--capacity", default="cpu=4,memory=8Gi,pods=110",
                   help="node capacity (and allocatable), e.g. cpu=4,memory=8Gi,pods=110")
    p.add_argument("--labels", default="", help="extra node labels k=v,...")
    p.add_argument("--taints", default="", help="taints set when the Node is created: k=v:Effect,...")
    p.add_argument("--fake-nodes", type=int, default=0, help="with --runtime fake: run N nodes <node-name>-0..N-1")
    p.add_argument("--fake-start-delay", type=float, default=0.0,
                   help="fake runtime: seconds before a started container runs (and the pod is Running/Ready)")
    p.add_argument("--root-dir", default=".pilot/kubelet", help="state: containers, logs, pod volumes, pki")
    p.add_argument("--data-dir", default="", help="where local PersistentVolumes live (default <root-dir>/volumes)")
    p.add_argument("--bind", default="127.0.0.1:10250", help="HOST:PORT of the kubelet's HTTPS endpoint (port 0: any)")
    p.add_argument("--node-ip", default="", help="the Node's InternalIP (default: the --bind host)")
    p.add_argument("--cluster-dns", default="", help="HOST:PORT of the cluster DNS; process pods get it as "
                   "PILOT_DNS (libc resolvers need port 53, so they query it themselves); docker pods get "
                   "the HOST's address (resolved by the kubelet) as nameserver in /etc/resolv.conf")
    p.add_argument("--cluster-domain", default="cluster.local", help="cluster DNS domain (PILOT_CLUSTER_DOMAIN)")
    p.add_argument("--pod-cidr", default="",
                   help="pod CIDR (process runtime default: a free 127.<i>.0.0/16, kept in the Node's spec.podCIDR)")
    p.add_argument("--lease-interval", type=float, default=10.0, help="seconds between Lease renewals")
    p.add_argument("--lease-duration", type=int, default=40, help="leaseDurationSeconds written in the Lease")
    p.add_argument("--node-status-report-interval", type=float, default=300.0,
                   help="write the node status at least this often, changed or not")
    p.add_argument("--restart-backoff-base", type=float, default=10.0, help="first CrashLoopBackOff delay (seconds)")
    p.add_argument("--restart-backoff-max", type=float, default=300.0, help="longest CrashLoopBackOff delay")
    p.add_argument("--backoff-reset-after", type=float, default=600.0,
                   help="a container that ran this long before it exited restarts without backoff")
    p.add_argument("--status-concurrency", type=int, default=32, help="pod status writes in flight at most")
    p.add_argument("--local-provisioner", dest="local_provisioner", action="store_true", default=None,
                   help="provision StorageClass 'local' claims on this node (default: on unless --runtime fake)")
    p.add_argument("--no-local-provisioner", dest="local_provisioner", action="store_false")
    p.add_argument("--events", dest="events", action="store_true", default=None,
                   help="write Events about pods (default: on unless --runtime fake)")
    p.add_argument("--no-events", dest="events", action="store_false")
    p.add_argument("--no-cgroups", action="store_true", help="process runtime: never use cgroups (RLIMIT_AS only)")
    p.add_argument("--log-max-size", default="10Mi", help="rotate a container log at this size")
    p.add_argument("--log-max-files", type=int, default=5, help="log files kept per container (current included)")
    p.add_argument("--stats-interval", type=float, default=10.0, help="seconds between usage samples")
    p.add_argument("--docker-host", default="", help="docker runtime: the Engine URL (default: DOCKER_HOST or the socket)")
    p.add_argument("--docker-network", default="", help="docker runtime: network for pod sandboxes "
                   "('auto': the network of the container the kubelet runs in)")
    p.add_argument("--authentication", default="webhook", choices=["webhook", "none"],
                   help="webhook: bearer tokens checked by TokenReview/SubjectAccessReview; none: open endpoint")
    p.add_argument("--stop-pods-on-exit", action="store_true",
                   help="stop every container when the kubelet stops (default: leave them for the next kubelet)")
    p.add_argument("--log-level", default=os.environ.get("PILOT_LOG_LEVEL", "INFO"))
    return p


def config_from_args(args: argparse.Namespace) -> KubeletConfig:
    from apimachinery.quantity import Quantity

    cfg = KubeletConfig(
        node_name=args.node_name, runtime=args.runtime, kubeconfig=args.kubeconfig,
        capacity=parse_capacity(args.capacity), labels=parse_pairs(args.labels, "--labels"),
        taints=parse_taints(args.taints), fake_nodes=args.fake_nodes, root_dir=Path(args.root_dir).resolve(),
        bind=args.bind, node_ip=args.node_ip, pod_cidr=args.pod_cidr,
        cluster_dns=args.cluster_dns, cluster_domain=args.cluster_domain,
        data_dir=Path(args.data_dir).resolve() if args.data_dir else None, lease_interval=args.lease_interval,
        lease_duration=args.lease_duration, status_report_interval=args.node_status_report_interval,
        fake_start_delay=args.fake_start_delay, restart_backoff_base=args.restart_backoff_base,
        restart_backoff_max=args.restart_backoff_max, backoff_reset_after=args.backoff_reset_after,
        status_concurrency=args.status_concurrency, local_provisioner=args.local_provisioner,
        cgroups=not args.no_cgroups, log_max_bytes=Quantity(args.log_max_size).value(),
        log_max_files=args.log_max_files, docker_host=args.docker_host, docker_network=args.docker_network)
    cfg.validate()
    return cfg


async def serve(args: argparse.Namespace) -> None:
    cfg = config_from_args(args)
    servers = [s.strip() for s in args.master.split(",") if s.strip()] or None
    client_cfg = load_config(cfg.kubeconfig, servers=servers).with_user_agent(f"pilot-kubelet/{cfg.node_name}")
    client = RESTClient(client_cfg, max_connections=max(32, cfg.status_concurrency + 16))
    cfg.root_dir.mkdir(parents=True, exist_ok=True)
    kubelet = Kubelet(cfg, client, ca_data=client_cfg.ca_data, events=args.events, stats_interval=args.stats_interval)
    cert, key = ensure_serving_cert(cfg.root_dir / "pki", ips=[cfg.internal_ip, cfg.bind_host],
                                    names=cfg.node_names()[:50])
    server = KubeletServer(kubelet, host=cfg.bind_host, port=cfg.bind_port, cert=cert, key=key,
                           authenticate=args.authentication == "webhook")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    dump_tasks_on_signal(loop)
    starter = asyncio.create_task(kubelet.start(server), name="kubelet-start")
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({starter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    failed = starter.done() and starter.exception() is not None
    if failed:
        log.error("kubelet failed to start: %r", starter.exception())
    else:
        log.info("kubelet started", extra={"event": "started", "node": cfg.node_name, "runtime": cfg.runtime,
                                           "nodes": len(cfg.node_names()), "port": kubelet.port,
                                           "root_dir": str(cfg.root_dir)})
        await stop.wait()
    starter.cancel()
    stopper.cancel()
    await asyncio.gather(starter, return_exceptions=True)
    log.info("shutting down", extra={"event": "stopping"})
    await kubelet.stop(stop_pods=args.stop_pods_on_exit)
    await client.close()
    log.info("stopped", extra={"event": "stopped"})
    if failed:
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_level)
    try:
        config_from_args(args)
    except (ConfigError, ValueError) as exc:
        print(f"pilot kubelet: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        import uvloop

        uvloop.run(serve(args))
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args))
