"""Filters, scores, the decision and preemption as pure functions of pod and node dicts."""

from __future__ import annotations

import random
from typing import Any

import pytest

from scheduler import plugins as P
from scheduler.cache import SchedulerCache
from scheduler.core import Algorithm, FitError, nodes_to_find
from scheduler.framework import NodeInfo, PodInfo, pod_requests
from scheduler.preemption import eligible, find_candidate


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110", *, labels: dict | None = None,
         taints: list | None = None, ready: str = "True", unschedulable: bool = False, zone: str = "") -> dict:
    lbl = {"kubernetes.io/hostname": name, **(labels or {})}
    if zone:
        lbl["topology.kubernetes.io/zone"] = zone
    alloc = {"cpu": cpu, "memory": memory, "pods": pods}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": lbl},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": alloc, "capacity": alloc, "conditions": [{"type": "Ready", "status": ready}]}}


def pod(name: str, cpu: str = "", memory: str = "", *, ns: str = "default", node_name: str = "", labels: dict | None = None,
        priority: int | None = None, owner: str = "", **spec: Any) -> dict:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}", "labels": labels or {},
                            "creationTimestamp": "2025-01-01T00:00:00Z"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": owner,
                                    "controller": True}]
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "x", "resources": {"requests": requests}}], **spec}
    if node_name:
        body["nodeName"] = node_name
    if priority is not None:
        body["priority"] = priority
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body, "status": {"phase": "Pending"}}


def cluster(*nodes: dict, pods: tuple[dict, ...] = ()) -> SchedulerCache:
    cache = SchedulerCache(lambda p: (p.get("spec") or {}).get("priority") or 0)
    for n in nodes:
        cache.set_node(n)
    for p in pods:
        cache.set_pod(p)
    return cache


def verdicts(cache: SchedulerCache, p: dict) -> dict[str, tuple[str, ...] | None]:
    """node -> reasons (None: fits), running every filter the pod needs on every node."""
    info = PodInfo(p, cache.priority_of(p))
    state = P.prefilter(cache, info)
    out = {}
    for name in cache.node_names:
        result = P.run_filters(state, info, cache.nodes[name])
        out[name] = None if result is None else result[1]
    return out


def fits(cache: SchedulerCache, p: dict) -> set[str]:
    return {n for n, r in verdicts(cache, p).items() if r is None}


# ---------------------------------------------------------------------- requests

def test_pod_requests_sum_containers_max_init_and_overhead() -> None:
    spec = {"containers": [{"resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                           {"resources": {"requests": {"cpu": "200m", "nvidia.com/gpu": "1"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "100Mi"}}}],
            "overhead": {"cpu": "10m"}}
    r = pod_requests(spec)
    assert (r.cpu, r.memory, r.scalars) == (1010, 1024 ** 3, {"nvidia.com/gpu": 1})
    sidecar = {"containers": [{"resources": {"requests": {"cpu": "500m"}}}],
               "initContainers": [{"restartPolicy": "Always", "resources": {"requests": {"cpu": "300m"}}},
                                  {"resources": {"requests": {"cpu": "600m"}}}]}
    assert pod_requests(sidecar).cpu == 900  # app + sidecar; the later init needs 600 + 300 = 900 too
    assert PodInfo(pod("empty")).nz_cpu == 100 and PodInfo(pod("empty")).requests.pods == 1


# ---------------------------------------------------------------------- filters

def test_resources_fit_counts_bound_pods_and_names_every_shortage() -> None:
    cache = cluster(node("n1", cpu="2", memory="2Gi", pods="3"),
                    pods=(pod("a", "1500m", "1Gi", node_name="n1"), pod("b", node_name="n1")))
    assert verdicts(cache, pod("small", "500m", "1Gi")) == {"n1": None}
    assert verdicts(cache, pod("big", "600m", "2Gi")) == {"n1": ("Insufficient cpu", "Insufficient memory")}
    cache.set_pod(pod("c", node_name="n1"))
    assert verdicts(cache, pod("d")) == {"n1": ("Too many pods",)}
    gpu = pod("gpu")
    gpu["spec"]["containers"][0]["resources"]["requests"]["example.com/gpu"] = "1"
    cache2 = cluster(node("n2"))
    assert verdicts(cache2, gpu) == {"n2": ("Insufficient example.com/gpu",)}


def test_finished_pods_free_their_resources() -> None:
    done = pod("done", "2", node_name="n1")
    cache = cluster(node("n1", cpu="2"), pods=(done,))
    assert fits(cache, pod("p", "1")) == set()
    done["status"]["phase"] = "Succeeded"
    cache.set_pod(done)
    assert fits(cache, pod("p", "1")) == {"n1"}


def test_taints_and_tolerations() -> None:
    cache = cluster(node("plain"),
                    node("gpu", taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]),
                    node("evict", taints=[{"key": "maint", "effect": "NoExecute"}]),
                    node("soft", taints=[{"key": "meh", "effect": "PreferNoSchedule"}]))
    v = verdicts(cache, pod("p"))
    assert v["plain"] is None and v["soft"] is None
    assert v["gpu"] == ("node(s) had untolerated taint {gpu: yes}",)
    assert v["evict"] == ("node(s) had untolerated taint {maint: }",)
    equal = pod("p", tolerations=[{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}])
    assert fits(cache, equal) == {"plain", "gpu", "soft"}
    wrong_value = pod("p", tolerations=[{"key": "gpu", "value": "no"}])
    assert "gpu" not in fits(cache, wrong_value)
    wrong_effect = pod("p", tolerations=[{"key": "maint", "operator": "Exists", "effect": "NoSchedule"}])
    assert "evict" not in fits(cache, wrong_effect)
    everything = pod("p", tolerations=[{"operator": "Exists"}])
    assert fits(cache, everything) == {"plain", "gpu", "evict", "soft"}


def test_not_ready_and_unschedulable_nodes() -> None:
    cache = cluster(node("ok"), node("down", ready="False"), node("lost", ready="Unknown"),
                    node("cordoned", unschedulable=True))
    v = verdicts(cache, pod("p"))
    assert v == {"ok": None, "down": ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",),
                 "lost": ("node(s) had untolerated taint {node.kubernetes.io/unreachable: }",),
                 "cordoned": ("node(s) were unschedulable",)}
    daemon = pod("d", tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
                                   {"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                    "effect": "NoSchedule"}])
    assert fits(cache, daemon) == {"ok", "down", "cordoned"}


def _affinity(*terms: dict) -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def test_node_selector_and_required_node_affinity_operators() -> None:
    cache = cluster(node("a", labels={"disk": "ssd", "gen": "3"}), node("b", labels={"disk": "hdd", "gen": "5"}),
                    node("c", labels={"gen": "x"}))
    assert fits(cache, pod("p", nodeSelector={"disk": "ssd"})) == {"a"}
    assert verdicts(cache, pod("p", nodeSelector={"disk": "nvme"}))["a"] == ("node(s) didn't match Pod's node affinity/selector",)

    def matching(*exprs: dict, fields: list | None = None) -> set[str]:
        term: dict = {"matchExpressions": list(exprs)}
        if fields:
            term["matchFields"] = fields
        return fits(cache, pod("p", affinity=_affinity(term)))

    assert matching({"key": "disk", "operator": "In", "values": ["ssd", "hdd"]}) == {"a", "b"}
    assert matching({"key": "disk", "operator": "NotIn", "values": ["ssd"]}) == {"b", "c"}
    assert matching({"key": "disk", "operator": "Exists"}) == {"a", "b"}
    assert matching({"key": "disk", "operator": "DoesNotExist"}) == {"c"}
    assert matching({"key": "gen", "operator": "Gt", "values": ["4"]}) == {"b"}
    assert matching({"key": "gen", "operator": "Lt", "values": ["4"]}) == {"a"}  # "x" is not a number
    assert matching({"key": "disk", "operator": "Bogus"}) == set()
    assert matching(fields=[{"key": "metadata.name", "operator": "In", "values": ["c"]}]) == {"c"}
    either = _affinity({"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                       {"matchExpressions": [{"key": "gen", "operator": "In", "values": ["x"]}]})
    assert fits(cache, pod("p", affinity=either)) == {"a", "c"}  # terms are ORed
    assert fits(cache, pod("p", affinity=_affinity({}))) == set()  # an empty term matches nothing
    both = pod("p", nodeSelector={"disk": "ssd"}, affinity=_affinity({"matchExpressions": [
        {"key": "gen", "operator": "Gt", "values": ["4"]}]}))
    assert fits(cache, both) == set()


def test_host_ports() -> None:
    def with_port(name: str, port: int, ip: str = "", proto: str = "TCP", node_name: str = "") -> dict:
        p = pod(name, node_name=node_name)
        p["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": port, "protocol": proto,
                                                **({"hostIP": ip} if ip else {})}]
        return p

    cache = cluster(node("n1"), pods=(with_port("web", 8080, node_name="n1"),
                                      with_port("dns", 53, ip="127.0.0.1", proto="UDP", node_name="n1")))
    assert verdicts(cache, with_port("x", 8080))["n1"] == ("node(s) didn't have free ports for the requested pod ports",)
    assert verdicts(cache, with_port("x", 8080, ip="10.0.0.1"))["n1"] is not None  # 0.0.0.0 holds every address
    assert verdicts(cache, with_port("x", 8080, proto="UDP"))["n1"] is None
    assert verdicts(cache, with_port("x", 53, ip="127.0.0.2", proto="UDP"))["n1"] is None
    assert verdicts(cache, with_port("x", 53, proto="UDP"))["n1"] is not None


def test_volume_node_affinity() -> None:
    local = {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                                          "values": ["n2"]}]}]}
    volumes = {"data": (None, P.NodeSelector(local)), "loose": (P.R_UNBOUND_PVC, None)}
    cache = cluster(node("n1"), node("n2"))

    def with_claim(claim: str) -> PodInfo:
        return PodInfo(pod("p", volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]))

    info = with_claim("data")
    state = P.prefilter(cache, info, volume_lookup=lambda ns, claim: volumes[claim])
    assert P.run_filters(state, info, cache.nodes["n1"]) == ("VolumeBinding", ("node(s) had volume node affinity conflict",))
    assert P.run_filters(state, info, cache.nodes["n2"]) is None
    info = with_claim("loose")
    state = P.prefilter(cache, info, volume_lookup=lambda ns, claim: volumes[claim])
    assert P.run_filters(state, info, cache.nodes["n2"]) == ("VolumeBinding", (P.R_UNBOUND_PVC,))


def _term(labels: dict, key: str = "kubernetes.io/hostname") -> dict:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key}


def test_pod_anti_affinity_by_hostname_and_zone() -> None:
    web = {"app": "web"}
    cache = cluster(node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b"),
                    pods=(pod("w1", node_name="a1", labels=web),))
    host = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term(web)]}}
    zone = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term(web, "topology.kubernetes.io/zone")]}}
    assert fits(cache, pod("w2", labels=web, affinity=host)) == {"a2", "b1"}
    assert verdicts(cache, pod("w2", labels=web, affinity=host))["a1"] == ("node(s) didn't match pod anti-affinity rules",)
    assert fits(cache, pod("w2", labels=web, affinity=zone)) == {"b1"}
    other_ns = pod("w2", ns="other", labels=web, affinity=host)  # terms select the pod's own namespace
    assert fits(cache, other_ns) == {"a1", "a2", "b1"}
    # The existing pod's anti-affinity keeps others away too (symmetry).
    cache.set_pod(pod("loner", node_name="b1", labels={"app": "db"},
                      affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [_term(web)]}}))
    assert verdicts(cache, pod("w3", labels=web))["b1"] == ("node(s) didn't satisfy existing pods anti-affinity rules",)


def test_pod_affinity_and_the_first_pod_of_a_group() -> None:
    cache = cluster(node("a1", zone="a"), node("b1", zone="b"), node("nozone"))
    together = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        _term({"app": "cache"}, "topology.kubernetes.io/zone")]}}
    # No pod matches anywhere and the pod does not match itself: nowhere.
    assert fits(cache, pod("c0", affinity=together)) == set()
    # It matches itself: the first of the group may go to any node with the topology key.
    assert fits(cache, pod("c1", labels={"app": "cache"}, affinity=together)) == {"a1", "b1"}
    cache.set_pod(pod("c1", node_name="b1", labels={"app": "cache"}))
    assert fits(cache, pod("c2", labels={"app": "cache"}, affinity=together)) == {"b1"}
    assert verdicts(cache, pod("c2", affinity=together))["a1"] == ("node(s) didn't match pod affinity rules",)
    everywhere = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {**_term({"app": "cache"}, "topology.kubernetes.io/zone"), "namespaceSelector": {}}]}}
    assert fits(cache, pod("x", ns="elsewhere", affinity=everywhere)) == {"b1"}


def test_topology_spread_do_not_schedule() -> None:
    sel = {"matchLabels": {"app": "s"}}
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": sel}]
    cache = cluster(node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b"), node("bare"),
                    pods=(pod("s1", node_name="a1", labels={"app": "s"}),))
    v = verdicts(cache, pod("s2", labels={"app": "s"}, topologySpreadConstraints=spread))
    assert v["b1"] is None
    assert v["a1"] == v["a2"] == ("node(s) didn't match pod topology spread constraints",)
    assert v["bare"] == ("node(s) didn't match pod topology spread constraints (missing required label)",)
    cache.set_pod(pod("s2", node_name="b1", labels={"app": "s"}))
    assert fits(cache, pod("s3", labels={"app": "s"}, topologySpreadConstraints=spread)) == {"a1", "a2", "b1"}
    # minDomains above the domains that exist: the global minimum counts as 0.
    strict = [{**spread[0], "minDomains": 3}]
    assert fits(cache, pod("s3", labels={"app": "s"}, topologySpreadConstraints=strict)) == set()


# ---------------------------------------------------------------------- scores and decisions

def _scores(cache: SchedulerCache, p: dict) -> dict[str, float]:
    algo = Algorithm(cache)
    info = PodInfo(p, cache.priority_of(p))
    state = algo.prefilter(info)
    nodes = [cache.nodes[n] for n in cache.node_names]
    return dict(zip(cache.node_names, algo.score(state, info, nodes)))


def test_least_allocated_and_balanced_prefer_the_emptier_balanced_node() -> None:
    cache = cluster(node("busy"), node("idle"), node("lopsided"),
                    pods=(pod("x", "2", "4Gi", node_name="busy"), pod("y", "3", "100Mi", node_name="lopsided")))
    s = _scores(cache, pod("p", "500m", "512Mi"))
    assert s["idle"] > s["busy"] and s["idle"] > s["lopsided"]
    assert P.score_balanced(P.CycleState(PodInfo(pod("p"))), PodInfo(pod("p", "1", "2Gi")),
                            [cache.nodes["idle"]])[0] == 100.0


def test_siblings_spread_over_nodes_and_zones() -> None:
    cache = cluster(node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b"),
                    pods=(pod("r1", node_name="a1", owner="rs"), pod("other", node_name="b1", owner="rs2")))
    s = _scores(cache, pod("r2", owner="rs"))
    assert s["b1"] > s["a2"] > s["a1"]  # another zone beats another node in the same zone


def test_preferred_node_affinity_and_prefer_no_schedule_taints() -> None:
    cache = cluster(node("fast", labels={"disk": "ssd"}), node("slow"),
                    node("meh", labels={"disk": "ssd"}, taints=[{"key": "k", "effect": "PreferNoSchedule"}]))
    p = pod("p", affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}})
    s = _scores(cache, p)
    assert s["fast"] > s["slow"] and s["fast"] > s["meh"]
    tolerant = pod("p", tolerations=[{"key": "k", "operator": "Exists", "effect": "PreferNoSchedule"}])
    s2 = _scores(cache, tolerant)
    assert s2["meh"] == s2["fast"]


def test_preferred_pod_affinity_and_soft_spread() -> None:
    cache = cluster(node("n1"), node("n2"), pods=(pod("db", node_name="n2", labels={"app": "db"}),))
    near = pod("p", affinity={"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": _term({"app": "db"})}]}})
    s = _scores(cache, near)
    assert s["n2"] > s["n1"]
    far = pod("p", affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": _term({"app": "db"})}]}})
    s = _scores(cache, far)
    assert s["n1"] > s["n2"]
    soft = pod("p", labels={"app": "db"}, topologySpreadConstraints=[
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": {"matchLabels": {"app": "db"}}}])
    assert fits(cache, soft) == {"n1", "n2"}
    s = _scores(cache, soft)
    assert s["n1"] > s["n2"]


def test_fit_error_message_like_kube_scheduler() -> None:
    cache = cluster(node("small", cpu="1"), node("t1", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
                    node("t2", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    with pytest.raises(FitError) as exc:
        Algorithm(cache).schedule(PodInfo(pod("p", "2")))
    assert str(exc.value) == "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}."
    assert exc.value.diagnosis.unschedulable_plugins() == {"NodeResourcesFit", "TaintToleration"}
    with pytest.raises(FitError) as exc:
        Algorithm(cluster()).schedule(PodInfo(pod("p")))
    assert str(exc.value) == "no nodes available to schedule pods"


def test_assumed_pods_prevent_overcommit() -> None:
    cache = cluster(*(node(f"n{i}", cpu="2", pods="110") for i in range(3)))
    algo = Algorithm(cache, rng=random.Random(1))
    placed: dict[str, int] = {}
    for i in range(7):
        info = PodInfo(pod(f"p{i}", "1"))
        try:
            result = algo.schedule(info)
        except FitError:
            placed["none"] = placed.get("none", 0) + 1
            continue
        cache.assume(info, result.node)  # binding still in flight: the next decision must see it
        placed[result.node] = placed.get(result.node, 0) + 1
    assert placed == {"n0": 2, "n1": 2, "n2": 2, "none": 1}
    cache.forget("default/p0")  # a failed binding gives the room back
    assert fits(cache, pod("again", "1")) == {next(n for n in cache.node_names if cache.nodes[n].requested.cpu < 2000)}


def test_nodes_to_find_is_adaptive() -> None:
    assert nodes_to_find(50) == 50
    assert nodes_to_find(1000) == 420
    assert nodes_to_find(5000) == 500
    assert nodes_to_find(100_000) == 5000
    assert nodes_to_find(1000, 10) == 100


def test_scheduling_starts_where_the_last_search_stopped() -> None:
    cache = cluster(*(node(f"n{i:03d}") for i in range(300)))
    algo = Algorithm(cache)
    info = PodInfo(pod("p"))
    algo.schedule(info)
    assert algo.next_start == 144  # 300 nodes: 48% = 144 feasible found, then stop
    algo.schedule(info)
    assert algo.next_start == 288


# ---------------------------------------------------------------------- preemption

def test_preemption_picks_the_fewest_least_important_victims() -> None:
    cache = cluster(node("n1", cpu="4"), node("n2", cpu="4"),
                    pods=(pod("n1-low", "2", node_name="n1", priority=10), pod("n1-mid", "2", node_name="n1", priority=50),
                          pod("n2-a", "1", node_name="n2", priority=10), pod("n2-b", "1", node_name="n2", priority=10),
                          pod("n2-high", "2", node_name="n2", priority=2000)))
    vip = PodInfo(pod("vip", "2", priority=1000), 1000)
    with pytest.raises(FitError) as exc:
        Algorithm(cache).schedule(vip)
    assert eligible(vip, cache) is None
    candidate, summary = find_candidate(cache, vip, exc.value.diagnosis)
    assert candidate is not None and summary == ""
    # n1: evicting n1-low alone suffices; n2 would need both priority-10 pods.
    assert candidate.node == "n1" and [v.name for v in candidate.victims] == ["n1-low"]


def test_no_preemption_when_it_cannot_help() -> None:
    cache = cluster(node("n1", cpu="2", taints=[{"key": "k", "effect": "NoSchedule"}]), node("n2", cpu="2"),
                    pods=(pod("peer", "2", node_name="n2", priority=1000),))
    vip = PodInfo(pod("vip", "2", priority=1000), 1000)
    with pytest.raises(FitError) as exc:
        Algorithm(cache).schedule(vip)
    candidate, summary = find_candidate(cache, vip, exc.value.diagnosis)
    assert candidate is None
    assert summary == (" preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
                       "1 Preemption is not helpful for scheduling.")
    never = PodInfo(pod("never", "2", priority=1000, preemptionPolicy="Never"), 1000)
    assert eligible(never, cache) is not None


def test_nominated_pods_hold_their_room() -> None:
    cache = cluster(node("n1", cpu="2"))
    vip = PodInfo(pod("vip", "2", priority=1000), 1000)
    cache.set_nominated(vip, "n1")
    assert fits(cache, pod("low", "1", priority=0)) == set()  # the room is promised to a more important pod
    assert fits(cache, pod("higher", "1", priority=5000)) == {"n1"}


def test_node_info_clone_is_independent() -> None:
    info = NodeInfo.from_node(node("n1"), [PodInfo(pod("a", "1", node_name="n1"))])
    copy = info.clone()
    copy.remove_pod("default/a")
    assert info.requested.cpu == 1000 and copy.requested.cpu == 0
