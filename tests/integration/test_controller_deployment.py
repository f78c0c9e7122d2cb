"""The Deployment controller (with the ReplicaSet controller) in a real controller-manager process against a
real store and API server, with simulated kubelets; rollouts are observed through a watch on the pods, and
``kubectl rollout`` drives them where kubectl is installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controllers import deploymentutil as du
from tests.harness.apicluster import KUBECTL, APICluster
from tests.integration.test_controller_support import (PodWatch, Rest, SimKubelet, controller_env,
                                                       pod_template, wait_for)

NS = "deploy-test"
NODES = ["dp-n1", "dp-n2", "dp-n3"]
D_PATH = f"/apis/apps/v1/namespaces/{NS}/deployments"
PODS_PATH = f"/api/v1/namespaces/{NS}/pods"
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


@pytest.fixture(scope="module")
def env(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rest, SimKubelet]]:
    with controller_env(api, tmp_path_factory.mktemp("cm"), namespace=NS, nodes=NODES,
                        controllers="replicaset,deployment", ready_delay=0.2) as (rest, kubelet, _):
        yield rest, kubelet


def deployment(name: str, replicas: int, *, surge: object = "25%", unavailable: object = "25%",
               strategy: str = "RollingUpdate", image: str = "nginx:1", ns: str = NS, **spec: object) -> dict:
    strat: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "strategy": strat,
                     "template": pod_template({"app": name}, image=image), **spec}}


def get(rest: Rest, name: str, ns: str = NS) -> dict:
    d = rest.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    assert d is not None
    return d


def rolled_out(rest: Rest, name: str, ns: str = NS) -> bool:
    """What ``kubectl rollout status`` waits for."""
    d = get(rest, name, ns)
    st = d.get("status") or {}
    want = d["spec"]["replicas"]
    return (st.get("observedGeneration", 0) >= d["metadata"]["generation"] and st.get("updatedReplicas") == want
            and st.get("replicas") == want and st.get("availableReplicas") == want)


def replica_sets(rest: Rest, name: str, ns: str = NS) -> list[dict]:
    return [rs for rs in rest.items(f"/apis/apps/v1/namespaces/{ns}/replicasets")
            if rs["metadata"]["labels"].get("app") == name]


def set_image(rest: Rest, name: str, image: str, ns: str = NS) -> None:
    rest.call("PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}", {"spec": {"template": {"spec": {"containers": [{"name": "app",
                                                                                            "image": image}]}}}},
              content_type="application/strategic-merge-patch+json")


def condition(rest: Rest, name: str, type_: str) -> dict | None:
    return du.get_condition(get(rest, name).get("status") or {}, type_)


def test_rolling_update_forward_and_back_never_exceeds_surge_or_unavailability(
        env: tuple[Rest, SimKubelet], api: APICluster) -> None:
    rest, _ = env
    watch = PodWatch(api, NS, {"app": "roll"}).start()
    try:
        d = rest.call("POST", D_PATH, deployment("roll", 6, surge=2, unavailable=1))
        wait_for(lambda: rolled_out(rest, "roll"), 60, "the first rollout")
        (first,) = replica_sets(rest, "roll")
        pod_hash = du.compute_hash(get(rest, "roll")["spec"]["template"])
        assert first["metadata"]["name"] == f"roll-{pod_hash}"
        assert first["spec"]["selector"]["matchLabels"] == {"app": "roll", du.POD_TEMPLATE_HASH: pod_hash}
        assert first["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
        ann = first["metadata"]["annotations"]
        assert ann[du.REVISION] == "1" and ann[du.DESIRED_REPLICAS] == "6" and ann[du.MAX_REPLICAS] == "8"
        assert get(rest, "roll")["metadata"]["annotations"][du.REVISION] == "1"

        watch.arm()
        rest.merge(f"{D_PATH}/roll", {"metadata": {"annotations": {du.CHANGE_CAUSE: "to v2"}}})
        set_image(rest, "roll", "nginx:2")
        wait_for(lambda: rolled_out(rest, "roll"), 60, "the rollout to v2")
        assert watch.min_ready is not None and watch.min_ready >= 5, watch.min_ready  # replicas - maxUnavailable
        assert watch.max_pods <= 8, watch.max_pods  # replicas + maxSurge
        rss = {rs["metadata"]["name"]: rs for rs in replica_sets(rest, "roll")}
        assert len(rss) == 2 and rss[first["metadata"]["name"]]["spec"]["replicas"] == 0
        new = next(rs for n, rs in rss.items() if n != first["metadata"]["name"])
        assert new["metadata"]["annotations"][du.REVISION] == "2"
        assert new["metadata"]["annotations"][du.CHANGE_CAUSE] == "to v2"
        pods = [p for p in rest.items(PODS_PATH) if p["metadata"]["labels"].get("app") == "roll"
                and not p["metadata"].get("deletionTimestamp")]
        assert len(pods) == 6 and all(p["spec"]["containers"][0]["image"] == "nginx:2" for p in pods)
        progressing = condition(rest, "roll", "Progressing")
        assert progressing["status"] == "True" and progressing["reason"] == du.NEW_RS_AVAILABLE
        assert condition(rest, "roll", "Available")["reason"] == du.MIN_AVAILABLE

        # Back to v1: the first ReplicaSet is reused and gets revision 3 (max + 1).
        watch.arm()
        set_image(rest, "roll", "nginx:1")
        wait_for(lambda: rolled_out(rest, "roll"), 60, "the rollback to v1")
        assert watch.min_ready >= 5 and watch.max_pods <= 8, (watch.min_ready, watch.max_pods)
        rss = {rs["metadata"]["name"]: rs for rs in replica_sets(rest, "roll")}
        assert len(rss) == 2, "rolling back must reuse the old ReplicaSet"
        back = rss[first["metadata"]["name"]]
        assert back["spec"]["replicas"] == 6 and back["metadata"]["annotations"][du.REVISION] == "3"
        assert back["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
        assert get(rest, "roll")["metadata"]["annotations"][du.REVISION] == "3"
    finally:
        watch.stop()


def test_recreate_never_runs_old_and_new_pods_together(env: tuple[Rest, SimKubelet], api: APICluster) -> None:
    rest, _ = env
    watch = PodWatch(api, NS, {"app": "recreate"}).start()
    try:
        rest.call("POST", D_PATH, deployment("recreate", 3, strategy="Recreate"))
        wait_for(lambda: rolled_out(rest, "recreate"), 60, "the first rollout")
        watch.arm()
        set_image(rest, "recreate", "nginx:2")
        wait_for(lambda: rolled_out(rest, "recreate") and len(replica_sets(rest, "recreate")) == 2, 60, "recreated")
        assert watch.max_templates == 1, "old and new pods existed at the same time"
    finally:
        watch.stop()


def test_revision_history_limit_deletes_the_oldest_replica_sets(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    rest.call("POST", D_PATH, deployment("history", 2, revisionHistoryLimit=1))
    wait_for(lambda: rolled_out(rest, "history"), 60, "rollout 1")
    for version in (2, 3, 4):
        set_image(rest, "history", f"nginx:{version}")
        wait_for(lambda: rolled_out(rest, "history"), 60, f"rollout {version}")
    wait_for(lambda: len(replica_sets(rest, "history")) == 2, 30, "only one old ReplicaSet kept")
    revisions = sorted(int(rs["metadata"]["annotations"][du.REVISION]) for rs in replica_sets(rest, "history"))
    assert revisions == [3, 4]


def test_pause_holds_the_template_and_resume_rolls_it_out(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    rest.call("POST", D_PATH, deployment("paused", 2))
    wait_for(lambda: rolled_out(rest, "paused"), 60, "rollout")
    rest.merge(f"{D_PATH}/paused", {"spec": {"paused": True}})
    wait_for(lambda: (condition(rest, "paused", "Progressing") or {}).get("reason") == du.PAUSED, 30, "paused")
    set_image(rest, "paused", "nginx:2")
    rest.merge(f"{D_PATH}/paused", {"spec": {"replicas": 3}})  # scaling still works while paused
    wait_for(lambda: get(rest, "paused")["status"].get("availableReplicas") == 3, 30, "scaled while paused")
    assert len(replica_sets(rest, "paused")) == 1, "a paused deployment must not roll out"
    d = get(rest, "paused")
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    rest.merge(f"{D_PATH}/paused", {"spec": {"paused": False}})
    wait_for(lambda: rolled_out(rest, "paused") and len(replica_sets(rest, "paused")) == 2, 60, "resumed rollout")


def test_progress_deadline_exceeded(env: tuple[Rest, SimKubelet]) -> None:
    rest, kubelet = env
    rest.call("POST", D_PATH, deployment("stuck", 2, progressDeadlineSeconds=2))
    wait_for(lambda: rolled_out(rest, "stuck"), 60, "rollout")
    kubelet.hold = lambda pod: pod["spec"]["containers"][0]["image"] == "broken:1"
    try:
        set_image(rest, "stuck", "broken:1")

        def timed_out() -> bool:
            cond = condition(rest, "stuck", "Progressing") or {}
            return cond.get("status") == "False" and cond.get("reason") == du.TIMED_OUT

        wait_for(timed_out, 30, "ProgressDeadlineExceeded")
        assert "has timed out progressing" in condition(rest, "stuck", "Progressing")["message"]
        # The old pods keep serving: maxUnavailable still holds.
        assert get(rest, "stuck")["status"]["availableReplicas"] >= 1
    finally:
        kubelet.hold = lambda pod: False
        kubelet.resync()
    wait_for(lambda: rolled_out(rest, "stuck"), 60, "the rollout completes once pods get ready")
    wait_for(lambda: (condition(rest, "stuck", "Progressing") or {}).get("reason") == du.NEW_RS_AVAILABLE, 30,
             "NewReplicaSetAvailable")


def test_scaling_during_a_rollout_is_proportional(env: tuple[Rest, SimKubelet]) -> None:
    rest, kubelet = env
    rest.call("POST", D_PATH, deployment("prop", 10, surge=3, unavailable=2))
    wait_for(lambda: rolled_out(rest, "prop"), 60, "rollout")
    kubelet.hold = lambda pod: pod["spec"]["containers"][0]["image"] == "nginx:2"
    try:
        set_image(rest, "prop", "nginx:2")
        # The new pods never get ready: the rollout stops at old 8 (10 - maxUnavailable), new 5 (13 - 8).
        wait_for(lambda: sorted(rs["spec"]["replicas"] for rs in replica_sets(rest, "prop")) == [5, 8], 30, "surged")
        rest.merge(f"{D_PATH}/prop", {"spec": {"replicas": 20}})
        wait_for(lambda: sum(rs["spec"]["replicas"] for rs in replica_sets(rest, "prop")) == 23, 30,
                 "scaled up within replicas + maxSurge")
        # 10 more pods shared in proportion to the sizes: 8 * 23/13 -> 14, 5 * 23/13 -> 9.
        assert sorted(rs["spec"]["replicas"] for rs in replica_sets(rest, "prop")) == [9, 14]
    finally:
        kubelet.hold = lambda pod: False
        kubelet.resync()
    wait_for(lambda: rolled_out(rest, "prop"), 60, "rollout completes")


@needs_kubectl
def test_kubectl_rollout_commands(env: tuple[Rest, SimKubelet], api: APICluster) -> None:
    rest, _ = env
    rest.call("POST", D_PATH, deployment("kctl", 3))
    k = lambda *a: api.kubectl("-n", NS, *a)  # noqa: E731
    assert 'deployment "kctl" successfully rolled out' in k("rollout", "status", "deploy/kctl", "--timeout=60s").stdout
    k("set", "image", "deploy/kctl", "app=nginx:2")
    k("annotate", "deploy/kctl", f"{du.CHANGE_CAUSE}=upgrade to 2", "--overwrite")
    assert "successfully rolled out" in k("rollout", "status", "deploy/kctl", "--timeout=60s").stdout
    history = k("rollout", "history", "deploy/kctl").stdout
    assert "upgrade to 2" in history and "1 " in history and "2 " in history
    assert "nginx:1" in k("rollout", "history", "deploy/kctl", "--revision=1").stdout
    k("rollout", "undo", "deploy/kctl")
    assert "successfully rolled out" in k("rollout", "status", "deploy/kctl", "--timeout=60s").stdout
    assert get(rest, "kctl")["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    lines = [ln.split()[0] for ln in k("rollout", "history", "deploy/kctl").stdout.splitlines()[2:] if ln.strip()]
    assert lines == ["2", "3"], lines  # revision 1 became 3
    assert len(replica_sets(rest, "kctl")) == 2
    k("rollout", "undo", "deploy/kctl", "--to-revision=2")
    assert "successfully rolled out" in k("rollout", "status", "deploy/kctl", "--timeout=60s").stdout
    assert get(rest, "kctl")["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    k("rollout", "restart", "deploy/kctl")
    assert "successfully rolled out" in k("rollout", "status", "deploy/kctl", "--timeout=60s").stdout
    assert len(replica_sets(rest, "kctl")) == 3
    k("rollout", "pause", "deploy/kctl")
    k("set", "image", "deploy/kctl", "app=nginx:3")
    wait_for(lambda: (condition(rest, "kctl", "Progressing") or {}).get("reason") == du.PAUSED, 30, "paused")
    assert len(replica_sets(rest, "kctl")) == 3
    k("rollout", "resume", "deploy/kctl")
    assert "successfully rolled out" in k("rollout", "status", "deploy/kctl", "--timeout=60s").stdout
    assert len(replica_sets(rest, "kctl")) == 4
    described = k("describe", "deploy/kctl").stdout
    assert "NewReplicaSetAvailable" in described and "ScalingReplicaSet" in described
    assert "deployment-controller" in described  # each controller names itself as the events' source


@needs_kubectl
def test_kubectl_rollout_status_reports_a_missed_deadline(env: tuple[Rest, SimKubelet], api: APICluster) -> None:
    rest, kubelet = env
    rest.call("POST", D_PATH, deployment("kdead", 1, progressDeadlineSeconds=2))
    wait_for(lambda: rolled_out(rest, "kdead"), 60, "rollout")
    kubelet.hold = lambda pod: pod["spec"]["containers"][0]["image"] == "broken:2"
    try:
        api.kubectl("-n", NS, "set", "image", "deploy/kdead", "app=broken:2")
        out = api.kubectl("-n", NS, "rollout", "status", "deploy/kdead", "--timeout=60s", check=False)
        assert out.returncode != 0 and "exceeded its progress deadline" in out.stderr, out
    finally:
        kubelet.hold = lambda pod: False
        kubelet.resync()
