"""``kubectl attach -i`` in the docker runtime: OpenStdin/StdinOnce/Tty and the engine's attach endpoint.

Runs where tests/integration/test_kubelet_docker.py runs (an engine and ``BASE_IMAGE``), skips otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubelet.runtime.base import ContainerConfig, RuntimeError_, SandboxConfig
from tests.integration.test_kubelet_docker import IMAGE, docker_rt, wait_exit  # noqa: F401 - the fixture
from tests.unit.test_kubelet_attach import collect

pytest.importorskip("aiodocker", reason="aiodocker is not installed (the docker runtime needs it)")


def cfg(uid: str, script: str, **kw: Any) -> ContainerConfig:
    return ContainerConfig(pod_uid=uid, pod_name="p", pod_namespace="ns", name="c", attempt=0, image=IMAGE,
                           argv=("sh", "-c", script), env={}, **kw)


async def test_docker_attach_stdin(docker_rt: Any, tmp_path: Path) -> None:
    rt = docker_rt
    sb = await rt.run_pod_sandbox(SandboxConfig("a1", "p", "ns", "n", tmp_path / "pod"))
    c = await rt.start_container(sb, cfg("a1", "while read line; do echo got:$line; done; echo stdin-closed",
                                         stdin=True, stdin_once=True))
    output = rt.attach_output(c.id)
    stdin = await rt.attach_stdin(c.id)
    await stdin.write(b"hello\n")
    assert b"got:hello" in await collect(output, b"got:hello")
    await stdin.detach()  # StdinOnce: the engine closes the container's stdin
    assert b"stdin-closed" in await collect(output, b"stdin-closed")
    assert (await wait_exit(rt, c.id)).exit_code == 0  # type: ignore[attr-defined]


async def test_docker_attach_tty_resize_and_no_stdin(docker_rt: Any, tmp_path: Path) -> None:
    rt = docker_rt
    sb = await rt.run_pod_sandbox(SandboxConfig("a2", "p", "ns", "n", tmp_path / "pod"))
    c = await rt.start_container(sb, cfg("a2", "read line; stty size; printf 'prompt> '; read line; echo got:$line",
                                         stdin=True, tty=True))
    stdin = await rt.attach_stdin(c.id)
    output = stdin.output()  # with a tty: the raw output of the engine's attach, not the line-based log
    assert output is not None
    await stdin.resize(123, 45)
    await stdin.write(b"size\n")
    seen = await collect(output, b"prompt> ")
    assert b"45 123" in seen
    await stdin.write(b"x\n")
    assert b"got:x" in await collect(output, b"got:x")
    await stdin.detach()
    plain = await rt.start_container(sb, ContainerConfig(pod_uid="a2", pod_name="p", pod_namespace="ns", name="d",
                                                         attempt=0, image=IMAGE, argv=("sleep", "300"), env={}))
    with pytest.raises(RuntimeError_, match="stdin: true"):
        await rt.attach_stdin(plain.id)
