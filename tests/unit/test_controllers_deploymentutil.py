"""Pure pieces of the ReplicaSet and Deployment controllers on plain dicts: expectations, pod ranking and
availability, template hashing, revisions, surge arithmetic, proportional scaling, status and conditions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from apimachinery import meta as m
from controllers import deploymentutil as du
from controllers import podutil as pu
from controllers.app import select_controllers
from controllers.expectations import Expectations
from controllers.podcontrol import slow_start_batch

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def ts(seconds: float) -> str:
    return m.format_rfc3339(T0 + timedelta(seconds=seconds))


def pod(name: str, *, node: str = "n", phase: str = "Running", ready: float | None = 0.0, created: float = 0,
        restarts: int = 0) -> dict:
    conds = [] if ready is None else [{"type": "Ready", "status": "True", "lastTransitionTime": ts(ready)}]
    return {"metadata": {"name": name, "creationTimestamp": ts(created)}, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conds, "containerStatuses": [{"restartCount": restarts}]}}


def deployment(replicas: int = 10, surge: object = "25%", unavailable: object = "25%", **spec: object) -> dict:
    return {"metadata": {"name": "d", "generation": 1, "annotations": {}},
            "spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate",
                                                         "rollingUpdate": {"maxSurge": surge,
                                                                           "maxUnavailable": unavailable}},
                     "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}},
                     **spec}}


def rs(name: str, replicas: int, *, available: int = 0, created: float = 0, revision: int | None = None,
       annotations: dict | None = None) -> dict:
    ann = dict(annotations or {})
    if revision is not None:
        ann[du.REVISION] = str(revision)
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": ts(created), "annotations": ann,
                         "generation": 1},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "availableReplicas": available, "readyReplicas": available,
                       "observedGeneration": 1}}


# ---------------------------------------------------------------------- expectations

def test_expectations_block_until_every_creation_and_deletion_is_observed() -> None:
    e = Expectations()
    assert e.satisfied("ns/rs")
    e.expect_creations("ns/rs", 3)
    assert not e.satisfied("ns/rs")
    e.creation_observed("ns/rs")
    e.creation_observed("ns/rs")
    assert not e.satisfied("ns/rs")
    e.lower_creations("ns/rs")  # the third create failed
    assert e.satisfied("ns/rs")
    e.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    e.deletion_observed("ns/rs", "ns/a")
    e.deletion_observed("ns/rs", "ns/a")  # the same pod twice counts once
    assert not e.satisfied("ns/rs") and e.pending("ns/rs") == (0, 1)
    e.deletion_observed("ns/rs", "ns/b")
    assert e.satisfied("ns/rs")


def test_expectations_expire() -> None:
    e = Expectations(ttl=0.0)
    e.expect_creations("k", 5)
    assert e.satisfied("k")


async def test_slow_start_batches_double_and_stop_at_the_first_failing_batch() -> None:
    calls: list[int] = []
    in_flight = {"now": 0, "max": 0}

    async def ok() -> None:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        calls.append(1)
        await asyncio.sleep(0)
        in_flight["now"] -= 1

    assert await slow_start_batch(10, 1, ok) == (10, 10, None)
    assert in_flight["max"] == 4  # batches 1, 2, 4, 3

    n = {"i": 0}

    async def fail_from_4th() -> None:
        n["i"] += 1
        if n["i"] >= 4:
            raise RuntimeError("quota")

    successes, attempted, err = await slow_start_batch(100, 1, fail_from_4th)
    assert (successes, attempted) == (3, 7) and isinstance(err, RuntimeError)  # 1 + 2 + 4: the 4-batch failed


# ---------------------------------------------------------------------- pods

def test_deletion_rank_prefers_unscheduled_pending_unready_recent_restarting_new() -> None:
    pods = [
        pod("old-ready", ready=0, created=0),
        pod("new-ready", ready=0, created=10),
        pod("recently-ready", ready=50, created=0),
        pod("unready", ready=None),
        pod("pending", phase="Pending", ready=None),
        pod("unscheduled", node="", phase="Pending", ready=None),
        pod("restarting", ready=0, created=0, restarts=5),
    ]
    order = [p["metadata"]["name"] for p in sorted(pods, key=pu.deletion_rank)]
    assert order == ["unscheduled", "pending", "unready", "recently-ready", "restarting", "new-ready", "old-ready"]


def test_availability_needs_min_ready_seconds() -> None:
    p = pod("p", ready=0)
    assert pu.is_pod_available(p, 0, T0)
    assert not pu.is_pod_available(p, 10, T0 + timedelta(seconds=5))
    assert pu.is_pod_available(p, 10, T0 + timedelta(seconds=10))
    assert pu.seconds_until_available(p, 10, T0 + timedelta(seconds=4)) == pytest.approx(6)
    assert not pu.is_pod_available(pod("u", ready=None), 0, T0)
    assert not pu.is_pod_active({"metadata": {"deletionTimestamp": ts(0)}, "status": {"phase": "Running"}})
    assert not pu.is_pod_active({"metadata": {}, "status": {"phase": "Succeeded"}})


def test_set_condition_keeps_transition_time_while_status_holds() -> None:
    conds: list[dict] = []
    assert pu.set_condition(conds, {"type": "Ready", "status": "True", "reason": "a"}, when=ts(0))
    assert not pu.set_condition(conds, {"type": "Ready", "status": "True", "reason": "a"}, when=ts(5))
    assert pu.set_condition(conds, {"type": "Ready", "status": "True", "reason": "b"}, when=ts(5))
    assert conds[0]["lastTransitionTime"] == ts(0) and conds[0]["reason"] == "b"
    assert pu.set_condition(conds, {"type": "Ready", "status": "False", "reason": "b"}, when=ts(9))
    assert conds[0]["lastTransitionTime"] == ts(9)


def test_pod_from_template_carries_owner_and_template() -> None:
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "ns", "uid": "u"}}
    t = {"metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}}, "spec": {"containers": [{"name": "c"}]}}
    p = pu.pod_from_template(t, owner=owner, owner_ref=pu.owner_ref_of(owner, "ReplicaSet", "apps/v1"))
    assert p["metadata"]["generateName"] == "web-1-" and p["metadata"]["namespace"] == "ns"
    assert p["metadata"]["labels"] == {"a": "b"} and p["metadata"]["annotations"] == {"x": "y"}
    ref = p["metadata"]["ownerReferences"][0]
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u", "controller": True,
                   "blockOwnerDeletion": True}
    p["spec"]["containers"][0]["name"] = "changed"
    assert t["spec"]["containers"][0]["name"] == "c"


# ---------------------------------------------------------------------- hashing

def test_template_hash_is_stable_ignores_null_fields_and_changes_with_collisions() -> None:
    t = deployment()["spec"]["template"]
    h = du.compute_hash(t)
    assert h == du.compute_hash(m.deep_copy(t)) and len(h) <= 10
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    as_kubectl_sends_it = m.deep_copy(t)
    as_kubectl_sends_it["metadata"]["creationTimestamp"] = None
    as_kubectl_sends_it["spec"]["volumes"] = []
    assert du.compute_hash(as_kubectl_sends_it) == h
    assert du.compute_hash(t, 1) != h and du.compute_hash(t, 1) != du.compute_hash(t, 2)
    other = m.deep_copy(t)
    other["spec"]["containers"][0]["image"] = "v2"
    assert du.compute_hash(other) != h


def test_equal_ignore_hash_and_find_new_rs() -> None:
    d = deployment()
    t = m.deep_copy(d["spec"]["template"])
    t["metadata"]["labels"][du.POD_TEMPLATE_HASH] = "abc"
    assert du.equal_ignore_hash(t, d["spec"]["template"])
    a = rs("a", 1, created=0)
    a["spec"]["template"] = t
    b = rs("b", 1, created=5)
    b["spec"]["template"] = m.deep_copy(t)
    c = rs("c", 1, created=1)
    c["spec"]["template"] = {"metadata": {"labels": {"app": "y"}}}
    assert du.find_new_rs(d, [b, c, a])["metadata"]["name"] == "a"  # the oldest of the equal ones
    old, all_old = du.find_old_rss(d, [b, c, a])
    assert sorted(x["metadata"]["name"] for x in all_old) == ["b", "c"]


# ---------------------------------------------------------------------- revisions

def test_new_rs_annotations_copy_deployment_annotations_and_keep_rollback_history() -> None:
    d = deployment()
    d["metadata"]["annotations"] = {du.CHANGE_CAUSE: "v3", du.LAST_APPLIED: "{}", du.REVISION: "9"}
    new = rs("new", 0)
    assert du.set_new_rs_annotations(d, new, 1, exists=False)
    ann = new["metadata"]["annotations"]
    assert ann[du.REVISION] == "1" and ann[du.CHANGE_CAUSE] == "v3" and du.LAST_APPLIED not in ann
    assert ann[du.DESIRED_REPLICAS] == "10" and ann[du.MAX_REPLICAS] == "13"
    assert not du.set_new_rs_annotations(d, new, 1, exists=True)
    # Rolled back to: the revision jumps to max+1 and the old one is remembered.
    back = rs("back", 0, revision=2)
    assert du.set_new_rs_annotations(d, back, 5, exists=True)
    assert back["metadata"]["annotations"][du.REVISION] == "5"
    assert back["metadata"]["annotations"][du.REVISION_HISTORY] == "2"
    du.set_new_rs_annotations(d, back, 7, exists=True)
    assert back["metadata"]["annotations"][du.REVISION_HISTORY] == "2,5"
    assert du.max_revision([rs("x", 0, revision=3), back, rs("y", 0)]) == 7


# ---------------------------------------------------------------------- surge arithmetic

@pytest.mark.parametrize(("surge", "unavailable", "replicas", "expected"), [
    ("25%", "25%", 10, (3, 2)),
    ("25%", "25%", 1, (1, 0)),
    (0, 0, 5, (0, 1)),
    ("0%", "0%", 5, (0, 1)),
    (2, "50%", 5, (2, 2)),
    ("100%", 0, 3, (3, 0)),
])
def test_fenceposts(surge: object, unavailable: object, replicas: int, expected: tuple[int, int]) -> None:
    assert du.resolve_fenceposts(surge, unavailable, replicas) == expected


def test_max_unavailable_is_capped_and_zero_for_recreate() -> None:
    assert du.max_unavailable(deployment(4, surge=0, unavailable=10)) == 4
    recreate = deployment(4)
    recreate["spec"]["strategy"] = {"type": "Recreate"}
    assert du.max_unavailable(recreate) == 0 and du.max_surge(recreate) == 0
    assert du.new_rs_new_replicas(recreate, [], rs("n", 0)) == 4


def test_new_rs_may_grow_only_up_to_replicas_plus_surge() -> None:
    d = deployment(10, surge=3, unavailable=2)
    new = rs("new", 0)
    assert du.new_rs_new_replicas(d, [rs("old", 10), new], new) == 3
    new = rs("new", 3)
    assert du.new_rs_new_replicas(d, [rs("old", 10), new], new) == 3  # already at 13
    assert du.new_rs_new_replicas(d, [rs("old", 8), new], new) == 5
    new = rs("new", 9)
    assert du.new_rs_new_replicas(d, [rs("old", 0), new], new) == 10  # never beyond replicas


def test_proportional_scaling_shares() -> None:
    d = deployment(20, surge=0, unavailable=1)  # scaled from 10 to 20 mid-rollout
    d["status"] = {"replicas": 10}
    ann = {du.MAX_REPLICAS: "10"}
    big, small = rs("big", 6, annotations=ann), rs("small", 4, annotations=ann)
    to_add = 20 - 10
    p1 = du.proportion(big, d, to_add, 0)
    p2 = du.proportion(small, d, to_add, p1)
    assert (p1, p2) == (6, 4)
    zero = deployment(0)
    assert du.proportion(big, zero, -6, 0) == -6


def test_active_or_latest_and_saturation() -> None:
    new = rs("new", 0, created=10)
    old = rs("old", 3, created=0)
    assert du.find_active_or_latest(new, [old])["metadata"]["name"] == "old"
    assert du.find_active_or_latest(rs("new", 2), [old]) is None
    assert du.find_active_or_latest(new, [rs("old", 0)])["metadata"]["name"] == "new"
    d = deployment(3)
    sat = rs("new", 3, available=3, annotations={du.DESIRED_REPLICAS: "3"})
    assert du.is_saturated(d, sat) and not du.is_saturated(d, rs("new", 3, available=2))


def test_safe_available_never_counts_more_than_the_scaled_down_size() -> None:
    shrinking = rs("old", 4, available=6)
    shrinking["metadata"]["generation"] = 2  # spec changed, status not yet observed
    assert du.safe_available(shrinking) == 4
    assert du.safe_available(rs("steady", 5, available=3)) == 3


# ---------------------------------------------------------------------- status and conditions

def test_calculate_status_and_available_condition() -> None:
    d = deployment(10, surge=2, unavailable=2)
    new = rs("new", 4, available=4)
    old = rs("old", 7, available=5)
    st = du.calculate_status(d, [old, new], new)
    assert st["replicas"] == 11 and st["updatedReplicas"] == 4 and st["availableReplicas"] == 9
    assert st["unavailableReplicas"] == 2 and st["observedGeneration"] == 1
    assert du.get_condition(st, "Available")["reason"] == du.MIN_AVAILABLE
    low = du.calculate_status(d, [rs("old", 7, available=3), new], new)
    assert du.get_condition(low, "Available")["status"] == "False"


def test_deployment_condition_semantics() -> None:
    st: dict = {}
    du.set_condition(st, du.new_condition("Progressing", "True", du.RS_UPDATED, "a", when=ts(0)))
    du.set_condition(st, du.new_condition("Available", "True", du.MIN_AVAILABLE, "b", when=ts(0)))
    du.set_condition(st, du.new_condition("Progressing", "True", du.RS_UPDATED, "changed", when=ts(5)))
    assert du.get_condition(st, "Progressing")["message"] == "a"  # same status and reason: untouched
    du.set_condition(st, du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE, "done", when=ts(9)))
    cond = du.get_condition(st, "Progressing")
    assert cond["lastTransitionTime"] == ts(0) and cond["lastUpdateTime"] == ts(9)
    assert [c["type"] for c in st["conditions"]] == ["Available", "Progressing"]


def test_progress_deadline() -> None:
    d = deployment(3, progressDeadlineSeconds=60)
    st = {"conditions": [du.new_condition("Progressing", "True", du.RS_UPDATED, "x", when=ts(0))],
          "replicas": 3, "updatedReplicas": 1, "availableReplicas": 1, "observedGeneration": 1}
    assert not du.deployment_timed_out(d, st, T0 + timedelta(seconds=59))
    assert du.deployment_timed_out(d, st, T0 + timedelta(seconds=61))
    assert du.seconds_to_deadline(d, st, T0 + timedelta(seconds=20)) == pytest.approx(40.5)
    done = {**st, "conditions": [du.new_condition("Progressing", "True", du.NEW_RS_AVAILABLE, "x", when=ts(0))]}
    assert not du.deployment_timed_out(d, done, T0 + timedelta(seconds=600))
    assert du.deployment_progressing({**d, "status": {"updatedReplicas": 0, "replicas": 3}}, st)
    assert not du.deployment_progressing({**d, "status": st}, st)
    assert du.deployment_complete(d, {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
                                      "observedGeneration": 1})


def test_controller_selection_syntax() -> None:
    known = ["replicaset", "deployment", "namespace"]
    assert select_controllers("*", known) == known
    assert select_controllers("*,-deployment", known) == ["replicaset", "namespace"]
    assert select_controllers("deployment", known) == ["deployment"]
    with pytest.raises(SystemExit):
        select_controllers("nope", known)
