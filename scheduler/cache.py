"""The scheduler's picture of the cluster, kept up to date incrementally from informer events.

Nodes with the pods bound to them, plus pods *assumed* onto a node: a pod is assumed the moment
the scheduler decides, before its binding reaches the API server, so the next pod — decided
microseconds later — already sees the CPU, memory, pods and ports it takes. When the bound pod
comes back through the watch the assumption is confirmed; if the binding fails it is forgotten.
That is what keeps a burst of pods from over-committing a node.

Also maintained incrementally, for the plugins: pods by namespace, pods with (anti-)affinity
terms, per-controller sibling counts by node and zone, and the pods nominated to nodes by
preemption. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .framework import NodeInfo, PodInfo

Obj = dict[str, Any]
_TERMINAL = ("Succeeded", "Failed")


def pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


class SchedulerCache:
    def __init__(self, priority_of: Callable[[Obj], int] = lambda pod: 0) -> None:
        self.priority_of = priority_of
        self.nodes: dict[str, NodeInfo] = {}
        self.node_names: list[str] = []  # real nodes (not placeholders), in a stable order
        self.node_list: list[NodeInfo] = []  # the same nodes' infos, same order
        self.pods: dict[str, PodInfo] = {}  # bound or assumed
        self.assumed: dict[str, bool] = {}  # key -> binding finished
        self.pods_by_namespace: dict[str, dict[str, PodInfo]] = {}
        self.anti_affinity_pods: dict[str, PodInfo] = {}
        self.affinity_pods: dict[str, PodInfo] = {}
        self.owner_nodes: dict[str, dict[str, int]] = {}
        self.owner_zones: dict[str, dict[str, int]] = {}
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.nominated: dict[str, dict[str, PodInfo]] = {}
        self._nominated_node: dict[str, str] = {}
        self.prefer_taint_nodes = 0

    # ------------------------------------------------------------------ nodes

    def set_node(self, node: Obj) -> NodeInfo:
        name = (node.get("metadata") or {}).get("name") or ""
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
        old_zone = info.zone
        if info.node is None:
            self.node_names.append(name)
            self.node_list.append(info)
        elif info.prefer_taints:
            self.prefer_taint_nodes -= 1
        info.set_node(node)
        if info.prefer_taints:
            self.prefer_taint_nodes += 1
        if info.zone != old_zone:
            for p in info.pods.values():
                if p.owner_uid:
                    self._count_zone(p.owner_uid, old_zone, -1)
                    self._count_zone(p.owner_uid, info.zone, 1)
        return info

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None or info.node is None:
            return
        if info.prefer_taints:
            self.prefer_taint_nodes -= 1
        self.node_names.remove(name)
        self.node_list.remove(info)
        if info.pods:
            info.node = None  # keep the pods' accounting until they go too
            info.labels = {}
        else:
            del self.nodes[name]

    def schedulable_nodes(self) -> list[str]:
        return self.node_names

    # ------------------------------------------------------------------ pods

    def _count_zone(self, owner: str, zone: str, delta: int) -> None:
        if not zone:
            return
        zones = self.owner_zones.setdefault(owner, {})
        zones[zone] = zones.get(zone, 0) + delta
        if zones[zone] <= 0:
            del zones[zone]
            if not zones:
                del self.owner_zones[owner]

    def _add(self, p: PodInfo) -> None:
        self.pods[p.key] = p
        node = self.nodes.get(p.node_name)
        if node is None:
            node = self.nodes[p.node_name] = NodeInfo(p.node_name)
        node.add_pod(p)
        self.pods_by_namespace.setdefault(p.namespace, {})[p.key] = p
        if p.anti_affinity:
            self.anti_affinity_pods[p.key] = p
        if p.has_affinity:
            self.affinity_pods[p.key] = p
        if p.owner_uid:
            counts = self.owner_nodes.setdefault(p.owner_uid, {})
            counts[p.node_name] = counts.get(p.node_name, 0) + 1
            self._count_zone(p.owner_uid, node.zone, 1)

    def _remove(self, key: str) -> PodInfo | None:
        p = self.pods.pop(key, None)
        if p is None:
            return None
        node = self.nodes.get(p.node_name)
        if node is not None:
            node.remove_pod(key)
            if node.node is None and not node.pods:
                del self.nodes[p.node_name]
        ns = self.pods_by_namespace.get(p.namespace)
        if ns is not None:
            ns.pop(key, None)
            if not ns:
                del self.pods_by_namespace[p.namespace]
        self.anti_affinity_pods.pop(key, None)
        self.affinity_pods.pop(key, None)
        if p.owner_uid:
            counts = self.owner_nodes.get(p.owner_uid)
            if counts is not None:
                counts[p.node_name] = counts.get(p.node_name, 0) - 1
                if counts[p.node_name] <= 0:
                    del counts[p.node_name]
                if not counts:
                    del self.owner_nodes[p.owner_uid]
            self._count_zone(p.owner_uid, node.zone if node is not None else "", -1)
        return p

    def set_pod(self, pod: Obj) -> None:
        """A pod as the informer sees it now (added or updated): account it if bound and running."""
        key = pod_key(pod)
        spec = pod.get("spec") or {}
        node_name = spec.get("nodeName") or ""
        phase = (pod.get("status") or {}).get("phase")
        if not node_name or phase in _TERMINAL:
            if key in self.pods and key not in self.assumed:
                self._remove(key)
            return
        meta = pod.get("metadata") or {}
        mine = self.pods.get(key)
        if (self.assumed.pop(key, None) is not None and mine is not None and mine.uid == meta.get("uid")
                and mine.node_name == node_name and mine.labels == (meta.get("labels") or {})
                and not meta.get("deletionTimestamp")):
            mine.pod = pod  # our binding came back as we assumed it: nothing to recount
            return
        self._remove(key)
        self._add(PodInfo(pod, self.priority_of(pod)))
        self.clear_nominated(key)

    def remove_pod(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.assumed.pop(key, None)
        self._remove(key)
        self.clear_nominated(key)

    # ------------------------------------------------------------------ assuming

    def assume(self, p: PodInfo, node_name: str) -> None:
        """Account ``p`` on ``node_name`` now, before the binding is confirmed."""
        self._remove(p.key)
        p.node_name = node_name
        self._add(p)
        self.assumed[p.key] = False
        self.clear_nominated(p.key)

    def finish_binding(self, key: str) -> None:
        if key in self.assumed:
            self.assumed[key] = True

    def forget(self, key: str) -> None:
        """The binding failed: undo the assumption (a confirmed pod is left alone)."""
        if key in self.assumed:
            del self.assumed[key]
            self._remove(key)

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    # ------------------------------------------------------------------ nominations

    def set_nominated(self, p: PodInfo, node_name: str) -> None:
        self.clear_nominated(p.key)
        self.nominated.setdefault(node_name, {})[p.key] = p
        self._nominated_node[p.key] = node_name

    def clear_nominated(self, key: str) -> None:
        node = self._nominated_node.pop(key, None)
        if node is not None:
            pods = self.nominated.get(node)
            if pods is not None:
                pods.pop(key, None)
                if not pods:
                    del self.nominated[node]

    def nominated_for(self, node_name: str) -> Iterable[PodInfo]:
        return self.nominated.get(node_name, {}).values()

    def nominated_nodes(self) -> Iterable[str]:
        return list(self.nominated)

    def nominated_node_of(self, key: str) -> str:
        return self._nominated_node.get(key, "")

    # ------------------------------------------------------------------ namespaces

    def set_namespace(self, ns: Obj) -> None:
        meta = ns.get("metadata") or {}
        self.namespace_labels[meta.get("name") or ""] = meta.get("labels") or {}

    def remove_namespace(self, ns: Obj) -> None:
        self.namespace_labels.pop((ns.get("metadata") or {}).get("name") or "", None)
