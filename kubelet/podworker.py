"""One worker per pod: runs its containers through the runtime and keeps its status true.

The worker is level-triggered, like a controller with one key: every ``sync`` compares the pod's
spec with what the runtime reports and acts — start the next init container, start or restart
containers as the restart policy and the CrashLoopBackOff allow, stop what must stop — then
publishes the status it computes (``podstatus``). It wakes on pod updates, container exits, probe
results and timers (the end of a backoff, a volume retry); one sync runs at a time per pod.

Lifecycle, as the kubelet's pod workers have it:

1. admission (resources fit the node, else Failed ``OutOf<resource>``), sandbox (the pod IP),
   volumes (``FailedMount`` and retry while one cannot be set up);
2. init containers one at a time, each to a successful exit (restarted with backoff unless the
   policy is Never, which fails the pod); sidecars (init containers with ``restartPolicy: Always``)
   start in order, the next one once started, and keep running;
3. containers in order, each with postStart hook and probes; exits are restarted per
   ``restartPolicy`` (Always; OnFailure for non-zero exits; Never) after the backoff; a failed
   liveness or startup probe kills the container with its grace period (then the policy applies);
4. when every container has exited for good the pod is terminal (Succeeded/Failed) and sidecars stop;
5. deletion (``deletionTimestamp``): probes stop, preStop hooks run, SIGTERM, up to
   ``deletionGracePeriodSeconds``, SIGKILL; the final status goes out (Succeeded if every container
   exited 0, else Failed), the sandbox and volumes are removed, and ``DELETE`` with
   ``gracePeriodSeconds: 0`` (uid precondition) lets the API server remove the object.

A worker adopted after a kubelet restart finds the containers still running and carries on; their
readiness is taken over from the last published status until the probes speak again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from apiclient.rest import PODS, APIConnectionError
from apimachinery import meta as m
from apimachinery.errors import StatusError
from apimachinery.quantity import Quantity

from . import podstatus
from .backoff import go_duration
from .envvars import EnvError, container_argv, container_env
from .logs import LogOptions, read_log
from .probes import HandlerContext, Prober, run_handler
from .runtime.base import ContainerConfig, ContainerStatus, Mount, RuntimeError_, SandboxConfig, SandboxStatus
from .volumes import VolumeError, termination_message_path

if TYPE_CHECKING:
    from .node import NodeAgent

log = logging.getLogger(__name__)

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")


@dataclass
class _Instance:
    """Probe-driven state of one running container instance."""

    ready: bool = False
    started: bool = False
    probers: list[Prober] = field(default_factory=list)
    killing: bool = False

    def stop(self) -> None:
        for p in self.probers:
            p.stop()
        self.probers.clear()


def should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def _limit(container: Obj, key: str, *, milli: bool) -> int | None:
    value = ((container.get("resources") or {}).get("limits") or {}).get(key)
    if value is None:
        return None
    try:
        q = Quantity(str(value))
    except ValueError:
        return None
    return max(1, q.milli_value() if milli else q.value())


def memory_limit(container: Obj) -> int | None:
    return _limit(container, "memory", milli=False)


def cpu_limit_milli(container: Obj) -> int | None:
    return _limit(container, "cpu", milli=True)


def group_instances(instances: Iterable[ContainerStatus]) -> dict[str, list[ContainerStatus]]:
    """Container name → instances, newest (highest attempt, latest created) last."""
    out: dict[str, list[ContainerStatus]] = {}
    for c in sorted(instances, key=lambda s: (s.attempt, s.created_at)):
        out.setdefault(c.name, []).append(c)
    return out


DEADLINE_EXCEEDED = "DeadlineExceeded"

# terminationMessagePolicy FallbackToLogsOnError: a failed container's message is the end of its log,
# at most this many lines and bytes (upstream's MaxContainerTerminationMessageLog{Lines,Length}).
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048
TERMINATION_MESSAGE_BYTES = 4096  # upstream's limit on what is read of terminationMessagePath


class PodWorker:
    def __init__(self, agent: NodeAgent, pod: Obj) -> None:
        self.agent = agent
        self.pod = pod
        self.uid = m.uid(pod)
        self.removed = False
        self.done = False
        self.rejected = False
        self.terminal = False
        self.killed = False
        self.sandbox: SandboxStatus | None = None
        self.volumes_ready = False
        self.instances: dict[str, _Instance] = {}  # container id → probe state
        self.waiting: dict[str, tuple[str, str]] = {}  # container name → (reason, message)
        self.retry_at: dict[str, float] = {}  # container name → loop time before which a failed start is not retried
        self.retry_delay: dict[str, float] = {}
        self.mount_error = ""
        self.mount_retry = 1.0
        self.first_seen = time.time()
        self.running_since: float | None = None
        self.terminal_reason: tuple[str, str] | None = None  # (reason, message) the kubelet failed the pod with
        self.log_messages: dict[str, str] = {}  # exited container id -> its termination message ("": none)
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()

    # ------------------------------------------------------------------ outside events

    @property
    def key(self) -> str:
        return m.object_key(self.pod)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"pod-{self.key}")

    def update(self, pod: Obj) -> None:
        self.pod = pod
        self.wake()

    def delete(self, pod: Obj | None = None) -> None:
        if pod is not None:
            self.pod = pod
        self.removed = True
        self.wake()

    def container_exited(self, status: ContainerStatus) -> None:
        inst = self.instances.pop(status.id, None)
        if inst is not None:
            inst.stop()
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def wake_after(self, delay: float) -> None:
        """Sync again in ``delay`` seconds (an earlier pending wake-up is kept).

        Whether a timer is pending is tracked by the timer itself (``_on_timer`` clears it), never by
        comparing clocks: uvloop fires a timer up to a millisecond before its ``when`` as read by
        ``loop.time()``, and a sync run by that timer would see it as still pending and lose its wake-up.
        """
        loop = asyncio.get_running_loop()
        at = loop.time() + max(0.0, delay)
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake.set()

    async def stop(self) -> None:
        """Stop the worker (kubelet shutdown): containers keep running."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self._stop_probers()

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        failures = 0
        try:
            while not self.done:
                self._wake.clear()
                try:
                    await self.sync()
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except (StatusError, APIConnectionError, RuntimeError_, OSError) as exc:
                    failures += 1
                    log.warning("pod %s: sync failed: %r", self.key, exc)
                    self.wake_after(min(30.0, 0.5 * 2 ** min(failures, 6)))
                except Exception:  # noqa: BLE001 - a bug must not kill the worker
                    failures += 1
                    log.exception("pod %s: sync failed", self.key)
                    self.wake_after(min(30.0, 0.5 * 2 ** min(failures, 6)))
                if self.done:
                    break
                await self._wake.wait()
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self.finished.set()

    # ------------------------------------------------------------------ sync

    @property
    def spec(self) -> Obj:
        return self.pod.get("spec") or {}

    @property
    def runtime(self) -> Any:
        return self.agent.runtime

    @property
    def policy(self) -> str:
        return self.spec.get("restartPolicy") or "Always"

    def _init_specs(self) -> list[Obj]:
        return [c for c in self.spec.get("initContainers") or [] if c.get("name")]

    def _regular_specs(self) -> list[Obj]:
        return [c for c in self.spec.get("containers") or [] if c.get("name")]

    def _ephemeral_specs(self) -> list[Obj]:
        """Containers added through pods/ephemeralcontainers (``kubectl debug``): started once, never restarted."""
        return [c for c in self.spec.get("ephemeralContainers") or [] if isinstance(c, dict) and c.get("name")]

    @staticmethod
    def _is_sidecar(spec: Obj) -> bool:
        return spec.get("restartPolicy") == "Always"

    async def sync(self) -> None:
        if self.removed or m.deletion_timestamp(self.pod):
            await self._terminate()
            return
        if self.rejected:
            return
        if not self.sandbox and (self.pod.get("status") or {}).get("phase") in TERMINAL \
                and not self.runtime.list_containers(self.uid):
            # Finished before (e.g. this kubelet restarted after the pod completed): nothing to run.
            self.terminal = True
            return
        if self.sandbox is None:
            problem = self.agent.admit(self.pod)
            if problem is not None:
                reason, message = problem
                self.rejected = True
                self._event("Warning", reason, message)
                self.agent.statuses.set(self.pod, podstatus.rejected_status(
                    self.pod, reason=reason, message=message, host_ip=self.agent.host_ip, now=m.now_rfc3339()))
                return
            self.sandbox = await self.runtime.run_pod_sandbox(SandboxConfig(
                pod_uid=self.uid, name=m.name(self.pod), namespace=m.namespace(self.pod),
                node_name=self.agent.name, pod_dir=self.agent.pod_dir(self.uid),
                hostname=self.spec.get("hostname") or m.name(self.pod), labels=dict(m.labels(self.pod)),
                annotations=dict(m.annotations(self.pod)), host_network=bool(self.spec.get("hostNetwork")),
                dns_policy=self.spec.get("dnsPolicy") or "ClusterFirst", dns_config=self.spec.get("dnsConfig") or {}))
        if self.agent.volumes is not None and not self.volumes_ready:
            try:
                await self.agent.volumes.setup(self.pod, pod_ip=self.pod_ip)
                self.volumes_ready = True
                self.mount_error = ""
            except (VolumeError, OSError) as exc:
                message = f"MountVolume.SetUp failed: {exc}"
                if message != self.mount_error:
                    self._event("Warning", "FailedMount", message)
                self.mount_error = message
                self.wake_after(self.mount_retry)
                self.mount_retry = min(30.0, self.mount_retry * 2)
                self._publish()
                return
        grouped = group_instances(self.runtime.list_containers(self.uid))
        self._adopt(grouped)
        if not self.terminal and self._past_active_deadline():
            await self._fail(DEADLINE_EXCEEDED, "Pod was active on the node longer than the specified deadline")
            return
        if not self.terminal:
            if await self._sync_init(grouped):
                await self._sync_regular(grouped)
            await self._sync_ephemeral(grouped)
            grouped = group_instances(self.runtime.list_containers(self.uid))
        await self._read_termination_messages(grouped)
        status = self._publish(grouped)
        if status["phase"] in TERMINAL and not self.terminal:
            self.terminal = True
            self._stop_probers()
            # Sidecars and anything else still running stop once the pod is done.
            await self._kill_running(self._grace(), reason="the pod completed")
            self._publish()
        self._collect_garbage(grouped)

    def _past_active_deadline(self) -> bool:
        """``spec.activeDeadlineSeconds``, counted from ``status.startTime``; arms a wake-up for it."""
        deadline = self.spec.get("activeDeadlineSeconds")
        if not isinstance(deadline, int) or isinstance(deadline, bool) or deadline <= 0:
            return False
        started = self.first_seen
        recorded = (self.pod.get("status") or {}).get("startTime")
        if recorded:
            try:
                started = m.parse_rfc3339(str(recorded)).timestamp()
            except ValueError:
                pass
        remaining = started + deadline - time.time()
        if remaining > 0:
            self.wake_after(remaining)
            return False
        return True

    async def _fail(self, reason: str, message: str) -> None:
        """End the pod as Failed with ``reason`` (as the kubelet's active-deadline handler does)."""
        self.terminal = True
        self.terminal_reason = (reason, message)
        self._stop_probers()
        self._event("Normal", reason, message)
        await self._kill_running(self._grace(), reason=reason)
        self._publish(phase="Failed")

    @property
    def pod_ip(self) -> str:
        if self.sandbox is not None and self.sandbox.ip:
            return self.sandbox.ip
        if self.spec.get("hostNetwork"):
            return self.agent.host_ip
        return ""

    # ------------------------------------------------------------------ init and regular containers

    async def _sync_init(self, grouped: dict[str, list[ContainerStatus]]) -> bool:
        """Advance init containers; True once they are all done (or were, before this kubelet started)."""
        if any(grouped.get(c["name"]) for c in self._regular_specs()):
            return True
        now = time.time()
        for spec in self._init_specs():
            name = spec["name"]
            history = grouped.get(name) or []
            latest = history[-1] if history else None
            if self._is_sidecar(spec):
                if latest is None:
                    await self._start(spec, "sidecar", 0)
                    return False
                if latest.running:
                    inst = self.instances.get(latest.id)
                    if inst is not None and inst.started:
                        continue
                    return False
                await self._restart(spec, latest, "sidecar", now)
                return False
            if latest is None:
                await self._start(spec, "init", 0)
                return False
            if latest.running:
                return False
            if latest.exit_code == 0:
                continue
            if self.policy == "Never":
                return False
            await self._restart(spec, latest, "init", now)
            return False
        return True

    async def _sync_regular(self, grouped: dict[str, list[ContainerStatus]]) -> None:
        now = time.time()
        for spec in self._init_specs():
            if not self._is_sidecar(spec):
                continue
            history = grouped.get(spec["name"]) or []
            if history and history[-1].state == "exited":
                await self._restart(spec, history[-1], "sidecar", now)
        for spec in self._regular_specs():
            name = spec["name"]
            history = grouped.get(name) or []
            latest = history[-1] if history else None
            if latest is None:
                if self._start_allowed(name):
                    await self._start(spec, "regular", 0)
                continue
            if latest.running or not should_restart(self.policy, latest.exit_code):
                continue
            await self._restart(spec, latest, "regular", now)

    async def _sync_ephemeral(self, grouped: dict[str, list[ContainerStatus]]) -> None:
        """Start each ephemeral container that never ran, even while init containers still run (as upstream)."""
        for spec in self._ephemeral_specs():
            if not grouped.get(spec["name"]) and self._start_allowed(spec["name"]):
                target = grouped.get(spec.get("targetContainerName") or "") or []
                target_id = target[-1].id if target and target[-1].running else ""
                await self._start(spec, "ephemeral", 0, target_id=target_id)

    async def _restart(self, spec: Obj, latest: ContainerStatus, kind: str, now: float) -> None:
        name = spec["name"]
        key = (self.uid, name)
        backoff = self.agent.backoff
        remaining = backoff.remaining(key, started_at=latest.started_at, finished_at=latest.finished_at, now=now)
        log.debug("pod %s: container %s exited (attempt %d), back-off %.3fs remaining",
                  self.key, name, latest.attempt, remaining)
        if remaining > 0:
            message = (f"back-off {go_duration(backoff.current(key))} restarting failed container={name} "
                       f"pod={m.name(self.pod)}_{m.namespace(self.pod)}({self.uid})")
            if self.waiting.get(name, ("",))[0] != "CrashLoopBackOff":
                self._event("Warning", "BackOff", f"Back-off restarting failed container {name} in pod "
                                                  f"{m.name(self.pod)}_{m.namespace(self.pod)}({self.uid})")
            self.waiting[name] = ("CrashLoopBackOff", message)
            self.wake_after(remaining)
            return
        if not self._start_allowed(name):
            return
        backoff.next(key, now=now)
        await self._start(spec, kind, latest.attempt + 1)

    def _start_allowed(self, name: str) -> bool:
        """False while a failed start of ``name`` waits for its retry time (a wake-up is then pending)."""
        wait = self.retry_at.get(name, 0.0) - asyncio.get_running_loop().time()
        if wait > 0:
            self.wake_after(wait)
            return False
        return True

    async def _start(self, spec: Obj, kind: str, attempt: int, *, target_id: str = "") -> None:
        name = spec["name"]
        loop = asyncio.get_running_loop()
        try:
            config = replace(self._container_config(spec, kind, attempt), target_container_id=target_id)
        except (EnvError, VolumeError, RuntimeError_) as exc:
            reason = getattr(exc, "reason", "CreateContainerConfigError")
            message = getattr(exc, "message", None) or str(exc)
            if self.waiting.get(name) != (reason, message):
                self._event("Warning", "Failed", f"Error: {message}")
            self.waiting[name] = (reason, message)
            delay = self.retry_delay.get(name, 1.0)
            self.retry_delay[name] = min(30.0, delay * 2)
            self.retry_at[name] = loop.time() + delay
            self.wake_after(delay)
            return
        assert self.sandbox is not None
        try:
            status = await self.runtime.start_container(self.sandbox, config)
        except RuntimeError_ as exc:
            if self.waiting.get(name) != (exc.reason, exc.message):
                self._event("Warning", "Failed", f"Error: {exc.message}")
            self.waiting[name] = (exc.reason, exc.message)
            delay = self.retry_delay.get(name, 1.0)
            self.retry_delay[name] = min(30.0, delay * 2)
            self.retry_at[name] = loop.time() + delay
            self.wake_after(delay)
            return
        self.waiting.pop(name, None)
        self.retry_at.pop(name, None)
        self.retry_delay.pop(name, None)
        if status.state == "exited":  # the command could not even be executed (StartError)
            self._event("Warning", "Failed", f"Error: {status.message or status.reason}")
            self.wake()
            return
        if self.agent.events_enabled:
            if self.runtime.name == "docker":  # the process runtime pulls nothing: no Pulled event to claim
                self._event("Normal", "Pulled", f'Container image "{config.image}" already present on machine')
            self._event("Normal", "Created", f"Created container {name}")
            self._event("Normal", "Started", f"Started container {name}")
        inst = _Instance()
        self.instances[status.id] = inst
        self._start_probers(spec, status, inst, kind)
        post_start = ((spec.get("lifecycle") or {}).get("postStart"))
        if post_start:
            ctx = HandlerContext(self.runtime, status.id, spec, self.pod_ip, self.agent.kubelet.probe_http)
            result, output = await run_handler(post_start, ctx, float(self.spec.get("terminationGracePeriodSeconds") or 30))
            if result != "success":
                self._event("Warning", "FailedPostStartHook", f"PostStartHook failed: {output}")
                await self._kill(status, inst, self._grace(), "FailedPostStartHook")

    def _container_config(self, spec: Obj, kind: str, attempt: int) -> ContainerConfig:
        agent = self.agent
        pod = self.pod
        name = spec["name"]
        runtime_name = self.runtime.name
        working_dir = str(spec.get("workingDir") or "")
        env: dict[str, str] = {}
        mounts: tuple[Any, ...] = ()
        if runtime_name != "fake":
            base = {"POD_IP": self.pod_ip, "POD_NAME": m.name(pod), "POD_NAMESPACE": m.namespace(pod),
                    "NODE_NAME": agent.name, "HOSTNAME": self.spec.get("hostname") or m.name(pod),
                    **agent.service_links(pod), **agent.service_env()}
            if runtime_name == "process" and agent.volumes is not None:
                root, working_dir = agent.volumes.container_root(pod, spec)
                base["PILOT_ROOT"] = str(root)
                agent.volumes.new_termination_log(pod, spec, attempt, root=root)
            elif agent.volumes is not None:
                log_file = agent.volumes.new_termination_log(pod, spec, attempt)
                mounts = (*agent.volumes.container_mounts(pod, spec),
                          Mount(str(log_file), termination_message_path(spec)))
            env, warnings = container_env(pod, spec, lookup=agent.lookup, pod_ip=self.pod_ip, host_ip=agent.host_ip,
                                          node_name=agent.name, allocatable=agent.allocatable, base=base)
            for warning in warnings:
                self._event("Warning", "InvalidEnvironmentVariableNames", warning)
        argv = tuple(container_argv(spec, env))
        if runtime_name == "process" and not argv:
            raise RuntimeError_("CreateContainerError",
                                f"container {name}: the process runtime runs command/args on the host and ignores "
                                f"the image {spec.get('image')!r}; set command or args")
        return ContainerConfig(
            pod_uid=self.uid, pod_name=m.name(pod), pod_namespace=m.namespace(pod), name=name, attempt=attempt,
            image=str(spec.get("image") or ""), argv=argv, env=env, working_dir=working_dir, mounts=mounts,
            memory_limit=memory_limit(spec), cpu_limit_milli=cpu_limit_milli(spec), kind=kind,
            tty=bool(spec.get("tty")), stdin=bool(spec.get("stdin")), stdin_once=bool(spec.get("stdinOnce")),
            labels={}, annotations=dict(m.annotations(pod)),
            image_pull_policy=str(spec.get("imagePullPolicy") or "IfNotPresent"))

    # ------------------------------------------------------------------ probes

    def _start_probers(self, spec: Obj, status: ContainerStatus, inst: _Instance, kind: str,
                       elapsed: float = 0.0) -> None:
        if kind in ("init", "ephemeral"):  # no probes: started once it runs, never ready
            inst.started = True
            return
        ctx = HandlerContext(self.runtime, status.id, spec, self.pod_ip, self.agent.kubelet.probe_http)
        startup = spec.get("startupProbe")
        if self.runtime.name == "fake":
            inst.started = True
            inst.ready = True
            return

        def start_main_probes() -> None:
            for kind_, key in (("liveness", "livenessProbe"), ("readiness", "readinessProbe")):
                probe = spec.get(key)
                if probe:
                    prober = Prober(kind_, probe, ctx, lambda k, ok, msg: self._probe_result(status, inst, spec, k, ok, msg))
                    inst.probers.append(prober)
                    prober.start(elapsed)
            if not spec.get("readinessProbe"):
                inst.ready = True

        if startup:
            prober = Prober("startup", startup, ctx,
                            lambda k, ok, msg: self._startup_result(status, inst, spec, ok, msg, start_main_probes))
            inst.probers.append(prober)
            if inst.started:
                start_main_probes()
            else:
                prober.start(elapsed)
        else:
            inst.started = True
            start_main_probes()

    def _startup_result(self, status: ContainerStatus, inst: _Instance, spec: Obj, ok: bool, message: str,
                        then: Any) -> None:
        if ok:
            inst.started = True
            then()
            self.wake()
            return
        self._event("Warning", "Unhealthy", f"Startup probe failed: {message}")
        self._event("Normal", "Killing", f"Container {spec['name']} failed startup probe, will be restarted")
        grace = self._probe_grace(spec.get("startupProbe") or {})
        asyncio.get_running_loop().create_task(self._kill(status, inst, grace, "startup probe failed"))

    def _probe_result(self, status: ContainerStatus, inst: _Instance, spec: Obj, kind: str, ok: bool,
                      message: str) -> None:
        if kind == "readiness":
            if not ok:
                self._event("Warning", "Unhealthy", f"Readiness probe failed: {message}")
            if inst.ready != ok:
                inst.ready = ok
                self.wake()
            return
        if kind == "liveness" and not ok:
            self._event("Warning", "Unhealthy", f"Liveness probe failed: {message}")
            self._event("Normal", "Killing", f"Container {spec['name']} failed liveness probe, will be restarted")
            grace = self._probe_grace(spec.get("livenessProbe") or {})
            asyncio.get_running_loop().create_task(self._kill(status, inst, grace, "liveness probe failed"))

    def _probe_grace(self, probe: Obj) -> float:
        value = probe.get("terminationGracePeriodSeconds")
        return float(value) if isinstance(value, int) and value >= 0 else self._grace()

    def _grace(self) -> float:
        value = self.spec.get("terminationGracePeriodSeconds")
        return float(value) if isinstance(value, (int, float)) and value >= 0 else 30.0

    async def _kill(self, status: ContainerStatus, inst: _Instance | None, grace: float, why: str) -> None:
        if inst is not None:
            if inst.killing:
                return
            inst.killing = True
            inst.stop()
            inst.ready = False
        try:
            await self.runtime.stop_container(status.id, grace)
        except RuntimeError_ as exc:
            log.warning("pod %s: stopping %s (%s) failed: %s", self.key, status.name, why, exc)
        self.wake()

    def _stop_probers(self) -> None:
        for inst in self.instances.values():
            inst.stop()

    def _adopt(self, grouped: dict[str, list[ContainerStatus]]) -> None:
        """Running containers we have no probe state for (a kubelet restart): take readiness from the last status."""
        old = {}
        status = self.pod.get("status") or {}
        for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            if isinstance(cs, dict) and cs.get("containerID"):
                old[str(cs["containerID"]).split("://", 1)[-1]] = cs
        specs = {c["name"]: (c, "sidecar" if self._is_sidecar(c) else "init") for c in self._init_specs()}
        specs.update({c["name"]: (c, "regular") for c in self._regular_specs()})
        specs.update({c["name"]: (c, "ephemeral") for c in self._ephemeral_specs()})
        for name, history in grouped.items():
            latest = history[-1]
            if not latest.running or latest.id in self.instances or name not in specs:
                continue
            spec, kind = specs[name]
            inst = _Instance()
            prev = old.get(latest.id) or {}
            inst.ready = bool(prev.get("ready"))
            inst.started = bool(prev.get("started"))
            self.instances[latest.id] = inst
            self._start_probers(spec, latest, inst, kind, elapsed=max(0.0, time.time() - latest.started_at))

    # ------------------------------------------------------------------ status

    def _views(self, grouped: dict[str, list[ContainerStatus]], *, terminating: bool = False
               ) -> tuple[list[podstatus.ContainerView], list[podstatus.ContainerView], list[podstatus.ContainerView]]:
        init_done = any(grouped.get(c["name"]) for c in self._regular_specs())
        init_views: list[podstatus.ContainerView] = []
        for spec in self._init_specs():
            sidecar = self._is_sidecar(spec)
            v = self._view(spec, grouped.get(spec["name"]) or [], terminating=terminating,
                           restarts=lambda code, s=sidecar: s or (code != 0 and self.policy != "Never"))
            v.sidecar = sidecar
            if v.current is None and not v.waiting_reason:
                v.waiting_reason = "PodInitializing"
            init_views.append(v)
        regular = []
        for spec in self._regular_specs():
            v = self._view(spec, grouped.get(spec["name"]) or [], terminating=terminating,
                           restarts=lambda code: should_restart(self.policy, code))
            if v.current is None and not v.waiting_reason and self._init_specs() and not init_done:
                v.waiting_reason = "PodInitializing"
            regular.append(v)
        # Never ready (no probes set it) and never restarted.
        ephemeral = [self._view(spec, grouped.get(spec["name"]) or [], terminating=terminating,
                                restarts=lambda code: False) for spec in self._ephemeral_specs()]
        return init_views, regular, ephemeral

    async def _read_termination_messages(self, grouped: dict[str, list[ContainerStatus]]) -> None:
        """An exited container's termination message (read once per container instance): what it
        wrote to its ``terminationMessagePath`` (at most 4 KiB); with ``FallbackToLogsOnError``, a
        failed container that wrote nothing gets the end of its log."""
        present = {st.id for history in grouped.values() for st in history}
        for gone in [cid for cid in self.log_messages if cid not in present]:
            del self.log_messages[gone]
        volumes = self.agent.volumes
        for spec in self._init_specs() + self._regular_specs() + self._ephemeral_specs():
            fallback = spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"
            for st in (grouped.get(spec["name"]) or [])[-2:]:
                if st.state != "exited" or st.message or st.id in self.log_messages:
                    continue
                message = ""
                if volumes is not None:
                    with contextlib.suppress(OSError):
                        with open(volumes.termination_log(self.uid, st.name, st.attempt), "rb") as f:
                            message = f.read(TERMINATION_MESSAGE_BYTES).decode("utf-8", "replace")
                if not message and fallback and st.exit_code:
                    lines = [line async for line in read_log(st.log_path, LogOptions(tail_lines=FALLBACK_LOG_LINES))]
                    message = b"".join(lines)[-FALLBACK_LOG_BYTES:].decode("utf-8", "replace")
                self.log_messages[st.id] = message

    def _with_log_message(self, st: ContainerStatus | None) -> ContainerStatus | None:
        message = self.log_messages.get(st.id) if st is not None else None
        return replace(st, message=message) if st is not None and message else st

    def _view(self, spec: Obj, history: list[ContainerStatus], *, terminating: bool,
              restarts: Any) -> podstatus.ContainerView:
        name = spec["name"]
        latest = self._with_log_message(history[-1] if history else None)
        previous = self._with_log_message(history[-2] if len(history) > 1 else None)
        v = podstatus.ContainerView(name=name, image=str(spec.get("image") or ""), current=latest, previous=previous)
        reason, message = self.waiting.get(name, ("", ""))
        if latest is None and self.mount_error:
            reason, message = "ContainerCreating", ""
        v.waiting_reason, v.waiting_message = reason, message
        if latest is not None and latest.running:
            inst = self.instances.get(latest.id)
            v.ready = bool(inst and inst.ready and not inst.killing)
            v.started = bool(inst and inst.started)
        elif latest is not None:
            v.will_restart = bool(restarts(latest.exit_code)) and not self.terminal and not terminating
            if v.will_restart and reason != "CrashLoopBackOff":
                v.waiting_reason, v.waiting_message = reason or "ContainerCreating", message
        return v

    def _publish(self, grouped: dict[str, list[ContainerStatus]] | None = None, *, phase: str | None = None,
                 terminating: bool = False) -> Obj:
        if grouped is None:
            grouped = group_instances(self.runtime.list_containers(self.uid))
        init_views, regular, ephemeral = self._views(grouped, terminating=terminating)
        old_phase = (self.pod.get("status") or {}).get("phase")
        if phase is None and self.terminal and old_phase in TERMINAL:
            phase = old_phase  # a terminal phase never changes back
        reason, message = self.terminal_reason or ("", "")
        if self.terminal_reason is not None:
            phase = "Failed"
        now = m.now_rfc3339()
        status = podstatus.pod_status(self.pod, scheme=self.runtime.scheme, init=init_views, regular=regular,
                                      ephemeral=ephemeral,
                                      host_ip=self.agent.host_ip, pod_ip=self.pod_ip,
                                      start_time=podstatus.rfc3339(self.first_seen), sandbox_ready=self.sandbox is not None,
                                      now=now, phase=phase, reason=reason, message=message)
        if status["phase"] == "Running" and self.running_since is None:
            self.running_since = time.time()
        self.agent.statuses.set(self.pod, status)
        self.agent.observe_status(self, status)
        return status

    def _collect_garbage(self, grouped: dict[str, list[ContainerStatus]]) -> None:
        """Keep the latest two instances per container (``logs --previous`` reads the second)."""
        for history in grouped.values():
            for old in history[:-2]:
                if old.state == "exited":
                    asyncio.get_running_loop().create_task(self.runtime.remove_container(old.id))

    # ------------------------------------------------------------------ termination

    async def _kill_running(self, grace: float, *, reason: str, hooks: bool = False) -> None:
        """Stop every running container: regular ones first (preStop hooks, SIGTERM, SIGKILL), then init/sidecars."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        specs = {c["name"]: c for c in [*self._init_specs(), *self._regular_specs()]}
        running = [c for c in self.runtime.list_containers(self.uid) if c.running]
        regular_names = {c["name"] for c in self._regular_specs()}
        for batch in ([c for c in running if c.name in regular_names], [c for c in running if c.name not in regular_names]):
            if not batch:
                continue

            async def stop_one(c: ContainerStatus) -> None:
                spec = specs.get(c.name) or {}
                pre_stop = (spec.get("lifecycle") or {}).get("preStop")
                if hooks and pre_stop:
                    ctx = HandlerContext(self.runtime, c.id, spec, self.pod_ip, self.agent.kubelet.probe_http)
                    remaining = max(0.0, deadline - loop.time())
                    try:
                        result, output = await asyncio.wait_for(run_handler(pre_stop, ctx, max(remaining, 0.001)),
                                                                max(remaining, 0.001))
                    except asyncio.TimeoutError:
                        result, output = "failure", "timed out"
                    if result != "success":
                        self._event("Warning", "FailedPreStopHook", f"PreStopHook failed: {output}")
                if self.agent.events_enabled:
                    self._event("Normal", "Killing", f"Stopping container {c.name}")
                inst = self.instances.get(c.id)
                if inst is not None:
                    inst.stop()
                    inst.ready = False
                await self.runtime.stop_container(c.id, max(0.0, deadline - loop.time()))

            await asyncio.gather(*(stop_one(c) for c in batch), return_exceptions=True)

    async def _terminate(self) -> None:
        meta = self.pod.get("metadata") or {}
        if not self.killed:
            self._stop_probers()
            grace = meta.get("deletionGracePeriodSeconds")
            if grace is None:
                grace = 2.0 if self.removed else self._grace()  # force-deleted: stop at once
            await self._kill_running(float(grace), reason="pod deleted", hooks=True)
            self.killed = True
        if not self.removed and self.sandbox is not None and not self.rejected:
            grouped = group_instances(self.runtime.list_containers(self.uid))
            regular = [g[-1] for spec in self._regular_specs() if (g := grouped.get(spec["name"]))]
            phase = "Succeeded" if regular and len(regular) == len(self._regular_specs()) and all(
                c.exit_code == 0 for c in regular) else "Failed"
            old_phase = (self.pod.get("status") or {}).get("phase")
            if old_phase in TERMINAL:
                phase = old_phase
            self.terminal = True
            self._publish(grouped, phase=phase, terminating=True)
            await self.agent.statuses.flush(self.pod, 10.0)
        await self.runtime.remove_pod_sandbox(self.uid)
        if self.agent.volumes is not None:
            self.agent.volumes.teardown(self.uid)
        self.agent.backoff.forget_pod(self.uid)
        if not self.removed:
            try:
                await self.agent.client.delete(PODS, m.name(self.pod), namespace=m.namespace(self.pod),
                                               grace_period_seconds=0, preconditions={"uid": self.uid})
            except StatusError as err:
                if err.code not in (404, 409):
                    raise
        self.agent.statuses.forget(self.uid)
        self.done = True
        log.info("pod %s terminated", self.key, extra={"event": "pod_terminated", "pod": self.key, "uid": self.uid})

    # ------------------------------------------------------------------ events

    def _event(self, type_: str, reason: str, message: str) -> None:
        recorder = self.agent.recorder
        if recorder is None:
            return
        if not self.agent.events_enabled and type_ == "Normal":
            return
        obj = {"kind": "Pod", "apiVersion": "v1", "metadata": self.pod.get("metadata") or {}}
        recorder.event(obj, type_, reason, message)

