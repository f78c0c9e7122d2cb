#!/usr/bin/env python3
"""Side-by-side benchmark of the built-in store (``kvstore``) and real etcd 3.4, one load generator.

Why one load generator: both systems speak the same etcd v3 JSON (grpc-gateway) API, so the very same
aiohttp client code (keep-alive connections, same request bodies, same key spaces) drives both, and
differences in the numbers come from the servers, not from two different clients.

The systems run one after the other, never together: the machine has 2 cores, and 3 members of each
system plus this client already compete for them. Each system gets a fresh 3-member cluster on
127.0.0.1 (free ports, data directories in a temporary directory on the same file system, fsync on:
etcd fsyncs its WAL by default, the built-in store fsyncs its journal before acknowledging), runs
every selected phase, and is stopped before the next one starts.

Phases (each bounded in time and in operation count; a 1 s warm-up precedes each measured window):

  rss       load 100k keys (256-byte values) into a fresh cluster with txns of 128 puts, then
            read VmRSS of each member from /proc/<pid>/status (max and mean over members).
            Runs first so that the state is exactly "100k keys" and not "100k keys plus however much
            history the faster system wrote during the other phases" (neither side auto-compacts).
  put       64 closed-loop clients, sequential puts of 256-byte values to random keys among 10k:
            once with clients spread over the 3 endpoints (client w uses endpoint w % 3), once with
            every client on the leader. Throughput, latency p50/p99.
  range     64 clients, single-key reads of random existing keys: linearizable, then
            ``"serializable": true``. Throughput, latency p50/p99.
  watch     one watcher (POST /v3/watch, create_request on a prefix) on a follower, reading the chunked
            stream and splitting on newlines itself; a writer sending ~200 puts/s for 5 s to the leader.
            Latency = monotonic time the event's chunk arrived - monotonic time the put was sent.
  failover  16 clients writing through the two followers (failed or timed-out requests are retried
            after 20 ms; client-side request timeout 0.5 s), SIGKILL of the leader; the outage is the
            longest window with no successful write, and writes_resume_after_kill the time from the
            kill to the first success of a write sent after it. Each system keeps its default election
            timeout (etcd 1 s, kvstore 0.4-0.8 s). The killed member is then restarted and the time
            until it answers a linearizable read again is reported too.

Output: JSON lines on stdout, one per measurement
  {"bench": ..., "case": ..., "system": "pilothouse"|"etcd", "metric": ..., "value": ..., "unit": ..., ...params}
then one line per (bench, case, metric) measured on both systems with ``"system": "ratio"`` and
``"value"`` = pilothouse / etcd. Progress and diagnostics go to stderr.

``--systems`` may also name ``pilothouse-nofsync``: the built-in store with ``--unsafe-no-fsync``
(journal never synced; etcd 3.4 has no such switch). With it, ratio lines
``pilothouse/pilothouse-nofsync`` tell what durability costs the built-in store.

With ``--rounds N`` everything above runs N times (fresh clusters each time), alternating which
system goes first; each round's ratio lines carry ``"round"``, and a last line per metric gives the
median of the per-round ratios (``"summary": "median over rounds"``). On a shared 2-core machine the
speed of the machine drifts by ±20% from one half-minute to the next, more than most differences
being measured: one round is an anecdote, the median of several is a figure.

``client_cpu`` and ``server_cpu`` on throughput lines are CPU cores used (CPU seconds / wall seconds)
by this load generator and by the 3 members together during the measured window: when client_cpu
is near 1.0 the single-threaded client, not the server, is the limit.

Usage: python3 bench/kvstore_bench.py [--only rss,put,range,watch,failover] [--duration S]
                                       [--systems pilothouse,etcd,pilothouse-nofsync] [--rounds N]
                                       [--peer-tls]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import aiohttp

try:
    import orjson

    def jdumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    jloads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a project dependency
    def jdumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    jloads = json.loads

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.harness.kvcluster import KVCluster, free_ports, post_json  # noqa: E402

PHASES = ("rss", "put", "range", "watch", "failover")
SYSTEMS = ("pilothouse", "etcd", "pilothouse-nofsync")
# Ratio lines: each pair both of whose systems ran, numerator first.
RATIO_PAIRS = (("pilothouse", "etcd"), ("pilothouse", "pilothouse-nofsync"))
VALUE_SIZE = 256
PUT_KEYS = 10_000
RSS_KEYS = 100_000
TXN_OPS = 128  # etcd's default --max-txn-ops
WARMUP = 1.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# small helpers


def b64(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def prefix_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


RESULTS: list[dict[str, Any]] = []


def emit(bench: str, case: str, system: str, metric: str, value: float | int | None, unit: str,
         **params: Any) -> None:
    if isinstance(value, float):
        value = round(value, 4)
    rec = {"bench": bench, "case": case, "system": system, "metric": metric, "value": value, "unit": unit,
           **params}
    RESULTS.append(rec)
    print(json.dumps(rec), flush=True)


def percentile(sorted_vals: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def read_rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its waited-for children, which none of ours have)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def host_busy_seconds() -> float:
    """CPU seconds the whole host spent busy (all cores), from the aggregate line of /proc/stat."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class CpuMeter:
    """CPU cores used by this process, by the cluster members, and by everything else on the host
    (``background``: other processes sharing the 2 cores, which make a run noisy) over a window."""

    def __init__(self, pids: Iterable[int | None]) -> None:
        self.pids = [p for p in pids if p]

    def __enter__(self) -> "CpuMeter":
        self.wall0 = time.monotonic()
        self.client0 = time.process_time()
        self.server0 = sum(cpu_seconds(p) for p in self.pids)
        self.host0 = host_busy_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(1e-9, time.monotonic() - self.wall0)
        self.client = (time.process_time() - self.client0) / wall
        self.server = (sum(cpu_seconds(p) for p in self.pids) - self.server0) / wall
        host = (host_busy_seconds() - self.host0) / wall
        self.background = max(0.0, host - self.client - self.server)


# ---------------------------------------------------------------------------------------------
# clusters: the built-in store through the test harness, etcd started here


def status(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    try:
        code, body = post_json(url + "/v3/maintenance/status", {}, timeout)
    except (OSError, ValueError):
        return None
    return body if code == 200 and isinstance(body, dict) else None


def find_leader(endpoints: list[str], alive: list[bool], timeout: float = 30.0) -> int:
    """Index of the member every live member agrees leads (works for both systems: same status RPC)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids: dict[int, int] = {}
        leaders: set[Any] = set()
        for i, url in enumerate(endpoints):
            if not alive[i]:
                continue
            st = status(url, 0.5)
            if st is None:
                leaders.add(None)
                continue
            ids[int(st["header"]["member_id"])] = i
            leaders.add(st.get("leader"))
        if len(leaders) == 1 and None not in leaders:
            lid = int(leaders.pop())
            if lid in ids:
                return ids[lid]
        time.sleep(0.1)
    raise TimeoutError(f"no agreed leader among {endpoints} within {timeout}s")


def wait_linearizable(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            code, _ = post_json(url + "/v3/kv/range", {"key": b64("__ready__")}, 2.0)
            if code == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class Cluster:
    system = "?"
    election_timeout = "?"
    endpoints: list[str]
    size = 3

    def start(self, i: int | None = None) -> None: ...
    def kill(self, i: int) -> None: ...
    def close(self) -> None: ...
    def pid(self, i: int) -> int | None: ...
    def alive(self, i: int) -> bool: ...
    def log_tail(self) -> str: return ""

    def pids(self) -> list[int | None]:
        return [self.pid(i) for i in range(self.size)]

    def leader(self, timeout: float = 30.0) -> int:
        return find_leader(self.endpoints, [self.alive(i) for i in range(self.size)], timeout)

    def wait_ready(self, timeout: float = 60.0) -> int:
        leader = self.leader(timeout)
        for url in self.endpoints:
            if not wait_linearizable(url, timeout):
                raise TimeoutError(f"{url} never answered a linearizable read")
        return leader


class PilothouseCluster(Cluster):
    system = "pilothouse"
    election_timeout = "0.4-0.8 s (kvstore default)"

    def __init__(self, root: Path, peer_tls: PeerPKI | None = None, fsync: bool = True) -> None:
        extra = () if peer_tls is None else ("--peer-cert-file", str(peer_tls.cert), "--peer-key-file",
                                             str(peer_tls.key), "--peer-trusted-ca-file", str(peer_tls.ca))
        if not fsync:
            self.system = "pilothouse-nofsync"
            extra += ("--unsafe-no-fsync",)
        self.kv = KVCluster(root, size=3, extra_args=extra)
        self.endpoints = self.kv.endpoints

    def start(self, i: int | None = None) -> None:
        self.kv.start(i)

    def kill(self, i: int) -> None:
        self.kv.kill(i)

    def close(self) -> None:
        self.kv.close()

    def pid(self, i: int) -> int | None:
        p = self.kv.members[i].proc
        return p.pid if p is not None and p.poll() is None else None

    def alive(self, i: int) -> bool:
        return self.kv.alive(i)

    def log_tail(self) -> str:
        return self.kv.logs()


class PeerPKI:
    """A CA and one member certificate (server and client use, for 127.0.0.1) for peer TLS."""

    def __init__(self, root: Path) -> None:
        from pilot.certs import ensure_certificates, issue_certificate

        paths = ensure_certificates(root, hosts=["127.0.0.1"])
        self.cert, self.key = issue_certificate(root, "member", hosts=["127.0.0.1", "localhost"], peer=True)
        self.ca = paths.ca_cert


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None


class EtcdCluster(Cluster):
    system = "etcd"
    election_timeout = "1.0 s, heartbeat 0.1 s (etcd default)"

    def __init__(self, root: Path, binary: str = "/usr/bin/etcd", peer_tls: PeerPKI | None = None) -> None:
        self.root = root
        self.binary = binary
        self.peer_tls = peer_tls
        root.mkdir(parents=True, exist_ok=True)
        ports = free_ports(2 * self.size)
        self.members = [EtcdMember(f"e{i + 1}", ports[2 * i], ports[2 * i + 1], root / f"e{i + 1}",
                                   root / f"e{i + 1}.log") for i in range(self.size)]
        self.token = f"bench-{os.getpid()}-{int(time.time())}"
        self.endpoints = [f"http://127.0.0.1:{m.client_port}" for m in self.members]

    def command(self, i: int) -> list[str]:
        m = self.members[i]
        client = f"http://127.0.0.1:{m.client_port}"
        scheme = "http" if self.peer_tls is None else "https"
        peer = f"{scheme}://127.0.0.1:{m.peer_port}"
        initial = ",".join(f"{x.name}={scheme}://127.0.0.1:{x.peer_port}" for x in self.members)
        tls = [] if self.peer_tls is None else [
            "--peer-cert-file", str(self.peer_tls.cert), "--peer-key-file", str(self.peer_tls.key),
            "--peer-trusted-ca-file", str(self.peer_tls.ca), "--peer-client-cert-auth"]
        return [self.binary, "--name", m.name, "--data-dir", str(m.data_dir),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token, *tls]

    def start(self, i: int | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        for j in ([i] if i is not None else range(self.size)):
            m = self.members[j]
            if m.proc is not None and m.proc.poll() is None:
                continue
            with open(m.log_path, "ab") as logf:
                # A restarted member finds its data dir and ignores --initial-cluster-state.
                m.proc = subprocess.Popen(self.command(j), stdout=logf, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=env)

    def kill(self, i: int) -> None:
        p = self.members[i].proc
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)

    def close(self) -> None:
        for i in range(self.size):
            self.kill(i)

    def pid(self, i: int) -> int | None:
        p = self.members[i].proc
        return p.pid if p is not None and p.poll() is None else None

    def alive(self, i: int) -> bool:
        p = self.members[i].proc
        return p is not None and p.poll() is None

    def log_tail(self) -> str:
        out = []
        for m in self.members:
            if m.log_path.exists():
                out.append(f"==== {m.name} ====\n" + m.log_path.read_text(errors="replace")[-3000:])
        return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# load generation


class Bodies:
    """Pre-encoded request bodies, so the client spends its CPU on HTTP, not on base64/JSON."""

    def __init__(self, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.values = [b64(rng.randbytes(VALUE_SIZE)).encode() for _ in range(64)]
        self.put_keys = [b64(f"bench/put/{i:05d}").encode() for i in range(PUT_KEYS)]

    def put(self, rng: random.Random) -> bytes:
        return (b'{"key":"' + self.put_keys[rng.randrange(PUT_KEYS)] + b'","value":"'
                + self.values[rng.randrange(64)] + b'"}')

    def range_lin(self, rng: random.Random) -> bytes:
        return b'{"key":"' + self.put_keys[rng.randrange(PUT_KEYS)] + b'"}'

    def range_ser(self, rng: random.Random) -> bytes:
        return b'{"key":"' + self.put_keys[rng.randrange(PUT_KEYS)] + b'","serializable":true}'


@dataclass
class LoopResult:
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    window: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    background_cpu: float = 0.0


async def closed_loop(session: aiohttp.ClientSession, urls_per_client: list[str], make_body: Callable[[random.Random], bytes],
                      duration: float, pids: list[int | None], warmup: float = WARMUP,
                      max_ops: int = 2_000_000) -> LoopResult:
    """Each client: a coroutine sending one request at a time to its URL until the window ends.

    Requests completing inside [warmup end, window end] count; a failure sleeps 20 ms before the
    next attempt so a broken server does not turn into a hot loop.
    """
    res = LoopResult()
    budget = [max_ops]
    t0 = time.perf_counter()
    m_start = t0 + warmup
    m_end = m_start + duration
    samples: list[str] = []

    async def client(w: int) -> None:
        rng = random.Random(w * 7919 + 17)
        url = urls_per_client[w]
        while budget[0] > 0:
            now = time.perf_counter()
            if now >= m_end:
                return
            budget[0] -= 1
            body = make_body(rng)
            t = time.perf_counter()
            try:
                async with session.post(url, data=body) as r:
                    payload = await r.read()
                    st: Any = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                st, payload = type(exc).__name__, str(exc).encode()
            t2 = time.perf_counter()
            if m_start <= t2 <= m_end:
                if st == 200:
                    res.ok += 1
                    res.latencies.append(t2 - t)
                else:
                    res.errors[str(st)] += 1
            if st != 200:
                if len(samples) < 3:
                    samples.append(f"{url}: {st} {payload[:200]!r}")
                await asyncio.sleep(0.02)

    tasks = [asyncio.create_task(client(w)) for w in range(len(urls_per_client))]
    await asyncio.sleep(max(0.0, m_start - time.perf_counter()))
    with CpuMeter(pids) as cpu:
        await asyncio.sleep(max(0.0, m_end - time.perf_counter()))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    res.window = duration
    res.client_cpu, res.server_cpu, res.background_cpu = cpu.client, cpu.server, cpu.background
    res.latencies.sort()
    for s in samples:
        log(f"  error sample: {s}")
    return res


def report_loop(bench: str, case: str, system: str, res: LoopResult, **params: Any) -> None:
    extra = {**params, "duration_s": res.window, "errors": sum(res.errors.values()),
             "client_cpu": round(res.client_cpu, 2), "server_cpu": round(res.server_cpu, 2),
             "background_cpu": round(res.background_cpu, 2)}
    if res.errors:
        extra["error_kinds"] = dict(res.errors)
    emit(bench, case, system, "throughput", res.ok / res.window, "ops/s", **extra)
    p50, p99 = percentile(res.latencies, 50), percentile(res.latencies, 99)
    emit(bench, case, system, "latency_p50", p50 * 1000 if p50 is not None else None, "ms", **params)
    emit(bench, case, system, "latency_p99", p99 * 1000 if p99 is not None else None, "ms", **params)


async def load_keys(session: aiohttp.ClientSession, endpoints: list[str], prefix: str, n: int,
                    values: list[bytes], concurrency: int = 8, deadline_s: float = 120.0) -> tuple[int, float, Counter]:
    """Write keys prefix+%06d for 0..n-1 with txns of TXN_OPS puts, spread over the endpoints.

    Returns (keys acknowledged, seconds, error kinds). A failed txn is retried up to 5 times.
    """
    batches = [list(range(s, min(n, s + TXN_OPS))) for s in range(0, n, TXN_OPS)]
    nxt = [0]
    done = [0]
    errs: Counter = Counter()
    t0 = time.monotonic()
    deadline = t0 + deadline_s

    def body(idx: list[int]) -> bytes:
        ops = b",".join(b'{"request_put":{"key":"' + b64(f"{prefix}{i:06d}").encode() + b'","value":"'
                        + values[i % len(values)] + b'"}}' for i in idx)
        return b'{"success":[' + ops + b"]}"

    async def worker(w: int) -> None:
        while nxt[0] < len(batches) and time.monotonic() < deadline:
            b = batches[nxt[0]]
            nxt[0] += 1
            data = body(b)
            for attempt in range(5):
                url = endpoints[(w + attempt) % len(endpoints)] + "/v3/kv/txn"
                try:
                    async with session.post(url, data=data) as r:
                        payload = await r.read()
                        if r.status == 200:
                            done[0] += len(b)
                            break
                        errs[str(r.status)] += 1
                        if sum(errs.values()) <= 3:
                            log(f"  txn load error {url}: {r.status} {payload[:200]!r}")
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    errs[type(exc).__name__] += 1
                await asyncio.sleep(0.05)

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return done[0], time.monotonic() - t0, errs


async def count_prefix(session: aiohttp.ClientSession, url: str, prefix: str) -> int | None:
    body = jdumps({"key": b64(prefix), "range_end": b64(prefix_end(prefix.encode())), "count_only": True,
                   "serializable": True})
    try:
        async with session.post(url + "/v3/kv/range", data=body) as r:
            if r.status != 200:
                return None
            return int(jloads(await r.read()).get("count", 0))
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# phases


@dataclass
class Ctx:
    system: str
    cluster: Cluster
    session: aiohttp.ClientSession
    bodies: Bodies
    duration: float
    watch_member: str = "follower"
    put_keys_loaded: bool = False


async def sanity(ctx: Ctx) -> None:
    """One put and one read on every member, checking the value round-trips: both systems must answer alike."""
    for i, url in enumerate(ctx.cluster.endpoints):
        key, val = b64(f"bench/sanity/{i}"), b64(f"v{i}")
        async with ctx.session.post(url + "/v3/kv/put", data=jdumps({"key": key, "value": val})) as r:
            assert r.status == 200, (url, r.status, await r.text())
        async with ctx.session.post(url + "/v3/kv/range", data=jdumps({"key": key})) as r:
            got = jloads(await r.read())
            assert r.status == 200 and got["kvs"][0]["value"] == val, (url, got)


async def phase_rss(ctx: Ctx) -> None:
    pids = ctx.cluster.pids()
    before = [read_rss_mib(p) for p in pids if p]
    log(f"{ctx.system}: rss before load {['%.1f' % x for x in before if x]} MiB; loading {RSS_KEYS} keys")
    done, secs, errs = await load_keys(ctx.session, ctx.cluster.endpoints, "bench/rss/", RSS_KEYS,
                                       ctx.bodies.values, concurrency=8)
    params = {"keys": RSS_KEYS, "value_bytes": VALUE_SIZE, "txn_ops": TXN_OPS, "load_concurrency": 8}
    emit("load", "txn128", ctx.system, "keys_per_s", done / secs if secs else None, "keys/s",
         keys_acked=done, seconds=round(secs, 2), errors=sum(errs.values()), **params)
    # Wait (bounded) until every member has applied all of them, then let the heap settle.
    deadline = time.monotonic() + 30
    counts: list[int | None] = []
    while time.monotonic() < deadline:
        counts = [await count_prefix(ctx.session, u, "bench/rss/") for u in ctx.cluster.endpoints]
        if all(c == done for c in counts):
            break
        await asyncio.sleep(0.2)
    if not all(c == done for c in counts):
        log(f"  ANOMALY {ctx.system}: members' key counts {counts}, expected {done}")
    await asyncio.sleep(1.0)
    after = [read_rss_mib(p) for p in ctx.cluster.pids() if p]
    after = [x for x in after if x is not None]
    emit("rss", "100k_keys", ctx.system, "rss_max", max(after), "MiB", members=after and [round(x, 1) for x in after],
         member_counts=counts, **params)
    emit("rss", "100k_keys", ctx.system, "rss_mean", sum(after) / len(after), "MiB", **params)
    emit("rss", "fresh", ctx.system, "rss_mean", sum(x for x in before if x) / max(1, len(before)), "MiB")


async def ensure_put_keys(ctx: Ctx) -> None:
    """The range phase reads existing keys: preload the 10k put keys if the put phase did not run."""
    if ctx.put_keys_loaded:
        return
    log(f"{ctx.system}: preloading {PUT_KEYS} keys for the range phase")
    # The put key space is bench/put/%05d (load_keys writes %06d names), so write it here directly.
    batches = [list(range(s, min(PUT_KEYS, s + TXN_OPS))) for s in range(0, PUT_KEYS, TXN_OPS)]
    for n, b in enumerate(batches):
        ops = b",".join(b'{"request_put":{"key":"' + ctx.bodies.put_keys[i] + b'","value":"'
                        + ctx.bodies.values[i % 64] + b'"}}' for i in b)
        url = ctx.cluster.endpoints[n % 3] + "/v3/kv/txn"
        async with ctx.session.post(url, data=b'{"success":[' + ops + b"]}") as r:
            if r.status != 200:
                log(f"  preload txn failed: {r.status} {(await r.read())[:200]!r}")
    ctx.put_keys_loaded = True


async def phase_put(ctx: Ctx) -> None:
    clients = 64
    eps = [u + "/v3/kv/put" for u in ctx.cluster.endpoints]
    leader = await asyncio.to_thread(ctx.cluster.leader)
    cases = [("round_robin", [eps[w % 3] for w in range(clients)]), ("leader_only", [eps[leader]] * clients)]
    for case, urls in cases:
        log(f"{ctx.system}: put {case}, {clients} clients, {ctx.duration}s (+{WARMUP}s warm-up)")
        res = await closed_loop(ctx.session, urls, ctx.bodies.put, ctx.duration, ctx.cluster.pids())
        report_loop("put", case, ctx.system, res, clients=clients, keys=PUT_KEYS, value_bytes=VALUE_SIZE,
                    leader=leader)
        if res.errors:
            log(f"  ANOMALY {ctx.system} put {case}: errors {dict(res.errors)}")
    ctx.put_keys_loaded = True


async def phase_range(ctx: Ctx) -> None:
    await ensure_put_keys(ctx)
    clients = 64
    eps = [u + "/v3/kv/range" for u in ctx.cluster.endpoints]
    urls = [eps[w % 3] for w in range(clients)]
    for case, mk in (("linearizable", ctx.bodies.range_lin), ("serializable", ctx.bodies.range_ser)):
        log(f"{ctx.system}: range {case}, {clients} clients, {ctx.duration}s (+{WARMUP}s warm-up)")
        res = await closed_loop(ctx.session, urls, mk, ctx.duration, ctx.cluster.pids())
        report_loop("range", case, ctx.system, res, clients=clients, keys=PUT_KEYS, endpoints="round_robin")
        if res.errors:
            log(f"  ANOMALY {ctx.system} range {case}: errors {dict(res.errors)}")


async def phase_watch(ctx: Ctx, rate: float = 200.0, seconds: float = 5.0) -> None:
    leader = await asyncio.to_thread(ctx.cluster.leader)
    follower = next(i for i in range(3) if i != leader) if ctx.watch_member == "follower" else leader
    prefix = f"bench/watch/{int(time.time() * 1000)}/".encode()
    create = jdumps({"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}})
    put_url = ctx.cluster.endpoints[leader] + "/v3/kv/put"
    watch_url = ctx.cluster.endpoints[follower] + "/v3/watch"
    n_warm, n_meas = int(rate * WARMUP), int(rate * seconds)
    total = n_warm + n_meas
    sent: dict[int, float] = {}
    recv: dict[int, float] = {}
    put_errors: Counter = Counter()
    created = asyncio.Event()
    stream_errors: list[str] = []
    keylen = len(prefix)

    # The watch stream never ends by itself: no total timeout, only a connect timeout.
    resp = await ctx.session.post(watch_url, data=create,
                                  timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_read=None))
    if resp.status != 200:
        log(f"  ANOMALY {ctx.system}: watch returned {resp.status} {(await resp.read())[:200]!r}")
        resp.release()
        return

    async def reader() -> None:
        # aiohttp's line reader refuses lines > 128 KiB; read chunks and split on b"\n" ourselves.
        buf = b""
        async for chunk in resp.content.iter_any():
            now = time.monotonic()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                msg = jloads(line)
                if "error" in msg:
                    stream_errors.append(line[:300].decode(errors="replace"))
                    continue
                result = msg.get("result", {})
                if result.get("created"):
                    created.set()
                for ev in result.get("events", ()):
                    try:
                        idx = int(base64.b64decode(ev["kv"]["key"])[keylen:])
                    except (KeyError, ValueError):
                        continue
                    recv.setdefault(idx, now)

    async def put(i: int) -> None:
        body = jdumps({"key": b64(prefix + b"%06d" % i), "value": ctx.bodies.values[i % 64].decode()})
        sent[i] = time.monotonic()
        try:
            async with ctx.session.post(put_url, data=body) as r:
                await r.read()
                if r.status != 200:
                    put_errors[str(r.status)] += 1
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            put_errors[type(exc).__name__] += 1

    rtask = asyncio.create_task(reader())
    try:
        await asyncio.wait_for(created.wait(), timeout=5)
    except asyncio.TimeoutError:
        log(f"  ANOMALY {ctx.system}: no created message within 5 s")
    log(f"{ctx.system}: watch on member {follower}, {rate:.0f} puts/s to leader {leader} for {seconds}s "
        f"(+{WARMUP}s warm-up)")
    puts = []
    t0 = time.monotonic()
    with CpuMeter(ctx.cluster.pids()) as cpu:
        for i in range(total):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            puts.append(asyncio.create_task(put(i)))
        await asyncio.wait_for(asyncio.gather(*puts), timeout=30)
    send_span = time.monotonic() - t0
    # Wait (bounded) for the stragglers.
    deadline = time.monotonic() + 5
    while len(recv) < total and time.monotonic() < deadline and not rtask.done():
        await asyncio.sleep(0.05)
    rtask.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await rtask
    resp.close()
    lats = sorted((recv[i] - sent[i]) * 1000 for i in range(n_warm, total) if i in recv and i in sent)
    missing = n_meas - len(lats)
    params = {"rate_per_s": rate, "seconds": seconds, "events_expected": n_meas, "events_received": len(lats),
              "put_errors": sum(put_errors.values()), "achieved_rate": round(total / send_span, 1),
              "watcher": ctx.watch_member, "writer": "leader"}
    emit("watch", "prefix", ctx.system, "latency_p50", percentile(lats, 50), "ms", **params)
    emit("watch", "prefix", ctx.system, "latency_p99", percentile(lats, 99), "ms",
         max_ms=round(lats[-1], 3) if lats else None, server_cpu=round(cpu.server, 2),
         background_cpu=round(cpu.background, 2))
    if missing or put_errors or stream_errors:
        log(f"  ANOMALY {ctx.system} watch: missing {missing} events, put errors {dict(put_errors)}, "
            f"stream errors {stream_errors[:3]}")


async def phase_failover(ctx: Ctx, clients: int = 16, pre: float = 2.0, post: float = 3.0,
                         max_outage: float = 30.0, req_timeout: float = 0.5) -> None:
    cl = ctx.cluster
    leader = await asyncio.to_thread(cl.leader)
    followers = [i for i in range(3) if i != leader]
    successes: list[float] = []  # completion times of acknowledged writes
    sent_after_kill_ok: list[float] = []  # ... of those whose request was sent after the kill
    kill_at = [float("inf")]
    errs: Counter = Counter()
    stop = [False]
    hard_end = time.monotonic() + pre + max_outage + post + 5
    timeout = aiohttp.ClientTimeout(total=req_timeout)

    async def writer(w: int) -> None:
        rng = random.Random(1000 + w)
        url = cl.endpoints[followers[w % 2]] + "/v3/kv/put"
        while not stop[0] and time.monotonic() < hard_end:
            sent = time.monotonic()
            try:
                async with ctx.session.post(url, data=ctx.bodies.put(rng), timeout=timeout) as r:
                    await r.read()
                    if r.status == 200:
                        done = time.monotonic()
                        successes.append(done)
                        if sent > kill_at[0]:
                            sent_after_kill_ok.append(done)
                        continue
                    errs[str(r.status)] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                errs[type(exc).__name__] += 1
            await asyncio.sleep(0.02)

    log(f"{ctx.system}: failover, {clients} writers via followers {followers}, killing leader {leader}")
    tasks = [asyncio.create_task(writer(w)) for w in range(clients)]
    await asyncio.sleep(pre)
    t_start = time.monotonic() - pre
    t_kill = kill_at[0] = time.monotonic()
    await asyncio.to_thread(cl.kill, leader)
    # A write sent before the kill can still be acknowledged just after it; the first write *sent*
    # after the kill that succeeds marks when the cluster accepts writes again.
    first_after: float | None = None
    while time.monotonic() < t_kill + max_outage:
        if sent_after_kill_ok:
            first_after = sent_after_kill_ok[0]
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(post)
    stop[0] = True
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=req_timeout + 5)
    t_end = time.monotonic()
    pts = sorted([t_start] + [t for t in successes if t >= t_start] + [t_end])
    outage = max(b - a for a, b in zip(pts, pts[1:]))
    new_leader = None
    with contextlib.suppress(TimeoutError):
        new_leader = await asyncio.to_thread(cl.leader, 10.0)
    params = {"writers": clients, "via": "followers", "retry_ms": 20, "client_timeout_s": req_timeout,
              "killed": leader, "new_leader": new_leader, "writes_ok": len(successes),
              "errors": sum(errs.values()), "error_kinds": dict(errs), "election_timeout": cl.election_timeout}
    emit("failover", "kill9_leader", ctx.system, "outage", outage, "s", **params)
    emit("failover", "kill9_leader", ctx.system, "writes_resume_after_kill",
         (first_after - t_kill) if first_after else None, "s")
    if first_after is None:
        log(f"  ANOMALY {ctx.system}: no successful write within {max_outage}s of the kill")
    # Bring the member back and time how long until it serves linearizable reads again.
    t_r = time.monotonic()
    await asyncio.to_thread(cl.start, leader)
    ok = await asyncio.to_thread(wait_linearizable, cl.endpoints[leader], 60.0)
    emit("failover", "kill9_leader", ctx.system, "restarted_member_ready", (time.monotonic() - t_r) if ok else None,
         "s", member=leader)
    if not ok:
        log(f"  ANOMALY {ctx.system}: restarted member {leader} not serving within 60 s")


PHASE_FUNCS = {"rss": phase_rss, "put": phase_put, "range": phase_range, "watch": phase_watch,
               "failover": phase_failover}


# ---------------------------------------------------------------------------------------------
# driver


async def run_system(system: str, root: Path, args: argparse.Namespace, bodies: Bodies) -> None:
    pki = PeerPKI(root / "pki") if args.peer_tls else None
    cluster: Cluster = EtcdCluster(root / system, args.etcd_bin, pki) if system == "etcd" \
        else PilothouseCluster(root / system, pki, fsync=system != "pilothouse-nofsync")
    ACTIVE.append(cluster)
    log(f"{system}: starting 3 members on {cluster.endpoints}")
    try:
        t0 = time.monotonic()
        cluster.start()
        await asyncio.to_thread(cluster.wait_ready, 60.0)
        log(f"{system}: ready in {time.monotonic() - t0:.1f}s, pids {cluster.pids()}")
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
            ctx = Ctx(system, cluster, session, bodies, args.duration, args.watch_member)
            await sanity(ctx)
            for phase in args.only:
                try:
                    await PHASE_FUNCS[phase](ctx)
                except Exception as exc:  # report and go on with the next phase
                    log(f"  ANOMALY {system} phase {phase} failed: {type(exc).__name__}: {exc}")
                    import traceback
                    traceback.print_exc(file=sys.stderr)
                    # A member could have been left dead; bring it back for the next phase.
                    for i in range(cluster.size):
                        if not cluster.alive(i):
                            cluster.start(i)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.to_thread(cluster.wait_ready, 30.0)
    except Exception:
        log(f"{system}: member logs (tails):\n{cluster.log_tail()}")
        raise
    finally:
        cluster.close()
        ACTIVE.remove(cluster)
        log(f"{system}: stopped")


def emit_ratios(results: list[dict[str, Any]], round_no: int | None = None) -> list[dict[str, Any]]:
    """Print (and return) the ratio of every metric both systems of a RATIO_PAIRS pair reported."""
    by_key: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in results:
        by_key.setdefault((r["bench"], r["case"], r["metric"]), {})[r["system"]] = r
    ratios = []
    for (bench, case, metric), d in by_key.items():
        for num, den in RATIO_PAIRS:
            p, e = d.get(num), d.get(den)
            if not p or not e or not isinstance(p["value"], (int, float)) or not isinstance(e["value"], (int, float)):
                continue
            ratio = p["value"] / e["value"] if e["value"] else None
            rec = {"bench": bench, "case": case, "system": "ratio", "metric": metric,
                   "value": round(ratio, 4) if ratio is not None else None, "unit": f"{num}/{den}",
                   num: p["value"], den: e["value"], "of_unit": p["unit"]}
            if round_no is not None:
                rec["round"] = round_no
            ratios.append(rec)
            print(json.dumps(rec), flush=True)
    return ratios


def emit_median_ratios(ratios: list[dict[str, Any]]) -> None:
    """One line per metric over all rounds: the median ratio, and each round's."""
    by_key: dict[tuple[str, str, str, str], list[float]] = {}
    for r in ratios:
        if r["value"] is not None:
            by_key.setdefault((r["bench"], r["case"], r["metric"], r["unit"]), []).append(r["value"])
    for (bench, case, metric, unit), values in by_key.items():
        print(json.dumps({"bench": bench, "case": case, "system": "ratio", "metric": metric,
                          "value": round(statistics.median(values), 4), "unit": unit,
                          "summary": "median over rounds", "rounds": values}), flush=True)


ACTIVE: list[Cluster] = []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(PHASES),
                    help=f"comma-separated phases, run in this fixed order: {','.join(PHASES)}")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds of measured load per throughput case")
    ap.add_argument("--systems", default="pilothouse,etcd",
                    help="comma-separated: pilothouse, etcd, pilothouse-nofsync (--unsafe-no-fsync)")
    ap.add_argument("--etcd-bin", default=shutil.which("etcd") or "/usr/bin/etcd")
    ap.add_argument("--watch-member", choices=("follower", "leader"), default="follower",
                    help="member the watcher connects to (the writer always writes to the leader)")
    ap.add_argument("--keep-dir", action="store_true", help="keep the temporary data directories and logs")
    ap.add_argument("--peer-tls", action="store_true",
                    help="peer traffic over mutual TLS for both systems (as pilot up and compose run the store)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run everything this many times, alternating which system goes first, and "
                         "print the median of the per-round ratios (the machine's speed drifts)")
    args = ap.parse_args(argv)
    wanted = [p.strip() for p in args.only.split(",") if p.strip()]
    bad = [p for p in wanted if p not in PHASES]
    if bad:
        ap.error(f"unknown phase(s) {bad}; choose from {PHASES}")
    args.only = [p for p in PHASES if p in wanted]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if any(s not in SYSTEMS for s in systems):
        ap.error(f"--systems takes {', '.join(SYSTEMS)}")
    if not 0 < args.duration <= 60:
        ap.error("--duration must be in (0, 60]")
    if not 1 <= args.rounds <= 20:
        ap.error("--rounds must be in [1, 20]")

    try:
        import uvloop  # noqa: F401
        runner: Callable[..., Any] = uvloop.run
    except ImportError:
        runner = asyncio.run

    root = Path(tempfile.mkdtemp(prefix="kvbench-"))
    log(f"data dirs under {root}; phases {args.only}; systems {systems}; duration {args.duration}s")
    bodies = Bodies()

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.monotonic()
    try:
        ratios = []
        for round_no in range(args.rounds):
            first = len(RESULTS)
            order = systems if round_no % 2 == 0 else systems[::-1]
            for system in order:
                runner(run_system(system, root / f"round{round_no}", args, bodies))
            ratios += emit_ratios(RESULTS[first:], round_no if args.rounds > 1 else None)
        if args.rounds > 1:
            emit_median_ratios(ratios)
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
