"""Prometheus metrics of the proxy, DNS and ingress processes (one registry each, served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _Registry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.leader = Gauge("leader_election_master_status", "1 while this replica leads", ["name"],
                            registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ProxyMetrics(_Registry):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.connections = Counter("pilot_proxy_connections_total",
                                   "Connections (TCP) or sessions (UDP) accepted, by service port and result "
                                   "(ok, no_endpoint)", ["service", "protocol", "result"], registry=r)
        self.connect_errors = Counter("pilot_proxy_endpoint_connect_errors_total",
                                      "Backend connects that failed and were retried on another endpoint",
                                      ["service"], registry=r)
        self.active = Gauge("pilot_proxy_active_connections", "Open TCP connections / UDP sessions", ["protocol"],
                            registry=r)
        self.bytes = Counter("pilot_proxy_bytes_total", "Bytes forwarded (in: client to backend)",
                             ["protocol", "direction"], registry=r)
        self.datagrams = Counter("pilot_proxy_udp_datagrams_total", "UDP datagrams forwarded", ["direction"],
                                 registry=r)
        self.listeners = Gauge("pilot_proxy_listeners", "Addresses listened on", ["protocol"], registry=r)
        self.listen_errors = Counter("pilot_proxy_listen_errors_total", "Failed attempts to open a listener",
                                     registry=r)
        self.endpoints = Gauge("pilot_proxy_endpoints", "Usable endpoints over all balancers", registry=r)
        self.syncs = Counter("pilot_proxy_sync_total", "Listener syncs (services or nodes changed)", registry=r)
        self.endpoint_updates = Counter("pilot_proxy_endpoint_updates_total",
                                        "EndpointSlice changes applied to balancers", registry=r)
        self.lb_status_writes = Counter("pilot_proxy_lb_status_writes_total",
                                        "status.loadBalancer writes by the allocator", ["result"], registry=r)


class DNSMetrics(_Registry):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.queries = Counter("pilot_dns_queries_total", "DNS queries by transport, type and response code",
                               ["transport", "qtype", "rcode"], registry=r)
        self.duration = Histogram("pilot_dns_query_duration_seconds", "Time to answer a query", buckets=_LATENCY,
                                  registry=r)


class IngressMetrics(_Registry):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.requests = Counter("pilot_ingress_requests_total", "Requests by ingress and status code",
                                ["ingress", "code"], registry=r)
        self.upstream_retries = Counter("pilot_ingress_upstream_retries_total",
                                        "Upstream attempts that failed before a response and were retried",
                                        ["reason"], registry=r)
        self.duration = Histogram("pilot_ingress_request_duration_seconds", "Time to response headers",
                                  buckets=_LATENCY, registry=r)
        self.ingresses = Gauge("pilot_ingress_served_ingresses", "Ingresses of our class", registry=r)
        self.status_writes = Counter("pilot_ingress_status_writes_total", "Ingress status writes", ["result"],
                                     registry=r)
