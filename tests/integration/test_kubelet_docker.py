"""The docker runtime against a real Docker engine: the runtime contract, where an engine answers.

Skipped (with the reason) when aiodocker is not installed, no engine answers on DOCKER_HOST or the
default socket, or no image is present to run offline (``BASE_IMAGE``, else python:3.11-slim).
Every container and sandbox the tests create is removed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubelet.runtime.base import ContainerConfig, SandboxConfig

aiodocker = pytest.importorskip("aiodocker", reason="aiodocker is not installed (the docker runtime needs it)")

IMAGE = os.environ.get("BASE_IMAGE") or "python:3.11-slim"


async def _engine_and_image() -> str | None:
    try:
        docker = aiodocker.Docker()
    except Exception as exc:  # noqa: BLE001
        return f"no Docker engine: {exc!r}"
    try:
        await asyncio.wait_for(docker.version(), 5)
        try:
            await docker.images.inspect(IMAGE)
        except aiodocker.exceptions.DockerError:
            return f"image {IMAGE} is not present (set BASE_IMAGE to a local image)"
        return None
    except Exception as exc:  # noqa: BLE001
        return f"no Docker engine answers: {exc!r}"
    finally:
        await docker.close()


@pytest.fixture
async def docker_rt(tmp_path: Path) -> AsyncIterator[object]:
    reason = await _engine_and_image()
    if reason:
        pytest.skip(reason)
    from kubelet.runtime.docker import DockerRuntime

    rt = DockerRuntime(tmp_path / "root", node_name=f"dt-{os.getpid()}", sandbox_image=IMAGE)
    await rt.start()
    try:
        yield rt
    finally:
        for uid in list(rt.sandboxes()):
            await rt.remove_pod_sandbox(uid)
        for c in rt.list_containers():
            await rt.remove_container(c.id)
        await rt.close()


def cfg(uid: str, name: str, argv: tuple[str, ...], attempt: int = 0) -> ContainerConfig:
    return ContainerConfig(pod_uid=uid, pod_name="p", pod_namespace="ns", name=name, attempt=attempt, image=IMAGE,
                           argv=argv, env={"GREETING": "hi"}, memory_limit=128 * 1024 * 1024, cpu_limit_milli=500)


async def wait_exit(rt: object, cid: str) -> object:
    for _ in range(300):
        c = rt.container(cid)  # type: ignore[attr-defined]
        if c is not None and c.state == "exited":
            return c
        await asyncio.sleep(0.1)
    raise AssertionError("container did not exit")


async def test_docker_runtime_contract(docker_rt: object, tmp_path: Path) -> None:
    rt = docker_rt
    sb = await rt.run_pod_sandbox(SandboxConfig("d1", "p", "ns", "n", tmp_path / "pod"))  # type: ignore[attr-defined]
    assert sb.ip
    exited = await rt.start_container(sb, cfg("d1", "once", ("sh", "-c", "echo $GREETING; echo err >&2; exit 3")))  # type: ignore[attr-defined]
    done = await wait_exit(rt, exited.id)
    assert done.exit_code == 3 and done.reason == "Error"  # type: ignore[attr-defined]
    for _ in range(50):
        if exited.log_path.exists() and "err" in exited.log_path.read_text():
            break
        await asyncio.sleep(0.1)
    # Docker copies the two streams independently: their relative order is not kept.
    assert sorted(line.split(" ", 3)[1:] for line in exited.log_path.read_text().splitlines()) == [
        ["stderr", "F", "err"], ["stdout", "F", "hi"]]
    running = await rt.start_container(sb, cfg("d1", "srv", ("sleep", "300"), attempt=1))  # type: ignore[attr-defined]
    assert running.state == "running" and running.labels["io.kubernetes.container.restartCount"] == "1"
    result = await rt.exec_sync(running.id, ["sh", "-c", "echo $GREETING; exit 4"], 10)  # type: ignore[attr-defined]
    assert result.exit_code == 4 and result.stdout.strip() == b"hi"
    await rt.close()  # type: ignore[attr-defined]
    from kubelet.runtime.docker import DockerRuntime

    again = DockerRuntime(rt.root, node_name=rt.node_name, sandbox_image=IMAGE)  # type: ignore[attr-defined]
    await again.start()
    try:
        assert {c.id: c.state for c in again.list_containers("d1")} == {exited.id: "exited", running.id: "running"}
        assert again.sandboxes()["d1"].ip == sb.ip
        stopped = await again.stop_container(running.id, 1)
        assert stopped.state == "exited"
        await again.remove_pod_sandbox("d1")
    finally:
        await again.close()
