"""Preemption: when a pod fits nowhere, find the node where evicting the fewest, least important
lower-priority pods makes it fit (kube-scheduler's DefaultPreemption, without PodDisruptionBudgets).

For every node whose rejection eviction could fix (resources, ports, anti-affinity — not taints or
node affinity), remove all lower-priority pods in a what-if copy; if the pod then fits, add them
back most important first and keep out only those without which it would not fit. Among the
candidate nodes pick the one whose most important victim is least important, then the smallest
sum of victim priorities, then the fewest victims. Pure: the caller deletes the victims and sets
the preemptor's ``status.nominatedNodeName``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cache import SchedulerCache
from .core import Diagnosis, summarize
from .framework import NodeInfo, PodInfo
from . import plugins as P


@dataclass
class Candidate:
    node: str
    victims: list[PodInfo]

    def rank(self) -> tuple[int, int, int]:
        return (max(v.priority for v in self.victims), sum(v.priority for v in self.victims), len(self.victims))


def eligible(pod: PodInfo, cache: SchedulerCache) -> str | None:
    """Why ``pod`` may not preempt now (None: it may)."""
    if pod.preemption_policy == "Never":
        return "not eligible due to preemptionPolicy=Never."
    nominated = pod.nominated_node or cache.nominated_node_of(pod.key)
    node = cache.nodes.get(nominated) if nominated else None
    if node is not None and any(p.terminating and p.priority < pod.priority for p in node.pods.values()):
        # Victims of an earlier preemption are still going away: wait for them instead of evicting more.
        return "not eligible: victims of an earlier preemption are still terminating."
    return None


def _state_depends_on_pods(cache: SchedulerCache, pod: PodInfo) -> bool:
    return bool(pod.affinity or pod.anti_affinity or any(c.hard for c in pod.spread) or cache.anti_affinity_pods)


def victims_on_node(cache: SchedulerCache, pod: PodInfo, node: NodeInfo, base: P.CycleState,
                    volume_lookup: P.VolumeLookup | None = None) -> list[PodInfo] | None:
    lower = [p for p in node.pods.values() if p.priority < pod.priority]
    if not lower:
        return None
    trial = node.clone()
    for p in lower:
        trial.remove_pod(p.key)
    dynamic = _state_depends_on_pods(cache, pod)
    gone = {p.key for p in lower}

    def state() -> P.CycleState:
        return P.prefilter(cache, pod, volume_lookup=volume_lookup, exclude=frozenset(gone)) if dynamic else base

    if P.run_filters(state(), pod, trial) is not None:
        return None
    victims: list[PodInfo] = []
    # Try to keep the most important pods first (oldest first among equals).
    for p in sorted(lower, key=lambda v: (-v.priority, v.created)):
        trial.add_pod(p)
        gone.discard(p.key)
        if P.run_filters(state(), pod, trial) is not None:
            trial.remove_pod(p.key)
            gone.add(p.key)
            victims.append(p)
    return victims or None


def find_candidate(cache: SchedulerCache, pod: PodInfo, diagnosis: Diagnosis,
                   volume_lookup: P.VolumeLookup | None = None) -> tuple[Candidate | None, str]:
    """The best node to preempt on, and the ``preemption: ...`` summary when there is none."""
    base = P.prefilter(cache, pod, volume_lookup=volume_lookup)
    candidates: list[Candidate] = []
    outcome: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, (plugin, reasons) in diagnosis.node_reasons.items():
        node = cache.nodes.get(name)
        if node is None or node.node is None or not P.resolvable_by_preemption(plugin, reasons):
            outcome[name] = ("", ("Preemption is not helpful for scheduling",))
            continue
        victims = victims_on_node(cache, pod, node, base, volume_lookup)
        if victims is None:
            outcome[name] = ("", ("No preemption victims found for incoming pod",))
        else:
            candidates.append(Candidate(name, victims))
    if not candidates:
        return None, f" preemption: 0/{diagnosis.total_nodes} nodes are available: {summarize(outcome)}."
    return min(candidates, key=Candidate.rank), ""
