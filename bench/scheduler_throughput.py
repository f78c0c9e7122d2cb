"""Scheduler throughput: 1000 nodes, 10,000 pending pods, the whole stack as real processes.

    python3 bench/scheduler_throughput.py [--nodes 1000] [--pods 10000] [--mode live,backlog]
                                          [--concurrency 32] [--timeout 300] [--keep-dir]

A store member, an API server (HTTPS) and one scheduler (``python -m scheduler``) are started
through ``tests/harness``; nodes are Node objects made through the API (32 CPU, 128 GiB, 110 pods,
Ready, spread over 10 zones). Pods request 100m CPU / 128 MiB and belong to one ReplicaSet (so the
owner-spreading score runs too).

Modes:
* ``live``: the scheduler runs while the pods are created as fast as ``--concurrency`` clients
  can; time from each pod's creation (the API server's answer) to its binding (seen on a watch).
* ``backlog``: the pods are all created first, then the scheduler starts; it drains the queue.
  This isolates the scheduler from the load of creating pods.

stdout: JSON lines, one per measurement (``{"bench","mode","metric","value","unit",...}``), incl.
pods scheduled per second, p50/p99 creation→binding, and the CPU (cores) each process used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from apiclient.config import load_config  # noqa: E402
from apiclient.rest import NAMESPACES, NODES, PODS, RESTClient  # noqa: E402
from apimachinery.errors import StatusError  # noqa: E402
from tests.harness.apicluster import APICluster  # noqa: E402
from tests.integration.test_scheduler import SchedulerProcess  # noqa: E402

NS = "bench"
OWNER_UID = "00000000-0000-0000-0000-00000000be11"


def emit(mode: str, metric: str, value: Any, unit: str, **extra: Any) -> None:
    print(json.dumps({"bench": "scheduler_throughput", "mode": mode, "metric": metric, "value": value, "unit": unit,
                      **extra}), flush=True)


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def host_busy_seconds() -> float:
    """CPU seconds all processes on the host used so far (user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def node_body(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"node-{i:04d}"
    alloc = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "500Gi"}
    meta = {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": f"zone-{i % 10}"}}
    status = {"capacity": alloc, "allocatable": alloc,
              "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta}, {"status": status}


def pod_body(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{i:05d}", "namespace": NS, "labels": {"app": "bench"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "bench",
                                              "uid": OWNER_UID, "controller": True}]},
            "spec": {"containers": [{"name": "c", "image": "pause",
                                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}


async def bounded(concurrency: int, jobs: list[Any]) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(job: Any) -> None:
        async with sem:
            await job()

    await asyncio.gather(*(one(j) for j in jobs))


def metric_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


async def wait_until(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.1)
    return False


async def run_mode(mode: str, api: APICluster, root: Path, args: argparse.Namespace) -> None:
    cfg = load_config(api.kubeconfig)
    client = RESTClient(cfg, max_connections=args.concurrency + 8, timeout=60)
    watch_client = RESTClient(cfg, timeout=60)
    created: dict[str, float] = {}
    bound: dict[str, float] = {}
    sched: SchedulerProcess | None = None
    pids = {"apiserver": api.procs[0].pid, "store": api.store.members[0].proc.pid, "bench": os.getpid()}  # type: ignore[union-attr]
    try:
        try:
            await client.create(NAMESPACES, {"metadata": {"name": NS}})
        except StatusError as err:
            if err.code != 409:
                raise
        listed = await client.list(PODS, namespace=NS)
        rv = listed["metadata"]["resourceVersion"]

        async def watch() -> None:
            nonlocal rv
            while len(bound) < args.pods:
                try:
                    async for ev in watch_client.watch(PODS, namespace=NS, resource_version=rv, allow_bookmarks=True):
                        obj = ev["object"]
                        rv = obj["metadata"].get("resourceVersion", rv)
                        name = obj["metadata"].get("name")
                        if ev["type"] != "BOOKMARK" and (obj.get("spec") or {}).get("nodeName") and name not in bound:
                            bound[name] = time.monotonic()
                except Exception as exc:  # noqa: BLE001 - resume the bench's own watch
                    print(f"# watch restarted: {exc!r}", file=sys.stderr)
                    await asyncio.sleep(0.2)

        watcher = asyncio.create_task(watch())

        def start_scheduler() -> SchedulerProcess:
            return SchedulerProcess(api, root, f"scheduler-{mode}", "--log-level", args.scheduler_log_level,
                                    *args.scheduler_args)

        def ready() -> bool:
            return sched is not None and sched.get("/readyz")[0] == 200

        if mode == "live":
            sched = start_scheduler()
            if not await wait_until(ready, 60):
                raise RuntimeError(f"scheduler not ready; see {sched.log_path}")
            pids["scheduler"] = sched.proc.pid

        async def create(i: int) -> None:
            body = pod_body(i)
            await client.create(PODS, body, namespace=NS)
            created[body["metadata"]["name"]] = time.monotonic()

        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        host0 = host_busy_seconds()
        t0 = time.monotonic()
        await bounded(args.concurrency, [lambda i=i: create(i) for i in range(args.pods)])
        t_created = time.monotonic()
        emit(mode, "pods_created_per_second", round(args.pods / (t_created - t0), 1), "pods/s")
        if mode == "backlog":
            sched = start_scheduler()
            if not await wait_until(ready, 120):
                raise RuntimeError(f"scheduler not ready; see {sched.log_path}")
            pids["scheduler"] = sched.proc.pid
            cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
            host0 = host_busy_seconds()
            t0 = time.monotonic()  # from the moment the scheduler is ready with its caches filled
        finished = await wait_until(lambda: len(bound) >= args.pods, args.timeout)
        t_end = max(bound.values()) if bound else time.monotonic()
        cpu1 = {k: cpu_seconds(p) for k, p in pids.items()}
        host1 = host_busy_seconds()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        n = len(bound)
        wall = t_end - t0
        emit(mode, "pods_bound", n, "pods", complete=finished, nodes=args.nodes)
        emit(mode, "pods_scheduled_per_second", round(n / wall, 1) if wall > 0 else 0, "pods/s", wall_s=round(wall, 2))
        times = sorted(bound.values())
        if len(times) > 20:
            a, b = times[len(times) // 10], times[len(times) * 9 // 10]
            emit(mode, "steady_pods_scheduled_per_second", round((len(times) * 8 // 10) / (b - a), 1) if b > a else 0,
                 "pods/s", window="10%-90% of bindings")
        if mode == "live":
            lat = [bound[k] - created[k] for k in bound if k in created]
            emit(mode, "creation_to_binding_p50", round(percentile(lat, 0.50) * 1000, 1), "ms")
            emit(mode, "creation_to_binding_p99", round(percentile(lat, 0.99) * 1000, 1), "ms")
        ours = 0.0
        for k in pids:
            used = cpu1[k] - cpu0[k]
            ours += used
            emit(mode, "cpu", round(used / wall, 2) if wall > 0 else 0, "cores", process=k,
                 ms_per_pod=round(used / max(n, 1) * 1000, 2))
        # Everything else on the host in the same time (other work disturbs the figures).
        emit(mode, "background_cpu", round(max(0.0, host1 - host0 - ours) / wall, 2) if wall > 0 else 0, "cores",
             host_cores=os.cpu_count())
        if sched is not None:
            text = sched.get("/metrics")[1]
            count = metric_value(text, 'scheduler_scheduling_attempt_duration_seconds_count{result="scheduled"}')
            total = metric_value(text, 'scheduler_scheduling_attempt_duration_seconds_sum{result="scheduled"}')
            if count == count and count > 0:
                emit(mode, "decision_time_mean", round(total / count * 1e6, 1), "us", attempts=int(count))
            bcount = metric_value(text, "scheduler_binding_duration_seconds_count")
            if bcount == bcount and bcount > 0:
                emit(mode, "binding_request_mean", round(metric_value(text, "scheduler_binding_duration_seconds_sum")
                                                         / bcount * 1000, 1), "ms")
            conflicts = metric_value(text, 'scheduler_bindings_total{result="conflict"}')
            emit(mode, "bind_conflicts", 0 if conflicts != conflicts else int(conflicts), "bindings")
            emit(mode, "events_dropped", int(metric_value(text, "scheduler_events_dropped")), "events")
        # Over-commit check: a node never holds more pods than it allows (110).
        per_node: dict[str, int] = {}
        for p in (await client.list(PODS, namespace=NS))["items"]:
            node = (p.get("spec") or {}).get("nodeName")
            if node:
                per_node[node] = per_node.get(node, 0) + 1
        emit(mode, "max_pods_on_a_node", max(per_node.values()) if per_node else 0, "pods",
             nodes_used=len(per_node))
    finally:
        if sched is not None:
            sched.stop()
        # Clean the namespace's pods for the next mode (grace 0: no kubelet runs here).
        try:
            await client.request("DELETE", PODS.path(NS), params={"gracePeriodSeconds": 0}, timeout=300)
        except Exception as exc:  # noqa: BLE001
            print(f"# cleanup failed: {exc!r}", file=sys.stderr)
        await client.close()
        await watch_client.close()


async def make_nodes(api: APICluster, count: int, concurrency: int) -> None:
    async with RESTClient(load_config(api.kubeconfig), max_connections=concurrency + 4) as client:
        async def one(i: int) -> None:
            body, status = node_body(i)
            await client.create(NODES, body)
            await client.patch(NODES, body["metadata"]["name"], status, subresource="status")

        t0 = time.monotonic()
        await bounded(concurrency, [lambda i=i: one(i) for i in range(count)])
        emit("setup", "nodes_created", count, "nodes", seconds=round(time.monotonic() - t0, 2))


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="sched-bench-"))
    api = APICluster(root / "api")
    try:
        api.start()
        await make_nodes(api, args.nodes, args.concurrency)
        for mode in args.mode.split(","):
            await run_mode(mode.strip(), api, root, args)
    finally:
        api.close()
        if args.keep_dir:
            print(f"# kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--mode", default="live,backlog", help="live, backlog or both (comma-separated)")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent create requests")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for all bindings, per mode")
    p.add_argument("--scheduler-log-level", default="INFO")
    p.add_argument("--scheduler-arg", dest="scheduler_args", action="append", default=[],
                   help="extra scheduler flag (repeatable), e.g. --scheduler-arg=--no-scheduled-events")
    p.add_argument("--keep-dir", action="store_true")
    args = p.parse_args()
    try:
        import uvloop

        uvloop.run(main_async(args))
    except ImportError:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
