"""The process shell every API client component shares: health/metrics HTTP, leader election flags and
campaign, and running until SIGTERM.

A component (scheduler, controller-manager, proxy ...) serves ``/healthz``, ``/livez``, ``/readyz``
(its caches are synced) and ``/metrics`` over plain HTTP on ``--bind``; with ``--leader-elect``
its replicas share one Lease and only the holder does the work (``campaign`` leads whenever it
holds the lease and campaigns again after losing it); SIGTERM or SIGINT cancels the work (which
releases the lease, so a standby takes over at once) and returns.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .leaderelection import LeaderElectionConfig, LeaderElector, default_identity
from .logs import dump_tasks_on_signal
from .rest import RESTClient

log = logging.getLogger(__name__)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def health_app(*, ready: Callable[[], bool], metrics: Callable[[], bytes]) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        ok = ready()
        return web.Response(status=200 if ok else 503, text="ok" if ok else "informers not synced")

    async def metrics_(_: web.Request) -> web.Response:
        return web.Response(body=metrics(), headers={"Content-Type": PROMETHEUS_TEXT})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_)
    return app


async def start_http(app: web.Application, bind: str) -> web.AppRunner:
    """Serve ``app`` on ``HOST:PORT``; ``cleanup()`` the returned runner to stop."""
    host, _, port = bind.rpartition(":")
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host or "127.0.0.1", int(port), reuse_address=True).start()
    return runner


def add_leader_election_flags(parser: argparse.ArgumentParser, *, resource_name: str) -> None:
    parser.add_argument("--leader-elect", action="store_true", help="run as one of several replicas (Lease election)")
    parser.add_argument("--leader-elect-lease-duration", type=float, default=15.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-renew-deadline", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-retry-period", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-resource-name", default=resource_name)
    parser.add_argument("--leader-elect-resource-namespace", default="kube-system")
    parser.add_argument("--replica-name", default=socket.gethostname(),
                        help="this replica's name; the lease holder identity is <name>_<pid>")


def elector_from_args(client: RESTClient, args: argparse.Namespace, *, identity: str | None = None,
                      on_started_leading: Callable[[], Awaitable[None]],
                      on_stopped_leading: Callable[[], None] | None = None) -> LeaderElector:
    """A ``LeaderElector`` configured by the flags of ``add_leader_election_flags``."""
    config = LeaderElectionConfig(
        name=args.leader_elect_resource_name, namespace=args.leader_elect_resource_namespace,
        identity=identity or default_identity(args.replica_name), lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline, retry_period=args.leader_elect_retry_period)
    return LeaderElector(client, config, on_started_leading=on_started_leading, on_stopped_leading=on_stopped_leading,
                         on_new_leader=lambda who: log.info("leader is %s", who,
                                                            extra={"event": "new_leader", "leader": who}))


async def campaign(elector: LeaderElector) -> None:
    """Lead whenever we hold the lease; after losing it, campaign again (until cancelled)."""
    while True:
        await elector.run()
        log.warning("leadership lost; campaigning again", extra={"event": "campaign"})


async def lead_until_signal(client: RESTClient, args: argparse.Namespace, *, identity: str,
                            lead: Callable[[], Awaitable[None]], name: str,
                            leader_gauge: Any = None) -> BaseException | None:
    """Run ``lead`` until SIGTERM/SIGINT: while this replica holds the lease (``--leader-elect``), else
    at once. ``leader_gauge`` (a prometheus Gauge child) reads 1 while leading."""
    async def leading() -> None:
        if leader_gauge is not None:
            leader_gauge.set(1)
        try:
            await lead()
        finally:
            if leader_gauge is not None:
                leader_gauge.set(0)

    if args.leader_elect:
        elector = elector_from_args(client, args, identity=identity, on_started_leading=leading)
        return await run_until_signal(campaign(elector), name=name)
    return await run_until_signal(leading(), name=name)


async def run_until_signal(work: Awaitable[Any], *, name: str = "main") -> BaseException | None:
    """Run ``work`` until it ends or SIGTERM/SIGINT arrives (then cancel it); return its failure, if any."""
    main = asyncio.ensure_future(work)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    dump_tasks_on_signal(loop)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("shutting down", extra={"event": "stopping"})
    main.cancel()
    stopper.cancel()
    results = await asyncio.gather(main, return_exceptions=True)
    failure = results[0] if results else None
    if isinstance(failure, BaseException) and not isinstance(failure, asyncio.CancelledError):
        log.error("%s failed: %r", name, failure)
        return failure
    return None


def run_async(coro: Awaitable[Any]) -> None:
    """Run a component's main coroutine on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(coro)  # type: ignore[arg-type]
        return
    uvloop.run(coro)  # type: ignore[arg-type]
