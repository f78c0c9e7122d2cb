"""Prometheus metrics of the scheduler (own registry, served on ``/metrics``), named as kube-scheduler's."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.attempts = Counter("scheduler_schedule_attempts_total",
                                "Scheduling attempts by result (scheduled, unschedulable, error)", ["result"],
                                registry=r)
        self.attempt_duration = Histogram("scheduler_scheduling_attempt_duration_seconds",
                                          "Time to decide for one pod (filter, score, select)", ["result"],
                                          buckets=_LATENCY, registry=r)
        self.e2e = Histogram("scheduler_pod_scheduling_duration_seconds",
                             "From the pod entering the queue to its binding", buckets=_LATENCY, registry=r)
        self.bindings = Counter("scheduler_bindings_total", "Bindings sent, by result (success, conflict, error)",
                                ["result"], registry=r)
        self.binding_duration = Histogram("scheduler_binding_duration_seconds", "Binding request latency",
                                          buckets=_LATENCY, registry=r)
        self.preemption_attempts = Counter("scheduler_preemption_attempts_total", "Preemptions started", registry=r)
        self.preemption_victims = Histogram("scheduler_preemption_victims", "Pods evicted per preemption",
                                            buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.pending = Gauge("scheduler_pending_pods", "Pods in the scheduling queue", ["queue"], registry=r)
        self.cache_size = Gauge("scheduler_cache_size", "Objects in the scheduler cache", ["type"], registry=r)
        self.leader = Gauge("leader_election_master_status", "1 while this replica leads", ["name"], registry=r)
        self.events_dropped = Gauge("scheduler_events_dropped", "Events not written (API too slow, or rejected)",
                                    registry=r)

    def watch_queue(self, sizes: Callable[[], dict[str, int]]) -> None:
        for name in ("active", "backoff", "unschedulable"):
            self.pending.labels(name).set_function(lambda name=name: sizes().get(name, 0))

    def watch_cache(self, sizes: Callable[[], dict[str, int]]) -> None:
        for name in ("nodes", "pods", "assumed_pods"):
            self.cache_size.labels(name).set_function(lambda name=name: sizes().get(name, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
