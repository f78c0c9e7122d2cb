#!/usr/bin/env python3
"""Pod startup latency: created → Running and created → Ready, p50/p99, against the Kubernetes SLO (p99 ≤ 5 s).

Two cases, each on a fresh 1-member store + 1 API server (``tests/harness/apicluster.py``, HTTPS, token):

  process  one kubelet, ``--runtime process``; ``--process-pods`` (100) pods, each a ``sleep 3600`` container
           with an exec readiness probe (``true``, periodSeconds 10, timeoutSeconds 5): Running when the
           process started, Ready after the first probe succeeded.
  fake     one kubelet, ``--runtime fake --fake-nodes 100`` (``--fake-nodes``); ``--fake-pods`` (3000) pods.

Pods get ``spec.nodeName`` preset (round-robin over the nodes) unless ``--scheduler``, which starts a
``python -m scheduler`` process and leaves placement to it (the figures then include scheduling).
Pods are created open loop at ``--rate`` pods/s (request *i* at t0 + i/rate, 32 in flight at most);
a watch on the namespace, opened before the first create, records when each pod was first seen
Running and first seen with Ready=True. Latency = that time − the time its create was sent (client
clock), so it includes the create call, the kubelet's watch, its work, the status write and the
watch delivery back — what a user waiting for the pod would see.

Output: JSON lines on stdout, one per measurement
``{"bench": "pod_startup", "case", "metric", "value", "unit", "pods", "nodes", "rate", "placement", ...}``
and one ``"bench": "slo"`` line per case and transition. Progress goes to stderr.

Usage: python3 bench/pod_startup.py [--cases process,fake] [--process-pods 100] [--fake-pods 3000]
                                    [--fake-nodes 100] [--rate 50] [--scheduler] [--keep-dir]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from apiclient.config import load_config  # noqa: E402
from apiclient.rest import PODS, RESTClient  # noqa: E402
from bench.kvstore_bench import CpuMeter, percentile  # noqa: E402
from kubelet.runtime.process import kill_all  # noqa: E402
from tests.harness.apicluster import APICluster  # noqa: E402
from tests.harness.kvcluster import free_ports  # noqa: E402

NS = "startup"
SLO_SECONDS = 5.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "pod_startup", **fields}), flush=True)


def start_process(root: Path, name: str, args: list[str]) -> subprocess.Popen[bytes]:
    out = open(root / f"{name}.log", "ab")
    try:
        return subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", "PILOT_LOG_LEVEL": "WARNING"})
    finally:
        out.close()


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def pod_body(i: int, node: str | None, *, runtime: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox:1.36",
                                 "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}
    if runtime == "process":
        container["command"] = ["sleep", "3600"]
        # timeoutSeconds 5: on a 2-core machine shared with other work a fork+exec can take over the default 1 s,
        # and a timed-out first probe means Ready only a period (10 s) later.
        container["readinessProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 10, "timeoutSeconds": 5}
    spec: dict[str, Any] = {"containers": [container], "terminationGracePeriodSeconds": 0}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i:05d}", "namespace": NS}, "spec": spec}


async def wait_nodes(client: RESTClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    want = set(names)
    while time.monotonic() < deadline:
        nodes = await client.list("/api/v1/nodes")
        ready = {n["metadata"]["name"] for n in nodes.get("items") or []
                 if any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (n.get("status") or {}).get("conditions") or [])}
        if want <= ready:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"nodes not Ready after {timeout}s")


async def measure(client: RESTClient, *, pods: int, nodes: list[str] | None, rate: float, runtime: str,
                  timeout: float) -> tuple[dict[str, float], dict[str, float], dict[str, float], int]:
    """Create the pods, watch them come up; (sent, running, ready) times by name and create errors."""
    with contextlib.suppress(Exception):
        await client.create("/api/v1/namespaces", {"metadata": {"name": NS}})
    listed = await client.list(PODS, namespace=NS)
    rv = listed["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    running: dict[str, float] = {}
    ready: dict[str, float] = {}
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal rv
        while not done.is_set():
            try:
                async for event in client.watch(PODS, namespace=NS, resource_version=rv, timeout_seconds=600):
                    obj = event.get("object") or {}
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if event.get("type") not in ("ADDED", "MODIFIED"):
                        continue
                    now = time.monotonic()
                    name = obj["metadata"]["name"]
                    status = obj.get("status") or {}
                    if status.get("phase") == "Running" and name not in running:
                        running[name] = now
                    if name not in ready and any(c.get("type") == "Ready" and c.get("status") == "True"
                                                 for c in status.get("conditions") or []):
                        ready[name] = now
                    if len(ready) >= pods:
                        done.set()
                        return
            except Exception as exc:  # noqa: BLE001 - a broken watch is resumed
                log(f"watch: {exc!r}")
                await asyncio.sleep(0.2)

    watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(0.2)
    errors = 0
    slots = asyncio.Semaphore(32)
    t0 = time.monotonic()

    async def create(i: int) -> None:
        nonlocal errors
        node = nodes[i % len(nodes)] if nodes else None
        body = pod_body(i, node, runtime=runtime)
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with slots:
            sent[body["metadata"]["name"]] = time.monotonic()
            try:
                await client.create(PODS, body, namespace=NS)
            except Exception as exc:  # noqa: BLE001 - counted
                errors += 1
                log(f"create p{i}: {exc!r}")

    await asyncio.gather(*(create(i) for i in range(pods)))
    log(f"{pods} creates sent in {time.monotonic() - t0:.1f}s ({errors} errors); waiting for Ready")
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(done.wait(), timeout)
    done.set()
    watcher.cancel()
    with contextlib.suppress(BaseException):
        await watcher
    return sent, running, ready, errors


def report(case: str, sent: dict[str, float], seen: dict[str, float], transition: str, params: dict[str, Any]) -> None:
    lat = sorted(seen[n] - sent[n] for n in seen if n in sent)
    missing = len(sent) - len(lat)
    for q in (50, 90, 99):
        emit(case=case, metric=f"{transition}_p{q}", value=round(percentile(lat, q) or -1, 3), unit="s", **params)
    emit(case=case, metric=f"{transition}_max", value=round(lat[-1], 3) if lat else -1, unit="s", **params)
    emit(case=case, metric=f"{transition}_missing", value=missing, unit="pods", **params)
    p99 = percentile(lat, 99)
    print(json.dumps({"bench": "slo", "case": case, "metric": f"{transition}_p99", "target_s": SLO_SECONDS,
                      "value": round(p99, 3) if p99 is not None else None,
                      "met": bool(p99 is not None and p99 <= SLO_SECONDS and missing == 0)}), flush=True)


async def run_case(case: str, api: APICluster, root: Path, args: argparse.Namespace) -> None:
    cfg = load_config(str(api.kubeconfig))
    client = RESTClient(cfg, max_connections=64, timeout=30)
    kubelet = scheduler = None
    if case == "process":
        pods, names, runtime = args.process_pods, ["bench-p"], "process"
        kargs = ["--node-name", "bench-p", "--runtime", "process", "--capacity", f"cpu=64,memory=64Gi,pods={pods + 10}"]
    else:
        pods, runtime = args.fake_pods, "fake"
        names = [f"bench-f-{i}" for i in range(args.fake_nodes)]
        kargs = ["--node-name", "bench-f", "--runtime", "fake", "--fake-nodes", str(args.fake_nodes),
                 "--capacity", "cpu=64,memory=256Gi,pods=110"]
    kroot = root / f"kubelet-{case}"
    kubelet = start_process(root, f"kubelet-{case}", [
        "-m", "kubelet", *kargs, "--kubeconfig", str(api.kubeconfig), "--root-dir", str(kroot),
        "--bind", f"127.0.0.1:{free_ports(1)[0]}"])
    try:
        await wait_nodes(client, names, 120)
        if args.scheduler:
            scheduler = start_process(root, f"scheduler-{case}", [
                "-m", "scheduler", "--kubeconfig", str(api.kubeconfig), "--bind", f"127.0.0.1:{free_ports(1)[0]}",
                "--no-scheduled-events"])
            await asyncio.sleep(2)
        rate = args.rate
        params = {"pods": pods, "nodes": len(names), "rate": rate, "runtime": runtime,
                  "placement": "scheduler" if args.scheduler else "nodeName preset"}
        log(f"{case}: {pods} pods on {len(names)} node(s) at {rate}/s ({params['placement']})")
        pids = [p.pid for p in (kubelet, scheduler) if p is not None] + [p.pid for p in api.procs if p is not None]
        with CpuMeter(pids) as cpu:
            sent, running, ready, errors = await measure(client, pods=pods, nodes=None if args.scheduler else names,
                                                        rate=rate, runtime=runtime, timeout=args.timeout)
        report(case, sent, running, "running", params)
        report(case, sent, ready, "ready", params)
        emit(case=case, metric="create_errors", value=errors, unit="requests", **params)
        emit(case=case, metric="cluster_cpu", value=round(cpu.server, 2), unit="cores", **params)
        emit(case=case, metric="background_cpu", value=round(cpu.background, 2), unit="cores", **params)
        log(f"{case}: cleaning up")
        with contextlib.suppress(Exception):
            await client.request("DELETE", f"/api/v1/namespaces/{NS}/pods", body={"gracePeriodSeconds": 0},
                                 timeout=120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            left = (await client.list(PODS, namespace=NS)).get("items") or []
            if not left:
                break
            await asyncio.sleep(1)
    finally:
        stop_process(scheduler)
        stop_process(kubelet)
        kill_all(kroot)
        await client.close()


async def main_async(args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="pod-startup-"))
    try:
        for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
            api = APICluster(base / f"api-{case}")
            api.start()
            try:
                await run_case(case, api, base, args)
            finally:
                api.close()
    finally:
        if args.keep_dir:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="process,fake")
    p.add_argument("--process-pods", type=int, default=100)
    p.add_argument("--fake-pods", type=int, default=3000)
    p.add_argument("--fake-nodes", type=int, default=100)
    p.add_argument("--rate", type=float, default=50.0, help="pod creates per second (open loop)")
    p.add_argument("--scheduler", action="store_true", help="leave placement to a scheduler process")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every pod to be Ready")
    p.add_argument("--keep-dir", action="store_true")
    args = p.parse_args()
    try:
        import uvloop

        uvloop.run(main_async(args))
    except ImportError:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
