"""Probes and lifecycle hooks: exec, httpGet, tcpSocket (and grpc as a TCP check), with every timing field.

A ``Prober`` runs one probe of one container instance in a loop, as the kubelet's probe worker does:
wait ``initialDelaySeconds`` after the container started, then every ``periodSeconds`` run the
handler with ``timeoutSeconds``; ``successThreshold`` consecutive successes make the result
Success, ``failureThreshold`` consecutive failures make it Failure. Readiness keeps probing and
flips both ways; a startup probe stops at its first success (liveness and readiness start then); a
failed liveness or startup probe reports once and stops — the pod worker kills the container and the
restart policy decides what comes next.

HTTP probes go to ``host`` or the pod IP, succeed on 200-399, send ``httpHeaders`` and a
``User-Agent: kube-probe/1.32``; HTTPS is not verified (as upstream). ``port`` may name a container
port. A gRPC probe is checked as a TCP connection to its port (no gRPC health client here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from .runtime.base import Runtime, RuntimeError_

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SUCCESS = "success"
FAILURE = "failure"


class ProbeHTTP:
    """The kubelet's HTTP client for httpGet probes and hooks: TLS unverified, a connection per request."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False, limit=256,
                                                                                 force_close=True))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def resolve_port(port: Any, container: Obj) -> int:
    if isinstance(port, int) and not isinstance(port, bool):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or []:
        if p.get("name") == text:
            return int(p.get("containerPort") or 0)
    raise ValueError(f"port {text!r} is not a container port")


@dataclass
class HandlerContext:
    runtime: Runtime
    container_id: str
    container: Obj
    pod_ip: str
    http: ProbeHTTP


async def run_handler(handler: Obj, ctx: HandlerContext, timeout: float) -> tuple[str, str]:
    """Run one probe/hook handler: (SUCCESS|FAILURE, output or reason)."""
    try:
        if handler.get("exec") is not None:
            command = [str(c) for c in (handler["exec"].get("command") or [])]
            if not command:
                return FAILURE, "exec: no command"
            result = await ctx.runtime.exec_sync(ctx.container_id, command, timeout)
            output = (result.stdout + result.stderr).decode(errors="replace").strip()
            if result.timed_out:
                return FAILURE, f"command {command!r} timed out"
            if result.exit_code != 0:
                return FAILURE, output or f"command {command!r} exited with {result.exit_code}"
            return SUCCESS, output
        if handler.get("httpGet") is not None:
            hg = handler["httpGet"]
            host = hg.get("host") or ctx.pod_ip or "127.0.0.1"
            port = resolve_port(hg.get("port"), ctx.container)
            scheme = str(hg.get("scheme") or "HTTP").lower()
            path = hg.get("path") or "/"
            if not path.startswith("/"):
                path = "/" + path
            headers = {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
            for h in hg.get("httpHeaders") or []:
                if h.get("name"):
                    headers[h["name"]] = str(h.get("value", ""))
            url = f"{scheme}://{host}:{port}{path}"
            async with ctx.http.session().get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout),
                                   allow_redirects=True) as resp:
                body = await resp.content.read(10 * 1024)
                if 200 <= resp.status < 400:
                    return SUCCESS, body.decode(errors="replace")
                return FAILURE, f"HTTP probe failed with statuscode: {resp.status}"
        if handler.get("tcpSocket") is not None or handler.get("grpc") is not None:
            spec = handler.get("tcpSocket") or handler.get("grpc") or {}
            host = spec.get("host") or ctx.pod_ip or "127.0.0.1"
            port = resolve_port(spec.get("port"), ctx.container)
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return SUCCESS, ""
        if handler.get("sleep") is not None:
            await asyncio.sleep(min(float(handler["sleep"].get("seconds") or 0), timeout))
            return SUCCESS, ""
        return FAILURE, "the handler has no action"
    except asyncio.TimeoutError:
        return FAILURE, f"timeout after {timeout:g}s"
    except (aiohttp.ClientError, OSError, ValueError, RuntimeError_) as exc:
        return FAILURE, str(exc) or exc.__class__.__name__


def probe_timing(probe: Obj) -> tuple[float, float, float, int, int]:
    """(initialDelay, period, timeout, successThreshold, failureThreshold) with Kubernetes' defaults."""
    def num(key: str, default: float, minimum: float) -> float:
        value = probe.get(key)
        try:
            return max(minimum, float(value)) if value is not None else default
        except (TypeError, ValueError):
            return default

    return (num("initialDelaySeconds", 0, 0), num("periodSeconds", 10, 1), num("timeoutSeconds", 1, 1),
            int(num("successThreshold", 1, 1)), int(num("failureThreshold", 3, 1)))


class Prober:
    """One probe loop; ``on_result(kind, ok, message)`` is called whenever the result changes."""

    def __init__(self, kind: str, probe: Obj, ctx: HandlerContext,
                 on_result: Callable[[str, bool, str], Awaitable[None] | None]) -> None:
        self.kind = kind
        self.probe = probe
        self.ctx = ctx
        self.on_result = on_result
        self.result: bool | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self, delay_offset: float = 0.0) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(delay_offset),
                                                           name=f"probe-{self.kind}-{self.ctx.container_id[:8]}")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def _report(self, ok: bool, message: str) -> None:
        self.result = ok
        out = self.on_result(self.kind, ok, message)
        if asyncio.iscoroutine(out):
            await out

    async def _run(self, delay_offset: float) -> None:
        initial, period, timeout, success_threshold, failure_threshold = probe_timing(self.probe)
        if self.kind != "readiness":
            success_threshold = 1  # liveness and startup probes must use 1 (validation enforces it upstream)
        await asyncio.sleep(max(0.0, initial - delay_offset))
        successes = failures = 0
        while True:
            result, output = await run_handler(self.probe, self.ctx, timeout)
            if result == SUCCESS:
                successes, failures = successes + 1, 0
                if successes >= success_threshold and self.result is not True:
                    await self._report(True, output)
                    if self.kind == "startup":
                        return
            else:
                failures, successes = failures + 1, 0
                if failures >= failure_threshold and self.result is not False:
                    await self._report(False, output)
                    if self.kind in ("liveness", "startup"):
                        return
            await asyncio.sleep(period)
