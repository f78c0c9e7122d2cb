"""The docker runtime against a real Docker engine: the runtime contract, where an engine answers.

Skipped (with the reason) when aiodocker is not installed, no engine answers on DOCKER_HOST or the
default socket, or no image is present to run offline (``BASE_IMAGE``, else python:3.11-slim).
Every container and sandbox the tests create is removed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
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


async def _labels(rt: object, cid: str) -> dict[str, str]:
    info = await rt.docker.containers.container(cid).show()  # type: ignore[attr-defined]
    return info["Config"]["Labels"]


async def test_docker_pod_resolv_conf_labels_and_dns_moves(tmp_path: Path) -> None:
    """ClusterFirst pods get the cluster DNS in /etc/resolv.conf; the file follows the DNS's address."""
    reason = await _engine_and_image()
    if reason:
        pytest.skip(reason)
    from kubelet.runtime.docker import DockerRuntime

    # Nothing has to answer at these addresses: the test reads the file the containers see.
    rt = DockerRuntime(tmp_path / "root", node_name=f"dns-{os.getpid()}", sandbox_image=IMAGE,
                       cluster_dns="10.96.0.10:53", dns_refresh=0.2)
    await rt.start()
    try:
        sb = await rt.run_pod_sandbox(SandboxConfig("r1", "p", "ns", "n", tmp_path / "pod"))
        c = await rt.start_container(sb, cfg("r1", "app", ("sleep", "300")))
        want = ("nameserver 10.96.0.10\nsearch ns.svc.cluster.local svc.cluster.local cluster.local\n"
                "options ndots:5\n")
        assert (await rt.exec_sync(c.id, ["cat", "/etc/resolv.conf"], 10)).stdout.decode() == want
        for cid in (c.id, rt._sandbox_ids["r1"]):  # noqa: SLF001
            labels = await _labels(rt, cid)
            assert (labels["io.kubernetes.pod.name"], labels["io.kubernetes.pod.namespace"],
                    labels["io.kubernetes.pod.uid"]) == ("p", "ns", "r1")
        # The DNS service got another address (a restarted compose service): running containers see it.
        rt.cluster_dns = "10.96.0.11"
        seen = ""
        for _ in range(100):
            seen = (await rt.exec_sync(c.id, ["cat", "/etc/resolv.conf"], 10)).stdout.decode()
            if seen.startswith("nameserver 10.96.0.11\n"):
                break
            await asyncio.sleep(0.1)
        assert seen == want.replace("10.96.0.10", "10.96.0.11")

        # dnsPolicy None: dnsConfig only; Default: the engine's own file, not ours.
        none = await rt.run_pod_sandbox(SandboxConfig(
            "r2", "q", "ns", "n", tmp_path / "pod2", dns_policy="None",
            dns_config={"nameservers": ["192.0.2.1"], "searches": ["example.test"],
                        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}))
        c2 = await rt.start_container(none, cfg("r2", "app", ("sleep", "300")))
        assert (await rt.exec_sync(c2.id, ["cat", "/etc/resolv.conf"], 10)).stdout.decode() == (
            "nameserver 192.0.2.1\nsearch example.test\noptions ndots:2 edns0\n")
        default = await rt.run_pod_sandbox(SandboxConfig("r3", "d", "ns", "n", tmp_path / "pod3",
                                                         dns_policy="Default"))
        c3 = await rt.start_container(default, cfg("r3", "app", ("sleep", "300")))
        assert "10.96.0.1" not in (await rt.exec_sync(c3.id, ["cat", "/etc/resolv.conf"], 10)).stdout.decode()
    finally:
        for uid in list(rt.sandboxes()):
            await rt.remove_pod_sandbox(uid)
        await rt.close()


async def test_docker_absent_image_err_image_pull_then_back_off(docker_rt: object, tmp_path: Path) -> None:
    """An image that is neither present nor pullable: ErrImagePull, then ImagePullBackOff until the back-off ends."""
    from kubelet.runtime.base import RuntimeError_

    rt = docker_rt
    sb = await rt.run_pod_sandbox(SandboxConfig("i1", "p", "ns", "n", tmp_path / "pod"))  # type: ignore[attr-defined]
    missing = ContainerConfig(pod_uid="i1", pod_name="p", pod_namespace="ns", name="app", attempt=0,
                              image="pilothouse-test/absent-image:0", argv=("true",), env={})
    reasons = []
    for _ in range(2):
        with pytest.raises(RuntimeError_) as err:
            await rt.start_container(sb, missing)  # type: ignore[attr-defined]
        reasons.append(err.value.reason)
    assert reasons == ["ErrImagePull", "ImagePullBackOff"]
    never = ContainerConfig(pod_uid="i1", pod_name="p", pod_namespace="ns", name="app", attempt=0,
                            image="pilothouse-test/absent-image:0", argv=("true",), env={}, image_pull_policy="Never")
    with pytest.raises(RuntimeError_) as err:
        await rt.start_container(sb, never)  # type: ignore[attr-defined]
    assert err.value.reason == "ErrImageNeverPull"
    assert rt.list_containers("i1") == []  # type: ignore[attr-defined]


async def test_docker_stopped_sandboxes_are_removed_on_start(docker_rt: object, tmp_path: Path) -> None:
    """A sandbox that stopped (or never started) is garbage for the next kubelet, not adopted."""
    from kubelet.runtime.docker import DockerRuntime

    rt = docker_rt
    await rt.run_pod_sandbox(SandboxConfig("g1", "p", "ns", "n", tmp_path / "pod"))  # type: ignore[attr-defined]
    sid = rt._sandbox_ids["g1"]  # type: ignore[attr-defined]  # noqa: SLF001
    await rt.docker.containers.container(sid).kill()  # type: ignore[attr-defined]
    again = DockerRuntime(rt.root, node_name=rt.node_name, sandbox_image=IMAGE)  # type: ignore[attr-defined]
    await again.start()
    try:
        assert "g1" not in again.sandboxes()
        with pytest.raises(aiodocker.exceptions.DockerError):
            await again.docker.containers.container(sid).show()
    finally:
        await again.close()


async def test_docker_pods_belong_to_one_kubelet_and_go_with_it(docker_rt: object, tmp_path: Path) -> None:
    """Same node name, another root dir (another cluster on the engine): not adopted, not touched.
    release_stopped_pods (--stop-pods-on-exit) removes the kubelet's pods' containers, sandboxes included."""
    from kubelet.runtime.docker import DockerRuntime

    rt = docker_rt
    sb = await rt.run_pod_sandbox(SandboxConfig("o1", "p", "ns", "n", tmp_path / "pod"))  # type: ignore[attr-defined]
    c = await rt.start_container(sb, cfg("o1", "app", ("sleep", "300")))  # type: ignore[attr-defined]
    other = DockerRuntime(tmp_path / "other-root", node_name=rt.node_name, sandbox_image=IMAGE)  # type: ignore[attr-defined]
    await other.start()
    try:
        assert other.sandboxes() == {} and other.list_containers() == []
    finally:
        await other.close()
    sid = rt._sandbox_ids["o1"]  # type: ignore[attr-defined]  # noqa: SLF001
    await rt.stop_container(c.id, 1)  # type: ignore[attr-defined]
    await rt.release_stopped_pods()  # type: ignore[attr-defined]
    assert rt.sandboxes() == {} and rt.list_containers() == []  # type: ignore[attr-defined]
    for cid in (sid, c.id):
        with pytest.raises(aiodocker.exceptions.DockerError):
            await rt.docker.containers.container(cid).show()  # type: ignore[attr-defined]


async def test_docker_start_error_leaves_nothing_and_the_retry_works(docker_rt: object, tmp_path: Path) -> None:
    """A command that cannot be executed: StartError, no Created container left, the same attempt retried."""
    from kubelet.runtime.base import RuntimeError_

    rt = docker_rt
    sb = await rt.run_pod_sandbox(SandboxConfig("s1", "p", "ns", "n", tmp_path / "pod"))  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError_) as err:
        await rt.start_container(sb, cfg("s1", "app", ("/no/such/binary",)))  # type: ignore[attr-defined]
    assert err.value.reason == "StartError"
    left = await rt.docker.containers.list(all=True, filters={"label": ["io.kubernetes.pod.uid=s1",  # type: ignore[attr-defined]
                                                                        "io.kubernetes.docker.type=container"]})
    assert left == []
    ok = await rt.start_container(sb, cfg("s1", "app", ("sleep", "300")))  # type: ignore[attr-defined]
    assert ok.state == "running"


async def test_docker_target_container_shares_its_process_namespace(docker_rt: object, tmp_path: Path) -> None:
    """An ephemeral container started with a target (``kubectl debug --target``) sees the target's
    processes; one without a target sees only its own."""
    rt = docker_rt
    sb = await rt.run_pod_sandbox(SandboxConfig("d9", "p", "ns", "n", tmp_path / "pod"))  # type: ignore[attr-defined]
    app = await rt.start_container(sb, cfg("d9", "app", ("sleep", "313")))  # type: ignore[attr-defined]
    list_processes = ("python3", "-c", "import os; print([open(f'/proc/{p}/cmdline').read().replace(chr(0), ' ') "
                      "for p in os.listdir('/proc') if p.isdigit()])")
    results = {}
    for name, target in (("dbg", app.id), ("alone", "")):
        config = replace(cfg("d9", name, list_processes), kind="ephemeral", target_container_id=target)
        started = await rt.start_container(sb, config)  # type: ignore[attr-defined]
        await wait_exit(rt, started.id)
        for _ in range(50):
            if started.log_path.exists() and started.log_path.read_text().strip():
                break
            await asyncio.sleep(0.1)
        results[name] = started.log_path.read_text()
    assert "sleep 313" in results["dbg"]
    assert "sleep 313" not in results["alone"]
