"""The API server's watch cache when it must list its resource again (its store watch resumed from a
revision the store had compacted): as upstream's cacher, open watches end and older resourceVersions
are 410 Gone, instead of a replay of differences whose resourceVersions go backwards in a stream."""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.apicluster import APICluster
from tests.harness.kvcluster import post_json
from tests.integration.test_apiserver_crd import CRD

NS = "default"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[APICluster]:
    c = APICluster(tmp_path / "api")
    c.start_or_close()
    yield c
    c.close()


def _watch(c: APICluster, rv: str) -> Iterator[dict]:
    req = urllib.request.Request(c.url() + f"/api/v1/namespaces/{NS}/configmaps?watch=1&resourceVersion={rv}"
                                 "&timeoutSeconds=60", headers={"Authorization": f"Bearer {c.token}"})
    with urllib.request.urlopen(req, context=c.ssl_context(), timeout=90) as resp:
        for line in resp:
            yield json.loads(line)


def _store_put(c: APICluster, key: str, value: str) -> int:
    code, body = post_json(c.store.members[0].url + "/v3/kv/put",
                           {"key": base64.b64encode(key.encode()).decode(),
                            "value": base64.b64encode(value.encode()).decode()}, 5)
    assert code == 200, body
    return int(body["header"]["revision"])


def _store_delete(c: APICluster, key: str) -> None:
    code, body = post_json(c.store.members[0].url + "/v3/kv/deleterange",
                           {"key": base64.b64encode(key.encode()).decode()}, 5)
    assert code == 200 and body.get("deleted") == "1", body


def test_a_relist_ends_watches_and_expires_older_resource_versions(cluster: APICluster) -> None:
    c = cluster
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert c.request("POST", crds, CRD)[0] == 201
    widgets = "/apis/example.com/v1/namespaces/default/widgets"
    deadline = time.monotonic() + 30
    while c.request("GET", widgets)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert c.request("GET", widgets)[0] == 200
    code, created, _ = c.request("POST", f"/api/v1/namespaces/{NS}/configmaps",
                                 {"metadata": {"name": "before"}, "data": {"a": "1"}})
    assert code == 201
    rv = created["metadata"]["resourceVersion"]
    stream = _watch(c, rv)
    pid = c.procs[0].pid  # type: ignore[union-attr]

    # Freeze the API server, restart the store and compact past where the cache's watch stands:
    # when the API server runs again its store watch resumes from a compacted revision.
    os.kill(pid, signal.SIGSTOP)
    try:
        c.store.kill(0)
        c.store.start(0)
        c.store.wait_ready()
        # The CRD goes while nobody watches (straight from the store): after its relist the API
        # server must stop serving its resource, not only learn of the CRDs still there.
        _store_delete(c, "/registry/customresourcedefinitions.apiextensions.k8s.io/widgets.example.com")
        for i in range(5):
            top = _store_put(c, f"/unrelated/{i}", "x")
        code, body = post_json(c.store.members[0].url + "/v3/kv/compaction", {"revision": str(top)}, 5)
        assert code == 200, body
    finally:
        os.kill(pid, signal.SIGCONT)

    # The open watch ends without an event (its client resumes from its resourceVersion) ...
    events = list(stream)
    assert events == [], events
    # ... where the window starts afresh: 410 Gone, so the client lists again.
    deadline = time.monotonic() + 30
    while True:
        first = next(_watch(c, rv))
        if first["type"] == "ERROR" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert first["type"] == "ERROR" and first["object"]["code"] == 410, first
    code, listed, _ = c.request("GET", f"/api/v1/namespaces/{NS}/configmaps")
    assert code == 200 and "before" in {o["metadata"]["name"] for o in listed["items"]}
    # A watch from the new list's resourceVersion sees what comes next, in order.
    later = _watch(c, listed["metadata"]["resourceVersion"])
    assert c.request("POST", f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "after"}})[0] == 201
    ev = next(later)
    assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "after"
    assert int(ev["object"]["metadata"]["resourceVersion"]) > int(listed["metadata"]["resourceVersion"])
    # The CRD deleted unseen is no longer served.
    deadline = time.monotonic() + 30
    while c.request("GET", widgets)[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert c.request("GET", widgets)[0] == 404
