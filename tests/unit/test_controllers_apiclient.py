"""The generic pieces the controller-manager added to apiclient: removable informer handlers and the
component shell (health/metrics HTTP, running until a signal)."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp

from apiclient.component import health_app, run_until_signal, start_http
from apiclient.config import ClientConfig
from apiclient.informer import Informer
from apiclient.rest import CONFIGMAPS, RESTClient
from tests.harness.kvcluster import free_ports


def _cm(name: str, rv: str) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


async def test_removed_handlers_get_no_more_events() -> None:
    client = RESTClient(ClientConfig(servers=("https://127.0.0.1:1",)))
    inf = Informer(client, CONFIGMAPS)
    seen: list[str] = []
    kept: list[str] = []
    handle = inf.add_event_handler(on_add=lambda o: seen.append(o["metadata"]["name"]))
    inf.add_event_handler(on_add=lambda o: kept.append(o["metadata"]["name"]))
    inf._handle({"type": "ADDED", "object": _cm("a", "1")})
    inf.remove_event_handler(handle)
    inf.remove_event_handler(handle)  # twice is harmless
    inf._handle({"type": "ADDED", "object": _cm("b", "2")})
    assert seen == ["a"] and kept == ["a", "b"]
    await client.close()


async def test_health_app_serves_health_readiness_and_metrics() -> None:
    ready = {"ok": False}
    port = free_ports(1)[0]
    runner = await start_http(health_app(ready=lambda: ready["ok"], metrics=lambda: b"up 1\n"), f"127.0.0.1:{port}")
    try:
        async with aiohttp.ClientSession() as s:
            async def get(path: str) -> tuple[int, str]:
                async with s.get(f"http://127.0.0.1:{port}{path}") as r:
                    return r.status, await r.text()

            assert await get("/healthz") == (200, "ok")
            assert (await get("/readyz"))[0] == 503
            ready["ok"] = True
            assert await get("/readyz") == (200, "ok")
            assert await get("/metrics") == (200, "up 1\n")
    finally:
        await runner.cleanup()


async def test_run_until_signal_cancels_the_work_and_reports_failures() -> None:
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cancelled.set()

    loop = asyncio.get_running_loop()
    loop.call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
    assert await run_until_signal(forever()) is None
    assert cancelled.is_set()

    async def broken() -> None:
        raise RuntimeError("boom")

    failure = await run_until_signal(broken())
    assert isinstance(failure, RuntimeError)
