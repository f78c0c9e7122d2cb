"""Two leader-elected controller-managers: kill -9 the active one in the middle of a rollout; the standby
takes the lease over and finishes the rollout — one new ReplicaSet, never more pods than replicas +
maxSurge, never fewer ready than replicas - maxUnavailable (observed through a watch). And a replica
that loses its lease stops its controllers, then leads again with fresh ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.apicluster import APICluster
from tests.integration.test_controller_deployment import deployment, replica_sets, rolled_out, set_image
from tests.integration.test_controller_support import (ControllerManagerProcess, PodWatch, Rest, SimKubelet,
                                                       pod_template, wait_for)

NS = "failover"
NODES = ["fo-n1", "fo-n2", "fo-n3"]
LEASE, RENEW, RETRY = 3.0, 2.0, 0.5
D_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments"
LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager"


def holder(rest: Rest) -> str:
    return ((rest.get(LEASE_PATH) or {}).get("spec") or {}).get("holderIdentity") or ""


@pytest.mark.slow
def test_standby_finishes_a_rollout_after_kill_9(api: APICluster, tmp_path: Path) -> None:
    rest = Rest(api)
    rest.namespace(NS)
    for n in NODES:
        rest.node(n)
    kubelet = SimKubelet(api, NODES, ready_delay=0.6).start()
    flags = ("--leader-elect", "--leader-elect-lease-duration", str(LEASE), "--leader-elect-renew-deadline",
             str(RENEW), "--leader-elect-retry-period", str(RETRY), "--controllers", "replicaset,deployment")
    procs = [ControllerManagerProcess(api, tmp_path, f"cm-{i}", *flags) for i in (1, 2)]
    watch = PodWatch(api, NS, {"app": "ha"}).start()
    try:
        for p in procs:
            p.wait_ready()
        first = wait_for(lambda: holder(rest), 30, "a leader")
        active = next(p for p in procs if p.identity == first)
        standby = next(p for p in procs if p is not active)
        rest.call("POST", D_PATH, deployment("ha", 12, surge=2, unavailable=1, ns=NS))
        wait_for(lambda: rolled_out(rest, "ha", NS), 60, "the first rollout")

        watch.arm()
        set_image(rest, "ha", "nginx:2", NS)

        def mid_rollout() -> bool:
            rss = replica_sets(rest, "ha", NS)
            new = [rs for rs in rss if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"]
            return bool(new) and 2 <= ((new[0].get("status") or {}).get("availableReplicas") or 0) < 12

        wait_for(mid_rollout, 60, "a rollout in progress")
        active.kill()  # SIGKILL: the lease is not released
        assert not rolled_out(rest, "ha", NS)
        wait_for(lambda: holder(rest) == standby.identity, LEASE * 6, "the standby to take over")
        wait_for(lambda: rolled_out(rest, "ha", NS), 90, "the standby to finish the rollout")

        rss = replica_sets(rest, "ha", NS)
        assert len(rss) == 2, [rs["metadata"]["name"] for rs in rss]  # no duplicate ReplicaSet
        assert sorted(rs["spec"]["replicas"] for rs in rss) == [0, 12]
        assert watch.max_pods <= 14, watch.max_pods  # replicas + maxSurge
        assert watch.min_ready is not None and watch.min_ready >= 11, watch.min_ready  # replicas - maxUnavailable
        assert any(r.get("event") == "controllers_started" for r in standby.records())
        assert not standby.errors(), standby.errors()
    finally:
        watch.stop()
        for p in procs:
            p.kill()
        kubelet.stop()


def test_a_replica_that_loses_the_lease_stops_and_leads_again_later(api: APICluster, tmp_path: Path) -> None:
    rest = Rest(api)
    ns = "relead"
    rest.namespace(ns)
    kubelet = SimKubelet(api, ["rl-n1"]).start()
    rest.node("rl-n1")
    flags = ("--leader-elect", "--leader-elect-lease-duration", str(LEASE), "--leader-elect-renew-deadline",
             str(RENEW), "--leader-elect-retry-period", str(RETRY), "--controllers", "replicaset",
             "--leader-elect-resource-name", "cm-relead")
    cm = ControllerManagerProcess(api, tmp_path, "cm-solo", *flags)
    lease_path = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/cm-relead"
    try:
        cm.wait_ready()
        wait_for(lambda: ((rest.get(lease_path) or {}).get("spec") or {}).get("holderIdentity") == cm.identity, 30,
                 "leading")
        # Someone else takes the lease: the replica must stop its controllers and campaign again.
        lease = rest.get(lease_path)
        lease["spec"]["holderIdentity"] = "intruder"
        lease["spec"]["renewTime"] = lease["spec"]["acquireTime"] = "2030-01-01T00:00:00.000000Z"
        rest.call("PUT", lease_path, lease)
        wait_for(lambda: any(r.get("event") == "leader_lost" for r in cm.records()), 30, "leadership lost")
        # The intruder never renews: after the lease duration the replica leads again with fresh controllers.
        wait_for(lambda: ((rest.get(lease_path) or {}).get("spec") or {}).get("holderIdentity") == cm.identity, 30,
                 "leading again")
        assert sum(1 for r in cm.records() if r.get("event") == "controllers_started") == 2
        rest.call("POST", f"/apis/apps/v1/namespaces/{ns}/replicasets", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "again"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "again"}},
                     "template": pod_template({"app": "again"})}})
        wait_for(lambda: ((rest.get(f"/apis/apps/v1/namespaces/{ns}/replicasets/again") or {}).get("status") or {})
                 .get("readyReplicas") == 2, 30, "the second term's controllers at work")
        assert not cm.errors(), cm.errors()
    finally:
        cm.stop()
        kubelet.stop()
