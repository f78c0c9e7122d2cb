"""Job controller (batch/v1) and the TTL-after-finished controller.

A Job runs pods until ``completions`` of them succeeded (or, without ``completions``, until one
succeeded and the others ended), at most ``parallelism`` at a time:

* pods are the Job's by controller reference (plus orphans its selector matches, adopted); they get
  the labels upstream's API server would put into the template (``batch.kubernetes.io/job-name``,
  ``batch.kubernetes.io/controller-uid`` and their short forms). ``Indexed`` Jobs give each pod a
  completion index (annotation, label, hostname ``<job>-<index>``) and report ``completedIndexes``;
* finished pods are counted with upstream's finalizer protocol, so a pod deleted after it finished
  is still counted exactly once: pods carry the ``batch.kubernetes.io/job-tracking`` finalizer; a
  finished one is first recorded in ``status.uncountedTerminatedPods``, then its finalizer removed,
  then it moves into ``succeeded``/``failed``;
* a failed pod is replaced after an exponential back-off (``--job-backoff-base-seconds`` x 2^(n-1),
  at most 6 min); more than ``backoffLimit`` failures fail the Job (``BackoffLimitExceeded``), as does
  running longer than ``activeDeadlineSeconds`` (``DeadlineExceeded``); either way its running pods
  are deleted. ``suspend`` deletes the active pods and holds;
* status: active, ready, succeeded, failed, startTime, completionTime and the conditions
  ``SuccessCriteriaMet``+``Complete`` or ``FailureTarget``+``Failed`` with upstream's reasons.

TTL-after-finished: a finished Job with ``ttlSecondsAfterFinished`` is deleted (its pods with it,
in the background) that many seconds after it finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.events import NORMAL, WARNING
from apiclient.informer import INDEX_CONTROLLER_UID
from apiclient.rest import PODS, resource

from . import podutil as pu
from .context import BaseController, ControllerContext, PodOwner

log = logging.getLogger("controllers.job")

Obj = dict[str, Any]
JOBS = resource("jobs", "batch")
KIND = "Job"
API_VERSION = "batch/v1"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
MAX_BACKOFF = 360.0
ORPHAN_PREFIX = "pod:"  # queue keys of pods whose Job may be gone


# ---------------------------------------------------------------------- pure helpers

def is_finished(job: Mapping[str, Any]) -> str | None:
    """"Complete" or "Failed" once the Job has that condition True."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def finish_time(job: Mapping[str, Any]) -> str:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c.get("lastTransitionTime") or "")
    return ""


def pod_index(pod: Mapping[str, Any]) -> int | None:
    raw = m.annotations(pod).get(INDEX_ANNOTATION) or m.labels(pod).get(INDEX_LABEL)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def format_indexes(indexes: set[int]) -> str:
    """``1,3-5,7``: sorted, runs collapsed (``status.completedIndexes``)."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def parse_indexes(text: str) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            continue
    return out


def pod_failed(pod: Mapping[str, Any]) -> bool:
    """Failed, or deleted before it succeeded (counted as a failure, as upstream does)."""
    return pu.phase(pod) == "Failed" or (pu.is_terminating(pod) and pu.phase(pod) != "Succeeded")


def pod_finished_at(pod: Mapping[str, Any]) -> str:
    stamps = [str(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt") or "")
              for cs in (pod.get("status") or {}).get("containerStatuses") or []]
    stamps = [s for s in stamps if s]
    return max(stamps) if stamps else m.deletion_timestamp(pod) or m.creation_timestamp(pod)


class JobController(PodOwner):
    name: ClassVar[str] = "job"
    kind: ClassVar[str] = KIND

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.jobs = ctx.informer(JOBS)
        self.pods = ctx.informer(PODS)
        self.children = self.watch_pods(self.jobs, self.pods, pod_add=self._pod_added, pod_update=self._pod_updated)

    def _pod_added(self, pod: Obj) -> None:
        self._check_orphan(pod)
        self.children.add(pod)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        self._check_orphan(cur)
        self.children.update(old, cur)

    def _check_orphan(self, pod: Obj) -> None:
        """A pod holding our finalizer whose Job is gone must let go (verified with a live GET in sync)."""
        if TRACKING_FINALIZER in m.finalizers(pod) and self.children.owner_of(pod) is None:
            self.queue.add(ORPHAN_PREFIX + m.object_key(pod))

    # ------------------------------------------------------------------ pods

    def _pods(self, job: Obj) -> list[Obj]:
        owned = self.pods.by_index(INDEX_CONTROLLER_UID, m.uid(job))
        return [p for p in owned if (pu.controlled_by_kind(p, KIND) or {}).get("uid") == m.uid(job)]

    def _pod_body(self, job: Obj, index: int | None) -> Obj:
        template = m.deep_copy((job.get("spec") or {}).get("template") or {})
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        uid, name = m.uid(job), m.name(job)
        labels.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                       "controller-uid": uid, "job-name": name})
        pod = pu.pod_from_template(template, owner=job, owner_ref=pu.owner_ref_of(job, KIND, API_VERSION))
        pod["metadata"].setdefault("finalizers", []).append(TRACKING_FINALIZER)
        if index is not None:
            pod["metadata"]["generateName"] = f"{name}-{index}-"
            pod["metadata"].setdefault("annotations", {})[INDEX_ANNOTATION] = str(index)
            pod["metadata"]["labels"][INDEX_LABEL] = str(index)
            pod["spec"].setdefault("hostname", f"{name}-{index}")
            # As upstream: every container learns its index from the annotation.
            index_env = {"name": "JOB_COMPLETION_INDEX",
                         "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}}}
            for key in ("initContainers", "containers"):
                for container in pod["spec"].get(key) or []:
                    env = container.setdefault("env", [])
                    if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                        env.append(dict(index_env))
        return pod

    async def _remove_finalizer(self, pod: Obj) -> None:
        kept = [f for f in m.finalizers(pod) if f != TRACKING_FINALIZER]
        patch = {"metadata": {"finalizers": kept or None, "resourceVersion": m.resource_version(pod)}}
        try:
            await self.client.patch(PODS, m.name(pod), patch, namespace=m.namespace(pod))
        except StatusError as err:
            if err.code != 404:
                raise

    # ------------------------------------------------------------------ sync

    async def _release_orphan(self, pod_key: str) -> None:
        pod = self.pods.get(pod_key)
        if pod is None or TRACKING_FINALIZER not in m.finalizers(pod):
            return
        ref = pu.controlled_by_kind(pod, KIND)
        if ref is not None:
            try:
                job = await self.client.get(JOBS, str(ref.get("name") or ""), namespace=m.namespace(pod))
                if m.uid(job) == ref.get("uid"):
                    return  # the Job exists; our cache is behind
            except StatusError as err:
                if err.code != 404:
                    raise
        await self._remove_finalizer(pod)

    async def sync(self, key: str) -> None:
        if key.startswith(ORPHAN_PREFIX):
            await self._release_orphan(key[len(ORPHAN_PREFIX):])
            return
        cached = self.jobs.get(key)
        if cached is None:
            self.expectations.forget(key)
            return
        job: Obj = m.deep_copy(cached)
        spec = job.get("spec") or {}
        status: Obj = dict(job.get("status") or {})
        pods = self._pods(job)
        uncounted = {k: list(v or []) for k, v in (status.get("uncountedTerminatedPods") or {}).items()}
        uncounted.setdefault("succeeded", [])
        uncounted.setdefault("failed", [])
        # 1. Pods already recorded as uncounted: drop their finalizers, then count them.
        recorded = set(uncounted["succeeded"]) | set(uncounted["failed"])
        if recorded:
            await asyncio.gather(*(self._remove_finalizer(p) for p in pods
                                   if m.uid(p) in recorded and TRACKING_FINALIZER in m.finalizers(p)))
            status["succeeded"] = int(status.get("succeeded") or 0) + len(uncounted["succeeded"])
            status["failed"] = int(status.get("failed") or 0) + len(uncounted["failed"])
            if spec.get("completionMode") == "Indexed":
                done = parse_indexes(status.get("completedIndexes") or "")
                done |= {i for p in pods if m.uid(p) in set(uncounted["succeeded"])
                         and (i := pod_index(p)) is not None}
                status["completedIndexes"] = format_indexes(done)
            uncounted = {"succeeded": [], "failed": []}
            status["uncountedTerminatedPods"] = {}
            await self._write_status(job, status)
            return  # the status write brings us back with fresh counts
        finished = is_finished(job)
        if finished:
            # Nothing more is counted: let every pod go, stop the ones still running.
            await asyncio.gather(*(self._remove_finalizer(p) for p in pods if TRACKING_FINALIZER in m.finalizers(p)))
            await self.pod_control.delete(key, job, [p for p in pods if pu.is_pod_active(p)])
            return
        # 2. Newly finished pods still holding our finalizer: record them first.
        fresh_succeeded = [m.uid(p) for p in pods if pu.phase(p) == "Succeeded" and TRACKING_FINALIZER in m.finalizers(p)]
        fresh_failed = [m.uid(p) for p in pods if pod_failed(p) and TRACKING_FINALIZER in m.finalizers(p)]
        if fresh_succeeded or fresh_failed:
            status["uncountedTerminatedPods"] = {"succeeded": fresh_succeeded, "failed": fresh_failed}
            await self._write_status(job, status)
            return
        await self._reconcile(key, job, status, pods)

    async def _reconcile(self, key: str, job: Obj, status: Obj, pods: list[Obj]) -> None:
        spec = job.get("spec") or {}
        now = pu.now()
        active = [p for p in pods if pu.is_pod_active(p)]
        succeeded = int(status.get("succeeded") or 0)
        failed = int(status.get("failed") or 0)
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
        backoff_limit = int(spec.get("backoffLimit", 6) if spec.get("backoffLimit") is not None else 6)
        indexed = spec.get("completionMode") == "Indexed" and completions is not None
        suspended = bool(spec.get("suspend"))
        if not status.get("startTime") and not suspended:
            status["startTime"] = m.now_rfc3339()
        # Failure: too many failed pods, or past the deadline.
        failure: tuple[str, str] | None = None
        if failed > backoff_limit:
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        deadline = spec.get("activeDeadlineSeconds")
        started = pu.parse_time(status.get("startTime"))
        if failure is None and isinstance(deadline, int) and started is not None and not suspended:
            left = (started + timedelta(seconds=deadline) - now).total_seconds()
            if left <= 0:
                failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
            else:
                self.queue.add_after(key, left + 0.05)
        if failure is not None:
            await self.pod_control.delete(key, job, active)
            await self._finish(job, status, "Failed", failure, active_left=0)
            return
        # Success.
        if completions is not None:
            done = len(parse_indexes(status.get("completedIndexes") or "")) if indexed else succeeded
            complete = done >= int(completions)
        else:
            complete = succeeded > 0 and not active
        if complete:
            await self.pod_control.delete(key, job, active)
            await self._finish(job, status, "Complete", ("CompletionsReached",
                                                           "Reached expected number of succeeded pods"), active_left=0)
            return
        # Run the right number of pods.
        if suspended:
            want = 0
        elif completions is None:
            want = 0 if succeeded > 0 else parallelism
        else:
            remaining = int(completions) - (len(parse_indexes(status.get("completedIndexes") or "")) if indexed
                                           else succeeded)
            want = max(0, min(parallelism, remaining))
        if self.expectations.satisfied(key):
            if len(active) > want:
                victims = sorted(active, key=pu.deletion_rank)[:len(active) - want]
                await self.pod_control.delete(key, job, victims)
                active = [p for p in active if p not in victims]
            elif len(active) < want:
                wait = self._backoff_left(failed, pods, now)
                if wait > 0:
                    self.queue.add_after(key, wait + 0.05)
                else:
                    await self._create(key, job, want - len(active), active, status, indexed, int(completions or 0))
        self._set_suspended_condition(status, suspended)
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if pu.is_pod_ready(p))
        status.setdefault("succeeded", succeeded)
        status.setdefault("failed", failed)
        if status != (job.get("status") or {}):
            await self._write_status(job, status)

    def _backoff_left(self, failed: int, pods: list[Obj], now: Any) -> float:
        if failed <= 0:
            return 0.0
        delay = min(self.options.job_backoff_base * (2 ** (failed - 1)), MAX_BACKOFF)
        last = max((pu.parse_time(pod_finished_at(p)) for p in pods if pod_failed(p)), default=None,
                   key=lambda t: t.timestamp() if t else 0.0)
        if last is None:
            return 0.0
        return delay - (now - last).total_seconds()

    async def _create(self, key: str, job: Obj, count: int, active: list[Obj], status: Obj, indexed: bool,
                      completions: int) -> None:
        indexes: list[int | None] = [None] * count
        if indexed:
            taken = {i for p in active if (i := pod_index(p)) is not None}
            taken |= parse_indexes(status.get("completedIndexes") or "")
            indexes = [i for i in range(completions) if i not in taken][:count]  # type: ignore[misc]
            count = len(indexes)
        if count <= 0:
            return
        await self.pod_control.create(key, job, [self._pod_body(job, i) for i in indexes])

    @staticmethod
    def _set_suspended_condition(status: Obj, suspended: bool) -> None:
        conditions = [dict(c) for c in status.get("conditions") or []]
        current = next((c for c in conditions if c.get("type") == "Suspended"), None)
        if suspended and (current is None or current.get("status") != "True"):
            pu.set_condition(conditions, {"type": "Suspended", "status": "True", "reason": "JobSuspended",
                                          "message": "Job suspended", "lastProbeTime": m.now_rfc3339()})
        elif not suspended and current is not None and current.get("status") == "True":
            pu.set_condition(conditions, {"type": "Suspended", "status": "False", "reason": "JobResumed",
                                          "message": "Job resumed", "lastProbeTime": m.now_rfc3339()})
        if conditions:
            status["conditions"] = conditions

    async def _finish(self, job: Obj, status: Obj, outcome: str, why: tuple[str, str], active_left: int) -> None:
        conditions = [dict(c) for c in status.get("conditions") or []]
        stamp = m.now_rfc3339()
        target = "SuccessCriteriaMet" if outcome == "Complete" else "FailureTarget"
        for type_ in (target, outcome):
            pu.set_condition(conditions, {"type": type_, "status": "True", "reason": why[0], "message": why[1],
                                          "lastProbeTime": stamp}, when=stamp)
        status["conditions"] = conditions
        status["active"] = active_left
        status["ready"] = 0
        if outcome == "Complete":
            status["completionTime"] = stamp
        await self._write_status(job, status)
        self.recorder.event(job, NORMAL if outcome == "Complete" else WARNING,
                            "Completed" if outcome == "Complete" else why[0],
                            "Job completed" if outcome == "Complete" else why[1])

    async def _write_status(self, job: Obj, status: Obj) -> None:
        body = dict(job)
        body["status"] = status
        await self.client.update(JOBS, body, namespace=m.namespace(job), subresource="status")


class TTLAfterFinishedController(BaseController):
    name: ClassVar[str] = "ttl-after-finished"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.jobs = ctx.informer(JOBS)
        self.on(self.jobs, add=self._job, update=lambda _o, n: self._job(n))

    def _job(self, job: Obj) -> None:
        if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and is_finished(job):
            self.queue.add(m.object_key(job))

    async def sync(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or pu.is_terminating(job) or not is_finished(job):
            return
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        finished = pu.parse_time(finish_time(job) or (job.get("status") or {}).get("completionTime"))
        if not isinstance(ttl, int) or finished is None:
            return
        left = (finished + timedelta(seconds=ttl) - pu.now()).total_seconds()
        if left > 0:
            self.queue.add_after(key, left + 0.05)
            return
        try:
            await self.client.delete(JOBS, m.name(job), namespace=m.namespace(job), propagation_policy="Background",
                                     preconditions={"uid": m.uid(job)})
        except StatusError as err:
            if err.code not in (404, 409):
                raise
        log.info("deleted finished job %s after its TTL", key, extra={"event": "job_ttl_deleted", "job": key})
