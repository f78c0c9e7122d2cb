"""The Job and TTL-after-finished controllers against a real API server, pods run by simulated kubelets
that end them with the phase a test chooses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.apicluster import APICluster
from tests.integration.test_controller_support import Rest, SimKubelet, controller_env, pod_template, wait_for

NS = "job-test"
NODES = ["job-n1", "job-n2"]
JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"
PODS = f"/api/v1/namespaces/{NS}/pods"


@pytest.fixture(scope="module")
def env(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rest, SimKubelet]]:
    with controller_env(api, tmp_path_factory.mktemp("cm"), namespace=NS, nodes=NODES,
                        controllers="job,ttl-after-finished,garbagecollector",
                        cm_args=("--job-backoff-base-seconds", "0.2")) as (rest, kubelet, _):
        kubelet.outcome = lambda pod: (pod["metadata"].get("annotations") or {}).get("test/outcome")
        yield rest, kubelet


def job(rest: Rest, name: str, outcome: str | None, **spec: object) -> dict:
    template = pod_template({"app": name}, restartPolicy="Never")
    if outcome:
        template["metadata"]["annotations"] = {"test/outcome": outcome}
    return rest.call("POST", JOBS, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                                    "spec": {"template": template, **spec}})


def get(rest: Rest, name: str) -> dict | None:
    return rest.get(f"{JOBS}/{name}")


def condition(rest: Rest, name: str, type_: str) -> dict | None:
    return next((c for c in ((get(rest, name) or {}).get("status") or {}).get("conditions") or []
                 if c["type"] == type_ and c["status"] == "True"), None)


def job_pods(rest: Rest, name: str) -> list[dict]:
    return [p for p in rest.items(PODS) if (p["metadata"].get("labels") or {}).get("job-name") == name]


def test_runs_to_completion_within_parallelism(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    j = job(rest, "ok", "Succeeded", completions=4, parallelism=2)
    cond = wait_for(lambda: condition(rest, "ok", "Complete"), 60, "Complete")
    assert cond["reason"] == "CompletionsReached"
    assert condition(rest, "ok", "SuccessCriteriaMet") is not None
    st = get(rest, "ok")["status"]
    assert st["succeeded"] == 4 and st.get("failed", 0) == 0 and st["active"] == 0
    assert st["startTime"] and st["completionTime"] and not (st.get("uncountedTerminatedPods") or {}).get("succeeded")
    pods = job_pods(rest, "ok")
    assert len(pods) == 4 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    for p in pods:
        labels = p["metadata"]["labels"]
        assert labels["batch.kubernetes.io/controller-uid"] == j["metadata"]["uid"] and labels["app"] == "ok"
        assert not p["metadata"].get("finalizers"), "the tracking finalizer is removed once counted"
        assert p["metadata"]["ownerReferences"][0]["kind"] == "Job"


def test_backoff_limit_fails_the_job(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    job(rest, "bad", "Failed", backoffLimit=2)
    cond = wait_for(lambda: condition(rest, "bad", "Failed"), 60, "Failed")
    assert cond["reason"] == "BackoffLimitExceeded" and condition(rest, "bad", "FailureTarget")
    st = get(rest, "bad")["status"]
    assert st["failed"] == 3 and st.get("succeeded", 0) == 0 and st["active"] == 0
    assert len(job_pods(rest, "bad")) == 3


def test_active_deadline_stops_running_pods(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    job(rest, "slow", None, activeDeadlineSeconds=2, parallelism=2, completions=2)
    wait_for(lambda: len([p for p in job_pods(rest, "slow") if p["status"].get("phase") == "Running"]) == 2, 30,
             "2 running pods")
    cond = wait_for(lambda: condition(rest, "slow", "Failed"), 30, "Failed by the deadline")
    assert cond["reason"] == "DeadlineExceeded"
    wait_for(lambda: not job_pods(rest, "slow"), 30, "the running pods deleted")


def test_indexed_job_reports_completed_indexes(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    job(rest, "idx", "Succeeded", completions=3, parallelism=3, completionMode="Indexed")
    wait_for(lambda: condition(rest, "idx", "Complete"), 60, "Complete")
    assert get(rest, "idx")["status"]["completedIndexes"] == "0-2"
    indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                     for p in job_pods(rest, "idx"))
    assert indexes == ["0", "1", "2"]
    assert {p["spec"]["hostname"] for p in job_pods(rest, "idx")} == {"idx-0", "idx-1", "idx-2"}
    # Each container learns its index, as upstream: an env var read from the annotation.
    for pod in job_pods(rest, "idx"):
        env = {e["name"]: e for e in pod["spec"]["containers"][0].get("env") or []}
        assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def test_the_server_selects_a_jobs_pods_by_its_uid(env: tuple[Rest, SimKubelet]) -> None:
    """As upstream's Job strategy: spec.selector and the template's labels name the Job's uid, so
    `kubectl logs job/NAME` (which lists pods by spec.selector) finds this Job's pods and no others."""
    rest, _ = env
    created = job(rest, "sel", "Succeeded")
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = created["spec"]["template"]["metadata"]["labels"]
    assert {k: labels[k] for k in ("job-name", "batch.kubernetes.io/job-name", "controller-uid",
                                   "batch.kubernetes.io/controller-uid")} == {
        "job-name": "sel", "batch.kubernetes.io/job-name": "sel", "controller-uid": uid,
        "batch.kubernetes.io/controller-uid": uid}
    assert labels["app"] == "sel"
    wait_for(lambda: condition(rest, "sel", "Complete"), 60, "Complete")
    selected = rest.items(f"{PODS}?labelSelector=batch.kubernetes.io/controller-uid%3D{uid}")
    assert selected and all(p["metadata"]["labels"]["job-name"] == "sel" for p in selected)
    # The template (and so the generated labels) cannot change afterwards.
    current = get(rest, "sel")
    current["spec"]["template"]["metadata"]["labels"]["controller-uid"] = "other"
    status = rest.call("PUT", f"{JOBS}/sel", current, ok=(422,))
    assert "field is immutable" in status["message"]


def test_suspend_and_resume(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    job(rest, "held", None, suspend=True, parallelism=2, completions=2)
    wait_for(lambda: condition(rest, "held", "Suspended"), 30, "Suspended")
    assert not job_pods(rest, "held")
    rest.merge(f"{JOBS}/held", {"spec": {"suspend": False}})
    wait_for(lambda: len(job_pods(rest, "held")) == 2, 30, "pods once resumed")
    rest.merge(f"{JOBS}/held", {"spec": {"suspend": True}})
    wait_for(lambda: not [p for p in job_pods(rest, "held") if not p["metadata"].get("deletionTimestamp")], 30,
             "pods deleted when suspended again")


def test_ttl_after_finished_deletes_the_job_and_its_pods(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    job(rest, "brief", "Succeeded", ttlSecondsAfterFinished=1)
    wait_for(lambda: get(rest, "brief") is None, 60, "the finished job deleted after its TTL")
    wait_for(lambda: not job_pods(rest, "brief"), 30, "its pods collected")


def test_deleting_a_running_job_releases_its_pods(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    job(rest, "cut", None, parallelism=2, completions=2)
    wait_for(lambda: len(job_pods(rest, "cut")) == 2, 30, "2 pods")
    rest.call("DELETE", f"{JOBS}/cut", {"propagationPolicy": "Background"})
    wait_for(lambda: not job_pods(rest, "cut"), 30, "pods gone (the tracking finalizer let go)")
