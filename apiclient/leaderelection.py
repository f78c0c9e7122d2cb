"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's ``leaderelection`` does it.

Replicas of a component (two schedulers, two controller-managers) race for one Lease
(``kube-system/kube-scheduler``); the holder renews it, the others watch it expire:

* ``lease_duration`` (15 s): how long a non-leader waits after it last *saw the record change*
  before taking over. Time is measured on our own monotonic clock from that observation, never
  by comparing the holder's ``renewTime`` with our wall clock, so skewed clocks cannot cause
  two leaders.
* ``renew_deadline`` (10 s): the leader gives up if it has not renewed successfully for this
  long, and stops leading at once (the leader task is cancelled) — before any other replica
  may take over (renew_deadline < lease_duration).
* ``retry_period`` (2 s): the interval between attempts to acquire or renew.

Every write is an update with the Lease's ``resourceVersion``, so of two candidates only one
wins; the other gets 409 and tries again later. A changed holder increments ``leaseTransitions``
and sets ``acquireTime``; both timestamps are RFC 3339 with microseconds (``MicroTime``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from apimachinery import meta as m
from apimachinery.errors import StatusError

from .rest import LEASES, APIConnectionError, RESTClient, jittered

log = logging.getLogger(__name__)


def default_identity(name: str | None = None) -> str:
    """``<name>_<pid>`` (name defaults to the host name), e.g. ``scheduler-2_4242``."""
    return f"{name or socket.gethostname()}_{os.getpid()}"


@dataclass(frozen=True)
class LeaderElectionConfig:
    name: str  # the Lease, e.g. "kube-scheduler"
    identity: str
    namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")


class LeaderElector:
    def __init__(self, client: RESTClient, config: LeaderElectionConfig, *,
                 on_started_leading: Callable[[], Awaitable[None]],
                 on_stopped_leading: Callable[[], None] | None = None,
                 on_new_leader: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.config = config
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self.leader = ""  # the holder we last observed
        self._observed: dict[str, Any] | None = None  # last Lease spec seen
        self._observed_rv = ""
        self._observed_at = 0.0  # loop time when the spec last changed
        self._leading = False

    @property
    def is_leader(self) -> bool:
        return self._leading

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # ------------------------------------------------------------------ one attempt

    def _observe(self, lease: dict[str, Any]) -> None:
        spec = dict(lease.get("spec") or {})
        if spec != self._observed:
            self._observed = spec
            self._observed_at = self._now()
        self._observed_rv = m.resource_version(lease)
        holder = spec.get("holderIdentity") or ""
        if holder != self.leader:
            self.leader = holder
            if self.on_new_leader is not None and holder:
                try:
                    self.on_new_leader(holder)
                except Exception:  # noqa: BLE001
                    log.exception("on_new_leader failed")

    async def try_acquire_or_renew(self) -> bool:
        """One round: take a free or expired lease, or renew ours. True if we hold it now."""
        cfg = self.config
        now = m.now_rfc3339_micro()
        mine = {"holderIdentity": cfg.identity, "leaseDurationSeconds": max(1, math.ceil(cfg.lease_duration)),
                "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        try:
            lease = await self.client.get(LEASES, cfg.name, namespace=cfg.namespace)
        except StatusError as err:
            if err.code != 404:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": cfg.name, "namespace": cfg.namespace}, "spec": mine}
            try:
                created = await self.client.create(LEASES, body, namespace=cfg.namespace)
            except StatusError as err2:
                if err2.code == 409:
                    return False  # someone else created it first
                raise
            self._observe(created)
            return True
        self._observe(lease)
        spec = self._observed or {}
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder and holder != cfg.identity and self._now() < self._observed_at + duration:
            return False  # held by someone else, and not expired by our own clock
        if holder == cfg.identity:
            mine["acquireTime"] = spec.get("acquireTime") or now
            mine["leaseTransitions"] = int(spec.get("leaseTransitions") or 0)
        else:
            mine["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        updated = dict(lease)
        updated["spec"] = {**(lease.get("spec") or {}), **mine}
        try:
            result = await self.client.update(LEASES, updated, namespace=cfg.namespace, name=cfg.name)
        except StatusError as err:
            if err.code == 409:
                return False
            raise
        self._observe(result)
        return True

    async def _attempt(self, timeout: float) -> bool:
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), max(timeout, 0.001))
        except (StatusError, APIConnectionError, asyncio.TimeoutError) as exc:
            log.warning("lease %s/%s: attempt failed: %r", self.config.namespace, self.config.name, exc)
            return False

    # ------------------------------------------------------------------ the loop

    async def acquire(self) -> None:
        """Return once we hold the lease (retrying every ``retry_period``)."""
        cfg = self.config
        while not await self._attempt(cfg.renew_deadline):
            await asyncio.sleep(jittered(cfg.retry_period, 0.2))

    async def run(self) -> None:
        """Acquire, lead (``on_started_leading`` as a task) while renewing; return when leadership is lost.

        Cancelling ``run`` stops leading too, and releases the lease (``release_on_cancel``) so a
        standby takes over at once instead of after ``lease_duration``.
        """
        cfg = self.config
        await self.acquire()
        self._leading = True
        log.info("became leader", extra={"event": "leader_started", "lease": f"{cfg.namespace}/{cfg.name}",
                                         "identity": cfg.identity})
        leader_task = asyncio.get_running_loop().create_task(self.on_started_leading(), name="leader")
        cancelled = False
        try:
            last_renew = self._now()
            while not leader_task.done():
                waiter = asyncio.ensure_future(asyncio.sleep(cfg.retry_period))
                await asyncio.wait({waiter, leader_task}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if leader_task.done():
                    break
                remaining = cfg.renew_deadline - (self._now() - last_renew)
                if await self._attempt(remaining):
                    last_renew = self._now()
                elif self._now() - last_renew >= cfg.renew_deadline or (self.leader and self.leader != cfg.identity):
                    log.warning("lost the lease", extra={"event": "leader_lost", "identity": cfg.identity,
                                                         "holder": self.leader})
                    break
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            self._leading = False
            # Stop leading at once: nothing of the leader's work may outlive the lease.
            leader_task.cancel()
            await asyncio.gather(leader_task, return_exceptions=True)
            if cancelled and cfg.release_on_cancel:
                await self._release()
            if self.on_stopped_leading is not None:
                try:
                    self.on_stopped_leading()
                except Exception:  # noqa: BLE001
                    log.exception("on_stopped_leading failed")

    async def _release(self) -> None:
        """Give the lease up (holder cleared, 1 s duration) if we still hold it."""
        cfg = self.config
        try:
            lease = await asyncio.wait_for(self.client.get(LEASES, cfg.name, namespace=cfg.namespace),
                                           cfg.retry_period)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != cfg.identity:
                return
            now = m.now_rfc3339_micro()
            lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now,
                             "renewTime": now}
            await asyncio.wait_for(self.client.update(LEASES, lease, namespace=cfg.namespace, name=cfg.name),
                                   cfg.retry_period)
            log.info("released the lease", extra={"event": "leader_released", "identity": cfg.identity})
        except (StatusError, APIConnectionError, asyncio.TimeoutError) as exc:
            log.warning("could not release lease %s/%s: %r", cfg.namespace, cfg.name, exc)
