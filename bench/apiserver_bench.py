#!/usr/bin/env python3
"""API server benchmark: create, get, update, list and watch with 10k pods stored, 1 and 2 replicas.

Compared with the Kubernetes scalability SLOs (kubernetes/community sig-scalability/slos):
  * mutating and single-object read API calls: p99 <= 1 s            (create, get, update)
  * list of 10k pods ("cluster-scoped list" class, 30 s SLO; the brief's stricter target is used): <= 2 s
  * watch event delivery ("watch latency", SLI under development upstream): p99 <= 1 s

Topology: the real processes of tests/harness/apicluster.py on 127.0.0.1 -- the built-in store
(``python -m kvstore``) and API server replicas (``python -m apiserver``) over HTTPS with a bearer token,
each replica with the harness's flags (audit log, encryption config for secrets, service-account key).
Pods are created through the API into namespace ``bench`` and stay Pending (no scheduler runs).

Runs, in this order (each bounded in time and in request count):
  store1   1 store member. Preload 10k pods (32 concurrent creates spread over the replicas), then the
           phases with 1 API server replica; then a 2nd replica joins the same store and the phases run
           again with every request spread round-robin over both replicas.
  store3   3 store members, 2 replicas: preload 10k pods, then the phases once.

Phases (``--duration`` seconds each after a 1 s warm-up, open loop: request i is sent at t0 + i/rate
whatever the earlier ones are doing, so a slow server cannot slow the offered load down; latency is
measured from that scheduled time to the last byte of the response):
  create   POST a new pod, 100/s.
  get      GET one of the 10k stored pods, chosen at random, 100/s.
  update   PUT of a stored pod with its current resourceVersion (an annotation changes), 100/s; every
           update targets a pod not updated before, so a 409 would be a bug and counts as an error.
  list     GET of all pods in the namespace (>= 10k items), ``--list-reps`` times each: from the store
           (no resourceVersion: a consistent read) and from the watch cache (``resourceVersion=0``);
           sequential, alternating replicas. Time to the last byte; p99 of a few samples is their max.
  watch    a watch on the namespace's pods through the last replica (B) from the current
           resourceVersion; pods created through the first replica (A) at 100/s. Latency = time the
           event's chunk arrived - time the create was sent.

Output: JSON lines on stdout, one per measurement:
  {"bench": phase, "case": "store<M>_api<R>", "metric": ..., "value": ..., "unit": ..., ...params}
then one ``"bench": "slo"`` line per (phase, case) that has an SLO, with the target and whether it was
met. Progress goes to stderr. ``server_cpu`` / ``store_cpu`` / ``client_cpu`` are cores used during the
measured window by the API server replicas, the store members and this load generator.

Usage: python3 bench/apiserver_bench.py [--duration 10] [--rate 100] [--pods 10000] [--list-reps 5]
                                        [--runs store1,store3] [--keep-dir]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import signal
import ssl
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.kvstore_bench import CpuMeter, percentile  # noqa: E402
from tests.harness.apicluster import APICluster  # noqa: E402

NS = "bench"
PODS = f"/api/v1/namespaces/{NS}/pods"
WARMUP = 1.0
REQUEST_TIMEOUT = 10.0
SLO_MS = {"create": 1000.0, "get": 1000.0, "update": 1000.0, "list": 2000.0, "list_rv0": 2000.0, "watch": 1000.0}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


RESULTS: list[dict[str, Any]] = []


def emit(bench: str, case: str, metric: str, value: float | int | None, unit: str, **params: Any) -> None:
    if isinstance(value, float):
        value = round(value, 3)
    rec = {"bench": bench, "case": case, "metric": metric, "value": value, "unit": unit, **params}
    RESULTS.append(rec)
    print(json.dumps(rec), flush=True)


def pod(name: str, i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "shard": str(i % 16)},
                         "annotations": {"bench/created": "1"}},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9",
                                     "ports": [{"containerPort": 8080}],
                                     "env": [{"name": "INDEX", "value": str(i)}],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                     "terminationGracePeriodSeconds": 5}}


# ---------------------------------------------------------------------------------------------
# the cluster and an HTTP client for it


class Bench:
    def __init__(self, cluster: APICluster, session: aiohttp.ClientSession, args: argparse.Namespace) -> None:
        self.cluster = cluster
        self.session = session
        self.args = args
        self.headers = {"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json",
                        "Accept": "application/json"}
        self.active = 1  # replicas taking load
        self.stored: dict[str, dict[str, Any]] = {}  # name -> last object seen (for updates)
        self.update_cursor = 0
        self.seq = 0

    @property
    def case(self) -> str:
        return f"store{self.cluster.store_size}_api{self.active}"

    def url(self, i: int) -> str:
        return self.cluster.url(i % self.active)

    def pids(self) -> tuple[list[int], list[int]]:
        api = [p.pid for p in self.cluster.procs[: self.active] if p is not None and p.poll() is None]
        store = [m.proc.pid for m in self.cluster.store.members if m.proc is not None and m.proc.poll() is None]
        return api, store

    async def call(self, method: str, url: str, body: bytes | None = None) -> tuple[int | str, bytes]:
        try:
            async with self.session.request(method, url, data=body, headers=self.headers,
                                            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as r:
                return r.status, await r.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return type(exc).__name__, b""


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    sent: int = 0
    api_cpu: float = 0.0
    store_cpu: float = 0.0
    client_cpu: float = 0.0
    background_cpu: float = 0.0
    late_sends: int = 0  # requests the generator itself sent > 50 ms after their slot (client overload)


async def open_loop(b: Bench, rate: float, duration: float,
                    request: Callable[[int], Awaitable[tuple[int | str, bytes, int]]]) -> Window:
    """Send request(i) at t0 + i/rate for warm-up + duration seconds; measure those after the warm-up.

    ``request`` returns (status, body, expected status).
    """
    res = Window()
    n_warm = int(rate * WARMUP)
    total = n_warm + int(rate * duration)
    t0 = time.monotonic() + 0.05
    api_pids, store_pids = b.pids()
    meter_api = CpuMeter(api_pids)
    meter_store = CpuMeter(store_pids)

    async def one(i: int, slot: float) -> None:
        if time.monotonic() - slot > 0.05:
            res.late_sends += 1
        status, body, expected = await request(i)
        latency = time.monotonic() - slot
        if i < n_warm:
            return
        if status == expected:
            res.latencies.append(latency)
        else:
            res.errors[str(status)] += 1
            if len(res.samples) < 3:
                res.samples.append(f"{status} {body[:200]!r}")

    tasks = []
    for i in range(total):
        slot = t0 + i / rate
        if i == n_warm:
            meter_api.__enter__()
            meter_store.__enter__()
        delay = slot - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, slot)))
    res.sent = total - n_warm
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=REQUEST_TIMEOUT + 10)
    meter_api.__exit__()
    meter_store.__exit__()
    res.api_cpu, res.store_cpu = meter_api.server, meter_store.server
    res.client_cpu, res.background_cpu = meter_api.client, max(0.0, meter_api.background - meter_store.server)
    res.latencies.sort()
    for s in res.samples:
        log(f"  error sample: {s}")
    return res


def report(bench: str, b: Bench, res: Window, rate: float, duration: float, **params: Any) -> None:
    ok = len(res.latencies)
    extra = {"rate_per_s": rate, "duration_s": duration, "sent": res.sent, "ok": ok,
             "errors": sum(res.errors.values()), "late_sends": res.late_sends,
             "api_cpu": round(res.api_cpu, 2), "store_cpu": round(res.store_cpu, 2),
             "client_cpu": round(res.client_cpu, 2), "background_cpu": round(res.background_cpu, 2), **params}
    if res.errors:
        extra["error_kinds"] = dict(res.errors)
    emit(bench, b.case, "throughput", ok / duration, "req/s", **extra)
    for q in (50, 99):
        v = percentile(res.latencies, q)
        emit(bench, b.case, f"latency_p{q}", v * 1000 if v is not None else None, "ms")
    v = res.latencies[-1] if res.latencies else None
    emit(bench, b.case, "latency_max", v * 1000 if v is not None else None, "ms")


# ---------------------------------------------------------------------------------------------
# phases


async def setup_namespace(b: Bench) -> None:
    body = orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    status, data = await b.call("POST", b.url(0) + "/api/v1/namespaces", body)
    if status not in (201, 409):
        raise RuntimeError(f"cannot create namespace {NS}: {status} {data[:300]!r}")


async def preload(b: Bench, n: int, concurrency: int = 32, deadline_s: float = 150.0) -> None:
    """Create pods bench-<i> for i < n, ``concurrency`` at a time, over the active replicas."""
    nxt = [0]
    errs: Counter = Counter()
    t0 = time.monotonic()
    deadline = t0 + deadline_s
    api_pids, store_pids = b.pids()

    async def worker(w: int) -> None:
        while nxt[0] < n and time.monotonic() < deadline:
            i = nxt[0]
            nxt[0] += 1
            name = f"bench-{i:05d}"
            for attempt in range(3):
                status, data = await b.call("POST", b.url(w + attempt) + PODS, orjson.dumps(pod(name, i)))
                if status == 201:
                    b.stored[name] = orjson.loads(data)
                    break
                errs[str(status)] += 1
                if sum(errs.values()) <= 3:
                    log(f"  preload error: {status} {data[:200]!r}")
                if status == 409:  # an earlier attempt that timed out did land
                    break
                await asyncio.sleep(0.05)

    with CpuMeter(api_pids) as cpu_api, CpuMeter(store_pids) as cpu_store:
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    secs = time.monotonic() - t0
    emit("preload", b.case, "creates_per_s", len(b.stored) / secs, "pods/s", pods=len(b.stored), seconds=round(secs, 1),
         concurrency=concurrency, errors=sum(errs.values()), api_cpu=round(cpu_api.server, 2),
         store_cpu=round(cpu_store.server, 2), client_cpu=round(cpu_api.client, 2))
    if len(b.stored) < n:
        log(f"  ANOMALY: only {len(b.stored)} of {n} pods preloaded within {deadline_s}s")


async def phase_create(b: Bench) -> None:
    rate, duration = b.args.rate, b.args.duration
    b.seq += 1
    tag = b.seq

    async def request(i: int) -> tuple[int | str, bytes, int]:
        status, data = await b.call("POST", b.url(i) + PODS, orjson.dumps(pod(f"create-{tag}-{i:05d}", i)))
        return status, data, 201

    log(f"{b.case}: create at {rate:.0f}/s for {duration}s (+{WARMUP}s warm-up)")
    report("create", b, await open_loop(b, rate, duration, request), rate, duration, stored_pods=len(b.stored))


async def phase_get(b: Bench) -> None:
    rate, duration = b.args.rate, b.args.duration
    names = sorted(b.stored)
    rng = random.Random(7)

    async def request(i: int) -> tuple[int | str, bytes, int]:
        status, data = await b.call("GET", b.url(i) + PODS + "/" + rng.choice(names))
        return status, data, 200

    log(f"{b.case}: get at {rate:.0f}/s for {duration}s (+{WARMUP}s warm-up)")
    report("get", b, await open_loop(b, rate, duration, request), rate, duration, stored_pods=len(b.stored))


async def phase_update(b: Bench) -> None:
    rate, duration = b.args.rate, b.args.duration
    names = sorted(b.stored)
    total = int(rate * (WARMUP + duration))
    if b.update_cursor + total > len(names):
        b.update_cursor = 0  # pods are reused; their stored object is the last one this generator saw
    start = b.update_cursor
    b.update_cursor += total

    async def request(i: int) -> tuple[int | str, bytes, int]:
        name = names[(start + i) % len(names)]
        obj = b.stored[name]
        obj["metadata"].setdefault("annotations", {})["bench/updated"] = str(i)
        status, data = await b.call("PUT", b.url(i) + PODS + "/" + name, orjson.dumps(obj))
        if status == 200:
            b.stored[name] = orjson.loads(data)
        return status, data, 200

    log(f"{b.case}: update (PUT with resourceVersion) at {rate:.0f}/s for {duration}s (+{WARMUP}s warm-up)")
    report("update", b, await open_loop(b, rate, duration, request), rate, duration, stored_pods=len(b.stored))


async def phase_list(b: Bench) -> None:
    reps = b.args.list_reps
    for bench, query in (("list", ""), ("list_rv0", "?resourceVersion=0")):
        times: list[float] = []
        sizes: list[int] = []
        items: list[int] = []
        errors: Counter = Counter()
        api_pids, store_pids = b.pids()
        log(f"{b.case}: {bench}, {reps} sequential full lists")
        with CpuMeter(api_pids) as cpu_api, CpuMeter(store_pids) as cpu_store:
            for k in range(reps):
                t = time.monotonic()
                status, data = await b.call("GET", b.url(k) + PODS + query)
                elapsed = time.monotonic() - t
                if status != 200:
                    errors[str(status)] += 1
                    continue
                times.append(elapsed)
                sizes.append(len(data))
                items.append(len(orjson.loads(data)["items"]))
        times.sort()
        params = {"reps": reps, "items": max(items) if items else None, "mib": round(max(sizes) / 2**20, 1) if sizes else None,
                  "errors": sum(errors.values()), "api_cpu": round(cpu_api.server, 2),
                  "store_cpu": round(cpu_store.server, 2), "client_cpu": round(cpu_api.client, 2)}
        emit(bench, b.case, "latency_p50", (percentile(times, 50) or 0) * 1000 if times else None, "ms", **params)
        emit(bench, b.case, "latency_p99", (percentile(times, 99) or 0) * 1000 if times else None, "ms",
             samples_ms=[round(t * 1000, 1) for t in times])


async def phase_watch(b: Bench) -> None:
    rate, duration = b.args.rate, b.args.duration
    writer_i, watcher_i = 0, b.active - 1
    b.seq += 1
    prefix = f"watch-{b.seq}-"
    status, data = await b.call("GET", b.url(watcher_i) + PODS + "?limit=1")
    if status != 200:
        log(f"  ANOMALY: cannot read the resourceVersion: {status} {data[:200]!r}")
        return
    rv = orjson.loads(data)["metadata"]["resourceVersion"]
    sent: dict[int, float] = {}
    recv: dict[int, float] = {}
    stream_errors: list[str] = []
    resp = await b.session.get(b.url(watcher_i) + PODS + f"?watch=true&resourceVersion={rv}&timeoutSeconds=120",
                               headers=b.headers, timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_read=None))
    if resp.status != 200:
        log(f"  ANOMALY: watch answered {resp.status} {(await resp.read())[:200]!r}")
        resp.release()
        return

    async def reader() -> None:
        # aiohttp's line reader refuses lines over 128 KiB: read chunks and split on newlines here.
        buf = b""
        async for chunk in resp.content.iter_any():
            now = time.monotonic()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                ev = orjson.loads(line)
                if ev.get("type") == "ERROR":
                    stream_errors.append(line[:300].decode(errors="replace"))
                    continue
                name = ev.get("object", {}).get("metadata", {}).get("name", "")
                if ev.get("type") == "ADDED" and name.startswith(prefix):
                    recv.setdefault(int(name[len(prefix):]), now)

    rtask = asyncio.create_task(reader())

    async def request(i: int) -> tuple[int | str, bytes, int]:
        sent[i] = time.monotonic()
        status, data = await b.call("POST", b.url(writer_i) + PODS, orjson.dumps(pod(f"{prefix}{i}", i)))
        return status, data, 201

    log(f"{b.case}: watch on replica {watcher_i}, creates through replica {writer_i} at {rate:.0f}/s for {duration}s")
    res = await open_loop(b, rate, duration, request)
    n_warm = int(rate * WARMUP)
    expected = [i for i in sent if i >= n_warm]
    deadline = time.monotonic() + 5
    while any(i not in recv for i in expected) and time.monotonic() < deadline and not rtask.done():
        await asyncio.sleep(0.05)
    rtask.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await rtask
    resp.close()
    lats = sorted((recv[i] - sent[i]) * 1000 for i in expected if i in recv)
    params = {"rate_per_s": rate, "duration_s": duration, "events_expected": len(expected), "events_received": len(lats),
              "write_errors": sum(res.errors.values()), "watcher_replica": watcher_i, "writer_replica": writer_i,
              "stream_errors": len(stream_errors), "api_cpu": round(res.api_cpu, 2), "store_cpu": round(res.store_cpu, 2),
              "client_cpu": round(res.client_cpu, 2)}
    emit("watch", b.case, "latency_p50", percentile(lats, 50), "ms", **params)
    emit("watch", b.case, "latency_p99", percentile(lats, 99), "ms", max_ms=round(lats[-1], 1) if lats else None)
    wp99 = percentile(res.latencies, 99)
    emit("watch", b.case, "write_latency_p99", wp99 * 1000 if wp99 is not None else None, "ms")
    if len(lats) < len(expected) or stream_errors:
        log(f"  ANOMALY: {len(expected) - len(lats)} events missing, stream errors {stream_errors[:2]}")


PHASES: dict[str, Callable[[Bench], Awaitable[None]]] = {
    "create": phase_create, "get": phase_get, "update": phase_update, "list": phase_list, "watch": phase_watch}


# ---------------------------------------------------------------------------------------------
# driver


async def run_phases(b: Bench) -> None:
    for name in b.args.phases:
        try:
            await PHASES[name](b)
        except Exception as exc:  # report and go on with the next phase
            log(f"  ANOMALY {b.case} phase {name} failed: {type(exc).__name__}: {exc}")
            import traceback
            traceback.print_exc(file=sys.stderr)


async def run(store_members: int, replica_steps: list[int], root: Path, args: argparse.Namespace) -> None:
    cluster = APICluster(root / f"store{store_members}", store_size=store_members, replicas=max(replica_steps))
    ACTIVE.append(cluster)
    try:
        t0 = time.monotonic()
        cluster.store.start()
        await asyncio.to_thread(cluster.store.wait_ready, 60.0)
        for i in range(replica_steps[0]):
            cluster.start_replica(i)
        for i in range(replica_steps[0]):
            await asyncio.to_thread(cluster.wait_ready, i, 60.0)
        log(f"store{store_members}: {store_members} store member(s) and {replica_steps[0]} replica(s) ready in "
            f"{time.monotonic() - t0:.1f}s")
        ctx = ssl.create_default_context(cafile=str(cluster.certs.ca_cert))
        connector = aiohttp.TCPConnector(ssl=ctx, limit=0, keepalive_timeout=60)
        async with aiohttp.ClientSession(connector=connector) as session:
            b = Bench(cluster, session, args)
            b.active = replica_steps[0]
            await setup_namespace(b)
            log(f"{b.case}: preloading {args.pods} pods")
            await preload(b, args.pods)
            for step, replicas in enumerate(replica_steps):
                if step:
                    for i in range(b.active, replicas):
                        cluster.start_replica(i)
                    for i in range(b.active, replicas):
                        await asyncio.to_thread(cluster.wait_ready, i, 60.0)
                    b.active = replicas
                    # the new replica's watch cache lists the store at startup; let it settle
                    await asyncio.sleep(1.0)
                await run_phases(b)
    except Exception:
        log(f"store{store_members}: logs (tails):\n{cluster.logs()[-6000:]}")
        raise
    finally:
        cluster.close()
        ACTIVE.remove(cluster)
        log(f"store{store_members}: stopped")


def emit_slo_lines() -> None:
    for r in list(RESULTS):
        if r["metric"] != "latency_p99" or r["bench"] not in SLO_MS:
            continue
        target = SLO_MS[r["bench"]]
        value = r["value"]
        print(json.dumps({"bench": "slo", "case": r["case"], "phase": r["bench"], "metric": "latency_p99",
                          "value": value, "unit": "ms", "target_ms": target,
                          "met": value is not None and value <= target}), flush=True)


ACTIVE: list[APICluster] = []
RUNS = {"store1": (1, [1, 2]), "store3": (3, [2])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per open-loop phase (after 1 s warm-up)")
    ap.add_argument("--rate", type=float, default=100.0, help="requests (or watched writes) per second")
    ap.add_argument("--pods", type=int, default=10_000, help="pods stored before the phases")
    ap.add_argument("--list-reps", type=int, default=5, help="full lists per list variant")
    ap.add_argument("--runs", default="store1,store3", help="comma-separated: store1 (1 member; 1 then 2 replicas), "
                                                           "store3 (3 members; 2 replicas)")
    ap.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    ap.add_argument("--keep-dir", action="store_true", help="keep data directories and logs")
    args = ap.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if any(r not in RUNS for r in runs):
        ap.error(f"--runs takes {', '.join(RUNS)}")
    args.phases = [p for p in PHASES if p in {x.strip() for x in args.phases.split(",")}]
    if not 0 < args.duration <= 60 or not 0 < args.rate <= 1000 or not 0 < args.pods <= 50_000 \
            or not 0 < args.list_reps <= 20:
        ap.error("--duration in (0, 60], --rate in (0, 1000], --pods in (0, 50000], --list-reps in (0, 20]")
    try:
        import uvloop
        runner: Callable[..., Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    root = Path(tempfile.mkdtemp(prefix="apibench-"))
    log(f"data dirs under {root}; runs {runs}; phases {args.phases}; {args.pods} pods; {args.rate}/s for {args.duration}s")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.monotonic()
    try:
        for name in runs:
            members, steps = RUNS[name]
            runner(run(members, steps, root, args))
        emit_slo_lines()
    finally:
        for c in list(ACTIVE):
            c.close()
        if args.keep_dir:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        log(f"total {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
