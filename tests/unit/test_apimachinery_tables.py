"""Server-side Table conversion: upstream's columns, cell texts and cell types, per kind."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apimachinery.errors import StatusError
from apimachinery.registry import BUILTIN, Registry, ResourceType
from apimachinery.tables import (
    column_definitions,
    custom_columns_table,
    human_duration,
    jsonpath_find,
    to_table,
    translate_timestamp_since,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
REGISTRY = Registry()


# Printers also know versions the server does not serve (yet), e.g. autoscaling/v1 HPAs.
_UNSERVED = {("autoscaling", "v1", "horizontalpodautoscalers"): ResourceType(
    "autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", True)}


def rt(plural: str, group: str = "", version: str = "v1") -> ResourceType:
    found = REGISTRY.get(group, version, plural) or _UNSERVED.get((group, version, plural))
    assert found is not None, plural
    return found


def ago(seconds: float, now: datetime = NOW) -> str:
    return (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, age: float = 600, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "42",
            "creationTimestamp": ago(age), **extra}


def cells(plural: str, obj: dict[str, Any], group: str = "", version: str = "v1") -> list[Any]:
    table = to_table(rt(plural, group, version), [obj], now=NOW)
    assert len(table["rows"]) == 1
    return table["rows"][0]["cells"]


def names(plural: str, group: str = "", version: str = "v1", priority: int | None = None) -> list[str]:
    return [c["name"] for c in column_definitions(rt(plural, group, version))
            if priority is None or c["priority"] == priority]


# --- age formatting (duration.HumanDuration) ----------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (5, "5s"), (59, "59s"), (119, "119s"), (120, "2m"), (150, "2m30s"), (599, "9m59s"),
    (600, "10m"), (10 * 60 + 59, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (3 * 3600 + 5 * 60, "3h5m"),
    (7 * 3600 + 59 * 60 + 59, "7h59m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"),
    (2 * 86400 + 3 * 3600, "2d3h"), (7 * 86400 + 23 * 3600, "7d23h"), (8 * 86400, "8d"), (45 * 86400, "45d"),
    (729 * 86400, "729d"), (730 * 86400, "2y"), (3 * 365 * 86400 + 21 * 86400, "3y21d"),
    (8 * 365 * 86400, "8y"), (20 * 365 * 86400 + 100 * 86400, "20y"),
    (-0.5, "0s"), (-1.9, "0s"), (-2, "<invalid>"), (-3600, "<invalid>"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == text


def test_human_duration_saturates_like_go() -> None:
    # time.Since clamps to the int64 nanosecond range: ~292 years.
    assert human_duration(timedelta(days=365 * 2000)) == "292y"
    assert human_duration(timedelta(days=-365 * 2000)) == "<invalid>"


def test_translate_timestamp_since() -> None:
    assert translate_timestamp_since(ago(300), NOW) == "5m"
    assert translate_timestamp_since("2025-03-01T11:59:58.5Z", NOW) == "1s"
    for missing in (None, "", "garbage", 12, "0001-01-01T00:00:00Z"):
        assert translate_timestamp_since(missing, NOW) == "<unknown>"
    naive_now = NOW.replace(tzinfo=None)
    assert translate_timestamp_since(ago(60), naive_now) == "60s"


# --- Table envelope and includeObject ------------------------------------------------------------


def test_table_envelope_and_metadata() -> None:
    pod = {"metadata": meta("p"), "spec": {"containers": [{"name": "c", "image": "i"}]}}
    table = to_table(rt("pods"), [pod], now=NOW,
                     list_meta={"resourceVersion": "24", "continue": "tok", "remainingItemCount": 3, "selfLink": "x"})
    assert list(table) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "24", "continue": "tok", "remainingItemCount": 3}
    assert to_table(rt("pods"), [], now=NOW)["metadata"] == {}
    assert to_table(rt("pods"), [], now=NOW)["rows"] == []
    for column in table["columnDefinitions"]:
        assert list(column) == ["name", "type", "format", "description", "priority"]
        assert isinstance(column["description"], str) and column["description"]
    json.dumps(table)  # serialisable as is


def test_include_object_modes() -> None:
    metadata = meta("p", labels={"app": "web"}, managedFields=[{"manager": "kubectl"}])
    pod = {"kind": "Pod", "apiVersion": "v1", "metadata": metadata, "spec": {"containers": []}}
    default = to_table(rt("pods"), [pod], now=NOW)["rows"][0]
    assert default["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": metadata}
    assert list(default["object"]) == ["kind", "apiVersion", "metadata"]
    assert to_table(rt("pods"), [pod], now=NOW, include_object="")["rows"][0]["object"]["kind"] == \
        "PartialObjectMetadata"
    assert to_table(rt("pods"), [pod], now=NOW, include_object="Object")["rows"][0]["object"] == pod
    assert "object" not in to_table(rt("pods"), [pod], now=NOW, include_object="None")["rows"][0]
    no_meta = to_table(rt("configmaps"), [{"data": {}}], now=NOW)["rows"][0]["object"]
    assert no_meta == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {}}


def test_unknown_include_object_is_a_bad_request() -> None:
    with pytest.raises(StatusError) as info:
        to_table(rt("pods"), [], now=NOW, include_object="Everything")
    assert info.value.code == 400
    assert info.value.message == 'unrecognized includeObject value: "Everything"'


def test_no_headers_drops_column_definitions() -> None:
    table = to_table(rt("pods"), [{"metadata": meta("p")}], now=NOW, no_headers=True)
    assert table["columnDefinitions"] == [] and len(table["rows"]) == 1


# --- column definitions --------------------------------------------------------------------------


@pytest.mark.parametrize(("plural", "group", "version", "normal", "wide"), [
    ("pods", "", "v1", ["Name", "Ready", "Status", "Restarts", "Age"],
     ["IP", "Node", "Nominated Node", "Readiness Gates"]),
    ("deployments", "apps", "v1", ["Name", "Ready", "Up-to-date", "Available", "Age"],
     ["Containers", "Images", "Selector"]),
    ("replicasets", "apps", "v1", ["Name", "Desired", "Current", "Ready", "Age"], ["Containers", "Images", "Selector"]),
    ("statefulsets", "apps", "v1", ["Name", "Ready", "Age"], ["Containers", "Images"]),
    ("daemonsets", "apps", "v1", ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector",
                                  "Age"], ["Containers", "Images", "Selector"]),
    ("jobs", "batch", "v1", ["Name", "Status", "Completions", "Duration", "Age"], ["Containers", "Images", "Selector"]),
    ("cronjobs", "batch", "v1", ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"],
     ["Containers", "Images", "Selector"]),
    ("services", "", "v1", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"], ["Selector"]),
    ("nodes", "", "v1", ["Name", "Status", "Roles", "Age", "Version"],
     ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"]),
    ("namespaces", "", "v1", ["Name", "Status", "Age"], []),
    ("events", "", "v1", ["Last Seen", "Type", "Reason", "Object", "Message"],
     ["Subobject", "Source", "First Seen", "Count", "Name"]),
    ("configmaps", "", "v1", ["Name", "Data", "Age"], []),
    ("secrets", "", "v1", ["Name", "Type", "Data", "Age"], []),
    ("serviceaccounts", "", "v1", ["Name", "Secrets", "Age"], []),
    ("endpoints", "", "v1", ["Name", "Endpoints", "Age"], []),
    ("persistentvolumes", "", "v1", ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim",
                                     "StorageClass", "VolumeAttributesClass", "Reason", "Age"], ["VolumeMode"]),
    ("persistentvolumeclaims", "", "v1", ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
                                          "VolumeAttributesClass", "Age"], ["VolumeMode"]),
    ("resourcequotas", "", "v1", ["Name", "Request", "Limit", "Age"], []),
    ("limitranges", "", "v1", ["Name", "Created At"], []),
    ("ingresses", "networking.k8s.io", "v1", ["Name", "Class", "Hosts", "Address", "Ports", "Age"], []),
    ("ingressclasses", "networking.k8s.io", "v1", ["Name", "Controller", "Parameters", "Age"], []),
    ("leases", "coordination.k8s.io", "v1", ["Name", "Holder", "Age"], []),
    ("endpointslices", "discovery.k8s.io", "v1", ["Name", "AddressType", "Ports", "Endpoints", "Age"], []),
    ("horizontalpodautoscalers", "autoscaling", "v2", ["Name", "Reference", "Targets", "MinPods", "MaxPods",
                                                      "Replicas", "Age"], []),
    ("priorityclasses", "scheduling.k8s.io", "v1", ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"], []),
    ("storageclasses", "storage.k8s.io", "v1", ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode",
                                                "AllowVolumeExpansion", "Age"], []),
    ("roles", "rbac.authorization.k8s.io", "v1", ["Name", "Created At"], []),
    ("clusterroles", "rbac.authorization.k8s.io", "v1", ["Name", "Created At"], []),
    ("rolebindings", "rbac.authorization.k8s.io", "v1", ["Name", "Role", "Age"], ["Users", "Groups", "ServiceAccounts"]),
    ("clusterrolebindings", "rbac.authorization.k8s.io", "v1", ["Name", "Role", "Age"],
     ["Users", "Groups", "ServiceAccounts"]),
])
def test_column_sets(plural: str, group: str, version: str, normal: list[str], wide: list[str]) -> None:
    assert names(plural, group, version, priority=0) == normal
    assert names(plural, group, version, priority=1) == wide


def test_column_types_and_formats() -> None:
    pods = {c["name"]: c for c in column_definitions(rt("pods"))}
    assert pods["Name"]["format"] == "name" and pods["Name"]["type"] == "string"
    assert pods["Restarts"]["type"] == "string"
    assert pods["Name"]["description"].startswith("Name must be unique within a namespace.")
    assert pods["Age"]["description"].startswith("CreationTimestamp is a timestamp")
    assert pods["IP"]["description"].startswith("podIP address allocated to the pod.")
    rs = {c["name"]: c["type"] for c in column_definitions(rt("replicasets", "apps"))}
    assert rs["Desired"] == rs["Current"] == rs["Ready"] == "integer"
    roles = column_definitions(rt("roles", "rbac.authorization.k8s.io"))
    assert roles[1] == {"name": "Created At", "type": "date", "format": "",
                        "description": roles[1]["description"], "priority": 0}
    assert {c["name"]: c["type"] for c in column_definitions(rt("cronjobs", "batch"))}["Suspend"] == "boolean"


def test_every_builtin_type_has_columns_and_cells_of_equal_length() -> None:
    for resource in BUILTIN:
        columns = column_definitions(resource)
        table = to_table(resource, [{"metadata": meta("x")}], now=NOW)
        assert len(table["rows"][0]["cells"]) == len(columns), resource.kind
        assert table["rows"][0]["cells"][0 if resource.kind != "Event" else -1] == "x"


# --- pods ----------------------------------------------------------------------------------------


def container(name: str, image: str = "nginx:1.27") -> dict[str, Any]:
    return {"name": name, "image": image}


def pod(name: str, *, containers: int = 1, status: dict[str, Any] | None = None, age: float = 600,
        spec: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, age, **metadata),
            "spec": {"containers": [container(f"c{i}") for i in range(containers)], **(spec or {})},
            "status": status or {}}


def running(name: str, ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {"name": name, "ready": ready, "started": True, "restartCount": restarts,
            "state": {"running": {"startedAt": ago(500)}}, "image": "nginx:1.27", "imageID": "", **extra}


def test_pod_pending_unscheduled() -> None:
    p = pod("web-pending", status={"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}, age=42)
    assert cells("pods", p) == ["web-pending", "0/1", "Pending", "0", "42s", "<none>", "<none>", "<none>", "<none>"]


def test_pod_running_ready() -> None:
    p = pod("web-1", containers=2, spec={"nodeName": "node-1"}, age=3 * 3600 + 5 * 60, status={
        "phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [running("c0"), running("c1")]})
    assert cells("pods", p) == ["web-1", "2/2", "Running", "0", "3h5m", "10.244.0.5", "node-1", "<none>", "<none>"]


def test_pod_crash_looping_with_restarts() -> None:
    p = pod("crashy", status={"phase": "Running", "containerStatuses": [{
        "name": "c0", "ready": False, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(300)}}}]})
    assert cells("pods", p)[:5] == ["crashy", "0/1", "CrashLoopBackOff", "3 (5m ago)", "10m"]


def test_pod_restarts_without_finished_at_print_the_bare_count() -> None:
    p = pod("r", status={"phase": "Running", "containerStatuses": [running("c0", restarts=2)]})
    assert cells("pods", p)[3] == "2"


def test_pod_restarts_use_the_latest_termination_across_containers() -> None:
    p = pod("r", containers=2, status={"phase": "Running", "containerStatuses": [
        running("c0", restarts=1, lastState={"terminated": {"finishedAt": ago(3600)}}),
        running("c1", restarts=2, lastState={"terminated": {"finishedAt": ago(90)}})]})
    assert cells("pods", p)[:4] == ["r", "2/2", "Running", "3 (90s ago)"]


def test_pod_terminating() -> None:
    p = pod("old", deletionTimestamp=ago(10), deletionGracePeriodSeconds=30, status={
        "phase": "Running", "containerStatuses": [running("c0")]})
    assert cells("pods", p)[:3] == ["old", "1/1", "Terminating"]


def test_pod_terminal_phase_is_not_terminating_and_node_lost_is_unknown() -> None:
    done = pod("done", deletionTimestamp=ago(10), status={"phase": "Succeeded", "containerStatuses": [{
        "name": "c0", "ready": False, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]})
    assert cells("pods", done)[2] == "Completed"
    lost = pod("lost", deletionTimestamp=ago(10), status={"phase": "Running", "reason": "NodeLost"})
    assert cells("pods", lost)[2] == "Unknown"


def test_pod_completed_has_row_condition() -> None:
    p = pod("job-x", status={"phase": "Succeeded", "containerStatuses": [{
        "name": "c0", "ready": False, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(60)}}}]})
    row = to_table(rt("pods"), [p], now=NOW)["rows"][0]
    assert row["cells"][:4] == ["job-x", "0/1", "Completed", "0"]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]
    assert list(row) == ["cells", "conditions", "object"]
    failed = to_table(rt("pods"), [pod("f", status={"phase": "Failed"})], now=NOW)["rows"][0]
    assert failed["cells"][2] == "Failed" and failed["conditions"][0]["reason"] == "Failed"
    assert "conditions" not in to_table(rt("pods"), [pod("r", status={"phase": "Running"})], now=NOW)["rows"][0]


def test_pod_container_states() -> None:
    creating = pod("new", status={"phase": "Pending", "containerStatuses": [{
        "name": "c0", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]})
    assert cells("pods", creating)[2] == "ContainerCreating"
    signal = pod("sig", status={"phase": "Running", "containerStatuses": [{
        "name": "c0", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]})
    assert cells("pods", signal)[2] == "Signal:9"
    exit_code = pod("ec", status={"phase": "Running", "containerStatuses": [{
        "name": "c0", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]})
    assert cells("pods", exit_code)[2] == "ExitCode:2"
    # The first container's state wins (upstream walks the statuses backwards).
    two = pod("two", containers=2, status={"phase": "Running", "containerStatuses": [
        {"name": "c0", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}},
        {"name": "c1", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}]})
    assert cells("pods", two)[2] == "ImagePullBackOff"


def test_pod_completed_container_next_to_a_running_one() -> None:
    statuses = [{"name": "c0", "ready": False, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}, running("c1")]
    ready = pod("mix", containers=2, status={"phase": "Running", "containerStatuses": statuses,
                                             "conditions": [{"type": "Ready", "status": "True"}]})
    assert cells("pods", ready)[1:3] == ["1/2", "Running"]
    not_ready = pod("mix", containers=2, status={"phase": "Running", "containerStatuses": statuses})
    assert cells("pods", not_ready)[2] == "NotReady"


def test_pod_init_containers() -> None:
    spec = {"initContainers": [container("init-a"), container("init-b")]}
    first = pod("i", spec=spec, status={"phase": "Pending", "initContainerStatuses": [
        {"name": "init-a", "ready": False, "restartCount": 0, "state": {"running": {}}},
        {"name": "init-b", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]})
    assert cells("pods", first)[:3] == ["i", "0/1", "Init:0/2"]
    second = pod("i", spec=spec, status={"phase": "Pending", "initContainerStatuses": [
        {"name": "init-a", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
        {"name": "init-b", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]})
    assert cells("pods", second)[2] == "Init:1/2"
    crash = pod("i", spec=spec, status={"phase": "Pending", "initContainerStatuses": [
        {"name": "init-a", "ready": False, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}}]})
    assert cells("pods", crash)[2:4] == ["Init:CrashLoopBackOff", "4 (30s ago)"]
    error = pod("i", spec=spec, status={"phase": "Pending", "initContainerStatuses": [
        {"name": "init-a", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]})
    assert cells("pods", error)[2] == "Init:Error"
    code = pod("i", spec=spec, status={"phase": "Pending", "initContainerStatuses": [
        {"name": "init-a", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}]})
    assert cells("pods", code)[2] == "Init:ExitCode:3"


def test_pod_sidecar_counts_as_a_container() -> None:
    spec = {"initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]}
    p = pod("side", spec=spec, status={
        "phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [{"name": "proxy", "ready": True, "started": True, "restartCount": 1,
                                   "state": {"running": {}}, "lastState": {"terminated": {"finishedAt": ago(200)}}}],
        "containerStatuses": [running("c0")]})
    assert cells("pods", p)[:4] == ["side", "2/2", "Running", "1 (3m20s ago)"]


def test_pod_scheduling_gated_and_readiness_gates_and_nominated_node() -> None:
    gated = pod("g", spec={"schedulingGates": [{"name": "wait"}]}, status={"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]})
    assert cells("pods", gated)[2] == "SchedulingGated"
    gates = pod("rg", spec={"readinessGates": [{"conditionType": "a/one"}, {"conditionType": "a/two"}]},
                status={"phase": "Running", "nominatedNodeName": "node-9", "podIP": "10.0.0.1",
                        "conditions": [{"type": "a/one", "status": "True"}, {"type": "a/two", "status": "False"}]})
    assert cells("pods", gates)[5:] == ["10.0.0.1", "<none>", "node-9", "1/2"]


def test_pod_ip_prefers_pod_ip_then_pod_ips() -> None:
    only_list = pod("a", status={"phase": "Running", "podIPs": [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}]})
    assert cells("pods", only_list)[5] == "fd00::5"


def test_pod_without_spec_or_status() -> None:
    assert cells("pods", {"metadata": {"name": "bare"}}) == \
        ["bare", "0/0", "Pending", "0", "<unknown>", "<none>", "<none>", "<none>", "<none>"]


# --- workloads -----------------------------------------------------------------------------------


def template(*containers: dict[str, Any], **pod_spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": list(containers), **pod_spec}}


def test_deployment() -> None:
    deploy = {"metadata": meta("web", 45 * 86400), "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "fe"}},
        "template": template(container("nginx", "nginx:1.27"), container("log", "busybox"))},
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}}
    assert cells("deployments", deploy, "apps") == \
        ["web", "2/3", 3, 2, "45d", "nginx,log", "nginx:1.27,busybox", "app=web,tier=fe"]


def test_deployment_defaults_and_selectors() -> None:
    fresh = {"metadata": meta("new"), "spec": {"template": template()}}
    assert cells("deployments", fresh, "apps")[1:4] == ["0/1", 0, 0]
    assert cells("deployments", fresh, "apps")[-1] == ""
    exprs = {"metadata": meta("e"), "spec": {"replicas": 0, "selector": {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["b", "a"]}, {"key": "env", "operator": "Exists"},
        {"key": "old", "operator": "DoesNotExist"}, {"key": "zone", "operator": "NotIn", "values": ["x"]}]}}}
    assert cells("deployments", exprs, "apps")[-1] == "env,!old,tier in (a,b),zone notin (x)"
    bad = {"metadata": meta("bad"), "spec": {"selector": {"matchExpressions": [{"key": "k", "operator": "Near"}]}}}
    assert cells("deployments", bad, "apps")[-1] == "<invalid>"
    assert cells("replicasets", bad, "apps")[-1] == "<error>"


def test_replicaset() -> None:
    rs = {"metadata": meta("web-5d9c", 90), "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d9c"}},
        "template": template(container("nginx"))}, "status": {"replicas": 2, "readyReplicas": 1}}
    assert cells("replicasets", rs, "apps") == \
        ["web-5d9c", 2, 2, 1, "90s", "nginx", "nginx:1.27", "app=web,pod-template-hash=5d9c"]
    assert cells("replicasets", {"metadata": meta("x")}, "apps")[1:4] == [1, 0, 0]
    assert cells("replicasets", {"metadata": meta("x")}, "apps")[-1] == "<none>"


def test_statefulset_and_daemonset() -> None:
    sts = {"metadata": meta("db"), "spec": {"replicas": 3, "template": template(container("pg", "postgres:16"))},
           "status": {"readyReplicas": 1}}
    assert cells("statefulsets", sts, "apps") == ["db", "1/3", "10m", "pg", "postgres:16"]
    ds = {"metadata": meta("agent"), "spec": {"selector": {"matchLabels": {"app": "agent"}},
                                              "template": template(container("a", "agent:1"),
                                                                   nodeSelector={"kubernetes.io/os": "linux"})},
          "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                     "updatedNumberScheduled": 2, "numberAvailable": 1}}
    assert cells("daemonsets", ds, "apps") == \
        ["agent", 2, 2, 1, 2, 1, "kubernetes.io/os=linux", "10m", "a", "agent:1", "app=agent"]
    assert cells("daemonsets", {"metadata": meta("x")}, "apps")[6] == "<none>"


def test_replication_controller_selector_defaults_to_template_labels() -> None:
    rc = {"metadata": meta("rc"), "spec": {"template": template(container("c"))}}
    assert cells("replicationcontrollers", rc) == ["rc", 1, 0, 0, "10m", "c", "nginx:1.27", "app=web"]


def test_jobs() -> None:
    complete = {"metadata": meta("pi", 3600), "spec": {"completions": 1, "template": template(container("pi", "perl"))},
                "status": {"succeeded": 1, "startTime": ago(3600), "completionTime": ago(3600 - 75),
                           "conditions": [{"type": "Complete", "status": "True"}]}}
    assert cells("jobs", complete, "batch")[:5] == ["pi", "Complete", "1/1", "75s", "60m"]
    running_job = {"metadata": meta("long"), "spec": {"parallelism": 3, "template": template()},
                   "status": {"active": 3, "startTime": ago(200)}}
    assert cells("jobs", running_job, "batch")[1:4] == ["Running", "0/1 of 3", "3m20s"]
    fresh = {"metadata": meta("fresh"), "spec": {"template": template()}}
    assert cells("jobs", fresh, "batch")[1:4] == ["Running", "0/1", ""]
    failed = {"metadata": meta("f"), "spec": {"completions": 5}, "status": {
        "succeeded": 2, "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}}
    assert cells("jobs", failed, "batch")[1:3] == ["Failed", "2/5"]
    suspended = {"metadata": meta("s"), "status": {"conditions": [{"type": "Suspended", "status": "True"}]}}
    assert cells("jobs", suspended, "batch")[1] == "Suspended"
    deleting = {"metadata": meta("d", deletionTimestamp=ago(1)), "status": {}}
    assert cells("jobs", deleting, "batch")[1] == "Terminating"


def test_cronjob() -> None:
    cj = {"metadata": meta("nightly", 2 * 86400), "spec": {
        "schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template(container("backup", "tool:2"))}}},
        "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(3 * 3600)}}
    assert cells("cronjobs", cj, "batch") == \
        ["nightly", "0 3 * * *", "<none>", "False", 1, "3h", "2d", "backup", "tool:2", "<none>"]
    tz = {"metadata": meta("tz"), "spec": {"schedule": "@hourly", "timeZone": "Etc/UTC", "suspend": True}}
    assert cells("cronjobs", tz, "batch")[1:6] == ["@hourly", "Etc/UTC", "True", 0, "<none>"]


def test_hpa_v2_and_v1() -> None:
    hpa = {"metadata": meta("web"), "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2, "maxReplicas": 10, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "512Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}]},
        "status": {"currentReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 35}}}]}}
    assert cells("horizontalpodautoscalers", hpa, "autoscaling", "v2") == \
        ["web", "Deployment/web", "cpu: 35%/80%, memory: <unknown>/512Mi + 1 more...", "2", 10, 3, "10m"]
    defaulted = {"metadata": meta("d"), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 4}}
    assert cells("horizontalpodautoscalers", defaulted, "autoscaling", "v2")[2:6] == ["cpu: <unknown>/80%", "1", 4, 0]
    v1 = {"metadata": meta("old"), "spec": {"scaleTargetRef": {"kind": "ReplicaSet", "name": "rs"}, "minReplicas": 1,
                                            "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
          "status": {"currentReplicas": 2, "currentCPUUtilizationPercentage": 12}}
    assert cells("horizontalpodautoscalers", v1, "autoscaling", "v1")[1:6] == \
        ["ReplicaSet/rs", "cpu: 12%/50%", "1", 5, 2]


# --- services, endpoints, ingress ------------------------------------------------------------------


def service(name: str, spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta(name, 300), "spec": spec, "status": status or {}}


@pytest.mark.parametrize(("spec", "status", "expected"), [
    ({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "selector": {"app": "web"},
      "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}, {"port": 53, "protocol": "UDP"}]}, None,
     ["ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "5m", "app=web"]),
    ({"type": "NodePort", "clusterIP": "10.96.0.11", "ports": [{"port": 80, "nodePort": 30080}],
      "externalIPs": ["1.2.3.4"]}, None,
     ["NodePort", "10.96.0.11", "1.2.3.4", "80:30080/TCP", "5m", "<none>"]),
    ({"type": "LoadBalancer", "clusterIP": "10.96.0.12", "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]},
     {"loadBalancer": {}}, ["LoadBalancer", "10.96.0.12", "<pending>", "443:31443/TCP", "5m", "<none>"]),
    ({"type": "LoadBalancer", "clusterIP": "10.96.0.13", "ports": [{"port": 80, "nodePort": 30001}]},
     {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.1"}]}},
     ["LoadBalancer", "10.96.0.13", "203.0.113.1,203.0.113.9,lb.example.com", "80:30001/TCP", "5m", "<none>"]),
    ({"type": "LoadBalancer", "clusterIPs": ["10.96.0.14"], "externalIPs": ["5.6.7.8"]},
     {"loadBalancer": {"ingress": [{"ip": "203.0.113.2"}]}},
     ["LoadBalancer", "10.96.0.14", "203.0.113.2,5.6.7.8", "<none>", "5m", "<none>"]),
    ({"type": "ExternalName", "externalName": "db.example.com"}, None,
     ["ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"]),
    ({"clusterIP": "None", "selector": {"app": "db"}}, None,
     ["ClusterIP", "None", "<none>", "<none>", "5m", "app=db"]),
])
def test_services(spec: dict[str, Any], status: dict[str, Any] | None, expected: list[Any]) -> None:
    assert cells("services", service("svc", spec, status)) == ["svc", *expected]


def test_endpoints_and_endpoint_slices() -> None:
    ep = {"metadata": meta("web"), "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
        {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]}
    assert cells("endpoints", ep) == ["web", "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...", "10m"]
    headless = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "fd00::1"}]}]}
    assert cells("endpoints", headless)[1] == "fd00::1"
    v6 = {"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]}
    assert cells("endpoints", v6)[1] == "[fd00::1]:80"
    assert cells("endpoints", {"metadata": meta("none")})[1] == "<none>"
    eps = {"metadata": meta("web-abc"), "addressType": "IPv4", "ports": [{"port": 80, "name": "http"}, {"name": "x"}, {}],
           "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]}
    assert cells("endpointslices", eps, "discovery.k8s.io") == \
        ["web-abc", "IPv4", "80,x,*", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "10m"]
    assert cells("endpointslices", {"metadata": meta("e"), "addressType": "IPv4"}, "discovery.k8s.io")[2:4] == \
        ["<unset>", "<unset>"]


def test_ingress_and_ingress_class() -> None:
    ing = {"metadata": meta("web"), "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                                             "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}}
    assert cells("ingresses", ing, "networking.k8s.io") == \
        ["web", "nginx", "a.example.com,b.example.com", "192.0.2.10", "80, 443", "10m"]
    many = {"metadata": meta("m"), "spec": {"rules": [{"host": f"h{i}"} for i in range(5)]}}
    assert cells("ingresses", many, "networking.k8s.io")[1:5] == ["<none>", "h0,h1,h2 + 2 more...", "", "80"]
    assert cells("ingresses", {"metadata": meta("x")}, "networking.k8s.io")[2] == "*"
    ic = {"metadata": meta("nginx"), "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {
        "apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}}
    assert cells("ingressclasses", ic, "networking.k8s.io") == \
        ["nginx", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/external-lb", "10m"]


# --- nodes, namespaces, events -------------------------------------------------------------------


def test_nodes() -> None:
    node = {"metadata": meta("cp-1", 20 * 86400, labels={
        "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "",
        "node-role.kubernetes.io/": "", "kubernetes.io/hostname": "cp-1"}),
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "Hostname", "address": "cp-1"}, {"type": "InternalIP", "address": "172.18.0.2"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                "kernelVersion": "6.8.0", "containerRuntimeVersion": "containerd://1.7.24"}}}
    assert cells("nodes", node) == ["cp-1", "Ready,SchedulingDisabled", "control-plane,master", "20d", "v1.32.4",
                                    "172.18.0.2", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.8.0",
                                    "containerd://1.7.24"]
    worker = {"metadata": meta("w", labels={"kubernetes.io/role": "worker"}),
              "status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                         "addresses": [{"type": "ExternalIP", "address": "198.51.100.7"}]}}
    assert cells("nodes", worker) == ["w", "NotReady", "worker", "10m", "", "<none>", "198.51.100.7", "<unknown>",
                                      "<unknown>", "<unknown>"]
    assert cells("nodes", {"metadata": meta("n"), "spec": {"unschedulable": True}})[1:3] == \
        ["Unknown,SchedulingDisabled", "<none>"]


def test_namespaces() -> None:
    assert cells("namespaces", {"metadata": meta("default", 86400), "status": {"phase": "Active"}}) == \
        ["default", "Active", "24h"]
    assert cells("namespaces", {"metadata": meta("gone"), "status": {"phase": "Terminating"}})[1] == "Terminating"
    assert cells("namespaces", {"metadata": meta("new")})[1] == "Active"


def test_core_events() -> None:
    event = {"metadata": meta("web-1.17a", 120), "involvedObject": {
        "kind": "Pod", "namespace": "default", "name": "web-1", "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled", "message": "  Successfully pulled image \"nginx\"\n", "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"}, "firstTimestamp": ago(120),
        "lastTimestamp": ago(30), "count": 4}
    assert cells("events", event) == ["30s", "Normal", "Pulled", "pod/web-1", "spec.containers{nginx}",
                                      "kubelet, node-1", 'Successfully pulled image "nginx"', "2m", 4, "web-1.17a"]
    new_style = {"metadata": meta("e2"), "involvedObject": {"kind": "Node"}, "reason": "Starting", "type": "Normal",
                 "eventTime": "2025-03-01T11:58:59.123456Z", "reportingComponent": "x",
                 "reportingController": "kube-proxy", "reportingInstance": "kube-proxy-node-1"}
    assert cells("events", new_style) == ["60s", "Normal", "Starting", "node", "", "kube-proxy, kube-proxy-node-1",
                                          "", "60s", 1, "e2"]
    series = {"metadata": meta("e3"), "involvedObject": {"kind": "Pod", "name": "p"}, "type": "Warning",
              "reason": "BackOff", "firstTimestamp": ago(900), "lastTimestamp": ago(600),
              "series": {"count": 17, "lastObservedTime": "2025-03-01T11:59:50.000000Z"}, "count": 2}
    assert cells("events", series)[:4] == ["10s", "Warning", "BackOff", "pod/p"]
    assert cells("events", series)[-2] == 17


def test_events_k8s_io_events_print_like_core_events() -> None:
    event = {"metadata": meta("e"), "regarding": {"kind": "Deployment", "name": "web"}, "reason": "ScalingReplicaSet",
             "note": "Scaled up replica set web-5d9c to 3", "type": "Normal", "eventTime": ago(45),
             "reportingController": "deployment-controller", "deprecatedCount": 2,
             "deprecatedFirstTimestamp": ago(300), "deprecatedLastTimestamp": ago(45)}
    assert cells("events", event, "events.k8s.io") == \
        ["45s", "Normal", "ScalingReplicaSet", "deployment/web", "", "deployment-controller",
         "Scaled up replica set web-5d9c to 3", "5m", 2, "e"]


# --- config, storage, policy, rbac ---------------------------------------------------------------


def test_configmaps_secrets_serviceaccounts() -> None:
    cm = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert cells("configmaps", cm) == ["cfg", 3, "10m"]
    assert cells("configmaps", {"metadata": meta("empty")}) == ["empty", 0, "10m"]
    secret = {"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}
    assert cells("secrets", secret) == ["tls", "kubernetes.io/tls", 2, "10m"]
    assert cells("secrets", {"metadata": meta("s")})[1:3] == ["Opaque", 0]
    sa = {"metadata": meta("default"), "secrets": [{"name": "t"}]}
    assert cells("serviceaccounts", sa) == ["default", 1, "10m"]
    assert cells("serviceaccounts", {"metadata": meta("d")})[1] == 0


def test_persistent_volumes_and_claims() -> None:
    pv = {"metadata": meta("pv-1"), "spec": {
        "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
        "claimRef": {"namespace": "default", "name": "data"}}, "status": {"phase": "Bound"}}
    assert cells("persistentvolumes", pv) == ["pv-1", "10Gi", "RWO,RWX", "Delete", "Bound", "default/data",
                                              "standard", "<unset>", "", "10m", "Filesystem"]
    odd = {"metadata": meta("pv-2", deletionTimestamp=ago(1),
                            annotations={"volume.beta.kubernetes.io/storage-class": "beta"}),
           "spec": {"capacity": {"storage": "1.5Gi"}, "volumeMode": "Block", "volumeAttributesClassName": "gold"}}
    assert cells("persistentvolumes", odd) == ["pv-2", "1536Mi", "", "Retain", "Terminating", "", "beta", "gold",
                                               "", "10m", "Block"]
    bound = {"metadata": meta("data"), "spec": {"volumeName": "pv-1", "storageClassName": "standard",
                                                "resources": {"requests": {"storage": "5Gi"}}},
             "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}}
    assert cells("persistentvolumeclaims", bound) == ["data", "Bound", "pv-1", "10Gi", "RWO", "standard", "<unset>",
                                                      "10m", "Filesystem"]
    pending = {"metadata": meta("wait"), "spec": {"resources": {"requests": {"storage": "5Gi"}}}}
    assert cells("persistentvolumeclaims", pending) == ["wait", "Pending", "", "", "", "", "<unset>", "10m",
                                                        "Filesystem"]


def test_resource_quotas_and_limit_ranges() -> None:
    quota = {"metadata": meta("q"), "status": {
        "hard": {"requests.cpu": "2", "pods": "10", "limits.memory": "2Gi", "limits.cpu": "4000m"},
        "used": {"requests.cpu": "500m", "pods": 3, "limits.cpu": "1"}}}
    assert cells("resourcequotas", quota) == \
        ["q", "pods: 3/10, requests.cpu: 500m/2", "limits.cpu: 1/4, limits.memory: 0/2Gi", "10m"]
    assert cells("resourcequotas", {"metadata": meta("e")}) == ["e", "", "", "10m"]
    assert cells("limitranges", {"metadata": meta("lr", creationTimestamp="2025-02-01T08:09:10Z")}) == \
        ["lr", "2025-02-01T08:09:10Z"]


def test_roles_use_the_default_convertor() -> None:
    role = {"metadata": {"name": "reader", "creationTimestamp": "2025-01-02T03:04:05Z"}, "rules": []}
    assert cells("roles", role, "rbac.authorization.k8s.io") == ["reader", "2025-01-02T03:04:05Z"]
    assert cells("clusterroles", {"metadata": {"name": "admin"}}, "rbac.authorization.k8s.io") == \
        ["admin", "0001-01-01T00:00:00Z"]
    assert cells("roles", {"metadata": {"name": "r", "creationTimestamp": "2025-01-02T05:04:05+02:00"}},
                 "rbac.authorization.k8s.io")[1] == "2025-01-02T03:04:05Z"


def test_role_bindings() -> None:
    rb = {"metadata": meta("read"), "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                "name": "view"},
          "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                       {"kind": "Group", "name": "devs"},
                       {"kind": "ServiceAccount", "namespace": "ci", "name": "builder"}]}
    assert cells("rolebindings", rb, "rbac.authorization.k8s.io") == \
        ["read", "ClusterRole/view", "10m", "alice, bob", "devs", "ci/builder"]
    assert cells("clusterrolebindings", {"metadata": meta("x")}, "rbac.authorization.k8s.io") == \
        ["x", "/", "10m", "", "", ""]


def test_leases_priority_classes_storage_classes_pdbs() -> None:
    lease = {"metadata": meta("kube-scheduler"), "spec": {"holderIdentity": "sched-1_abc", "leaseDurationSeconds": 15}}
    assert cells("leases", lease, "coordination.k8s.io") == ["kube-scheduler", "sched-1_abc", "10m"]
    assert cells("leases", {"metadata": meta("l")}, "coordination.k8s.io")[1] == ""
    pc = {"metadata": meta("high"), "value": 1000000, "globalDefault": True}
    assert cells("priorityclasses", pc, "scheduling.k8s.io") == ["high", 1000000, True, "10m", "PreemptLowerPriority"]
    never = {"metadata": meta("low"), "value": -5, "preemptionPolicy": "Never"}
    assert cells("priorityclasses", never, "scheduling.k8s.io") == ["low", -5, False, "10m", "Never"]
    sc = {"metadata": meta("standard", annotations={"storageclass.kubernetes.io/is-default-class": "true"}),
          "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"}
    assert cells("storageclasses", sc, "storage.k8s.io") == \
        ["standard (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", False, "10m"]
    pdb = {"metadata": meta("web"), "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}
    assert cells("poddisruptionbudgets", pdb, "policy") == ["web", "50%", "N/A", 1, "10m"]
    pdb2 = {"metadata": meta("db"), "spec": {"maxUnavailable": 1}}
    assert cells("poddisruptionbudgets", pdb2, "policy")[1:4] == ["N/A", "1", 0]


def test_controller_revisions_and_network_policies() -> None:
    rev = {"metadata": meta("web-7c9", ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": True}]),
        "revision": 3}
    assert cells("controllerrevisions", rev, "apps") == ["web-7c9", "statefulset.apps/web", 3, "10m"]
    assert cells("controllerrevisions", {"metadata": meta("r")}, "apps")[1:3] == ["<none>", 0]
    np = {"metadata": meta("deny"), "spec": {"podSelector": {}}}
    assert cells("networkpolicies", np, "networking.k8s.io") == ["deny", "<none>", "10m"]
    np2 = {"metadata": meta("web"), "spec": {"podSelector": {"matchLabels": {"app": "web"}}}}
    assert cells("networkpolicies", np2, "networking.k8s.io")[1] == "app=web"


# --- robustness ----------------------------------------------------------------------------------


MALFORMED: list[Any] = [
    {},
    {"metadata": None, "spec": None, "status": None},
    {"metadata": [], "spec": "x", "status": 7},
    {"metadata": {"name": 5, "creationTimestamp": "yesterday", "labels": ["a"]},
     "spec": {"containers": "nginx", "replicas": "3", "ports": [None, 1, {"port": "80"}], "selector": ["a"],
              "template": {"spec": {"containers": [None, {"name": 1}]}}, "rules": {"host": 1}},
     "status": {"containerStatuses": [None, {"state": "running"}], "conditions": {"type": "Ready"},
                "loadBalancer": {"ingress": "x"}, "hard": {"cpu": "lots"}, "phase": 3}},
    {"metadata": {"name": "n", "deletionTimestamp": "soon"},
     "spec": {"metrics": [{"type": "Resource"}, {"type": "External", "external": None}, {"type": "Pods"},
                          {"type": "Object", "object": {"target": {"averageValue": "x"}}}],
              "initContainers": [{"name": "i", "restartPolicy": "Always"}], "claimRef": "ref"},
     "status": {"initContainerStatuses": [{"name": "i", "state": {"terminated": {"exitCode": "1"}}}],
                "currentMetrics": [None], "succeeded": None, "startTime": "now"}},
]


@pytest.mark.parametrize("obj", MALFORMED)
def test_malformed_objects_never_raise(obj: Any) -> None:
    for resource in BUILTIN:
        for mode in ("None", "Metadata", "Object"):
            table = to_table(resource, [obj], now=NOW, include_object=mode)
            assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"])
            json.dumps(table)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.sampled_from(
        ["", "Running", "Ready", "True", "10Gi", "2025-01-01T00:00:00Z", "app=web", "TCP", "Always", "cpu"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(
        ["metadata", "spec", "status", "name", "containers", "containerStatuses", "state", "waiting", "terminated",
         "running", "reason", "ready", "ports", "port", "nodePort", "selector", "matchLabels", "matchExpressions",
         "conditions", "type", "status", "replicas", "template", "metrics", "resource", "target", "hard", "used",
         "subsets", "addresses", "ip", "lastState", "finishedAt", "initContainers", "initContainerStatuses",
         "restartPolicy", "started", "loadBalancer", "ingress", "creationTimestamp", "deletionTimestamp"]),
        children, max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=_json)
def test_arbitrary_json_never_raises(obj: Any) -> None:
    for resource in BUILTIN:
        table = to_table(resource, [obj], now=NOW)
        json.dumps(table)


# --- custom resources ------------------------------------------------------------------------------


CRONTAB = ResourceType("stable.example.com", "v1", "CronTab", "crontabs", "crontab", True)
CRD_COLUMNS = [
    {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec", "description": "The cron spec"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Ratio", "type": "number", "jsonPath": ".status.ratio", "priority": 1},
    {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused", "priority": 1},
    {"name": "Extra", "type": "string", "jsonPath": ".spec.extra", "priority": 1, "format": "byte"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def test_custom_columns_table() -> None:
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": meta("tab", 7200), "spec": {
        "cronSpec": "* * * * */5", "replicas": 3, "paused": False, "extra": {"b": [1, 2.5], "a": True}},
        "status": {"ratio": 2, "conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}]}}
    table = custom_columns_table(CRONTAB, [obj], CRD_COLUMNS, now=NOW, list_meta={"resourceVersion": "77"})
    assert [c["name"] for c in table["columnDefinitions"]] == \
        ["Name", "Spec", "Replicas", "Ready", "Ratio", "Paused", "Extra", "Age"]
    assert table["columnDefinitions"][1]["description"] == "The cron spec"
    assert table["columnDefinitions"][2]["description"] == \
        "Custom resource definition column (in JSONPath format): .spec.replicas"
    assert [c["priority"] for c in table["columnDefinitions"]] == [0, 0, 0, 0, 1, 1, 1, 0]
    assert table["columnDefinitions"][6]["format"] == "byte"
    assert table["rows"][0]["cells"] == ["tab", "* * * * */5", 3, "False", 2.0, False, "map[a:true b:[1 2.5]]", "120m"]
    assert table["metadata"] == {"resourceVersion": "77"}
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"

    sparse = {"metadata": meta("empty")}
    assert custom_columns_table(CRONTAB, [sparse], CRD_COLUMNS, now=NOW)["rows"][0]["cells"] == \
        ["empty", None, None, None, None, None, None, "10m"]


def test_custom_columns_cell_types() -> None:
    columns = [{"name": "I", "type": "integer", "jsonPath": ".a"}, {"name": "S", "type": "string", "jsonPath": ".a"},
               {"name": "B", "type": "boolean", "jsonPath": ".a"}, {"name": "D", "type": "date", "jsonPath": ".a"}]

    def row(value: Any) -> list[Any]:
        return custom_columns_table(CRONTAB, [{"metadata": {"name": "x"}, "a": value}], columns,
                                    now=NOW)["rows"][0]["cells"][1:]

    assert row(2.9) == [2, "2.9", None, None]
    assert row(True) == [None, "true", True, None]
    assert row("nope") == [None, "nope", None, "<invalid>"]
    assert row(ago(90)) == [None, ago(90), None, "90s"]
    assert row(1e21) == [int(1e21), "1e+21", None, None]


def test_custom_resources_without_columns_get_age() -> None:
    table = custom_columns_table(CRONTAB, [{"metadata": meta("t", 30)}], [], now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [("Name", "string"), ("Age", "date")]
    assert table["rows"][0]["cells"] == ["t", "30s"]
    # to_table knows no printer for a custom kind: the apiserver's default convertor.
    assert to_table(CRONTAB, [{"metadata": meta("t")}], now=NOW)["rows"][0]["cells"] == ["t", ago(600)]


def test_custom_columns_with_unsupported_paths_give_null_cells() -> None:
    columns = [{"name": "Bad", "type": "string", "jsonPath": ".spec..deep"},
               {"name": "Range", "type": "string", "jsonPath": ".items[1:2]"}]
    table = custom_columns_table(CRONTAB, [{"metadata": {"name": "x"}, "spec": {"deep": 1}}], columns, now=NOW)
    assert table["rows"][0]["cells"] == ["x", None, None]


def test_jsonpath_subset() -> None:
    obj = {"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
           "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}, {"name": "b"}]},
           "status": {"conditions": [{"type": "Ready", "status": "True", "n": 3}, {"type": "Synced", "status": "False"}]}}
    assert jsonpath_find(obj, ".spec.containers[0].name") == ["a"]
    assert jsonpath_find(obj, ".spec.containers[-1].name") == ["b"]
    assert jsonpath_find(obj, ".spec.containers[*].name") == ["a", "b"]
    assert jsonpath_find(obj, "{.spec.containers[*].ports[0].containerPort}") == [80]
    assert jsonpath_find(obj, ".metadata.labels['app.kubernetes.io/name']") == ["web"]
    assert jsonpath_find(obj, r".metadata.labels.app\.kubernetes\.io/name") == ["web"]
    assert jsonpath_find(obj, '.status.conditions[?(@.type=="Synced")].status') == ["False"]
    assert jsonpath_find(obj, ".status.conditions[?(@.type!='Synced')].type") == ["Ready"]
    assert jsonpath_find(obj, ".status.conditions[?(@.n)].type") == ["Ready"]
    assert jsonpath_find(obj, ".status.conditions[?(@.n > 2)].type") == ["Ready"]
    assert jsonpath_find(obj, ".spec.missing.deeper") == []
    assert jsonpath_find(obj, "$.spec.containers[5]") == []
    with pytest.raises(ValueError):
        jsonpath_find(obj, "spec")


# --- live: kubectl renders our Table ---------------------------------------------------------------


def _kubectl_rows(stdout: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
async def test_kubectl_prints_our_table(tmp_path: Any) -> None:
    from aiohttp import web

    now = datetime.now(UTC)
    pods = [
        {"metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": ago(3 * 3600 + 300, now),
                      "labels": {"app": "web"}},
         "spec": {"containers": [container("c0"), container("c1")], "nodeName": "node-1"},
         "status": {"phase": "Running", "podIP": "10.244.0.5", "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [running("c0"), running("c1", restarts=3, lastState={
                        "terminated": {"exitCode": 1, "finishedAt": ago(300, now)}})]}},
        {"metadata": {"name": "pending-1", "namespace": "default", "creationTimestamp": ago(42, now)},
         "spec": {"containers": [container("c0")]}, "status": {"phase": "Pending"}},
    ]
    pod_type = rt("pods")
    seen_accept: list[str] = []

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.4", "gitCommit": "0",
                                  "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                                  "goVersion": "go1.23.4", "compiler": "gc", "platform": "linux/amd64"})

    async def api(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})

    async def apis(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

    async def api_v1(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
             "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}]})

    async def list_pods(request: web.Request) -> web.Response:
        seen_accept.append(request.headers.get("Accept", ""))
        include = request.query.get("includeObject", "Metadata")
        # ages are rendered against the clock the pods were made with: a slow kubectl start cannot age them
        table = to_table(pod_type, pods, now=now, include_object=include,
                         list_meta={"resourceVersion": "7"})
        return web.json_response(table)

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get("/api", api)
    app.router.add_get("/apis", apis)
    app.router.add_get("/api/v1", api_v1)
    app.router.add_get("/api/v1/namespaces/default/pods", list_pods)
    app.router.add_get("/api/v1/pods", list_pods)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        env = {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig"), "HOME": str(tmp_path)}

        async def kubectl(*args: str) -> list[list[str]]:
            proc = await asyncio.create_subprocess_exec(
                "kubectl", "--server", f"http://127.0.0.1:{port}", "--cache-dir", str(tmp_path / "cache"),
                "--request-timeout", "20s", *args, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
            assert proc.returncode == 0, err.decode()
            return _kubectl_rows(out.decode())

        rows = await kubectl("get", "pods")
        assert rows == [["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
                        ["web-1", "2/2", "Running", "3 (5m ago)", "3h5m"],
                        ["pending-1", "0/1", "Pending", "0", "42s"]]
        assert any("as=Table" in accept for accept in seen_accept)

        wide = await kubectl("get", "pods", "-o", "wide")
        assert wide[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
                           "READINESS GATES"]
        assert wide[1] == ["web-1", "2/2", "Running", "3 (5m ago)", "3h5m", "10.244.0.5", "node-1", "<none>",
                           "<none>"]

        # -A and --show-labels only work because every row carries PartialObjectMetadata.
        everywhere = await kubectl("get", "pods", "-A", "--show-labels")
        assert everywhere[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"]
        assert everywhere[1][0] == "default" and everywhere[1][-1] == "app=web"
        assert everywhere[2][-1] == "<none>"
    finally:
        await runner.cleanup()
