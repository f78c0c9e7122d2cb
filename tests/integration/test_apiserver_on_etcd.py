"""The API server on a real etcd 3.4 (3 members, ``--etcd-servers`` with their URLs) instead of the built-in store.

What must hold on etcd exactly as on the built-in store: CRUD with resourceVersion = etcd's mod_revision,
optimistic concurrency (409), consistent list pagination, watch from a resourceVersion, 410 Expired where
Kubernetes answers it, kubectl, and surviving the loss of the etcd member the server talks to.

About 410 after compaction, as kube-apiserver behaves: a *watch* is served from the API server's watch
cache, whose window starts at the revision it listed at startup and holds recent events; etcd compacting
its history does not shrink that window, so a watch from a resourceVersion still in the window keeps
working after compaction, and one older than the window (e.g. from before the API server started) is 410.
Reads that go to etcd at an old revision -- ``resourceVersionMatch=Exact`` lists and ``continue`` tokens --
are 410 once etcd has compacted that revision.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kvstore.client import EtcdClient
from tests.harness.apicluster import KUBECTL, APICluster
from tests.harness.etcdcluster import ETCD, EtcdCluster

pytestmark = pytest.mark.skipif(ETCD is None, reason="real etcd is not installed (Debian: apt-get install etcd-server; "
                                                      ".ci/run does it): cannot run the API server on etcd")

NS = "/api/v1/namespaces/default"


@dataclass
class EtcdAPICluster(APICluster):
    """APICluster whose store is real etcd: same certificates, token, kubeconfig and replica handling."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.etcd = EtcdCluster(self.root / "etcd", self.store_size)
        self.store = self.etcd  # type: ignore[assignment]  # same start/wait_ready/endpoints/close/logs


@pytest.fixture(scope="module")
def eapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdAPICluster]:
    cluster = EtcdAPICluster(tmp_path_factory.mktemp("api-etcd"), store_size=3)
    cluster.start_or_close()
    yield cluster
    cluster.close()


def etcd_call(cluster: EtcdAPICluster, fn: Any) -> Any:
    async def run() -> Any:
        async with EtcdClient(cluster.etcd.endpoints, timeout=20) as c:
            return await fn(c)

    return asyncio.run(run())


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def watch_lines(api: APICluster, path: str, n: int, timeout: float = 15, ready: threading.Event | None = None,
                i: int = 0) -> list[dict[str, Any]]:
    req = urllib.request.Request(api.url(i) + path, headers={"Authorization": f"Bearer {api.token}"})
    ctx = ssl.create_default_context(cafile=str(api.certs.ca_cert))
    out: list[dict[str, Any]] = []
    with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
        if ready is not None:
            ready.set()
        while len(out) < n:
            line = resp.readline()
            if not line:
                break
            out.append(json.loads(line))
    return out


def watch_in_background(api: APICluster, path: str, n: int, timeout: float = 20) -> tuple[threading.Thread, list]:
    result: list[list[dict[str, Any]]] = []
    ready = threading.Event()
    t = threading.Thread(target=lambda: result.append(watch_lines(api, path, n, timeout, ready)), daemon=True)
    t.start()
    assert ready.wait(10), "the watch request was not answered"
    time.sleep(0.2)  # response headers are sent once the watcher is registered; a little margin
    return t, result


def test_objects_live_in_etcd_and_resource_version_is_mod_revision(eapi: EtcdAPICluster) -> None:
    code, created, _ = eapi.request("POST", NS + "/configmaps", cm("on-etcd", a="1"))
    assert code == 201, created
    kv = etcd_call(eapi, lambda c: c.get(b"/registry/configmaps/default/on-etcd"))
    assert kv is not None and json.loads(kv.value)["data"] == {"a": "1"}
    assert created["metadata"]["resourceVersion"] == str(kv.mod_revision)
    # the bootstrap objects are in etcd too
    ns = etcd_call(eapi, lambda c: c.get(b"/registry/namespaces/kube-system"))
    assert ns is not None


def test_crud_and_conflicts(eapi: EtcdAPICluster) -> None:
    code, created, _ = eapi.request("POST", NS + "/configmaps", cm("crud", a="1"))
    assert code == 201
    code, dup, _ = eapi.request("POST", NS + "/configmaps", cm("crud"))
    assert code == 409 and dup["reason"] == "AlreadyExists"
    code, got, _ = eapi.request("GET", NS + "/configmaps/crud")
    assert code == 200 and got["data"] == {"a": "1"} and got["metadata"]["uid"] == created["metadata"]["uid"]
    stale = dict(created, data={"a": "2"})
    code, updated, _ = eapi.request("PUT", NS + "/configmaps/crud", stale)
    assert code == 200 and int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    code, conflict, _ = eapi.request("PUT", NS + "/configmaps/crud", stale)  # same old resourceVersion
    assert code == 409 and conflict["reason"] == "Conflict"
    code, patched, _ = eapi.request("PATCH", NS + "/configmaps/crud", {"data": {"b": "3"}},
                                    content_type="application/merge-patch+json")
    assert code == 200 and patched["data"] == {"a": "2", "b": "3"}
    code, _, _ = eapi.request("DELETE", NS + "/configmaps/crud")
    assert code == 200
    code, missing, _ = eapi.request("GET", NS + "/configmaps/crud")
    assert code == 404 and missing["reason"] == "NotFound"
    assert etcd_call(eapi, lambda c: c.get(b"/registry/configmaps/default/crud")) is None


def test_list_pagination_is_one_snapshot(eapi: EtcdAPICluster) -> None:
    names = [f"page-{i:02d}" for i in range(25)]
    for n in names:
        assert eapi.request("POST", NS + "/configmaps", cm(n, {"paged": "yes"}))[0] == 201
    seen: list[str] = []
    rvs = set()
    token = ""
    pages = 0
    while True:
        q = {"labelSelector": "paged=yes", "limit": "10"}
        if token:
            q["continue"] = token
        code, page, _ = eapi.request("GET", NS + "/configmaps?" + urllib.parse.urlencode(q))
        assert code == 200, page
        pages += 1
        seen += [o["metadata"]["name"] for o in page["items"]]
        rvs.add(page["metadata"]["resourceVersion"])
        if pages == 1:  # written after the first page: not part of this list
            eapi.request("POST", NS + "/configmaps", cm("page-late", {"paged": "yes"}))
            eapi.request("DELETE", NS + "/configmaps/page-24")
        token = page["metadata"].get("continue", "")
        if not token:
            break
        assert pages < 10
    assert pages == 3 and seen == names and len(rvs) == 1
    code, full, _ = eapi.request("GET", NS + "/configmaps?labelSelector=paged%3Dyes")
    assert [o["metadata"]["name"] for o in full["items"]] == names[:-1] + ["page-late"]
    # resourceVersion=0 is served from the watch cache: same objects
    code, cached, _ = eapi.request("GET", NS + "/configmaps?labelSelector=paged%3Dyes&resourceVersion=0")
    assert sorted(o["metadata"]["name"] for o in cached["items"]) == sorted(names[:-1] + ["page-late"])


def test_watch_from_resource_version(eapi: EtcdAPICluster) -> None:
    _, lst, _ = eapi.request("GET", NS + "/configmaps")
    rv = lst["metadata"]["resourceVersion"]
    t, result = watch_in_background(eapi, NS + f"/configmaps?watch=true&resourceVersion={rv}&labelSelector=w%3D1", 3)
    _, created, _ = eapi.request("POST", NS + "/configmaps", cm("watched", {"w": "1"}))
    created["data"] = {"k": "v"}
    _, updated, _ = eapi.request("PUT", NS + "/configmaps/watched", created)
    eapi.request("DELETE", NS + "/configmaps/watched")
    t.join(timeout=20)
    events = result[0]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(set(rvs)) and rvs[0] == int(created["metadata"]["resourceVersion"])
    # resuming from the ADDED event's resourceVersion replays exactly what came after it
    later = watch_lines(eapi, NS + f"/configmaps?watch=true&resourceVersion={rvs[0]}&labelSelector=w%3D1", 2)
    assert [(e["type"], int(e["object"]["metadata"]["resourceVersion"])) for e in later] == \
           [("MODIFIED", rvs[1]), ("DELETED", rvs[2])]


def test_compaction_and_410_expired(eapi: EtcdAPICluster) -> None:
    for i in range(3):
        eapi.request("POST", NS + "/configmaps", cm(f"old-{i}", {"gen": "old"}))
    code, first, _ = eapi.request("GET", NS + "/configmaps?labelSelector=gen%3Dold&limit=1")
    old_rv = int(first["metadata"]["resourceVersion"])
    token = first["metadata"]["continue"]
    _, after, _ = eapi.request("POST", NS + "/configmaps", cm("new-0", {"gen": "new"}))
    current = etcd_call(eapi, lambda c: c.range(b"/registry/", count_only=True)).revision
    etcd_call(eapi, lambda c: c.compact(current))

    # Reads at a compacted revision go to etcd: 410 Expired.
    code, status, _ = eapi.request("GET", NS + "/configmaps?" + urllib.parse.urlencode({"labelSelector": "gen=old",
                                                                                          "limit": "1", "continue": token}))
    assert code == 410 and status["reason"] == "Expired", status
    code, status, _ = eapi.request("GET", NS + f"/configmaps?resourceVersion={old_rv}&resourceVersionMatch=Exact")
    assert code == 410 and status["reason"] == "Expired", status
    # A plain list (newest state) does not care about compaction.
    code, lst, _ = eapi.request("GET", NS + "/configmaps?labelSelector=gen%3Dold")
    assert code == 200 and len(lst["items"]) == 3

    # Watches are served by the watch cache: old_rv is inside its window, so compaction changes nothing.
    events = watch_lines(eapi, NS + f"/configmaps?watch=true&resourceVersion={old_rv}&labelSelector=gen%3Dnew", 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "new-0"
    assert events[0]["object"]["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]

    # A restarted API server lists etcd at the current revision: its window starts there, so the same
    # old_rv is now older than the window and the watch is 410 Expired, sent as an ERROR event (clients
    # relist), while newer resourceVersions work.
    eapi.kill(0)
    eapi.start_replica(0)
    eapi.wait_ready(0)
    for rv in (old_rv, 2):
        events = watch_lines(eapi, NS + f"/configmaps?watch=true&resourceVersion={rv}", 1)
        assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410, events
        assert events[0]["object"]["reason"] == "Expired"
    _, lst, _ = eapi.request("GET", NS + "/configmaps")
    t, result = watch_in_background(eapi, NS + f"/configmaps?watch=true&resourceVersion={lst['metadata']['resourceVersion']}", 1)
    eapi.request("POST", NS + "/configmaps", cm("after-restart"))
    t.join(timeout=20)
    assert result and result[0][0]["type"] == "ADDED" and result[0][0]["object"]["metadata"]["name"] == "after-restart"


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_get_and_apply(eapi: EtcdAPICluster) -> None:
    manifest = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: kc-etcd, labels: {app: kc-etcd}}
spec:
  replicas: %d
  selector: {matchLabels: {app: kc-etcd}}
  template:
    metadata: {labels: {app: kc-etcd}}
    spec: {containers: [{name: web, image: nginx:1.27}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kc-etcd-config}
data: {mode: "%s"}
"""
    out = eapi.kubectl("apply", "-f", "-", input=manifest % (2, "a"))
    assert "deployment.apps/kc-etcd created" in out.stdout and "configmap/kc-etcd-config created" in out.stdout
    out = eapi.kubectl("apply", "-f", "-", input=manifest % (3, "a"))
    assert "deployment.apps/kc-etcd configured" in out.stdout and "configmap/kc-etcd-config unchanged" in out.stdout
    got = json.loads(eapi.kubectl("get", "deployment", "kc-etcd", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 3
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]
    table = eapi.kubectl("get", "configmaps").stdout
    assert "kc-etcd-config" in table and table.splitlines()[0].split()[:2] == ["NAME", "DATA"]
    # Fields set by the client-side apply belong to "kubectl-client-side-apply": changing them is a conflict...
    out = eapi.kubectl("apply", "--server-side", "--field-manager=etcd-test", "-f", "-", input=manifest % (4, "b"),
                       check=False)
    assert out.returncode != 0 and 'conflict with "kubectl-client-side-apply"' in out.stderr, out.stderr
    # ... until the new manager forces them over.
    out = eapi.kubectl("apply", "--server-side", "--field-manager=etcd-test", "--force-conflicts", "-f", "-",
                       input=manifest % (4, "b"), check=False)
    assert out.returncode == 0, out.stderr
    got = json.loads(eapi.kubectl("get", "configmap", "kc-etcd-config", "-o", "json").stdout)
    assert got["data"] == {"mode": "b"}
    assert eapi.kubectl("get", "namespaces", "-o", "name").stdout.split() == [
        "namespace/default", "namespace/kube-node-lease", "namespace/kube-public", "namespace/kube-system"]


def test_survives_losing_the_etcd_member_it_talks_to(eapi: EtcdAPICluster) -> None:
    """Kill -9 the etcd leader (the server's writes go to it, and its client then prefers it for reads and
    watch-cache watches too): CRUD keeps working through the others and an open API watch misses nothing."""
    _, lst, _ = eapi.request("GET", NS + "/configmaps")
    t, result = watch_in_background(eapi, NS + f"/configmaps?watch=true&resourceVersion={lst['metadata']['resourceVersion']}"
                                              "&labelSelector=lost%3D1", 10, timeout=60)
    for i in range(5):
        assert eapi.request("POST", NS + "/configmaps", cm(f"lost-{i}", {"lost": "1"}))[0] == 201
    leader = eapi.etcd.leader()
    eapi.etcd.kill(leader)
    deadline = time.monotonic() + 40
    i = 5
    while i < 10 and time.monotonic() < deadline:
        code, body, _ = eapi.request("POST", NS + "/configmaps", cm(f"lost-{i}", {"lost": "1"}))
        if code == 201:
            i += 1
        else:
            # a write in flight while etcd elects a new leader may end with an unknown outcome (504
            # Timeout) and then, retried here, find its own earlier attempt (409); nothing else
            assert code in (409, 504), (code, body)
            if code == 409:
                i += 1
            time.sleep(0.2)
    assert i == 10, "writes did not resume after losing an etcd member"
    t.join(timeout=30)
    names = [e["object"]["metadata"]["name"] for e in result[0]]
    assert names == [f"lost-{i}" for i in range(10)], names
    code, got, _ = eapi.request("GET", NS + "/configmaps/lost-9")
    assert code == 200
    eapi.etcd.start(leader)
