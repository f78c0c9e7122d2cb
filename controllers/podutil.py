"""Pure helpers about pods and conditions that several controllers need (no I/O).

Readiness and availability (``Ready`` for ``minReadySeconds``), which pods count as active, the order
in which a controller gives pods up on scale-down (client-go's ``ActivePods`` ordering), building a
pod from a template with its controller reference, and status conditions set the way upstream
sets them (``lastTransitionTime`` kept while the status does not change).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from apimachinery import meta as m
from apimachinery.selectors import LabelSelector

Obj = dict[str, Any]

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def now() -> datetime:
    return datetime.now(UTC)


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return m.parse_rfc3339(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------- selectors

@functools.lru_cache(maxsize=4096)
def _selector_from_json(raw: bytes) -> LabelSelector:
    return LabelSelector.from_structured(orjson.loads(raw))


def selector_of(obj: Mapping[str, Any]) -> LabelSelector:
    """``spec.selector`` (a structured selector) of a workload; a missing or broken one selects nothing."""
    sel = (obj.get("spec") or {}).get("selector")
    if not isinstance(sel, Mapping):
        return LabelSelector.nothing()
    try:
        return _selector_from_json(orjson.dumps(sel, option=orjson.OPT_SORT_KEYS))
    except Exception:  # noqa: BLE001 - an invalid selector matches nothing, as upstream skips the object
        return LabelSelector.nothing()


# ---------------------------------------------------------------------- conditions

def get_condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == type_:
            return c
    return None


def set_condition(conditions: list[Obj], cond: Obj, *, when: str | None = None,
                  update_time: bool = False) -> bool:
    """Put ``cond`` into ``conditions`` (by type). ``lastTransitionTime`` changes only with the status;
    with ``update_time`` (Deployments) ``lastUpdateTime`` is set too. True if anything changed."""
    stamp = when or m.now_rfc3339()
    for i, cur in enumerate(conditions):
        if cur.get("type") != cond.get("type"):
            continue
        same_status = cur.get("status") == cond.get("status")
        if same_status and cur.get("reason") == cond.get("reason") and cur.get("message") == cond.get("message"):
            return False
        new = dict(cond)
        new["lastTransitionTime"] = cur.get("lastTransitionTime") if same_status and cur.get("lastTransitionTime") \
            else stamp
        if update_time:
            new["lastUpdateTime"] = stamp
        conditions[i] = new
        return True
    new = dict(cond)
    new["lastTransitionTime"] = stamp
    if update_time:
        new["lastUpdateTime"] = stamp
    conditions.append(new)
    return True


def remove_condition(conditions: list[Obj], type_: str) -> bool:
    kept = [c for c in conditions if c.get("type") != type_]
    changed = len(kept) != len(conditions)
    conditions[:] = kept
    return changed


# ---------------------------------------------------------------------- pod state

def is_terminating(obj: Mapping[str, Any]) -> bool:
    return bool(m.deletion_timestamp(obj))


def phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted."""
    return phase(pod) not in ("Succeeded", "Failed") and not is_terminating(pod)


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    cond = get_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: Mapping[str, Any]) -> datetime | None:
    cond = get_condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime"))


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, at: datetime | None = None) -> bool:
    """Ready for at least ``minReadySeconds`` (a Ready pod without a transition time counts at once)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    if since is None:
        return False
    return ((at or now()) - since).total_seconds() >= min_ready_seconds


def seconds_until_available(pod: Mapping[str, Any], min_ready_seconds: int, at: datetime | None = None) -> float | None:
    """For a Ready pod not yet available: how long until it is (to requeue then); else None."""
    if min_ready_seconds <= 0 or not is_pod_ready(pod):
        return None
    since = ready_since(pod)
    if since is None:
        return None
    left = min_ready_seconds - ((at or now()) - since).total_seconds()
    return left if left > 0 else None


def restart_count(pod: Mapping[str, Any]) -> int:
    return sum(int(cs.get("restartCount") or 0) for cs in (pod.get("status") or {}).get("containerStatuses") or []
               if isinstance(cs, Mapping))


def deletion_rank(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """Sort key: pods that sort first are given up first on scale-down (client-go ``ActivePods``).

    Unscheduled before scheduled; Pending before Unknown before Running; not ready before ready;
    ready for a shorter time before longer; more restarts before fewer; newer before older.
    """
    scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    phase_rank = _PHASE_RANK.get(phase(pod), 3)
    ready = 1 if is_pod_ready(pod) else 0
    since = ready_since(pod)
    # A more recent readiness sorts first: negate the timestamp.
    ready_key = -since.timestamp() if since is not None else float("-inf")
    created = parse_time(m.creation_timestamp(pod))
    created_key = -created.timestamp() if created is not None else float("-inf")
    return (scheduled, phase_rank, ready, ready_key, -restart_count(pod), created_key)


def labels_match_template(pod: Mapping[str, Any], template_labels: Mapping[str, str]) -> bool:
    labels = m.labels(pod)
    return all(labels.get(k) == v for k, v in template_labels.items())


# ---------------------------------------------------------------------- building pods

def pod_from_template(template: Mapping[str, Any], *, owner: Mapping[str, Any], owner_ref: Obj | None,
                      generate_name: str = "", name: str = "") -> Obj:
    """``GetPodFromTemplate``: labels, annotations, finalizers and spec of the template."""
    tmeta = template.get("metadata") or {}
    meta: Obj = {"namespace": m.namespace(owner)}
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name or f"{m.name(owner)}-"
    for key in ("labels", "annotations"):
        if tmeta.get(key):
            meta[key] = dict(tmeta[key])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    if owner_ref is not None:
        meta["ownerReferences"] = [owner_ref]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": m.deep_copy(template.get("spec") or {})}


def owner_ref_of(obj: Mapping[str, Any], kind: str, api_version: str) -> Obj:
    """The controller reference a workload of ``kind`` puts on what it creates."""
    return m.new_controller_ref(obj, api_version=api_version, kind=kind)


def controlled_by_kind(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    ref = m.controller_ref(obj)
    if ref is not None and ref.get("kind") == kind:
        return ref
    return None


def count(items: Iterable[Any]) -> int:
    return sum(1 for _ in items)
