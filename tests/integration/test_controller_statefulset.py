"""StatefulSets: ordered start and stop with stable names, claims from volumeClaimTemplates, and a rolling
update from the highest ordinal down that waits for each pod."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.harness.apicluster import KUBECTL, APICluster
from tests.integration.test_controller_support import Rest, SimKubelet, controller_env, pod_template, wait_for

NS = "sts-test"
NODES = ["sts-n1", "sts-n2"]
STS = f"/apis/apps/v1/namespaces/{NS}/statefulsets"
PODS = f"/api/v1/namespaces/{NS}/pods"


@pytest.fixture(scope="module")
def env(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rest, SimKubelet]]:
    with controller_env(api, tmp_path_factory.mktemp("cm"), namespace=NS, nodes=NODES,
                        controllers="statefulset", ready_delay=0.3) as (rest, kubelet, _):
        yield rest, kubelet


def statefulset(rest: Rest, name: str, replicas: int, **spec: object) -> dict:
    return rest.call("POST", STS, {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
                                   "spec": {"replicas": replicas, "serviceName": name,
                                            "selector": {"matchLabels": {"sts": name}},
                                            "template": pod_template({"sts": name}), **spec}})


def pods(rest: Rest, name: str) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in rest.items(PODS)
            if (p["metadata"].get("labels") or {}).get("sts") == name and not p["metadata"].get("deletionTimestamp")}


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


class Recorder:
    """Samples the pods every 20 ms: which existed, and whether a pod existed before its predecessor was Ready."""

    def __init__(self, rest: Rest, name: str) -> None:
        self.rest, self.name = rest, name
        self.order_violations: list[str] = []
        self.created: list[str] = []
        self.deleted: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        known: dict[str, str] = {}  # uid -> name of the live pods at the last sample
        order = lambda n: int(n.rsplit("-", 1)[1])  # noqa: E731
        while True:
            stopping = self._stop.is_set()  # one more sample after the stop: the end state counts
            now = pods(self.rest, self.name)
            uids = {p["metadata"]["uid"]: n for n, p in now.items()}
            self.deleted.extend(sorted((known[u] for u in set(known) - set(uids)), key=order, reverse=True))
            fresh = sorted((uids[u] for u in set(uids) - set(known)), key=order)
            self.created.extend(fresh)
            for n in fresh:
                prev = f"{self.name}-{order(n) - 1}"
                if order(n) > 0 and not ready(now[n]) and (prev not in now or not ready(now[prev])):
                    self.order_violations.append(n)
            known = uids
            if stopping:
                return
            time.sleep(0.02)


def test_ordered_start_stable_names_and_claims(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                    "resources": {"requests": {"storage": "1Gi"}}}}
    with Recorder(rest, "db") as rec:
        statefulset(rest, "db", 3, volumeClaimTemplates=[claim])
        wait_for(lambda: len(pods(rest, "db")) == 3 and all(ready(p) for p in pods(rest, "db").values()), 60,
                 "3 ready pods")
    assert rec.created == ["db-0", "db-1", "db-2"], rec.created
    assert not rec.order_violations, rec.order_violations
    p1 = pods(rest, "db")["db-1"]
    assert p1["spec"]["hostname"] == "db-1" and p1["spec"]["subdomain"] == "db"
    assert p1["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-1"
    assert p1["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "1"
    vol = next(v for v in p1["spec"]["volumes"] if v["name"] == "data")
    assert vol["persistentVolumeClaim"]["claimName"] == "data-db-1"
    claims = {c["metadata"]["name"] for c in rest.items(f"/api/v1/namespaces/{NS}/persistentvolumeclaims")}
    assert {"data-db-0", "data-db-1", "data-db-2"} <= claims
    st = rest.get(f"{STS}/db")["status"]
    assert st["readyReplicas"] == 3 and st["currentRevision"] == st["updateRevision"]
    # A deleted pod comes back under the same name, with the same claim.
    uid = p1["metadata"]["uid"]
    rest.call("DELETE", f"{PODS}/db-1", {"gracePeriodSeconds": 0})
    wait_for(lambda: (p := pods(rest, "db").get("db-1")) is not None and p["metadata"]["uid"] != uid and ready(p),
             30, "db-1 recreated")
    # Scale down: the highest ordinal goes first; claims stay.
    with Recorder(rest, "db") as rec:
        rest.merge(f"{STS}/db", {"spec": {"replicas": 1}})
        wait_for(lambda: set(pods(rest, "db")) == {"db-0"}, 60, "scaled down to db-0")
    assert rec.deleted == ["db-2", "db-1"], rec.deleted
    claims = {c["metadata"]["name"] for c in rest.items(f"/api/v1/namespaces/{NS}/persistentvolumeclaims")}
    assert "data-db-2" in claims


def test_rolling_update_in_reverse_ordinal_order(env: tuple[Rest, SimKubelet], api: APICluster) -> None:
    rest, _ = env
    statefulset(rest, "web", 3)
    wait_for(lambda: len(pods(rest, "web")) == 3 and all(ready(p) for p in pods(rest, "web").values()), 60, "ready")
    with Recorder(rest, "web") as rec:
        rest.call("PATCH", f"{STS}/web", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "nginx:2"}]}}}}, content_type="application/strategic-merge-patch+json")

        def updated() -> bool:
            sts = rest.get(f"{STS}/web")
            st = sts["status"]
            return st.get("observedGeneration") == sts["metadata"]["generation"] and st.get("updatedReplicas") == 3 \
                and st.get("readyReplicas") == 3 and st.get("currentRevision") == st.get("updateRevision")

        wait_for(updated, 60, "the rolling update")
    assert rec.deleted == ["web-2", "web-1", "web-0"], rec.deleted
    assert all(p["spec"]["containers"][0]["image"] == "nginx:2" for p in pods(rest, "web").values())
    # A partition keeps the lower ordinals on the old template.
    rest.merge(f"{STS}/web", {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}})
    rest.call("PATCH", f"{STS}/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:3"}]}}}}, content_type="application/strategic-merge-patch+json")
    wait_for(lambda: pods(rest, "web").get("web-2", {}).get("spec", {}).get("containers", [{}])[0].get("image")
             == "nginx:3" and ready(pods(rest, "web")["web-2"]), 60, "web-2 updated")
    time.sleep(1)
    images = {n: p["spec"]["containers"][0]["image"] for n, p in pods(rest, "web").items()}
    assert images == {"web-0": "nginx:2", "web-1": "nginx:2", "web-2": "nginx:3"}
    if KUBECTL is not None:
        out = api.kubectl("-n", NS, "rollout", "status", "statefulset/web", "--timeout=30s").stdout
        assert "partitioned roll out complete" in out
        assert "3 " in api.kubectl("-n", NS, "rollout", "history", "statefulset/web").stdout


def test_parallel_pod_management(env: tuple[Rest, SimKubelet]) -> None:
    rest, kubelet = env
    kubelet.hold = lambda pod: (pod["metadata"].get("labels") or {}).get("sts") == "par"
    try:
        statefulset(rest, "par", 3, podManagementPolicy="Parallel")
        # Parallel: all three start although none gets ready.
        wait_for(lambda: len(pods(rest, "par")) == 3, 30, "3 pods at once")
    finally:
        kubelet.hold = lambda pod: False
        kubelet.resync()
