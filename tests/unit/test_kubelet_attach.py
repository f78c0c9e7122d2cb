"""Attaching to a container's stdin (``kubectl attach -i``) in the process runtime: the shim's
``attach.sock``, ``stdinOnce``, a pty with resize, and a runtime restarted over the same root (a
kubelet killed with -9) attaching again. The fake runtime refuses clearly.

Every container is a real host process; each test kills what it started (``kill_all``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubelet.ipam import IPAM
from kubelet.runtime.base import ContainerConfig, NotSupported, Runtime, RuntimeError_, SandboxConfig
from kubelet.runtime.fake import FakeRuntime
from kubelet.runtime.process import ProcessRuntime, kill_all


def config(uid: str, script: str, **kw: Any) -> ContainerConfig:
    return ContainerConfig(pod_uid=uid, pod_name=f"pod-{uid}", pod_namespace="ns", name="c", attempt=0,
                           image="busybox:1.36", argv=("sh", "-c", script), env={}, **kw)


@pytest.fixture
async def root(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "root"
    yield path
    kill_all(path)


async def start(rt: Runtime, uid: str, script: str, **kw: Any) -> str:
    sandbox = await rt.run_pod_sandbox(SandboxConfig(uid, f"pod-{uid}", "ns", "attach", Path("/tmp") / uid))
    status = await rt.start_container(sandbox, config(uid, script, **kw))
    assert status.running, status
    return status.id


async def collect(output: AsyncIterator[tuple[int, bytes]], until: bytes, timeout: float = 20.0) -> bytes:
    """Output of an attach until ``until`` was seen (bounded)."""
    seen = b""

    async def run() -> None:
        nonlocal seen
        async for _channel, chunk in output:
            seen += chunk
            if until in seen:
                return

    await asyncio.wait_for(run(), timeout)
    return seen


async def wait_exit(rt: Runtime, cid: str, timeout: float = 20.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        c = rt.container(cid)
        if c is not None and not c.running:
            return c
        await asyncio.sleep(0.05)
    raise AssertionError(f"container {cid} did not exit")


async def test_stdin_reaches_the_container_and_its_answer_the_attach(root: Path) -> None:
    rt = ProcessRuntime(root, node_name="attach", ipam=IPAM("127.78.0.0/16"), cgroups=False)
    await rt.start()
    try:
        cid = await start(rt, "u1", "read line; echo got:$line", stdin=True)
        output = rt.attach_output(cid)
        stdin = await rt.attach_stdin(cid)
        await stdin.write(b"hello\n")
        assert b"got:hello\n" in await collect(output, b"got:hello")
        await stdin.detach()
        assert (await wait_exit(rt, cid)).exit_code == 0
    finally:
        await rt.close()


async def test_stdin_once_closes_after_the_first_session(root: Path) -> None:
    rt = ProcessRuntime(root, node_name="attach", ipam=IPAM("127.78.0.0/16"), cgroups=False)
    await rt.start()
    try:
        cid = await start(rt, "u2", "cat; echo stdin-closed", stdin=True, stdin_once=True)
        output = rt.attach_output(cid)
        stdin = await rt.attach_stdin(cid)
        await stdin.write(b"one\n")
        await collect(output, b"one\n")
        await stdin.detach()  # the session ends: cat reads EOF
        assert b"stdin-closed" in await collect(output, b"stdin-closed")
        assert (await wait_exit(rt, cid)).exit_code == 0
        with pytest.raises(RuntimeError_):
            await rt.attach_stdin(cid)  # not running any more
    finally:
        await rt.close()


async def test_stdin_once_client_eof_closes_and_later_sessions_are_refused(root: Path) -> None:
    rt = ProcessRuntime(root, node_name="attach", ipam=IPAM("127.78.0.0/16"), cgroups=False)
    await rt.start()
    try:
        cid = await start(rt, "u3", "cat; echo stdin-closed; sleep 300", stdin=True, stdin_once=True)
        output = rt.attach_output(cid)
        stdin = await rt.attach_stdin(cid)
        await stdin.write(b"one\n")
        await stdin.close_stdin()  # kubectl's v5 close frame
        assert b"stdin-closed" in await collect(output, b"stdin-closed")
        await stdin.detach()
        with pytest.raises(RuntimeError_, match="stdinOnce"):
            await rt.attach_stdin(cid)
    finally:
        await rt.close()


async def test_without_stdin_once_stdin_outlives_sessions_and_a_restarted_runtime(root: Path) -> None:
    # A root directory longer than a unix socket path may be (107 bytes) on purpose.
    root = root / ("deep-" * 20)
    rt = ProcessRuntime(root, node_name="attach", ipam=IPAM("127.78.0.0/16"), cgroups=False)
    await rt.start()
    try:
        cid = await start(rt, "u4", "while read line; do echo got:$line; done; echo eof", stdin=True)
        output = rt.attach_output(cid)
        stdin = await rt.attach_stdin(cid)
        await stdin.write(b"first\n")
        await collect(output, b"got:first")
        await stdin.close_stdin()  # only this client's input ends
        await stdin.detach()
    finally:
        await rt.close()  # the kubelet goes away; the shim and the container stay
    again = ProcessRuntime(root, node_name="attach", ipam=IPAM("127.78.0.0/16"), cgroups=False)
    await again.start()
    try:
        assert again.container(cid) is not None and again.container(cid).running  # type: ignore[union-attr]
        output = again.attach_output(cid)
        stdin = await again.attach_stdin(cid)
        await stdin.write(b"second\n")
        seen = await collect(output, b"got:second")
        assert b"eof" not in seen
        await stdin.detach()
        await again.stop_container(cid, 5)
    finally:
        await again.close()


async def test_tty_gets_a_terminal_and_its_size(root: Path) -> None:
    rt = ProcessRuntime(root, node_name="attach", ipam=IPAM("127.78.0.0/16"), cgroups=False)
    await rt.start()
    try:
        cid = await start(rt, "u5", "test -t 0 && echo is-a-tty; read line; stty size; printf 'prompt> '; "
                                     "read line; echo got:$line", stdin=True, tty=True)
        stdin = await rt.attach_stdin(cid)
        output = stdin.output()  # a tty's output comes straight from the pty, not line by line from the log
        assert output is not None
        await stdin.resize(123, 45)
        await stdin.write(b"size\n")
        seen = await collect(output, b"prompt> ")  # before any newline follows it
        assert b"45 123" in seen and seen.endswith(b"prompt> ")
        await stdin.write(b"x\n")
        assert b"got:x" in await collect(output, b"got:x")
        assert (root / "logs").exists()
        log_text = b"".join(p.read_bytes() for p in (root / "logs").rglob("*.log"))
        assert b"is-a-tty" in log_text
        await stdin.detach()
        await wait_exit(rt, cid)
    finally:
        await rt.close()


async def test_a_container_without_stdin_is_refused(root: Path) -> None:
    rt = ProcessRuntime(root, node_name="attach", ipam=IPAM("127.78.0.0/16"), cgroups=False)
    await rt.start()
    try:
        cid = await start(rt, "u6", "sleep 300")
        with pytest.raises(RuntimeError_, match="stdin: true"):
            await rt.attach_stdin(cid)
        await rt.stop_container(cid, 1)
    finally:
        await rt.close()


async def test_fake_runtime_refuses_attach_clearly(tmp_path: Path) -> None:
    rt = FakeRuntime(ipam=IPAM("10.64.0.0/24"), state_dir=tmp_path / "fake")
    await rt.start()
    try:
        with pytest.raises(NotSupported, match="not supported by this runtime"):
            await rt.attach_stdin("anything")
    finally:
        await rt.close()


async def test_large_input_arrives_whole_before_stdin_once_closes(root: Path) -> None:
    rt = ProcessRuntime(root, node_name="attach", ipam=IPAM("127.78.0.0/16"), cgroups=False)
    await rt.start()
    try:
        cid = await start(rt, "u7", "wc -c", stdin=True, stdin_once=True)
        output = rt.attach_output(cid)
        stdin = await rt.attach_stdin(cid)
        await stdin.write(b"y" * (3 << 20))  # more than the shim queues: the sender is held back meanwhile
        await stdin.detach()
        assert (await collect(output, b"\n")).strip() == str(3 << 20).encode()
        assert (await wait_exit(rt, cid)).exit_code == 0
    finally:
        await rt.close()


async def test_a_container_not_reading_its_stdin_keeps_its_output_flowing(root: Path) -> None:
    rt = ProcessRuntime(root, node_name="attach", ipam=IPAM("127.78.0.0/16"), cgroups=False)
    await rt.start()
    try:
        cid = await start(rt, "u8", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done", stdin=True)
        stdin = await rt.attach_stdin(cid)
        await stdin.write(b"z" * (512 << 10))  # far more than a pipe holds; nobody reads it
        output = rt.attach_output(cid)
        seen = await collect(output, b"\n")
        first = int(seen.split()[1])
        later = await collect(output, f"tick {first + 5}\n".encode())
        assert f"tick {first + 5}".encode() in later
        await stdin.detach()
        await rt.stop_container(cid, 1)
    finally:
        await rt.close()
