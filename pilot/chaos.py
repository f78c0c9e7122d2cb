"""``pilot chaos``: break a running local cluster on a bounded schedule and check it heals.

Faults are real: ``kill -9`` or SIGSTOP (then SIGCONT) of a random component found by its pid
file; the supervisor restarts killed ones. While faults run, writers create and update ConfigMaps
through the API (any API server), and watchers follow them. Afterwards the report says whether:

* every acknowledged write is readable with its acknowledged content (nothing acked was lost);
* every watch delivered resourceVersions in increasing order;
* Deployments are back at their desired ready replicas (when controllers and kubelets run);
* every component is healthy again, and how long each fault took to recover from.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yaml

from .local import Layout, component_health, read_pid

NAMESPACE = "default"
PREFIX = "chaos-"


@dataclass
class Report:
    faults: list[dict[str, Any]] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # configmap name -> acknowledged value
    write_errors: int = 0
    watch_violations: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    unhealthy: list[str] = field(default_factory=list)
    deployments_short: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.watch_violations or self.unhealthy or self.deployments_short)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "faults": self.faults, "acked_writes": len(self.acked), "write_errors": self.write_errors,
                "lost_writes": self.lost, "watch_violations": self.watch_violations,
                "unhealthy_after": self.unhealthy, "deployments_short": self.deployments_short}


class _API:
    def __init__(self, layout: Layout) -> None:
        config = yaml.safe_load((layout.state_dir / "kubeconfig").read_text())
        self.token = config["users"][0]["user"]["token"]
        self.urls = layout.api_urls
        self.ssl = ssl.create_default_context(cafile=str(layout.state_dir / "pki" / "ca.crt"))
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"})

    async def call(self, method: str, path: str, body: Any = None, *, timeout: float = 5.0,
                   content_type: str = "application/json") -> tuple[int, Any]:
        last: tuple[int, Any] = (0, None)
        for url in random.sample(self.urls, len(self.urls)):
            try:
                async with self.session.request(method, url + path, data=json.dumps(body) if body is not None else None,
                                                ssl=self.ssl, timeout=aiohttp.ClientTimeout(total=timeout),
                                                headers={"Content-Type": content_type}) as resp:
                    data = await resp.read()
                    return resp.status, json.loads(data) if data else None
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                last = (0, repr(exc))
        return last

    async def close(self) -> None:
        await self.session.close()


async def _writer(api: _API, report: Report, stop: asyncio.Event, n: int) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        name = f"{PREFIX}{n}-{i % 20}"
        value = f"{n}-{i}"
        code, _ = await api.call("PATCH", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}?fieldManager=chaos",
                                 {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                  "data": {"v": value}}, content_type="application/apply-patch+yaml")
        if code in (200, 201):
            report.acked[name] = value
        else:
            # Unknown outcome: the object may hold this value or the previous acked one.
            report.write_errors += 1
            report.acked.pop(name, None)
        await asyncio.sleep(0.02)


async def _watcher(api: _API, report: Report, stop: asyncio.Event) -> None:
    last = 0
    while not stop.is_set():
        url = random.choice(api.urls)
        q = f"?watch=1&allowWatchBookmarks=true&timeoutSeconds=30{f'&resourceVersion={last}' if last else ''}"
        try:
            async with api.session.get(url + f"/api/v1/namespaces/{NAMESPACE}/configmaps{q}", ssl=api.ssl,
                                       timeout=aiohttp.ClientTimeout(total=40, sock_read=35)) as resp:
                buf = b""
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        ev = json.loads(line)
                        if ev["type"] == "ERROR":
                            last = 0  # 410: relist from now
                            continue
                        rv = int(ev["object"]["metadata"]["resourceVersion"])
                        if ev["type"] != "BOOKMARK" and rv <= last:
                            report.watch_violations.append(f"{ev['type']} rv {rv} after {last}")
                        last = max(last, rv)
                    if stop.is_set():
                        return
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            await asyncio.sleep(0.2)


def _fault_targets(layout: Layout) -> list[str]:
    return [c.name for c in layout.components()]


async def _inject(layout: Layout, report: Report, rnd: random.Random, duration: float) -> None:
    deadline = time.monotonic() + duration
    loop = asyncio.get_running_loop()
    while time.monotonic() < deadline:
        await asyncio.sleep(rnd.uniform(2.0, 5.0))
        if time.monotonic() >= deadline:
            break
        target = rnd.choice(_fault_targets(layout))
        pid = read_pid(layout.state_dir / "pids" / f"{target}.pid")
        if pid is None:
            continue
        kind = rnd.choice(["kill", "kill", "stop"])
        started = time.monotonic()
        try:
            if kind == "kill":
                os.kill(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGSTOP)
                await asyncio.sleep(rnd.uniform(2.0, 6.0))
                os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            continue
        recovered = None
        while time.monotonic() - started < 60:
            rows = await loop.run_in_executor(None, component_health, layout)
            if all(r["health"] == "ok" for r in rows):
                recovered = time.monotonic() - started
                break
            await asyncio.sleep(0.25)
        report.faults.append({"component": target, "fault": "kill -9" if kind == "kill" else "SIGSTOP",
                              "recovered_after_s": round(recovered, 2) if recovered is not None else None})


async def run(layout: Layout, *, duration: float, seed: int) -> Report:
    rnd = random.Random(seed)
    report = Report()
    api = _API(layout)
    stop = asyncio.Event()
    try:
        tasks = [asyncio.create_task(_writer(api, report, stop, n)) for n in range(3)]
        tasks.append(asyncio.create_task(_watcher(api, report, stop)))
        await _inject(layout, report, rnd, duration)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + 60
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = await loop.run_in_executor(None, component_health, layout)
            if all(r["health"] == "ok" for r in rows):
                break
            await asyncio.sleep(0.5)
        report.unhealthy = [r["name"] for r in rows if r["health"] != "ok"]
        for name, value in sorted(report.acked.items()):
            code, obj = await api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}", timeout=10)
            if code != 200 or (obj.get("data") or {}).get("v") != value:
                report.lost.append(name)
        await _check_deployments(api, report)
    finally:
        await api.close()
    return report


async def _check_deployments(api: _API, report: Report) -> None:
    deadline = time.monotonic() + 60
    short: list[str] = []
    while time.monotonic() < deadline:
        code, lst = await api.call("GET", "/apis/apps/v1/deployments", timeout=10)
        if code != 200:
            await asyncio.sleep(1)
            continue
        short = [f"{d['metadata']['namespace']}/{d['metadata']['name']}"
                 for d in lst.get("items", [])
                 if (d.get("status") or {}).get("readyReplicas", 0) < (d.get("spec") or {}).get("replicas", 1)]
        if not short:
            break
        await asyncio.sleep(1)
    report.deployments_short = short
