"""Two schedulers with leader election: kill -9 the active one while pods keep coming; the standby
takes over once the lease expires, every pod is bound exactly once, no node is over-committed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from apimachinery import meta as m
from tests.harness.apicluster import APICluster
from tests.integration.test_scheduler import Env, SchedulerProcess, assert_no_overcommit, wait_for

LEASE, RENEW, RETRY = 3.0, 2.0, 0.5


def lease(env: Env) -> dict:
    return env.call("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler",
                    ok=(200, 404))


def holder(env: Env) -> str:
    return ((lease(env).get("spec") or {}).get("holderIdentity")) or ""


@pytest.mark.slow
def test_standby_takes_over_without_double_binding(tmp_path: Path) -> None:
    api = APICluster(tmp_path / "api")
    procs: list[SchedulerProcess] = []
    try:
        api.start()
        env = Env(api, "failover")
        for i in range(4):
            env.add_node(f"fo-{i}", cpu="16", memory="64Gi", pods="110")
        flags = ("--leader-elect", "--leader-elect-lease-duration", str(LEASE), "--leader-elect-renew-deadline",
                 str(RENEW), "--leader-elect-retry-period", str(RETRY), "--pod-initial-backoff-seconds", "0.2",
                 "--pod-max-backoff-seconds", "1")
        procs = [SchedulerProcess(api, tmp_path, f"scheduler-{i}", *flags) for i in (1, 2)]
        for p in procs:
            p.wait_ready()
        first = wait_for(lambda: holder(env), 20, "a leader")
        active = next(p for p in procs if first == f"{p.log_path.stem}_{p.pid}")
        standby = next(p for p in procs if p is not active)
        assert lease(env)["spec"]["leaseDurationSeconds"] == 3

        # Pods keep arriving before, during and after the failover.
        stop = threading.Event()
        created: list[str] = []

        def feeder() -> None:
            i = 0
            while not stop.is_set() and i < 300:
                env.add_pod(f"p{i:03d}", "100m", "128Mi")
                created.append(f"p{i:03d}")
                i += 1
                time.sleep(0.01)

        t = threading.Thread(target=feeder)
        t.start()
        wait_for(lambda: len(env.bound()) >= 40, 60, "the first scheduler at work")
        renewed = lease(env)["spec"]["renewTime"]
        killed_at = time.monotonic()
        active.kill()  # SIGKILL: no release of the lease
        new = wait_for(lambda: holder(env) if holder(env) not in ("", first) else "", LEASE * 4, "a new leader")
        takeover = time.monotonic() - killed_at
        assert new == f"scheduler-2_{standby.pid}" if standby.log_path.stem == "scheduler-2" else \
            new == f"scheduler-1_{standby.pid}"
        spec = lease(env)["spec"]
        assert spec["leaseTransitions"] >= 1 and spec["renewTime"] > renewed
        assert m.parse_rfc3339(spec["acquireTime"]) <= m.parse_rfc3339(spec["renewTime"])
        t.join(60)
        stop.set()
        wait_for(lambda: len(env.bound()) == len(created), 90, "all pods bound")
        print(f"takeover after kill -9: {takeover:.2f}s (lease duration {LEASE}s)")

        # Exactly one "bound" per pod across both logs, and it names the node the API server has.
        bound_logs = [r for p in procs for r in p.records() if r.get("event") == "bound"]
        per_pod = Counter(r["pod"] for r in bound_logs)
        assert not [k for k, n in per_pod.items() if n > 1], "a pod was logged as bound twice"
        actual = env.bound()
        for r in bound_logs:
            name = r["pod"].split("/", 1)[1]
            assert actual[name] == r["node"], r
        # Bindings the API server refused (409: already bound) are logged as rejected, never as bound.
        rejected = [r for p in procs for r in p.records() if r.get("event") == "bind_rejected"]
        assert all(r["code"] == 409 and r["pod"].split("/", 1)[1] in actual for r in rejected)
        # A pod bound without a "bound" line can only be one whose 201 the killed scheduler never read.
        unlogged = {f"failover/{n}" for n in actual} - set(per_pod)
        assert len(unlogged) <= 64, unlogged
        assert any(r.get("event") == "leader_started" for r in standby.records())
        assert_no_overcommit(env)
        # SIGTERM: the leader stops cleanly and gives the lease up, so a successor need not wait for expiry.
        assert standby.stop() == 0
        assert holder(env) == ""
        assert any(r.get("event") == "leader_released" for r in standby.records())
    finally:
        for p in procs:
            p.kill()
        api.close()
