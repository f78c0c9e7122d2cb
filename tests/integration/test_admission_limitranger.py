"""LimitRanger against a real API server: defaulting, min/max/ratio per container and pod, claims, bad input."""

from __future__ import annotations

from tests.harness.apicluster import APICluster


def make_ns(api: APICluster, name: str) -> str:
    code, body, _ = api.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 201, body
    return f"/api/v1/namespaces/{name}"


def limit_range(api: APICluster, ns: str, name: str, *items: dict) -> dict:
    code, body, _ = api.request("POST", ns + "/limitranges", {"metadata": {"name": name}, "spec": {"limits": list(items)}})
    assert code == 201, body
    return body


def pod(name: str, *containers: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": list(containers) or [{"name": "app", "image": "busybox:1.36"}]}}


def container(name: str, requests: dict | None = None, limits: dict | None = None) -> dict:
    c: dict = {"name": name, "image": "busybox:1.36"}
    if requests or limits:
        c["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return c


def test_defaults_fill_missing_requests_and_limits(api: APICluster) -> None:
    ns = make_ns(api, "lr-defaults")
    lr = limit_range(api, ns, "defaults", {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                                            "defaultRequest": {"cpu": "100m"}})
    # The API defaults the LimitRange itself: defaultRequest falls back to default.
    assert lr["spec"]["limits"][0]["defaultRequest"] == {"cpu": "100m", "memory": "256Mi"}
    code, created, _ = api.request("POST", ns + "/pods", pod("web"))
    assert code == 201, created
    res = created["spec"]["containers"][0]["resources"]
    assert res == {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}
    assert created["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app")
    assert created["status"]["qosClass"] == "Burstable"
    # Explicit values are kept; only the missing ones are filled.
    code, created, _ = api.request("POST", ns + "/pods", pod("own", container("app", {"cpu": "200m"}, {"cpu": "300m"})))
    assert code == 201, created
    res = created["spec"]["containers"][0]["resources"]
    assert res["requests"] == {"cpu": "200m", "memory": "256Mi"} and res["limits"] == {"cpu": "300m", "memory": "256Mi"}


def test_container_max_min_and_ratio(api: APICluster) -> None:
    ns = make_ns(api, "lr-bounds")
    limit_range(api, ns, "bounds", {"type": "Container", "max": {"cpu": "500m"}, "min": {"cpu": "50m"},
                                    "maxLimitRequestRatio": {"cpu": "4"}})
    code, body, _ = api.request("POST", ns + "/pods", pod("big", container("app", {"cpu": "300m"}, {"cpu": "1"})))
    assert code == 403, body
    assert body["reason"] == "Forbidden"
    assert body["message"] == 'pods "big" is forbidden: maximum cpu usage per Container is 500m, but limit is 1'
    code, body, _ = api.request("POST", ns + "/pods", pod("small", container("app", {"cpu": "10m"}, {"cpu": "20m"})))
    assert code == 403
    assert body["message"] == 'pods "small" is forbidden: minimum cpu usage per Container is 50m, but request is 10m'
    code, body, _ = api.request("POST", ns + "/pods", pod("ratio", container("app", {"cpu": "100m"}, {"cpu": "500m"})))
    assert code == 403
    assert body["message"] == ('pods "ratio" is forbidden: cpu max limit to request ratio per Container is 4, '
                               'but provided ratio is 5.000000')
    # Several violations are aggregated like upstream: [a, b].
    code, body, _ = api.request("POST", ns + "/pods", pod("two", container("a", {"cpu": "10m"}, {"cpu": "600m"})))
    assert code == 403 and body["message"].startswith('pods "two" is forbidden: [minimum cpu usage per Container is '
                                                      '50m, but request is 10m, maximum cpu usage per Container is 500m')
    # With no limit at all, the default (the max) is filled in and the pod fits.
    code, created, _ = api.request("POST", ns + "/pods", pod("ok", container("app", {"cpu": "200m"})))
    assert code == 201, created
    assert created["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "500m"}


def test_pod_level_max_sums_containers(api: APICluster) -> None:
    ns = make_ns(api, "lr-pod")
    limit_range(api, ns, "per-pod", {"type": "Pod", "max": {"memory": "1Gi"}})
    two = pod("pair", container("a", {"memory": "512Mi"}, {"memory": "768Mi"}),
              container("b", {"memory": "256Mi"}, {"memory": "512Mi"}))
    code, body, _ = api.request("POST", ns + "/pods", two)
    assert code == 403
    assert body["message"] == 'pods "pair" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 1280Mi'
    one = pod("single", container("a", {"memory": "512Mi"}, {"memory": "1Gi"}))
    code, body, _ = api.request("POST", ns + "/pods", one)
    assert code == 201, body


def test_claims_are_bounded(api: APICluster) -> None:
    ns = make_ns(api, "lr-pvc")
    limit_range(api, ns, "storage", {"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"},
                                     "min": {"storage": "1Gi"}})

    def claim(name: str, size: str) -> dict:
        return {"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                     "resources": {"requests": {"storage": size}}}}

    code, body, _ = api.request("POST", ns + "/persistentvolumeclaims", claim("huge", "5Gi"))
    assert code == 403
    assert body["message"] == ('persistentvolumeclaims "huge" is forbidden: maximum storage usage per '
                               'PersistentVolumeClaim is 2Gi, but request is 5Gi')
    code, body, _ = api.request("POST", ns + "/persistentvolumeclaims", claim("tiny", "100Mi"))
    assert code == 403 and "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 100Mi" in body["message"]
    code, body, _ = api.request("POST", ns + "/persistentvolumeclaims", claim("fits", "1Gi"))
    assert code == 201, body


def test_malformed_limit_ranges_are_invalid(api: APICluster) -> None:
    ns = make_ns(api, "lr-bad")
    cases = [
        ({"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}},
         'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1'),
        ({"type": "Container", "max": {"cpu": "lots"}},
         "spec.limits[0].max[cpu]: Invalid value: \"lots\": quantities must match the regular expression"),
        ({"type": "Pod", "default": {"cpu": "1"}},
         "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'"),
        ({"type": "Node", "max": {"cpu": "1"}},
         'spec.limits[0].type: Unsupported value: "Node"'),
        ({"type": "Container", "maxLimitRequestRatio": {"cpu": "500m"}},
         'spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "500m": ratio 500m is less than 1'),
    ]
    for item, text in cases:
        code, body, _ = api.request("POST", ns + "/limitranges", {"metadata": {"name": "bad"}, "spec": {"limits": [item]}})
        assert code == 422, body
        assert body["reason"] == "Invalid" and text in body["message"], body["message"]
    code, _, _ = api.request("GET", ns + "/limitranges/bad")
    assert code == 404
