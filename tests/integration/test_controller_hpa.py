"""HorizontalPodAutoscaler against the API server's metrics.k8s.io (fed by the simulated kubelets'
/stats/summary): pods without stats make the HPA say so (ScalingActive=False, FailedGetResourceMetric);
with usage reported it scales a Deployment up under load and back down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.apicluster import APICluster
from tests.integration.test_controller_deployment import deployment
from tests.integration.test_controller_support import Rest, SimKubelet, controller_env, wait_for

NS = "hpa-test"
NODES = ["hpa-n1", "hpa-n2"]
HPA = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
MILLI = 1_000_000  # nanocores


@pytest.fixture(scope="module")
def env(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rest, SimKubelet]]:
    with controller_env(api, tmp_path_factory.mktemp("cm"), namespace=NS, nodes=NODES,
                        controllers="replicaset,deployment,horizontalpodautoscaling", serve_stats=True,
                        cm_args=("--horizontal-pod-autoscaler-sync-period", "1")) as (rest, kubelet, _):
        load = {"cpu": 100}  # millicores per pod of the "load" app

        def usage(pod: dict) -> tuple[int, int] | None:
            if (pod["metadata"].get("labels") or {}).get("app") != "load":
                return None
            return load["cpu"] * MILLI, 10 * 1024 * 1024

        kubelet.usage = usage
        kubelet.load = load  # type: ignore[attr-defined]
        yield rest, kubelet


def hpa_status(rest: Rest, name: str) -> dict:
    return (rest.get(f"{HPA}/{name}") or {}).get("status") or {}


def hpa_condition(rest: Rest, name: str, type_: str) -> dict:
    return next((c for c in hpa_status(rest, name).get("conditions") or [] if c["type"] == type_), {})


def replicas(rest: Rest, name: str) -> int:
    return rest.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{name}")["spec"]["replicas"]


def web(rest: Rest, name: str, n: int) -> None:
    d = deployment(name, n, ns=NS)
    d["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100m"}}
    rest.call("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", d)


def hpa(rest: Rest, name: str, min_r: int, max_r: int, behavior: dict | None = None) -> None:
    spec: dict = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                  "minReplicas": min_r, "maxReplicas": max_r,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                      "type": "Utilization", "averageUtilization": 50}}}]}
    if behavior:
        spec["behavior"] = behavior
    rest.call("POST", HPA, {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                            "metadata": {"name": name}, "spec": spec})


def test_without_metrics_scaling_is_inactive(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    web(rest, "nometrics", 2)  # its pods report no stats
    hpa(rest, "nometrics", 1, 5)
    cond = wait_for(lambda: hpa_condition(rest, "nometrics", "ScalingActive").get("status") == "False"
                    and hpa_condition(rest, "nometrics", "ScalingActive"), 30, "ScalingActive=False")
    assert cond["reason"] == "FailedGetResourceMetric"
    assert "unable to get metrics for resource cpu" in cond["message"]
    assert hpa_condition(rest, "nometrics", "AbleToScale")["status"] == "True"
    assert replicas(rest, "nometrics") == 2


def test_scales_up_under_load_and_back_down(env: tuple[Rest, SimKubelet]) -> None:
    rest, kubelet = env
    load = kubelet.load  # type: ignore[attr-defined]
    web(rest, "load", 2)
    fast_down = {"scaleDown": {"stabilizationWindowSeconds": 0,
                               "policies": [{"type": "Percent", "value": 100, "periodSeconds": 1}]}}
    load["cpu"] = 150  # 150 % of the request against a 50 % target: three times the pods
    hpa(rest, "load", 2, 6, fast_down)
    wait_for(lambda: replicas(rest, "load") == 6, 90, "scaled up to 6 (3 x 2)")
    active = hpa_condition(rest, "load", "ScalingActive")
    assert active["status"] == "True" and active["reason"] == "ValidMetricFound"
    st = hpa_status(rest, "load")
    assert st["desiredReplicas"] == 6 and st.get("lastScaleTime")
    assert st["currentMetrics"][0]["resource"]["name"] == "cpu"
    assert st["currentMetrics"][0]["resource"]["current"]["averageUtilization"] >= 100
    load["cpu"] = 10  # 10 % of the request: few pods will do
    wait_for(lambda: replicas(rest, "load") < 6, 90, "scaled back down")
    load["cpu"] = 1  # one pod would do, but minReplicas is 2
    wait_for(lambda: replicas(rest, "load") == 2, 90, "down to minReplicas")
    wait_for(lambda: hpa_condition(rest, "load", "ScalingLimited").get("reason") == "TooFewReplicas", 30,
             "limited by minReplicas")
