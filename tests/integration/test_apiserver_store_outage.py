"""An API server started while its store has no quorum (a whole cluster restarting) waits for it.

The bootstrap writes (system namespaces, default RBAC) time out with an unknown outcome while the
store cannot commit; the API server keeps retrying instead of exiting, and becomes ready once the
store has a majority again.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.harness.apicluster import APICluster


def test_an_api_server_waits_for_a_store_without_quorum(tmp_path: Path) -> None:
    cluster = APICluster(tmp_path / "outage", store_size=3)
    try:
        cluster.store.start()
        cluster.store.wait_ready()
        for i in (1, 2):
            cluster.store.kill(i)
        cluster.start_replica(0)
        proc = cluster.procs[0]
        assert proc is not None
        deadline = time.monotonic() + 15  # several store request timeouts (5 s each)
        while time.monotonic() < deadline:
            assert proc.poll() is None, cluster.logs()
            time.sleep(0.5)
        for i in (1, 2):
            cluster.store.start(i)
        cluster.wait_ready(0, timeout=120)
        assert proc.poll() is None
        code, body, _ = cluster.request("GET", "/api/v1/namespaces/kube-system")
        assert code == 200, body
    finally:
        cluster.close()


def test_readiness_and_liveness_follow_the_store(tmp_path: Path) -> None:
    cluster = APICluster(tmp_path / "health", store_size=3)
    cluster.start_or_close()
    try:
        for i in (1, 2):
            cluster.store.kill(i)
        deadline = time.monotonic() + 30
        while True:  # the store check's last result is reused for a second
            code, body, _ = cluster.request("GET", "/readyz", token="")
            if code == 500 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        text = body.decode()
        assert code == 500 and "[-]etcd failed: reason withheld" in text and text.endswith("readyz check failed\n")
        assert "[+]ping ok" in text and "[+]informer-sync ok" in text
        assert cluster.request("GET", "/livez", token="")[0] == 500
        assert cluster.request("GET", "/readyz?exclude=etcd&exclude=etcd-readiness", token="")[:2] == (200, b"ok")
        for i in (1, 2):
            cluster.store.start(i)
        cluster.wait_ready(0, timeout=60)
        assert cluster.request("GET", "/readyz", token="")[:2] == (200, b"ok")
    finally:
        cluster.close()
