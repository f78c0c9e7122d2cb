"""CronJob controller (batch/v1): create a Job from ``jobTemplate`` at every time the schedule names.

``sync(key)`` looks at the CronJob and the Jobs it owns:

* ``status.active`` lists its unfinished Jobs, ``lastSuccessfulTime`` the latest success;
* unless suspended, the most recent scheduled time since ``lastScheduleTime`` (or the creation) that
  has not run yet is started — if it is not older than ``startingDeadlineSeconds``; many missed times
  start one Job (event ``TooManyMissedTimes`` past 100), not a burst;
* ``concurrencyPolicy``: ``Allow`` runs Jobs side by side, ``Forbid`` skips a run while one is active,
  ``Replace`` deletes the active ones first;
* the Job is named ``<cronjob>-<scheduled time in minutes since the epoch>`` (seconds for sub-minute
  ``@every`` schedules) so a retried sync
  (another leader, a lost answer) finds it instead of creating a second one; it carries the
  annotation ``batch.kubernetes.io/cronjob-scheduled-timestamp``;
* finished Jobs beyond ``successfulJobsHistoryLimit`` (3) / ``failedJobsHistoryLimit`` (1) are deleted,
  oldest first;
* the key comes back at the next scheduled time. The schedule is read in ``spec.timeZone`` (UTC by default).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, tzinfo
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apimachinery import meta as m
from apimachinery.errors import StatusError
from apiclient.events import NORMAL, WARNING
from apiclient.informer import INDEX_CONTROLLER_UID
from apiclient.rest import resource

from . import podutil as pu
from .context import BaseController, ChildEvents, ControllerContext
from apimachinery.cron import CronError, Schedule
from .job import JOBS, is_finished

log = logging.getLogger("controllers.cronjob")

Obj = dict[str, Any]
CRONJOBS = resource("cronjobs", "batch")
KIND = "CronJob"
API_VERSION = "batch/v1"
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MISSED_LIMIT = 100


def job_name(cronjob: str, scheduled: datetime, schedule: Schedule | None = None) -> str:
    """Minutes since the epoch (upstream's name); seconds for ``@every`` schedules faster than a minute,
    whose runs would otherwise share a name."""
    if schedule is not None and schedule.every is not None and schedule.every < timedelta(minutes=1):
        return f"{cronjob}-{int(scheduled.timestamp())}"
    return f"{cronjob}-{int(scheduled.timestamp() // 60)}"


def zone(cj: Obj) -> tzinfo | None:
    name = (cj.get("spec") or {}).get("timeZone")
    if not name:
        return None
    return ZoneInfo(str(name))


class CronJobController(BaseController):
    name: ClassVar[str] = "cronjob"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.cronjobs = ctx.informer(CRONJOBS)
        self.jobs = ctx.informer(JOBS)
        self.children = ChildEvents(self.cronjobs, KIND, self._enqueue)
        self.on(self.cronjobs, add=self._enqueue, update=lambda _o, n: self._enqueue(n))
        self.on(self.jobs, add=self.children.add, update=self.children.update, delete=self.children.delete)

    def _enqueue(self, cj: Obj) -> None:
        self.queue.add(m.object_key(cj))

    def _owned(self, cj: Obj) -> list[Obj]:
        return [j for j in self.jobs.by_index(INDEX_CONTROLLER_UID, m.uid(cj))
                if (pu.controlled_by_kind(j, KIND) or {}).get("uid") == m.uid(cj)]

    async def sync(self, key: str) -> None:
        cached = self.cronjobs.get(key)
        if cached is None or pu.is_terminating(cached):
            return
        cj: Obj = m.deep_copy(cached)
        spec = cj.get("spec") or {}
        status: Obj = dict(cj.get("status") or {})
        jobs = self._owned(cj)
        active = [j for j in jobs if not is_finished(j) and not pu.is_terminating(j)]
        succeeded = [j for j in jobs if is_finished(j) == "Complete"]
        try:
            schedule = Schedule.parse(str(spec.get("schedule") or ""))
            tz = zone(cj)
        except (CronError, ZoneInfoNotFoundError, ValueError) as exc:
            self.recorder.event(cj, WARNING, "UnparseableSchedule", f"unparseable schedule: {exc}")
            await self._write_status(cj, status, active, succeeded)
            return
        now = pu.now()
        if not spec.get("suspend"):
            scheduled = await self._maybe_run(cj, schedule, tz, now, active)
            if scheduled is not None:
                status["lastScheduleTime"] = m.format_rfc3339(scheduled)
                active = [j for j in self._owned(cj) if not is_finished(j) and not pu.is_terminating(j)] or active
        await self._cleanup(cj, jobs)
        await self._write_status(cj, status, active, succeeded)
        try:
            after = schedule.next(now, tz)
        except CronError:
            return
        self.queue.add_after(key, max((after - pu.now()).total_seconds(), 0.0) + 0.1)

    async def _maybe_run(self, cj: Obj, schedule: Schedule, tz: tzinfo | None, now: datetime,
                         active: list[Obj]) -> datetime | None:
        spec = cj.get("spec") or {}
        last = pu.parse_time((cj.get("status") or {}).get("lastScheduleTime")) or \
            pu.parse_time(m.creation_timestamp(cj)) or now
        deadline = spec.get("startingDeadlineSeconds")
        earliest = last
        if isinstance(deadline, int) and now - timedelta(seconds=deadline) > earliest:
            earliest = now - timedelta(seconds=deadline)
        scheduled, missed = schedule.most_recent(earliest, now, tz, limit=MISSED_LIMIT)
        if scheduled is None:
            return None
        if missed > MISSED_LIMIT:
            self.recorder.event(cj, WARNING, "TooManyMissedTimes",
                                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or "
                                "check clock skew")
        name = job_name(m.name(cj), scheduled, schedule)
        if any(m.name(j) == name for j in self._owned(cj)):
            return scheduled  # already started (by us, earlier)
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            self.recorder.event(cj, NORMAL, "JobAlreadyActive", "Not starting job because prior execution is running "
                                                                "and concurrency policy is Forbid")
            return None
        if policy == "Replace":
            for job in active:
                await self._delete(job, cj, reason="SuccessfulDelete")
        template = (spec.get("jobTemplate") or {})
        meta = template.get("metadata") or {}
        body: Obj = {"apiVersion": API_VERSION, "kind": "Job",
                     "metadata": {"name": name, "namespace": m.namespace(cj),
                                  "labels": dict(meta.get("labels") or {}),
                                  "annotations": {**(meta.get("annotations") or {}),
                                                  SCHEDULED_ANNOTATION: m.format_rfc3339(scheduled)},
                                  "ownerReferences": [pu.owner_ref_of(cj, KIND, API_VERSION)]},
                     "spec": m.deep_copy(template.get("spec") or {})}
        try:
            await self.client.create(JOBS, body, namespace=m.namespace(cj))
        except StatusError as err:
            if err.code == 409:
                return scheduled  # created before (another term, or a lost answer)
            if err.code == 403 and "being terminated" in err.message:
                return None
            self.recorder.event(cj, WARNING, "FailedCreate", f"Error creating job: {err.message}")
            raise
        self.recorder.event(cj, NORMAL, "SuccessfulCreate", f"Created job {name}")
        log.info("cronjob %s started %s", m.object_key(cj), name, extra={"event": "cronjob_run", "job": name})
        return scheduled

    async def _delete(self, job: Obj, cj: Obj, *, reason: str) -> None:
        try:
            await self.client.delete(JOBS, m.name(job), namespace=m.namespace(job), propagation_policy="Background",
                                     preconditions={"uid": m.uid(job)})
        except StatusError as err:
            if err.code not in (404, 409):
                raise
            return
        self.recorder.event(cj, NORMAL, reason, f"Deleted job {m.name(job)}")

    async def _cleanup(self, cj: Obj, jobs: list[Obj]) -> None:
        spec = cj.get("spec") or {}
        for outcome, field in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(field)
            if not isinstance(limit, int):
                continue
            done = sorted((j for j in jobs if is_finished(j) == outcome and not pu.is_terminating(j)),
                          key=lambda j: ((j.get("status") or {}).get("startTime") or m.creation_timestamp(j),
                                         m.name(j)))
            for job in done[:max(0, len(done) - limit)]:
                await self._delete(job, cj, reason="SawCompletedJob" if outcome == "Complete" else "SuccessfulDelete")

    async def _write_status(self, cj: Obj, status: Obj, active: list[Obj], succeeded: list[Obj]) -> None:
        refs = [{"kind": "Job", "namespace": m.namespace(j), "name": m.name(j), "uid": m.uid(j),
                 "apiVersion": API_VERSION, "resourceVersion": m.resource_version(j)}
                for j in sorted(active, key=lambda j: m.name(j))]
        if refs:
            status["active"] = refs
        else:
            status.pop("active", None)
        times = [t for j in succeeded if (t := (j.get("status") or {}).get("completionTime"))]
        if times:
            status["lastSuccessfulTime"] = max([*times, status.get("lastSuccessfulTime") or ""])
        old = dict(cj.get("status") or {})
        # The resourceVersion of active refs changes with every Job status write; only membership matters.
        strip = lambda st: {**st, "active": [{k: v for k, v in r.items() if k != "resourceVersion"}  # noqa: E731
                                            for r in st.get("active") or []]}
        if strip(status) == strip(old):
            return
        body = dict(cj)
        body["status"] = status
        await self.client.update(CRONJOBS, body, namespace=m.namespace(cj), subresource="status")
