"""The ``docker`` runtime: real containers through the Docker Engine API (aiodocker).

* A pod is a *sandbox* container holding the network namespace (``DEFAULT_SANDBOX_IMAGE``, a pause image;
  when it is neither present nor pullable, the pod's ``kubelet.pilothouse.io/sandbox-image``
  annotation or ``$BASE_IMAGE`` running a shell sleep loop), on ``--docker-network`` (``auto``: the
  network of the container the kubelet itself runs in, i.e. the compose project's network, so pods
  on other nodes and the compose services reach it) or the default bridge; its address there is the
  pod IP. Every container of the pod joins it (``NetworkMode: container:<sandbox>``), as Kubernetes'
  dockershim did. A sandbox that fails to start or has stopped is removed, never adopted.
* DNS: with ``--cluster-dns HOST:53`` the kubelet resolves HOST (compose: the ``dns`` service) and
  writes each pod's ``resolv.conf`` per ``dnsPolicy``/``dnsConfig`` (``ClusterFirst``: ``nameserver
  <dns>``, ``search <ns>.svc.<domain> svc.<domain> <domain>``, ``options ndots:5``) under
  ``<root>/sandboxes/<uid>/``, bind-mounted at ``/etc/resolv.conf`` into the sandbox and every
  container. HOST is re-resolved every 10 s and the files rewritten in place when it moved.
* Containers: ``command`` → Entrypoint, ``args`` → Cmd (the image's own when unset), env, workingDir,
  tty, stdin/stdinOnce (``OpenStdin``/``StdinOnce``: ``kubectl attach -i`` goes through the engine's
  attach endpoint, which closes a ``StdinOnce`` container's stdin when the first session's input
  ends), binds of the pod's volume directories at their mount paths (``subPath``, ``readOnly``),
  ``Memory`` and ``NanoCpus`` from the limits; images pulled per ``imagePullPolicy`` (``IfNotPresent``
  pulls only when missing). An image that is absent and cannot be pulled (no registry reachable,
  unknown name) fails with ``ErrImagePull``; it is not asked for again before its back-off (10 s,
  doubling to 5 min) ends, and meanwhile the answer is ``ImagePullBackOff``, as upstream's image
  puller. Offline, run images that are already on the engine (``imagePullPolicy: IfNotPresent``
  or ``Never``), e.g. the compose base image with a ``command``. ``OOMKilled`` comes from Docker's state.
* Labels ``io.kubernetes.pod.name/namespace/uid``, ``io.kubernetes.container.name``,
  ``io.kubernetes.container.restartCount``, ``io.pilothouse.node.name`` and
  ``io.pilothouse.kubelet.root-dir`` on every container are the runtime's memory: a restarted kubelet
  lists its containers by node name *and* root dir (node names repeat across clusters on one engine)
  and adopts them. ``--stop-pods-on-exit`` removes them all when the kubelet stops gracefully.
* Exits: one ``POST /containers/<id>/wait`` per running container. Logs: a forwarder per container
  follows ``/containers/<id>/logs`` (timestamps, stdout/stderr demultiplexed) into the same CRI-format
  files the process runtime writes, so ``kubectl logs`` works the same way.

Tested only where an engine answers (``tests/integration/test_kubelet_docker.py`` skips otherwise);
``tests/chaos/test_compose.py`` runs a Deployment through it under docker compose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from apimachinery.containerlabels import LABEL_ROOT, LABEL_TYPE

from ..logs import parse_time
from ..shim import LogWriter
from .base import (EXITED, LABEL_CONTAINER_NAME, AttachedStdin, LABEL_NODE_NAME, LABEL_POD_NAME,
                   LABEL_POD_NAMESPACE, LABEL_POD_UID, LABEL_RESTART_COUNT, RUNNING, ContainerConfig, ContainerStats,
                   ContainerStatus, ExecResult, ExecSession, Runtime, RuntimeError_, SandboxConfig, SandboxStatus)

log = logging.getLogger(__name__)

LABEL_RESOLV = "io.pilothouse.resolv-conf"  # the sandbox's resolv.conf on the node (kept across kubelet restarts)
DEFAULT_SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"


def _parse_resolv(path: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """nameservers, search domains and options of a resolv.conf (empty when unreadable)."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 2 and words[0] == "nameserver":
                nameservers.append(words[1])
            elif words and words[0] in ("search", "domain"):
                searches = words[1:]
            elif words and words[0] == "options":
                for opt in words[1:]:
                    name, _, value = opt.partition(":")
                    options[name] = value
    return nameservers, searches, options


def _split_host_port(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address; the port defaults to 53."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


def _ts(text: str | None) -> float:
    if not text or text.startswith("0001-"):
        return 0.0
    return parse_time(text) or 0.0


class DockerExec(ExecSession):
    def __init__(self, exe: Any, stream: Any) -> None:
        self.exe = exe
        self.stream = stream

    async def write_stdin(self, data: bytes) -> None:
        await self.stream.write_in(data)

    async def close_stdin(self) -> None:
        with contextlib.suppress(Exception):
            transport = getattr(self.stream, "_resp", None)
            conn = getattr(transport, "connection", None)
            if conn is not None and conn.transport is not None and conn.transport.can_write_eof():
                conn.transport.write_eof()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:  # type: ignore[override]
        while True:
            msg = await self.stream.read_out()
            if msg is None:
                return
            yield (2 if msg.stream == 2 else 1), msg.data

    async def resize(self, width: int, height: int) -> None:
        with contextlib.suppress(Exception):
            await self.exe.resize(h=height, w=width)

    async def wait(self) -> int:
        for _ in range(600):
            info = await self.exe.inspect()
            if not info.get("Running"):
                return int(info.get("ExitCode") or 0)
            await asyncio.sleep(0.1)
        return -1

    async def kill(self) -> None:
        with contextlib.suppress(Exception):
            await self.stream.close()


class DockerStdin(AttachedStdin):
    """One attach session on the engine's ``POST /containers/<id>/attach?stdin=1&stream=1`` (hijacked
    connection). The output is asked for only with a tty (raw, a prompt before its newline); otherwise
    the kubelet follows the container's log for it."""

    def __init__(self, container: Any, stream: Any, *, raw: bool = False) -> None:
        self.container = container
        self.stream = stream
        self.raw = raw

    def output(self) -> AsyncIterator[tuple[int, bytes]] | None:
        return self._read() if self.raw else None

    async def _read(self) -> AsyncIterator[tuple[int, bytes]]:
        with contextlib.suppress(ConnectionError):
            while (msg := await self.stream.read_out()) is not None:
                yield 1, msg.data

    async def write(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError, AssertionError):
            await self.stream.write_in(data)

    async def close_stdin(self) -> None:
        # The client's input ended: half-close, the engine closes the container's stdin if StdinOnce.
        with contextlib.suppress(Exception):
            conn = self.stream._resp.connection  # noqa: SLF001 - aiodocker has no half-close
            if conn is not None and conn.transport is not None and conn.transport.can_write_eof():
                conn.transport.write_eof()

    async def resize(self, width: int, height: int) -> None:
        with contextlib.suppress(Exception):
            await self.container.resize(h=height, w=width)

    async def detach(self) -> None:
        with contextlib.suppress(Exception):
            await self.stream.close()


class DockerRuntime(Runtime):
    name = "docker"
    scheme = "docker"

    def __init__(self, root: Path, *, node_name: str, docker_host: str | None = None, network: str | None = None,
                 sandbox_image: str = DEFAULT_SANDBOX_IMAGE, log_max_bytes: int = 10 * 1024 * 1024,
                 log_max_files: int = 5, cluster_dns: str = "", cluster_domain: str = "cluster.local",
                 dns_refresh: float = 10.0) -> None:
        super().__init__()
        self.root = Path(root).absolute()
        self.node_name = node_name
        self.docker_host = docker_host
        self.network = network
        self.sandbox_image = sandbox_image
        self.cluster_dns = cluster_dns
        self.cluster_domain = cluster_domain
        self.dns_refresh = dns_refresh
        self._dns_ip = ""
        self._resolv: dict[str, Path] = {}  # pod uid -> its resolv.conf (bind-mounted into its containers)
        self._pull_backoff: dict[str, tuple[float, float]] = {}  # image -> (retry at, current backoff)
        self._dns_task: asyncio.Task[None] | None = None
        self.log_max_bytes = log_max_bytes
        self.log_max_files = log_max_files
        self.docker: Any = None
        self._containers: dict[str, ContainerStatus] = {}
        self._sandboxes: dict[str, SandboxStatus] = {}
        self._sandbox_ids: dict[str, str] = {}
        self._tasks: dict[str, list[asyncio.Task[Any]]] = {}
        (self.root / "logs").mkdir(parents=True, exist_ok=True)

    def version(self) -> str:
        return "docker://engine"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        import aiodocker

        self.docker = aiodocker.Docker(url=self.docker_host)
        if self.network == "auto":
            self.network = await self._own_network()
            log.info("pod network: %s (the network of this kubelet's container)", self.network)
        # Node names repeat across clusters on one engine (two compose projects both have kubelet-1):
        # a kubelet's containers are the ones of its node name *and* its root directory.
        listed = await self.docker.containers.list(all=True, filters={"label": [
            f"{LABEL_NODE_NAME}={self.node_name}", f"{LABEL_ROOT}={self.root}"]})
        for item in listed:
            info = await item.show()
            labels = info["Config"].get("Labels") or {}
            uid = labels.get(LABEL_POD_UID, "")
            if labels.get(LABEL_TYPE) == "podsandbox":
                if info["State"].get("Running") and uid not in self._sandboxes:
                    self._sandboxes[uid] = SandboxStatus(uid, self._ip(info))
                    self._sandbox_ids[uid] = info["Id"]
                    if labels.get(LABEL_RESOLV):
                        self._resolv[uid] = Path(labels[LABEL_RESOLV])
                else:  # a sandbox that stopped (or never started) holds nothing: its pod gets a new one
                    await self._delete_quietly(info["Id"])
                continue
            status = self._status(info)
            self._containers[status.id] = status
            if status.running:
                self._follow(status, since=self._log_since(status))
        if self.cluster_dns:
            self._dns_task = asyncio.get_running_loop().create_task(self._refresh_dns())

    async def release_stopped_pods(self) -> None:
        for uid in list(self._sandboxes):
            await self.remove_pod_sandbox(uid)

    async def close(self) -> None:
        if self._dns_task is not None:
            self._dns_task.cancel()
        for tasks in self._tasks.values():
            for t in tasks:
                t.cancel()
        if self.docker is not None:
            await self.docker.close()

    # ------------------------------------------------------------------ helpers

    async def _own_network(self) -> str:
        """``--docker-network auto``: the network of the container this kubelet runs in.

        docker compose names its network ``<project>_default``, and the project name is chosen by
        whoever runs ``docker compose -p``: asking the engine about our own container is the one
        answer that is always right. The container is found by the id in the paths Docker
        bind-mounts (``/etc/hostname``, ``/etc/resolv.conf``: ``.../containers/<id>/...``), else by
        the host name (a container's default host name is its short id).
        """
        from aiodocker.exceptions import DockerError

        candidates: list[str] = []
        with contextlib.suppress(OSError):
            candidates += re.findall(r"/containers/([0-9a-f]{64})/", Path("/proc/self/mountinfo").read_text())
        candidates.append(socket.gethostname())
        for ref in dict.fromkeys(candidates):
            try:
                info = await self.docker.containers.container(ref).show()
            except DockerError:
                continue
            networks = sorted((info.get("NetworkSettings") or {}).get("Networks") or {})
            networks = [n for n in networks if n not in ("host", "none")]
            if networks:
                return networks[0]
        raise RuntimeError_("NetworkNotFound", "--docker-network auto: this kubelet does not run in a Docker "
                                                "container on a network (give the network's name instead)")

    async def _delete_quietly(self, cid: str) -> None:
        from aiodocker.exceptions import DockerError

        with contextlib.suppress(DockerError, OSError, asyncio.TimeoutError):
            await self.docker.containers.container(cid).delete(force=True)

    def _ip(self, info: dict[str, Any]) -> str:
        networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
        if self.network and self.network in networks:
            return networks[self.network].get("IPAddress") or ""
        for net in networks.values():
            if net.get("IPAddress"):
                return net["IPAddress"]
        return ""

    def _status(self, info: dict[str, Any]) -> ContainerStatus:
        labels = info["Config"].get("Labels") or {}
        state = info.get("State") or {}
        running = bool(state.get("Running"))
        code = None if running else int(state.get("ExitCode") or 0)
        reason = "" if running else ("OOMKilled" if state.get("OOMKilled") else "Completed" if code == 0 else "Error")
        return ContainerStatus(
            id=info["Id"], pod_uid=labels.get(LABEL_POD_UID, ""), name=labels.get(LABEL_CONTAINER_NAME, ""),
            attempt=int(labels.get(LABEL_RESTART_COUNT) or 0), state=RUNNING if running else EXITED,
            image=info["Config"].get("Image", ""), image_id=info.get("Image", ""), created_at=_ts(info.get("Created")),
            started_at=_ts(state.get("StartedAt")), finished_at=_ts(state.get("FinishedAt")), exit_code=code,
            reason=reason, message=state.get("Error") or "", pid=state.get("Pid") or None, labels=labels,
            log_path=self._log_path(labels))

    def _log_path(self, labels: dict[str, str]) -> Path:
        return (self.root / "logs" / f"{labels.get(LABEL_POD_NAMESPACE)}_{labels.get(LABEL_POD_NAME)}_"
                f"{labels.get(LABEL_POD_UID)}" / str(labels.get(LABEL_CONTAINER_NAME)) /
                f"{labels.get(LABEL_RESTART_COUNT, '0')}.log")

    @staticmethod
    def _log_since(status: ContainerStatus) -> float | None:
        path = status.log_path
        return path.stat().st_mtime if path is not None and path.exists() else None

    async def _ensure_image(self, image: str, policy: str) -> None:
        from aiodocker.exceptions import DockerError

        present = True
        try:
            await self.docker.images.inspect(image)
        except DockerError:
            present = False
        if present and policy != "Always":
            return
        if policy == "Never":
            raise RuntimeError_("ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never')
        # As the kubelet's image puller: after a failed pull the image is not asked for again until its
        # back-off (10 s, doubling up to 5 min) has passed; meanwhile the answer is ImagePullBackOff.
        retry_at, backoff = self._pull_backoff.get(image, (0.0, 0.0))
        if not present and time.monotonic() < retry_at:
            raise RuntimeError_("ImagePullBackOff", f'Back-off pulling image "{image}"')
        try:
            await self.docker.images.pull(image)
        except DockerError as exc:
            backoff = min(300.0, backoff * 2) if backoff else 10.0
            self._pull_backoff[image] = (time.monotonic() + backoff, backoff)
            if present:
                return
            raise RuntimeError_("ErrImagePull", f'failed to pull image "{image}": {exc.message}') from exc
        self._pull_backoff.pop(image, None)

    def _follow(self, status: ContainerStatus, since: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._wait(status.id)), loop.create_task(self._forward_logs(status, since))]
        self._tasks[status.id] = tasks

    async def _wait(self, cid: str) -> None:
        from aiodocker.exceptions import DockerError

        while True:
            try:
                await self.docker.containers.container(cid).wait(timeout=None)
                info = await self.docker.containers.container(cid).show()
            except DockerError as exc:
                if exc.status == 404:
                    info = None
                else:
                    await asyncio.sleep(1)
                    continue
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(1)
                continue
            break
        current = self._containers.get(cid)
        if current is None:
            return
        if info is None:
            current.state, current.exit_code, current.reason = EXITED, 137, "ContainerStatusUnknown"
            current.finished_at = time.time()
        else:
            fresh = self._status(info)
            if fresh.running:
                return
            current.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "log_path"})
        await asyncio.sleep(0.2)  # let the log forwarder drain
        self._notify_exit(current)

    async def _forward_logs(self, status: ContainerStatus, since: float | None) -> None:
        """Docker's log stream (8-byte frame headers: stream, 0, 0, 0, size) → CRI-format records."""
        assert status.log_path is not None
        status.log_path.parent.mkdir(parents=True, exist_ok=True)
        writer = LogWriter(str(status.log_path), self.log_max_bytes, self.log_max_files)
        params: dict[str, Any] = {"stdout": "true", "stderr": "true", "follow": "true", "timestamps": "true"}
        if since:
            params["since"] = str(int(since))
        tty = False
        with contextlib.suppress(Exception):
            tty = bool((await self.docker.containers.container(status.id).show())["Config"].get("Tty"))
        try:
            async with self.docker._query(f"containers/{status.id}/logs", params=params, timeout=None) as resp:
                buf = b""
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    while True:
                        if tty:
                            nl = buf.find(b"\n")
                            if nl < 0:
                                break
                            stream, payload, buf = "stdout", buf[:nl + 1], buf[nl + 1:]
                        else:
                            if len(buf) < 8:
                                break
                            size = int.from_bytes(buf[4:8], "big")
                            if len(buf) < 8 + size:
                                break
                            stream = "stderr" if buf[0] == 2 else "stdout"
                            payload, buf = buf[8:8 + size], buf[8 + size:]
                        for line in payload.decode(errors="replace").splitlines():
                            ts, _, text = line.partition(" ")
                            writer.record(stream, ts, text.encode())
        except (OSError, asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 - logs are best effort
            if not isinstance(exc, asyncio.CancelledError):
                log.debug("log forwarding for %s ended: %r", status.id[:12], exc)
            else:
                raise
        finally:
            writer.f.close()

    # ------------------------------------------------------------------ cluster DNS

    async def _lookup_dns(self) -> str:
        """The address of ``--cluster-dns`` (a name such as compose's ``dns`` is resolved here)."""
        host, port = _split_host_port(self.cluster_dns)
        if port != 53 and not self._dns_ip:
            log.warning("cluster DNS %s: pods' resolvers ask port 53 only, not %d", self.cluster_dns, port)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        except OSError as exc:
            log.warning("cluster DNS %s does not resolve: %r", self.cluster_dns, exc)
            return self._dns_ip
        return str(infos[0][4][0]) if infos else self._dns_ip

    def resolv_conf(self, config: SandboxConfig) -> str | None:
        """The pod's resolv.conf as the kubelet writes it, or None to keep the engine's (``Default``).

        ``ClusterFirst`` (``ClusterFirstWithHostNet`` on the host network): the cluster DNS, the search
        path ``<ns>.svc.<domain> svc.<domain> <domain>`` and ``ndots:5``. A ``ClusterFirst`` pod on the
        host network, any pod while no cluster DNS is configured, and ``Default`` get the node's
        (here: the engine's, which on a user-defined network is Docker's embedded DNS, as for the
        kubelet itself). ``None``: only ``dnsConfig``. ``dnsConfig`` nameservers and searches are
        appended, its options override by name. libc resolvers only ask port 53: the DNS must listen there.
        """
        policy = config.dns_policy or "ClusterFirst"
        extra = config.dns_config or {}
        cluster = policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not config.host_network)
        nameservers: list[str] = []
        searches: list[str] = []
        options: dict[str, str] = {}
        if cluster and self._dns_ip:
            d = self.cluster_domain
            nameservers = [self._dns_ip]
            searches = [f"{config.namespace}.svc.{d}", f"svc.{d}", d]
            options = {"ndots": "5"}
        elif policy != "None":
            if not extra:
                return None
            nameservers, searches, options = _parse_resolv(Path("/etc/resolv.conf"))
        nameservers += [str(n) for n in extra.get("nameservers") or []]
        searches += [str(n) for n in extra.get("searches") or []]
        for opt in extra.get("options") or []:
            if opt.get("name"):
                options[str(opt["name"])] = "" if opt.get("value") in (None, "") else str(opt["value"])
        lines = [f"nameserver {n}" for n in list(dict.fromkeys(nameservers))[:3]]
        if searches:
            lines.append("search " + " ".join(list(dict.fromkeys(searches))[:32]))
        if options:
            lines.append("options " + " ".join(f"{k}:{v}" if v else k for k, v in options.items()))
        return "\n".join(lines) + "\n"

    def _write_resolv(self, config: SandboxConfig) -> Path | None:
        text = self.resolv_conf(config)
        if text is None:
            return None
        path = self.root / "sandboxes" / config.pod_uid / "resolv.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self._resolv[config.pod_uid] = path
        return path

    async def _refresh_dns(self) -> None:
        """Follow the cluster DNS's address (a restarted compose service may get another one).

        The pods' resolv.conf files are rewritten in place (same inode, never renamed over): their
        containers see them through bind mounts, which keep pointing at the original inode.
        """
        while True:
            ip = await self._lookup_dns()
            if ip and ip != self._dns_ip:
                old, self._dns_ip = self._dns_ip, ip
                if old:
                    log.info("cluster DNS %s moved from %s to %s", self.cluster_dns, old, ip)
                    for path in list(self._resolv.values()):
                        with contextlib.suppress(OSError):
                            text = path.read_text()
                            fixed = text.replace(f"nameserver {old}\n", f"nameserver {ip}\n")
                            if fixed != text:
                                with open(path, "r+") as f:
                                    f.write(fixed)
                                    f.truncate()
            await asyncio.sleep(self.dns_refresh)

    # ------------------------------------------------------------------ sandboxes

    async def run_pod_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        from aiodocker.exceptions import DockerError

        existing = self._sandboxes.get(config.pod_uid)
        if existing is not None:
            return existing
        labels = {LABEL_TYPE: "podsandbox", LABEL_POD_UID: config.pod_uid, LABEL_POD_NAME: config.name,
                  LABEL_POD_NAMESPACE: config.namespace, LABEL_NODE_NAME: self.node_name, LABEL_ROOT: str(self.root)}
        image = self.sandbox_image
        try:
            await self._ensure_image(image, "IfNotPresent")
        except RuntimeError_:
            image = config.annotations.get("kubelet.pilothouse.io/sandbox-image") or os.environ.get("BASE_IMAGE", "")
            if not image:
                raise
        # A pause image sleeps by itself; any other image holds the namespace with a shell loop.
        cmd = None if "pause" in image.rsplit("/", 1)[-1] else [
            "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 3600 & wait $!; done"]
        if self.cluster_dns and not self._dns_ip:
            self._dns_ip = await self._lookup_dns()
        resolv = self._write_resolv(config)
        host_config: dict[str, Any] = {"NetworkMode": "host" if config.host_network else (self.network or "bridge")}
        if resolv is not None:
            host_config["Binds"] = [f"{resolv}:/etc/resolv.conf:ro"]
            labels[LABEL_RESOLV] = str(resolv)
        body: dict[str, Any] = {"Image": image, "Labels": labels, "Hostname": config.hostname[:63] or None,
                                "HostConfig": host_config}
        if cmd:
            body["Entrypoint"], body["Cmd"] = [cmd[0]], cmd[1:]
        if config.host_network:
            body.pop("Hostname")
        container = await self.docker.containers.create(body, name=f"k8s_POD_{config.name}_{config.namespace}_"
                                                                     f"{config.pod_uid[:8]}_{int(time.time())}")
        try:
            await container.start()
            info = await container.show()
        except DockerError as exc:
            # A sandbox that did not start is useless: remove it now, not one per retry forever.
            await self._delete_quietly(container.id)
            raise RuntimeError_("CreatePodSandboxError", f"sandbox for pod {config.namespace}/{config.name}: "
                                                         f"{exc.message}") from exc
        sandbox = SandboxStatus(config.pod_uid, self._ip(info))
        self._sandboxes[config.pod_uid] = sandbox
        self._sandbox_ids[config.pod_uid] = info["Id"]
        return sandbox

    async def remove_pod_sandbox(self, pod_uid: str) -> None:
        for c in self.list_containers(pod_uid):
            await self.remove_container(c.id)
        sid = self._sandbox_ids.pop(pod_uid, None)
        self._sandboxes.pop(pod_uid, None)
        self._resolv.pop(pod_uid, None)
        shutil.rmtree(self.root / "sandboxes" / pod_uid, ignore_errors=True)
        if sid is not None:
            with contextlib.suppress(Exception):
                await self.docker.containers.container(sid).delete(force=True)
        for path in (self.root / "logs").glob(f"*_{pod_uid}"):
            shutil.rmtree(path, ignore_errors=True)

    def sandboxes(self) -> dict[str, SandboxStatus]:
        return dict(self._sandboxes)

    # ------------------------------------------------------------------ containers

    async def start_container(self, sandbox: SandboxStatus, config: ContainerConfig) -> ContainerStatus:
        from aiodocker.exceptions import DockerError

        await self._ensure_image(config.image, config.image_pull_policy)
        sid = self._sandbox_ids.get(sandbox.pod_uid)
        labels = {**config.all_labels(), LABEL_NODE_NAME: self.node_name, LABEL_ROOT: str(self.root),
                  LABEL_TYPE: "container"}
        binds = []
        for mount in config.mounts:
            source = os.path.join(mount.host_path, mount.sub_path) if mount.sub_path else mount.host_path
            binds.append(f"{os.path.realpath(source)}:{mount.container_path}{':ro' if mount.read_only else ''}")
        resolv = self._resolv.get(sandbox.pod_uid)
        if resolv is not None and resolv.exists() and not any(m.container_path == "/etc/resolv.conf"
                                                              for m in config.mounts):
            binds.append(f"{resolv}:/etc/resolv.conf:ro")
        host_config: dict[str, Any] = {"NetworkMode": f"container:{sid}" if sid else "none", "Binds": binds}
        if config.target_container_id:
            host_config["PidMode"] = f"container:{config.target_container_id}"
        if config.memory_limit:
            host_config["Memory"] = config.memory_limit
        if config.cpu_limit_milli:
            host_config["NanoCpus"] = config.cpu_limit_milli * 1_000_000
        body: dict[str, Any] = {"Image": config.image, "Labels": labels, "Env": [f"{k}={v}" for k, v in config.env.items()],
                                "Tty": config.tty, "OpenStdin": config.stdin, "StdinOnce": config.stdin_once,
                                "AttachStdin": False, "HostConfig": host_config}
        if config.argv:
            body["Entrypoint"] = list(config.argv[:1])
            body["Cmd"] = list(config.argv[1:])
        if config.working_dir:
            body["WorkingDir"] = config.working_dir
        name = f"k8s_{config.name}_{config.pod_name}_{config.pod_namespace}_{config.pod_uid[:8]}_{config.attempt}"
        try:
            container = await self.docker.containers.create(body, name=name)
        except DockerError as exc:
            raise RuntimeError_("CreateContainerError", exc.message) from exc
        try:
            await container.start()
            info = await container.show()
        except DockerError as exc:
            # Left behind, it would hold the name the retry (same attempt) needs: "name already in use".
            await self._delete_quietly(container.id)
            raise RuntimeError_("StartError", exc.message) from exc
        status = self._status(info)
        self._containers[status.id] = status
        self._follow(status)  # even if it already exited: its logs and exit still have to be collected
        return status

    async def stop_container(self, container_id: str, grace: float) -> ContainerStatus:
        from aiodocker.exceptions import DockerError

        status = self._containers.get(container_id)
        if status is None:
            raise RuntimeError_("NotFound", f"no container {container_id}")
        if status.running:
            with contextlib.suppress(DockerError):
                await self.docker.containers.container(container_id).stop(t=max(0, math.ceil(grace)),
                                                                           timeout=grace + 30)
            with contextlib.suppress(DockerError):
                fresh = self._status(await self.docker.containers.container(container_id).show())
                status.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "log_path"})
        return status

    async def remove_container(self, container_id: str) -> None:
        for t in self._tasks.pop(container_id, []):
            t.cancel()
        status = self._containers.pop(container_id, None)
        with contextlib.suppress(Exception):
            await self.docker.containers.container(container_id).delete(force=True)
        if status is not None and status.log_path is not None:
            for p in status.log_path.parent.glob(status.log_path.name + "*"):
                with contextlib.suppress(OSError):
                    p.unlink()

    def statuses(self) -> dict[str, ContainerStatus]:
        return self._containers

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> ExecResult:
        from aiodocker.exceptions import DockerError

        try:
            exe = await self.docker.containers.container(container_id).exec(argv, stdout=True, stderr=True)
            out, err = b"", b""

            async def collect() -> None:
                nonlocal out, err
                async with exe.start(detach=False) as stream:
                    while (msg := await stream.read_out()) is not None:
                        if msg.stream == 2:
                            err += msg.data
                        else:
                            out += msg.data

            await asyncio.wait_for(collect(), timeout)
            info = await exe.inspect()
            return ExecResult(int(info.get("ExitCode") or 0), out, err)
        except asyncio.TimeoutError:
            return ExecResult(-1, b"", b"", timed_out=True)
        except DockerError as exc:
            return ExecResult(126, b"", exc.message.encode())

    async def exec_stream(self, container_id: str, argv: list[str], *, tty: bool, stdin: bool) -> ExecSession:
        from aiodocker.exceptions import DockerError

        try:
            exe = await self.docker.containers.container(container_id).exec(argv, stdout=True, stderr=True,
                                                                             stdin=stdin, tty=tty)
            stream = exe.start(detach=False)
            await stream._init()  # noqa: SLF001 - open the hijacked connection now
        except DockerError as exc:
            raise RuntimeError_("ExecError", exc.message) from exc
        return DockerExec(exe, stream)

    async def attach_stdin(self, container_id: str) -> AttachedStdin:
        from aiodocker.exceptions import DockerError

        status = self._containers.get(container_id)
        if status is None or not status.running:
            raise RuntimeError_("NotRunning", f"container {container_id[:12]} is not running")
        container = self.docker.containers.container(container_id)
        try:
            info = await container.show()
            if not info["Config"].get("OpenStdin"):
                raise RuntimeError_("BadRequest", f"container {status.name} was started without stdin: set stdin: "
                                                  "true in its spec to attach to it")
            tty = bool(info["Config"].get("Tty"))
            stream = container.attach(stdin=True, stdout=tty, stderr=tty)
            await asyncio.wait_for(stream._init(), 30)  # noqa: SLF001 - open the hijacked connection now
        except (DockerError, OSError, asyncio.TimeoutError) as exc:
            raise RuntimeError_("InternalError", f"attaching to container {status.name}: {exc!r}") from exc
        return DockerStdin(container, stream, raw=tty)

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        try:
            raw = await self.docker.containers.container(container_id).stats(stream=False)
        except Exception:  # noqa: BLE001 - stats are best effort
            return None
        doc = raw[0] if isinstance(raw, list) and raw else raw
        if not isinstance(doc, dict):
            return None
        cpu = int(((doc.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0)
        mem = doc.get("memory_stats") or {}
        usage = int(mem.get("usage") or 0)
        inactive = int((mem.get("stats") or {}).get("inactive_file") or (mem.get("stats") or {}).get("total_inactive_file") or 0)
        return ContainerStats(time.time(), cpu, max(0, usage - inactive), usage, int((mem.get("stats") or {}).get("rss") or 0))

    def probe_address(self, sandbox: SandboxStatus) -> str:
        return sandbox.ip

