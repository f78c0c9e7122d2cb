"""The official ``kubernetes`` client (strict pydantic models), kr8s and lightkube against the server."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch

from tests.harness.apicluster import APICluster


@pytest.fixture(scope="module")
def kube(api: APICluster) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(config_file=str(api.kubeconfig))


def deployment(name: str, replicas: int = 1) -> k8s.V1Deployment:
    labels = {"app": name}
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1DeploymentSpec(
            replicas=replicas, selector=k8s.V1LabelSelector(match_labels=labels),
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(labels=labels),
                spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="nginx:1.27")]))))


def test_version_and_discovery(kube: k8s.ApiClient) -> None:
    info = k8s.VersionApi(kube).get_code()
    assert info.minor == "32"
    groups = k8s.ApisApi(kube).get_api_versions()
    assert any(g.name == "apps" for g in groups.groups)
    resources = k8s.CoreV1Api(kube).get_api_resources()
    assert any(r.name == "pods" for r in resources.resources)


def test_typed_crud_and_conflict(kube: k8s.ApiClient) -> None:
    apps = k8s.AppsV1Api(kube)
    created = apps.create_namespaced_deployment("default", deployment("py-web", 2))
    assert created.metadata.uid and created.spec.strategy.type == "RollingUpdate"
    got = apps.read_namespaced_deployment("py-web", "default")
    got.spec.replicas = 3
    replaced = apps.replace_namespaced_deployment("py-web", "default", got)
    assert replaced.spec.replicas == 3 and replaced.metadata.generation == 2
    got.spec.replicas = 4  # stale resourceVersion
    with pytest.raises(k8s.ApiException) as exc:
        apps.replace_namespaced_deployment("py-web", "default", got)
    assert exc.value.status == 409
    patched = apps.patch_namespaced_deployment("py-web", "default", {"metadata": {"labels": {"p": "1"}}})
    assert patched.metadata.labels["p"] == "1"
    scaled = apps.patch_namespaced_deployment_scale("py-web", "default", {"spec": {"replicas": 5}})
    assert scaled.spec.replicas == 5
    lst = apps.list_deployment_for_all_namespaces()
    assert any(d.metadata.name == "py-web" for d in lst.items)
    apps.delete_namespaced_deployment("py-web", "default")
    with pytest.raises(k8s.ApiException) as exc:
        apps.read_namespaced_deployment("py-web", "default")
    assert exc.value.status == 404


def test_core_kinds_deserialize(kube: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(kube)
    pod = core.create_namespaced_pod("default", k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="py-pod"),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="busybox")])))
    assert pod.status.phase == "Pending" and pod.status.qos_class == "BestEffort"
    svc = core.create_namespaced_service("default", k8s.V1Service(
        metadata=k8s.V1ObjectMeta(name="py-svc"),
        spec=k8s.V1ServiceSpec(selector={"app": "x"}, ports=[k8s.V1ServicePort(port=80)])))
    assert svc.spec.cluster_ip and svc.spec.type == "ClusterIP"
    cm = core.create_namespaced_config_map("default", k8s.V1ConfigMap(
        metadata=k8s.V1ObjectMeta(name="py-cm"), data={"a": "b"}))
    assert cm.data == {"a": "b"}
    assert any(p.metadata.name == "py-pod" for p in core.list_namespaced_pod("default").items)
    core.list_namespace()
    core.list_pod_for_all_namespaces(field_selector="metadata.name=py-pod")


def test_watch_stream_and_resume(kube: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(kube)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    seen: list[tuple[str, str]] = []

    def watch() -> None:
        w = k8s_watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=rv,
                           label_selector="pw=1", timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name))
            if len(seen) == 3:
                w.stop()

    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.5)
    core.create_namespaced_config_map("default", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="pw", labels={"pw": "1"})))
    core.patch_namespaced_config_map("pw", "default", {"data": {"x": "y"}})
    core.delete_namespaced_config_map("pw", "default")
    t.join(timeout=20)
    assert seen == [("ADDED", "pw"), ("MODIFIED", "pw"), ("DELETED", "pw")]


def test_watch_expired_raises_410(kube: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(kube)
    w = k8s_watch.Watch()
    with pytest.raises(k8s.ApiException) as exc:
        for _ in w.stream(core.list_namespaced_config_map, "default", resource_version="1", timeout_seconds=5):
            pass
    assert exc.value.status == 410


def test_server_side_apply_via_python_client(kube: k8s.ApiClient) -> None:
    apps = k8s.AppsV1Api(kube)
    body = kube.sanitize_for_serialization(deployment("py-ssa", 2))
    body.update(apiVersion="apps/v1", kind="Deployment")
    d = apps.patch_namespaced_deployment("py-ssa", "default", body, field_manager="py",
                                         _content_type="application/apply-patch+yaml")
    assert d.spec.replicas == 2


def test_kr8s_smoke(api: APICluster) -> None:
    import kr8s
    from kr8s.objects import ConfigMap

    k = kr8s.api(kubeconfig=str(api.kubeconfig))
    cm = ConfigMap({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kr8s-cm", "namespace": "default"},
                    "data": {"a": "1"}}, api=k)
    cm.create()
    got = list(k.get("configmaps", "kr8s-cm", namespace="default"))
    assert got and got[0].raw["data"] == {"a": "1"}
    cm.patch({"data": {"a": "2"}})
    cm.refresh()
    assert cm.raw["data"]["a"] == "2"
    cm.delete()


def test_lightkube_smoke(api: APICluster) -> None:
    from lightkube import Client, KubeConfig
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap

    c = Client(config=KubeConfig.from_file(str(api.kubeconfig)))
    c.create(ConfigMap(metadata=ObjectMeta(name="lk-cm", namespace="default"), data={"a": "1"}))
    got = c.get(ConfigMap, "lk-cm", namespace="default")
    assert got.data == {"a": "1"}
    c.patch(ConfigMap, "lk-cm", {"data": {"b": "2"}}, namespace="default")
    assert c.get(ConfigMap, "lk-cm", namespace="default").data == {"a": "1", "b": "2"}
    assert any(cm.metadata.name == "lk-cm" for cm in c.list(ConfigMap, namespace="default"))
    c.delete(ConfigMap, "lk-cm", namespace="default")
