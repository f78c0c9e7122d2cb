"""ResourceQuota: per-namespace limits on object counts and compute/storage, enforced at admission.

What counts (upstream's evaluators): ``pods`` (not Succeeded/Failed), ``count/<resource>[.<group>]``
for any namespaced resource (``count/pods`` includes finished pods), ``requests.cpu``,
``requests.memory``, ``limits.cpu``, ``limits.memory`` (``cpu``/``memory`` are requests),
``requests.ephemeral-storage`` and other ``requests.<resource>``, ``services``,
``services.nodeports``, ``services.loadbalancers``, ``configmaps``, ``secrets``,
``replicationcontrollers``, ``resourcequotas``, ``persistentvolumeclaims``, ``requests.storage`` and
the per-StorageClass ``<class>.storageclass.storage.k8s.io/requests.storage|persistentvolumeclaims``.
Quotas with ``scopes``/``scopeSelector`` (Terminating, NotTerminating, BestEffort, NotBestEffort,
PriorityClass) only count the pods they select.

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
leaves ``status.used`` off (too high, in the second case). Upstream's quota controller recalculates
usage periodically; Pilothouse's (not written yet) will do the same from the same evaluators
(``usage`` below).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from apimachinery import errors
from apimachinery.defaults import compute_pod_qos
from apimachinery.errors import StatusError
from apimachinery.quantity import Quantity
from apimachinery.registry import ResourceType
from apimachinery.validation import FieldError, Path

from ..handlers import Operation
from .common import Lookups, container_resources, containers, forbidden, is_pod, pod_resources, quantity, resource_list

log = logging.getLogger(__name__)

ONE = Quantity(1)
ZERO = Quantity(0)
# Legacy object-count names (core group): resource -> quota key.
LEGACY_COUNTS = {"configmaps": "configmaps", "secrets": "secrets", "replicationcontrollers": "replicationcontrollers",
                 "resourcequotas": "resourcequotas", "services": "services",
                 "persistentvolumeclaims": "persistentvolumeclaims"}
COMPUTE_NAMES = ("cpu", "memory", "ephemeral-storage")
CONSTRAINED = {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
          "CrossNamespacePodAffinity")
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
Usage = dict[str, Quantity]


# ---------------------------------------------------------------------- evaluators

def terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_usage(pod: dict[str, Any]) -> Usage:
    out: Usage = {"count/pods": ONE}
    if terminal(pod):
        return out  # finished pods keep their object count, not their compute
    out["pods"] = ONE
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    for name, q in pod_resources(spec, "requests", overhead=True).items():
        out[f"requests.{name}"] = q
        if name in COMPUTE_NAMES or name.startswith("hugepages-"):
            out[name] = q
    for name, q in pod_resources(spec, "limits", overhead=True).items():
        if name in COMPUTE_NAMES:
            out[f"limits.{name}"] = q
    return out


def service_usage(svc: dict[str, Any]) -> Usage:
    out: Usage = {"count/services": ONE, "services": ONE}
    spec = svc.get("spec") if isinstance(svc.get("spec"), dict) else {}
    ports = spec.get("ports") if isinstance(spec.get("ports"), list) else []
    stype = spec.get("type")
    if stype == "NodePort":
        out["services.nodeports"] = Quantity(len(ports))
    elif stype == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is False:
            out["services.nodeports"] = Quantity(sum(1 for p in ports if isinstance(p, dict) and p.get("nodePort")))
        else:
            out["services.nodeports"] = Quantity(len(ports))
        out["services.loadbalancers"] = ONE
    return out


def claim_usage(pvc: dict[str, Any]) -> Usage:
    out: Usage = {"count/persistentvolumeclaims": ONE, "persistentvolumeclaims": ONE}
    spec = pvc.get("spec") if isinstance(pvc.get("spec"), dict) else {}
    storage = resource_list((spec.get("resources") or {}).get("requests")).get("storage")
    cls = spec.get("storageClassName") or ((pvc.get("metadata") or {}).get("annotations") or {}).get(
        "volume.beta.kubernetes.io/storage-class")
    if storage is not None:
        out["requests.storage"] = storage
    if isinstance(cls, str) and cls:
        out[f"{cls}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = ONE
        if storage is not None:
            out[f"{cls}{STORAGE_CLASS_SUFFIX}requests.storage"] = storage
    return out


def usage(rt: ResourceType, obj: dict[str, Any] | None) -> Usage:
    """What one stored object uses of every quota resource (empty for cluster-scoped kinds)."""
    if obj is None or not rt.namespaced:
        return {}
    if rt.group == "":
        if rt.plural == "pods":
            return pod_usage(obj)
        if rt.plural == "services":
            return service_usage(obj)
        if rt.plural == "persistentvolumeclaims":
            return claim_usage(obj)
    out: Usage = {f"count/{rt.group_resource}": ONE}
    if rt.group == "" and rt.plural in LEGACY_COUNTS:
        out[LEGACY_COUNTS[rt.plural]] = ONE
    return out


def counts_toward(rt: ResourceType, key: str) -> bool:
    """Whether objects of ``rt`` can use quota resource ``key`` (which resources a recount lists)."""
    if key.startswith("count/"):
        return key == f"count/{rt.group_resource}"
    if rt.group != "":
        return False
    if rt.plural == "pods":
        return key in ("pods", *COMPUTE_NAMES) or (key.startswith(("requests.", "limits.", "hugepages-"))
                                                   and key != "requests.storage")
    if rt.plural == "persistentvolumeclaims":
        return key in ("persistentvolumeclaims", "requests.storage") or STORAGE_CLASS_SUFFIX in key
    if rt.plural == "services":
        return key in ("services", "services.nodeports", "services.loadbalancers")
    return LEGACY_COUNTS.get(rt.plural) == key


def _scope_matches(scope: str, operator: str, values: list[str], pod: dict[str, Any]) -> bool:
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    if scope == "PriorityClass":
        name = spec.get("priorityClassName") or ""
        if operator == "Exists":
            return bool(name)
        if operator == "DoesNotExist":
            return not name
        if operator == "In":
            return name in values
        if operator == "NotIn":
            return name not in values
        return False
    if scope in ("Terminating", "NotTerminating"):
        deadline = spec.get("activeDeadlineSeconds")
        is_terminating = isinstance(deadline, int) and deadline >= 0
        hit = is_terminating if scope == "Terminating" else not is_terminating
    elif scope in ("BestEffort", "NotBestEffort"):
        best_effort = compute_pod_qos(pod) == "BestEffort"
        hit = best_effort if scope == "BestEffort" else not best_effort
    else:
        return False  # CrossNamespacePodAffinity and unknown scopes select nothing here
    return hit if operator in ("Exists", "In") else not hit


def applies(quota: dict[str, Any], rt: ResourceType, obj: dict[str, Any] | None) -> bool:
    """Whether ``quota`` (its scopes) covers ``obj``; scoped quotas cover pods only."""
    if obj is None:
        return False
    spec = quota.get("spec") or {}
    scopes = spec.get("scopes") or []
    expressions = (spec.get("scopeSelector") or {}).get("matchExpressions") or []
    if not scopes and not expressions:
        return True
    if not is_pod(rt):
        return False
    for scope in scopes:
        if not _scope_matches(str(scope), "Exists", [], obj):
            return False
    for expr in expressions:
        if not isinstance(expr, dict) or not _scope_matches(str(expr.get("scopeName")), str(expr.get("operator")),
                                                            [str(v) for v in expr.get("values") or []], obj):
            return False
    return True


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
        types = [rt for rt in self.lookups.registry.all() if rt.namespaced and not rt.virtual
                 and any(counts_toward(rt, k) for k in wanted)]
        types = list({(rt.group, rt.plural): rt for rt in types}.values())  # one version per resource
        total: Usage = {}
        for rt in types:
            result = await self.lookups.storage.list(rt, namespace)
            for obj in result.items:
                if not applies(quota, rt, obj):
                    continue
                for k, q in usage(rt, obj).items():
                    if k in wanted:
                        total[k] = total.get(k, ZERO) + q
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
