"""The scheduler process: ``pilot scheduler --kubeconfig F [--leader-elect]`` (or ``python -m scheduler``).

Talks to the API server only (HTTPS, the kubeconfig's CA and token). With ``--leader-elect`` the
replicas share the Lease ``kube-system/kube-scheduler``: one schedules, the others keep warm caches
and take over when its lease expires; a replica that loses the lease stops scheduling at once and
campaigns again. ``/healthz``, ``/readyz`` and ``/metrics`` are served over plain HTTP on ``--bind``.
SIGTERM stops scheduling, releases the lease (so a standby takes over at once) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from typing import Any

from aiohttp import web

from apiclient.config import load_config
from apiclient.events import EventRecorder
from apiclient.leaderelection import LeaderElectionConfig, LeaderElector, default_identity
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
    p.add_argument("--leader-elect", action="store_true", help="run as one of several replicas (Lease election)")
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0, metavar="SECONDS")
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0, metavar="SECONDS")
    p.add_argument("--leader-elect-resource-name", default="kube-scheduler")
    p.add_argument("--leader-elect-resource-namespace", default="kube-system")
    p.add_argument("--replica-name", default=socket.gethostname(),
                   help="this replica's name; the lease holder identity is <name>_<pid>")
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


def _http_app(sched: Scheduler, metrics: Metrics) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        ok = sched.synced
        return web.Response(status=200 if ok else 503, text="ok" if ok else "informers not synced")

    async def metrics_(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_)
    return app


async def _campaign(elector: LeaderElector) -> None:
    """Lead whenever we hold the lease; after losing it, campaign again."""
    while True:
        await elector.run()
        log.warning("leadership lost; campaigning again", extra={"event": "campaign"})


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
    host, _, port = args.bind.rpartition(":")
    runner = web.AppRunner(_http_app(sched, metrics), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host or "127.0.0.1", int(port), reuse_address=True).start()
    sched.start()
    log.info("scheduler started", extra={"event": "started", "identity": identity, "servers": list(cfg.servers),
                                         "bind": args.bind, "leader_elect": args.leader_elect})

    leader = metrics.leader.labels(args.leader_elect_resource_name)
    main: asyncio.Task[Any]
    if args.leader_elect:
        async def on_started() -> None:
            leader.set(1)
            await sched.lead()

        elector = LeaderElector(client, LeaderElectionConfig(
            name=args.leader_elect_resource_name, namespace=args.leader_elect_resource_namespace, identity=identity,
            lease_duration=args.leader_elect_lease_duration, renew_deadline=args.leader_elect_renew_deadline,
            retry_period=args.leader_elect_retry_period),
            on_started_leading=on_started, on_stopped_leading=lambda: leader.set(0),
            on_new_leader=lambda who: log.info("leader is %s", who, extra={"event": "new_leader", "leader": who}))
        main = asyncio.create_task(_campaign(elector), name="campaign")
    else:
        leader.set(1)
        main = asyncio.create_task(sched.lead(), name="schedule")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down", extra={"event": "stopping"})
    main.cancel()
    stopper.cancel()
    results = await asyncio.gather(main, return_exceptions=True)
    if results and isinstance(results[0], BaseException) and not isinstance(results[0], asyncio.CancelledError):
        log.error("scheduler loop failed: %r", results[0])
    await sched.stop()
    await runner.cleanup()
    await client.close()
    log.info("stopped", extra={"event": "stopped"})


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_level)
    try:
        import uvloop

        uvloop.run(serve(args))
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args))
