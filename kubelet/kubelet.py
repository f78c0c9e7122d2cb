"""The kubelet process: informers shared by its node agents, the status writer, volumes, the HTTPS endpoint.

Start-up order matters for ``kill -9`` recovery:

1. the HTTPS endpoint binds (its port goes into every Node's ``daemonEndpoints``);
2. per node: the pod CIDR is settled (``ipam``), the runtime starts and *adopts* what a previous
   kubelet left running (process: state files under ``--root-dir``; docker: labels; fake: JSON files);
3. the Nodes are registered and their Lease/status loops start;
4. once the pod informer (``fieldSelector=spec.nodeName=<node>``, or ``spec.nodeName!=`` shared by
   all ``--fake-nodes``) has listed, containers of pods that no longer exist are removed (deleted
   while we were down) and a worker starts for every pod: it finds its running containers in the
   runtime and carries on — no duplicates, no orphans.

ConfigMaps and Secrets (env and volumes) come from two informers, for real runtimes only; their
changes refresh the volumes of the pods that use them, and every 10 s each pod's projected tokens
and downward API files are brought up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from apiclient.events import EventRecorder
from apiclient.informer import INDEX_NAMESPACE, Informer, namespace_index
from apiclient.rest import (NODES, PERSISTENT_VOLUME_CLAIMS, PERSISTENT_VOLUMES, PODS, SERVICES, APIConnectionError,
                            RESTClient, resource)
from apimachinery import meta as m
from apimachinery.errors import StatusError

from . import ipam as ipam_
from .config import KubeletConfig
from .envvars import service_link_env
from .node import NodeAgent
from .podworker import PodWorker
from .probes import ProbeHTTP
from .provisioner import LocalProvisioner
from .runtime.base import Runtime
from .stats import StatsCollector
from .statusmanager import StatusManager
from .volumes import VolumeManager

log = logging.getLogger(__name__)

Obj = dict[str, Any]
CONFIGMAPS = resource("configmaps")
SECRETS = resource("secrets")


class Metrics:
    def __init__(self, kubelet: Kubelet) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.pod_start = Histogram("kubelet_pod_start_duration_seconds",
                                   "Time from the kubelet seeing a pod to its status reading Running",
                                   registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 60, 120))
        self.pod_ready = Histogram("kubelet_pod_ready_duration_seconds",
                                   "Time from the kubelet seeing a pod to its Ready condition being True",
                                   registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 60, 120))
        self.started_containers = Counter("kubelet_started_containers_total", "Containers started", registry=r)
        Gauge("kubelet_running_pods", "Pods with a running container", registry=r).set_function(
            lambda: sum(1 for a in kubelet.agents.values() for w in a.workers.values()
                        if any(c.running for c in a.runtime.list_containers(w.uid))))
        Gauge("kubelet_running_containers", "Running containers", registry=r).set_function(
            lambda: sum(1 for a in kubelet.agents.values() for c in a.runtime.list_containers() if c.running))
        Gauge("kubelet_pod_workers", "Pod workers", registry=r).set_function(
            lambda: sum(len(a.workers) for a in kubelet.agents.values()))
        Gauge("kubelet_nodes", "Nodes this process runs", registry=r).set_function(lambda: len(kubelet.agents))
        Gauge("kubelet_node_lease_renewals", "Lease renewals (all nodes)", registry=r).set_function(
            lambda: sum(a.lease_renewals for a in kubelet.agents.values()))
        Gauge("kubelet_node_status_updates", "Node status writes (all nodes)", registry=r).set_function(
            lambda: sum(a.status_updates for a in kubelet.agents.values()))
        Gauge("kubelet_pod_status_writes", "Pod status writes", registry=r).set_function(
            lambda: kubelet.statuses.writes)
        Gauge("kubelet_pod_status_write_failures", "Pod status writes that failed", registry=r).set_function(
            lambda: kubelet.statuses.failures)


def make_runtime(config: KubeletConfig, node_name: str, pool: ipam_.IPAM | None) -> Runtime:
    root = config.root_dir
    if config.runtime == "process":
        from .runtime.process import ProcessRuntime

        return ProcessRuntime(root, node_name=node_name, ipam=pool, cgroups=config.cgroups,
                              log_max_bytes=config.log_max_bytes, log_max_files=config.log_max_files)
    if config.runtime == "docker":
        from .runtime.docker import DockerRuntime

        return DockerRuntime(root, node_name=node_name, docker_host=config.docker_host or None,
                             network=config.docker_network or None, log_max_bytes=config.log_max_bytes,
                             log_max_files=config.log_max_files, cluster_dns=config.cluster_dns,
                             cluster_domain=config.cluster_domain)
    from .runtime.fake import FakeRuntime

    return FakeRuntime(ipam=pool, state_dir=root / "fake" / node_name, start_delay=config.fake_start_delay)


class Kubelet:
    def __init__(self, config: KubeletConfig, client: RESTClient, *, ca_data: bytes | None = None,
                 events: bool | None = None, stats_interval: float = 10.0) -> None:
        self.config = config
        self.client = client
        self.ca_data = ca_data
        self.probe_http = ProbeHTTP()
        self.port = config.bind_port
        self.started_at = time.time()
        self.statuses = StatusManager(client, concurrency=config.status_concurrency)
        self.events_enabled = events if events is not None else config.runtime != "fake"
        self.recorder: EventRecorder | None = EventRecorder(client, component="kubelet", host=config.node_name)
        self.agents: dict[str, NodeAgent] = {}
        self.metrics = Metrics(self)
        real = config.runtime != "fake"
        field = f"spec.nodeName={config.node_name}" if not config.fake_nodes else "spec.nodeName!="
        self.pods = Informer(client, PODS, field_selector=field, name="kubelet-pods")
        self.configmaps = Informer(client, CONFIGMAPS, name="kubelet-configmaps") if real else None
        self.secrets = Informer(client, SECRETS, name="kubelet-secrets") if real else None
        # Services of a pod's namespace become its environment (enableServiceLinks, the default).
        self.services = Informer(client, SERVICES, name="kubelet-services",
                                 indexers={INDEX_NAMESPACE: namespace_index}) if real else None
        self.provisioner: LocalProvisioner | None = None
        if config.provisioner_enabled:
            self.provisioner = LocalProvisioner(client, node_name=config.node_name,
                                                data_dir=config.data_dir or config.root_dir / "volumes")
        self.volumes: VolumeManager | None = None
        if real:
            self.volumes = VolumeManager(
                root=config.root_dir, client=client, lookup=self.lookup, node_name=config.node_name,
                host_ip=config.internal_ip, allocatable=dict(config.capacity), ca_data=ca_data,
                provision=self.provisioner.provision if self.provisioner is not None else None,
                get_object=self.get_object)
        self.server: Any = None
        self.stats = StatsCollector(self, interval=stats_interval)
        self.ready = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._refresh = asyncio.Event()
        self._observed: dict[str, tuple[bool, bool]] = {}

    # ------------------------------------------------------------------ lookups

    def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        informer = self.configmaps if kind == "configmaps" else self.secrets if kind == "secrets" else None
        if informer is None:
            return None
        return informer.get_by_name(namespace, name)

    async def get_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        res = {"persistentvolumeclaims": PERSISTENT_VOLUME_CLAIMS, "persistentvolumes": PERSISTENT_VOLUMES}[kind]
        try:
            return await self.client.get(res, name, namespace=namespace)
        except StatusError as err:
            if err.code == 404:
                return None
            raise

    def service_links(self, pod: Obj) -> dict[str, str]:
        """The variables of the Services in ``pod``'s namespace, unless ``enableServiceLinks: false``.
        ``default/kubernetes`` is left to ``service_env`` (its address differs from the ClusterIP)."""
        if self.services is None or (pod.get("spec") or {}).get("enableServiceLinks") is False:
            return {}
        namespace = m.namespace(pod)
        services = [s for s in self.services.by_index(INDEX_NAMESPACE, namespace)
                    if not (namespace == "default" and m.name(s) == "kubernetes")]
        return service_link_env(sorted(services, key=m.name))

    def service_env(self) -> dict[str, str]:
        """Where in-cluster clients find the API server: its real address (reachable from host processes)."""
        parts = urlsplit(self.client.server)
        host, port = parts.hostname or "127.0.0.1", str(parts.port or 443)
        env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
               "KUBERNETES_SERVICE_PORT_HTTPS": port, "KUBERNETES_PORT": f"tcp://{host}:{port}",
               f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}", f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
               f"KUBERNETES_PORT_{port}_TCP_PORT": port, f"KUBERNETES_PORT_{port}_TCP_ADDR": host}
        if self.config.cluster_dns:
            env["PILOT_DNS"] = self.config.cluster_dns
            env["PILOT_CLUSTER_DOMAIN"] = self.config.cluster_domain
        return env

    def find_pod(self, namespace: str, name: str) -> tuple[NodeAgent, PodWorker] | None:
        for agent in self.agents.values():
            for worker in agent.workers.values():
                if m.namespace(worker.pod) == namespace and m.name(worker.pod) == name and not worker.removed:
                    return agent, worker
        return None

    def observe_status(self, agent: NodeAgent, worker: PodWorker, status: Obj) -> None:
        seen = self._observed.get(worker.uid, (False, False))
        running = seen[0] or status.get("phase") == "Running"
        ready = seen[1] or any(c.get("type") == "Ready" and c.get("status") == "True"
                               for c in status.get("conditions") or [])
        if running and not seen[0]:
            self.metrics.pod_start.observe(max(0.0, time.time() - worker.first_seen))
        if ready and not seen[1]:
            self.metrics.pod_ready.observe(max(0.0, time.time() - worker.first_seen))
        if (running, ready) != seen:
            self._observed[worker.uid] = (running, ready)

    # ------------------------------------------------------------------ start / stop

    async def _pod_cidr(self, node_name: str) -> str:
        """The node's pod CIDR; the API server may still be starting (pilot up starts everything at once)."""
        for attempt in range(60):
            try:
                return await self._pod_cidr_once(node_name)
            except APIConnectionError as exc:
                log.warning("pod CIDR of %s: %r; retrying", node_name, exc)
                await asyncio.sleep(min(10.0, 0.5 * (attempt + 1)))
        return await self._pod_cidr_once(node_name)

    async def _pod_cidr_once(self, node_name: str) -> str:
        cfg = self.config
        if cfg.pod_cidr:
            return cfg.pod_cidr
        saved = cfg.root_dir / "pod-cidr"
        existing = ""
        with contextlib.suppress(StatusError):
            node = await self.client.get(NODES, node_name)
            existing = (node.get("spec") or {}).get("podCIDR") or ""
        if existing:
            return existing
        if saved.exists():
            return saved.read_text().strip()
        nodes = await self.client.list(NODES)
        taken = [(n.get("spec") or {}).get("podCIDR") or "" for n in nodes.get("items") or []
                 if m.name(n) != node_name]
        cidr = ipam_.loopback_cidr(ipam_.choose_loopback_index(node_name, taken))
        saved.write_text(cidr)
        return cidr

    async def start(self, server: Any = None) -> None:
        cfg = self.config
        cfg.root_dir.mkdir(parents=True, exist_ok=True)
        self.statuses.start()
        if self.recorder is not None:
            self.recorder.start()
        if server is not None:
            self.server = server
            self.port = await server.start()
        for i, name in enumerate(cfg.node_names()):
            if cfg.runtime == "fake":
                cidr = ipam_.fake_cidr(i)
            elif cfg.runtime == "process":
                cidr = await self._pod_cidr(name)
            else:
                cidr = cfg.pod_cidr
            pool = ipam_.IPAM(cidr) if cidr and cfg.runtime != "docker" else None
            runtime = make_runtime(cfg, name, pool)
            await runtime.start()
            self.agents[name] = NodeAgent(self, name=name, runtime=runtime, pod_cidr=cidr, index=i)
        for inf in (self.pods, self.configmaps, self.secrets, self.services):
            if inf is not None:
                inf.start()
        if self.configmaps is not None and self.secrets is not None:
            def changed(kind: str) -> Any:
                def handler(_old: Obj, new: Obj) -> None:
                    self._config_changed(kind, new)
                return handler
            self.configmaps.add_event_handler(on_update=changed("configmaps"))
            self.secrets.add_event_handler(on_update=changed("secrets"))
        sem = asyncio.Semaphore(16)

        async def register(agent: NodeAgent) -> None:
            async with sem:
                await agent.register()
            agent.start_loops()

        await asyncio.gather(*(register(a) for a in self.agents.values()))
        log.info("nodes registered", extra={"event": "nodes_registered", "nodes": len(self.agents)})
        await self.pods.wait_for_sync()
        for inf in (self.configmaps, self.secrets, self.services):
            if inf is not None:
                await inf.wait_for_sync(30.0)
        known_by_node: dict[str, set[str]] = {name: set() for name in self.agents}
        for pod in self.pods.list():
            node = (pod.get("spec") or {}).get("nodeName")
            if node in known_by_node:
                known_by_node[node].add(m.uid(pod))
        for name, agent in self.agents.items():
            await agent.cleanup_orphans(known_by_node[name])
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        if self.provisioner is not None:
            self.provisioner.start()
        if self.volumes is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._refresh_loop(), name="volume-refresh"))
        self.stats.start()
        self.ready.set()
        log.info("kubelet ready", extra={"event": "ready", "nodes": len(self.agents), "pods": len(self.pods.list())})

    def _agent_for(self, pod: Obj) -> NodeAgent | None:
        return self.agents.get((pod.get("spec") or {}).get("nodeName") or "")

    def _pod_added(self, pod: Obj) -> None:
        agent = self._agent_for(pod)
        if agent is not None:
            agent.pod_added(pod)

    def _pod_updated(self, _old: Obj, pod: Obj) -> None:
        agent = self._agent_for(pod)
        if agent is not None:
            agent.pod_updated(pod)

    def _pod_deleted(self, pod: Obj) -> None:
        agent = self._agent_for(pod)
        if agent is not None:
            agent.pod_deleted(pod)
        self._observed.pop(m.uid(pod), None)

    def _config_changed(self, kind: str, obj: Obj) -> None:
        if self.volumes is None:
            return
        for agent in self.agents.values():
            for worker in agent.workers.values():
                if m.namespace(worker.pod) == m.namespace(obj) and self.volumes.references(worker.pod, kind, m.name(obj)):
                    self._refresh.set()
                    return

    async def _refresh_loop(self) -> None:
        assert self.volumes is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._refresh.wait(), 10.0)
            self._refresh.clear()
            for agent in list(self.agents.values()):
                for worker in list(agent.workers.values()):
                    if not worker.volumes_ready or worker.done or worker.removed:
                        continue
                    try:
                        await self.volumes.refresh(worker.pod, pod_ip=worker.pod_ip)
                    except Exception:  # noqa: BLE001 - one pod's volume must not stop the others
                        log.exception("volume refresh of %s failed", worker.key)

    async def stop(self, *, stop_pods: bool = False) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.stats.stop()
        if self.server is not None:
            await self.server.stop()
        for inf in (self.pods, self.configmaps, self.secrets, self.services):
            if inf is not None:
                await inf.stop()
        if self.provisioner is not None:
            await self.provisioner.stop()
        for agent in self.agents.values():
            await agent.stop()
            if stop_pods:
                for c in agent.runtime.list_containers():
                    if c.running:
                        with contextlib.suppress(Exception):
                            await agent.runtime.stop_container(c.id, 2.0)
                with contextlib.suppress(Exception):
                    await agent.runtime.release_stopped_pods()
            await agent.runtime.close()
        await self.statuses.stop()
        if self.recorder is not None:
            await self.recorder.stop(flush_timeout=2.0)
        await self.probe_http.close()

    def root(self) -> Path:
        return self.config.root_dir
