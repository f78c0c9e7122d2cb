"""autoscaling/v1 and autoscaling/v2 HorizontalPodAutoscalers: one storage (v2), two served versions.

kubectl 1.32's ``autoscale`` creates autoscaling/v1 (a protobuf body); ``kubectl get hpa`` reads v2.
What v1 cannot express travels in upstream's round-trip annotations, so a read-modify-write through
v1 keeps every v2 metric, the behavior and the conditions.
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from tests.harness.apicluster import KUBECTL, APICluster

NS = "default"
V1 = f"/apis/autoscaling/v1/namespaces/{NS}/horizontalpodautoscalers"
V2 = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
V1_RESOURCE = "horizontalpodautoscalers.v1.autoscaling"
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")


@pytest.fixture(scope="module")
def kube(api: APICluster) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(config_file=str(api.kubeconfig))


def ok(api: APICluster, method: str, path: str, body: object = None, **kw: object) -> dict:
    code, out, _ = api.request(method, path, body, **kw)  # type: ignore[arg-type]
    assert code in (200, 201), (code, out)
    return out


def v2_hpa(name: str, metrics: list[dict], behavior: dict | None = None) -> dict:
    spec: dict = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                  "minReplicas": 1, "maxReplicas": 5, "metrics": metrics}
    if behavior is not None:
        spec["behavior"] = behavior
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": spec}


CPU50 = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}
QPS = {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}


def test_discovery_and_openapi_serve_both_versions(api: APICluster) -> None:
    group = ok(api, "GET", "/apis/autoscaling")
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]
    assert group["preferredVersion"]["version"] == "v2"
    v1 = ok(api, "GET", "/apis/autoscaling/v1")
    assert {r["name"] for r in v1["resources"]} == {"horizontalpodautoscalers", "horizontalpodautoscalers/status"}
    doc = ok(api, "GET", "/openapi/v3/apis/autoscaling/v1")
    schemas = doc["components"]["schemas"]
    spec = next(s for name, s in schemas.items() if name.endswith("V1HorizontalPodAutoscalerSpec"))
    assert "targetCPUUtilizationPercentage" in spec["properties"]
    assert any(p.endswith("/horizontalpodautoscalers/{name}") for p in doc["paths"])


@needs_kubectl
def test_kubectl_autoscale_creates_v1_read_as_v2(api: APICluster) -> None:
    api.kubectl("create", "deployment", "web", "--image=nginx:1.27")
    out = api.kubectl("autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu-percent=80").stdout
    assert "horizontalpodautoscaler.autoscaling/web autoscaled" in out
    v2 = ok(api, "GET", f"{V2}/web")
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["minReplicas"] == 2 and v2["spec"]["maxReplicas"] == 5
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    v1 = json.loads(api.kubectl("get", V1_RESOURCE, "web", "-o", "json").stdout)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 80
    assert v1["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
    table = api.kubectl("get", "hpa").stdout
    line = next(ln for ln in table.splitlines() if ln.startswith("web "))
    assert "Deployment/web" in line and "/80%" in line and line.split()[4:6] == ["2", "5"]
    # without --cpu-percent: v1's implicit 80% CPU target, applied in conversion as upstream does
    api.kubectl("autoscale", "deployment", "web", "--name=implicit", "--max=3")
    assert ok(api, "GET", f"{V2}/implicit")["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80


def test_v2_only_fields_round_trip_through_v1(api: APICluster) -> None:
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 120, "selectPolicy": "Min",
                              "policies": [{"type": "Pods", "value": 2, "periodSeconds": 30}]}}
    ok(api, "POST", V2, v2_hpa("multi", [CPU50, QPS], behavior))
    stored = ok(api, "GET", f"{V2}/multi")
    stored["status"] = {"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 61, "averageValue": "61m"}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z",
                        "reason": "ReadyForNewScale", "message": "recommended size matches current size"}]}
    ok(api, "PUT", f"{V2}/multi/status", stored)

    v1 = ok(api, "GET", f"{V1}/multi")
    assert v1["kind"] == "HorizontalPodAutoscaler" and v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 50
    assert v1["status"]["currentCPUUtilizationPercentage"] == 61
    assert v1["status"]["currentReplicas"] == 2 and v1["status"]["desiredReplicas"] == 3
    ann = v1["metadata"]["annotations"]
    assert json.loads(ann["autoscaling.alpha.kubernetes.io/metrics"]) == [
        {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "1k"}}]
    assert json.loads(ann["autoscaling.alpha.kubernetes.io/current-metrics"]) == [
        {"type": "Resource", "resource": {"name": "cpu", "currentAverageUtilization": 61, "currentAverageValue": "61m"}}]
    assert json.loads(ann["autoscaling.alpha.kubernetes.io/conditions"])[0]["reason"] == "ReadyForNewScale"
    # upstream marshals its internal Go type here: Go field names (scaleUp was filled by v2 defaulting)
    behavior_ann = json.loads(ann["autoscaling.alpha.kubernetes.io/behavior"])
    assert behavior_ann["ScaleDown"] == {"StabilizationWindowSeconds": 120, "SelectPolicy": "Min",
                                         "Policies": [{"Type": "Pods", "Value": 2, "PeriodSeconds": 30}]}
    assert behavior_ann["ScaleUp"]["SelectPolicy"] == "Max"

    # read-modify-write through v1 (PUT) keeps everything v1 cannot express
    v1["spec"]["maxReplicas"] = 9
    v1["spec"]["targetCPUUtilizationPercentage"] = 40
    put = ok(api, "PUT", f"{V1}/multi", v1)
    assert put["apiVersion"] == "autoscaling/v1" and put["spec"]["maxReplicas"] == 9
    after = ok(api, "GET", f"{V2}/multi")
    assert after["spec"]["maxReplicas"] == 9
    assert QPS in after["spec"]["metrics"]
    cpu = [m for m in after["spec"]["metrics"] if m["type"] == "Resource"]
    assert cpu == [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                "averageUtilization": 40}}}]
    assert after["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 120
    assert after["spec"]["behavior"]["scaleUp"]["selectPolicy"] == "Max"
    assert after["status"]["conditions"][0]["reason"] == "ReadyForNewScale"
    assert "annotations" not in after["metadata"]  # round-trip annotations are never stored
    assert after["metadata"]["generation"] == 2


def test_round_trip_annotations_written_through_v1(api: APICluster) -> None:
    """A v1 client may write the annotations itself: they become v2 fields; garbage is ignored."""
    body = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "annotated", "annotations": {
                "team": "a",
                "autoscaling.alpha.kubernetes.io/metrics": json.dumps([
                    {"type": "External", "external": {"metricName": "queue", "targetAverageValue": "30"}}]),
                "autoscaling.alpha.kubernetes.io/behavior": "not json"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4}}
    created = ok(api, "POST", V1, body)
    assert created["spec"]["minReplicas"] == 1 and "targetCPUUtilizationPercentage" not in created["spec"]
    v2 = ok(api, "GET", f"{V2}/annotated")
    assert v2["metadata"]["annotations"] == {"team": "a"}
    assert v2["spec"]["metrics"] == [{"type": "External", "external": {
        "metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "30"}}}]
    assert "behavior" not in v2["spec"]


@needs_kubectl
def test_kubectl_patches_and_apply_in_the_v1_shape(api: APICluster) -> None:
    ok(api, "POST", V2, v2_hpa("patched", [CPU50, QPS]))
    api.kubectl("patch", V1_RESOURCE, "patched", "-p", '{"spec":{"targetCPUUtilizationPercentage":65}}')
    api.kubectl("patch", V1_RESOURCE, "patched", "--type=merge", "-p", '{"spec":{"maxReplicas":8}}')
    api.kubectl("patch", V1_RESOURCE, "patched", "--type=json",
                "-p", '[{"op":"replace","path":"/spec/minReplicas","value":2}]')
    v2 = ok(api, "GET", f"{V2}/patched")
    assert (v2["spec"]["minReplicas"], v2["spec"]["maxReplicas"]) == (2, 8)
    assert QPS in v2["spec"]["metrics"]
    assert {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                        "averageUtilization": 65}}} in v2["spec"]["metrics"]
    manifest = """
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: applied}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: %d
  targetCPUUtilizationPercentage: %d
"""
    assert "serverside-applied" in api.kubectl("apply", "--server-side", "-f", "-", input=manifest % (4, 70)).stdout
    api.kubectl("apply", "--server-side", "-f", "-", input=manifest % (6, 75))
    v2 = ok(api, "GET", f"{V2}/applied")
    assert v2["spec"]["maxReplicas"] == 6 and v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 75
    assert "created" in api.kubectl("apply", "-f", "-", input=manifest.replace("applied", "csa") % (3, 50)).stdout
    assert "configured" in api.kubectl("apply", "-f", "-", input=manifest.replace("applied", "csa") % (5, 50)).stdout
    assert ok(api, "GET", f"{V1}/csa")["spec"]["maxReplicas"] == 5
    # the Table through v1 is printed from the stored object: the pods metric shows too
    table = api.kubectl("get", V1_RESOURCE, "patched").stdout
    assert "/65%" in table and "1k" in table


def test_python_client_v1_api_and_cross_version_reads(kube: k8s.ApiClient) -> None:
    v1 = k8s.AutoscalingV1Api(kube)
    v2 = k8s.AutoscalingV2Api(kube)
    body = k8s.V1HorizontalPodAutoscaler(
        metadata=k8s.V1ObjectMeta(name="py-v1"),
        spec=k8s.V1HorizontalPodAutoscalerSpec(
            scale_target_ref=k8s.V1CrossVersionObjectReference(api_version="apps/v1", kind="Deployment", name="web"),
            min_replicas=2, max_replicas=6, target_cpu_utilization_percentage=70))
    created = v1.create_namespaced_horizontal_pod_autoscaler(NS, body)
    assert created.spec.target_cpu_utilization_percentage == 70 and created.status.current_replicas == 0
    read2 = v2.read_namespaced_horizontal_pod_autoscaler("py-v1", NS)
    assert read2.spec.metrics[0].resource.target.average_utilization == 70

    # create as v2, read and list as v1
    v2.create_namespaced_horizontal_pod_autoscaler(NS, k8s.V2HorizontalPodAutoscaler(
        metadata=k8s.V1ObjectMeta(name="py-v2"),
        spec=k8s.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=k8s.V2CrossVersionObjectReference(api_version="apps/v1", kind="Deployment", name="web"),
            max_replicas=4, metrics=[k8s.V2MetricSpec(type="Resource", resource=k8s.V2ResourceMetricSource(
                name="cpu", target=k8s.V2MetricTarget(type="Utilization", average_utilization=35)))])))
    read1 = v1.read_namespaced_horizontal_pod_autoscaler("py-v2", NS)
    assert read1.spec.target_cpu_utilization_percentage == 35 and read1.spec.min_replicas == 1
    listed = v1.list_namespaced_horizontal_pod_autoscaler(NS)
    assert listed.kind == "HorizontalPodAutoscalerList" and listed.api_version == "autoscaling/v1"
    assert {"py-v1", "py-v2"} <= {h.metadata.name for h in listed.items}

    patched = v1.patch_namespaced_horizontal_pod_autoscaler("py-v2", NS, {"spec": {"maxReplicas": 7}})
    assert patched.spec.max_replicas == 7 and patched.spec.target_cpu_utilization_percentage == 35
    with pytest.raises(k8s.ApiException) as stale:  # read before the patch: a stale resourceVersion
        v1.replace_namespaced_horizontal_pod_autoscaler("py-v2", NS, read1)
    assert stale.value.status == 409
    fresh = v1.read_namespaced_horizontal_pod_autoscaler("py-v2", NS)
    fresh.spec.min_replicas = 3
    replaced = v1.replace_namespaced_horizontal_pod_autoscaler("py-v2", NS, fresh)
    assert replaced.spec.min_replicas == 3
    status = v1.read_namespaced_horizontal_pod_autoscaler_status("py-v2", NS)
    status.status.current_replicas = 4
    status.status.desired_replicas = 5
    v1.replace_namespaced_horizontal_pod_autoscaler_status("py-v2", NS, status)
    assert v2.read_namespaced_horizontal_pod_autoscaler("py-v2", NS).status.desired_replicas == 5
    v1.delete_namespaced_horizontal_pod_autoscaler("py-v1", NS)
    assert "py-v1" not in {h.metadata.name for h in v2.list_namespaced_horizontal_pod_autoscaler(NS).items}


def test_v1_watch_gets_converted_events_of_v2_writes(kube: k8s.ApiClient) -> None:
    v1 = k8s.AutoscalingV1Api(kube)
    v2 = k8s.AutoscalingV2Api(kube)
    rv = v1.list_namespaced_horizontal_pod_autoscaler(NS).metadata.resource_version
    v2.create_namespaced_horizontal_pod_autoscaler(NS, k8s.V2HorizontalPodAutoscaler(
        metadata=k8s.V1ObjectMeta(name="watched"),
        spec=k8s.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=k8s.V2CrossVersionObjectReference(kind="Deployment", name="web"), max_replicas=3,
            metrics=[k8s.V2MetricSpec(type="Resource", resource=k8s.V2ResourceMetricSource(
                name="cpu", target=k8s.V2MetricTarget(type="Utilization", average_utilization=45)))])))
    v2.patch_namespaced_horizontal_pod_autoscaler("watched", NS, {"spec": {"maxReplicas": 4}})
    seen = []
    w = k8s_watch.Watch()
    for ev in w.stream(v1.list_namespaced_horizontal_pod_autoscaler, NS, resource_version=rv, timeout_seconds=20,
                       field_selector="metadata.name=watched"):
        obj = ev["object"]
        assert isinstance(obj, k8s.V1HorizontalPodAutoscaler)
        seen.append((ev["type"], obj.api_version, obj.spec.target_cpu_utilization_percentage, obj.spec.max_replicas))
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", "autoscaling/v1", 45, 3), ("MODIFIED", "autoscaling/v1", 45, 4)]
