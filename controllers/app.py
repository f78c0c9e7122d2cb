"""The controller-manager process: ``pilot controller-manager --kubeconfig F [--leader-elect] [--controllers ...]``
(or ``python -m controllers``).

Talks to the API server only (HTTPS, the kubeconfig's CA and token). Informers start at once and
run for the life of the process, so a standby replica keeps warm caches; the controllers run only
while this replica holds the Lease ``kube-system/kube-controller-manager`` (with
``--leader-elect``). Each leadership term builds the controllers afresh, so nothing a previous term
remembered (expectations, queues) can mislead the next; losing the lease stops them at once and the
replica campaigns again. ``/healthz``, ``/readyz`` and ``/metrics`` are served over plain HTTP on
``--bind``. SIGTERM stops the controllers, releases the lease (a standby takes over at once) and exits.

``--controllers`` takes upstream's syntax: ``*`` (every controller on by default), ``name`` to
enable one, ``-name`` to disable one, e.g. ``--controllers '*,-nodelifecycle'``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys

from apiclient.component import (add_leader_election_flags, campaign, elector_from_args, health_app,
                                 run_async, run_until_signal, start_http)
from apiclient.config import load_config
from apiclient.events import EventRecorder
from apiclient.leaderelection import default_identity
from apiclient.logs import setup_logging
from apiclient.rest import RESTClient

from .context import BaseController, ControllerContext, InformerFactory, Options
from .metrics import Metrics

log = logging.getLogger("controllers")

# name -> "module:Class", in start order.
CONTROLLERS: dict[str, str] = {
    "replicaset": "controllers.replicaset:ReplicaSetController",
    "replicationcontroller": "controllers.replicaset:ReplicationControllerController",
    "deployment": "controllers.deployment:DeploymentController",
    "garbagecollector": "controllers.garbagecollector:GarbageCollector",
    "namespace": "controllers.namespace:NamespaceController",
    "serviceaccount": "controllers.serviceaccount:ServiceAccountController",
    "root-ca-cert-publisher": "controllers.serviceaccount:RootCAPublisher",
    "endpoints": "controllers.endpoints:EndpointsController",
    "endpointslice": "controllers.endpoints:EndpointSliceController",
    "endpointslicemirroring": "controllers.endpointslicemirroring:EndpointSliceMirroringController",
    "nodelifecycle": "controllers.nodelifecycle:NodeLifecycleController",
    "job": "controllers.job:JobController",
    "cronjob": "controllers.cronjob:CronJobController",
    "daemonset": "controllers.daemonset:DaemonSetController",
    "statefulset": "controllers.statefulset:StatefulSetController",
    "horizontalpodautoscaling": "controllers.hpa:HPAController",
    "ttl-after-finished": "controllers.job:TTLAfterFinishedController",
    "podgc": "controllers.podgc:PodGCController",
    "resourcequota": "controllers.resourcequota:ResourceQuotaController",
}


def available_controllers() -> dict[str, type[BaseController]]:
    """The controllers whose modules exist in this build (name -> class)."""
    out: dict[str, type[BaseController]] = {}
    for name, target in CONTROLLERS.items():
        module, _, cls = target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        out[name] = getattr(mod, cls)
    return out


def select_controllers(spec: str, known: list[str]) -> list[str]:
    """Upstream's ``--controllers`` list: ``*`` = all, ``name`` on, ``-name`` off (later wins)."""
    items = [s.strip() for s in spec.split(",") if s.strip()] or ["*"]
    enabled: set[str] = set()
    for item in items:
        if item == "*":
            enabled |= set(known)
        elif item.startswith("-"):
            enabled.discard(item[1:])
        elif item in known:
            enabled.add(item)
        else:
            raise SystemExit(f"unknown controller {item!r}; known: {', '.join(known)}")
    return [n for n in known if n in enabled]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pilot controller-manager",
                                description="Run the controllers that keep the cluster's state equal to its spec.")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    p.add_argument("--master", default="", help="comma-separated API server URLs (overrides the kubeconfig's)")
    p.add_argument("--controllers", default="*",
                   help="controllers to run: '*' for all, 'name' to enable, '-name' to disable (comma-separated); "
                        f"known: {', '.join(CONTROLLERS)}")
    add_leader_election_flags(p, resource_name="kube-controller-manager")
    p.add_argument("--bind", default="127.0.0.1:10257", help="HOST:PORT for /healthz, /readyz and /metrics (HTTP)")
    p.add_argument("--concurrent-syncs", type=int, default=5, help="workers per controller (at most)")
    p.add_argument("--node-monitor-period", type=float, default=5.0, metavar="SECONDS",
                   help="how often node leases are checked")
    p.add_argument("--node-monitor-grace-period", type=float, default=40.0, metavar="SECONDS",
                   help="a node whose Lease is not renewed for this long becomes Ready=Unknown and unreachable")
    p.add_argument("--node-startup-grace-period", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--default-not-ready-toleration-seconds", type=int, default=300,
                   help="how long pods without a not-ready toleration stay on a NotReady node")
    p.add_argument("--default-unreachable-toleration-seconds", type=int, default=300,
                   help="how long pods without an unreachable toleration stay on an unreachable node")
    p.add_argument("--horizontal-pod-autoscaler-sync-period", type=float, default=15.0, metavar="SECONDS")
    p.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=float, default=300.0,
                   metavar="SECONDS")
    p.add_argument("--horizontal-pod-autoscaler-tolerance", type=float, default=0.1)
    p.add_argument("--discovery-period", type=float, default=30.0, metavar="SECONDS",
                   help="how often the garbage collector and namespace controller re-read API discovery")
    p.add_argument("--burst-replicas", type=int, default=500, help="pods a ReplicaSet creates or deletes per sync")
    p.add_argument("--terminated-pod-gc-threshold", type=int, default=12500,
                   help="finished pods kept before the pod garbage collector deletes the oldest")
    p.add_argument("--pod-gc-period", type=float, default=20.0, metavar="SECONDS")
    p.add_argument("--resource-quota-sync-period", type=float, default=300.0, metavar="SECONDS",
                   help="how often every ResourceQuota's usage is recounted in full")
    p.add_argument("--job-backoff-base-seconds", type=float, default=10.0, metavar="SECONDS",
                   help="a Job's failed pod is replaced after this x 2^(failures-1) seconds (at most 360)")
    p.add_argument("--log-level", default=os.environ.get("PILOT_LOG_LEVEL", "INFO"))
    return p


def options_from(args: argparse.Namespace) -> Options:
    return Options(workers=args.concurrent_syncs, node_monitor_period=args.node_monitor_period,
                   node_monitor_grace_period=args.node_monitor_grace_period,
                   node_startup_grace_period=args.node_startup_grace_period,
                   default_not_ready_toleration_seconds=args.default_not_ready_toleration_seconds,
                   default_unreachable_toleration_seconds=args.default_unreachable_toleration_seconds,
                   hpa_sync_period=args.horizontal_pod_autoscaler_sync_period,
                   hpa_downscale_stabilization=args.horizontal_pod_autoscaler_downscale_stabilization,
                   hpa_tolerance=args.horizontal_pod_autoscaler_tolerance, discovery_period=args.discovery_period,
                   burst_replicas=args.burst_replicas, job_backoff_base=args.job_backoff_base_seconds,
                   extra={"terminated_pod_gc_threshold": args.terminated_pod_gc_threshold,
                          "podgc_period": args.pod_gc_period,
                          "resource_quota_sync_period": args.resource_quota_sync_period})


class ControllerManager:
    """The enabled controllers over shared informers; ``lead`` runs them for one leadership term."""

    def __init__(self, ctx: ControllerContext, classes: dict[str, type[BaseController]], enabled: list[str]) -> None:
        self.ctx = ctx
        self.classes = classes
        self.enabled = enabled
        self.controllers: list[BaseController] | None = None

    def build(self) -> list[BaseController]:
        if self.controllers is None:
            self.controllers = [self.classes[name](self.ctx) for name in self.enabled]
        return self.controllers

    def start(self) -> None:
        """Create the controllers (and so their informers) and start the informers: warm caches."""
        self.build()
        self.ctx.factory.start()

    @property
    def synced(self) -> bool:
        return self.ctx.factory.synced

    async def lead(self) -> None:
        controllers = self.build()
        log.info("controllers starting", extra={"event": "controllers_started", "controllers": self.enabled})
        for c in controllers:
            self.ctx.metrics.running.labels(c.name).set(1)
        tasks = [asyncio.create_task(c.run(), name=f"controller-{c.name}") for c in controllers]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(c.close() for c in controllers), return_exceptions=True)
            for c in controllers:
                self.ctx.metrics.running.labels(c.name).set(0)
            self.controllers = None  # the next term starts from scratch


async def serve(args: argparse.Namespace) -> None:
    servers = [s.strip() for s in args.master.split(",") if s.strip()] or None
    cfg = load_config(args.kubeconfig, servers=servers).with_user_agent("pilot-controller-manager")
    # Informers hold one connection each for their watch; leave room for the requests of the workers.
    client = RESTClient(cfg, max_connections=400)
    identity = default_identity(args.replica_name)
    metrics = Metrics()
    recorder = EventRecorder(client, component="controller-manager", host=identity)
    classes = available_controllers()
    enabled = select_controllers(args.controllers, list(classes))
    ctx = ControllerContext(client=client, factory=InformerFactory(client), recorder=recorder,
                            options=options_from(args), ca_data=cfg.ca_data, metrics=metrics)
    manager = ControllerManager(ctx, classes, enabled)
    runner = await start_http(health_app(ready=lambda: manager.synced, metrics=metrics.render), args.bind)
    recorder.start()
    manager.start()
    log.info("controller-manager started", extra={"event": "started", "identity": identity,
                                                  "servers": list(cfg.servers), "bind": args.bind,
                                                  "leader_elect": args.leader_elect, "controllers": enabled})
    leader = metrics.leader.labels(args.leader_elect_resource_name)

    async def lead() -> None:
        leader.set(1)
        await manager.lead()

    if args.leader_elect:
        elector = elector_from_args(client, args, identity=identity, on_started_leading=lead,
                                    on_stopped_leading=lambda: leader.set(0))
        await run_until_signal(campaign(elector), name="controller-manager")
    else:
        await run_until_signal(lead(), name="controller-manager")
    await recorder.stop(1.0)
    await ctx.factory.stop()
    await runner.cleanup()
    await client.close()
    log.info("stopped", extra={"event": "stopped"})


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.log_level)
    run_async(serve(args))
