"""What the scheduler knows about a pod and a node, parsed once from the API dicts.

Filtering 1000 nodes for every pod is the hot path, so everything a filter or score needs is
computed when an object arrives (``PodInfo.from_pod``, ``NodeInfo.set_node``) instead of per
decision: requests as integers (milli-CPU, bytes), tolerations and taints as tuples, node and pod
affinity terms as matchers built on ``apimachinery.selectors``. ``NodeInfo`` keeps running totals
of what the pods on it (bound, or assumed while their binding is in flight) request.

Pure data: no I/O, so the filter and score functions can be tested on plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from apimachinery.quantity import Quantity, QuantityError
from apimachinery.selectors import LabelSelector, Operator, Requirement

Obj = dict[str, Any]

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
# Requests that count as zero still cost something when spreading load (upstream's non-zero defaults).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024

HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"
LEGACY_ZONE_LABEL = "failure-domain.beta.kubernetes.io/zone"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

_NODE_OPERATORS = {"In": Operator.IN, "NotIn": Operator.NOT_IN, "Exists": Operator.EXISTS,
                   "DoesNotExist": Operator.DOES_NOT_EXIST, "Gt": Operator.GREATER_THAN, "Lt": Operator.LESS_THAN}


# ---------------------------------------------------------------------- quantities

@lru_cache(maxsize=4096)
def _quantity(text: str, milli: bool) -> int:
    q = Quantity(text)
    return q.milli_value() if milli else q.value()


def quantity_value(raw: Any, *, milli: bool = False) -> int:
    """A resource quantity as an integer (milli-units for CPU); unparsable counts as 0."""
    if isinstance(raw, bool) or raw is None:
        return 0
    try:
        return _quantity(str(raw), milli)
    except (QuantityError, ValueError, TypeError):
        return 0


class Resources:
    """cpu (milli), memory and ephemeral-storage (bytes), pods, and any other resource by name."""

    __slots__ = ("cpu", "memory", "ephemeral", "pods", "scalars")

    def __init__(self, cpu: int = 0, memory: int = 0, ephemeral: int = 0, pods: int = 0,
                 scalars: dict[str, int] | None = None) -> None:
        self.cpu = cpu
        self.memory = memory
        self.ephemeral = ephemeral
        self.pods = pods
        self.scalars: dict[str, int] = scalars or {}

    @classmethod
    def from_list(cls, resources: Mapping[str, Any] | None) -> Resources:
        out = cls()
        for name, raw in (resources or {}).items():
            out.set(name, quantity_value(raw, milli=name == CPU))
        return out

    def get(self, name: str) -> int:
        if name == CPU:
            return self.cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL:
            return self.ephemeral
        if name == PODS:
            return self.pods
        return self.scalars.get(name, 0)

    def set(self, name: str, value: int) -> None:
        if name == CPU:
            self.cpu = value
        elif name == MEMORY:
            self.memory = value
        elif name == EPHEMERAL:
            self.ephemeral = value
        elif name == PODS:
            self.pods = value
        else:
            self.scalars[name] = value

    def names(self) -> list[str]:
        return [CPU, MEMORY, EPHEMERAL, PODS, *self.scalars]

    def add(self, other: Resources, sign: int = 1) -> None:
        self.cpu += sign * other.cpu
        self.memory += sign * other.memory
        self.ephemeral += sign * other.ephemeral
        self.pods += sign * other.pods
        for name, value in other.scalars.items():
            self.scalars[name] = self.scalars.get(name, 0) + sign * value

    def max_with(self, other: Resources) -> None:
        for name in {*self.names(), *other.names()}:
            self.set(name, max(self.get(name), other.get(name)))

    def copy(self) -> Resources:
        return Resources(self.cpu, self.memory, self.ephemeral, self.pods, dict(self.scalars))

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.scalars.items())
        return f"Resources(cpu={self.cpu}m, memory={self.memory}, ephemeral={self.ephemeral}, pods={self.pods}{extra})"


def _container_requests(container: Mapping[str, Any]) -> Resources:
    return Resources.from_list(((container.get("resources") or {}).get("requests")) or {})


def pod_requests(spec: Mapping[str, Any]) -> Resources:
    """``resource.PodRequests``: the max of (app containers + sidecars) and each init container's
    peak (itself plus the sidecars started before it), plus the pod overhead."""
    total = Resources()
    for c in spec.get("containers") or []:
        total.add(_container_requests(c))
    inits = spec.get("initContainers")
    if inits:
        total.max_with(_init_peak(inits, total))
    overhead = spec.get("overhead")
    if overhead:
        total.add(Resources.from_list(overhead))
    return total


def _init_peak(inits: list[Any], total: Resources) -> Resources:
    """The most any init container needs while it runs (with the sidecars started before it);
    sidecars (``restartPolicy: Always``) also keep running next to the app containers (added to ``total``)."""
    sidecars = Resources()
    init_peak = Resources()
    for c in inits:
        req = _container_requests(c)
        if c.get("restartPolicy") == "Always":  # a sidecar keeps running next to the app containers
            sidecars.add(req)
            total.add(req)
            peak = sidecars.copy()
        else:
            peak = sidecars.copy()
            peak.add(req)
        init_peak.max_with(peak)
    return init_peak


# ---------------------------------------------------------------------- matchers

class NodeSelectorTerm:
    """One ``nodeSelectorTerm``: all expressions on labels and fields must hold; empty matches nothing."""

    __slots__ = ("labels", "fields", "valid")

    def __init__(self, term: Mapping[str, Any]) -> None:
        self.valid = True
        self.labels = tuple(self._requirements(term.get("matchExpressions")))
        self.fields = tuple(self._requirements(term.get("matchFields")))
        if not self.labels and not self.fields:
            self.valid = False

    def _requirements(self, exprs: Any) -> Iterable[Requirement]:
        for expr in exprs or []:
            op = _NODE_OPERATORS.get((expr or {}).get("operator"))
            if op is None or not isinstance(expr.get("key"), str):
                self.valid = False
                continue
            yield Requirement(expr["key"], op, tuple(str(v) for v in expr.get("values") or ()))

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        if not self.valid:
            return False
        for r in self.labels:
            if not r.matches(labels):
                return False
        if self.fields:
            fields = {"metadata.name": node_name}
            for r in self.fields:
                if not r.matches(fields):
                    return False
        return True


class NodeSelector:
    """``nodeSelectorTerms`` ORed together."""

    __slots__ = ("terms",)

    def __init__(self, selector: Mapping[str, Any]) -> None:
        self.terms = tuple(NodeSelectorTerm(t or {}) for t in selector.get("nodeSelectorTerms") or [])

    def matches(self, node_name: str, labels: Mapping[str, str]) -> bool:
        for t in self.terms:
            if t.matches(node_name, labels):
                return True
        return False


def _selector(raw: Any) -> LabelSelector:
    try:
        return LabelSelector.from_structured(raw)
    except Exception:  # noqa: BLE001 - an invalid selector selects nothing
        return LabelSelector.nothing()


class AffinityTerm:
    """A ``podAffinityTerm``: pods matching ``selector`` in ``namespaces`` (None = all), by ``topology_key``."""

    __slots__ = ("selector", "namespaces", "namespace_selector", "topology_key", "weight")

    def __init__(self, term: Mapping[str, Any], pod_namespace: str, weight: int = 0) -> None:
        self.selector = _selector(term.get("labelSelector"))
        self.topology_key = str(term.get("topologyKey") or "")
        self.weight = weight
        names = frozenset(term.get("namespaces") or ())
        ns_sel = term.get("namespaceSelector")
        self.namespace_selector: LabelSelector | None = None
        if ns_sel is not None:
            sel = _selector(ns_sel)
            if sel.empty:
                self.namespaces: frozenset[str] | None = None  # {} selects every namespace
            else:
                self.namespaces = names
                self.namespace_selector = sel
        else:
            self.namespaces = names or frozenset((pod_namespace,))

    def selects_namespace(self, namespace: str, ns_labels: Mapping[str, Mapping[str, str]]) -> bool:
        if self.namespaces is None or namespace in self.namespaces:
            return True
        if self.namespace_selector is not None:
            return self.namespace_selector.matches(ns_labels.get(namespace) or {})
        return False

    def matches(self, pod: PodInfo, ns_labels: Mapping[str, Mapping[str, str]]) -> bool:
        return self.selects_namespace(pod.namespace, ns_labels) and self.selector.matches(pod.labels)


class SpreadConstraint:
    __slots__ = ("max_skew", "topology_key", "hard", "selector", "min_domains", "honor_affinity", "honor_taints")

    def __init__(self, c: Mapping[str, Any], pod_labels: Mapping[str, str]) -> None:
        self.max_skew = max(1, int(c.get("maxSkew") or 1))
        self.topology_key = str(c.get("topologyKey") or "")
        self.hard = c.get("whenUnsatisfiable", "DoNotSchedule") != "ScheduleAnyway"
        sel = _selector(c.get("labelSelector"))
        keys = [k for k in c.get("matchLabelKeys") or [] if k in pod_labels]
        if keys:
            sel = sel.add(*(Requirement(k, Operator.IN, (pod_labels[k],)) for k in keys))
        self.selector = sel
        self.min_domains = max(1, int(c.get("minDomains") or 1))
        self.honor_affinity = c.get("nodeAffinityPolicy", "Honor") != "Ignore"
        self.honor_taints = c.get("nodeTaintsPolicy", "Ignore") == "Honor"


class Toleration:
    __slots__ = ("key", "operator", "value", "effect")

    def __init__(self, t: Mapping[str, Any]) -> None:
        self.key = t.get("key") or ""
        self.operator = t.get("operator") or "Equal"
        self.value = t.get("value") or ""
        self.effect = t.get("effect") or ""

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator == "Equal" and bool(self.key) and self.value == taint.value


class Taint:
    __slots__ = ("key", "value", "effect")

    def __init__(self, key: str, value: str, effect: str) -> None:
        self.key = key
        self.value = value
        self.effect = effect

    def __repr__(self) -> str:
        return f"Taint({self.key}={self.value}:{self.effect})"


# ---------------------------------------------------------------------- pods

def _affinity_terms(affinity: Mapping[str, Any], kind: str, namespace: str) -> tuple[tuple[AffinityTerm, ...],
                                                                                          tuple[AffinityTerm, ...]]:
    block = affinity.get(kind) or {}
    required = tuple(AffinityTerm(t or {}, namespace)
                     for t in block.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
    preferred = tuple(AffinityTerm((w or {}).get("podAffinityTerm") or {}, namespace, int((w or {}).get("weight") or 0))
                      for w in block.get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    return required, preferred


class PodInfo:
    """A pod as the scheduler needs it; ``priority`` is resolved by the caller (PriorityClass)."""

    __slots__ = ("pod", "key", "uid", "namespace", "name", "labels", "node_name", "scheduler_name", "priority",
                 "preemption_policy", "requests", "nz_cpu", "nz_memory", "host_ports", "tolerations",
                 "node_selector", "required_node_affinity", "preferred_node_affinity", "affinity", "anti_affinity",
                 "preferred_affinity", "preferred_anti_affinity", "spread", "claims", "owner_uid", "terminating",
                 "nominated_node", "created", "phase")

    def __init__(self, pod: Obj, priority: int = 0) -> None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        self.pod = pod
        self.namespace = meta.get("namespace") or ""
        self.name = meta.get("name") or ""
        self.key = f"{self.namespace}/{self.name}"
        self.uid = meta.get("uid") or ""
        self.labels: dict[str, str] = meta.get("labels") or {}
        self.node_name: str = spec.get("nodeName") or ""
        self.scheduler_name = spec.get("schedulerName") or "default-scheduler"
        self.priority = priority
        self.preemption_policy = spec.get("preemptionPolicy") or "PreemptLowerPriority"
        self.requests = pod_requests(spec)
        self.requests.pods = 1
        self.nz_cpu = self.requests.cpu or DEFAULT_MILLI_CPU
        self.nz_memory = self.requests.memory or DEFAULT_MEMORY
        ports = []
        for c in spec.get("containers") or []:
            for p in c.get("ports") or []:
                hp = p.get("hostPort") or 0
                if isinstance(hp, int) and hp > 0:
                    ports.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", hp))
        self.host_ports = tuple(ports)
        self.tolerations = tuple(Toleration(t or {}) for t in spec.get("tolerations") or [])
        self.node_selector: dict[str, str] = spec.get("nodeSelector") or {}
        affinity = spec.get("affinity") or {}
        node_aff = affinity.get("nodeAffinity") or {}
        req = node_aff.get("requiredDuringSchedulingIgnoredDuringExecution")
        self.required_node_affinity = NodeSelector(req) if req is not None else None
        self.preferred_node_affinity = tuple(
            (int((p or {}).get("weight") or 0), NodeSelectorTerm((p or {}).get("preference") or {}))
            for p in node_aff.get("preferredDuringSchedulingIgnoredDuringExecution") or [])
        self.affinity, self.preferred_affinity = _affinity_terms(affinity, "podAffinity", self.namespace)
        self.anti_affinity, self.preferred_anti_affinity = _affinity_terms(affinity, "podAntiAffinity", self.namespace)
        self.spread = tuple(SpreadConstraint(c or {}, self.labels) for c in spec.get("topologySpreadConstraints") or [])
        self.claims = tuple(v["persistentVolumeClaim"]["claimName"] for v in spec.get("volumes") or []
                            if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)
                            and v["persistentVolumeClaim"].get("claimName"))
        owner = ""
        for ref in meta.get("ownerReferences") or []:
            if isinstance(ref, dict) and ref.get("controller") is True:
                owner = str(ref.get("uid") or "")
                break
        self.owner_uid = owner
        self.terminating = bool(meta.get("deletionTimestamp"))
        self.nominated_node: str = status.get("nominatedNodeName") or ""
        self.created: str = meta.get("creationTimestamp") or ""
        self.phase: str = status.get("phase") or ""

    @property
    def has_affinity(self) -> bool:
        return bool(self.affinity or self.anti_affinity or self.preferred_affinity or self.preferred_anti_affinity)

    def __repr__(self) -> str:
        return f"PodInfo({self.key}, node={self.node_name!r}, priority={self.priority})"


# ---------------------------------------------------------------------- nodes

class NodeInfo:
    """A node plus the pods on it (bound or assumed) and their running totals."""

    __slots__ = ("name", "node", "labels", "allocatable", "requested", "nz_cpu", "nz_memory", "pods", "used_ports",
                 "taints", "prefer_taints", "unschedulable", "zone", "generation", "score_generation", "score_cpu",
                 "score_memory", "score_value", "plain", "free_cpu", "free_memory", "free_ephemeral", "free_pods")

    def __init__(self, name: str) -> None:
        self.name = name
        self.node: Obj | None = None
        self.labels: dict[str, str] = {}
        self.allocatable = Resources()
        self.requested = Resources()
        self.nz_cpu = 0
        self.nz_memory = 0
        self.pods: dict[str, PodInfo] = {}
        self.used_ports: dict[tuple[str, int], dict[str, int]] = {}
        self.taints: tuple[Taint, ...] = ()  # NoSchedule / NoExecute (implicit ones included)
        self.prefer_taints: tuple[Taint, ...] = ()  # PreferNoSchedule
        self.unschedulable = False
        self.zone = ""
        self.generation = 0
        # The resource score last computed here, for pods of one size (see core.resource_scores).
        self.score_generation = -1
        self.score_cpu = self.score_memory = 0
        self.score_value = 0.0
        # For the filter fast path: no taints, schedulable; what is left of each resource.
        self.plain = False
        self.free_cpu = self.free_memory = self.free_ephemeral = self.free_pods = 0

    @classmethod
    def from_node(cls, node: Obj, pods: Iterable[PodInfo] = ()) -> NodeInfo:
        info = cls((node.get("metadata") or {}).get("name") or "")
        info.set_node(node)
        for p in pods:
            info.add_pod(p)
        return info

    def set_node(self, node: Obj) -> None:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.node = node
        self.labels = meta.get("labels") or {}
        self.zone = self.labels.get(ZONE_LABEL) or self.labels.get(LEGACY_ZONE_LABEL) or ""
        alloc = status.get("allocatable") or status.get("capacity") or {}
        self.allocatable = Resources.from_list(alloc)
        self.unschedulable = bool(spec.get("unschedulable"))
        hard: list[Taint] = []
        prefer: list[Taint] = []
        for t in spec.get("taints") or []:
            taint = Taint(t.get("key") or "", t.get("value") or "", t.get("effect") or "")
            (prefer if taint.effect == "PreferNoSchedule" else hard).append(taint)
        # A node that is not Ready carries the taint the node lifecycle controller would put on it,
        # so pods that tolerate it (DaemonSets) still fit, and the message names it as upstream does.
        ready = "Unknown"
        for cond in status.get("conditions") or []:
            if cond.get("type") == "Ready":
                ready = cond.get("status") or "Unknown"
        implicit = None if ready == "True" else (TAINT_NOT_READY if ready == "False" else TAINT_UNREACHABLE)
        if implicit and not any(t.key == implicit for t in hard):
            hard.append(Taint(implicit, "", "NoSchedule"))
        self.taints = tuple(hard)
        self.prefer_taints = tuple(prefer)
        self.plain = not hard and not self.unschedulable
        self._changed()

    def _changed(self) -> None:
        a, r = self.allocatable, self.requested
        self.free_cpu, self.free_memory = a.cpu - r.cpu, a.memory - r.memory
        self.free_ephemeral, self.free_pods = a.ephemeral - r.ephemeral, a.pods - r.pods
        self.generation += 1

    def add_pod(self, p: PodInfo) -> None:
        self.pods[p.key] = p
        self.requested.add(p.requests)
        self.nz_cpu += p.nz_cpu
        self.nz_memory += p.nz_memory
        for ip, proto, port in p.host_ports:
            ips = self.used_ports.setdefault((proto, port), {})
            ips[ip] = ips.get(ip, 0) + 1
        self._changed()

    def remove_pod(self, key: str) -> PodInfo | None:
        p = self.pods.pop(key, None)
        if p is None:
            return None
        self.requested.add(p.requests, -1)
        self.nz_cpu -= p.nz_cpu
        self.nz_memory -= p.nz_memory
        for ip, proto, port in p.host_ports:
            ips = self.used_ports.get((proto, port))
            if ips is not None:
                ips[ip] -= 1
                if ips[ip] <= 0:
                    del ips[ip]
                if not ips:
                    del self.used_ports[(proto, port)]
        self._changed()
        return p

    def clone(self) -> NodeInfo:
        """A copy whose pod set can change (preemption what-ifs) without touching this one."""
        other = NodeInfo(self.name)
        other.node, other.labels, other.zone = self.node, self.labels, self.zone
        other.allocatable = self.allocatable
        other.taints, other.prefer_taints, other.unschedulable = self.taints, self.prefer_taints, self.unschedulable
        other.plain = self.plain
        for p in self.pods.values():
            other.add_pod(p)
        return other

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)}, requested={self.requested})"
