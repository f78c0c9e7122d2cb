"""``/healthz``, ``/livez`` and ``/readyz`` with kube-apiserver's named checks.

Each endpoint runs a list of named checks and answers 200 ``ok`` when all pass. With ``?verbose``,
or when one fails, it lists every check (``[+]etcd ok``, ``[-]etcd failed: reason withheld``) and
ends with ``<endpoint> check passed`` or ``… check failed``; a failure is a 500. The reason is logged
and withheld from the client, as upstream does. ``?exclude=<name>`` (repeatable) skips a check, and
``/<endpoint>/<name>`` runs one check alone (404 for a name the endpoint does not have).

Checks:

* ``ping``, ``log``: the server answers (always pass).
* ``etcd``: a linearizable read through the store client within 2 s. One probe at a time, and its
  result is reused for a second, so a load balancer polling every replica cannot flood the store.
* ``etcd-readiness`` (readyz only): the same probe, as upstream also lists it on readyz.
* ``informer-sync`` (readyz): every watch cache has listed once.
* ``poststarthook/rbac/bootstrap-roles`` (readyz): the default RBAC objects are in place.
* ``shutdown`` (readyz): the server is not shutting down, so load balancers stop sending it new
  requests while it finishes the ones it has.

Liveness does not include the startup checks: an API server whose bootstrap waits for a store
without quorum is alive, only not ready.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[None]]  # raises when the check fails


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[], Awaitable[str | None]]  # None when it passes, else the reason


class CachedProbe:
    """One probe in flight at a time; a finished result is reused for ``ttl`` seconds."""

    def __init__(self, probe: Probe, *, timeout: float = 2.0, ttl: float = 1.0) -> None:
        self._probe = probe
        self._timeout = timeout
        self._ttl = ttl
        self._result: tuple[float, str | None] | None = None
        self._inflight: asyncio.Task[str | None] | None = None

    async def __call__(self) -> str | None:
        now = time.monotonic()
        if self._result is not None and now - self._result[0] < self._ttl:
            return self._result[1]
        if self._inflight is None:
            self._inflight = asyncio.get_running_loop().create_task(self._run())
        return await asyncio.shield(self._inflight)

    async def _run(self) -> str | None:
        try:
            await asyncio.wait_for(self._probe(), self._timeout)
            reason = None
        except asyncio.TimeoutError:
            reason = f"no answer within {self._timeout:g}s"
        except Exception as exc:  # noqa: BLE001 - any failure of the probe is the check's reason
            reason = f"{type(exc).__name__}: {exc}"
        self._result = (time.monotonic(), reason)
        self._inflight = None
        return reason


def passing(condition: Callable[[], bool], reason: str) -> Callable[[], Awaitable[str | None]]:
    async def run() -> str | None:
        return None if condition() else reason

    return run


async def _always() -> str | None:
    return None


class HealthEndpoints:
    """The three endpoints, given what to probe and what the server knows about itself."""

    def __init__(self, *, etcd: Probe, informers_synced: Callable[[], bool], bootstrapped: Callable[[], bool],
                 shutting_down: Callable[[], bool]) -> None:
        store = CachedProbe(etcd)
        basic = [Check("ping", _always), Check("log", _always), Check("etcd", store)]
        self.endpoints: dict[str, list[Check]] = {
            "healthz": basic,
            "livez": basic,
            "readyz": [*basic, Check("etcd-readiness", store),
                       Check("informer-sync", passing(informers_synced, "watch caches have not listed yet")),
                       Check("poststarthook/rbac/bootstrap-roles",
                             passing(bootstrapped, "default RBAC objects not yet in place")),
                       Check("shutdown", passing(lambda: not shutting_down(), "process is shutting down"))],
        }

    @staticmethod
    def handles(path: str) -> bool:
        return path.strip("/").split("/", 1)[0] in ("healthz", "livez", "readyz")

    async def respond(self, request: web.Request) -> web.Response:
        endpoint, _, single = request.path.strip("/").partition("/")
        checks = self.endpoints[endpoint]
        if single:
            check = next((c for c in checks if c.name == single), None)
            if check is None:
                return _text(404, "404 page not found\n")
            reason = await check.run()
            if reason is None:
                return _text(200, "ok")
            log.warning("%s check %s failed: %s", endpoint, check.name, reason)
            return _text(500, f"internal server error: {reason}\n")
        excluded = set(request.query.getall("exclude", []))
        wanted = [c for c in checks if c.name not in excluded]
        reasons = await asyncio.gather(*(c.run() for c in wanted))
        failed = [(c, r) for c, r in zip(wanted, reasons) if r is not None]
        for check, reason in failed:
            log.warning("%s check %s failed: %s", endpoint, check.name, reason)
        if not failed and "verbose" not in request.query:
            return _text(200, "ok")
        lines = [f"[+]{c.name} ok" if r is None else f"[-]{c.name} failed: reason withheld"
                 for c, r in zip(wanted, reasons)]
        lines += [f"[+]{name} excluded: ok" for name in sorted(excluded & {c.name for c in checks})]
        lines.append(f"{endpoint} check {'failed' if failed else 'passed'}")
        return _text(500 if failed else 200, "\n".join(lines) + "\n")


def _text(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/plain",
                        headers={"X-Content-Type-Options": "nosniff"})
