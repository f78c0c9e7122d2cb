"""Prometheus metrics of the controller-manager (own registry, served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.syncs = Counter("controller_syncs_total", "sync(key) calls by controller and result (success, error)",
                             ["controller", "result"], registry=r)
        self.sync_duration = Histogram("controller_sync_duration_seconds", "sync(key) latency by controller",
                                       ["controller"], buckets=_LATENCY, registry=r)
        self.queue_depth = Gauge("workqueue_depth", "Keys ready in a controller's work queue", ["name"], registry=r)
        self.leader = Gauge("leader_election_master_status", "1 while this replica leads", ["name"], registry=r)
        self.running = Gauge("controller_running", "1 while the controller runs on this replica", ["controller"],
                             registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
