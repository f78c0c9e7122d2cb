"""The garbage collector's ownership graph, fed informer events by hand (no API calls are made)."""

from __future__ import annotations

import pytest

from apiclient.config import ClientConfig
from apiclient.events import EventRecorder
from apiclient.rest import RESTClient
from apiclient.workqueue import WorkQueue
from controllers.context import ControllerContext, InformerFactory
from controllers.garbagecollector import GarbageCollector


def obj(uid: str, kind: str = "ConfigMap", owners: list[str] = (), finalizers: list[str] = (),
        deleting: bool = False, block: bool = False) -> dict:
    meta: dict = {"name": uid, "namespace": "ns", "uid": uid,
                  "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": o, "uid": o,
                                       **({"blockOwnerDeletion": True} if block else {})} for o in owners]}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


@pytest.fixture
async def gc() -> GarbageCollector:
    client = RESTClient(ClientConfig(servers=("https://127.0.0.1:1",)))
    ctx = ControllerContext(client=client, factory=InformerFactory(client),
                            recorder=EventRecorder(client, component="test"))
    collector = GarbageCollector(ctx)
    yield collector
    await client.close()


async def drain(q: WorkQueue[str]) -> set[str]:
    out = set()
    while len(q):
        item = await q.get()
        q.done(item)
        out.add(item)
    return out


async def test_owner_deletion_queues_its_dependents(gc: GarbageCollector) -> None:
    gc._observed(obj("owner"))
    gc._observed(obj("dep", owners=["owner"]))
    assert await drain(gc.queue) == set()  # the owner is known and alive: nothing to check
    assert gc.nodes["owner"].dependents == {"dep"}
    gc._gone(obj("owner"))
    assert await drain(gc.queue) == {"dep"}
    assert gc.nodes["owner"].virtual and "owner" in gc.absent  # kept while it has dependents
    gc._gone(obj("dep", owners=["owner"]))
    assert "owner" not in gc.nodes and "dep" not in gc.nodes


async def test_unknown_owners_are_virtual_and_checked(gc: GarbageCollector) -> None:
    gc._observed(obj("dep", owners=["ghost"]))
    assert gc.nodes["ghost"].virtual and await drain(gc.queue) == {"dep"}
    gc._observed(obj("ghost"))  # observed after all: a real node, dependents kept
    assert not gc.nodes["ghost"].virtual and gc.nodes["ghost"].dependents == {"dep"}


async def test_foreground_and_orphan_transitions(gc: GarbageCollector) -> None:
    gc._observed(obj("owner"))
    gc._observed(obj("a", owners=["owner"], block=True))
    gc._observed(obj("b", owners=["owner"]))
    await drain(gc.queue)
    gc._observed(obj("owner", finalizers=["foregroundDeletion"], deleting=True))
    assert gc.nodes["owner"].deleting_dependents
    assert await drain(gc.queue) == {"a", "b", "owner"}
    # A dependent losing its reference to a foreground owner wakes the owner up (one blocker fewer).
    gc._observed(obj("a"))
    assert await drain(gc.queue) == {"owner"}
    gc._observed(obj("solo"))
    gc._observed(obj("solo", finalizers=["orphan"], deleting=True))
    assert "solo" in await drain(gc.orphaner.queue)


async def test_changed_owner_references_relink(gc: GarbageCollector) -> None:
    gc._observed(obj("x"))
    gc._observed(obj("y"))
    gc._observed(obj("dep", owners=["x"]))
    gc._observed(obj("dep", owners=["y"]))
    assert gc.nodes["x"].dependents == set() and gc.nodes["y"].dependents == {"dep"}
