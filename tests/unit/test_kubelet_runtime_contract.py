"""One contract, every runtime: what the pod worker relies on, checked against process and fake (docker: see
tests/integration/test_kubelet_docker.py, which runs the same checks where an engine answers).

Process runtime containers are real host processes; every test kills whatever it started (``kill_all``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubelet.ipam import IPAM
from kubelet.runtime.base import ContainerConfig, ContainerStatus, Runtime, SandboxConfig
from kubelet.runtime.fake import ANNOTATION_CPU, ANNOTATION_EXIT_AFTER, ANNOTATION_EXIT_CODE, FakeRuntime
from kubelet.runtime.process import ProcessRuntime, kill_all

RUNTIMES = ["process", "fake"]
PY = sys.executable


def make(kind: str, root: Path) -> Runtime:
    if kind == "process":
        return ProcessRuntime(root, node_name="contract", ipam=IPAM("127.77.0.0/16"))
    return FakeRuntime(ipam=IPAM("10.64.0.0/24"), state_dir=root / "fake")


def config(uid: str, name: str, argv: tuple[str, ...], *, attempt: int = 0, annotations: dict[str, str] | None = None,
           env: dict[str, str] | None = None, memory: int | None = None) -> ContainerConfig:
    return ContainerConfig(pod_uid=uid, pod_name=f"pod-{uid}", pod_namespace="ns", name=name, attempt=attempt,
                           image="busybox:1.36", argv=argv, env=env or {}, annotations=annotations or {},
                           memory_limit=memory)


def sleeper(uid: str, name: str = "c", **kw: Any) -> ContainerConfig:
    return config(uid, name, ("sleep", "300"), **kw)


def exiting(kind: str, uid: str, code: int) -> ContainerConfig:
    if kind == "fake":
        return config(uid, "c", ("true",), annotations={ANNOTATION_EXIT_AFTER: "0.2", ANNOTATION_EXIT_CODE: str(code)})
    return config(uid, "c", ("sh", "-c", f"echo out; echo err >&2; sleep 0.2; exit {code}"))


@pytest.fixture(params=RUNTIMES)
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    runtime = make(request.param, tmp_path / "root")
    await runtime.start()
    yield runtime
    await runtime.close()
    kill_all(tmp_path / "root")


async def sandbox(rt: Runtime, uid: str) -> Any:
    return await rt.run_pod_sandbox(SandboxConfig(uid, f"pod-{uid}", "ns", "contract", Path("/tmp") / uid))


async def wait_exit(rt: Runtime, cid: str, timeout: float = 15.0) -> ContainerStatus:
    for _ in range(int(timeout / 0.05)):
        c = rt.container(cid)
        if c is not None and c.state == "exited":
            return c
        await asyncio.sleep(0.05)
    raise AssertionError(f"container {cid} did not exit")


async def test_sandbox_ips_are_distinct_stable_and_released(rt: Runtime) -> None:
    a = await sandbox(rt, "uid-a")
    b = await sandbox(rt, "uid-b")
    assert a.ip and b.ip and a.ip != b.ip
    assert (await sandbox(rt, "uid-a")).ip == a.ip
    assert set(rt.sandboxes()) == {"uid-a", "uid-b"}
    await rt.remove_pod_sandbox("uid-a")
    assert set(rt.sandboxes()) == {"uid-b"}


async def test_started_container_runs_with_its_labels(rt: Runtime) -> None:
    sb = await sandbox(rt, "u1")
    st = await rt.start_container(sb, sleeper("u1", attempt=2))
    assert st.state == "running" and st.id
    assert st.labels["io.kubernetes.pod.uid"] == "u1"
    assert st.labels["io.kubernetes.container.name"] == "c"
    assert st.labels["io.kubernetes.container.restartCount"] == "2"
    assert st.attempt == 2 and st.image == "busybox:1.36" and st.image_id
    assert [c.id for c in rt.list_containers("u1")] == [st.id]
    assert rt.list_containers("other") == []


async def test_exit_is_pushed_with_code_and_reason(rt: Runtime) -> None:
    seen: list[ContainerStatus] = []
    rt.on_exit = seen.append
    sb = await sandbox(rt, "u2")
    st = await rt.start_container(sb, exiting(rt.name, "u2", 3))
    done = await wait_exit(rt, st.id)
    assert done.exit_code == 3 and done.reason == "Error"
    assert done.finished_at >= done.started_at > 0
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.05)
    assert [s.id for s in seen] == [st.id]
    ok = await rt.start_container(sb, exiting(rt.name, "u2", 0))
    assert (await wait_exit(rt, ok.id)).reason == "Completed"


async def test_stop_ends_a_running_container(rt: Runtime) -> None:
    sb = await sandbox(rt, "u3")
    st = await rt.start_container(sb, sleeper("u3"))
    stopped = await rt.stop_container(st.id, 2.0)
    assert stopped.state == "exited" and isinstance(stopped.exit_code, int)
    await rt.remove_container(st.id)
    assert rt.container(st.id) is None


async def test_exec_sync_runs_beside_the_container(rt: Runtime) -> None:
    sb = await sandbox(rt, "u4")
    st = await rt.start_container(sb, sleeper("u4", env={"GREETING": "hello"}))
    result = await rt.exec_sync(st.id, ["sh", "-c", "echo $GREETING"], 5.0)
    assert result.exit_code == 0
    if rt.name == "process":
        assert result.stdout.strip() == b"hello"
        failed = await rt.exec_sync(st.id, ["sh", "-c", "exit 4"], 5.0)
        assert failed.exit_code == 4
        slow = await rt.exec_sync(st.id, ["sleep", "10"], 0.3)
        assert slow.timed_out


async def test_a_new_instance_adopts_running_containers(rt: Runtime, tmp_path: Path) -> None:
    sb = await sandbox(rt, "u5")
    st = await rt.start_container(sb, sleeper("u5", attempt=1))
    await rt.close()
    again = make(rt.name, tmp_path / "root")
    await again.start()
    adopted = again.list_containers("u5")
    assert [(c.id, c.state, c.attempt, c.name) for c in adopted] == [(st.id, "running", 1, "c")]
    assert again.sandboxes()["u5"].ip == sb.ip
    seen: list[ContainerStatus] = []
    again.on_exit = seen.append
    stopped = await again.stop_container(st.id, 2.0)
    assert stopped.state == "exited"
    await again.close()


async def test_stats_cover_running_containers(rt: Runtime) -> None:
    sb = await sandbox(rt, "u6")
    st = await rt.start_container(sb, sleeper("u6", annotations={ANNOTATION_CPU: "100m"}))
    stats = await rt.all_stats()
    assert st.id in stats
    assert stats[st.id].memory_working_set_bytes >= 0 and stats[st.id].cpu_usage_core_nanoseconds >= 0


# ---------------------------------------------------------------------- process runtime specifics

@pytest.fixture
async def proc_rt(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    runtime = ProcessRuntime(tmp_path / "root", node_name="contract", ipam=IPAM("127.78.0.0/16"))
    await runtime.start()
    yield runtime
    await runtime.close()
    kill_all(tmp_path / "root")


async def test_process_logs_are_cri_lines_per_stream(proc_rt: ProcessRuntime) -> None:
    sb = await sandbox(proc_rt, "p1")
    st = await proc_rt.start_container(sb, exiting("process", "p1", 0))
    await wait_exit(proc_rt, st.id)
    path = proc_rt.log_path(st.id)
    assert path is not None
    records = [line.split(" ", 3) for line in path.read_text().splitlines()]
    assert [(r[1], r[2], r[3]) for r in records] == [("stdout", "F", "out"), ("stderr", "F", "err")]
    assert all(r[0].endswith("Z") and "T" in r[0] for r in records)


async def test_process_start_error_is_an_exited_container(proc_rt: ProcessRuntime) -> None:
    sb = await sandbox(proc_rt, "p2")
    st = await proc_rt.start_container(sb, config("p2", "c", ("no-such-binary-xyz",)))
    assert st.state == "exited" and st.exit_code == 128 and st.reason == "StartError"
    assert "executable file not found" in st.message


async def test_process_group_dies_with_the_container(proc_rt: ProcessRuntime) -> None:
    """A child the command left behind is killed with it (no orphans)."""
    sb = await sandbox(proc_rt, "p3")
    st = await proc_rt.start_container(sb, config("p3", "c", ("sh", "-c", "sleep 300 & echo $! ; wait")))
    await asyncio.sleep(0.5)
    path = proc_rt.log_path(st.id)
    assert path is not None
    child = int(path.read_text().split()[-1])
    os.kill(child, 0)
    await proc_rt.stop_container(st.id, 2.0)
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the background child survived its container")


async def test_process_killed_shim_takes_its_container_along(proc_rt: ProcessRuntime, tmp_path: Path) -> None:
    sb = await sandbox(proc_rt, "p4")
    st = await proc_rt.start_container(sb, sleeper("p4"))
    shim = proc_rt.shim_pids()[0]
    os.kill(shim, signal.SIGKILL)
    done = await wait_exit(proc_rt, st.id)
    assert done.exit_code == 137
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(st.pid or 0, 0)
            await asyncio.sleep(0.05)


async def test_process_memory_limit_is_enforced(proc_rt: ProcessRuntime) -> None:
    sb = await sandbox(proc_rt, "p5")
    st = await proc_rt.start_container(sb, config("p5", "c", (PY, "-c", "b = bytearray(300 * 1024 * 1024); print('no')"),
                                                 memory=48 * 1024 * 1024))
    done = await wait_exit(proc_rt, st.id, 30)
    assert done.exit_code != 0
    # OOMKilled where a memory cgroup is writable, an allocation failure under RLIMIT_AS otherwise.
    assert done.reason == ("OOMKilled" if proc_rt.limits_mode.startswith("cgroup") else "Error")
