"""One scheduling decision: filter the nodes, score the feasible ones, pick the best.

As kube-scheduler's ``schedulePod``: the search starts where the previous one stopped (so load
spreads over all nodes) and stops once enough feasible nodes are found
(``percentageOfNodesToScore``, adaptive by default: 50% minus 1% per 125 nodes, at least 5% and at
least 100 nodes). A pod that fits nowhere raises ``FitError`` whose diagnosis gives the per-node
reasons, the ``0/3 nodes are available: ...`` message and the plugins that rejected it (which
decide which cluster events are worth a retry).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .cache import SchedulerCache
from .framework import NodeInfo, PodInfo
from . import plugins as P

# Default profile weights.
W_FIT, W_BALANCED, W_TAINT, W_NODE_AFFINITY, W_INTERPOD, W_SPREAD = 1, 1, 3, 2, 2, 2


@dataclass
class Diagnosis:
    total_nodes: int
    node_reasons: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # node -> (plugin, reasons)
    preemption: str = ""  # ". preemption: ..." suffix, when preemption was tried

    def unschedulable_plugins(self) -> set[str]:
        return {plugin for plugin, _ in self.node_reasons.values()}

    def message(self) -> str:
        if self.total_nodes == 0:
            return "no nodes available to schedule pods"
        return f"0/{self.total_nodes} nodes are available: {summarize(self.node_reasons)}." + self.preemption


def summarize(node_reasons: dict[str, tuple[str, tuple[str, ...]]]) -> str:
    """``1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}`` (sorted as upstream sorts them)."""
    counts: dict[str, int] = {}
    for _, reasons in node_reasons.values():
        for r in reasons:
            counts[r] = counts.get(r, 0) + 1
    return ", ".join(sorted(f"{n} {r}" for r, n in counts.items()))


class FitError(Exception):
    def __init__(self, pod: PodInfo, diagnosis: Diagnosis) -> None:
        super().__init__(diagnosis.message())
        self.pod = pod
        self.diagnosis = diagnosis


@dataclass
class ScheduleResult:
    node: str
    evaluated: int
    feasible: int


def nodes_to_find(total: int, percentage: int = 0) -> int:
    """``numFeasibleNodesToFind``."""
    if total < 100 or percentage >= 100:
        return total
    if percentage <= 0:
        percentage = max(5, 50 - total // 125)
    return max(100, total * percentage // 100)


class Algorithm:
    def __init__(self, cache: SchedulerCache, *, volume_lookup: P.VolumeLookup | None = None,
                 percentage_of_nodes_to_score: int = 0, rng: random.Random | None = None) -> None:
        self.cache = cache
        self.volume_lookup = volume_lookup
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self.next_start = 0

    def prefilter(self, pod: PodInfo) -> P.CycleState:
        return P.prefilter(self.cache, pod, volume_lookup=self.volume_lookup)

    def schedule(self, pod: PodInfo) -> ScheduleResult:
        state = self.prefilter(pod)
        total = len(self.cache.node_list)
        diagnosis = Diagnosis(total)
        if total == 0:
            raise FitError(pod, diagnosis)
        feasible = self.find_feasible(state, pod, diagnosis)
        if not feasible:
            raise FitError(pod, diagnosis)
        evaluated = len(feasible) + len(diagnosis.node_reasons)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1)
        scores = self.score(state, pod, feasible)
        return ScheduleResult(self.select(feasible, scores), evaluated, len(feasible))

    def find_feasible(self, state: P.CycleState, pod: PodInfo, diagnosis: Diagnosis) -> list[NodeInfo]:
        nodes = self.cache.node_list
        total = len(nodes)
        want = nodes_to_find(total, self.percentage)
        start = self.next_start % total
        ordered = nodes[start:] + nodes[:start] if start else nodes
        feasible: list[NodeInfo] = []
        filters = state.filters
        reasons = diagnosis.node_reasons
        # The common pod (no ports, volumes, affinity, spread; plain resources) on the common node
        # (no taints, schedulable) needs only integer comparisons: a comprehension over as many
        # nodes as are still wanted, the full filters only for the nodes it turns down.
        simple = len(filters) == 3 and not pod.requests.scalars and not state.nominated
        req = pod.requests
        rc, rm, re_ = req.cpu, req.memory, req.ephemeral
        pos = 0
        while len(feasible) < want and pos < total:
            chunk = ordered[pos:pos + want - len(feasible)]
            pos += len(chunk)
            if simple:
                fits = [n for n in chunk if n.plain and n.free_pods > 0 and rc <= n.free_cpu
                        and rm <= n.free_memory and re_ <= n.free_ephemeral]
                feasible += fits
                if len(fits) == len(chunk):
                    continue
                chunk = [n for n in chunk if not (n.plain and n.free_pods > 0 and rc <= n.free_cpu
                                                  and rm <= n.free_memory and re_ <= n.free_ephemeral)]
            for info in chunk:
                for plugin, fn in filters:
                    r = fn(state, pod, info)
                    if r:
                        reasons[info.name] = (plugin, r)
                        break
                else:
                    feasible.append(info)
        self.next_start = (start + pos) % total
        return feasible

    def score(self, state: P.CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
        cache = self.cache
        total = resource_scores(pod, nodes)

        def add(weight: int, scores: list[float]) -> None:
            total[:] = [t + weight * s for t, s in zip(total, scores)]

        if cache.prefer_taint_nodes:
            add(W_TAINT, P.score_taints(state, pod, nodes))
        if pod.preferred_node_affinity:
            add(W_NODE_AFFINITY, P.score_node_affinity(state, pod, nodes))
        if pod.preferred_affinity or pod.preferred_anti_affinity or cache.affinity_pods:
            add(W_INTERPOD, P.score_interpod(cache, state, pod, nodes))
        if any(not c.hard for c in pod.spread):
            add(W_SPREAD, P.score_spread(cache, state, pod, nodes))
        elif pod.owner_uid and not pod.spread:
            add(W_SPREAD, P.score_owner_spread(cache.owner_nodes.get(pod.owner_uid, {}),
                                               cache.owner_zones.get(pod.owner_uid, {}), nodes))
        return total

    def select(self, nodes: list[NodeInfo], scores: list[float]) -> str:
        """The best node; ties broken at random."""
        best = max(scores)
        ties = [i for i, s in enumerate(scores) if s == best]
        return nodes[ties[0] if len(ties) == 1 else self.rng.choice(ties)].name


def resource_scores(pod: PodInfo, nodes: list[NodeInfo]) -> list[float]:
    """LeastAllocated (weight 1) + BalancedAllocation (weight 1) of CPU and memory, per node.

    The hot path of every decision. A node's value depends only on its own requested totals and
    the pod's, so it is remembered on the node with the node's generation: placing one pod
    changes one node, and the next pod of the same size reuses the other nodes' values.
    """
    cpu, mem = pod.nz_cpu, pod.nz_memory
    out = []
    append = out.append
    for n in nodes:
        if n.score_generation == n.generation and n.score_cpu == cpu and n.score_memory == mem:
            append(n.score_value)
            continue
        a_cpu, a_mem = n.allocatable.cpu, n.allocatable.memory
        u_cpu, u_mem = n.nz_cpu + cpu, n.nz_memory + mem
        least = 0.0
        f_cpu = f_mem = 1.0
        if a_cpu > 0:
            f_cpu = u_cpu / a_cpu
            if u_cpu <= a_cpu:
                least += (a_cpu - u_cpu) * P.MAX_SCORE / a_cpu
        if a_mem > 0:
            f_mem = u_mem / a_mem
            if u_mem <= a_mem:
                least += (a_mem - u_mem) * P.MAX_SCORE / a_mem
        balanced = (1 - abs(min(f_cpu, 1.0) - min(f_mem, 1.0)) / 2) * P.MAX_SCORE
        value = W_FIT * least / 2 + W_BALANCED * balanced
        n.score_generation, n.score_cpu, n.score_memory, n.score_value = n.generation, cpu, mem, value
        append(value)
    return out
