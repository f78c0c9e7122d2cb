"""CronJobs start Jobs on schedule (a 2-second ``@every`` schedule keeps the test short), honour the
concurrency policy and suspension, and keep only the configured history."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.harness.apicluster import APICluster
from tests.integration.test_controller_support import Rest, SimKubelet, controller_env, pod_template, wait_for

NS = "cron-test"
NODES = ["cron-n1"]
CJ = f"/apis/batch/v1/namespaces/{NS}/cronjobs"
JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"


@pytest.fixture(scope="module")
def env(api: APICluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rest, SimKubelet]]:
    with controller_env(api, tmp_path_factory.mktemp("cm"), namespace=NS, nodes=NODES,
                        controllers="cronjob,job,garbagecollector") as (rest, kubelet, _):
        kubelet.outcome = lambda pod: (pod["metadata"].get("annotations") or {}).get("test/outcome")
        yield rest, kubelet


def cronjob(rest: Rest, name: str, outcome: str | None, **spec: object) -> dict:
    template = pod_template({"cron": name}, restartPolicy="Never")
    if outcome:
        template["metadata"]["annotations"] = {"test/outcome": outcome}
    return rest.call("POST", CJ, {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
                                  "spec": {"schedule": "@every 2s", "jobTemplate": {
                                      "metadata": {"labels": {"cron": name}}, "spec": {"template": template}},
                                      **spec}})


def jobs(rest: Rest, name: str) -> list[dict]:
    return [j for j in rest.items(JOBS) if (j["metadata"].get("labels") or {}).get("cron") == name
            and not j["metadata"].get("deletionTimestamp")]


def finished(job: dict, kind: str = "Complete") -> bool:
    return any(c["type"] == kind and c["status"] == "True" for c in (job.get("status") or {}).get("conditions") or [])


def test_runs_on_schedule_and_keeps_history(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    cj = cronjob(rest, "tick", "Succeeded", successfulJobsHistoryLimit=2)
    wait_for(lambda: len([j for j in jobs(rest, "tick")]) >= 2, 30, "two runs")
    seen: set[str] = set()
    deadline = time.monotonic() + 40
    while len(seen) < 4 and time.monotonic() < deadline:
        seen |= {j["metadata"]["name"] for j in jobs(rest, "tick")}
        time.sleep(0.2)
    assert len(seen) >= 4, seen
    job = jobs(rest, "tick")[0]
    assert job["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]
    assert "batch.kubernetes.io/cronjob-scheduled-timestamp" in job["metadata"]["annotations"]
    wait_for(lambda: len([j for j in jobs(rest, "tick") if finished(j)]) <= 2, 30, "history trimmed")
    st = rest.get(f"{CJ}/tick")["status"]
    assert st.get("lastScheduleTime") and st.get("lastSuccessfulTime")
    rest.merge(f"{CJ}/tick", {"spec": {"suspend": True}})
    time.sleep(1)
    before = {j["metadata"]["name"] for j in jobs(rest, "tick")}
    time.sleep(5)
    assert {j["metadata"]["name"] for j in jobs(rest, "tick")} <= before, "a suspended CronJob started a Job"


def test_forbid_runs_one_at_a_time(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    cronjob(rest, "solo", None, concurrencyPolicy="Forbid")
    wait_for(lambda: jobs(rest, "solo"), 30, "a first run")
    time.sleep(6)  # three more schedule times pass while the first Job runs
    assert len(jobs(rest, "solo")) == 1
    active = rest.get(f"{CJ}/solo")["status"].get("active") or []
    assert [a["name"] for a in active] == [jobs(rest, "solo")[0]["metadata"]["name"]]
    rest.merge(f"{CJ}/solo", {"spec": {"suspend": True}})


def test_replace_swaps_the_running_job(env: tuple[Rest, SimKubelet]) -> None:
    rest, _ = env
    cronjob(rest, "swap", None, concurrencyPolicy="Replace")
    first = wait_for(lambda: jobs(rest, "swap") and jobs(rest, "swap")[0]["metadata"]["name"], 30, "a first run")
    # Replace deletes the running Job, then starts the new one: one Job again, a different one.
    wait_for(lambda: len(names := {j["metadata"]["name"] for j in jobs(rest, "swap")}) == 1 and first not in names,
             30, "replaced")
    rest.merge(f"{CJ}/swap", {"spec": {"suspend": True}})
