"""Informers against the real API server: list + watch into the cache, indexes, handlers, relist on
410 with the difference delivered, resync, reconnect after the server goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from apiclient.config import load_config
from apiclient.controller import Controller
from apiclient.informer import INDEX_CONTROLLER_UID, INDEX_NAMESPACE, INDEX_NODE_NAME, STANDARD_INDEXERS, Informer
from apiclient.rest import CONFIGMAPS, NAMESPACES, PODS, RESTClient
from tests.harness.apicluster import APICluster


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def pod(name: str, ns: str = "default", node: str = "", owner: str = "") -> dict:
    meta: dict = {"name": name, "namespace": ns}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner,
                                    "controller": True}]
    spec: dict = {"containers": [{"name": "c", "image": "x"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def attach(self, inf: Informer) -> None:
        inf.add_event_handler(on_add=lambda o: self.events.append(("add", o["metadata"]["name"])),
                              on_update=lambda a, b: self.events.append(("update", b["metadata"]["name"])),
                              on_delete=lambda o: self.events.append(("delete", o["metadata"]["name"])))

    def names(self, kind: str) -> list[str]:
        return [n for k, n in self.events if k == kind]


async def test_list_watch_handlers_and_indexes(api: APICluster) -> None:
    async with RESTClient(load_config(api.kubeconfig)) as c:
        await c.create(NAMESPACES, {"metadata": {"name": "inf-a"}})
        await c.create(PODS, pod("before", "inf-a", node="n1", owner="rs-1"))
        inf = Informer(c, PODS, indexers=STANDARD_INDEXERS)
        rec = Recorder()
        rec.attach(inf)
        inf.start()
        try:
            assert await inf.wait_for_sync(10) and inf.has_synced
            assert "before" in rec.names("add")
            await c.create(PODS, pod("after", "inf-a", node="n2", owner="rs-1"))
            await c.create(PODS, pod("pending", "inf-a"))
            await until(lambda: inf.get("inf-a/after") is not None and inf.get("inf-a/pending") is not None)
            assert sorted(p["metadata"]["name"] for p in inf.by_index(INDEX_NAMESPACE, "inf-a")) == \
                ["after", "before", "pending"]
            assert [p["metadata"]["name"] for p in inf.by_index(INDEX_NODE_NAME, "n2")] == ["after"]
            assert sorted(p["metadata"]["name"] for p in inf.by_index(INDEX_CONTROLLER_UID, "rs-1")) == ["after", "before"]
            await c.patch(PODS, "pending", {"metadata": {"labels": {"l": "1"}}}, namespace="inf-a")
            await until(lambda: "pending" in rec.names("update"))
            assert inf.get_by_name("inf-a", "pending")["metadata"]["labels"] == {"l": "1"}
            await c.delete(PODS, "pending", namespace="inf-a")
            await until(lambda: "pending" in rec.names("delete"))
            assert inf.get("inf-a/pending") is None
            assert [p["metadata"]["name"] for p in inf.by_index(INDEX_NODE_NAME, "n2")] == ["after"]
            # A handler added late sees what is cached.
            late: list[str] = []
            inf.add_event_handler(on_add=lambda o: late.append(o["metadata"]["name"]))
            assert sorted(late) == sorted(o["metadata"]["name"] for o in inf.list())
        finally:
            await inf.stop()


def restart_apiserver(api: APICluster) -> None:
    api.kill(0)
    api.start_replica(0)
    api.wait_ready(0)


async def test_restart_resumes_and_a_410_relists_with_the_difference(api: APICluster) -> None:
    async with RESTClient(load_config(api.kubeconfig)) as c:
        await c.create(NAMESPACES, {"metadata": {"name": "inf-b"}})
        for name in ("stay", "change", "go"):
            await c.create(CONFIGMAPS, {"metadata": {"name": name, "namespace": "inf-b"}, "data": {"v": "1"}})
        inf = Informer(c, CONFIGMAPS, namespace="inf-b", backoff_initial=0.05)
        rec = Recorder()
        rec.attach(inf)
        inf.start()
        assert await inf.wait_for_sync(10)
        await inf.stop()
        # Away for a moment: the resumed watch replays what was missed, without a new list.
        await c.create(CONFIGMAPS, {"metadata": {"name": "missed", "namespace": "inf-b"}})
        rec.events.clear()
        relists = inf.relists
        inf.start()
        try:
            await until(lambda: rec.names("add") == ["missed"])
            assert inf.relists == relists
        finally:
            await inf.stop()
        # Away for long: one object changes, one goes, one comes, and the history is gone (410): the
        # API server restarted, so its event window begins after the informer's resourceVersion.
        await c.patch(CONFIGMAPS, "change", {"data": {"v": "2"}}, namespace="inf-b")
        await c.delete(CONFIGMAPS, "go", namespace="inf-b")
        await c.create(CONFIGMAPS, {"metadata": {"name": "new", "namespace": "inf-b"}})
        await asyncio.to_thread(restart_apiserver, api)
        rec.events.clear()
        inf.start()
        try:
            await until(lambda: inf.relists > relists)
            await until(lambda: {"change", "go", "new"} <= {n for _, n in rec.events})
            assert rec.names("update") == ["change"] and rec.names("delete") == ["go"] and rec.names("add") == ["new"]
            assert sorted(o["metadata"]["name"] for o in inf.list()) == ["change", "missed", "new", "stay"]
            assert inf.get("inf-b/change")["data"] == {"v": "2"}
        finally:
            await inf.stop()


async def test_resync_redelivers_cached_objects(api: APICluster) -> None:
    async with RESTClient(load_config(api.kubeconfig)) as c:
        await c.create(NAMESPACES, {"metadata": {"name": "inf-c"}})
        await c.create(CONFIGMAPS, {"metadata": {"name": "r", "namespace": "inf-c"}})
        inf = Informer(c, CONFIGMAPS, namespace="inf-c", resync_period=0.1)
        rec = Recorder()
        rec.attach(inf)
        inf.start()
        try:
            await until(lambda: rec.names("update").count("r") >= 2)
        finally:
            await inf.stop()


async def test_controller_runs_sync_per_key_and_retries(api: APICluster) -> None:
    async with RESTClient(load_config(api.kubeconfig)) as c:
        await c.create(NAMESPACES, {"metadata": {"name": "inf-d"}})
        inf = Informer(c, CONFIGMAPS, namespace="inf-d")
        synced: list[str] = []
        failures = {"n": 0}

        async def sync(key: str) -> None:
            if key == "inf-d/flaky" and failures["n"] < 2:
                failures["n"] += 1
                raise RuntimeError("transient")
            synced.append(key)

        ctl = Controller("test", sync, workers=2)
        ctl.watch(inf)
        inf.start()
        runner = asyncio.create_task(ctl.run(sync_timeout=10))
        try:
            await c.create(CONFIGMAPS, {"metadata": {"name": "ok", "namespace": "inf-d"}})
            await c.create(CONFIGMAPS, {"metadata": {"name": "flaky", "namespace": "inf-d"}})
            await until(lambda: "inf-d/ok" in synced and "inf-d/flaky" in synced)
            assert failures["n"] == 2 and ctl.queue.num_requeues("inf-d/flaky") == 0  # forgotten on success
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await inf.stop()


@pytest.mark.slow
async def test_informer_reconnects_after_the_api_server_restarts(tmp_path: Path) -> None:
    cluster = APICluster(tmp_path / "api")
    cluster.start()
    try:
        async with RESTClient(load_config(cluster.kubeconfig), backoff_base=0.05, max_retries=2) as c:
            inf = Informer(c, CONFIGMAPS, namespace="default", backoff_initial=0.1, backoff_max=0.5)
            rec = Recorder()
            rec.attach(inf)
            inf.start()
            try:
                assert await inf.wait_for_sync(10)
                cluster.kill(0)
                await asyncio.sleep(0.5)
                cluster.start_replica(0)
                await asyncio.get_running_loop().run_in_executor(None, cluster.wait_ready, 0)
                await c.create(CONFIGMAPS, {"metadata": {"name": "after-restart", "namespace": "default"}})
                await until(lambda: "after-restart" in rec.names("add"), timeout=30)
                assert inf.watches >= 2
            finally:
                await inf.stop()
    finally:
        cluster.close()
