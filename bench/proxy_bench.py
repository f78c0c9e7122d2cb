#!/usr/bin/env python3
"""Service proxy and ingress benchmark: throughput and latency against hitting the pods directly, failures
during backend swaps, and how fast traffic follows an EndpointSlice change.

Topology (all real processes on loopback addresses): a 1-member store and one API server from
tests/harness/apicluster.py (ClusterIPs from a loopback /16), ``python -m proxy`` (the service
proxy) and ``python -m proxy ingress``, and "pods": the HTTP backend processes of the integration
tests (tests/integration/test_proxy_support.py, aiohttp, a small JSON answer). EndpointSlices are
written by this script.

Phases:
  throughput  closed loop, ``--concurrency`` workers, ``--duration`` s per path split into ``--rounds``
              windows (each after a 0.5 s warm-up) that the paths take in turn: ``direct`` (the client alternates between the two pods), ``proxy`` (the
              Service's ClusterIP) and ``ingress`` (a Host rule to the same Service); once with
              keep-alive connections and once with a new connection per request. Requests/s and
              p50/p99 latency; then ``"path": "ratio"`` lines: proxy/direct and ingress/direct of
              the same run (rps ratio: higher is better, 1.0 = no cost; p99 ratio: lower is better).
  swap        a request loop (8 workers) while the Service's pods are replaced one by one, 3 times:
              through the ingress the slice is updated and the old pod SIGKILLed at once, plus once a
              crash (SIGKILL first, slice updated 0.5 s later); through the proxy (new connection per
              request) the slice is updated and the old pod SIGTERMed at once (graceful). Failed
              requests are counted (target 0).
  follow      ``--follow-reps`` times: the slice is switched to the other pod and new requests are
              sent back to back until the other pod answers; the time from just before the API write
              to that answer, through the proxy and through the ingress (p50 and max), and the API
              write's own duration.

Output: JSON lines on stdout ``{"bench": "proxy", "phase", "case", "path", "metric", "value", "unit", ...}``;
throughput lines carry ``cpu`` (cores used by the proxy or ingress process during the window),
``pods_cpu`` (the two pods), ``client_cpu`` (this load generator: the box has few cores, so a
CPU-bound client caps every path) and ``background_cpu`` (everything else on the host); the
``cpu_per_request`` lines (CPU time of the proxy or ingress process per request) do not depend on
how busy the host is.
Progress on stderr.

Usage: python3 bench/proxy_bench.py [--duration 6] [--rounds 3] [--concurrency 16] [--follow-reps 10]
                                    [--phases throughput,swap,follow] [--keep-dir]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.kvstore_bench import CpuMeter, percentile  # noqa: E402
from tests.harness.apicluster import APICluster  # noqa: E402
from tests.integration.test_proxy_support import (Backend, Component, create_service, endpoint,  # noqa: E402
                                                  ensure_namespace, free_port_on, loopback_net, put_slice, wait_for,
                                                  who)

NS = "bench"
HOST = "bench.example"
HTTP = [{"name": "http", "port": 8080, "protocol": "TCP"}]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "proxy", **fields}), flush=True)


class Rig:
    def __init__(self, root: Path) -> None:
        self.cidr, self.node_ip, self.pod_prefix = loopback_net()
        self.root = root
        self.api = APICluster(root / "api", extra_args=("--service-cluster-ip-range", self.cidr))
        self.backends: list[Backend] = []
        self.components: list[Component] = []
        self._next = 0

    def start(self) -> None:
        self.api.start()
        ip = self.node_ip
        self.proxy = Component(self.api, self.root, "proxy", "--node-name", "bench", "--node-ip", ip,
                               "--log-level", "WARNING", health=f"{ip}:{free_port_on(ip)}")
        self.ingress_port = free_port_on(ip)
        self.ingress = Component(self.api, self.root, "ingress", "--bind", f"{ip}:{self.ingress_port}",
                                 "--log-level", "WARNING", health=f"{ip}:{free_port_on(ip)}")
        self.components = [self.proxy, self.ingress]
        for c in self.components:
            c.wait_ready()
        ensure_namespace(self.api, NS)
        svc = create_service(self.api, NS, "web", [{"name": "http", "port": 80, "targetPort": 8080}])
        self.cluster_ip = svc["spec"]["clusterIP"]
        body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": NS},
                "spec": {"rules": [{"host": HOST, "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}
        status, answer, _ = self.api.request("POST", f"/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses", body)
        assert status == 201, answer

    def backend(self, name: str) -> Backend:
        self._next += 1
        b = Backend(name, f"{self.pod_prefix}{self._next}", root=self.root)
        self.backends.append(b)
        return b

    def set_endpoints(self, backends: list[Backend]) -> None:
        put_slice(self.api, NS, "web", [endpoint(b.ip) for b in backends], HTTP)

    @property
    def proxy_url(self) -> str:
        return f"http://{self.cluster_ip}:80/"

    @property
    def ingress_url(self) -> str:
        return f"http://{self.node_ip}:{self.ingress_port}/"

    def close(self) -> None:
        for c in self.components:
            c.stop()
        for b in self.backends:
            b.kill()
        self.api.close()


# ---------------------------------------------------------------------- load

async def closed_loop(urls: list[str], *, headers: dict[str, str], duration: float, concurrency: int,
                      keepalive: bool, warmup: float = 0.5) -> dict[str, Any]:
    """``concurrency`` workers sending GETs back to back; latencies of requests started after the warm-up."""
    connector = aiohttp.TCPConnector(limit=0, force_close=not keepalive)
    latencies: list[float] = []
    errors = [0]
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        start = time.perf_counter()
        measure_from, end = start + warmup, start + warmup + duration

        async def worker(i: int) -> None:
            n = i
            while True:
                t = time.perf_counter()
                if t >= end:
                    return
                url = urls[n % len(urls)]
                n += 1
                try:
                    async with session.get(url, headers=headers) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                    ok = False
                if t >= measure_from:
                    if ok:
                        latencies.append(time.perf_counter() - t)
                    else:
                        errors[0] += 1

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return {"latencies": latencies, "errors": errors[0], "seconds": duration}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(x for r in runs for x in r["latencies"])
    seconds = sum(r["seconds"] for r in runs)
    return {"rps": len(latencies) / seconds, "p50_ms": 1000 * (percentile(latencies, 50) or 0),
            "p99_ms": 1000 * (percentile(latencies, 99) or 0), "errors": sum(r["errors"] for r in runs),
            "requests": len(latencies)}


def phase_throughput(rig: Rig, args: argparse.Namespace) -> None:
    pods = [rig.backend(f"t{i}") for i in range(2)]
    for p in pods:
        p.wait_ready()
    rig.set_endpoints(pods)
    wait_for(lambda: who(rig.proxy_url) in ("t0", "t1"), 20, "proxy serves")
    wait_for(lambda: who(rig.ingress_url, headers={"Host": HOST}) in ("t0", "t1"), 20, "ingress serves")
    paths = {"direct": ([f"http://{p.ip}:8080/" for p in pods], {}, []),
             "proxy": ([rig.proxy_url], {}, [rig.proxy.proc.pid]),  # type: ignore[union-attr]
             "ingress": ([rig.ingress_url], {"Host": HOST}, [rig.ingress.proc.pid])}  # type: ignore[union-attr]
    for keepalive in (True, False):
        case = "keepalive" if keepalive else "new_connection"
        # The paths take turns in --rounds short windows, so a change in the host's background load
        # (other processes on a small box) falls on all of them alike instead of on one.
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
        cpu_s: dict[str, float] = {name: 0.0 for name in paths}
        pods_s: dict[str, float] = {name: 0.0 for name in paths}
        client_s: dict[str, float] = {name: 0.0 for name in paths}
        background_s: dict[str, float] = {name: 0.0 for name in paths}
        wall: dict[str, float] = {name: 0.0 for name in paths}
        for rnd in range(args.rounds):
            for name, (urls, headers, pids) in paths.items():
                log(f"throughput {case} {name} round {rnd + 1}/{args.rounds}")
                t0 = time.monotonic()
                with CpuMeter(pids) as cpu, CpuMeter([p.proc.pid for p in pods]) as pods_cpu:
                    runs[name].append(asyncio.run(closed_loop(
                        urls, headers=headers, duration=args.duration / args.rounds,
                        concurrency=args.concurrency, keepalive=keepalive)))
                span = time.monotonic() - t0
                wall[name] += span
                cpu_s[name] += cpu.server * span
                pods_s[name] += pods_cpu.server * span
                client_s[name] += cpu.client * span
                background_s[name] += (pods_cpu.background - cpu.server) * span
        results: dict[str, dict[str, Any]] = {}
        for name, (_urls, _headers, pids) in paths.items():
            res = results[name] = summarize(runs[name])
            cores = cpu_s[name] / wall[name]
            extra = {"concurrency": args.concurrency, "duration_s": args.duration, "rounds": args.rounds,
                     "errors": res["errors"], "cpu": round(cores, 2), "pods_cpu": round(pods_s[name] / wall[name], 2),
                     "client_cpu": round(client_s[name] / wall[name], 2),
                     "background_cpu": round(background_s[name] / wall[name], 2)}
            if pids and res["rps"]:
                # CPU time of the proxy/ingress per request (cores / requests per second): what the path
                # costs, however busy the host is.
                emit(phase="throughput", case=case, path=name, metric="cpu_per_request",
                     value=round(1e6 * cores / res["rps"], 1), unit="us", **extra)
            for metric, unit in (("rps", "req/s"), ("p50_ms", "ms"), ("p99_ms", "ms")):
                emit(phase="throughput", case=case, path=name, metric=metric, value=round(res[metric], 3), unit=unit,
                     **extra)
        direct = results["direct"]
        for name in ("proxy", "ingress"):
            for metric in ("rps", "p99_ms"):
                value = results[name][metric] / direct[metric] if direct[metric] else None
                emit(phase="throughput", case=case, path="ratio", metric=f"{metric}_{name}_over_direct",
                     value=round(value, 3) if value is not None else None, unit="x")


# ---------------------------------------------------------------------- swaps

async def loop_until(urls: list[str], headers: dict[str, str], stop: asyncio.Event, *, keepalive: bool,
                     workers: int = 8, limit: int = 200000) -> tuple[int, list[str], set[str]]:
    connector = aiohttp.TCPConnector(limit=0, force_close=not keepalive)
    done, failures, names = [0], [], set()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        async def worker() -> None:
            while not stop.is_set() and done[0] < limit:
                try:
                    async with session.get(urls[done[0] % len(urls)], headers=headers) as resp:
                        body = await resp.json()
                        if resp.status != 200:
                            failures.append(f"HTTP {resp.status}")
                        else:
                            names.add(body["name"])
                except Exception as exc:  # noqa: BLE001 - every failure is a finding
                    failures.append(repr(exc))
                done[0] += 1

        await asyncio.gather(*(worker() for _ in range(workers)))
    return done[0], failures, names


async def swap_run(rig: Rig, via: str, keepalive: bool, crash_round: int | None, graceful: bool) -> dict[str, Any]:
    old = [rig.backend(f"{via}-old{i}") for i in range(3)]
    new = [rig.backend(f"{via}-new{i}") for i in range(3)]
    for b in old + new:
        await asyncio.to_thread(b.wait_ready)
    await asyncio.to_thread(rig.set_endpoints, old)
    url, headers = (rig.ingress_url, {"Host": HOST}) if via == "ingress" else (rig.proxy_url, {})
    await asyncio.to_thread(wait_for, lambda: who(url, headers=headers).startswith(f"{via}-old"), 20, "old serve")
    stop = asyncio.Event()
    loop = asyncio.create_task(loop_until([url], headers, stop, keepalive=keepalive))
    await asyncio.sleep(1.0)
    for i in range(3):
        endpoints = [*new[: i + 1], *old[i + 1:]]
        if i == crash_round:
            old[i].kill()
            await asyncio.sleep(0.5)
            await asyncio.to_thread(rig.set_endpoints, endpoints)
        else:
            await asyncio.to_thread(rig.set_endpoints, endpoints)
            await asyncio.to_thread(old[i].stop if graceful else old[i].kill)
        await asyncio.sleep(1.0)
    stop.set()
    total, failures, names = await loop
    for b in new:
        b.kill()
    return {"requests": total, "failed": len(failures), "examples": failures[:3],
            "served_by_new": sorted(n for n in names if "new" in n)}


def phase_swap(rig: Rig, _: argparse.Namespace) -> None:
    for via, keepalive, crash, graceful, case in (
            ("ingress", True, 1, False, "update_then_sigkill+crash"),
            ("proxy", False, None, True, "update_then_sigterm")):
        log(f"swap through the {via}")
        res = asyncio.run(swap_run(rig, via, keepalive, crash, graceful))
        emit(phase="swap", case=case, path=via, metric="failed_requests", value=res["failed"], unit="requests",
             requests=res["requests"], swaps=3, examples=res["examples"], served_by_new=res["served_by_new"])


# ---------------------------------------------------------------------- follow

def phase_follow(rig: Rig, args: argparse.Namespace) -> None:
    pods = [rig.backend("fa"), rig.backend("fb")]
    for p in pods:
        p.wait_ready()
    rig.set_endpoints([pods[0]])
    targets = {"proxy": (rig.proxy_url, {}), "ingress": (rig.ingress_url, {"Host": HOST})}
    for url, headers in targets.values():
        wait_for(lambda: who(url, headers=headers) == "fa", 20, "first pod serves")
    samples: dict[str, list[float]] = {name: [] for name in targets}
    writes: list[float] = []
    current = 0
    for rep in range(args.follow_reps):
        for name, (url, headers) in targets.items():
            current = 1 - current
            target = pods[current]
            t0 = time.perf_counter()
            rig.set_endpoints([target])
            writes.append(time.perf_counter() - t0)
            deadline = t0 + 10
            while time.perf_counter() < deadline:
                try:
                    if who(url, timeout=2, headers=headers) == target.name:
                        break
                except OSError:
                    pass
            samples[name].append(time.perf_counter() - t0)
        log(f"follow rep {rep + 1}/{args.follow_reps}")
    for name, values in samples.items():
        values.sort()
        for metric, value in (("p50_ms", percentile(values, 50)), ("max_ms", values[-1])):
            emit(phase="follow", case="slice_switch", path=name, metric=metric, value=round(1000 * (value or 0), 1),
                 unit="ms", reps=len(values))
    writes.sort()
    emit(phase="follow", case="slice_switch", path="api_write", metric="p50_ms",
         value=round(1000 * (percentile(writes, 50) or 0), 1), unit="ms", reps=len(writes))


PHASES = {"throughput": phase_throughput, "swap": phase_swap, "follow": phase_follow}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=6.0, help="seconds of load per path and case")
    p.add_argument("--rounds", type=int, default=3, help="turns the paths take (duration split among them)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--follow-reps", type=int, default=10)
    p.add_argument("--phases", default="throughput,swap,follow")
    p.add_argument("--keep-dir", action="store_true")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    rig = Rig(root)
    try:
        log(f"starting cluster in {root} (services {rig.cidr}, node {rig.node_ip})")
        rig.start()
        for name in args.phases.split(","):
            PHASES[name.strip()](rig, args)
    finally:
        rig.close()
        if args.keep_dir:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
