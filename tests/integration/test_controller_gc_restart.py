"""Dependents whose owner was deleted while no garbage collector ran are collected once one starts again
(its first lists rebuild the graph; the missing owner is verified absent with a live GET)."""

from __future__ import annotations

from pathlib import Path

from tests.harness.apicluster import APICluster
from tests.integration.test_controller_gc import configmap, exists, ref
from tests.integration.test_controller_support import ControllerManagerProcess, Rest, wait_for

NS = "gc-restart"
CM = f"/api/v1/namespaces/{NS}/configmaps"


def test_dangling_dependents_are_collected_after_a_restart(api: APICluster, tmp_path: Path) -> None:
    rest = Rest(api)
    rest.namespace(NS)
    cm = ControllerManagerProcess(api, tmp_path, "cm-a", "--controllers", "garbagecollector")
    try:
        cm.wait_ready()
        owner = configmap(rest, "owner", ns=NS)
        configmap(rest, "dependent", [ref(owner)], ns=NS)
        alive = configmap(rest, "alive-owner", ns=NS)
        configmap(rest, "still-owned", [ref(alive)], ns=NS)
    finally:
        cm.kill()  # kill -9: nothing is flushed or handed over
    rest.call("DELETE", f"{CM}/owner")  # nobody collects the dependent now
    assert exists(rest, f"{CM}/dependent")
    cm = ControllerManagerProcess(api, tmp_path, "cm-b", "--controllers", "garbagecollector")
    try:
        cm.wait_ready()
        wait_for(lambda: not exists(rest, f"{CM}/dependent"), 30, "the dangling dependent collected")
        assert exists(rest, f"{CM}/still-owned") and exists(rest, f"{CM}/alive-owner")
        assert not cm.errors(), cm.errors()
    finally:
        cm.stop()
