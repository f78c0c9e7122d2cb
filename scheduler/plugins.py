"""Filter and score plugins: pure functions of a pod, a node and what was precomputed for the pod.

Filters answer "can this pod run here?" with ``None`` (yes) or the reasons it cannot, worded as
kube-scheduler words them (they end up in ``0/3 nodes are available: 1 Insufficient cpu, ...``).
They run in kube-scheduler's order and the first failing one decides a node. Scores rank the
nodes that passed, each 0..100, combined with the default profile's weights.

``prefilter`` computes, once per pod and scheduling cycle, what the filters would otherwise
recompute for every node: topology counts for pod (anti-)affinity and spread constraints, the
node affinity of the pod's volumes, the pods nominated to nodes by preemption.
"""

from __future__ import annotations

import math
from itertools import repeat
from operator import attrgetter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .framework import (NodeInfo, NodeSelector, PodInfo, SpreadConstraint, TAINT_UNSCHEDULABLE, Taint,
                        Toleration)

MAX_SCORE = 100

# Reasons (kube-scheduler's wording).
R_UNSCHEDULABLE = "node(s) were unschedulable"
R_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
R_PORTS = "node(s) didn't have free ports for the requested pod ports"
R_TOO_MANY_PODS = "Too many pods"
R_VOLUME_AFFINITY = "node(s) had volume node affinity conflict"
R_UNBOUND_PVC = "pod has unbound immediate PersistentVolumeClaims"
R_SPREAD = "node(s) didn't match pod topology spread constraints"
R_SPREAD_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
R_AFFINITY = "node(s) didn't match pod affinity rules"
R_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
R_EXISTING_ANTI = "node(s) didn't satisfy existing pods anti-affinity rules"
R_NOT_FOUND_NODE = "node(s) not found"


def untolerated_reason(taint: Taint) -> str:
    return f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"


def insufficient(resource: str) -> str:
    return f"Insufficient {resource}"


class ClusterView(Protocol):
    """What prefilter reads from the scheduler cache."""

    nodes: dict[str, NodeInfo]
    pods_by_namespace: dict[str, dict[str, PodInfo]]
    anti_affinity_pods: dict[str, PodInfo]
    affinity_pods: dict[str, PodInfo]
    namespace_labels: dict[str, dict[str, str]]

    def nominated_for(self, node_name: str) -> Iterable[PodInfo]: ...

    def nominated_nodes(self) -> Iterable[str]: ...


VolumeLookup = Callable[[str, str], tuple[str | None, NodeSelector | None]]


@dataclass
class CycleState:
    pod: PodInfo
    ns_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # inter-pod affinity
    existing_anti: set[tuple[str, str]] = field(default_factory=set)
    affinity_counts: list[dict[str, int]] = field(default_factory=list)
    affinity_matches_anywhere: bool = False
    affinity_self_match: bool = False
    anti_counts: list[dict[str, int]] = field(default_factory=list)
    # spread: (constraint, counts by domain, minimum over domains, 1 if the pod matches itself)
    spread_hard: list[tuple[SpreadConstraint, dict[str, int], int, int]] = field(default_factory=list)
    spread_keys: tuple[str, ...] = ()
    # volumes
    volume_error: str | None = None
    volume_selectors: list[NodeSelector] = field(default_factory=list)
    # resources claimed by nominated pods of at least our priority, per node
    nominated: dict[str, list[PodInfo]] = field(default_factory=dict)
    filters: list[tuple[str, Callable[[CycleState, PodInfo, NodeInfo], tuple[str, ...] | None]]] = field(
        default_factory=list)


# ---------------------------------------------------------------------- filters

def tolerated(tolerations: tuple[Toleration, ...], taint: Taint) -> bool:
    for t in tolerations:
        if t.tolerates(taint):
            return True
    return False


def filter_unschedulable(state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
    if node.unschedulable and not tolerated(pod.tolerations, Taint(TAINT_UNSCHEDULABLE, "", "NoSchedule")):
        return (R_UNSCHEDULABLE,)
    return None


def filter_taints(state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
    for taint in node.taints:
        if not tolerated(pod.tolerations, taint):
            return (untolerated_reason(taint),)
    return None


def node_affinity_matches(pod: PodInfo, node: NodeInfo) -> bool:
    labels = node.labels
    for k, v in pod.node_selector.items():
        if labels.get(k) != v:
            return False
    if pod.required_node_affinity is not None and not pod.required_node_affinity.matches(node.name, labels):
        return False
    return True


def filter_node_affinity(state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
    return None if node_affinity_matches(pod, node) else (R_NODE_AFFINITY,)


def filter_ports(state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
    used = node.used_ports
    for ip, proto, port in pod.host_ports:
        ips = used.get((proto, port))
        if ips and (ip == "0.0.0.0" or "0.0.0.0" in ips or ip in ips):
            return (R_PORTS,)
    return None


def filter_resources(state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
    req = pod.requests
    alloc = node.allocatable
    used = node.requested
    extra = state.nominated.get(node.name) if state.nominated else None
    if extra:
        used = used.copy()
        for p in extra:
            if p.key not in node.pods:
                used.add(p.requests)
    reasons: list[str] = []
    if used.pods + 1 > alloc.pods:
        reasons.append(R_TOO_MANY_PODS)
    if req.cpu and used.cpu + req.cpu > alloc.cpu:
        reasons.append(insufficient("cpu"))
    if req.memory and used.memory + req.memory > alloc.memory:
        reasons.append(insufficient("memory"))
    if req.ephemeral and used.ephemeral + req.ephemeral > alloc.ephemeral:
        reasons.append(insufficient("ephemeral-storage"))
    for name, value in req.scalars.items():
        if value and used.scalars.get(name, 0) + value > alloc.scalars.get(name, 0):
            reasons.append(insufficient(name))
    return tuple(reasons) if reasons else None


def filter_volumes(state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
    if state.volume_error:
        return (state.volume_error,)
    for sel in state.volume_selectors:
        if not sel.matches(node.name, node.labels):
            return (R_VOLUME_AFFINITY,)
    return None


def filter_spread(state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
    labels = node.labels
    for key in state.spread_keys:
        if key not in labels:
            return (R_SPREAD_LABEL,)
    for c, counts, minimum, self_match in state.spread_hard:
        if counts.get(labels[c.topology_key], 0) + self_match - minimum > c.max_skew:
            return (R_SPREAD,)
    return None


def filter_interpod(state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, ...] | None:
    """The pod's affinity, then its anti-affinity, then existing pods' anti-affinity (upstream's order)."""
    labels = node.labels
    if pod.affinity:
        if state.affinity_matches_anywhere or not state.affinity_self_match:
            for term, counts in zip(pod.affinity, state.affinity_counts):
                value = labels.get(term.topology_key)
                if value is None or counts.get(value, 0) <= 0:
                    return (R_AFFINITY,)
        else:
            # No pod anywhere matches, but this pod matches its own terms: the first of a group may go
            # anywhere that has the topology keys.
            for term in pod.affinity:
                if term.topology_key not in labels:
                    return (R_AFFINITY,)
    for term, counts in zip(pod.anti_affinity, state.anti_counts):
        value = labels.get(term.topology_key)
        if value is not None and counts.get(value, 0) > 0:
            return (R_ANTI_AFFINITY,)
    for key, value in state.existing_anti:
        if labels.get(key) == value:
            return (R_EXISTING_ANTI,)
    return None


FILTERS: dict[str, Callable[[CycleState, PodInfo, NodeInfo], tuple[str, ...] | None]] = {
    "NodeUnschedulable": filter_unschedulable,
    "TaintToleration": filter_taints,
    "NodeAffinity": filter_node_affinity,
    "NodePorts": filter_ports,
    "NodeResourcesFit": filter_resources,
    "VolumeBinding": filter_volumes,
    "PodTopologySpread": filter_spread,
    "InterPodAffinity": filter_interpod,
}

# Failures that evicting pods cannot fix (kube-scheduler's UnschedulableAndUnresolvable).
_UNRESOLVABLE_PLUGINS = {"NodeUnschedulable", "TaintToleration", "NodeAffinity", "VolumeBinding"}
_UNRESOLVABLE_REASONS = {R_SPREAD_LABEL, R_AFFINITY, R_NOT_FOUND_NODE}


def resolvable_by_preemption(plugin: str, reasons: tuple[str, ...]) -> bool:
    return plugin not in _UNRESOLVABLE_PLUGINS and not any(r in _UNRESOLVABLE_REASONS for r in reasons)


def run_filters(state: CycleState, pod: PodInfo, node: NodeInfo) -> tuple[str, tuple[str, ...]] | None:
    """The first failing filter and its reasons, or None if the pod fits on the node."""
    for name, fn in state.filters:
        reasons = fn(state, pod, node)
        if reasons:
            return name, reasons
    return None


# ---------------------------------------------------------------------- prefilter

def _pods_in_namespaces(cluster: ClusterView, namespaces: frozenset[str] | None) -> Iterable[PodInfo]:
    if namespaces is None:
        for pods in cluster.pods_by_namespace.values():
            yield from pods.values()
    else:
        for ns in namespaces:
            yield from cluster.pods_by_namespace.get(ns, {}).values()


def _term_pods(cluster: ClusterView, term: Any) -> Iterable[PodInfo]:
    """Existing pods a pod-affinity term selects (namespace selectors need every namespace)."""
    scope = None if term.namespace_selector is not None else term.namespaces
    for p in _pods_in_namespaces(cluster, scope):
        if not p.terminating and term.matches(p, cluster.namespace_labels):
            yield p


def _topology_counts(cluster: ClusterView, term: Any, exclude: frozenset[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    key = term.topology_key
    for p in _term_pods(cluster, term):
        if p.key in exclude:
            continue
        node = cluster.nodes.get(p.node_name)
        if node is None:
            continue
        value = node.labels.get(key)
        if value is not None:
            counts[value] = counts.get(value, 0) + 1
    return counts


def _spread_counts(cluster: ClusterView, pod: PodInfo, c: SpreadConstraint, eligible: list[NodeInfo],
                   exclude: frozenset[str]) -> dict[str, int]:
    counts = {n.labels[c.topology_key]: 0 for n in eligible}
    eligible_names = {n.name for n in eligible}
    for p in cluster.pods_by_namespace.get(pod.namespace, {}).values():
        if p.terminating or p.key in exclude or p.node_name not in eligible_names:
            continue
        if c.selector.matches(p.labels):
            value = cluster.nodes[p.node_name].labels[c.topology_key]
            counts[value] += 1
    return counts


def spread_eligible_nodes(cluster: ClusterView, pod: PodInfo, constraints: Iterable[SpreadConstraint]) -> list[NodeInfo]:
    constraints = list(constraints)
    keys = {c.topology_key for c in constraints}
    out = []
    for n in cluster.nodes.values():
        if n.node is None or not all(k in n.labels for k in keys):
            continue
        if any(c.honor_affinity for c in constraints) and not node_affinity_matches(pod, n):
            continue
        if any(c.honor_taints for c in constraints) and filter_taints(CycleState(pod), pod, n):
            continue
        out.append(n)
    return out


def prefilter(cluster: ClusterView, pod: PodInfo, *, volume_lookup: VolumeLookup | None = None,
              exclude: frozenset[str] = frozenset()) -> CycleState:
    """Everything filters need that does not depend on the node; ``exclude``: pods to pretend gone."""
    state = CycleState(pod, cluster.namespace_labels)
    filters: list[str] = ["NodeUnschedulable", "TaintToleration"]
    if pod.node_selector or pod.required_node_affinity is not None:
        filters.append("NodeAffinity")
    if pod.host_ports:
        filters.append("NodePorts")
    filters.append("NodeResourcesFit")
    if pod.claims:
        filters.append("VolumeBinding")
        for claim in pod.claims:
            error, selector = volume_lookup(pod.namespace, claim) if volume_lookup else (None, None)
            if error:
                state.volume_error = error
                break
            if selector is not None:
                state.volume_selectors.append(selector)
    hard = [c for c in pod.spread if c.hard]
    if hard:
        filters.append("PodTopologySpread")
        state.spread_keys = tuple(dict.fromkeys(c.topology_key for c in hard))
        eligible = spread_eligible_nodes(cluster, pod, hard)
        for c in hard:
            counts = _spread_counts(cluster, pod, c, eligible, exclude)
            minimum = min(counts.values()) if len(counts) >= c.min_domains and counts else 0
            state.spread_hard.append((c, counts, minimum, 1 if c.selector.matches(pod.labels) else 0))
    # Existing pods whose required anti-affinity rejects this pod.
    for other in cluster.anti_affinity_pods.values():
        if other.key in exclude or other.terminating:
            continue
        node = cluster.nodes.get(other.node_name)
        if node is None:
            continue
        for term in other.anti_affinity:
            if term.matches(pod, cluster.namespace_labels) and term.topology_key in node.labels:
                state.existing_anti.add((term.topology_key, node.labels[term.topology_key]))
    if pod.affinity:
        state.affinity_counts = [_topology_counts(cluster, t, exclude) for t in pod.affinity]
        state.affinity_matches_anywhere = any(state.affinity_counts)
        state.affinity_self_match = all(t.matches(pod, cluster.namespace_labels) for t in pod.affinity)
    if pod.anti_affinity:
        state.anti_counts = [_topology_counts(cluster, t, exclude) for t in pod.anti_affinity]
    if state.existing_anti or pod.affinity or pod.anti_affinity:
        filters.append("InterPodAffinity")
    for node_name in cluster.nominated_nodes():
        claimed = [p for p in cluster.nominated_for(node_name) if p.key != pod.key and p.priority >= pod.priority]
        if claimed:
            state.nominated[node_name] = claimed
    state.filters = [(name, FILTERS[name]) for name in filters]
    return state


# ---------------------------------------------------------------------- scores

def score_least_allocated(state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """More free CPU and memory (after placing the pod) scores higher."""
    out = []
    for n in nodes:
        total = 0.0
        for alloc, used in ((n.allocatable.cpu, n.nz_cpu + pod.nz_cpu), (n.allocatable.memory, n.nz_memory + pod.nz_memory)):
            if alloc > 0 and used <= alloc:
                total += (alloc - used) * MAX_SCORE / alloc
        out.append(total / 2)
    return out


def score_balanced(state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """CPU and memory used in similar proportions scores higher."""
    out = []
    for n in nodes:
        a_cpu, a_mem = n.allocatable.cpu, n.allocatable.memory
        f_cpu = min(1.0, (n.nz_cpu + pod.nz_cpu) / a_cpu) if a_cpu > 0 else 1.0
        f_mem = min(1.0, (n.nz_memory + pod.nz_memory) / a_mem) if a_mem > 0 else 1.0
        out.append((1 - abs(f_cpu - f_mem) / 2) * MAX_SCORE)
    return out


def _normalize(raw: list[float], *, reverse: bool = False) -> list[float]:
    """Scale to 0..MAX_SCORE by the maximum (``reverse``: fewer is better)."""
    top = max(raw) if raw else 0
    if top <= 0:
        return [float(MAX_SCORE) if reverse else 0.0 for _ in raw]
    if reverse:
        return [MAX_SCORE - r * MAX_SCORE / top for r in raw]
    return [r * MAX_SCORE / top for r in raw]


def _min_max(raw: list[float]) -> list[float]:
    lo, hi = (min(raw), max(raw)) if raw else (0, 0)
    if hi == lo:
        return [0.0 if hi == 0 else float(MAX_SCORE) for _ in raw]
    return [(r - lo) * MAX_SCORE / (hi - lo) for r in raw]


def score_taints(state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """Fewer untolerated PreferNoSchedule taints scores higher."""
    prefer = tuple(t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule"))
    raw = [float(sum(1 for taint in n.prefer_taints if not tolerated(prefer, taint))) for n in nodes]
    return _normalize(raw, reverse=True)


def score_node_affinity(state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    raw = [float(sum(w for w, term in pod.preferred_node_affinity if term.matches(n.name, n.labels))) for n in nodes]
    return _normalize(raw)


def score_interpod(cluster: ClusterView, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """Preferred pod (anti-)affinity of the pod, and of existing pods towards it."""
    weights: dict[tuple[str, str], float] = {}

    def add(term_key: str, node_name: str, w: float) -> None:
        node = cluster.nodes.get(node_name)
        if node is not None and term_key in node.labels:
            pair = (term_key, node.labels[term_key])
            weights[pair] = weights.get(pair, 0) + w

    for sign, terms in ((1, pod.preferred_affinity), (-1, pod.preferred_anti_affinity)):
        for term in terms:
            for p in _term_pods(cluster, term):
                add(term.topology_key, p.node_name, sign * term.weight)
    for other in cluster.affinity_pods.values():
        for sign, terms in ((1, other.preferred_affinity), (-1, other.preferred_anti_affinity)):
            for term in terms:
                if term.matches(pod, cluster.namespace_labels):
                    add(term.topology_key, other.node_name, sign * term.weight)
        for term in other.affinity:  # required affinity of others counts with hardPodAffinityWeight 1
            if term.matches(pod, cluster.namespace_labels):
                add(term.topology_key, other.node_name, 1)
    if not weights:
        return [0.0 for _ in nodes]
    raw = [sum(w for (k, v), w in weights.items() if n.labels.get(k) == v) for n in nodes]
    return _min_max(raw)


def score_spread(cluster: ClusterView, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """ScheduleAnyway constraints: fewer matching pods in the node's domain scores higher."""
    soft = [c for c in pod.spread if not c.hard]
    if not soft:
        return [0.0 for _ in nodes]
    raw: list[float] = [0.0] * len(nodes)
    missing = [False] * len(nodes)
    for c in soft:
        eligible = spread_eligible_nodes(cluster, pod, [c])
        counts = _spread_counts(cluster, pod, c, eligible, frozenset())
        weight = math.log(len(counts) + 2)
        for i, n in enumerate(nodes):
            value = n.labels.get(c.topology_key)
            if value is None:
                missing[i] = True
                continue
            raw[i] += (counts.get(value, 0) + c.max_skew - 1) * weight
    present = [r for r, m in zip(raw, missing) if not m]
    if not present:
        return [0.0 for _ in nodes]
    lo, hi = min(present), max(present)
    out = []
    for r, m in zip(raw, missing):
        if m:
            out.append(0.0)
        elif hi == lo:
            out.append(float(MAX_SCORE))
        else:
            out.append(MAX_SCORE * (hi - r) / (hi - lo))
    return out


def score_owner_spread(owner_nodes: Mapping[str, int], owner_zones: Mapping[str, int], nodes: list[NodeInfo]) -> list[float]:
    """Pods of one controller (same owner uid) spread over nodes and zones: fewer siblings scores higher.

    As upstream's SelectorSpread: node score from the sibling count on the node, blended with the
    zone's count (2/3 zone, 1/3 node) where nodes carry zones. (``map`` over bound methods: this
    runs for every feasible node of every pod with an owner.)
    """
    counts = list(map(owner_nodes.get, map(_NAME, nodes), repeat(0))) if owner_nodes else [0] * len(nodes)
    top = max(counts) if counts else 0
    scale = MAX_SCORE / top if top else 0.0
    zones = list(map(_ZONE, nodes))
    if not any(zones):
        return [MAX_SCORE - c * scale for c in counts]
    zone_counts = [owner_zones.get(z, 0) if z else -1 for z in zones]
    ztop = max(zone_counts)
    zscale = MAX_SCORE / ztop if ztop > 0 else 0.0
    return [MAX_SCORE - c * scale if zc < 0 else (MAX_SCORE - c * scale) / 3 + (MAX_SCORE - zc * zscale) * 2 / 3
            for c, zc in zip(counts, zone_counts)]


_NAME = attrgetter("name")
_ZONE = attrgetter("zone")
