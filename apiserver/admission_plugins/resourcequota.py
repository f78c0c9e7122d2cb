"""ResourceQuota: per-namespace limits on object counts and compute/storage, enforced at admission.

What counts, and which quotas cover an object (scopes), is ``apimachinery.quota``: the same
evaluators the quota controller recounts with.

How usage stays exact across API server replicas. ``status.used`` of each quota is the ledger:

* create: *before* the object is stored, its usage is added to ``status.used`` of every quota
  that tracks it, by a compare-and-swap update of the quota (``Storage.guaranteed_update``: read,
  check ``used + requested <= hard``, write only if the quota's revision did not change, else
  re-read and re-check). Two replicas racing for the last unit therefore serialize on the quota
  object in the store: one wins, the other re-reads and is refused (403 ``exceeded quota: q,
  requested: pods=1, used: pods=2, limited: pods=2``). Within a replica, creates in one namespace
  also queue on a lock, so they do not burn CAS retries against each other.
* If the write then fails for a known reason (validation 422, already exists 409, a later
  admission plugin's refusal), the reservation is handed back through ``Operation.rollbacks``. If
  the outcome is unknown (a store timeout, a cancelled request), it is kept: the ledger may then
  over-count, never under-count.
* updates and deletes are accounted *after* they are committed (``committed`` hook called by the
  handlers): the usage difference between the old and new object is applied to the ledger, so a
  pod turning Succeeded/Failed, or being deleted, frees its share. Updates that would grow usage
  (a PersistentVolumeClaim resize, a Service becoming NodePort) are checked against the quota first.
* creating a ResourceQuota (or changing ``spec.hard``) fills ``status.hard`` and computes
  ``status.used`` for new entries from the objects in the namespace, so ``kubectl describe quota``
  shows real numbers at once.

Drift: a crash between a commit and its ledger update, or a reservation whose outcome was unknown,
leaves ``status.used`` off (too high, in the second case). The ResourceQuota controller
(``controllers/resourcequota.py``) recomputes usage from the objects in the namespace with the same
evaluators, on changes of those objects and every ``--resource-quota-sync-period``, and corrects it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from apimachinery import errors
from apimachinery.errors import StatusError
from apimachinery.quota import (ONE, SCOPES, ZERO, Usage, add_usage, applies, container_resources, containers,
                                counts_toward, is_pod, quantity, resource_list, types_counting, usage)
from apimachinery.registry import ResourceType
from apimachinery.validation import FieldError, Path

from ..handlers import Operation
from .common import Lookups, forbidden

log = logging.getLogger(__name__)

CONSTRAINED = {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}


# ---------------------------------------------------------------------- messages and validation

def pretty(values: Usage, keys: list[str]) -> str:
    """``prettyPrint`` of a masked ResourceList: sorted ``name=value`` pairs joined by commas."""
    return ",".join(f"{k}={values.get(k, ZERO).to_string()}" for k in sorted(keys))


def missing_constraints(hard: Usage, pod: dict[str, Any]) -> str | None:
    """Upstream's backward-compatible rule: a quota on cpu/memory needs every container to say how much."""
    required = CONSTRAINED & set(hard)
    if not required:
        return None
    missing: dict[str, list[str]] = {}
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    for c in containers(spec, ("containers", "initContainers")):
        have: set[str] = set()
        for name in container_resources(c, "requests"):
            if name in ("cpu", "memory"):
                have |= {name, f"requests.{name}"}
        for name in container_resources(c, "limits"):
            if name in ("cpu", "memory"):
                have.add(f"limits.{name}")
        for key in required - have:
            missing.setdefault(key, []).append(str(c.get("name", "")))
    if not missing:
        return None
    return "must specify " + "; ".join(f"{key} for: {','.join(sorted(set(missing[key])))}" for key in sorted(missing))


def validate_quota(obj: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = obj.get("spec")
    if spec is None:
        return errs
    if not isinstance(spec, dict):
        return [FieldError.invalid(Path.of("spec"), spec, "must be an object")]
    hard = spec.get("hard")
    if hard is not None and not isinstance(hard, dict):
        errs.append(FieldError.invalid(Path.of("spec", "hard"), hard, "must be a map of resource names to quantities"))
    for key, raw in (hard or {}).items() if isinstance(hard, dict) else ():
        q = quantity(raw)
        if q is None:
            errs.append(FieldError.invalid(Path.of("spec", "hard").key(str(key)), raw,
                                           "quantities must match the regular expression "
                                           "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
        elif q.sign() < 0:
            errs.append(FieldError.invalid(Path.of("spec", "hard").key(str(key)), raw,
                                           "must be greater than or equal to 0"))
    for i, scope in enumerate(spec.get("scopes") or []):
        if scope not in SCOPES:
            errs.append(FieldError.not_supported(Path.of("spec", "scopes").index(i), scope, SCOPES))
    expressions = (spec.get("scopeSelector") or {}).get("matchExpressions") if isinstance(
        spec.get("scopeSelector"), dict) else None
    for i, expr in enumerate(expressions or []):
        p = Path.of("spec", "scopeSelector", "matchExpressions").index(i)
        if not isinstance(expr, dict):
            errs.append(FieldError.invalid(p, expr, "must be an object"))
            continue
        if expr.get("scopeName") not in SCOPES:
            errs.append(FieldError.not_supported(p.child("scopeName"), expr.get("scopeName"), SCOPES))
        if expr.get("operator") not in ("In", "NotIn", "Exists", "DoesNotExist"):
            errs.append(FieldError.not_supported(p.child("operator"), expr.get("operator"),
                                                 ("In", "NotIn", "Exists", "DoesNotExist")))
    return errs


# ---------------------------------------------------------------------- the plugin

class ResourceQuotaAdmission:
    def __init__(self, *, lookups: Lookups) -> None:
        self.lookups = lookups
        self.rq_type = lookups.type("", "v1", "resourcequotas")
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, namespace: str) -> asyncio.Lock:
        lock = self._locks.get(namespace)
        if lock is None:
            lock = self._locks[namespace] = asyncio.Lock()
        return lock

    async def admit(self, op: Operation) -> None:
        rt = op.info.rt
        if not rt.namespaced or op.info.subresource or not isinstance(op.obj, dict):
            return
        if rt.group == "" and rt.plural == "resourcequotas" and op.verb in ("create", "update"):
            await self._prepare_quota(op)
        if op.verb == "create":
            await self._charge(op)
        elif op.verb == "update":
            await self._check_growth(op)

    # .................................................................. quota objects

    async def _prepare_quota(self, op: Operation) -> None:
        obj = op.obj
        assert obj is not None
        errs = validate_quota(obj)
        if errs:
            raise errors.invalid(kind="ResourceQuota", name=(obj.get("metadata") or {}).get("name", ""), causes=errs)
        hard = ((obj.get("spec") or {}).get("hard")) or {}
        old_used = ((op.old or {}).get("status") or {}).get("used") or {}
        need = [k for k in hard if k not in old_used]
        computed = await self._compute_used(op.info.namespace, obj, need, creating=op.verb == "create") if need else {}
        status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
        status["hard"] = dict(hard)
        status["used"] = {k: old_used[k] if k in old_used else computed.get(k, ZERO).to_string() for k in hard}
        obj["status"] = status

    async def _compute_used(self, namespace: str, quota: dict[str, Any], keys: list[str], *,
                            creating: bool) -> Usage:
        """Usage of ``keys`` by what is stored in the namespace now (the quota controller's sum)."""
        wanted = set(keys)
        total: Usage = {}
        for rt in types_counting(self.lookups.registry.all(), wanted):
            result = await self.lookups.storage.list(rt, namespace)
            add_usage(total, quota, rt, result.items, wanted)
        if creating:  # the quota being created counts itself, as the controller will see it
            for k in ("resourcequotas", "count/resourcequotas"):
                if k in wanted and applies(quota, self.rq_type, quota):
                    total[k] = total.get(k, ZERO) + ONE
        return total

    # .................................................................. admission of writes

    async def _quotas(self, namespace: str, *, live: bool) -> list[dict[str, Any]]:
        quotas = await self.lookups.list(self.rq_type, namespace, live_if_empty=live)
        return sorted(quotas, key=lambda q: (q.get("metadata") or {}).get("name", ""))

    async def _charge(self, op: Operation) -> None:
        rt = op.info.rt
        namespace = op.info.namespace
        requested = usage(rt, op.obj)
        if not requested:
            return
        candidates = []
        for quota in await self._quotas(namespace, live=True):
            hard = resource_list((quota.get("spec") or {}).get("hard"))
            if not applies(quota, rt, op.obj) or not any(counts_toward(rt, k) for k in hard):
                continue
            if is_pod(rt):
                problem = missing_constraints(hard, op.obj or {})
                if problem:
                    raise forbidden(op, f"failed quota: {quota['metadata']['name']}: {problem}")
            if set(requested) & set(hard):
                candidates.append(quota["metadata"]["name"])
        if not candidates:
            return
        charged: list[tuple[str, Usage]] = []
        async with self._lock(namespace):
            try:
                for name in candidates:
                    amount = await self._reserve(op, name, requested)
                    if amount:
                        charged.append((name, amount))
            except BaseException:
                await self._release_all(namespace, charged)
                raise
        if charged:
            op.rollbacks.append(self._rollback(namespace, charged))

    async def _reserve(self, op: Operation, name: str, requested: Usage) -> Usage:
        """Add ``requested`` to quota ``name``'s ledger by compare-and-swap; 403 if it does not fit."""
        charged: Usage = {}

        async def mutate(current: dict[str, Any]) -> dict[str, Any] | None:
            charged.clear()
            spec_hard = (current.get("spec") or {}).get("hard") or {}
            hard = resource_list(spec_hard)
            status = current.get("status") if isinstance(current.get("status"), dict) else {}
            used = resource_list(status.get("used"))
            keys = sorted(k for k in requested if k in hard)
            if not keys:
                return None
            exceeded = [k for k in keys if hard[k] < used.get(k, ZERO) + requested[k]]
            if exceeded:
                raise forbidden(op, f"exceeded quota: {name}, requested: {pretty(requested, exceeded)}, "
                                    f"used: {pretty(used, exceeded)}, limited: {pretty(hard, exceeded)}")
            if op.dry_run:
                return None
            new_used = dict(status.get("used") or {})
            for k in keys:
                new_used[k] = (used.get(k, ZERO) + requested[k]).to_string()
                charged[k] = requested[k]
            status["hard"] = dict(spec_hard)
            status["used"] = new_used
            current["status"] = status
            return current

        try:
            await self.lookups.storage.guaranteed_update(self.rq_type, op.info.namespace, name, mutate)
        except StatusError as err:
            if err.code == 404:  # deleted meanwhile: nothing to charge
                return {}
            raise
        return dict(charged)

    def _rollback(self, namespace: str, charged: list[tuple[str, Usage]]) -> Callable[[BaseException], Awaitable[None]]:
        async def rollback(exc: BaseException) -> None:
            # Known failures give the reservation back; an unknown outcome (the object may be
            # stored) keeps it: better to over-count until the recount than to allow too much.
            if isinstance(exc, StatusError) and exc.code not in (500, 503, 504):
                await self._release_all(namespace, charged)

        return rollback

    async def _release_all(self, namespace: str, charged: list[tuple[str, Usage]]) -> None:
        for name, amount in charged:
            await self._apply_delta(namespace, name, {k: -q for k, q in amount.items()})

    async def _check_growth(self, op: Operation) -> None:
        """An update that grows usage must fit (charged when committed, see ``committed``)."""
        rt = op.info.rt
        quotas = await self._quotas(op.info.namespace, live=False)
        for quota in quotas:
            delta = self._delta(quota, rt, op.old, op.obj)
            grow = {k: q for k, q in delta.items() if q.sign() > 0}
            if not grow:
                continue
            hard = resource_list((quota.get("spec") or {}).get("hard"))
            used = resource_list((quota.get("status") or {}).get("used"))
            exceeded = sorted(k for k in grow if k in hard and hard[k] < used.get(k, ZERO) + grow[k])
            if exceeded:
                raise forbidden(op, f"exceeded quota: {quota['metadata']['name']}, requested: {pretty(grow, exceeded)}, "
                                    f"used: {pretty(used, exceeded)}, limited: {pretty(hard, exceeded)}")

    @staticmethod
    def _delta(quota: dict[str, Any], rt: ResourceType, old: dict[str, Any] | None,
               new: dict[str, Any] | None) -> Usage:
        hard = (quota.get("spec") or {}).get("hard") or {}
        before = usage(rt, old) if applies(quota, rt, old) else {}
        after = usage(rt, new) if applies(quota, rt, new) else {}
        out: Usage = {}
        for k in set(before) | set(after):
            if k not in hard:
                continue
            d = after.get(k, ZERO) - before.get(k, ZERO)
            if d:
                out[k] = d
        return out

    # .................................................................. after commits

    async def committed(self, rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """An update or delete was stored: move the ledger by the usage it changed."""
        if not rt.namespaced:
            return
        meta = (new or old or {}).get("metadata") or {}
        namespace = meta.get("namespace", "")
        quotas = await self._quotas(namespace, live=False)
        for quota in quotas:
            if rt.group == "" and rt.plural == "resourcequotas" and (quota.get("metadata") or {}).get("name") == meta.get("name"):
                continue  # a quota's own writes never charge itself
            delta = self._delta(quota, rt, old, new)
            if delta:
                await self._apply_delta(namespace, quota["metadata"]["name"], delta)

    async def _apply_delta(self, namespace: str, name: str, delta: Usage) -> None:
        async def mutate(current: dict[str, Any]) -> dict[str, Any] | None:
            hard = (current.get("spec") or {}).get("hard") or {}
            status = current.get("status") if isinstance(current.get("status"), dict) else {}
            used = resource_list(status.get("used"))
            new_used = dict(status.get("used") or {})
            changed = False
            for k, d in delta.items():
                if k not in hard:
                    continue
                value = used.get(k, ZERO) + d
                if value.sign() < 0:
                    value = ZERO
                new_used[k] = value.to_string()
                changed = True
            if not changed:
                return None
            status["used"] = new_used
            current["status"] = status
            return current

        try:
            await self.lookups.storage.guaranteed_update(self.rq_type, namespace, name, mutate)
        except StatusError as err:
            if err.code != 404:
                log.warning("quota %s/%s: could not apply usage change %s: %s", namespace, name,
                            {k: q.to_string() for k, q in delta.items()}, err.message)
        except Exception:  # noqa: BLE001 - the write itself succeeded; the recount fixes the ledger
            log.exception("quota %s/%s: could not apply usage change", namespace, name)
