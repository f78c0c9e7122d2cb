"""Pure helpers about nodes for the node-lifecycle and DaemonSet controllers: taints and tolerations,
node selectors and required node affinity, node conditions.

(The scheduler has its own, richer versions for its filters; components may not import each other, so
the small subset the controllers need lives here.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from apimachinery.selectors import LabelSelector, Operator, Requirement

Obj = dict[str, Any]

TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"


def taints(node: Mapping[str, Any]) -> list[Obj]:
    return [dict(t) for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, Mapping)]


def tolerations(pod: Mapping[str, Any]) -> list[Obj]:
    return [dict(t) for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, Mapping)]


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """``Toleration.ToleratesTaint``: effect (empty = all), key (empty with Exists = all), Equal/Exists."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if key and key != taint.get("key"):
        return False
    if not key and operator != "Exists":
        return False
    if operator == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def tolerating(tols: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in tols if tolerates(t, taint)]


def untolerated(tols: list[Obj], node_taints: Iterable[Mapping[str, Any]], effects: tuple[str, ...]) -> list[Obj]:
    return [dict(t) for t in node_taints if t.get("effect") in effects and not tolerating(tols, t)]


def same_taint(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


# ---------------------------------------------------------------------- node selection

_OPS = {"In": Operator.IN, "NotIn": Operator.NOT_IN, "Exists": Operator.EXISTS, "DoesNotExist": Operator.DOES_NOT_EXIST,
        "Gt": Operator.GREATER_THAN, "Lt": Operator.LESS_THAN}


def _term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches nothing
    for e in exprs:
        op = e.get("operator")
        values = [str(v) for v in e.get("values") or []]
        if op not in _OPS:
            return False
        if not Requirement(str(e.get("key") or ""), _OPS[op], tuple(values)).matches(labels):
            return False
    name = (node.get("metadata") or {}).get("name")
    for f in fields:
        if f.get("key") != "metadata.name":
            return False
        values = f.get("values") or []
        if (f.get("operator") == "In") != (name in values):
            return False
    return True


def required_affinity_matches(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """``spec.nodeSelector`` and ``requiredDuringSchedulingIgnoredDuringExecution`` node affinity."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    selector = spec.get("nodeSelector") or {}
    if selector and not LabelSelector.from_set({str(k): str(v) for k, v in selector.items()}).matches(labels):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms")
    if terms is None:
        return True
    return any(_term_matches(t, node) for t in terms)


# ---------------------------------------------------------------------- conditions

def condition(node: Mapping[str, Any], type_: str) -> Obj | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == type_:
            return dict(c)
    return None


def ready_status(node: Mapping[str, Any]) -> str:
    """"True", "False" or "Unknown" (no Ready condition yet counts as Unknown)."""
    c = condition(node, "Ready")
    return str(c.get("status")) if c is not None else "Unknown"
