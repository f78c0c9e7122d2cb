"""Pure Deployment arithmetic and bookkeeping (``k8s.io/kubernetes/pkg/controller/deployment/util``).

Template hashing and ReplicaSet identity, revisions and the annotations kubectl reads, the
maxSurge/maxUnavailable fenceposts, how far a rollout may scale the new ReplicaSet up, the
Deployment status and its conditions (with upstream's reasons), progress and deadline checks.
Everything works on JSON dicts and never does I/O, so it is tested on plain data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from apimachinery import meta as m

from . import podutil as pu

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
MAX_REV_HISTORY_CHARS = 2000
_NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})

# Condition reasons, as upstream spells them.
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
TIMED_OUT = "ProgressDeadlineExceeded"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_CREATED = "NewReplicaSetCreated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# ---------------------------------------------------------------------- accessors

def spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def replicas(obj: Mapping[str, Any]) -> int:
    """``spec.replicas`` (defaulted to 1 by the API server; a missing value reads as 1 here too)."""
    value = spec(obj).get("replicas", 1)
    return int(value) if isinstance(value, int) else 1


def status_int(obj: Mapping[str, Any], field: str) -> int:
    value = status(obj).get(field)
    return int(value) if isinstance(value, int) else 0


def is_rolling(d: Mapping[str, Any]) -> bool:
    return ((spec(d).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def has_progress_deadline(d: Mapping[str, Any]) -> bool:
    value = spec(d).get("progressDeadlineSeconds")
    return isinstance(value, int) and value != 2**31 - 1


def revision_history_limit(d: Mapping[str, Any]) -> int | None:
    value = spec(d).get("revisionHistoryLimit")
    return value if isinstance(value, int) else None


# ---------------------------------------------------------------------- hashing and identity

def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: map each character onto consonants and digits (no vowels, no words)."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def canonical(value: Any) -> Any:
    """A template as Go would compare it: ``null``, ``{}`` and ``[]`` are the same as absent.

    kubectl sends templates as serialized Go structs (``creationTimestamp: null`` in the template's
    metadata, which the API server stores as sent), while other clients omit such fields; both are
    the same template and must hash and compare the same."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            c = canonical(v)
            if c is None or c == {} or c == []:
                continue
            out[k] = c
        return out
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def compute_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """A stable short hash of a pod template (FNV-1a 32 over its canonical JSON, plus the collision
    count as upstream appends it), encoded like upstream's ``ComputeHash``."""
    data = orjson.dumps(canonical(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += int(collision_count & 0xFFFFFFFF).to_bytes(4, "little")
    return safe_encode(str(fnv32a(data)))


def _without_hash(template: Mapping[str, Any]) -> Obj:
    t = canonical(dict(template))
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return canonical(t)


def equal_ignore_hash(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Templates equal but for the ``pod-template-hash`` label (``EqualIgnoreHash``)."""
    return _without_hash(a) == _without_hash(b)


def template_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return spec(obj).get("template") or {}


def creation_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """Oldest first, ties by name (``ReplicaSetsByCreationTimestamp``)."""
    return (m.creation_timestamp(obj), m.name(obj))


def find_new_rs(d: Mapping[str, Any], rss: Sequence[Mapping[str, Any]]) -> Obj | None:
    """The oldest ReplicaSet whose template equals the Deployment's (several can after a hash collision)."""
    template = template_of(d)
    for rs in sorted(rss, key=creation_key):
        if equal_ignore_hash(template_of(rs), template):
            return dict(rs)
    return None


def find_old_rss(d: Mapping[str, Any], rss: Sequence[Mapping[str, Any]]) -> tuple[list[Obj], list[Obj]]:
    """(old ReplicaSets that still have pods, every old ReplicaSet)."""
    new = find_new_rs(d, rss)
    all_old = [dict(rs) for rs in rss if new is None or m.uid(rs) != m.uid(new)]
    return [rs for rs in all_old if replicas(rs) > 0], all_old


# ---------------------------------------------------------------------- revisions

def revision(obj: Mapping[str, Any]) -> int:
    try:
        return int(m.annotations(obj).get(REVISION, "0") or 0)
    except ValueError:
        return 0


def max_revision(rss: Iterable[Mapping[str, Any]]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def set_new_rs_annotations(d: Mapping[str, Any], rs: Obj, new_revision: int, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``: copy the Deployment's annotations, raise the revision (keeping
    the replaced ones in revision-history: that is how a rolled-back-to ReplicaSet remembers), and
    on a new ReplicaSet record desired/max replicas. True if ``rs`` changed."""
    ann = m.ensure_metadata(rs).setdefault("annotations", {})
    changed = False
    for k, v in m.annotations(d).items():
        if k in _NOT_COPIED or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    had = REVISION in ann
    old = revision(rs)
    if old < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if had:
            history = ann.get(REVISION_HISTORY, "")
            entries = history.split(",") if history else []
            entries.append(str(old))
            while len(",".join(entries)) > MAX_REV_HISTORY_CHARS and len(entries) > 1:
                entries.pop(0)
            ann[REVISION_HISTORY] = ",".join(entries)
    if not exists:
        total = replicas(d)
        if set_replicas_annotations(rs, total, total + max_surge(d)):
            changed = True
    return changed


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    ann = m.ensure_metadata(rs).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Mapping[str, Any], desired: int, maximum: int) -> bool:
    ann = m.annotations(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(maximum)


def desired_replicas_annotation(rs: Mapping[str, Any]) -> int | None:
    try:
        return int(m.annotations(rs)[DESIRED_REPLICAS])
    except (KeyError, ValueError):
        return None


def max_replicas_annotation(rs: Mapping[str, Any]) -> int | None:
    try:
        return int(m.annotations(rs)[MAX_REPLICAS])
    except (KeyError, ValueError):
        return None


# ---------------------------------------------------------------------- surge and unavailability

def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, bool):
        raise ValueError(f"invalid value {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            pct = int(text[:-1])
            exact = pct * total / 100
            return math.ceil(exact) if round_up else math.floor(exact)
        return int(text)
    if value is None:
        return 0
    raise ValueError(f"invalid value {value!r}")


def resolve_fenceposts(surge: Any, unavailable: Any, desired: int) -> tuple[int, int]:
    """maxSurge rounds up, maxUnavailable down; both zero would deadlock, so unavailable becomes 1."""
    s = int_or_percent(surge if surge is not None else "25%", desired, True)
    u = int_or_percent(unavailable if unavailable is not None else "25%", desired, False)
    if s == 0 and u == 0:
        u = 1
    return s, u


def _rolling(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return (spec(d).get("strategy") or {}).get("rollingUpdate") or {}


def max_surge(d: Mapping[str, Any]) -> int:
    if not is_rolling(d):
        return 0
    r = _rolling(d)
    return resolve_fenceposts(r.get("maxSurge"), r.get("maxUnavailable"), replicas(d))[0]


def max_unavailable(d: Mapping[str, Any]) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    r = _rolling(d)
    u = resolve_fenceposts(r.get("maxSurge"), r.get("maxUnavailable"), replicas(d))[1]
    return min(u, replicas(d))


def spec_replicas_sum(rss: Iterable[Mapping[str, Any] | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def actual_replicas_sum(rss: Iterable[Mapping[str, Any] | None]) -> int:
    return sum(status_int(rs, "replicas") for rs in rss if rs is not None)


def ready_replicas_sum(rss: Iterable[Mapping[str, Any] | None]) -> int:
    return sum(status_int(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replicas_sum(rss: Iterable[Mapping[str, Any] | None]) -> int:
    return sum(status_int(rs, "availableReplicas") for rs in rss if rs is not None)


def safe_available(rs: Mapping[str, Any]) -> int:
    """Availability a scale-down decision may count on: a ReplicaSet already told to shrink keeps at most
    ``spec.replicas`` of its available pods, whatever its (possibly older) status says."""
    avail = status_int(rs, "availableReplicas")
    observed = status_int(rs, "observedGeneration")
    if observed < m.generation(rs):
        avail = min(avail, replicas(rs))
    return min(avail, replicas(rs))


def new_rs_new_replicas(d: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any] | None],
                        new_rs: Mapping[str, Any]) -> int:
    """How big the new ReplicaSet may be now: up to ``replicas + maxSurge`` pods in all ReplicaSets.

    Each ReplicaSet counts as the larger of its ``spec.replicas`` and its ``status.replicas`` (upstream
    counts only the spec): an old ReplicaSet just told to shrink still has its pods until its own
    controller deletes them, and growing the new one into that room would put more than
    ``replicas + maxSurge`` pods in the cluster for a moment.
    """
    if not is_rolling(d):
        return replicas(d)
    current = sum(max(replicas(rs), status_int(rs, "replicas")) for rs in all_rss if rs is not None)
    max_total = replicas(d) + max_surge(d)
    if current >= max_total:
        return replicas(new_rs)
    scale_up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + max(scale_up, 0)


def is_saturated(d: Mapping[str, Any], rs: Mapping[str, Any] | None) -> bool:
    if rs is None:
        return False
    desired = desired_replicas_annotation(rs)
    return (replicas(rs) == replicas(d) and desired == replicas(d)
            and status_int(rs, "availableReplicas") == replicas(d))


def active(rss: Iterable[Mapping[str, Any] | None]) -> list[Obj]:
    return [dict(rs) for rs in rss if rs is not None and replicas(rs) > 0]


def find_active_or_latest(new_rs: Mapping[str, Any] | None, old_rss: Sequence[Mapping[str, Any]]) -> Obj | None:
    if new_rs is None and not old_rss:
        return None
    olds = sorted(old_rss, key=creation_key, reverse=True)
    live = active([*olds, new_rs])
    if not live:
        return dict(new_rs) if new_rs is not None else dict(olds[0])
    if len(live) == 1:
        return live[0]
    return None


def proportion(rs: Mapping[str, Any], d: Mapping[str, Any], to_add: int, added: int) -> int:
    """``GetProportion``: this ReplicaSet's share of a scale of the whole Deployment by ``to_add``."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if replicas(d) == 0:
        fraction = -replicas(rs)
    else:
        max_now = replicas(d) + max_surge(d)
        before = max_replicas_annotation(rs) or status_int(d, "replicas")
        if not before:
            fraction = 0
        else:
            fraction = _round_half_away(replicas(rs) * max_now / before) - replicas(rs)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


# ---------------------------------------------------------------------- conditions and status

def new_condition(type_: str, status_: str, reason: str, message: str, when: str | None = None) -> Obj:
    stamp = when or m.now_rfc3339()
    return {"type": type_, "status": status_, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def get_condition(st: Mapping[str, Any], type_: str) -> Obj | None:
    for c in st.get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == type_:
            return dict(c)
    return None


def set_condition(st: Obj, cond: Obj) -> None:
    """``SetDeploymentCondition``: same status and reason → unchanged; same status → keep the transition
    time; the condition moves to the end of the list."""
    cur = get_condition(st, cond["type"])
    if cur is not None and cur.get("status") == cond.get("status") and cur.get("reason") == cond.get("reason"):
        return
    if cur is not None and cur.get("status") == cond.get("status"):
        cond = {**cond, "lastTransitionTime": cur.get("lastTransitionTime")}
    st["conditions"] = [c for c in st.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(st: Obj, type_: str) -> None:
    kept = [c for c in st.get("conditions") or [] if c.get("type") != type_]
    if kept:
        st["conditions"] = kept
    else:
        st.pop("conditions", None)


def calculate_status(d: Mapping[str, Any], all_rss: Sequence[Mapping[str, Any] | None],
                     new_rs: Mapping[str, Any] | None) -> Obj:
    rss = [rs for rs in all_rss if rs is not None]
    available = available_replicas_sum(rss)
    total = spec_replicas_sum(rss)
    st: Obj = {
        "observedGeneration": m.generation(d),
        "replicas": actual_replicas_sum(rss),
        "updatedReplicas": status_int(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": ready_replicas_sum(rss),
        "availableReplicas": available,
        "unavailableReplicas": max(total - available, 0),
    }
    if status(d).get("collisionCount") is not None:
        st["collisionCount"] = status(d)["collisionCount"]
    conditions = [dict(c) for c in status(d).get("conditions") or []]
    if conditions:
        st["conditions"] = conditions
    if available >= replicas(d) - max_unavailable(d):
        set_condition(st, new_condition("Available", "True", MIN_AVAILABLE, "Deployment has minimum availability."))
    else:
        set_condition(st, new_condition("Available", "False", MIN_UNAVAILABLE,
                                        "Deployment does not have minimum availability."))
    return st


def deployment_complete(d: Mapping[str, Any], st: Mapping[str, Any]) -> bool:
    want = replicas(d)
    return (st.get("updatedReplicas") == want and st.get("replicas") == want and st.get("availableReplicas") == want
            and int(st.get("observedGeneration") or 0) >= m.generation(d))


def deployment_progressing(d: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    old = status(d)
    old_old = int(old.get("replicas") or 0) - int(old.get("updatedReplicas") or 0)
    new_old = int(new.get("replicas") or 0) - int(new.get("updatedReplicas") or 0)
    return (int(new.get("updatedReplicas") or 0) > int(old.get("updatedReplicas") or 0) or new_old < old_old
            or int(new.get("readyReplicas") or 0) > int(old.get("readyReplicas") or 0)
            or int(new.get("availableReplicas") or 0) > int(old.get("availableReplicas") or 0))


def deployment_timed_out(d: Mapping[str, Any], new: Mapping[str, Any], at: datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(new, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = pu.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + timedelta(seconds=int(spec(d)["progressDeadlineSeconds"])) < at


def seconds_to_deadline(d: Mapping[str, Any], st: Mapping[str, Any], at: datetime) -> float | None:
    """When a progressing rollout must be checked against its deadline (``requeueStuckDeployment``)."""
    if not has_progress_deadline(d):
        return None
    cond = get_condition(st, "Progressing")
    if cond is None or deployment_complete(d, st) or cond.get("reason") == TIMED_OUT:
        return None
    since = pu.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    left = (since + timedelta(seconds=int(spec(d)["progressDeadlineSeconds"])) - at).total_seconds()
    return max(left, 0.0) + 0.5
