"""Resource usage for ``/stats/summary``: per container, per pod and per node, sampled in the background.

Every ``interval`` seconds (10 s, the metrics-server resolution) the sampler reads each runtime's
cumulative CPU time and memory working set per container (process runtime: the container's cgroup,
or its process group from /proc; fake: the usage its pod's annotations ask for) and the host's CPU
(/proc/stat) and memory (/proc/meminfo). ``usageNanoCores`` is the rate between the last two
samples, as cAdvisor reports it; the first sample of a container uses its average since it started.
Fake nodes report the sum of their pods as the node's usage (a fake node has no machine of its own).

The summary has the shape of the kubelet's ``stats/v1alpha1`` Summary API, which is what the API
server's metrics.k8s.io aggregation (``apiserver/metricsapi.py``) reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from apimachinery import meta as m

from .podstatus import rfc3339
from .runtime.base import ContainerStats

if TYPE_CHECKING:
    from .kubelet import Kubelet
    from .node import NodeAgent

log = logging.getLogger(__name__)

Obj = dict[str, Any]
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def host_cpu_ns() -> int:
    """Busy CPU time of the whole host (all cores), in nanoseconds."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        values = [int(v) for v in fields[:8]]
    except (OSError, ValueError):
        return 0
    busy = sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
    return busy * 1_000_000_000 // _CLK_TCK


def host_memory() -> tuple[int, int]:
    """(total bytes, available bytes)."""
    total = avail = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) * 1024
                elif line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return total, avail


@dataclass
class _Sample:
    prev: ContainerStats | None
    cur: ContainerStats


def rate(prev: ContainerStats | None, cur: ContainerStats, started_at: float) -> int:
    if prev is not None and cur.timestamp > prev.timestamp and cur.cpu_usage_core_nanoseconds >= prev.cpu_usage_core_nanoseconds:
        return int((cur.cpu_usage_core_nanoseconds - prev.cpu_usage_core_nanoseconds) / (cur.timestamp - prev.timestamp))
    elapsed = cur.timestamp - started_at
    return int(cur.cpu_usage_core_nanoseconds / elapsed) if elapsed > 0 else 0


class StatsCollector:
    def __init__(self, kubelet: Kubelet, *, interval: float = 10.0) -> None:
        self.kubelet = kubelet
        self.interval = interval
        self.samples: dict[str, _Sample] = {}  # container id → samples
        self.host: tuple[tuple[float, int] | None, tuple[float, int] | None] = (None, None)
        self._task: asyncio.Task[None] | None = None
        self.last_sample = 0.0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="stats")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:  # noqa: BLE001 - stats are best effort
                log.exception("stats sampling failed")
            await asyncio.sleep(self.interval)

    async def sample(self) -> None:
        seen: set[str] = set()
        for agent in list(self.kubelet.agents.values()):
            stats = await agent.runtime.all_stats()
            for cid, st in stats.items():
                seen.add(cid)
                old = self.samples.get(cid)
                self.samples[cid] = _Sample(old.cur if old is not None else None, st)
        for cid in [c for c in self.samples if c not in seen]:
            del self.samples[cid]
        now = time.time()
        self.host = (self.host[1], (now, host_cpu_ns()))
        self.last_sample = now

    async def fresh(self, max_age: float = 15.0) -> None:
        if time.time() - self.last_sample > max_age:
            await self.sample()

    # ------------------------------------------------------------------ summary

    def summary(self, agent: NodeAgent) -> Obj:
        pods: list[Obj] = []
        total_cpu = total_nanocores = total_ws = 0
        now_ts = rfc3339(time.time())
        for worker in list(agent.workers.values()):
            pod = worker.pod
            containers: list[Obj] = []
            pod_cpu = pod_nanocores = pod_ws = pod_usage = pod_rss = 0
            latest = None
            for c in agent.runtime.list_containers(worker.uid):
                if not c.running:
                    continue
                sample = self.samples.get(c.id)
                if sample is None:
                    continue
                cur = sample.cur
                nanocores = rate(sample.prev, cur, c.started_at)
                ts = rfc3339(cur.timestamp)
                latest = ts
                containers.append({
                    "name": c.name, "startTime": rfc3339(c.started_at),
                    "cpu": {"time": ts, "usageNanoCores": nanocores, "usageCoreNanoSeconds": cur.cpu_usage_core_nanoseconds},
                    "memory": {"time": ts, "usageBytes": cur.memory_usage_bytes, "workingSetBytes": cur.memory_working_set_bytes,
                               "rssBytes": cur.memory_rss_bytes, "pageFaults": 0, "majorPageFaults": 0},
                })
                pod_cpu += cur.cpu_usage_core_nanoseconds
                pod_nanocores += nanocores
                pod_ws += cur.memory_working_set_bytes
                pod_usage += cur.memory_usage_bytes
                pod_rss += cur.memory_rss_bytes
            if not containers:
                continue
            ts = latest or now_ts
            pods.append({
                "podRef": {"name": m.name(pod), "namespace": m.namespace(pod), "uid": worker.uid},
                "startTime": (pod.get("status") or {}).get("startTime") or rfc3339(worker.first_seen),
                "containers": containers,
                "cpu": {"time": ts, "usageNanoCores": pod_nanocores, "usageCoreNanoSeconds": pod_cpu},
                "memory": {"time": ts, "usageBytes": pod_usage, "workingSetBytes": pod_ws, "rssBytes": pod_rss,
                           "pageFaults": 0, "majorPageFaults": 0},
                "volume": [], "ephemeral-storage": {"time": ts, "usedBytes": 0},
            })
            total_cpu += pod_cpu
            total_nanocores += pod_nanocores
            total_ws += pod_ws
        node: Obj = {"nodeName": agent.name, "systemContainers": [], "startTime": rfc3339(self.kubelet.started_at)}
        if agent.runtime.name == "fake":
            node["cpu"] = {"time": now_ts, "usageNanoCores": total_nanocores, "usageCoreNanoSeconds": total_cpu}
            node["memory"] = {"time": now_ts, "usageBytes": total_ws, "workingSetBytes": total_ws, "rssBytes": total_ws,
                              "pageFaults": 0, "majorPageFaults": 0}
        else:
            prev, cur = self.host
            nanocores = 0
            cpu_total = cur[1] if cur else host_cpu_ns()
            if prev and cur and cur[0] > prev[0]:
                nanocores = int((cur[1] - prev[1]) / (cur[0] - prev[0]))
            total, avail = host_memory()
            node["cpu"] = {"time": now_ts, "usageNanoCores": nanocores, "usageCoreNanoSeconds": cpu_total}
            node["memory"] = {"time": now_ts, "availableBytes": avail, "usageBytes": total - avail,
                              "workingSetBytes": total - avail, "rssBytes": total - avail, "pageFaults": 0,
                              "majorPageFaults": 0}
            with contextlib.suppress(OSError):
                usage = shutil.disk_usage(self.kubelet.config.root_dir)
                node["fs"] = {"time": now_ts, "availableBytes": usage.free, "capacityBytes": usage.total,
                              "usedBytes": usage.used}
            with contextlib.suppress(OSError, ValueError):
                node["rlimit"] = {"time": now_ts, "maxpid": int(open("/proc/sys/kernel/pid_max").read()),
                                  "curproc": sum(1 for p in os.scandir("/proc") if p.name.isdigit())}
        return {"node": node, "pods": pods}
