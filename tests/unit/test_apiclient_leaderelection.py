"""Leader election on a real Lease: one leader at a time, takeover after expiry, release on cancel,
losing the lease cancels the leader's work at once; and the event recorder's aggregation."""

from __future__ import annotations

import asyncio
import re

import pytest

from apiclient.config import load_config
from apiclient.events import EventRecorder
from apiclient.leaderelection import LeaderElectionConfig, LeaderElector, default_identity
from apiclient.rest import CONFIGMAPS, EVENTS, LEASES, RESTClient
from apimachinery import meta as m
from tests.harness.apicluster import APICluster
from tests.unit.test_apiclient_informer import until

MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def short(name: str, identity: str, **kw: float) -> LeaderElectionConfig:
    return LeaderElectionConfig(name=name, identity=identity, lease_duration=kw.get("lease", 1.5),
                                renew_deadline=kw.get("renew", 1.0), retry_period=kw.get("retry", 0.2))


class Candidate:
    """An elector whose leader work just records that it runs, until cancelled."""

    def __init__(self, client: RESTClient, cfg: LeaderElectionConfig) -> None:
        self.leading = False
        self.started = 0
        self.cancelled = 0
        self.stopped = 0
        self.elector = LeaderElector(client, cfg, on_started_leading=self._lead, on_stopped_leading=self._stop)
        self.task: asyncio.Task[None] | None = None

    async def _lead(self) -> None:
        self.started += 1
        self.leading = True
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.leading = False

    def _stop(self) -> None:
        self.stopped += 1

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def cancel(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def test_config_checks_durations() -> None:
    with pytest.raises(ValueError):
        LeaderElectionConfig(name="x", identity="i", lease_duration=5, renew_deadline=10, retry_period=2)
    assert re.fullmatch(r"scheduler-2_\d+", default_identity("scheduler-2"))
    cfg = LeaderElectionConfig(name="x", identity="i")
    assert (cfg.lease_duration, cfg.renew_deadline, cfg.retry_period, cfg.namespace) == (15.0, 10.0, 2.0, "kube-system")


async def test_one_leader_release_and_takeover(api: APICluster) -> None:
    async with RESTClient(load_config(api.kubeconfig)) as c:
        a = Candidate(c, short("le-1", "a_1"))
        b = Candidate(c, short("le-1", "b_2"))
        a.start()
        await until(lambda: a.leading)
        b.start()
        await asyncio.sleep(1.0)  # b keeps trying, but the lease is renewed
        assert not b.leading and b.elector.leader == "a_1"
        lease = await c.get(LEASES, "le-1", namespace="kube-system")
        spec = lease["spec"]
        assert spec["holderIdentity"] == "a_1" and spec["leaseDurationSeconds"] == 2
        assert MICRO.match(spec["acquireTime"]) and MICRO.match(spec["renewTime"])
        assert spec["leaseTransitions"] == 0
        await a.cancel()  # stepping down releases the lease: b takes over without waiting for expiry
        assert a.cancelled == 1 and a.stopped == 1 and not a.elector.is_leader
        await until(lambda: b.leading, timeout=5)
        spec = (await c.get(LEASES, "le-1", namespace="kube-system"))["spec"]
        assert spec["holderIdentity"] == "b_2" and spec["leaseTransitions"] == 1
        await b.cancel()


async def test_standby_takes_over_an_expired_lease(api: APICluster) -> None:
    async with RESTClient(load_config(api.kubeconfig)) as c:
        now = m.now_rfc3339_micro()
        await c.create(LEASES, {"metadata": {"name": "le-2", "namespace": "kube-system"},
                                "spec": {"holderIdentity": "dead_9", "leaseDurationSeconds": 1, "acquireTime": now,
                                         "renewTime": now, "leaseTransitions": 4}})
        b = Candidate(c, short("le-2", "b_2"))
        b.start()
        await until(lambda: b.elector.leader == "dead_9")
        assert not b.leading  # not before it has watched the record stay unchanged for a lease duration
        await until(lambda: b.leading, timeout=10)
        spec = (await c.get(LEASES, "le-2", namespace="kube-system"))["spec"]
        assert spec["holderIdentity"] == "b_2" and spec["leaseTransitions"] == 5
        await b.cancel()


async def test_losing_the_lease_cancels_the_leader_at_once(api: APICluster) -> None:
    async with RESTClient(load_config(api.kubeconfig)) as c:
        a = Candidate(c, short("le-3", "a_1", lease=3, renew=2, retry=0.2))
        a.start()
        await until(lambda: a.leading)
        # Someone else takes the lease (as after a partition): a must notice and stop leading.
        lease = await c.get(LEASES, "le-3", namespace="kube-system")
        lease["spec"].update(holderIdentity="thief_7", leaseDurationSeconds=60, renewTime=m.now_rfc3339_micro())
        await c.update(LEASES, lease, namespace="kube-system")
        await until(lambda: not a.leading, timeout=5)
        assert a.cancelled == 1 and a.stopped == 1
        assert a.task is not None and a.task.done() and a.task.exception() is None  # run() returned
        spec = (await c.get(LEASES, "le-3", namespace="kube-system"))["spec"]
        assert spec["holderIdentity"] == "thief_7"


async def test_event_recorder_aggregates_counts(api: APICluster) -> None:
    async with RESTClient(load_config(api.kubeconfig)) as c:
        cm = await c.create(CONFIGMAPS, {"metadata": {"name": "ev-target", "namespace": "default"}})
        rec = EventRecorder(c, component="tester", host="h1")
        rec.start()
        try:
            rec.event(cm, "Warning", "Broken", "it broke")
            assert await rec.flush(10)
            for _ in range(3):  # a burst folds into one write
                rec.event(cm, "Warning", "Broken", "it broke")
            assert await rec.flush(10)
            rec.event(cm, "Warning", "Broken", "it broke")
            rec.event(cm, "Normal", "Fixed", "all good")
            assert await rec.flush(10)
        finally:
            await rec.stop()
        events = (await c.list(EVENTS, namespace="default",
                               field_selector="involvedObject.name=ev-target"))["items"]
        by_reason = {e["reason"]: e for e in events}
        assert sorted(by_reason) == ["Broken", "Fixed"] and len(events) == 2
        broken = by_reason["Broken"]
        assert broken["count"] == 5 and broken["type"] == "Warning" and broken["message"] == "it broke"
        assert broken["source"] == {"component": "tester", "host": "h1"}
        assert broken["involvedObject"]["uid"] == cm["metadata"]["uid"]
        assert broken["involvedObject"]["kind"] == "ConfigMap"
        assert broken["firstTimestamp"] <= broken["lastTimestamp"]
        assert by_reason["Fixed"]["count"] == 1


async def test_event_recorder_drops_normal_events_first_when_the_api_is_slow() -> None:
    rec = EventRecorder(None, component="tester", max_pending=4)  # type: ignore[arg-type]  # no writers started
    objs = [{"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "default", "uid": f"u{i}"}} for i in range(6)]
    for obj in objs[:3]:
        rec.event(obj, "Normal", "Scheduled", "ok")
    assert rec.dropped == 1  # half the buffer is the most Normal events may take
    for obj in objs[3:]:
        rec.event(obj, "Warning", "FailedScheduling", "no")
    assert rec.dropped == 2  # Warnings fill the rest
    rec.event(objs[0], "Normal", "Scheduled", "ok")  # the same event again is only counted
    assert rec.dropped == 2
