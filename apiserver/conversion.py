"""Conversion between the stored version of a kind and the other versions the API serves.

Most kinds are served in exactly one version and stored as such. A few are served in several
versions that share one storage location, like upstream's HorizontalPodAutoscaler: stored as
``autoscaling/v2``, also served as ``autoscaling/v1``. For those, the handlers run every write in
the storage version (defaults, strategy, admission and validation see one shape, as upstream's
internal version) and convert only at the edges: a request body in a served version is converted to
the storage version on the way in, every object on the way out (responses, lists, watch events)
is converted to the version the client asked for.

``Conversions`` is the registry: per (group, kind) the storage version and a pair of functions per
other served version. A kind without an entry is never converted. The storage may also be another
group's kind: ``events.k8s.io/v1`` Events are stored as core/v1 Events (one object, two shapes, as
upstream), so an Event written through either API is read through both, and field selectors of the
events.k8s.io shape (``regarding.name``) are translated to the stored fields (``involvedObject.name``).

The HorizontalPodAutoscaler pair follows upstream's ``pkg/apis/autoscaling/v1/conversion.go``:

* v1 ``spec.targetCPUUtilizationPercentage`` ↔ a ``Resource`` metric on ``cpu`` with a
  ``Utilization`` target; ``status.currentCPUUtilizationPercentage`` ↔ the ``cpu`` resource
  metric's current ``averageUtilization``.
* What v1 cannot express travels in annotations, so a read-modify-write through v1 loses
  nothing: the other metric specs (``autoscaling.alpha.kubernetes.io/metrics``, in v1's own
  metric shape: ``metricName``, ``targetAverageValue``, ...), the current metrics
  (``.../current-metrics``), the conditions (``.../conditions``) and ``spec.behavior``
  (``.../behavior`` — upstream marshals its *internal* Go type there, which has no JSON tags,
  so the keys are Go field names: ``ScaleUp``, ``StabilizationWindowSeconds``, ...).
* Converting to v1 first drops any such annotation the stored object carries, so only the
  ones conversion produced are shown; converting from v1 lifts them back into fields and drops
  them. An annotation that does not parse is ignored, as upstream ignores it.
* A v1 object with no CPU target and no other metric gets the implicit 80% CPU target, as
  upstream applies it in this conversion (v1's defaulting only sets ``minReplicas``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from apimachinery.registry import ResourceType
from apimachinery.validation import FieldError, is_qualified_name

Obj = dict[str, Any]
ToStorage = Callable[[Obj, bool], Obj]  # (object in the served version, partial) -> storage version
FromStorage = Callable[[Obj], Obj]
ValidateFn = Callable[[Obj], "list[FieldError]"]


@dataclass(frozen=True)
class KindConversion:
    group: str
    kind: str
    storage_version: str
    # served version -> conversion into / out of the storage version
    to_storage: Mapping[str, ToStorage] = field(default_factory=dict)
    from_storage: Mapping[str, FromStorage] = field(default_factory=dict)
    # The group objects are stored in when it is not ``group`` (events.k8s.io Events are core Events).
    storage_group: str | None = None
    # served version -> {field label a client selects on: the stored object's field label}
    field_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # served version -> checks of a created object in that version, before conversion (upstream
    # validates some kinds by the version a request used)
    validate_create: Mapping[str, ValidateFn] = field(default_factory=dict)

    def stored_as(self, rt: ResourceType) -> bool:
        group = self.storage_group if self.storage_group is not None else self.group
        return rt.version == self.storage_version and rt.group == group


class Conversions:
    """Per (group, kind): the storage version and converters for the other served versions."""

    def __init__(self, kinds: tuple[KindConversion, ...] = ()) -> None:
        self._kinds: dict[tuple[str, str], KindConversion] = {}
        for kc in kinds:
            self.register(kc)

    def register(self, kc: KindConversion) -> None:
        self._kinds[(kc.group, kc.kind)] = kc

    def storage_group_version(self, group: str, kind: str) -> tuple[str, str] | None:
        """Where objects of the kind are stored: (group, version)."""
        kc = self._kinds.get((group, kind))
        return (kc.storage_group if kc.storage_group is not None else group, kc.storage_version) if kc else None

    def converts(self, rt: ResourceType) -> bool:
        """Whether objects of ``rt`` are stored as another group/version than ``rt``'s."""
        kc = self._kinds.get((rt.group, rt.kind))
        return kc is not None and not kc.stored_as(rt)

    def to_storage(self, rt: ResourceType, obj: Obj, *, partial: bool = False) -> Obj:
        """``obj`` (in ``rt.version``) in the storage version. ``partial``: ``obj`` is an apply
        configuration, so fields it leaves out stay out (no implicit values)."""
        kc = self._kinds.get((rt.group, rt.kind))
        if kc is None or kc.stored_as(rt):
            return obj
        return kc.to_storage[rt.version](obj, partial)

    def from_storage(self, rt: ResourceType, obj: Obj) -> Obj:
        """A stored object in ``rt.version``."""
        kc = self._kinds.get((rt.group, rt.kind))
        if kc is None or kc.stored_as(rt):
            return obj
        return kc.from_storage[rt.version](obj)

    def field_labels(self, rt: ResourceType) -> Mapping[str, str] | None:
        """For a converted ``rt`` with its own field labels: served label -> stored label."""
        kc = self._kinds.get((rt.group, rt.kind))
        if kc is None or kc.stored_as(rt):
            return None
        return kc.field_labels.get(rt.version)

    def validate_create(self, rt: ResourceType, obj: Obj) -> list[FieldError]:
        kc = self._kinds.get((rt.group, rt.kind))
        check = kc.validate_create.get(rt.version) if kc is not None else None
        return check(obj) if check is not None else []


# ---------------------------------------------------------------------- helpers

def _map(obj: Any, key: str) -> Obj:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _list(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _set(out: Obj, key: str, value: Any) -> None:
    """Go's ``omitempty`` for pointers: set only what is there."""
    if value is not None:
        out[key] = value


def go_json(value: Any) -> str:
    """``encoding/json.Marshal``: compact, and <, >, &, U+2028, U+2029 escaped as Go escapes them."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _parse_list(text: Any) -> list[Obj] | None:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        return None
    return value


# ---------------------------------------------------------------------- HorizontalPodAutoscaler

METRIC_SPECS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
METRIC_STATUSES_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
ROUND_TRIP_ANNOTATIONS = (METRIC_SPECS_ANNOTATION, METRIC_STATUSES_ANNOTATION, CONDITIONS_ANNOTATION,
                          BEHAVIOR_ANNOTATION)
DEFAULT_CPU_UTILIZATION = 80


def _xref(ref: Any) -> Obj:
    """CrossVersionObjectReference: kind, name, apiVersion (omitempty)."""
    ref = ref if isinstance(ref, dict) else {}
    out: Obj = {"kind": ref.get("kind", ""), "name": ref.get("name", "")}
    if ref.get("apiVersion"):
        out["apiVersion"] = ref["apiVersion"]
    return out


def _identifier(name: Any, selector: Any) -> Obj:
    out: Obj = {"name": name or ""}
    _set(out, "selector", selector)
    return out


def _cpu_utilization(metric: Obj, side: str) -> int | None:
    """The CPU utilization of a ``Resource`` metric spec (side "target") or status ("current")."""
    if metric.get("type") != "Resource":
        return None
    resource = _map(metric, "resource")
    if resource.get("name") != "cpu":
        return None
    value = _map(resource, side).get("averageUtilization")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_cpu_resource(metric: Obj) -> bool:
    return metric.get("type") == "Resource" and _map(metric, "resource").get("name") == "cpu"


# v2 MetricSpec -> v1 MetricSpec (the shape of the metrics annotation)

def _metric_spec_to_v1(metric: Obj) -> Obj:
    out: Obj = {"type": metric.get("type", "")}
    if "object" in metric and isinstance(metric["object"], dict):
        src = metric["object"]
        target, ident = _map(src, "target"), _map(src, "metric")
        obj: Obj = {"target": _xref(src.get("describedObject")), "metricName": ident.get("name", ""),
                    "targetValue": target.get("value") if target.get("value") is not None else "0"}
        _set(obj, "selector", ident.get("selector"))
        _set(obj, "averageValue", target.get("averageValue"))
        out["object"] = obj
    if "pods" in metric and isinstance(metric["pods"], dict):
        src = metric["pods"]
        target, ident = _map(src, "target"), _map(src, "metric")
        pods: Obj = {"metricName": ident.get("name", ""),
                     "targetAverageValue": target.get("averageValue") if target.get("averageValue") is not None
                     else "0"}
        _set(pods, "selector", ident.get("selector"))
        out["pods"] = pods
    for key in ("resource", "containerResource"):
        if key in metric and isinstance(metric[key], dict):
            src = metric[key]
            target = _map(src, "target")
            res: Obj = {"name": src.get("name", "")}
            _set(res, "targetAverageUtilization", target.get("averageUtilization"))
            _set(res, "targetAverageValue", target.get("averageValue"))
            if key == "containerResource":
                res["container"] = src.get("container", "")
            out[key] = res
    if "external" in metric and isinstance(metric["external"], dict):
        src = metric["external"]
        target, ident = _map(src, "target"), _map(src, "metric")
        ext: Obj = {"metricName": ident.get("name", "")}
        _set(ext, "metricSelector", ident.get("selector"))
        _set(ext, "targetValue", target.get("value"))
        _set(ext, "targetAverageValue", target.get("averageValue"))
        out["external"] = ext
    return out


# v1 MetricSpec -> v2 MetricSpec

def _metric_spec_from_v1(metric: Obj) -> Obj:
    out: Obj = {"type": metric.get("type", "")}
    if isinstance(metric.get("object"), dict):
        src = metric["object"]
        target: Obj = {"type": "Value" if src.get("averageValue") is None else "AverageValue",
                       "value": src.get("targetValue") if src.get("targetValue") is not None else "0"}
        _set(target, "averageValue", src.get("averageValue"))
        out["object"] = {"describedObject": _xref(src.get("target")),
                         "target": target, "metric": _identifier(src.get("metricName"), src.get("selector"))}
    if isinstance(metric.get("pods"), dict):
        src = metric["pods"]
        value = src.get("targetAverageValue") if src.get("targetAverageValue") is not None else "0"
        out["pods"] = {"metric": _identifier(src.get("metricName"), src.get("selector")),
                       "target": {"type": "AverageValue", "averageValue": value}}
    for key in ("resource", "containerResource"):
        if isinstance(metric.get(key), dict):
            src = metric[key]
            utilization = src.get("targetAverageUtilization")
            target = {"type": "AverageValue" if utilization is None else "Utilization"}
            _set(target, "averageValue", src.get("targetAverageValue"))
            _set(target, "averageUtilization", utilization)
            res: Obj = {"name": src.get("name", "")}
            if key == "containerResource":
                res["container"] = src.get("container", "")
            res["target"] = target
            out[key] = res
    if isinstance(metric.get("external"), dict):
        src = metric["external"]
        target = {"type": "AverageValue" if src.get("targetValue") is None else "Value"}
        _set(target, "value", src.get("targetValue"))
        _set(target, "averageValue", src.get("targetAverageValue"))
        out["external"] = {"metric": _identifier(src.get("metricName"), src.get("metricSelector")),
                           "target": target}
    return out


# v2 MetricStatus -> v1 MetricStatus

def _metric_status_to_v1(metric: Obj) -> Obj:
    out: Obj = {"type": metric.get("type", "")}
    if isinstance(metric.get("object"), dict):
        src = metric["object"]
        current, ident = _map(src, "current"), _map(src, "metric")
        obj: Obj = {"target": _xref(src.get("describedObject")), "metricName": ident.get("name", ""),
                    "currentValue": current.get("value") if current.get("value") is not None else "0"}
        _set(obj, "selector", ident.get("selector"))
        _set(obj, "averageValue", current.get("averageValue"))
        out["object"] = obj
    if isinstance(metric.get("pods"), dict):
        src = metric["pods"]
        current, ident = _map(src, "current"), _map(src, "metric")
        pods: Obj = {"metricName": ident.get("name", ""),
                     "currentAverageValue": current.get("averageValue") if current.get("averageValue") is not None
                     else "0"}
        _set(pods, "selector", ident.get("selector"))
        out["pods"] = pods
    for key in ("resource", "containerResource"):
        if isinstance(metric.get(key), dict):
            src = metric[key]
            current = _map(src, "current")
            res: Obj = {"name": src.get("name", "")}
            _set(res, "currentAverageUtilization", current.get("averageUtilization"))
            res["currentAverageValue"] = current.get("averageValue") if current.get("averageValue") is not None \
                else "0"
            if key == "containerResource":
                res["container"] = src.get("container", "")
            out[key] = res
    if isinstance(metric.get("external"), dict):
        src = metric["external"]
        current, ident = _map(src, "current"), _map(src, "metric")
        ext: Obj = {"metricName": ident.get("name", "")}
        _set(ext, "metricSelector", ident.get("selector"))
        ext["currentValue"] = current.get("value") if current.get("value") is not None else "0"
        _set(ext, "currentAverageValue", current.get("averageValue"))
        out["external"] = ext
    return out


# v1 MetricStatus -> v2 MetricStatus

def _metric_status_from_v1(metric: Obj) -> Obj:
    out: Obj = {"type": metric.get("type", "")}
    if isinstance(metric.get("object"), dict):
        src = metric["object"]
        current: Obj = {"value": src.get("currentValue") if src.get("currentValue") is not None else "0"}
        _set(current, "averageValue", src.get("averageValue"))
        out["object"] = {"metric": _identifier(src.get("metricName"), src.get("selector")), "current": current,
                         "describedObject": _xref(src.get("target"))}
    if isinstance(metric.get("pods"), dict):
        src = metric["pods"]
        value = src.get("currentAverageValue") if src.get("currentAverageValue") is not None else "0"
        out["pods"] = {"metric": _identifier(src.get("metricName"), src.get("selector")),
                       "current": {"averageValue": value}}
    for key in ("resource", "containerResource"):
        if isinstance(metric.get(key), dict):
            src = metric[key]
            current = {"averageValue": src.get("currentAverageValue") if src.get("currentAverageValue") is not None
                       else "0"}
            _set(current, "averageUtilization", src.get("currentAverageUtilization"))
            res: Obj = {"name": src.get("name", "")}
            if key == "containerResource":
                res["container"] = src.get("container", "")
            res["current"] = current
            out[key] = res
    if isinstance(metric.get("external"), dict):
        src = metric["external"]
        current = {"value": src.get("currentValue") if src.get("currentValue") is not None else "0"}
        _set(current, "averageValue", src.get("currentAverageValue"))
        out["external"] = {"metric": _identifier(src.get("metricName"), src.get("metricSelector")),
                           "current": current}
    return out


def _condition(cond: Obj) -> Obj:
    """HorizontalPodAutoscalerCondition (the same fields in v1 and v2)."""
    out: Obj = {"type": cond.get("type", ""), "status": cond.get("status", "")}
    _set(out, "lastTransitionTime", cond.get("lastTransitionTime"))
    if cond.get("reason"):
        out["reason"] = cond["reason"]
    if cond.get("message"):
        out["message"] = cond["message"]
    return out


# spec.behavior <-> the behavior annotation (Go field names of the internal type)

_RULE_FIELDS = (("StabilizationWindowSeconds", "stabilizationWindowSeconds"), ("SelectPolicy", "selectPolicy"))


def _behavior_to_annotation(behavior: Obj) -> str:
    def rules(value: Any) -> Obj | None:
        if not isinstance(value, dict):
            return None
        out: Obj = {go: value.get(js) for go, js in _RULE_FIELDS}
        policies = value.get("policies")
        out["Policies"] = None if not isinstance(policies, list) else [
            {"Type": p.get("type", ""), "Value": p.get("value", 0), "PeriodSeconds": p.get("periodSeconds", 0)}
            for p in policies if isinstance(p, dict)]
        return out

    return go_json({"ScaleUp": rules(behavior.get("scaleUp")), "ScaleDown": rules(behavior.get("scaleDown"))})


def _fold(value: Obj) -> dict[str, Any]:
    """encoding/json matches object keys to field names case-insensitively."""
    return {k.lower(): v for k, v in value.items()} if isinstance(value, dict) else {}


def _behavior_from_annotation(text: Any) -> Obj | None:
    """spec.behavior from the annotation, or None when it does not parse or is empty (both rules nil)."""
    try:
        raw = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    folded = _fold(raw)
    out: Obj = {}
    for go_key, js_key in (("scaleup", "scaleUp"), ("scaledown", "scaleDown")):
        value = folded.get(go_key)
        if value is None:
            continue
        if not isinstance(value, dict):
            return None
        rules_in = _fold(value)
        rules: Obj = {}
        window = rules_in.get("stabilizationwindowseconds")
        select = rules_in.get("selectpolicy")
        policies = rules_in.get("policies")
        if window is not None and (not isinstance(window, int) or isinstance(window, bool)):
            return None
        if select is not None and not isinstance(select, str):
            return None
        if policies is not None and not isinstance(policies, list):
            return None
        _set(rules, "stabilizationWindowSeconds", window)
        _set(rules, "selectPolicy", select)
        if policies is not None:
            converted = []
            for p in policies:
                if not isinstance(p, dict):
                    return None
                pf = _fold(p)
                converted.append({"type": pf.get("type", ""), "value": pf.get("value", 0),
                                  "periodSeconds": pf.get("periodseconds", 0)})
            rules["policies"] = converted
        out[js_key] = rules
    return out or None


def _drop_round_trip(meta: Obj) -> None:
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        return
    kept = {k: v for k, v in annotations.items() if k not in ROUND_TRIP_ANNOTATIONS}
    if kept:
        meta["annotations"] = kept
    else:
        meta.pop("annotations", None)


def hpa_v2_to_v1(obj: Obj) -> Obj:
    """A stored autoscaling/v2 HorizontalPodAutoscaler as autoscaling/v1."""
    meta = copy.deepcopy(obj.get("metadata")) if isinstance(obj.get("metadata"), dict) else {}
    _drop_round_trip(meta)
    spec2, status2 = _map(obj, "spec"), _map(obj, "status")
    metrics = [m for m in _list(spec2, "metrics") if isinstance(m, dict)]

    spec: Obj = {"scaleTargetRef": _xref(spec2.get("scaleTargetRef"))}
    _set(spec, "minReplicas", spec2.get("minReplicas"))
    spec["maxReplicas"] = spec2.get("maxReplicas", 0)
    for metric in metrics:  # the first CPU resource metric decides, as upstream
        if _is_cpu_resource(metric):
            _set(spec, "targetCPUUtilizationPercentage", _cpu_utilization(metric, "target"))
            break

    status: Obj = {}
    _set(status, "observedGeneration", status2.get("observedGeneration"))
    _set(status, "lastScaleTime", status2.get("lastScaleTime"))
    status["currentReplicas"] = status2.get("currentReplicas", 0)
    status["desiredReplicas"] = status2.get("desiredReplicas", 0)
    current = [m for m in _list(status2, "currentMetrics") if isinstance(m, dict)]
    for metric in current:
        _set(status, "currentCPUUtilizationPercentage", _cpu_utilization(metric, "current"))

    annotations: Obj = dict(meta.get("annotations") or {})
    others = [_metric_spec_to_v1(m) for m in metrics if _cpu_utilization(m, "target") is None]
    if others:
        annotations[METRIC_SPECS_ANNOTATION] = go_json(others)
    if current:  # even a CPU-only status: it keeps the raw values too
        annotations[METRIC_STATUSES_ANNOTATION] = go_json([_metric_status_to_v1(m) for m in current])
    if isinstance(spec2.get("behavior"), dict):
        annotations[BEHAVIOR_ANNOTATION] = _behavior_to_annotation(spec2["behavior"])
    conditions = [c for c in _list(status2, "conditions") if isinstance(c, dict)]
    if conditions:
        annotations[CONDITIONS_ANNOTATION] = go_json([_condition(c) for c in conditions])
    if annotations:
        meta["annotations"] = annotations
    return {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v1", "metadata": meta,
            "spec": spec, "status": status}


def hpa_v1_to_v2(obj: Obj, partial: bool = False) -> Obj:
    """An autoscaling/v1 HorizontalPodAutoscaler in the storage version, autoscaling/v2.

    ``partial`` (an apply configuration): fields the object leaves out stay out, and no implicit
    80% CPU target is added.
    """
    meta = copy.deepcopy(obj.get("metadata")) if isinstance(obj.get("metadata"), dict) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    spec1 = _map(obj, "spec")
    status1 = _map(obj, "status")

    spec: Obj = {}
    if not partial or "scaleTargetRef" in spec1:
        spec["scaleTargetRef"] = _xref(spec1.get("scaleTargetRef"))
    _set(spec, "minReplicas", spec1.get("minReplicas"))
    if not partial or "maxReplicas" in spec1:
        spec["maxReplicas"] = spec1.get("maxReplicas", 0)
    metrics: list[Obj] = []
    if spec1.get("targetCPUUtilizationPercentage") is not None:
        metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": spec1["targetCPUUtilizationPercentage"]}}}]
    if METRIC_SPECS_ANNOTATION in annotations:
        others = _parse_list(annotations[METRIC_SPECS_ANNOTATION])
        if others is not None:  # the spec's own CPU target goes after the others, as upstream
            metrics = [_metric_spec_from_v1(m) for m in others] + metrics
    if not metrics and not partial:
        # autoscaling/v1's former implicit default, applied here where all metrics are known
        metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    if metrics:
        spec["metrics"] = metrics
    if BEHAVIOR_ANNOTATION in annotations:
        behavior = _behavior_from_annotation(annotations[BEHAVIOR_ANNOTATION])
        if behavior is not None:
            spec["behavior"] = behavior

    status: Obj = {}
    _set(status, "observedGeneration", status1.get("observedGeneration"))
    _set(status, "lastScaleTime", status1.get("lastScaleTime"))
    if not partial or "currentReplicas" in status1:
        status["currentReplicas"] = status1.get("currentReplicas", 0)
    if not partial or "desiredReplicas" in status1:
        status["desiredReplicas"] = status1.get("desiredReplicas", 0)
    if status1.get("currentCPUUtilizationPercentage") is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": status1["currentCPUUtilizationPercentage"]}}}]
    if METRIC_STATUSES_ANNOTATION in annotations:
        current = _parse_list(annotations[METRIC_STATUSES_ANNOTATION])
        if current is not None:  # these carry more than the CPU percentage: they win
            status["currentMetrics"] = [_metric_status_from_v1(m) for m in current]
    if CONDITIONS_ANNOTATION in annotations:
        conditions = _parse_list(annotations[CONDITIONS_ANNOTATION])
        if conditions is not None:
            status["conditions"] = [_condition(c) for c in conditions]
    _drop_round_trip(meta)

    out: Obj = {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2", "metadata": meta}
    if not partial or "spec" in obj:
        out["spec"] = spec
    if not partial or "status" in obj:
        out["status"] = status
    return out


HPA = KindConversion("autoscaling", "HorizontalPodAutoscaler", "v2",
                     to_storage={"v1": hpa_v1_to_v2}, from_storage={"v1": hpa_v2_to_v1})


# ---------------------------------------------------------------------- Event

# events.k8s.io/v1 field <-> core/v1 field (upstream's pkg/apis/events/v1/conversion.go); the
# fields with the same name in both (reason, type, action, eventTime, series, related,
# reportingInstance) are copied as they are.
_EVENT_RENAMES = (("regarding", "involvedObject"), ("note", "message"), ("reportingController", "reportingComponent"),
                  ("deprecatedSource", "source"), ("deprecatedFirstTimestamp", "firstTimestamp"),
                  ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count"))
_EVENT_SHARED = ("reason", "type", "action", "eventTime", "series", "related", "reportingInstance")
_EVENT_NOTE_LIMIT = 1024
_EVENT_FIELD_LIMIT = 128


def event_v1_to_core(obj: Obj, partial: bool) -> Obj:
    out: Obj = {"apiVersion": "v1", "kind": "Event", "metadata": copy.deepcopy(_map(obj, "metadata"))}
    for name in _EVENT_SHARED:
        if name in obj:
            out[name] = copy.deepcopy(obj[name])
    for new, old in _EVENT_RENAMES:
        if new in obj:
            out[old] = copy.deepcopy(obj[new])
    return out


def event_core_to_v1(obj: Obj) -> Obj:
    out: Obj = {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": copy.deepcopy(_map(obj, "metadata"))}
    for name in _EVENT_SHARED:
        if obj.get(name) not in (None, ""):
            out[name] = copy.deepcopy(obj[name])
    for new, old in _EVENT_RENAMES:
        if obj.get(old) not in (None, "", {}, 0):
            out[new] = copy.deepcopy(obj[old])
    out.setdefault("regarding", {})  # Go structs are never omitted
    out.setdefault("eventTime", None)  # Go's MicroTime is never omitted: a core Event may have none
    return out


def validate_event_v1_create(obj: Obj) -> list[FieldError]:
    """What upstream checks of an Event created through events.k8s.io/v1 (not through core/v1)."""
    errs: list[FieldError] = []
    if not obj.get("eventTime"):
        errs.append(FieldError.required("eventTime"))
    if obj.get("type") not in ("Normal", "Warning"):
        errs.append(FieldError.invalid("type", "", f"has invalid value: {obj.get('type') or ''}"))
    controller = str(obj.get("reportingController") or "")
    if not controller:
        errs.append(FieldError.required("reportingController"))
    errs += [FieldError.invalid("reportingController", controller, msg) for msg in is_qualified_name(controller)]
    for name in ("reportingInstance", "action", "reason"):
        value = str(obj.get(name) or "")
        if not value:
            errs.append(FieldError.required(name))
        elif len(value) > _EVENT_FIELD_LIMIT:
            errs.append(FieldError.invalid(name, "", f"can have at most {_EVENT_FIELD_LIMIT} characters"))
    if len(str(obj.get("note") or "")) > _EVENT_NOTE_LIMIT:
        errs.append(FieldError.invalid("note", "", f"can have at most {_EVENT_NOTE_LIMIT} characters"))
    for name in ("deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount"):
        if obj.get(name) not in (None, "", {}, 0):
            errs.append(FieldError.invalid(name, "", "needs to be unset"))
    return errs


EVENT = KindConversion(
    "events.k8s.io", "Event", "v1", storage_group="",
    to_storage={"v1": event_v1_to_core}, from_storage={"v1": event_core_to_v1},
    field_labels={"v1": {"reason": "reason", "type": "type", "reportingController": "reportingComponent",
                         **{f"regarding.{f}": f"involvedObject.{f}" for f in (
                             "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}}},
    validate_create={"v1": validate_event_v1_create})


def builtin() -> Conversions:
    """The conversions of the built-in kinds."""
    return Conversions((HPA, EVENT))
