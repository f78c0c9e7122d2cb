"""Defaulting of built-in objects, checked against what kube-apiserver 1.32 stores.

Expected objects are what ``kubectl create … --dry-run=server -o yaml`` returns from a real
cluster for the same minimal manifest, minus server-set metadata (uid, timestamps, generation)
and minus admission-plugin additions that are not defaulting (service account volume,
not-ready/unreachable tolerations). Table cases come from upstream ``defaults_test.go``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.client import ApiClient

from apimachinery import defaults
from apimachinery.defaults import apply_defaults, default_status


def defaulted(group: str, version: str, kind: str, obj: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """What the API server stores on create: defaults, then the initial status."""
    out = copy.deepcopy(obj)
    apply_defaults(group, version, kind, out, create=True, **kwargs)
    default_status(group, version, kind, out)
    return out


def container(name: str = "nginx", image: str = "nginx", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **extra}


def defaulted_container(name: str = "nginx", image: str = "nginx", pull: str = "Always",
                        **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, "imagePullPolicy": pull, "resources": {},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", **extra}


def template_spec(**extra: Any) -> dict[str, Any]:
    """A defaulted PodSpec inside a workload's pod template."""
    spec = {"containers": [defaulted_container()], "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
            "schedulerName": "default-scheduler", "securityContext": {}, "terminationGracePeriodSeconds": 30}
    spec.update(extra)
    return spec


def workload(api_version: str, kind: str, name: str = "web", **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "labels": labels},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container()]}},
                     **spec}}


# --------------------------------------------------------------------------- workloads

def test_deployment_like_kubectl_create_deployment() -> None:
    got = defaulted("apps", "v1", "Deployment", workload("apps/v1", "Deployment"))
    assert got == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "progressDeadlineSeconds": 600, "replicas": 1, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": template_spec()},
        },
        "status": {},
    }


def test_deployment_keeps_user_values() -> None:
    obj = workload("apps/v1", "Deployment", replicas=0, revisionHistoryLimit=0, progressDeadlineSeconds=30,
                   minReadySeconds=5, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}})
    got = defaulted("apps", "v1", "Deployment", obj)["spec"]
    assert got["replicas"] == 0 and got["revisionHistoryLimit"] == 0 and got["progressDeadlineSeconds"] == 30
    assert got["minReadySeconds"] == 5
    assert got["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}}


def test_deployment_recreate_gets_no_rolling_update() -> None:
    got = defaulted("apps", "v1", "Deployment", workload("apps/v1", "Deployment", strategy={"type": "Recreate"}))
    assert got["spec"]["strategy"] == {"type": "Recreate"}
    assert "minReadySeconds" not in got["spec"]


def test_replica_set() -> None:
    got = defaulted("apps", "v1", "ReplicaSet", workload("apps/v1", "ReplicaSet"))
    assert got["spec"] == {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}}, "spec": template_spec()}}
    assert got["status"] == {"replicas": 0}


def test_stateful_set_with_claim_templates() -> None:
    obj = workload("apps/v1", "StatefulSet", serviceName="web", volumeClaimTemplates=[
        {"metadata": {"name": "www"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}])
    got = defaulted("apps", "v1", "StatefulSet", obj)
    assert got["spec"] == {
        "podManagementPolicy": "OrderedReady", "replicas": 1, "revisionHistoryLimit": 10, "serviceName": "web",
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": template_spec()},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "volumeClaimTemplates": [{
            "metadata": {"name": "www"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                     "volumeMode": "Filesystem"},
            "status": {"phase": "Pending"}}],
    }
    assert got["status"] == {"replicas": 0, "availableReplicas": 0}


def test_stateful_set_update_strategy_upstream_quirks() -> None:
    # An explicit RollingUpdate without a rollingUpdate block stays without one (no partition).
    explicit = defaulted("apps", "v1", "StatefulSet", workload("apps/v1", "StatefulSet",
                                                               updateStrategy={"type": "RollingUpdate"}))
    assert explicit["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    on_delete = defaulted("apps", "v1", "StatefulSet", workload("apps/v1", "StatefulSet",
                                                                updateStrategy={"type": "OnDelete"}))
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}
    partial = defaulted("apps", "v1", "StatefulSet", workload(
        "apps/v1", "StatefulSet", podManagementPolicy="Parallel",
        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete"},
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}))["spec"]
    assert partial["podManagementPolicy"] == "Parallel"
    assert partial["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}
    assert partial["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 2, "partition": 0}


def test_daemon_set() -> None:
    got = defaulted("apps", "v1", "DaemonSet", workload("apps/v1", "DaemonSet"))
    assert got["spec"] == {
        "revisionHistoryLimit": 10, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": template_spec()},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
    }
    assert got["status"] == {"currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                             "numberMisscheduled": 0, "numberReady": 0}
    on_delete = defaulted("apps", "v1", "DaemonSet", workload("apps/v1", "DaemonSet",
                                                              updateStrategy={"type": "OnDelete"}))
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_replication_controller_selector_and_labels_from_template() -> None:
    obj = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
           "spec": {"template": {"metadata": {"labels": {"app": "rc"}}, "spec": {"containers": [container()]}}}}
    got = defaulted("", "v1", "ReplicationController", obj)
    assert got["metadata"]["labels"] == {"app": "rc"}
    assert got["spec"]["selector"] == {"app": "rc"} and got["spec"]["replicas"] == 1
    assert got["spec"]["template"]["spec"] == template_spec()
    assert got["status"] == {"replicas": 0}
    kept = copy.deepcopy(obj)
    kept["metadata"]["labels"] = {"mine": "1"}
    kept["spec"]["selector"] = {"app": "rc", "tier": "x"}
    kept["spec"]["replicas"] = 3
    got = defaulted("", "v1", "ReplicationController", kept)
    assert got["metadata"]["labels"] == {"mine": "1"}
    assert got["spec"]["selector"] == {"app": "rc", "tier": "x"} and got["spec"]["replicas"] == 3


def job_manifest(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
            "spec": {"template": {"metadata": {"labels": {"app": "pi"}},
                                  "spec": {"containers": [container("pi", "perl:5.34.0")], "restartPolicy": "Never"}},
                     **spec}}


def test_job_like_kubectl_create_job() -> None:
    got = defaulted("batch", "v1", "Job", job_manifest())
    assert got["spec"] == {
        "backoffLimit": 6, "completionMode": "NonIndexed", "completions": 1, "parallelism": 1,
        "podReplacementPolicy": "TerminatingOrFailed", "suspend": False,
        "template": {"metadata": {"labels": {"app": "pi"}}, "spec": template_spec(
            containers=[defaulted_container("pi", "perl:5.34.0", "IfNotPresent")], restartPolicy="Never")},
    }
    assert "manualSelector" not in got["spec"]
    assert got["metadata"]["labels"] == {"app": "pi"}  # job labels default to the template's
    assert got["status"] == {}


def test_job_restart_policy_not_defaulted_to_always() -> None:
    obj = job_manifest()
    del obj["spec"]["template"]["spec"]["restartPolicy"]
    got = defaulted("batch", "v1", "Job", obj)
    assert "restartPolicy" not in got["spec"]["template"]["spec"]
    assert got["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


@pytest.mark.parametrize(("given_spec", "expected"), [
    ({"completions": 5}, {"completions": 5, "parallelism": 1}),
    ({"parallelism": 3}, {"parallelism": 3}),  # completions stays unset: a work queue
    ({"completions": 0, "parallelism": 0}, {"completions": 0, "parallelism": 0}),
    ({"backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 3},
     {"backoffLimit": 2**31 - 1, "completionMode": "Indexed"}),
    ({"backoffLimit": 0, "suspend": True}, {"backoffLimit": 0, "suspend": True}),
    ({"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}},
     {"podReplacementPolicy": "Failed",
      "podFailurePolicy": {"rules": [{"action": "Ignore",
                                      "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}}),
    ({"podReplacementPolicy": "Failed"}, {"podReplacementPolicy": "Failed"}),
])
def test_job_variants(given_spec: dict[str, Any], expected: dict[str, Any]) -> None:
    got = defaulted("batch", "v1", "Job", job_manifest(**given_spec))["spec"]
    for key, value in expected.items():
        assert got[key] == value, key
    if "parallelism" in given_spec and "completions" not in given_spec:
        assert "completions" not in got


def test_job_keeps_its_own_labels() -> None:
    obj = job_manifest()
    obj["metadata"]["labels"] = {"team": "a"}
    assert defaulted("batch", "v1", "Job", obj)["metadata"]["labels"] == {"team": "a"}


def test_cron_job_like_kubectl_create_cronjob() -> None:
    obj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
           "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"metadata": {"name": "tick"}, "spec": {
               "template": {"spec": {"containers": [container("tick", "busybox")], "restartPolicy": "OnFailure"}}}}}}
    got = defaulted("batch", "v1", "CronJob", obj)
    assert got["spec"] == {
        "concurrencyPolicy": "Allow", "failedJobsHistoryLimit": 1, "schedule": "*/1 * * * *",
        "successfulJobsHistoryLimit": 3, "suspend": False,
        # The JobSpec inside the template is not Job-defaulted (no backoffLimit etc.), as upstream.
        "jobTemplate": {"metadata": {"name": "tick"}, "spec": {"template": {"spec": template_spec(
            containers=[defaulted_container("tick", "busybox")], restartPolicy="OnFailure")}}},
    }
    assert got["status"] == {}


# --------------------------------------------------------------------------- pods

def test_pod_like_kubectl_run() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx", "labels": {"run": "nginx"}},
           "spec": {"containers": [container()]}}
    got = defaulted("", "v1", "Pod", obj)
    assert got["spec"] == {
        "containers": [defaulted_container()], "dnsPolicy": "ClusterFirst", "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority", "priority": 0, "restartPolicy": "Always",
        "schedulerName": "default-scheduler", "securityContext": {}, "terminationGracePeriodSeconds": 30,
    }
    assert got["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_pod_template_gets_no_pod_only_defaults() -> None:
    spec = defaulted("apps", "v1", "Deployment", workload("apps/v1", "Deployment"))["spec"]["template"]["spec"]
    for pod_only in ("enableServiceLinks", "priority", "preemptionPolicy"):
        assert pod_only not in spec


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.25", "IfNotPresent"),
    ("docker.io/library/nginx", "Always"),
    ("localhost:5000/app", "Always"),
    ("localhost:5000/app:v1", "IfNotPresent"),
    ("registry.example.com:443/team/app:latest", "Always"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ("nginx:1.0@sha256:" + "a" * 64, "IfNotPresent"),
    ("Nginx", "IfNotPresent"),  # unparseable: upstream ignores the error, tag is ""
    ("", "IfNotPresent"),
    ("nginx@sha256:abc", "IfNotPresent"),
    ("a" * 64, "IfNotPresent"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    assert defaults.default_pull_policy(image) == policy
    pod = {"spec": {"containers": [container(image=image)]}}
    apply_defaults("", "v1", "Pod", pod)
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_image_tag() -> None:
    assert defaults.image_tag("nginx") == "latest"
    assert defaults.image_tag("gcr.io/a/b:v2") == "v2"
    assert defaults.image_tag("nginx@sha256:" + "0" * 64) == ""
    assert defaults.image_tag("UPPER/lower") == "latest"  # uppercase is fine in a domain
    assert defaults.image_tag("no spaces") is None
    assert defaults.image_tag(None) is None


def test_container_details() -> None:
    probe = {"httpGet": {"port": 80}}
    pod = {"spec": {
        "initContainers": [container("init", "busybox:1", ports=[{"containerPort": 53, "protocol": "UDP"}])],
        "containers": [container(
            ports=[{"containerPort": 80}],
            env=[{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                 {"name": "PLAIN", "value": "x"}],
            livenessProbe=probe, readinessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 5},
            startupProbe={"grpc": {"port": 9000}},
            lifecycle={"preStop": {"httpGet": {"port": 80, "path": "/quit"}}},
            imagePullPolicy="Never", terminationMessagePolicy="FallbackToLogsOnError")],
        "ephemeralContainers": [{"name": "debug", "image": "busybox", "targetContainerName": "nginx"}],
    }}
    apply_defaults("", "v1", "Pod", pod)
    spec = pod["spec"]
    init, main = spec["initContainers"][0], spec["containers"][0]
    assert init["ports"] == [{"containerPort": 53, "protocol": "UDP"}]
    assert init["imagePullPolicy"] == "IfNotPresent"
    assert main["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert main["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    assert main["env"][1] == {"name": "PLAIN", "value": "x"}
    assert main["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                     "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert main["readinessProbe"]["periodSeconds"] == 5
    assert main["startupProbe"]["grpc"] == {"port": 9000, "service": ""}
    assert main["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/quit", "scheme": "HTTP"}
    assert main["imagePullPolicy"] == "Never"
    assert main["terminationMessagePolicy"] == "FallbackToLogsOnError"
    debug = spec["ephemeralContainers"][0]
    assert debug["imagePullPolicy"] == "Always" and debug["terminationMessagePath"] == "/dev/termination-log"


def test_volumes() -> None:
    pod = {"spec": {"containers": [container()], "volumes": [
        {"name": "scratch"},
        {"name": "cm", "configMap": {"name": "c"}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
        {"name": "host", "hostPath": {"path": "/tmp"}},
        {"name": "hostdir", "hostPath": {"path": "/tmp", "type": "Directory"}},
        {"name": "mem", "emptyDir": {"medium": "Memory"}},
        {"name": "down", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "proj", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            {"configMap": {"name": "kube-root-ca.crt"}}]}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
    ]}}
    apply_defaults("", "v1", "Pod", pod)
    v = {vol["name"]: vol for vol in pod["spec"]["volumes"]}
    assert v["scratch"] == {"name": "scratch", "emptyDir": {}}
    assert v["cm"]["configMap"] == {"name": "c", "defaultMode": 420}
    assert v["sec"]["secret"] == {"secretName": "s", "defaultMode": 256}
    assert v["host"]["hostPath"] == {"path": "/tmp", "type": ""}
    assert v["hostdir"]["hostPath"]["type"] == "Directory"
    assert v["mem"]["emptyDir"] == {"medium": "Memory"}
    assert v["down"]["downwardAPI"] == {"defaultMode": 420, "items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels", "apiVersion": "v1"}}]}
    projected = v["proj"]["projected"]
    assert projected["defaultMode"] == 420
    assert projected["sources"][0]["serviceAccountToken"] == {"path": "token", "expirationSeconds": 3600}
    assert projected["sources"][1]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"] == "v1"
    assert projected["sources"][2]["configMap"] == {"name": "kube-root-ca.crt"}  # no defaultMode per source
    assert v["claim"] == {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}}
    assert v["eph"]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"] == "Filesystem"


def test_requests_default_to_limits_for_pods_only() -> None:
    resources = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m"}}
    pod = {"spec": {"containers": [container(resources=copy.deepcopy(resources))],
                    "initContainers": [container("init", resources={"limits": {"cpu": "2"}})]}}
    apply_defaults("", "v1", "Pod", pod)
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "1Gi"}
    assert pod["spec"]["initContainers"][0]["resources"]["requests"] == {"cpu": "2"}
    deploy = workload("apps/v1", "Deployment")
    deploy["spec"]["template"]["spec"]["containers"][0]["resources"] = copy.deepcopy(resources)
    apply_defaults("apps", "v1", "Deployment", deploy)
    assert deploy["spec"]["template"]["spec"]["containers"][0]["resources"] == resources


def test_resource_quantities_rounded_to_milli_and_canonical() -> None:
    pod = {"spec": {"containers": [container(resources={"limits": {"cpu": "0.0001", "memory": 1073741824},
                                                        "requests": {"cpu": "1000m", "bad": "x y"}})],
                    "overhead": {"cpu": "250u"}}}
    apply_defaults("", "v1", "Pod", pod)
    res = pod["spec"]["containers"][0]["resources"]
    assert res["limits"] == {"cpu": "1m", "memory": "1073741824"}
    assert res["requests"] == {"cpu": "1", "bad": "x y", "memory": "1073741824"}
    assert pod["spec"]["overhead"] == {"cpu": "1m"}


def test_host_network_mirrors_container_ports_in_pods_only() -> None:
    spec = {"hostNetwork": True, "containers": [container(ports=[{"containerPort": 8080},
                                                                 {"containerPort": 9090, "hostPort": 9091}])]}
    pod = {"spec": copy.deepcopy(spec)}
    apply_defaults("", "v1", "Pod", pod)
    assert [p["hostPort"] for p in pod["spec"]["containers"][0]["ports"]] == [8080, 9091]
    deploy = workload("apps/v1", "Deployment")
    deploy["spec"]["template"]["spec"] = copy.deepcopy(spec)
    apply_defaults("apps", "v1", "Deployment", deploy)
    assert "hostPort" not in deploy["spec"]["template"]["spec"]["containers"][0]["ports"][0]


def test_pod_spec_keeps_user_values() -> None:
    pod = {"spec": {"containers": [container()], "restartPolicy": "OnFailure", "dnsPolicy": "None",
                    "terminationGracePeriodSeconds": 0, "schedulerName": "mine", "enableServiceLinks": False,
                    "securityContext": {"runAsUser": 1000}}}
    apply_defaults("", "v1", "Pod", pod)
    spec = pod["spec"]
    assert spec["restartPolicy"] == "OnFailure" and spec["dnsPolicy"] == "None"
    assert spec["terminationGracePeriodSeconds"] == 0 and spec["schedulerName"] == "mine"
    assert spec["enableServiceLinks"] is False and spec["securityContext"] == {"runAsUser": 1000}


def qos_pod(*resources: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {"spec": {"containers": [container(f"c{i}", resources=r) for i, r in enumerate(resources)],
                     "initContainers": [container(f"i{i}", resources=r) for i, r in enumerate(init)]}}


GUARANTEED = {"limits": {"cpu": "1", "memory": "1Gi"}}


@pytest.mark.parametrize(("pod", "qos"), [
    (qos_pod({}), "BestEffort"),
    (qos_pod({"requests": {"cpu": "0"}}), "BestEffort"),
    (qos_pod({"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}), "BestEffort"),
    (qos_pod(GUARANTEED), "Guaranteed"),
    (qos_pod(GUARANTEED, GUARANTEED), "Guaranteed"),
    (qos_pod({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}}),
     "Guaranteed"),
    (qos_pod(GUARANTEED, {}), "Burstable"),
    (qos_pod({"limits": {"cpu": "1"}}), "Burstable"),
    (qos_pod({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}), "Burstable"),
    (qos_pod({"requests": {"memory": "10Mi"}}), "Burstable"),
    (qos_pod(GUARANTEED, init=({"requests": {"cpu": "1"}},)), "Burstable"),
])
def test_qos_class(pod: dict[str, Any], qos: str) -> None:
    pod = copy.deepcopy(pod)
    apply_defaults("", "v1", "Pod", pod)
    default_status("", "v1", "Pod", pod)
    assert pod["status"]["qosClass"] == qos
    assert defaults.compute_pod_qos(pod) == qos


def test_scheduling_gated_pod_status() -> None:
    pod = defaulted("", "v1", "Pod", {"spec": {"containers": [container()], "schedulingGates": [{"name": "wait"}]}})
    assert pod["status"]["conditions"] == [{
        "type": "PodScheduled", "status": "False", "lastProbeTime": None, "lastTransitionTime": None,
        "reason": "SchedulingGated", "message": "Scheduling is blocked due to non-empty scheduling gates"}]


def test_pod_priority() -> None:
    system = defaulted("", "v1", "Pod", {"spec": {"containers": [container()],
                                                  "priorityClassName": "system-node-critical"}})
    assert system["spec"]["priority"] == 2000001000
    unknown = defaulted("", "v1", "Pod", {"spec": {"containers": [container()], "priorityClassName": "high"}})
    assert "priority" not in unknown["spec"] and "preemptionPolicy" not in unknown["spec"]
    high = {"metadata": {"name": "high"}, "value": 1000, "preemptionPolicy": "Never"}
    resolved = defaulted("", "v1", "Pod", {"spec": {"containers": [container()], "priorityClassName": "high"}},
                         priority_class=high)
    assert (resolved["spec"]["priority"], resolved["spec"]["preemptionPolicy"]) == (1000, "Never")
    global_default = defaulted("", "v1", "Pod", {"spec": {"containers": [container()]}},
                               priority_class={"metadata": {"name": "fleet"}, "value": 7, "globalDefault": True})
    assert global_default["spec"]["priorityClassName"] == "fleet"
    assert (global_default["spec"]["priority"], global_default["spec"]["preemptionPolicy"]) == (
        7, "PreemptLowerPriority")


def test_admit_pod_priority_conflicts() -> None:
    pod = {"spec": {"containers": [container()], "priority": 5}}
    assert defaults.admit_pod_priority(pod) == (
        "the integer value of priority (5) must not be provided in pod spec; "
        "priority admission controller computed 0 from the given PriorityClass name")
    pod = {"spec": {"containers": [container()], "preemptionPolicy": "Never"}}
    assert defaults.admit_pod_priority(pod) == (
        "the string value of PreemptionPolicy (Never) must not be provided in pod spec; "
        "priority admission controller computed PreemptLowerPriority from the given PriorityClass name")
    pod = {"spec": {"containers": [container()], "priority": 0}}
    assert defaults.admit_pod_priority(pod) is None
    assert pod["spec"]["preemptionPolicy"] == "PreemptLowerPriority"


# --------------------------------------------------------------------------- services

def service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def test_service_like_kubectl_create_service_clusterip() -> None:
    got = defaulted("", "v1", "Service", service())
    assert got["spec"] == {
        "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"app": "web"},
        "sessionAffinity": "None", "type": "ClusterIP",
    }
    assert got["status"] == {"loadBalancer": {}}


def test_service_node_port_and_load_balancer() -> None:
    node_port = defaulted("", "v1", "Service", service(type="NodePort"))["spec"]
    assert node_port["externalTrafficPolicy"] == "Cluster" and node_port["internalTrafficPolicy"] == "Cluster"
    assert "allocateLoadBalancerNodePorts" not in node_port
    lb = defaulted("", "v1", "Service", service(type="LoadBalancer", externalTrafficPolicy="Local"))
    assert lb["spec"]["externalTrafficPolicy"] == "Local"
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
    lb["status"]["loadBalancer"]["ingress"] = [{"ip": "1.2.3.4"}, {"hostname": "lb.example"}]
    apply_defaults("", "v1", "Service", lb)
    assert lb["status"]["loadBalancer"]["ingress"] == [{"ip": "1.2.3.4", "ipMode": "VIP"}, {"hostname": "lb.example"}]
    external_ips = defaulted("", "v1", "Service", service(externalIPs=["10.9.9.9"]))["spec"]
    assert external_ips["externalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in defaulted("", "v1", "Service", service())["spec"]


def test_service_external_name() -> None:
    got = defaulted("", "v1", "Service", {"spec": {"type": "ExternalName", "externalName": "example.com"}})
    assert got["spec"] == {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}


def test_service_ports_and_affinity() -> None:
    got = defaulted("", "v1", "Service", service(
        ports=[{"port": 80, "targetPort": "http"}, {"port": 53, "protocol": "UDP", "targetPort": 0}],
        sessionAffinity="ClientIP"))["spec"]
    assert got["ports"] == [{"port": 80, "targetPort": "http", "protocol": "TCP"},
                            {"port": 53, "protocol": "UDP", "targetPort": 53}]
    assert got["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    kept = defaulted("", "v1", "Service", service(sessionAffinity="ClientIP",
                                                  sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}))
    assert kept["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 60}}
    dropped = defaulted("", "v1", "Service", service(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}))
    assert "sessionAffinityConfig" not in dropped["spec"]


def test_service_ip_families() -> None:
    headless = defaulted("", "v1", "Service", {"spec": {"clusterIP": "None", "ports": [{"port": 80}]}})["spec"]
    assert headless["ipFamilyPolicy"] == "RequireDualStack" and headless["ipFamilies"] == ["IPv4", "IPv6"]
    headless_selector = defaulted("", "v1", "Service", service(clusterIP="None"))["spec"]
    assert headless_selector["ipFamilyPolicy"] == "SingleStack" and headless_selector["ipFamilies"] == ["IPv4"]
    from_ip = defaulted("", "v1", "Service", service(clusterIPs=["fd00::10"]))["spec"]
    assert from_ip["ipFamilies"] == ["IPv6"]
    dual = defaulted("", "v1", "Service", service(ipFamilyPolicy="PreferDualStack"),
                     service_ip_families=("IPv4", "IPv6"))["spec"]
    assert dual["ipFamilies"] == ["IPv4", "IPv6"]
    single_cluster = defaulted("", "v1", "Service", service(ipFamilyPolicy="PreferDualStack"))["spec"]
    assert single_cluster["ipFamilies"] == ["IPv4"]
    v6_primary = defaulted("", "v1", "Service", service(), service_ip_families=("IPv6",))["spec"]
    assert v6_primary["ipFamilies"] == ["IPv6"]
    skipped = defaulted("", "v1", "Service", service(), service_ip_families=None)["spec"]
    assert "ipFamilies" not in skipped and "ipFamilyPolicy" not in skipped


# --------------------------------------------------------------------------- other core kinds

def test_namespace_create_and_update() -> None:
    ns = defaulted("", "v1", "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    assert ns == {"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}},
                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    # The namespace controller removes the finalizer through /finalize; updates must not re-add it.
    ns["spec"]["finalizers"] = []
    apply_defaults("", "v1", "Namespace", ns)
    assert ns["spec"]["finalizers"] == []
    del ns["spec"]["finalizers"]
    apply_defaults("", "v1", "Namespace", ns)
    assert "finalizers" not in ns["spec"]
    other = defaulted("", "v1", "Namespace", {"metadata": {"name": "x", "labels": {
        "kubernetes.io/metadata.name": "spoofed"}}, "spec": {"finalizers": ["example.com/wait"]},
        "status": {"phase": "Terminating"}})
    assert other["metadata"]["labels"]["kubernetes.io/metadata.name"] == "x"  # upstream forces it
    assert other["spec"]["finalizers"] == ["example.com/wait", "kubernetes"]
    assert other["status"]["phase"] == "Terminating"
    generated = defaulted("", "v1", "Namespace", {"metadata": {"generateName": "ns-"}})
    assert "labels" not in generated["metadata"]


def test_node() -> None:
    node = defaulted("", "v1", "Node", {"metadata": {"name": "n1"},
                                        "status": {"capacity": {"cpu": 4, "memory": "8Gi", "pods": "110"}}})
    assert node["status"]["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert node["status"]["allocatable"] == node["status"]["capacity"]
    assert node["status"]["allocatable"] is not node["status"]["capacity"]
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
    assert node["status"]["nodeInfo"] == dict.fromkeys((
        "architecture", "bootID", "containerRuntimeVersion", "kernelVersion", "kubeProxyVersion",
        "kubeletVersion", "machineID", "operatingSystem", "osImage", "systemUUID"), "")
    kept = defaulted("", "v1", "Node", {"status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "3"},
                                                   "nodeInfo": {"architecture": "amd64"}}})
    assert kept["status"]["allocatable"] == {"cpu": "3"}
    assert kept["status"]["nodeInfo"]["architecture"] == "amd64" and kept["status"]["nodeInfo"]["bootID"] == ""


def test_persistent_volumes_and_claims() -> None:
    pv = defaulted("", "v1", "PersistentVolume", {"metadata": {"name": "pv"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}})
    assert pv["spec"] == {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                          "hostPath": {"path": "/data", "type": ""},
                          "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"}
    assert pv["status"] == {"phase": "Pending"}
    pvc = defaulted("", "v1", "PersistentVolumeClaim", {"metadata": {"name": "c"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Block"}})
    assert pvc["spec"]["volumeMode"] == "Block" and pvc["status"] == {"phase": "Pending"}


def test_small_core_kinds() -> None:
    assert defaulted("", "v1", "Secret", {"metadata": {"name": "s"}})["type"] == "Opaque"
    assert defaulted("", "v1", "Secret", {"type": "kubernetes.io/tls"})["type"] == "kubernetes.io/tls"
    ep = defaulted("", "v1", "Endpoints", {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    for kind in ("ConfigMap", "ServiceAccount", "Event"):
        obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}}
        assert defaulted("", "v1", kind, obj) == obj


def test_limit_range_and_quota() -> None:
    lr = defaulted("", "v1", "LimitRange", {"spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "10Mi"}},
        {"type": "Pod", "max": {"cpu": "4"}}]}})
    container_item, pod_item = lr["spec"]["limits"]
    assert container_item["default"] == {"cpu": "2"}
    assert container_item["defaultRequest"] == {"cpu": "2", "memory": "10Mi"}
    assert pod_item == {"type": "Pod", "max": {"cpu": "4"}}
    quota = defaulted("", "v1", "ResourceQuota", {"spec": {"hard": {"pods": 10, "cpu": "0.5"}}})
    assert quota["spec"]["hard"] == {"pods": "10", "cpu": "500m"} and quota["status"] == {}


# --------------------------------------------------------------------------- other groups

def test_autoscaling_v2() -> None:
    hpa = {"metadata": {"name": "web"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}}
    got = defaulted("autoscaling", "v2", "HorizontalPodAutoscaler", hpa)
    assert got["spec"] == {**hpa["spec"], "minReplicas": 1, "metrics": [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}
    assert got["status"] == {"currentMetrics": None, "desiredReplicas": 0}
    with_behavior = copy.deepcopy(hpa)
    with_behavior["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 60}}
    behavior = defaulted("autoscaling", "v2", "HorizontalPodAutoscaler", with_behavior)["spec"]["behavior"]
    assert behavior == {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
        "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}]},
    }
    custom = copy.deepcopy(hpa)
    custom["spec"]["behavior"] = {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                                              "selectPolicy": "Disabled"}}
    custom["spec"]["minReplicas"] = 2
    got = defaulted("autoscaling", "v2", "HorizontalPodAutoscaler", custom)["spec"]
    assert got["minReplicas"] == 2
    assert got["behavior"]["scaleUp"] == {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                                          "selectPolicy": "Disabled", "stabilizationWindowSeconds": 0}
    assert "stabilizationWindowSeconds" not in got["behavior"]["scaleDown"]


def test_autoscaling_v1() -> None:
    got = defaulted("autoscaling", "v1", "HorizontalPodAutoscaler", {"spec": {"maxReplicas": 3}})
    assert got["spec"] == {"maxReplicas": 3, "minReplicas": 1}
    assert got["status"] == {"currentReplicas": 0, "desiredReplicas": 0}


def test_rbac_subjects_and_role_ref() -> None:
    binding = {"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
        {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
        {"kind": "ServiceAccount", "name": "default", "namespace": "default"},
        {"kind": "User", "name": "bob", "apiGroup": "example.com"}]}
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        got = defaulted("rbac.authorization.k8s.io", "v1", kind, binding)
        assert got["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
        assert [s.get("apiGroup") for s in got["subjects"]] == [
            "rbac.authorization.k8s.io", "rbac.authorization.k8s.io", "", "example.com"]
    role = {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    assert defaulted("rbac.authorization.k8s.io", "v1", "Role", role) == role


def test_networking_discovery_scheduling_storage_policy() -> None:
    slice_ = defaulted("discovery.k8s.io", "v1", "EndpointSlice", {
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]})
    assert slice_["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    ingress = {"spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {
        "service": {"name": "web", "port": {"number": 80}}}}]}}]}}
    got = defaulted("networking.k8s.io", "v1", "Ingress", ingress)
    assert got["spec"] == ingress["spec"]  # no pathType default: it is required
    assert got["status"] == {"loadBalancer": {}}
    klass = defaulted("networking.k8s.io", "v1", "IngressClass", {"spec": {"controller": "x/y", "parameters": {
        "kind": "Params", "name": "p"}}})
    assert klass["spec"]["parameters"]["scope"] == "Cluster"
    plain_class = {"spec": {"controller": "x/y"}}
    assert defaulted("networking.k8s.io", "v1", "IngressClass", plain_class) == plain_class
    policy = defaulted("networking.k8s.io", "v1", "NetworkPolicy", {"spec": {
        "podSelector": {}, "ingress": [{"ports": [{"port": 80}]}], "egress": [{"ports": [{"port": 53}]}]}})
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert policy["spec"]["egress"][0]["ports"] == [{"port": 53, "protocol": "TCP"}]
    ingress_only = defaulted("networking.k8s.io", "v1", "NetworkPolicy", {"spec": {"podSelector": {}}})
    assert ingress_only["spec"]["policyTypes"] == ["Ingress"]
    pc = defaulted("scheduling.k8s.io", "v1", "PriorityClass", {"value": 100})
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    sc = defaulted("storage.k8s.io", "v1", "StorageClass", {"provisioner": "x"})
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    pdb = defaulted("policy", "v1", "PodDisruptionBudget", {"spec": {"minAvailable": 1, "selector": {}}})
    assert pdb["spec"] == {"minAvailable": 1, "selector": {}}
    assert pdb["status"] == {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}
    lease = {"spec": {"holderIdentity": "a"}}
    assert defaulted("coordination.k8s.io", "v1", "Lease", lease) == lease


def test_unknown_kinds_are_untouched() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"containers": []}}
    assert defaulted("example.com", "v1", "Widget", obj) == obj
    assert defaulted("apps", "v2", "Deployment", obj) == obj
    assert not defaults.has_defaults("example.com", "v1", "Widget")
    assert defaults.has_defaults("apps", "v1", "Deployment")


# --------------------------------------------------------------------------- properties

quantities = st.sampled_from(["100m", "1", "2", "128Mi", "1Gi", "500m", "0"])
resource_lists = st.dictionaries(st.sampled_from(["cpu", "memory", "ephemeral-storage"]), quantities, max_size=3)
probes = st.fixed_dictionaries({}, optional={
    "httpGet": st.fixed_dictionaries({"port": st.integers(1, 65535)},
                                     optional={"path": st.just("/healthz"), "scheme": st.just("HTTPS")}),
    "timeoutSeconds": st.integers(1, 5), "periodSeconds": st.integers(1, 30),
    "failureThreshold": st.integers(1, 5), "successThreshold": st.just(1)})
images = st.sampled_from(["nginx", "nginx:1.25", "busybox:latest", "gcr.io/x/y@sha256:" + "b" * 64, "Bad Image"])
containers = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "c"]), "image": images},
    optional={
        "imagePullPolicy": st.sampled_from(["Always", "Never", "IfNotPresent"]),
        "terminationMessagePolicy": st.sampled_from(["File", "FallbackToLogsOnError"]),
        "ports": st.lists(st.fixed_dictionaries({"containerPort": st.integers(1, 65535)},
                                                optional={"protocol": st.sampled_from(["TCP", "UDP", "SCTP"]),
                                                          "hostPort": st.integers(1, 65535)}), max_size=2),
        "resources": st.fixed_dictionaries({}, optional={"limits": resource_lists, "requests": resource_lists}),
        "livenessProbe": probes, "readinessProbe": probes,
        "env": st.lists(st.one_of(
            st.fixed_dictionaries({"name": st.just("A"), "value": st.text(max_size=3)}),
            st.fixed_dictionaries({"name": st.just("B"), "valueFrom": st.fixed_dictionaries(
                {"fieldRef": st.fixed_dictionaries({"fieldPath": st.just("metadata.name")},
                                                   optional={"apiVersion": st.just("v1")})})})), max_size=2),
    })
volumes = st.one_of(
    st.fixed_dictionaries({"name": st.just("v")}),
    st.fixed_dictionaries({"name": st.just("cm"), "configMap": st.fixed_dictionaries(
        {"name": st.just("c")}, optional={"defaultMode": st.integers(0, 511)})}),
    st.fixed_dictionaries({"name": st.just("h"), "hostPath": st.fixed_dictionaries(
        {"path": st.just("/x")}, optional={"type": st.sampled_from(["", "Directory"])})}),
    st.fixed_dictionaries({"name": st.just("p"), "projected": st.fixed_dictionaries({"sources": st.just(
        [{"serviceAccountToken": {"path": "t"}}])})}),
)
pod_specs = st.fixed_dictionaries(
    {"containers": st.lists(containers, min_size=1, max_size=3)},
    optional={
        "initContainers": st.lists(containers, max_size=2),
        "volumes": st.lists(volumes, max_size=3),
        "restartPolicy": st.sampled_from(["Always", "OnFailure", "Never"]),
        "dnsPolicy": st.sampled_from(["ClusterFirst", "Default", "None"]),
        "hostNetwork": st.booleans(),
        "terminationGracePeriodSeconds": st.integers(0, 100),
        "enableServiceLinks": st.booleans(),
        "priorityClassName": st.sampled_from(["system-cluster-critical", "unknown"]),
        "schedulingGates": st.lists(st.fixed_dictionaries({"name": st.just("g")}), max_size=1),
    })

KINDS_WITH_TEMPLATES = [("apps", "v1", "Deployment"), ("apps", "v1", "ReplicaSet"), ("apps", "v1", "StatefulSet"),
                        ("apps", "v1", "DaemonSet"), ("batch", "v1", "Job"), ("", "v1", "ReplicationController")]


def wrap(group: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    if kind == "Pod":
        return {"metadata": {"name": "p"}, "spec": spec}
    return {"metadata": {"name": "w"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
                                                "template": {"metadata": {"labels": {"a": "b"}}, "spec": spec}}}


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items() for leaf in leaves(item, (*path, key))]
    if isinstance(value, list) and value:
        return [leaf for index, item in enumerate(value) for leaf in leaves(item, (*path, index))]
    return [(path, value)]


def lookup(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@settings(max_examples=80, deadline=None)
@given(pod_specs, st.sampled_from([("", "v1", "Pod"), *KINDS_WITH_TEMPLATES]))
def test_defaulting_is_idempotent_and_keeps_user_values(spec: dict[str, Any], gvk: tuple[str, str, str]) -> None:
    group, version, kind = gvk
    obj = wrap(group, kind, spec)
    once = defaulted(group, version, kind, obj)
    twice = copy.deepcopy(once)
    apply_defaults(group, version, kind, twice)
    default_status(group, version, kind, twice)
    assert twice == once
    for path, value in leaves(obj):
        if isinstance(value, dict | list):  # an empty map/list the user gave may be filled in
            assert type(lookup(once, path)) is type(value), path
        elif value is not None:
            assert lookup(once, path) == value, path


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", "TCP", "None"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["spec", "template", "containers", "ports", "volumes", "status", "metadata", "labels",
                         "resources", "limits", "strategy", "rollingUpdate", "subjects", "behavior", "type"]),
        inner, max_size=4),
    max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(json_values, st.sampled_from([
    ("", "v1", "Pod"), ("", "v1", "Service"), ("", "v1", "Namespace"), ("", "v1", "Node"),
    ("", "v1", "LimitRange"), ("autoscaling", "v2", "HorizontalPodAutoscaler"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"), ("batch", "v1", "CronJob"),
    ("networking.k8s.io", "v1", "NetworkPolicy"), *KINDS_WITH_TEMPLATES]))
def test_malformed_input_never_raises(spec: Any, gvk: tuple[str, str, str]) -> None:
    obj = {"metadata": {"name": "x"}, "spec": spec, "status": spec}
    once = defaulted(*gvk, obj)
    twice = copy.deepcopy(once)
    apply_defaults(*gvk, twice)
    default_status(*gvk, twice)
    assert twice == once


def test_defaulted_values_are_never_shared_between_objects() -> None:
    first = defaulted("autoscaling", "v2", "HorizontalPodAutoscaler", {"spec": {"behavior": {}}})
    first["spec"]["behavior"]["scaleUp"]["policies"].clear()
    first["spec"]["metrics"].clear()
    second = defaulted("autoscaling", "v2", "HorizontalPodAutoscaler", {"spec": {"behavior": {}}})
    assert len(second["spec"]["behavior"]["scaleUp"]["policies"]) == 2 and second["spec"]["metrics"]


# --------------------------------------------------------------------------- the official Python client

def deserialize(obj: dict[str, Any], klass: str) -> Any:
    """Exactly what the client does with a response body (strict pydantic models)."""
    return ApiClient().deserialize(json.dumps(obj), klass, "application/json")


MAIN_KINDS = [
    ("", "v1", "Pod", "V1Pod", {"metadata": {"name": "p"}, "spec": {"containers": [container(
        resources={"limits": {"cpu": 1, "memory": "64Mi"}}, livenessProbe={"httpGet": {"port": 80}},
        ports=[{"containerPort": 80}])]}}),
    ("apps", "v1", "Deployment", "V1Deployment", workload("apps/v1", "Deployment")),
    ("apps", "v1", "ReplicaSet", "V1ReplicaSet", workload("apps/v1", "ReplicaSet")),
    ("apps", "v1", "StatefulSet", "V1StatefulSet", workload("apps/v1", "StatefulSet", serviceName="web")),
    ("apps", "v1", "DaemonSet", "V1DaemonSet", workload("apps/v1", "DaemonSet")),
    ("", "v1", "ReplicationController", "V1ReplicationController", {"spec": {"template": {
        "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [container()]}}}}),
    ("batch", "v1", "Job", "V1Job", job_manifest()),
    ("batch", "v1", "CronJob", "V1CronJob", {"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {
        "template": {"spec": {"containers": [container()], "restartPolicy": "Never"}}}}}}),
    ("", "v1", "Service", "V1Service", service(type="LoadBalancer")),
    ("", "v1", "Namespace", "V1Namespace", {"metadata": {"name": "ns"}}),
    ("", "v1", "Node", "V1Node", {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": 2}}}),
    ("", "v1", "PersistentVolume", "V1PersistentVolume", {"spec": {"capacity": {"storage": "1Gi"},
                                                                   "hostPath": {"path": "/d"}}}),
    ("", "v1", "PersistentVolumeClaim", "V1PersistentVolumeClaim", {"spec": {"resources": {"requests": {
        "storage": "1Gi"}}}}),
    ("", "v1", "Secret", "V1Secret", {"data": {}}),
    ("", "v1", "ConfigMap", "V1ConfigMap", {"data": {"a": "b"}}),
    ("", "v1", "Endpoints", "V1Endpoints", {"subsets": [{"ports": [{"port": 80}]}]}),
    ("", "v1", "ResourceQuota", "V1ResourceQuota", {"spec": {"hard": {"pods": 10}}}),
    ("", "v1", "LimitRange", "V1LimitRange", {"spec": {"limits": [{"type": "Container", "max": {"cpu": 1}}]}}),
    ("discovery.k8s.io", "v1", "EndpointSlice", "V1EndpointSlice", {"addressType": "IPv4", "endpoints": [],
                                                                    "ports": [{"port": 80}]}),
    ("networking.k8s.io", "v1", "Ingress", "V1Ingress", {"spec": {"defaultBackend": {"service": {
        "name": "web", "port": {"number": 80}}}}}),
    ("networking.k8s.io", "v1", "NetworkPolicy", "V1NetworkPolicy", {"spec": {"podSelector": {}}}),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "V2HorizontalPodAutoscaler", {"spec": {
        "maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "behavior": {}}}),
    ("autoscaling", "v1", "HorizontalPodAutoscaler", "V1HorizontalPodAutoscaler", {"spec": {
        "maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "web"}}}),
    ("policy", "v1", "PodDisruptionBudget", "V1PodDisruptionBudget", {"spec": {"maxUnavailable": 1}}),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "V1RoleBinding", {
        "roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "u"}]}),
    ("scheduling.k8s.io", "v1", "PriorityClass", "V1PriorityClass", {"value": 10}),
    ("storage.k8s.io", "v1", "StorageClass", "V1StorageClass", {"provisioner": "x"}),
    ("coordination.k8s.io", "v1", "Lease", "V1Lease", {"spec": {"holderIdentity": "a"}}),
]


@pytest.mark.parametrize(("group", "version", "kind", "klass", "obj"), MAIN_KINDS,
                         ids=[f"{k[2]}.{k[1]}" for k in MAIN_KINDS])
def test_python_client_accepts_defaulted_objects(group: str, version: str, kind: str, klass: str,
                                                 obj: dict[str, Any]) -> None:
    stored = defaulted(group, version, kind, obj)
    stored["apiVersion"] = f"{group}/{version}" if group else version
    stored["kind"] = kind
    stored.setdefault("metadata", {"name": "x"})
    model = deserialize(stored, klass)
    assert type(model).__name__ == klass
    if stored.get("status") is not None:
        assert model.status is not None


@pytest.mark.parametrize(("group", "version", "kind", "klass", "obj"), [
    ("apps", "v1", "ReplicaSet", "V1ReplicaSet", workload("apps/v1", "ReplicaSet")),
    ("apps", "v1", "DaemonSet", "V1DaemonSet", workload("apps/v1", "DaemonSet")),
    ("", "v1", "Node", "V1Node", {"status": {"nodeInfo": {"architecture": "amd64"}}}),
])
def test_python_client_rejects_status_without_go_fields(group: str, version: str, kind: str, klass: str,
                                                        obj: dict[str, Any]) -> None:
    """The check above has teeth: skip ``default_status`` and the strict client fails."""
    stored = copy.deepcopy(obj)
    apply_defaults(group, version, kind, stored, create=True)
    stored.setdefault("status", {})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError, wrapped or not
        deserialize(stored, klass)
    default_status(group, version, kind, stored)
    deserialize(stored, klass)
