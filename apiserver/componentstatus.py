"""``componentstatuses`` (core/v1; deprecated upstream since 1.19 and still served): control-plane health.

Upstream's API server probes each component's ``/healthz`` on a fixed local port. Pilothouse's
components run wherever they are started, so the answer comes from what every API server replica
can see for itself:

* ``scheduler``, ``controller-manager``: Healthy while some replica holds the component's
  leader-election Lease (``kube-system/kube-scheduler``, ``kube-system/kube-controller-manager``)
  and renewed it within its ``leaseDurationSeconds``: an elected leader is doing the work.
* ``etcd-<i>``: store member *i* of ``--etcd-servers`` answers its status within 2 s and knows a
  leader.

Read-only (``get``, ``list``), cluster-scoped, answered with upstream's deprecation warning.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from apimachinery import errors
from apimachinery import meta as m

Obj = dict[str, Any]
DEPRECATION = "v1 ComponentStatus is deprecated in v1.19+"
ELECTED = {"scheduler": "kube-scheduler", "controller-manager": "kube-controller-manager"}
STORE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Health:
    healthy: bool
    message: str = ""
    error: str = ""


def component_status(name: str, health: Health) -> Obj:
    condition: Obj = {"type": "Healthy", "status": "True" if health.healthy else "False"}
    if health.message:
        condition["message"] = health.message
    if health.error:
        condition["error"] = health.error
    return {"kind": "ComponentStatus", "apiVersion": "v1", "metadata": {"name": name, "creationTimestamp": None},
            "conditions": [condition]}


def lease_health(lease: Obj | None, component: str, now: datetime) -> Health:
    spec = (lease or {}).get("spec") or {}
    holder = spec.get("holderIdentity")
    if not holder:
        return Health(False, error=f"no {component} holds the {ELECTED[component]} lease")
    renewed = _parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds") or 15
    if renewed is None or (now - renewed).total_seconds() > float(duration):
        return Health(False, error=f"the {ELECTED[component]} lease of {holder} has expired")
    return Health(True, message="ok")


def _parse_time(text: Any) -> datetime | None:
    try:
        return m.parse_rfc3339(text)
    except ValueError:  # not a timestamp (or one without an offset): the lease counts as not renewed
        return None


class ComponentStatuses:
    """Computes the list on every request (it is cheap: two Lease reads, one status call per member)."""

    def __init__(self, *, read_lease: Callable[[str], Awaitable[Obj | None]], store_endpoints: list[str],
                 store_status: Callable[[str], Awaitable[Obj]]) -> None:
        self._read_lease = read_lease
        self._endpoints = store_endpoints
        self._store_status = store_status

    async def _store_member(self, url: str) -> Health:
        try:
            status = await asyncio.wait_for(self._store_status(url), STORE_TIMEOUT)
        except asyncio.TimeoutError:
            return Health(False, error=f"{url}: no answer within {STORE_TIMEOUT:g}s")
        except Exception as exc:  # noqa: BLE001 - whatever failed is the member's error
            return Health(False, error=f"{url}: {exc}")
        if not status.get("leader") or str(status.get("leader")) == "0":
            return Health(False, error=f"{url}: no leader")
        return Health(True, message="ok")

    async def _elected(self, component: str) -> Health:
        try:
            lease = await self._read_lease(ELECTED[component])
        except errors.StatusError as err:
            if err.code != 404:
                return Health(False, error=err.message)
            lease = None
        return lease_health(lease, component, datetime.now(timezone.utc))

    async def all(self) -> list[Obj]:
        names = [*ELECTED, *(f"etcd-{i}" for i in range(len(self._endpoints)))]
        checks = [*(self._elected(c) for c in ELECTED), *(self._store_member(u) for u in self._endpoints)]
        return [component_status(n, h) for n, h in zip(names, await asyncio.gather(*checks))]

    async def get(self, name: str) -> Obj:
        for obj in await self.all():
            if obj["metadata"]["name"] == name:
                return obj
        raise errors.not_found(resource="componentstatuses", name=name)
