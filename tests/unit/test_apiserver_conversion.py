"""apiserver/conversion.py: the registry and the autoscaling v1 <-> v2 HorizontalPodAutoscaler pair."""

from __future__ import annotations

import json

from apimachinery.registry import Registry
from apiserver.conversion import (BEHAVIOR_ANNOTATION, CONDITIONS_ANNOTATION, METRIC_SPECS_ANNOTATION,
                                  METRIC_STATUSES_ANNOTATION, builtin, go_json, hpa_v1_to_v2, hpa_v2_to_v1)

REF = {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}


def cpu(util: int) -> dict:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": util}}}


def v2(metrics: list[dict], **spec: object) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5, "metrics": metrics, **spec}}


def test_registry_converts_only_other_versions_of_registered_kinds() -> None:
    reg, conv = Registry(), builtin()
    hpa1 = reg.get("autoscaling", "v1", "horizontalpodautoscalers")
    hpa2 = reg.get("autoscaling", "v2", "horizontalpodautoscalers")
    pods = reg.get("", "v1", "pods")
    assert hpa1 is not None and hpa2 is not None and pods is not None
    assert conv.converts(hpa1) and not conv.converts(hpa2) and not conv.converts(pods)
    assert conv.storage_group_version("autoscaling", "HorizontalPodAutoscaler") == ("autoscaling", "v2")
    events = reg.get("events.k8s.io", "v1", "events")
    core_events = reg.get("", "v1", "events")
    assert events is not None and core_events is not None
    assert conv.converts(events) and not conv.converts(core_events)
    assert conv.storage_group_version("events.k8s.io", "Event") == ("", "v1")
    obj = {"metadata": {"name": "p"}}
    assert conv.from_storage(pods, obj) is obj and conv.to_storage(pods, obj) is obj
    assert conv.from_storage(hpa1, v2([cpu(30)]))["spec"]["targetCPUUtilizationPercentage"] == 30


def test_cpu_target_both_ways() -> None:
    out = hpa_v2_to_v1(v2([cpu(50)]))
    assert out["apiVersion"] == "autoscaling/v1"
    assert out["spec"] == {"scaleTargetRef": REF, "minReplicas": 1, "maxReplicas": 5,
                           "targetCPUUtilizationPercentage": 50}
    assert "annotations" not in out["metadata"]
    assert out["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
    back = hpa_v1_to_v2(out)
    assert back["spec"]["metrics"] == [cpu(50)] and back["apiVersion"] == "autoscaling/v2"


def test_no_metric_in_v1_means_80_percent_cpu_unless_partial() -> None:
    v1 = {"metadata": {"name": "h"}, "spec": {"scaleTargetRef": REF, "maxReplicas": 3}}
    assert hpa_v1_to_v2(v1)["spec"]["metrics"] == [cpu(80)]
    partial = hpa_v1_to_v2({"spec": {"maxReplicas": 3}}, True)
    assert partial["spec"] == {"maxReplicas": 3} and "status" not in partial


def test_other_metrics_status_conditions_and_behavior_travel_in_annotations() -> None:
    pods = {"type": "Pods", "pods": {"metric": {"name": "qps", "selector": {"matchLabels": {"a": "b"}}},
                                     "target": {"type": "AverageValue", "averageValue": "1k"}}}
    obj_metric = {"type": "Object", "object": {"describedObject": {"kind": "Ingress", "name": "main",
                                                                    "apiVersion": "networking.k8s.io/v1"},
                                               "metric": {"name": "rps"}, "target": {"type": "Value", "value": "10"}}}
    ext = {"type": "External", "external": {"metric": {"name": "queue"},
                                            "target": {"type": "AverageValue", "averageValue": "30"}}}
    mem = {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                        "averageValue": "100Mi"}}}
    cres = {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {
        "type": "Utilization", "averageUtilization": 60}}}
    obj = v2([cpu(50), pods, obj_metric, ext, mem, cres], behavior={"scaleUp": {"selectPolicy": "Disabled"}})
    obj["metadata"]["annotations"] = {"keep": "me", METRIC_SPECS_ANNOTATION: "stale"}
    obj["status"] = {"currentReplicas": 2, "desiredReplicas": 2, "observedGeneration": 3,
                     "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                         "averageUtilization": 70, "averageValue": "70m"}}},
                                        {"type": "Pods", "pods": {"metric": {"name": "qps"},
                                                                  "current": {"averageValue": "900"}}}],
                     "conditions": [{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
                                     "message": "a<b", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    v1 = hpa_v2_to_v1(obj)
    ann = v1["metadata"]["annotations"]
    assert ann["keep"] == "me"
    assert json.loads(ann[METRIC_SPECS_ANNOTATION]) == [
        {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "1k",
                                  "selector": {"matchLabels": {"a": "b"}}}},
        {"type": "Object", "object": {"target": {"kind": "Ingress", "name": "main",
                                                 "apiVersion": "networking.k8s.io/v1"},
                                      "metricName": "rps", "targetValue": "10"}},
        {"type": "External", "external": {"metricName": "queue", "targetAverageValue": "30"}},
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}},
        {"type": "ContainerResource", "containerResource": {"name": "cpu", "targetAverageUtilization": 60,
                                                            "container": "app"}}]
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 50
    assert v1["status"] == {"observedGeneration": 3, "currentReplicas": 2, "desiredReplicas": 2,
                            "currentCPUUtilizationPercentage": 70}
    assert json.loads(ann[METRIC_STATUSES_ANNOTATION])[1] == {
        "type": "Pods", "pods": {"metricName": "qps", "currentAverageValue": "900"}}
    assert '"message":"a\\u003cb"' in ann[CONDITIONS_ANNOTATION]  # Go escapes HTML characters
    assert json.loads(ann[BEHAVIOR_ANNOTATION]) == {"ScaleUp": {"StabilizationWindowSeconds": None,
                                                                "SelectPolicy": "Disabled", "Policies": None},
                                                    "ScaleDown": None}

    back = hpa_v1_to_v2(v1)
    assert back["metadata"]["annotations"] == {"keep": "me"}
    # the other metrics first, then the spec's CPU target (as upstream orders them)
    assert back["spec"]["metrics"] == [pods, obj_metric, ext, mem, cres, cpu(50)]
    assert back["spec"]["behavior"] == {"scaleUp": {"selectPolicy": "Disabled"}}
    assert back["status"]["currentMetrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "70m",
                                                                      "averageUtilization": 70}}},
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "current": {"averageValue": "900"}}}]
    assert back["status"]["conditions"] == obj["status"]["conditions"]


def test_unparsable_annotations_are_ignored_and_dropped() -> None:
    v1 = {"metadata": {"name": "h", "annotations": {METRIC_SPECS_ANNOTATION: "[1, 2", BEHAVIOR_ANNOTATION: "{}",
                                                    CONDITIONS_ANNOTATION: '{"not": "a list"}'}},
          "spec": {"scaleTargetRef": REF, "maxReplicas": 2, "targetCPUUtilizationPercentage": 40}}
    out = hpa_v1_to_v2(v1)
    assert out["spec"]["metrics"] == [cpu(40)]
    assert "behavior" not in out["spec"] and "conditions" not in out["status"]
    assert "annotations" not in out["metadata"]


def test_behavior_annotation_keys_match_case_insensitively() -> None:
    v1 = {"metadata": {"annotations": {BEHAVIOR_ANNOTATION: json.dumps(
        {"scaledown": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1,
                                                                       "periodseconds": 10}]}})}}, "spec": {}}
    assert hpa_v1_to_v2(v1)["spec"]["behavior"] == {"scaleDown": {
        "stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 10}]}}


def test_go_json_is_compact_and_escapes_like_go() -> None:
    assert go_json({"a": ["<&>", "\u2028"]}) == '{"a":["\\u003c\\u0026\\u003e","\\u2028"]}'
