"""LimitRanger: LimitRange objects default and bound the resources of pods and claims.

As upstream's ``plugin/pkg/admission/limitranger``:

* on pod create, every ``type: Container`` item fills each container's missing limits from
  ``default`` and missing requests from ``defaultRequest`` (the pod is annotated
  ``kubernetes.io/limit-ranger: LimitRanger plugin set: cpu request for container app; ...``);
* then the pod must respect ``min``/``max``/``maxLimitRequestRatio`` per container (``Container``
  items) and summed over the pod (``Pod`` items); violations are 403 with upstream's texts, e.g.
  ``pods "x" is forbidden: maximum cpu usage per Container is 500m, but limit is 1`` (several are
  aggregated as ``[a, b]``);
* PersistentVolumeClaims (create and update) must request storage within a ``PersistentVolumeClaim``
  item's ``min``/``max``.

LimitRange objects themselves are validated here (422, e.g. ``min`` above ``max``), since the
generic strategy has no LimitRange rules. Pod updates are not re-checked: container resources are
immutable after create.
"""

from __future__ import annotations

from typing import Any

from apimachinery import errors
from apimachinery.defaults import compute_pod_qos
from apimachinery.quantity import Quantity
from apimachinery.validation import FieldError, Path

from ..handlers import Operation
from .common import Lookups, container_resources, containers, forbidden, is_pod, pod_resources, quantity

ANNOTATION = "kubernetes.io/limit-ranger"
LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
_FIELDS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")


def _q(values: Any) -> dict[str, Quantity]:
    out: dict[str, Quantity] = {}
    if isinstance(values, dict):
        for key in sorted(values):
            q = quantity(values[key])
            if q is not None:
                out[str(key)] = q
    return out


def _fmt(q: Quantity) -> str:
    return q.to_string()


# ---------------------------------------------------------------------- constraints (upstream texts)

def min_constraint(limit_type: str, name: str, enforced: Quantity, requests: dict[str, Quantity],
                   limits: dict[str, Quantity]) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if req is None:
        return f"minimum {name} usage per {limit_type} is {_fmt(enforced)}.  No request is specified"
    if req < enforced:
        return f"minimum {name} usage per {limit_type} is {_fmt(enforced)}, but request is {_fmt(req)}"
    if lim is not None and lim < enforced:
        return f"minimum {name} usage per {limit_type} is {_fmt(enforced)}, but limit is {_fmt(lim)}"
    return None


def max_constraint(limit_type: str, name: str, enforced: Quantity, requests: dict[str, Quantity],
                   limits: dict[str, Quantity]) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if lim is None:
        return f"maximum {name} usage per {limit_type} is {_fmt(enforced)}.  No limit is specified"
    if enforced < lim:
        return f"maximum {name} usage per {limit_type} is {_fmt(enforced)}, but limit is {_fmt(lim)}"
    if req is not None and enforced < req:
        return f"maximum {name} usage per {limit_type} is {_fmt(enforced)}, but request is {_fmt(req)}"
    return None


def max_request_constraint(limit_type: str, name: str, enforced: Quantity,
                           requests: dict[str, Quantity]) -> str | None:
    req = requests.get(name)
    if req is None:
        return f"maximum {name} usage per {limit_type} is {_fmt(enforced)}.  No request is specified"
    if enforced < req:
        return f"maximum {name} usage per {limit_type} is {_fmt(enforced)}, but request is {_fmt(req)}"
    return None


def ratio_constraint(limit_type: str, name: str, enforced: Quantity, requests: dict[str, Quantity],
                     limits: dict[str, Quantity]) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if req is None or req.is_zero():
        return (f"{name} max limit to request ratio per {limit_type} is {_fmt(enforced)}, but no request is "
                "specified or request is 0")
    if lim is None or lim.is_zero():
        return (f"{name} max limit to request ratio per {limit_type} is {_fmt(enforced)}, but no limit is "
                "specified or limit is 0")
    observed = lim.milli_value() / req.milli_value()
    if observed * 1000 > enforced.milli_value():
        return (f"{name} max limit to request ratio per {limit_type} is {_fmt(enforced)}, but provided ratio is "
                f"{observed:f}")
    return None


def _check(item: dict[str, Any], limit_type: str, requests: dict[str, Quantity],
           limits: dict[str, Quantity]) -> list[str]:
    out: list[str] = []
    for name, q in _q(item.get("min")).items():
        out.append(min_constraint(limit_type, name, q, requests, limits) or "")
    for name, q in _q(item.get("max")).items():
        out.append(max_constraint(limit_type, name, q, requests, limits) or "")
    for name, q in _q(item.get("maxLimitRequestRatio")).items():
        out.append(ratio_constraint(limit_type, name, q, requests, limits) or "")
    return [m for m in out if m]


def _items(limit_range: dict[str, Any]) -> list[dict[str, Any]]:
    items = (limit_range.get("spec") or {}).get("limits")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


# ---------------------------------------------------------------------- pods

def default_pod(limit_range: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    """Fill missing container requests/limits from the Container items; returns annotation parts."""
    default_limits: dict[str, Any] = {}
    default_requests: dict[str, Any] = {}
    for item in _items(limit_range):
        if item.get("type") == "Container":
            for key, value in (item.get("defaultRequest") or {}).items():
                default_requests[key] = value
            for key, value in (item.get("default") or {}).items():
                default_limits[key] = value
    notes: list[str] = []
    if not default_limits and not default_requests:
        return notes
    spec = pod.get("spec") or {}
    for kind, label in (("containers", "container"), ("initContainers", "init container")):
        for c in containers(spec, (kind,)):
            resources = c.get("resources")
            if not isinstance(resources, dict):
                resources = c["resources"] = {}
            set_requests: list[str] = []
            set_limits: list[str] = []
            for field, defaults, record in (("limits", default_limits, set_limits),
                                            ("requests", default_requests, set_requests)):
                if not defaults:
                    continue
                values = resources.get(field)
                if not isinstance(values, dict):
                    values = {}
                for key, value in defaults.items():
                    if key not in values:
                        values[key] = value
                        record.append(key)
                if values:
                    resources[field] = values
            if set_requests:
                notes.append(f"{', '.join(sorted(set_requests))} request for {label} {c.get('name', '')}")
            if set_limits:
                notes.append(f"{', '.join(sorted(set_limits))} limit for {label} {c.get('name', '')}")
    return notes


def validate_pod(limit_range: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    out: list[str] = []
    for item in _items(limit_range):
        limit_type = item.get("type")
        if limit_type == "Container":
            for kind in ("containers", "initContainers"):
                for c in containers(spec, (kind,)):
                    out += _check(item, "Container", container_resources(c, "requests"),
                                  container_resources(c, "limits"))
        elif limit_type == "Pod":
            out += _check(item, "Pod", pod_resources(spec, "requests"), pod_resources(spec, "limits"))
    return out


def validate_claim(limit_range: dict[str, Any], claim: dict[str, Any]) -> list[str]:
    requests = _q(((claim.get("spec") or {}).get("resources") or {}).get("requests"))
    out: list[str] = []
    for item in _items(limit_range):
        if item.get("type") != "PersistentVolumeClaim":
            continue
        for name, q in _q(item.get("min")).items():
            out.append(min_constraint("PersistentVolumeClaim", name, q, requests, {}) or "")
        for name, q in _q(item.get("max")).items():
            out.append(max_request_constraint("PersistentVolumeClaim", name, q, requests) or "")
    return [m for m in out if m]


# ---------------------------------------------------------------------- LimitRange validation

def validate_limit_range(obj: dict[str, Any]) -> list[FieldError]:
    """The core of upstream's ``ValidateLimitRange``: known types, real quantities, consistent bounds."""
    errs: list[FieldError] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [FieldError.required(Path.of("spec"), "")]
    items = spec.get("limits")
    if not isinstance(items, list):
        return [FieldError.required(Path.of("spec", "limits"), "")]
    for i, item in enumerate(items):
        base = Path.of("spec", "limits").index(i)
        if not isinstance(item, dict):
            errs.append(FieldError.invalid(base, item, "must be an object"))
            continue
        limit_type = item.get("type")
        if not limit_type:
            errs.append(FieldError.required(base.child("type"), ""))
        elif limit_type not in LIMIT_TYPES:
            errs.append(FieldError.not_supported(base.child("type"), limit_type, LIMIT_TYPES))
        parsed: dict[str, dict[str, Quantity]] = {}
        for field in _FIELDS:
            values = item.get(field)
            if values is None:
                parsed[field] = {}
                continue
            if not isinstance(values, dict):
                errs.append(FieldError.invalid(base.child(field), values, "must be a map of resource names to quantities"))
                parsed[field] = {}
                continue
            parsed[field] = {}
            for key, raw in values.items():
                q = quantity(raw)
                if q is None:
                    errs.append(FieldError.invalid(base.child(field).key(str(key)), raw,
                                                   "quantities must match the regular expression "
                                                   "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
                elif q.sign() < 0:
                    errs.append(FieldError.invalid(base.child(field).key(str(key)), raw,
                                                   "must be greater than or equal to 0"))
                else:
                    parsed[field][str(key)] = q
        if limit_type == "Pod":
            for field in ("default", "defaultRequest"):
                if item.get(field):
                    errs.append(FieldError.forbidden(base.child(field), "may not be specified when `type` is 'Pod'"))
        mx, mn = parsed["max"], parsed["min"]
        dflt, dreq = parsed["default"], parsed["defaultRequest"]
        ratio = parsed["maxLimitRequestRatio"]
        for key in sorted(set(mx) | set(mn) | set(dflt) | set(dreq) | set(ratio)):
            if key in mn and key in mx and mx[key] < mn[key]:
                errs.append(FieldError.invalid(base.child("min").key(key), _fmt(mn[key]),
                                               f"min value {_fmt(mn[key])} is greater than max value {_fmt(mx[key])}"))
            if key in dreq:
                if key in mn and dreq[key] < mn[key]:
                    errs.append(FieldError.invalid(base.child("defaultRequest").key(key), _fmt(dreq[key]),
                                                   f"min value {_fmt(mn[key])} is greater than default request value "
                                                   f"{_fmt(dreq[key])}"))
                if key in mx and mx[key] < dreq[key]:
                    errs.append(FieldError.invalid(base.child("defaultRequest").key(key), _fmt(dreq[key]),
                                                   f"default request value {_fmt(dreq[key])} is greater than max value "
                                                   f"{_fmt(mx[key])}"))
                if key in dflt and dflt[key] < dreq[key]:
                    errs.append(FieldError.invalid(base.child("defaultRequest").key(key), _fmt(dreq[key]),
                                                   f"default request value {_fmt(dreq[key])} is greater than default "
                                                   f"limit value {_fmt(dflt[key])}"))
            if key in dflt:
                if key in mn and dflt[key] < mn[key]:
                    errs.append(FieldError.invalid(base.child("default").key(key), _fmt(dflt[key]),
                                                   f"min value {_fmt(mn[key])} is greater than default value "
                                                   f"{_fmt(dflt[key])}"))
                if key in mx and mx[key] < dflt[key]:
                    errs.append(FieldError.invalid(base.child("default").key(key), _fmt(dflt[key]),
                                                   f"default value {_fmt(dflt[key])} is greater than max value "
                                                   f"{_fmt(mx[key])}"))
            if key in ratio:
                if ratio[key] < Quantity(1):
                    errs.append(FieldError.invalid(base.child("maxLimitRequestRatio").key(key), _fmt(ratio[key]),
                                                   f"ratio {_fmt(ratio[key])} is less than 1"))
                if key in mx and key in mn and not mn[key].is_zero():
                    max_ratio = mx[key].milli_value() / mn[key].milli_value()
                    if ratio[key].milli_value() / 1000 > max_ratio:
                        errs.append(FieldError.invalid(base.child("maxLimitRequestRatio").key(key), _fmt(ratio[key]),
                                                       f"ratio {_fmt(ratio[key])} is greater than max/min = "
                                                       f"{max_ratio:f}"))
    return errs


# ---------------------------------------------------------------------- the plugin

class LimitRanger:
    def __init__(self, *, lookups: Lookups) -> None:
        self.lookups = lookups
        self.lr_type = lookups.type("", "v1", "limitranges")

    async def admit(self, op: Operation) -> None:
        rt = op.info.rt
        if rt.group != "" or op.info.subresource or not isinstance(op.obj, dict):
            return
        if rt.plural == "limitranges" and op.verb in ("create", "update"):
            errs = validate_limit_range(op.obj)
            if errs:
                raise errors.invalid(kind="LimitRange", name=(op.obj.get("metadata") or {}).get("name", ""),
                                     causes=errs)
            return
        pod = is_pod(rt) and op.verb == "create"
        claim = rt.plural == "persistentvolumeclaims" and op.verb in ("create", "update")
        if not (pod or claim):
            return
        ranges = await self.lookups.list(self.lr_type, op.info.namespace)
        if not ranges:
            return
        ranges.sort(key=lambda r: (r.get("metadata") or {}).get("name", ""))
        if claim:
            for lr in ranges:
                problems = validate_claim(lr, op.obj)
                if problems:
                    raise forbidden(op, errors.aggregate_messages(problems))
            return
        notes: list[str] = []
        for lr in ranges:
            notes += default_pod(lr, op.obj)
        if notes:
            meta = op.obj.setdefault("metadata", {})
            annotations = meta.get("annotations")
            if not isinstance(annotations, dict):
                annotations = meta["annotations"] = {}
            annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
            status = op.obj.get("status")
            if isinstance(status, dict) and "qosClass" in status:
                status["qosClass"] = compute_pod_qos(op.obj)  # resources changed after the strategy set it
        for lr in ranges:
            problems = validate_pod(lr, op.obj)
            if problems:
                raise forbidden(op, errors.aggregate_messages(problems))
