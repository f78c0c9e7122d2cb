"""Quota usage: what one object uses of each ResourceQuota resource, and which quotas cover it.

Upstream's quota evaluators (``pkg/quota/v1/evaluator/core``), written once for the two places that
count: the ResourceQuota admission plugin (it charges a create against ``status.used`` before the
object is stored and moves the ledger after updates and deletes) and the ResourceQuota controller
(it recomputes ``status.used`` from the objects in the namespace to correct drift). Both must agree
exactly, or the controller would fight the admission plugin forever.

What counts: ``pods`` (not Succeeded/Failed), ``count/<resource>[.<group>]`` for any namespaced
resource (``count/pods`` includes finished pods), ``requests.cpu``, ``requests.memory``,
``limits.cpu``, ``limits.memory`` (``cpu``/``memory`` are requests), ``requests.ephemeral-storage``
and other ``requests.<resource>``, ``services``, ``services.nodeports``,
``services.loadbalancers``, ``configmaps``, ``secrets``, ``replicationcontrollers``,
``resourcequotas``, ``persistentvolumeclaims``, ``requests.storage`` and the per-StorageClass
``<class>.storageclass.storage.k8s.io/requests.storage|persistentvolumeclaims``. Quotas with
``scopes``/``scopeSelector`` (Terminating, NotTerminating, BestEffort, NotBestEffort,
PriorityClass) only count the pods they select.

Also here: the pure resource helpers the evaluators stand on (a ResourceList as Quantities, the
containers of a pod spec, effective pod requests/limits), which admission plugins share.
Pure data logic: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Iterator

from .defaults import compute_pod_qos
from .quantity import Quantity, QuantityError
from .registry import ResourceType

Obj = dict[str, Any]
ONE = Quantity(1)
ZERO = Quantity(0)
# Legacy object-count names (core group): resource -> quota key.
LEGACY_COUNTS = {"configmaps": "configmaps", "secrets": "secrets", "replicationcontrollers": "replicationcontrollers",
                 "resourcequotas": "resourcequotas", "services": "services",
                 "persistentvolumeclaims": "persistentvolumeclaims"}
COMPUTE_NAMES = ("cpu", "memory", "ephemeral-storage")
SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
          "CrossNamespacePodAffinity")
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
Usage = dict[str, Quantity]


def is_pod(rt: ResourceType) -> bool:
    return rt.group == "" and rt.plural == "pods"


# ---------------------------------------------------------------------- resource lists

CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")


def containers(spec: Obj, kinds: tuple[str, ...] = CONTAINER_KINDS) -> Iterator[Obj]:
    """Every container of a pod spec as a dict (init containers first, as upstream visits them)."""
    for kind in kinds:
        items = spec.get(kind)
        if isinstance(items, list):
            for c in items:
                if isinstance(c, dict):
                    yield c


def quantity(value: Any) -> Quantity | None:
    if isinstance(value, bool):
        return None
    try:
        return Quantity.from_json(value)
    except (QuantityError, TypeError, ValueError):
        return None


def resource_list(values: Any) -> dict[str, Quantity]:
    """A ResourceList as Quantities; entries that are not quantities are skipped (validation reports them)."""
    out: dict[str, Quantity] = {}
    if isinstance(values, dict):
        for key, raw in values.items():
            q = quantity(raw)
            if q is not None:
                out[str(key)] = q
    return out


def container_resources(container: Obj, field: str) -> dict[str, Quantity]:
    resources = container.get("resources")
    return resource_list(resources.get(field) if isinstance(resources, dict) else None)


def add_into(into: dict[str, Quantity], values: dict[str, Quantity]) -> None:
    for key, q in values.items():
        into[key] = into[key] + q if key in into else q


def max_into(into: dict[str, Quantity], values: dict[str, Quantity]) -> None:
    for key, q in values.items():
        if key not in into or into[key] < q:
            into[key] = q


def pod_resources(spec: Obj, field: str, *, overhead: bool = False) -> dict[str, Quantity]:
    """Effective pod ``requests`` or ``limits``: the sum of the containers, or the largest init
    container if bigger (restartable "sidecar" init containers add up like containers), as
    upstream's ``resource.PodRequests`` computes them; ``overhead`` adds ``spec.overhead``."""
    total: dict[str, Quantity] = {}
    for c in containers(spec, ("containers",)):
        add_into(total, container_resources(c, field))
    sidecars: dict[str, Quantity] = {}
    init_max: dict[str, Quantity] = {}
    for c in containers(spec, ("initContainers",)):
        values = container_resources(c, field)
        if c.get("restartPolicy") == "Always":
            add_into(total, values)
            add_into(sidecars, values)
            values = dict(sidecars)
        else:
            tmp = dict(values)
            add_into(tmp, sidecars)
            values = tmp
        max_into(init_max, values)
    max_into(total, init_max)
    if overhead:
        add_into(total, resource_list(spec.get("overhead")))
    return total


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


# ---------------------------------------------------------------------- summing

def types_counting(types: Iterable[ResourceType], keys: Iterable[str]) -> list[ResourceType]:
    """The stored namespaced resource types whose objects can use any of ``keys`` (one version each)."""
    wanted = list(keys)
    out: dict[tuple[str, str], ResourceType] = {}
    for rt in types:
        if rt.namespaced and not rt.virtual and (rt.group, rt.plural) not in out \
                and any(counts_toward(rt, k) for k in wanted):
            out[(rt.group, rt.plural)] = rt
    return list(out.values())


def add_usage(total: Usage, quota: Obj, rt: ResourceType, objects: Iterable[Obj], keys: Iterable[str]) -> Usage:
    """Add to ``total`` what ``objects`` (of type ``rt``) covered by ``quota`` use of ``keys``."""
    wanted = set(keys)
    for obj in objects:
        if not applies(quota, rt, obj):
            continue
        for k, q in usage(rt, obj).items():
            if k in wanted:
                total[k] = total.get(k, ZERO) + q
    return total


def same_usage(a: Any, b: Any) -> bool:
    """Whether two ResourceLists (as stored, strings) say the same amounts ("1000m" == "1")."""
    if not isinstance(a, dict) or not isinstance(b, dict) or set(a) != set(b):
        return False
    qa, qb = resource_list(a), resource_list(b)
    if len(qa) != len(a) or len(qb) != len(b):
        return a == b
    return all(qa[k] == qb[k] for k in qa)
