"""HorizontalPodAutoscaler controller (autoscaling/v2): scale a workload between min and max replicas so
its pods' CPU or memory use stays near a target.

Every ``--horizontal-pod-autoscaler-sync-period`` (15 s) per HPA:

1. read the target's ``/scale`` subresource (current replicas and the pod selector);
2. for each ``Resource`` metric, read PodMetrics from the metrics API
   (``GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods``). If the API is not served, or has no
   numbers for the pods, the HPA reports ``ScalingActive=False`` with reason ``FailedGetResourceMetric``
   and the workload is left as it is;
3. compute the replicas each metric asks for as upstream's replica calculator does: utilization =
   usage / requests of the ready pods; within ``--horizontal-pod-autoscaler-tolerance`` (10 %) nothing
   changes; pods without metrics count as using 100 % (scale down) or 0 % (scale up), not-ready pods as
   0 % when scaling up; the largest proposal wins;
4. stabilize and rate-limit as ``spec.behavior`` says (defaults: scale up at once, by at most
   max(4 pods, 100 %) per 15 s; scale down to the highest recommendation of the last
   ``--horizontal-pod-autoscaler-downscale-stabilization`` (5 min), by at most 100 % per 15 s);
   clamp to ``[minReplicas, maxReplicas]``;
5. write the new size through ``/scale`` (event ``SuccessfulRescale``), and the status: current and
   desired replicas, ``currentMetrics``, ``lastScaleTime`` and the AbleToScale / ScalingActive /
   ScalingLimited conditions with upstream's reasons.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apimachinery.quantity import Quantity, QuantityError
from apimachinery.selectors import LabelSelector
from apiclient.events import NORMAL, WARNING
from apiclient.informer import INDEX_NAMESPACE
from apiclient.rest import PODS, APIConnectionError, resource

from . import podutil as pu
from .context import BaseController, ControllerContext
from .discovery import APIResource, DiscoveryError, by_group_kind, discover

log = logging.getLogger("controllers.hpa")

Obj = dict[str, Any]
HPAS = resource("horizontalpodautoscalers", "autoscaling", "v2")
METRICS_PATH = "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods"
DISCOVERY_TTL = 30.0


class MetricError(Exception):
    """A metric could not be computed (reason, message as the HPA condition shows them)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class _History:
    recommendations: list[tuple[float, int]] = field(default_factory=list)  # (time, replicas)
    events: list[tuple[float, int]] = field(default_factory=list)  # (time, +added / -removed)


# ---------------------------------------------------------------------- pure arithmetic

def resource_quantity(value: Any, name: str) -> float:
    """CPU in millicores, memory (and others) in units."""
    q = Quantity.from_json(value)
    return float(q.milli_value()) if name == "cpu" else float(q)


def pod_request(pod: Mapping[str, Any], name: str) -> float | str:
    """The pod's total request for resource ``name``, or the name of a container without one."""
    total = 0.0
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = ((c.get("resources") or {}).get("requests") or {}).get(name)
        if req is None:
            return str(c.get("name") or "")
        total += resource_quantity(req, name)
    return total


def replicas_for_utilization(*, current: int, usage: dict[str, float], requests: dict[str, float],
                             ready: set[str], unready: set[str], missing: set[str], target: float,
                             tolerance: float) -> tuple[int, int]:
    """Upstream's ``GetResourceReplicas``: (proposed replicas, current utilization %)."""
    counted = {p: u for p, u in usage.items() if p in ready}
    if not counted:
        raise MetricError("FailedGetResourceMetric", "did not receive metrics for targeted pods (pods might be unready)")
    req_sum = sum(requests[p] for p in counted)
    utilization = sum(counted.values()) * 100 / req_sum
    ratio = utilization / target
    scale_up_unready = bool(unready) and ratio > 1.0
    if not scale_up_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, int(utilization)
        return math.ceil(ratio * len(counted)), int(utilization)
    all_usage = dict(counted)
    all_requests = {p: requests[p] for p in counted}
    for p in missing:
        all_requests[p] = requests[p]
        all_usage[p] = requests[p] * target / 100 if ratio < 1.0 else 0.0
    if scale_up_unready:
        for p in unready:
            all_requests[p] = requests[p]
            all_usage[p] = 0.0
    new_ratio = sum(all_usage.values()) * 100 / sum(all_requests.values()) / target
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, int(utilization)
    proposed = math.ceil(new_ratio * len(all_usage))
    if (new_ratio < 1.0 and proposed > current) or (new_ratio > 1.0 and proposed < current):
        return current, int(utilization)
    return proposed, int(utilization)


def replicas_for_average_value(*, current: int, usage: dict[str, float], target: float,
                               tolerance: float) -> tuple[int, float]:
    """``GetRawResourceReplicas``: usage per pod against a target average value."""
    if not usage:
        raise MetricError("FailedGetResourceMetric", "did not receive metrics for targeted pods")
    total = sum(usage.values())
    ratio = total / (target * current) if current else total / target
    average = total / len(usage)
    if current and abs(1.0 - ratio) <= tolerance:
        return current, average
    return math.ceil(total / target), average


def stabilize(history: list[tuple[float, int]], *, now: float, current: int, proposed: int, up_window: float,
              down_window: float) -> int:
    """``stabilizeRecommendationWithBehaviors``: the lowest recommendation of the scale-up window and the
    highest of the scale-down window bound where we go from ``current``."""
    up, down = proposed, proposed
    for t, r in history:
        if t > now - up_window:
            up = min(up, r)
        if t > now - down_window:
            down = max(down, r)
    out = current
    if out < up:
        out = up
    if out > down:
        out = down
    return out


def rate_limit(events: list[tuple[float, int]], *, now: float, current: int, desired: int,
               rules: Mapping[str, Any], scale_up: bool) -> int:
    """The furthest ``policies`` allow from ``current`` towards ``desired`` (selectPolicy Max/Min/Disabled)."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    policies = rules.get("policies") or []
    if not policies:
        return desired
    limits: list[int] = []
    for policy in policies:
        period = float(policy.get("periodSeconds") or 15)
        changed = sum(delta for t, delta in events if t > now - period and (delta > 0) == scale_up)
        value = int(policy.get("value") or 0)
        if scale_up:
            start = current - changed
            limits.append(start + value if policy.get("type") == "Pods" else math.ceil(start * (1 + value / 100)))
        else:
            start = current - changed  # changed is negative here
            limits.append(start - value if policy.get("type") == "Pods" else int(start * (1 - value / 100)))
    if scale_up:
        limit = max(limits) if select == "Max" else min(limits)
        return min(desired, limit)
    limit = min(limits) if select == "Max" else max(limits)
    return max(desired, limit)


# ---------------------------------------------------------------------- controller

class HPAController(BaseController):
    name: ClassVar[str] = "horizontalpodautoscaling"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.hpas = ctx.informer(HPAS)
        self.pods = ctx.informer(PODS)
        self.uses(self.pods)
        self.on(self.hpas, add=self._hpa, update=self._hpa_updated, delete=self._hpa_deleted)
        self.history: dict[str, _History] = {}
        self._mapping: dict[tuple[str, str], APIResource] = {}
        self._mapped_at = float("-inf")

    def _hpa(self, hpa: Obj) -> None:
        self.queue.add(m.object_key(hpa))

    def _hpa_updated(self, old: Obj, cur: Obj) -> None:
        if old.get("spec") != cur.get("spec"):
            self.queue.add(m.object_key(cur))

    def _hpa_deleted(self, hpa: Obj) -> None:
        self.history.pop(m.object_key(hpa), None)

    def _now(self) -> float:
        return time.monotonic()

    async def _target(self, ref: Mapping[str, Any]) -> APIResource | None:
        group = str(ref.get("apiVersion") or "").rpartition("/")[0] if "/" in str(ref.get("apiVersion") or "") else ""
        key = (group, str(ref.get("kind") or ""))
        if key not in self._mapping or time.monotonic() - self._mapped_at > DISCOVERY_TTL:
            try:
                self._mapping = by_group_kind(await discover(self.client))
            except DiscoveryError as err:
                self._mapping.update(by_group_kind(err.partial))
            self._mapped_at = time.monotonic()
        return self._mapping.get(key)

    async def sync(self, key: str) -> None:
        cached = self.hpas.get(key)
        if cached is None:
            return
        try:
            await self._reconcile(m.deep_copy(cached))
        finally:
            self.queue.add_after(key, self.options.hpa_sync_period)

    async def _reconcile(self, hpa: Obj) -> None:
        spec = hpa.get("spec") or {}
        ns = m.namespace(hpa)
        status: Obj = dict(hpa.get("status") or {})
        conditions = [dict(c) for c in status.get("conditions") or []]
        ref = spec.get("scaleTargetRef") or {}
        target = await self._target(ref)
        if target is None:
            self._cond(conditions, "AbleToScale", "False", "FailedGetScale",
                       f"the HPA controller was unable to get the target's current scale: no matches for kind "
                       f"\"{ref.get('kind')}\" in group \"{ref.get('apiVersion')}\"")
            await self._write(hpa, status, conditions)
            return
        try:
            scale = await self.client.get(target.resource, str(ref.get("name") or ""), namespace=ns, subresource="scale")
        except StatusError as err:
            self._cond(conditions, "AbleToScale", "False", "FailedGetScale",
                       f"the HPA controller was unable to get the target's current scale: {err.message}")
            self.recorder.event(hpa, WARNING, "FailedGetScale", err.message)
            await self._write(hpa, status, conditions)
            return
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        min_r = int(spec.get("minReplicas", 1) if spec.get("minReplicas") is not None else 1)
        max_r = int(spec.get("maxReplicas") or max(min_r, 1))
        status["currentReplicas"] = int((scale.get("status") or {}).get("replicas") or 0)
        now = self._now()
        hist = self.history.get(m.object_key(hpa))
        if hist is None:
            # First sight (a new HPA, or a new leader): the current size counts as a recommendation, so the
            # scale-down stabilization window protects it instead of scaling down on the first reading.
            hist = self.history[m.object_key(hpa)] = _History(recommendations=[(now, current)])
        if current == 0 and min_r != 0:
            self._cond(conditions, "ScalingActive", "False", "ScalingDisabled",
                       "scaling is disabled since the replica count of the target is zero")
            status["desiredReplicas"] = 0
            await self._write(hpa, status, conditions)
            return
        self._cond(conditions, "AbleToScale", "True", "SucceededGetScale",
                   "the HPA controller was able to get the target's current scale")
        try:
            proposed, metric_status, metric_name = await self._compute(hpa, scale, current)
        except MetricError as err:
            self._cond(conditions, "ScalingActive", "False", err.reason,
                       f"the HPA was unable to compute the replica count: {err.message}")
            self.recorder.event(hpa, WARNING, err.reason, err.message)
            status["desiredReplicas"] = current
            await self._write(hpa, status, conditions)
            return
        status["currentMetrics"] = metric_status
        self._cond(conditions, "ScalingActive", "True", "ValidMetricFound",
                   f"the HPA was able to successfully calculate a replica count from {metric_name}")
        desired = self._normalize(spec, hist, now=now, current=current, proposed=proposed, min_r=min_r,
                                  max_r=max_r, conditions=conditions)
        if desired != current:
            try:
                await self.client.patch(target.resource, str(ref.get("name") or ""), {"spec": {"replicas": desired}},
                                        namespace=ns, subresource="scale")
            except StatusError as err:
                self._cond(conditions, "AbleToScale", "False", "FailedUpdateScale",
                           f"the HPA controller was unable to update the target scale: {err.message}")
                self.recorder.event(hpa, WARNING, "FailedRescale", err.message)
                await self._write(hpa, status, conditions)
                raise
            hist.events.append((now, desired - current))
            reason = f"{metric_name} {'above' if desired > current else 'below'} target"
            self.recorder.event(hpa, NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            log.info("scaled %s/%s from %d to %d", ns, ref.get("name"), current, desired,
                     extra={"event": "hpa_rescale", "hpa": m.object_key(hpa), "from": current, "to": desired})
            self._cond(conditions, "AbleToScale", "True", "SucceededRescale",
                       "the HPA controller was able to update the target scale to %d" % desired)
            status["lastScaleTime"] = m.now_rfc3339()
        else:
            self._cond(conditions, "AbleToScale", "True", "ReadyForNewScale",
                       "recommended size matches current size")
        status["desiredReplicas"] = desired
        hist.events = [(t, d) for t, d in hist.events if t > now - 1800]
        await self._write(hpa, status, conditions)

    def _normalize(self, spec: Mapping[str, Any], hist: _History, *, now: float, current: int, proposed: int,
                   min_r: int, max_r: int, conditions: list[Obj]) -> int:
        behavior = spec.get("behavior") or {}
        up_rules = behavior.get("scaleUp") or {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                               "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                                            {"type": "Percent", "value": 100, "periodSeconds": 15}]}
        down_rules = behavior.get("scaleDown") or {"selectPolicy": "Max",
                                                   "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
        up_window = float(up_rules.get("stabilizationWindowSeconds") or 0)
        down_window = down_rules.get("stabilizationWindowSeconds")
        down_window = float(self.options.hpa_downscale_stabilization if down_window is None else down_window)
        stabilized = stabilize(hist.recommendations, now=now, current=current, proposed=proposed,
                               up_window=up_window, down_window=down_window)
        hist.recommendations.append((now, proposed))
        keep = max(up_window, down_window)
        hist.recommendations = [(t, r) for t, r in hist.recommendations if t > now - keep - 1]
        limited = stabilized
        reason, message = "DesiredWithinRange", "the desired count is within the acceptable range"
        if stabilized > current:
            limited = rate_limit(hist.events, now=now, current=current, desired=stabilized, rules=up_rules,
                                 scale_up=True)
            if limited < stabilized:
                reason, message = "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
        elif stabilized < current:
            limited = rate_limit(hist.events, now=now, current=current, desired=stabilized, rules=down_rules,
                                 scale_up=False)
            if limited > stabilized:
                reason, message = "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
        if limited > max_r:
            limited, reason, message = max_r, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
        elif limited < min_r:
            limited, reason, message = min_r, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
        self._cond(conditions, "ScalingLimited", "False" if reason == "DesiredWithinRange" else "True", reason, message)
        return limited

    async def _compute(self, hpa: Obj, scale: Obj, current: int) -> tuple[int, list[Obj], str]:
        spec = hpa.get("spec") or {}
        metrics = spec.get("metrics") or [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]
        selector_text = (scale.get("status") or {}).get("selector") or ""
        if not selector_text:
            raise MetricError("InvalidSelector", "the HPA target's scale is missing a selector")
        selector = LabelSelector.parse(selector_text)
        pods = [p for p in self.pods.by_index(INDEX_NAMESPACE, m.namespace(hpa)) if selector.matches(m.labels(p))]
        proposals: list[tuple[int, str]] = []
        statuses: list[Obj] = []
        errors: list[MetricError] = []
        usage_cache: dict[str, dict[str, dict[str, float]]] | None = None
        for metric in metrics:
            if metric.get("type") != "Resource":
                errors.append(MetricError(f"FailedGet{metric.get('type')}Metric",
                                          f"unable to get {str(metric.get('type')).lower()} metric: "
                                          "the custom and external metrics APIs are not served"))
                continue
            res = metric.get("resource") or {}
            name = str(res.get("name") or "cpu")
            if usage_cache is None:
                usage_cache = await self._pod_metrics(m.namespace(hpa), selector_text, name)
            try:
                proposal, st, label = self._resource_proposal(name, res.get("target") or {}, pods, usage_cache,
                                                              current)
            except MetricError as err:
                errors.append(err)
                continue
            proposals.append((proposal, label))
            statuses.append(st)
        if not proposals:
            raise errors[0] if errors else MetricError("FailedGetResourceMetric", "no metrics")
        proposal, label = max(proposals)
        return proposal, statuses, label

    async def _pod_metrics(self, ns: str, selector: str, name: str) -> dict[str, dict[str, float]]:
        """pod name -> resource -> usage (CPU in millicores), from the metrics API."""
        try:
            doc = await self.client.request("GET", METRICS_PATH.format(ns=ns), params={"labelSelector": selector})
        except (StatusError, APIConnectionError, asyncio.TimeoutError) as exc:
            msg = exc.message if isinstance(exc, StatusError) else str(exc)
            raise MetricError("FailedGetResourceMetric",
                              f"failed to get {name} utilization: unable to get metrics for resource {name}: "
                              f"unable to fetch metrics from resource metrics API: {msg}") from None
        out: dict[str, dict[str, float]] = {}
        for item in doc.get("items") or []:
            totals: dict[str, float] = {}
            for c in item.get("containers") or []:
                for rname, value in (c.get("usage") or {}).items():
                    try:
                        totals[rname] = totals.get(rname, 0.0) + resource_quantity(value, rname)
                    except (QuantityError, ValueError, TypeError):
                        continue
            out[m.name(item)] = totals
        return out

    def _resource_proposal(self, name: str, target: Mapping[str, Any], pods: list[Obj],
                           usage_by_pod: dict[str, dict[str, float]], current: int) -> tuple[int, Obj, str]:
        tolerance = self.options.hpa_tolerance
        if not any(name in u for u in usage_by_pod.values()):
            raise MetricError("FailedGetResourceMetric",
                              f"failed to get {name} utilization: unable to get metrics for resource {name}: "
                              "no metrics returned from resource metrics API")
        live = [p for p in pods if not pu.is_terminating(p) and pu.phase(p) not in ("Failed", "Succeeded")]
        usage = {m.name(p): usage_by_pod[m.name(p)][name] for p in live
                 if name in usage_by_pod.get(m.name(p), {})}
        if not live or not usage:
            raise MetricError("FailedGetResourceMetric", f"failed to get {name} utilization: no pods returned by "
                                                         "selector while calculating replica count")
        missing = {m.name(p) for p in live if m.name(p) not in usage}
        unready = {m.name(p) for p in live if name == "cpu" and not pu.is_pod_ready(p)} - missing
        ready = set(usage) - unready
        kind = target.get("type") or "Utilization"
        if kind == "Utilization":
            requests: dict[str, float] = {}
            for p in live:
                r = pod_request(p, name)
                if isinstance(r, str) or r <= 0:
                    container = r if isinstance(r, str) else ""
                    raise MetricError("FailedGetResourceMetric",
                                      f"failed to get {name} utilization: missing request for {name} in container "
                                      f"{container} of Pod {m.name(p)}")
                requests[m.name(p)] = r
            goal = float(target.get("averageUtilization") or 80)
            proposal, utilization = replicas_for_utilization(
                current=current, usage=usage, requests=requests, ready=ready, unready=unready, missing=missing,
                target=goal, tolerance=tolerance)
            avg = sum(usage[p] for p in ready) / max(len(ready), 1)
            st = {"type": "Resource", "resource": {"name": name, "current": {
                "averageUtilization": utilization, "averageValue": _format(avg, name)}}}
            return proposal, st, f"{name} resource utilization (percentage of request)"
        if kind == "AverageValue":
            goal = resource_quantity(target.get("averageValue") or "0", name)
            if goal <= 0:
                raise MetricError("InvalidMetricSourceType", "averageValue must be positive")
            counted = {p: u for p, u in usage.items() if p in ready}
            proposal, avg = replicas_for_average_value(current=current, usage=counted, target=goal,
                                                       tolerance=tolerance)
            st = {"type": "Resource", "resource": {"name": name, "current": {"averageValue": _format(avg, name)}}}
            return proposal, st, f"{name} resource"
        raise MetricError("InvalidMetricSourceType", f"invalid target type {kind!r} for a resource metric")

    @staticmethod
    def _cond(conditions: list[Obj], type_: str, status: str, reason: str, message: str) -> None:
        pu.set_condition(conditions, {"type": type_, "status": status, "reason": reason, "message": message})

    async def _write(self, hpa: Obj, status: Obj, conditions: list[Obj]) -> None:
        status["conditions"] = conditions
        status.setdefault("desiredReplicas", 0)
        status.setdefault("currentMetrics", None)
        status["observedGeneration"] = m.generation(hpa)
        if status == (hpa.get("status") or {}):
            return
        body = dict(hpa)
        body["status"] = status
        await self.client.update(HPAS, body, namespace=m.namespace(hpa), subresource="status")


def _format(value: float, name: str) -> str:
    if name == "cpu":
        return Quantity.from_milli(int(round(value))).to_string()
    return Quantity.from_int(int(round(value))).to_string()
