"""Taints, tolerations and node selection as the node-lifecycle and DaemonSet controllers read them."""

from __future__ import annotations

import pytest

from controllers import nodeutil as nu

TAINT = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


@pytest.mark.parametrize(("toleration", "expected"), [
    ({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}, True),
    ({"key": "node.kubernetes.io/unreachable", "operator": "Exists"}, True),  # every effect
    ({"operator": "Exists"}, True),  # every key
    ({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoSchedule"}, False),
    ({"key": "other", "operator": "Exists"}, False),
    ({"key": "node.kubernetes.io/unreachable", "value": ""}, True),  # Equal by default, empty value
    ({"key": "node.kubernetes.io/unreachable", "value": "x"}, False),
    ({"value": "x"}, False),  # an empty key needs Exists
])
def test_tolerates(toleration: dict, expected: bool) -> None:
    assert nu.tolerates(toleration, TAINT) is expected


def test_untolerated_by_effect() -> None:
    taints = [TAINT, {"key": "a", "value": "1", "effect": "NoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}]
    tols = [{"key": "a", "operator": "Equal", "value": "1"}]
    assert nu.untolerated(tols, taints, ("NoSchedule", "NoExecute")) == [TAINT]


def node(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}}


def pod(node_selector: dict | None = None, terms: list | None = None) -> dict:
    spec: dict = {}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if terms is not None:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                             {"nodeSelectorTerms": terms}}}
    return {"spec": spec}


def test_node_selector_and_required_affinity() -> None:
    n = node("n1", zone="a", disk="ssd", cores="8")
    assert nu.required_affinity_matches(pod(), n)
    assert nu.required_affinity_matches(pod({"zone": "a"}), n)
    assert not nu.required_affinity_matches(pod({"zone": "b"}), n)
    assert nu.required_affinity_matches(pod(terms=[{"matchExpressions": [
        {"key": "zone", "operator": "In", "values": ["a", "b"]},
        {"key": "gpu", "operator": "DoesNotExist"},
        {"key": "cores", "operator": "Gt", "values": ["4"]}]}]), n)
    assert not nu.required_affinity_matches(pod(terms=[{"matchExpressions": [
        {"key": "cores", "operator": "Lt", "values": ["4"]}]}]), n)
    # Terms are ORed; an empty term matches nothing; matchFields on the node name.
    assert nu.required_affinity_matches(pod(terms=[{}, {"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]), n)
    assert not nu.required_affinity_matches(pod(terms=[{"matchFields": [
        {"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}]), n)
    assert not nu.required_affinity_matches(pod(terms=[]), n)


def test_ready_status() -> None:
    assert nu.ready_status({}) == "Unknown"
    assert nu.ready_status({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}) == "False"
