#!/usr/bin/env python3
"""Controller-manager benchmark: a 1000-replica Deployment on 100 fake nodes, from apply to every pod Ready,
then a rolling update of it.

Topology (real processes on 127.0.0.1, from tests/harness): a 1-member store, one API server (HTTPS,
bearer token), the scheduler (``python -m scheduler``) and the controller-manager (``python -m
controllers``, every controller on). 100 Node objects are created through the API and reported Ready;
the kubelets are simulated in this process (``SimKubelet`` of tests/integration/test_controller_support.py:
through the API only, it marks each pod the scheduler bound Running and Ready — one status patch a pod —,
finishes the deletion of terminating pods, and renews the 100 node Leases every 10 s).

Phases:
  scale_up   POST the Deployment (replicas 1000, RollingUpdate 25%/25%), wait until 1000 pods are Ready
             (as a watch on the pods sees them) and the Deployment reports 1000 available.
  rollout    change the image; wait until ``kubectl rollout status`` would say done (observedGeneration,
             updated = replicas = available = 1000). A watch on the pods records, after every event, how
             many pods exist (not terminating) and how many are Ready: the highest unavailable count
             (1000 - fewest Ready) and the most pods at once, against maxUnavailable 250 and maxSurge 250.

Output: JSON lines on stdout, one per measurement ({"bench": "deployment_scale", "phase", "metric", "value",
"unit", ...}); progress on stderr. Target: scale_up <= 30 s.

Usage: python3 bench/deployment_scale.py [--nodes 100] [--replicas 1000] [--timeout 300] [--keep-dir]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.kvstore_bench import CpuMeter  # noqa: E402
from tests.harness.apicluster import APICluster  # noqa: E402
from tests.integration.test_controller_support import (ControllerManagerProcess, PodWatch, Rest,  # noqa: E402
                                                       SimKubelet, pod_template)
from tests.integration.test_scheduler import SchedulerProcess  # noqa: E402

NS = "bench"
D_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(phase: str, metric: str, value: Any, unit: str, **extra: Any) -> None:
    print(json.dumps({"bench": "deployment_scale", "phase": phase, "metric": metric, "value": value, "unit": unit,
                      **extra}), flush=True)


def wait(cond: Any, timeout: float, what: str, interval: float = 0.05) -> float:
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


class Meters:
    """CPU cores used per component (and by this process, which simulates the kubelets and watches)."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.meters = {name: CpuMeter(p) for name, p in pids.items()}
        self.all = CpuMeter([p for group in pids.values() for p in group])

    def __enter__(self) -> Meters:
        for meter in (*self.meters.values(), self.all):
            meter.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for meter in (*self.meters.values(), self.all):
            meter.__exit__(*exc)

    def by_component(self) -> dict[str, float]:
        out = {name: round(meter.server, 2) for name, meter in self.meters.items()}
        out["bench_process"] = round(self.all.client, 2)
        # Everything else on the host: other work sharing the cores makes a run slower and noisier.
        out["background"] = round(self.all.background, 2)
        return out

    def total(self) -> float:
        return round(self.all.server + self.all.client, 2)


def deployment_done(rest: Rest, replicas: int) -> bool:
    d = rest.get(f"{D_PATH}/app") or {}
    st = d.get("status") or {}
    return (st.get("observedGeneration", 0) >= (d.get("metadata") or {}).get("generation", 1)
            and st.get("updatedReplicas") == replicas and st.get("replicas") == replicas
            and st.get("availableReplicas") == replicas)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=300.0, help="bound on each phase (seconds)")
    ap.add_argument("--keep-dir", action="store_true")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="deployment-scale-"))
    api = APICluster(root / "api")
    procs: list[Any] = []
    kubelet: SimKubelet | None = None
    watch: PodWatch | None = None
    try:
        log(f"starting store + API server in {root}")
        api.start()
        rest = Rest(api)
        rest.namespace(NS)
        nodes = [f"fake-{i:03d}" for i in range(args.nodes)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: rest.node(n, cpu="64", memory="256Gi", pods="110"), nodes))
        log(f"{len(nodes)} nodes ready; starting scheduler, controller-manager, simulated kubelets")
        sched = SchedulerProcess(api, root, "scheduler", "--no-scheduled-events")
        cm = ControllerManagerProcess(api, root, "controller-manager")
        procs = [sched, cm]
        sched.wait_ready()
        cm.wait_ready()
        kubelet = SimKubelet(api, nodes, bind=False, lease_interval=10.0).start()
        watch = PodWatch(api, NS, {"app": "bench"}).start()
        pids = {"store": [mb.proc.pid for mb in api.store.members if mb.proc is not None],
                "apiserver": [p.pid for p in api.procs if p is not None],
                "scheduler": [sched.pid], "controller-manager": [cm.pid]}
        n = args.replicas
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": NS},
                "spec": {"replicas": n, "selector": {"matchLabels": {"app": "bench"}},
                         "template": pod_template({"app": "bench"}, image="bench:1",
                                                  resources={})}}
        body["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "10m",
                                                                                       "memory": "16Mi"}}

        log(f"phase scale_up: Deployment of {n} replicas")
        with Meters(pids) as cpu:
            t0 = time.monotonic()
            rest.call("POST", D_PATH, body)
            marks: dict[str, float] = {}

            def progress() -> bool:
                # When the watch first saw all pods created, all bound by the scheduler, all Ready.
                for what, count in (("created", watch.existing), ("bound", watch.bound), ("ready", watch.ready)):
                    if what not in marks and count >= n:
                        marks[what] = time.monotonic() - t0
                return "ready" in marks

            wait(progress, args.timeout, f"{n} ready pods", 0.02)
            t_ready = marks["ready"]
            wait(lambda: deployment_done(rest, n), args.timeout, "the Deployment to report them", 0.05)
            t_status = time.monotonic() - t0
        emit("scale_up", "all_pods_ready", round(t_ready, 2), "s", replicas=n, nodes=args.nodes, target_s=30,
             met=t_ready <= 30)
        emit("scale_up", "deployment_available", round(t_status, 2), "s", replicas=n)
        emit("scale_up", "pods_created", len(watch.added), "pods", replicas=n)
        for what in ("created", "bound"):
            emit("scale_up", f"all_pods_{what}", round(marks.get(what, t_ready), 2), "s", replicas=n)
        emit("scale_up", "cpu", cpu.total(), "cores", **cpu.by_component())
        log(f"scale_up: {n} ready after {t_ready:.1f}s, deployment available after {t_status:.1f}s")

        log("phase rollout: new image")
        watch.arm()
        with Meters(pids) as cpu:
            t0 = time.monotonic()
            rest.call("PATCH", f"{D_PATH}/app", {"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "bench:2"}]}}}}, content_type="application/strategic-merge-patch+json")
            wait(lambda: deployment_done(rest, n), args.timeout, "the rollout", 0.05)
            t_roll = time.monotonic() - t0
        max_unavailable, max_surge = n // 4, -(-n // 4)
        highest_unavailable = n - (watch.min_ready if watch.min_ready is not None else 0)
        emit("rollout", "duration", round(t_roll, 2), "s", replicas=n)
        emit("rollout", "highest_unavailable", highest_unavailable, "pods", max_unavailable=max_unavailable,
             met=highest_unavailable <= max_unavailable)
        emit("rollout", "most_pods", watch.max_pods, "pods", limit=n + max_surge, met=watch.max_pods <= n + max_surge)
        emit("rollout", "cpu", cpu.total(), "cores", **cpu.by_component())
        log(f"rollout: {t_roll:.1f}s, highest unavailable {highest_unavailable} (max {max_unavailable}), "
            f"most pods {watch.max_pods} (max {n + max_surge})")
        if kubelet.errors:
            log(f"simulated kubelet errors: {kubelet.errors[:5]}")
    finally:
        if watch is not None:
            watch.stop()
        if kubelet is not None:
            kubelet.stop()
        for p in procs:
            p.stop()
        api.close()
        if args.keep_dir:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
