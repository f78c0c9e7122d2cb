"""A pod's status as the kubelet writes it, computed from what the runtime observed (pure).

Field by field what kubelet 1.32 produces (``pkg/kubelet/kubelet_pods.go`` ``generateAPIPodStatus``):

* ``containerStatuses`` / ``initContainerStatuses``: every field the official Python client requires
  (``name, image, imageID, ready, restartCount``; ``imageID`` is ``""`` until something ran), plus
  ``state`` (exactly one of waiting/running/terminated), ``lastState`` (``{}`` or the previous
  instance's ``terminated``), ``started``, ``containerID`` (``<runtime>://<id>``) once an instance
  exists. ``restartCount`` is the latest instance's attempt: a container in CrashLoopBackOff shows
  the count of the instance that died, the next start adds one.
* ``phase`` (``getPhase``): Pending while init containers are pending or any container waits for a
  first start; Running while one runs (or, with restartPolicy Always/OnFailure, will be restarted);
  Succeeded when every container exited 0 and none will restart; Failed when one failed for good.
* ``conditions``: PodReadyToStartContainers, Initialized (``ContainersNotInitialized: containers with
  incomplete status: [...]``), ContainersReady and Ready (``ContainersNotReady: containers with
  unready status: [...]``; ``PodCompleted`` once Succeeded; readiness gates), PodScheduled kept.
  ``lastTransitionTime`` is kept while a condition's status does not change.
* ``hostIP``/``hostIPs``, ``podIP``/``podIPs``, ``startTime`` (first time the kubelet saw the pod),
  ``qosClass`` kept from the API server's defaulting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .runtime.base import ContainerStatus

Obj = dict[str, Any]

KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerView:
    """One container of the spec and what we know about it."""

    name: str
    image: str
    current: ContainerStatus | None = None  # the latest instance
    previous: ContainerStatus | None = None  # the one before it (lastState)
    waiting_reason: str = ""  # shown when not running: ContainerCreating, PodInitializing, CrashLoopBackOff, ...
    waiting_message: str = ""
    ready: bool = False
    started: bool = False
    will_restart: bool = False  # exited, and the restart policy restarts it
    sidecar: bool = False


def terminated(c: ContainerStatus, scheme: str) -> Obj:
    out: Obj = {"exitCode": int(c.exit_code if c.exit_code is not None else 0),
                "reason": c.reason or ("Completed" if not c.exit_code else "Error"),
                "startedAt": rfc3339(c.started_at) if c.started_at else None,
                "finishedAt": rfc3339(c.finished_at) if c.finished_at else None,
                "containerID": f"{scheme}://{c.id}"}
    if c.message:
        out["message"] = c.message
    return out


def container_status(v: ContainerView, scheme: str) -> Obj:
    cur = v.current
    out: Obj = {"name": v.name, "image": v.image, "imageID": "", "ready": False, "restartCount": 0,
                "started": False, "state": {}, "lastState": {}}
    if cur is not None:
        out["imageID"] = cur.image_id or ""
        out["containerID"] = f"{scheme}://{cur.id}"
        out["restartCount"] = cur.attempt
    if cur is not None and cur.running:
        out["state"] = {"running": {"startedAt": rfc3339(cur.started_at or cur.created_at)}}
        out["ready"] = bool(v.ready)
        out["started"] = bool(v.started)
        if v.previous is not None and v.previous.state == "exited":
            out["lastState"] = {"terminated": terminated(v.previous, scheme)}
    elif cur is not None and cur.state == "exited" and not v.will_restart:
        out["state"] = {"terminated": terminated(cur, scheme)}
        if v.previous is not None and v.previous.state == "exited":
            out["lastState"] = {"terminated": terminated(v.previous, scheme)}
    else:
        waiting: Obj = {"reason": v.waiting_reason or "ContainerCreating"}
        if v.waiting_message:
            waiting["message"] = v.waiting_message
        out["state"] = {"waiting": waiting}
        if cur is not None and cur.state == "exited":
            out["lastState"] = {"terminated": terminated(cur, scheme)}
    return out


def pod_phase(pod: Obj, init: list[ContainerView], regular: list[ContainerView]) -> str:
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    for v in init:
        if v.sidecar:
            continue
        cur = v.current
        if cur is not None and cur.state == "exited" and cur.exit_code != 0 and not v.will_restart:
            return "Failed"
    pending_init = any(
        not v.sidecar and not (v.current is not None and v.current.state == "exited" and v.current.exit_code == 0)
        for v in init)
    if pending_init:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for v in regular:
        cur = v.current
        if cur is not None and cur.running:
            running += 1
        elif cur is not None and cur.state == "exited":
            if v.will_restart:
                stopped += 1  # waiting to restart after a termination counts as stopped upstream
            else:
                stopped += 1
                if cur.exit_code == 0:
                    succeeded += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if policy == "Always":
            return "Running"
        if any(v.will_restart for v in regular):
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(ctype: str, status: bool, old: dict[str, Obj], now: str, reason: str = "", message: str = "") -> Obj:
    value = "True" if status else "False"
    prev = old.get(ctype)
    out: Obj = {"type": ctype, "status": value, "lastProbeTime": None,
                "lastTransitionTime": prev.get("lastTransitionTime") if prev and prev.get("status") == value
                and prev.get("lastTransitionTime") else now}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def pod_conditions(pod: Obj, *, phase: str, sandbox_ready: bool, init: list[ContainerView],
                   regular: list[ContainerView], now: str) -> list[Obj]:
    old_status = pod.get("status") or {}
    old = {c.get("type"): c for c in old_status.get("conditions") or [] if isinstance(c, dict)}
    out: list[Obj] = [_condition("PodReadyToStartContainers", sandbox_ready, old, now)]
    incomplete = [v.name for v in init if not (
        (v.sidecar and v.current is not None and v.current.running and v.started)
        or (v.current is not None and v.current.state == "exited" and v.current.exit_code == 0)
        or (v.sidecar and phase in ("Succeeded", "Failed")))]
    if phase == "Succeeded":
        incomplete = []
    if incomplete:
        out.append(_condition("Initialized", False, old, now, "ContainersNotInitialized",
                              f"containers with incomplete status: [{' '.join(incomplete)}]"))
    else:
        out.append(_condition("Initialized", True, old, now))
    unready = [v.name for v in [*[i for i in init if i.sidecar], *regular] if not v.ready]
    if phase == "Succeeded":
        ready_cond = _condition("ContainersReady", False, old, now, "PodCompleted")
    elif unready:
        ready_cond = _condition("ContainersReady", False, old, now, "ContainersNotReady",
                                f"containers with unready status: [{' '.join(unready)}]")
    else:
        ready_cond = _condition("ContainersReady", True, old, now)
    out.append(ready_cond)
    gates = [g.get("conditionType") for g in (pod.get("spec") or {}).get("readinessGates") or []
             if isinstance(g, dict) and g.get("conditionType")]
    gate_problem = ""
    for gate in gates:
        cond = old.get(gate)
        if cond is None:
            gate_problem = f'corresponding condition of pod readiness gate "{gate}" does not exist.'
            break
        if cond.get("status") != "True":
            gate_problem = f'the status of pod readiness gate "{gate}" is not "True", but {cond.get("status")}'
            break
    if ready_cond["status"] == "True" and gate_problem:
        out.append(_condition("Ready", False, old, now, "ReadinessGatesNotReady", gate_problem))
    else:
        out.append(_condition("Ready", ready_cond["status"] == "True", old, now, ready_cond.get("reason", ""),
                              ready_cond.get("message", "")))
    scheduled = old.get("PodScheduled")
    out.append(scheduled if scheduled is not None else {"type": "PodScheduled", "status": "True",
                                                        "lastProbeTime": None, "lastTransitionTime": now})
    # Conditions other components own (DisruptionTarget, readiness gates, ...) are kept as they are.
    for ctype, cond in old.items():
        if ctype not in KUBELET_CONDITIONS and ctype != "PodScheduled":
            out.append(cond)
    return out


def pod_status(pod: Obj, *, scheme: str, init: list[ContainerView], regular: list[ContainerView],
               ephemeral: Sequence[ContainerView] = (), host_ip: str, pod_ip: str, start_time: str,
               sandbox_ready: bool, now: str,
               phase: str | None = None, reason: str = "", message: str = "") -> Obj:
    old = pod.get("status") or {}
    phase = phase or pod_phase(pod, init, regular)
    status: Obj = {"phase": phase,
                   "conditions": pod_conditions(pod, phase=phase, sandbox_ready=sandbox_ready, init=init,
                                                regular=regular, now=now)}
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    status["startTime"] = old.get("startTime") or start_time
    if init:
        status["initContainerStatuses"] = [container_status(v, scheme) for v in init]
    status["containerStatuses"] = [container_status(v, scheme) for v in regular]
    if ephemeral:
        status["ephemeralContainerStatuses"] = [container_status(v, scheme) for v in ephemeral]
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if old.get("nominatedNodeName"):
        status["nominatedNodeName"] = old["nominatedNodeName"]
    return status


def rejected_status(pod: Obj, *, reason: str, message: str, host_ip: str, now: str) -> Obj:
    """A pod the kubelet will not run (admission failed): Failed at once, nothing started."""
    old = pod.get("status") or {}
    status: Obj = {"phase": "Failed", "reason": reason, "message": message,
                   "startTime": old.get("startTime") or now, "conditions": list(old.get("conditions") or [])}
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    return status
