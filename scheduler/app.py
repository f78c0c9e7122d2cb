"""The scheduler process: ``pilot scheduler --kubeconfig F [--leader-elect]`` (or ``python -m scheduler``).

Talks to the API server only (HTTPS, the kubeconfig's CA and token). With ``--leader-elect`` the
replicas share the Lease ``kube-system/kube-scheduler``: one schedules, the others keep warm caches
and take over when its lease expires; a replica that loses the lease stops scheduling at once and
campaigns again. ``/healthz``, ``/readyz`` and ``/metrics`` are served over plain HTTP on ``--bind``.
SIGTERM stops scheduling, releases the lease (so a standby takes over at once) and exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from apiclient import component
from apiclient.config import load_config
from apiclient.events import EventRecorder
from apiclient.leaderelection import default_identity
from apiclient.logs import setup_logging
from apiclient.rest import RESTClient

from .metrics import Metrics
from .scheduler import Scheduler, SchedulerConfig

log = logging.getLogger("scheduler")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pilot scheduler",
                                description="Assign pending pods to nodes (a kube-scheduler for Pilothouse).")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    p.add_argument("--master", default="", help="comma-separated API server URLs (overrides the kubeconfig's; "
                                                "the client fails over between them)")
    p.add_argument("--scheduler-name", default="default-scheduler", help="schedule pods with this spec.schedulerName")
    component.add_leader_election_flags(p, resource_name="kube-scheduler")
    p.add_argument("--bind", default="127.0.0.1:10259", help="HOST:PORT for /healthz, /readyz and /metrics (HTTP)")
    p.add_argument("--percentage-of-nodes-to-score", type=int, default=0,
                   help="stop filtering after this share of nodes fits (0: adaptive, as kube-scheduler)")
    p.add_argument("--pod-initial-backoff-seconds", type=float, default=1.0)
    p.add_argument("--pod-max-backoff-seconds", type=float, default=10.0)
    p.add_argument("--bind-concurrency", type=int, default=64, help="bindings in flight at most")
    p.add_argument("--no-scheduled-events", action="store_true",
                   help="do not write a Scheduled event per bound pod (FailedScheduling events are always written)")
    p.add_argument("--log-level", default=os.environ.get("PILOT_LOG_LEVEL", "INFO"))
    return p


async def serve(args: argparse.Namespace) -> None:
    servers = [s.strip() for s in args.master.split(",") if s.strip()] or None
    cfg = load_config(args.kubeconfig, servers=servers).with_user_agent(f"pilot-scheduler/{args.scheduler_name}")
    client = RESTClient(cfg, max_connections=max(16, args.bind_concurrency + 8))
    identity = default_identity(args.replica_name)
    metrics = Metrics()
    recorder = EventRecorder(client, component=args.scheduler_name, host=identity)
    sched = Scheduler(client, SchedulerConfig(
        scheduler_name=args.scheduler_name, percentage_of_nodes_to_score=args.percentage_of_nodes_to_score,
        initial_backoff=args.pod_initial_backoff_seconds, max_backoff=args.pod_max_backoff_seconds,
        bind_concurrency=args.bind_concurrency, scheduled_events=not args.no_scheduled_events),
        metrics=metrics, recorder=recorder)
    runner = await component.start_http(component.health_app(ready=lambda: sched.synced, metrics=metrics.render),
                                        args.bind)
    sched.start()
    log.info("scheduler started", extra={"event": "started", "identity": identity, "servers": list(cfg.servers),
                                         "bind": args.bind, "leader_elect": args.leader_elect})
    await component.lead_until_signal(client, args, identity=identity, lead=sched.lead, name="scheduler",
                                      leader_gauge=metrics.leader.labels(args.leader_elect_resource_name))
    await sched.stop()
    await runner.cleanup()
    await client.close()
    log.info("stopped", extra={"event": "stopped"})


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_level)
    component.run_async(serve(args))
