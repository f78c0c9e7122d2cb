"""The kubelet's status manager writes a pod's status once per real change."""

from __future__ import annotations

import asyncio
from typing import Any

from kubelet.statusmanager import StatusManager


class SlowClient:
    """A RESTClient stand-in whose status patches wait until released (a write in flight)."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.release = asyncio.Event()

    async def patch(self, resource: Any, name: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.patches.append(body["status"])
        await self.release.wait()
        return {}


def pod(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "p", "uid": "u1"}, "status": status or {}}


async def settle(client: SlowClient, manager: StatusManager) -> None:
    client.release.set()
    for _ in range(50):
        await asyncio.sleep(0)
    assert await manager.flush(pod(), timeout=1.0)


def test_an_equal_status_during_a_write_is_not_written_again() -> None:
    async def run() -> None:
        client = SlowClient()
        manager = StatusManager(client, concurrency=2)  # type: ignore[arg-type]
        manager.start()
        manager.set(pod(), {"phase": "Failed", "reason": None})
        await asyncio.sleep(0.01)
        assert len(client.patches) == 1  # in flight
        for _ in range(5):  # the pod worker re-syncing on the watch events of that write
            manager.set(pod(), {"phase": "Failed", "reason": None})
        await settle(client, manager)
        assert len(client.patches) == 1
        # Once written, the same status again is not sent at all.
        assert manager.set(pod({"phase": "Failed"}), {"phase": "Failed"}) is None
        await manager.stop()

    asyncio.run(run())


def test_a_different_status_during_a_write_is_written_after_it() -> None:
    async def run() -> None:
        client = SlowClient()
        manager = StatusManager(client, concurrency=2)  # type: ignore[arg-type]
        manager.start()
        manager.set(pod(), {"phase": "Running"})
        await asyncio.sleep(0.01)
        manager.set(pod(), {"phase": "Succeeded"})
        await settle(client, manager)
        assert [p["phase"] for p in client.patches] == ["Running", "Succeeded"]
        await manager.stop()

    asyncio.run(run())
