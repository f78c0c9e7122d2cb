"""The HPA's arithmetic as upstream's replica calculator and behavior normalisation do it."""

from __future__ import annotations

import pytest

from controllers import hpa as h

SCALE_UP = {"selectPolicy": "Max", "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                                {"type": "Percent", "value": 100, "periodSeconds": 15}]}
SCALE_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def calc(usage: dict[str, float], *, current: int, unready: set[str] = frozenset(), missing: set[str] = frozenset(),
         target: float = 50) -> int:
    pods = set(usage) | set(unready) | set(missing)
    requests = {p: 100.0 for p in pods}
    ready = set(usage) - set(unready)
    return h.replicas_for_utilization(current=current, usage=usage, requests=requests, ready=ready,
                                      unready=set(unready), missing=set(missing), target=target, tolerance=0.1)[0]


def test_utilization_ratio_and_tolerance() -> None:
    assert calc({"a": 100, "b": 100}, current=2) == 4  # 100 % vs 50 %: twice the pods
    assert calc({"a": 52, "b": 53}, current=2) == 2  # within 10 %
    assert calc({"a": 10, "b": 10, "c": 10, "d": 10}, current=4) == 1
    with pytest.raises(h.MetricError):
        calc({}, current=2, missing={"a"})


def test_missing_and_unready_pods_are_conservative() -> None:
    # Scale down: a pod without metrics is assumed at the target, which damps the scale-down.
    assert calc({"a": 10, "b": 10}, current=3, missing={"c"}) == 2
    # Scale up: unready pods count as idle, so fewer pods are added.
    assert calc({"a": 100}, current=2, unready={"b"}) == 2


def test_average_value() -> None:
    assert h.replicas_for_average_value(current=2, usage={"a": 300, "b": 300}, target=200, tolerance=0.1)[0] == 3
    assert h.replicas_for_average_value(current=2, usage={"a": 205, "b": 200}, target=200, tolerance=0.1)[0] == 2


def test_stabilization_windows() -> None:
    history = [(90.0, 8), (95.0, 6)]
    # Scale-down window 20 s: the highest recommendation in it wins.
    assert h.stabilize(history, now=100, current=8, proposed=3, up_window=0, down_window=20) == 8
    assert h.stabilize(history, now=200, current=8, proposed=3, up_window=0, down_window=20) == 3
    # Scale-up window: the lowest recommendation in it wins.
    assert h.stabilize([(95.0, 4)], now=100, current=2, proposed=9, up_window=10, down_window=0) == 4


def test_rate_limits() -> None:
    assert h.rate_limit([], now=0, current=2, desired=20, rules=SCALE_UP, scale_up=True) == 6  # max(2+4, 2*2)
    assert h.rate_limit([], now=0, current=10, desired=40, rules=SCALE_UP, scale_up=True) == 20  # 100 %
    assert h.rate_limit([(95.0, 4)], now=100, current=6, desired=40, rules=SCALE_UP, scale_up=True) == 6
    assert h.rate_limit([], now=0, current=10, desired=1, rules=SCALE_DOWN, scale_up=False) == 1
    half = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 50, "periodSeconds": 15}]}
    assert h.rate_limit([], now=0, current=10, desired=1, rules=half, scale_up=False) == 5
    assert h.rate_limit([], now=0, current=10, desired=1, rules={"selectPolicy": "Disabled"}, scale_up=False) == 10


def test_quantities() -> None:
    assert h.resource_quantity("250m", "cpu") == 250
    assert h.resource_quantity("12345678n", "cpu") == 13
    assert h.resource_quantity("64Mi", "memory") == 64 * 1024 * 1024
    pod = {"spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "100m", "memory": "1Mi"}}},
                                   {"name": "sidecar", "resources": {"requests": {"cpu": "0.2"}}}]}}
    assert h.pod_request(pod, "cpu") == 300
    assert h.pod_request(pod, "memory") == "sidecar"  # the container upstream's error names
