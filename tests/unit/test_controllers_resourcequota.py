"""The ResourceQuota controller's sync, fed informer caches by hand, with a client that records writes;
and the shared quota helpers it and the admission plugin use."""

from __future__ import annotations

from typing import Any

import pytest

from apiclient.config import ClientConfig
from apiclient.events import EventRecorder
from apiclient.rest import RESTClient
from apimachinery import quota as q
from apimachinery import errors
from apimachinery.errors import StatusError
from apimachinery.registry import Registry
from controllers.context import ControllerContext, InformerFactory, Options
from controllers.resourcequota import ResourceQuotaController


class RecordingClient(RESTClient):
    def __init__(self) -> None:
        super().__init__(ClientConfig(servers=("https://127.0.0.1:1",)))
        self.updates: list[dict[str, Any]] = []
        self.conflict = False

    async def update(self, res: Any, body: Any, **kw: Any) -> dict[str, Any]:  # type: ignore[override]
        assert kw.get("subresource") == "status"
        if self.conflict:
            raise errors.conflict(resource="resourcequotas", name=body["metadata"]["name"])
        self.updates.append(body)
        return body


@pytest.fixture
async def ctl() -> ResourceQuotaController:
    client = RecordingClient()
    ctx = ControllerContext(client=client, factory=InformerFactory(client), options=Options(),
                            recorder=EventRecorder(client, component="test"))
    c = ResourceQuotaController(ctx)
    yield c
    await c.close()
    await client.close()


def put(c: ResourceQuotaController, plural: str, obj: dict) -> None:
    meta = obj["metadata"]
    meta.setdefault("namespace", "ns")
    meta.setdefault("uid", meta["name"])
    meta.setdefault("resourceVersion", "1")
    c.informers[plural].store.put(f"{meta['namespace']}/{meta['name']}", obj)


def pod(name: str, cpu: str = "", phase: str = "Pending") -> dict:
    c: dict = {"name": "app", "image": "x"}
    if cpu:
        c["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    return {"metadata": {"name": name}, "spec": {"containers": [c]}, "status": {"phase": phase}}


def quota(hard: dict, used: dict | None = None, rv: str = "10", **spec: Any) -> dict:
    out: dict = {"metadata": {"name": "q", "resourceVersion": rv}, "spec": {"hard": hard, **spec}}
    if used is not None:
        out["status"] = {"hard": dict(hard), "used": used}
    return out


def writes(c: ResourceQuotaController) -> list[dict]:
    return c.client.updates  # type: ignore[attr-defined]


async def test_usage_is_counted_from_the_caches_and_written_with_the_read_resource_version(ctl) -> None:
    put(ctl, "pods", pod("a", "250m"))
    put(ctl, "pods", pod("b", "250m"))
    put(ctl, "pods", pod("done", "1", phase="Succeeded"))
    put(ctl, "configmaps", {"metadata": {"name": "c"}})
    put(ctl, "configmaps", {"metadata": {"name": "elsewhere", "namespace": "other"}})
    put(ctl, "resourcequotas", quota({"pods": "10", "count/pods": "10", "requests.cpu": "2", "configmaps": "5",
                                      "resourcequotas": "1", "unheard-of": "3"}, used={"pods": "2"}))
    await ctl.sync("ns/q")
    [body] = writes(ctl)
    assert body["metadata"]["resourceVersion"] == "10"
    assert body["status"]["used"] == {"pods": "2", "count/pods": "3", "requests.cpu": "500m", "configmaps": "1",
                                      "resourcequotas": "1", "unheard-of": "0"}
    assert body["status"]["hard"]["pods"] == "10"


async def test_nothing_is_written_when_usage_is_the_same(ctl) -> None:
    put(ctl, "pods", pod("a", "1"))
    put(ctl, "resourcequotas", quota({"pods": "3", "requests.cpu": "2"}, used={"pods": "1", "requests.cpu": "1000m"}))
    await ctl.sync("ns/q")
    assert writes(ctl) == []


async def test_a_lower_recount_waits_for_the_quota_to_stay_unchanged(ctl) -> None:
    ctl.release_delay = 3600.0
    put(ctl, "pods", pod("a"))
    put(ctl, "resourcequotas", quota({"pods": "3"}, used={"pods": "2"}))  # maybe a reservation in flight
    await ctl.sync("ns/q")
    assert writes(ctl) == []
    # The ledger moved (another charge): the wait starts again from this resourceVersion.
    put(ctl, "resourcequotas", quota({"pods": "3"}, used={"pods": "3"}, rv="11"))
    await ctl.sync("ns/q")
    assert writes(ctl) == []
    ctl.release_delay = 0.0  # as if the quota had kept resourceVersion 11 for the whole delay
    await ctl.sync("ns/q")
    [body] = writes(ctl)
    assert body["status"]["used"] == {"pods": "1"} and body["metadata"]["resourceVersion"] == "11"


async def test_a_higher_recount_is_written_at_once_and_lower_entries_are_kept_meanwhile(ctl) -> None:
    ctl.release_delay = 3600.0
    put(ctl, "pods", pod("a", "1"))
    put(ctl, "pods", pod("b", "1"))
    put(ctl, "resourcequotas", quota({"pods": "5", "requests.cpu": "5"}, used={"pods": "0", "requests.cpu": "4"}))
    await ctl.sync("ns/q")
    [body] = writes(ctl)
    assert body["status"]["used"] == {"pods": "2", "requests.cpu": "4"}


async def test_scoped_quotas_count_only_the_pods_they_select(ctl) -> None:
    put(ctl, "pods", pod("besteffort"))
    put(ctl, "pods", pod("burstable", "100m"))
    put(ctl, "configmaps", {"metadata": {"name": "c"}})
    put(ctl, "resourcequotas", quota({"pods": "5", "configmaps": "5"}, scopes=["BestEffort"]))
    await ctl.sync("ns/q")
    [body] = writes(ctl)
    assert body["status"]["used"] == {"pods": "1", "configmaps": "0"}


async def test_a_conflict_is_raised_for_a_requeue_and_a_missing_quota_is_ignored(ctl) -> None:
    put(ctl, "pods", pod("a"))
    put(ctl, "resourcequotas", quota({"pods": "5"}, used={"pods": "0"}))
    ctl.client.conflict = True  # type: ignore[attr-defined]
    with pytest.raises(StatusError):
        await ctl.sync("ns/q")
    await ctl.sync("ns/absent")


async def test_tracked_object_events_enqueue_the_quotas_of_their_namespace(ctl) -> None:
    put(ctl, "resourcequotas", quota({"pods": "5"}))
    running = pod("a")
    running["metadata"].update(namespace="ns", uid="a", resourceVersion="1")
    ctl._object_added(running)
    assert len(ctl.queue) == 1
    item = await ctl.queue.get()
    ctl.queue.done(item)
    ctl._object_updated(ctl.types["pods"], running, running)  # a resync: nothing
    assert len(ctl.queue) == 0
    finished = {**running, "metadata": {**running["metadata"], "resourceVersion": "2"},
                "status": {"phase": "Succeeded"}}
    ctl._object_updated(ctl.types["pods"], running, finished)
    assert len(ctl.queue) == 1


def test_shared_helpers() -> None:
    reg = Registry()
    kinds = {rt.group_resource for rt in q.types_counting(reg.all(), ["pods", "count/deployments.apps",
                                                                         "requests.storage"])}
    assert kinds == {"pods", "deployments.apps", "persistentvolumeclaims"}
    assert q.same_usage({"cpu": "1000m", "pods": "2"}, {"cpu": "1", "pods": "2"})
    assert not q.same_usage({"cpu": "1"}, {"cpu": "1", "pods": "0"})
    pods = reg.get("", "v1", "pods")
    total = q.add_usage({}, {"spec": {}}, pods, [pod("a", "1"), pod("b", "1", phase="Failed")],
                        ["pods", "count/pods", "requests.cpu"])
    assert {k: v.to_string() for k, v in total.items()} == {"pods": "1", "count/pods": "2", "requests.cpu": "1"}
